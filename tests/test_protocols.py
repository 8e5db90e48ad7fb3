"""The protocol registry, its YAML definitions, the README table, and `arface evaluate`'s help."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from arface_repro.cli import main
from arface_repro.errors import ConfigError
from arface_repro.eval.protocols import get_protocol, protocol_names
from arface_repro.eval.protocols.spec import load_spec, parse_spec, protocol_table, spec_names
from arface_repro.shared_data import REPO_ROOT, protocols_dir

EXPECTED = ["lfw", "calfw", "cplfw", "cfp-fp", "cfp-ff", "agedb30", "bin", "blufr", "ijbb", "ijbc", "ijbb-1n",
            "ijbc-1n", "megaface", "trillion", "ytf", "rmfrd"]


def test_every_protocol_has_one_class_and_one_definition():
    assert protocol_names() == EXPECTED
    assert sorted(spec_names()) == sorted(EXPECTED)
    for n in EXPECTED:
        cls = get_protocol(n)
        spec = load_spec(n)
        assert cls.name == spec.name == n and cls.summary
        assert spec.path.parent == protocols_dir()
        # the --rule choices the class offers are the definition's rules
        rule = next((a for a in cls.parser()._actions if a.dest == "rule"), None)
        if rule is not None:
            assert tuple(rule.choices) == spec.rules or set(rule.choices) == set(spec.rules), n
        else:
            assert spec.alternative_rules == (), n
    with pytest.raises(ConfigError, match="unknown protocol 'nope'"):
        get_protocol("nope")


def test_readme_protocol_table_matches_the_definitions():
    table = protocol_table(EXPECTED)
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert table in readme, "README's protocol table is out of date; replace it with:\n" + table


@pytest.mark.parametrize("bad,msg", [
    ({"extra": 1}, "unknown key"),
    ({"layout": {"pairs": "/abs/pairs.txt"}}, "relative"),
    ({"layout": {"pairs": "../pairs.txt"}}, "relative"),
    ({"rule": {"default": "a", "alternatives": ["a"]}}, "must not repeat the default"),
    ({"reference": {"name": "x", "where": "y", "status": "maybe"}}, "status must be one of"),
    ({"metrics": []}, "non-empty list"),
    ({"name": "other"}, "differs from the file name"),
])
def test_definition_validation(bad, msg, tmp_path):
    good = yaml.safe_load((protocols_dir() / "lfw.yaml").read_text())
    path = tmp_path / "lfw.yaml"
    with pytest.raises(ConfigError, match=msg):
        parse_spec(path, {**good, **bad})
    parse_spec(path, good)


def test_help_lists_every_protocol_and_each_protocol_shows_only_its_options(capsys):
    assert main(["evaluate", "--help"]) == 0
    out = capsys.readouterr().out
    for n in EXPECTED:
        assert re.search(rf"^  {re.escape(n)}\s", out, re.M), n
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--protocol", "ijbc", "--help"])
    assert e.value.code == 0
    ijbc = capsys.readouterr().out
    assert "--meta-dir" in ijbc and "--curve-points" in ijbc and "--pooling" not in ijbc and "--config" not in ijbc
    assert "insightface ijb_11.py" in ijbc  # the reference it matches
    with pytest.raises(SystemExit):
        main(["evaluate", "--protocol", "lfw", "--help"])
    lfw = capsys.readouterr().out
    assert "--pairs" in lfw and "--meta-dir" not in lfw and "--max-memory-gb" not in lfw
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--protocol", "lfw", "--meta-dir", "x"])  # another protocol's option
    assert e.value.code == 2
    assert main(["evaluate", "--features", "x.npz"]) == 2
    assert "--protocol is required" in capsys.readouterr().err
    assert main(["evaluate", "--protocol", "trillion", "--model", "onnx:m.onnx", "--data-root", "."]) == 2
    assert "no images to embed" in capsys.readouterr().err


def test_files_come_from_the_layout(tmp_path, capsys):
    """`--data-root` alone finds the protocol's files; a missing one is named."""
    assert main(["evaluate", "--protocol", "ijbc", "--features", str(tmp_path / "f.npz"),
                 "--data-root", str(tmp_path)]) == 2
    assert "f.npz: feature store not found" in capsys.readouterr().err
    np.savez(tmp_path / "f.npz", features=np.ones((1, 4), np.float32), paths=np.array(["1.jpg"]))
    assert main(["evaluate", "--protocol", "ijbc", "--features", str(tmp_path / "f.npz"),
                 "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(Path(tmp_path) / "meta" / "ijbc_template_pair_label.txt") in err or "ijbc_face_tid_mid.txt" in err


def test_evaluate_store_api_runs_a_protocol(tmp_path):
    from arface_repro.eval.run import PROTOCOLS, evaluate_store
    from arface_repro.io.feature_store import FeatureStore
    from arface_repro.io.pairs import lfw_image

    assert PROTOCOLS == tuple(EXPECTED)
    rng = np.random.default_rng(0)
    lines, paths = ["10\t1"], set()  # 10 folds of one matched + one mismatched pair
    for k in range(10):
        lines.append(f"P{k}\t1\t2")
        lines.append(f"P{k}\t1\tQ{k}\t1")
        paths |= {lfw_image(f"P{k}", 1), lfw_image(f"P{k}", 2), lfw_image(f"Q{k}", 1)}
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    paths = sorted(paths)
    store = FeatureStore(rng.standard_normal((len(paths), 8)).astype(np.float32), paths)
    rec = evaluate_store("lfw", store, pairs=tmp_path / "pairs.txt", model="toy")
    assert rec["protocol"] == "lfw" and rec["model"] == "toy" and rec["rule"] == "insightface"
    assert rec["reference"]["name"] == "insightface verification.py"
    with pytest.raises(ConfigError, match="unknown option"):
        evaluate_store("lfw", store, nonsense=1)
