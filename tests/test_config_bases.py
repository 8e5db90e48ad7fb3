"""Configs as bases + overrides: `base: <name>` resolves only to base/<name>.yaml beside the config file.

Hostile names (paths, '..', absolute names, non-strings), missing bases, cycles and chains deeper than
MAX_BASE_DEPTH are one-line ConfigErrors naming the file and the key; the CLI exits 2 with that line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from arface_repro.cli import main
from arface_repro.errors import ConfigError
from arface_repro.train.config import MAX_BASE_DEPTH, config_files, load_config

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_config_is_its_bases_with_its_own_keys_over_them(tmp_path):
    write(tmp_path / "base" / "common.yaml", "seed: 3\ntrain: {steps: 11, lr: 0.2}\nmodel: {kwargs: {a: 1, b: 2}}\n")
    write(tmp_path / "base" / "mid.yaml", "base: common\ntrain: {steps: 12}\n")
    exp = write(tmp_path / "exp.yaml", "base: mid\nname: exp\ntrain: {warmup_steps: 2}\nmodel: {kwargs: {c: 3}}\n")
    cfg = load_config(exp)
    assert (cfg["seed"], cfg["train"]["steps"], cfg["train"]["lr"], cfg["train"]["warmup_steps"]) == (3, 12, 0.2, 2)
    assert cfg["model"]["kwargs"] == {"c": 3}   # a kwargs mapping replaces the base's whole
    assert "base" not in cfg
    assert config_files(exp) == [tmp_path / "base" / "common.yaml", tmp_path / "base" / "mid.yaml", exp]
    assert load_config(exp, ["train.steps=13"])["train"]["steps"] == 13   # overrides still come last


def test_a_bad_value_in_a_base_names_the_base_file(tmp_path):
    write(tmp_path / "base" / "b.yaml", "train: {lr: -1.0}\n")
    exp = write(tmp_path / "exp.yaml", "base: b\nname: exp\n")
    with pytest.raises(ConfigError, match=r"base/b\.yaml: train\.lr must be"):
        load_config(exp)
    write(tmp_path / "base" / "c.yaml", "train: {lrr: 1.0}\n")
    with pytest.raises(ConfigError, match=r"base/c\.yaml: unknown config key 'train\.lrr'"):
        load_config(write(tmp_path / "exp2.yaml", "base: c\nname: exp\n"))
    # the file's own value wins, and a bad one names the file, not its base
    write(tmp_path / "base" / "ok.yaml", "train: {lr: 0.5}\n")
    with pytest.raises(ConfigError, match=r"exp3\.yaml: train\.lr must be"):
        load_config(write(tmp_path / "exp3.yaml", "base: ok\nname: exp\ntrain: {lr: .nan}\n"))


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "sub/dir", "b.yaml", "..", "", ".hidden", "a b", 7, None,
                                  ["b"], {"b": 1}, "b\n"])
def test_a_base_is_a_bare_name(tmp_path, name):
    write(tmp_path / "base" / "b.yaml", "seed: 1\n")
    exp = tmp_path / "exp.yaml"
    write(exp, yaml.safe_dump({"base": name, "name": "exp"}))
    with pytest.raises(ConfigError, match=r"exp\.yaml: key 'base' must be the bare name of a file in .*base/"):
        load_config(exp)


def test_a_missing_base_names_the_folder_and_what_it_holds(tmp_path):
    write(tmp_path / "base" / "there.yaml", "seed: 1\n")
    exp = write(tmp_path / "exp.yaml", "base: absent\nname: exp\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml: key 'base': no base 'absent' .*does not exist; bases resolve only "
                                          r"in .*base/: there\)"):
        load_config(exp)


def test_a_base_cycle_is_refused(tmp_path):
    write(tmp_path / "base" / "a.yaml", "base: b\n")
    write(tmp_path / "base" / "b.yaml", "base: a\n")
    with pytest.raises(ConfigError, match=r"base/b\.yaml: key 'base': base 'a' makes a cycle \(exp\.yaml -> a\.yaml -> "
                                          r"b\.yaml -> a\.yaml\)"):
        load_config(write(tmp_path / "exp.yaml", "base: a\nname: exp\n"))
    write(tmp_path / "base" / "self.yaml", "base: self\n")
    with pytest.raises(ConfigError, match="makes a cycle"):
        load_config(write(tmp_path / "exp2.yaml", "base: self\nname: exp\n"))


def test_a_chain_deeper_than_the_limit_is_refused(tmp_path):
    for i in range(MAX_BASE_DEPTH + 1):
        write(tmp_path / "base" / f"b{i}.yaml", f"base: b{i + 1}\n" if i < MAX_BASE_DEPTH else "seed: 1\n")
    # exactly MAX_BASE_DEPTH bases: read
    exp = write(tmp_path / "exp.yaml", "base: b1\nname: exp\n")
    assert load_config(exp)["seed"] == 1 and len(config_files(exp)) == MAX_BASE_DEPTH + 1
    deep = write(tmp_path / "deep.yaml", "base: b0\nname: exp\n")
    with pytest.raises(ConfigError, match=rf"key 'base': more than {MAX_BASE_DEPTH} bases in the chain from .*deep\.yaml"):
        load_config(deep)


def test_a_dict_config_cannot_name_a_base():
    with pytest.raises(ConfigError, match=r"<dict>: key 'base': a config given as a dict cannot name a base"):
        load_config({"base": "syn", "name": "x"})


def test_an_empty_or_non_mapping_base_is_refused(tmp_path):
    write(tmp_path / "base" / "empty.yaml", "# nothing\n")
    with pytest.raises(ConfigError, match=r"base/empty\.yaml: the config file is empty"):
        load_config(write(tmp_path / "e.yaml", "base: empty\nname: exp\n"))
    write(tmp_path / "base" / "list.yaml", "- 1\n")
    with pytest.raises(ConfigError, match=r"base/list\.yaml: top level must be a mapping"):
        load_config(write(tmp_path / "l.yaml", "base: list\nname: exp\n"))
    write(tmp_path / "base" / "tag.yaml", "seed: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match=r"base/tag\.yaml: not valid YAML"):
        load_config(write(tmp_path / "t.yaml", "base: tag\nname: exp\n"))


def test_the_cli_refuses_a_bad_base_with_one_line(tmp_path, capsys):
    exp = write(tmp_path / "exp.yaml", "base: ../../etc/passwd\nname: exp\n")
    assert main(["train", str(exp), "--out-dir", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "exp.yaml: key 'base' must be the bare name" in err
    assert not (tmp_path / "out").exists()


def test_every_shipped_config_names_a_shipped_base_and_the_bases_are_few():
    bases = sorted((ROOT / "configs" / "base").glob("*.yaml"))
    configs = sorted((ROOT / "configs").glob("*.yaml"))
    assert 0 < len(bases) <= 10 and len(configs) > 6 * len(bases)
    for path in configs:
        chain = config_files(path)
        assert len(chain) >= 2 and all(p.parent == ROOT / "configs" / "base" for p in chain[:-1]), path


def test_a_changed_base_changes_the_synthetic_run_key(tmp_path, monkeypatch):
    from arface_repro.paper import synthetic_runs

    monkeypatch.setattr(synthetic_runs, "CONFIG_DIR", tmp_path)
    write(tmp_path / "base" / "b.yaml", "seed: 1\ntrain: {steps: 5}\n")
    write(tmp_path / "exp.yaml", "base: b\nname: exp\n")
    job = synthetic_runs.Job("exp", 0)
    before = synthetic_runs.run_key(job)
    assert synthetic_runs.run_key(job) == before
    write(tmp_path / "base" / "b.yaml", "seed: 1\ntrain: {steps: 6}\n")   # the experiment file is untouched
    assert synthetic_runs.run_key(job) != before
