"""Configs: every YAML under configs/ loads; overrides; unknown keys rejected; the CLI trains a tiny run."""

import json
from pathlib import Path

import pytest

from arface_repro.cli import main
from arface_repro.errors import ConfigError
from arface_repro.train.config import load_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_every_config_loads_and_matches_its_name():
    assert len(CONFIGS) >= 30
    for path in CONFIGS:
        cfg = load_config(path)
        assert cfg["name"] == path.stem
        m = cfg["method"]
        if "arface_l" in path.stem:
            assert m["kind"] == "arface" and m["num_layers"] == int(path.stem.split("_l")[-1].split("_")[0])
        if path.stem.startswith(("mfn_", "r50_")):
            assert m["patch_radius"] == 30 and m["baseline_decay"] == 0.99
        if cfg["head"]["name"] == "amsoftmax":
            assert cfg["head"]["kwargs"] == {"s": 30.0, "m": 0.4}


def test_overrides_and_errors(tmp_path):
    cfg = load_config(None, ["train.steps=7", "method.kind=arface", "model.kwargs.embedding_size=64"])
    assert cfg["train"]["steps"] == 7 and cfg["method"]["kind"] == "arface" and cfg["model"]["kwargs"] == {"embedding_size": 64}
    with pytest.raises(ConfigError, match="stepz"):
        load_config(None, ["train.stepz=7"])
    with pytest.raises(ConfigError, match="method.kind"):
        load_config({"method": {"kind": "magic"}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {lr: 0.1, nope: 1}\n")
    with pytest.raises(ConfigError, match="nope"):
        load_config(bad)


def test_cli_train_runs_and_writes_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", str(CONFIGS[0].parent / "syn_dropblock.yaml"), "train.steps=3", "train.log_every=1", "train.batch_size=16",
               "data.synthetic.num_identities=6", "data.synthetic.images_per_identity=4", "data.val.num_identities=4",
               "data.val.images_per_identity=3", "data.val.num_pairs=10", "--out-dir", str(out), "--quiet"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= printed["metrics"]["val_accuracy"] <= 100
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "loss" in x] == [1, 2, 3] and "eval" in lines[-1]
    assert (out / "checkpoint_last.pt").is_file()
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2


def test_train_and_evaluate_api(tmp_path):
    from arface_repro.train.api import train_and_evaluate

    m = train_and_evaluate(CONFIGS[0].parent / "syn_arface_l1.yaml", ["train.steps=2", "train.batch_size=8", "train.quiet=true",
                           "data.synthetic.num_identities=4", "data.synthetic.images_per_identity=4", "data.val.num_identities=3",
                           "data.val.images_per_identity=3", "data.val.num_pairs=8"], out_dir=tmp_path / "api")
    assert m["steps"] == 2 and 0 <= m["val_accuracy"] <= 100 and len(m["drop_rate"]) == 5
    assert m["checkpoint"].endswith("checkpoint_last.pt") and m["final_loss"] > 0
