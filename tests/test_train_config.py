"""Configs: every YAML under configs/ loads; overrides; unknown keys rejected; the CLI trains a tiny run."""

import json
from pathlib import Path

import pytest

from arface_repro.cli import main
from arface_repro.errors import ConfigError
from arface_repro.train.config import config_files, load_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
PAPER = [c for c in CONFIGS if not c.stem.startswith("syn_")]

MFN_ROWS = ["plain", "random", "arface_input", "arface_l3", "arface_l5", "cutout", "dropblock", "pickpatch_l3",
            "arface_l1", "arface_l2", "arface_l4"]
R50_ROWS = ["plain", "random", "arface_input", "arface_l1", "arface_l3", "arface_l5", "arface_l7", "arface_l9",
            "arface_l12", "cutout", "dropblock", "pickpatch_l9"]
EXPECTED = ([f"mfn_{r}" for r in MFN_ROWS] + [f"r50_{r}" for r in R50_ROWS]
            + [f"r50full_{r}" for r in ("plain", "random", "arface_input", "arface_l9", "arface_l12", "pickpatch_l9")]
            + [f"r50glint_{r}" for r in ("plain", "pickpatch_l9", "arface_l9")]
            + [f"r50_{h}_{k}" for h in ("softmax", "sphereface", "cosface", "arcface", "amsoftmax") for k in ("plain", "arface")])
DATA = {"mfn": "datasets/vggface2_subset50/train", "r50": "datasets/vggface2_subset50/train",
        "r50full": "datasets/vggface2/train", "r50glint": "datasets/ms1mv2_glint/train"}


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


def test_the_paper_config_set_is_complete():
    assert sorted(c.stem for c in PAPER) == sorted(EXPECTED)


def _expected_method(row: str) -> tuple[str, int]:
    if row.startswith("pickpatch_l"):  # PickPatch: uniform modes on the input and num_layers feature maps
        return "random", int(row.split("_l")[1])
    if row.startswith("arface_l"):
        return "arface", int(row.split("_l")[1])
    return {"plain": ("plain", 0), "random": ("random", 0), "arface_input": ("arface", 0), "cutout": ("cutout", 0),
            "dropblock": ("dropblock", 0), "arface": ("arface", 9)}[row]


def test_paper_configs_hold_the_papers_settings():
    for path in PAPER:
        cfg = load_config(path)
        lines = [ln for f in config_files(path) for ln in f.read_text().splitlines()]  # deepest base first
        block, row = path.stem.split("_", 1)
        m, d, t = cfg["method"], cfg["data"], cfg["train"]
        heads = ("softmax", "sphereface", "cosface", "arcface", "amsoftmax")
        head = row.split("_", 1)[0] if row.split("_", 1)[0] in heads else "amsoftmax"
        if head != "amsoftmax" or row.startswith("amsoftmax_"):
            row = row.split("_", 1)[1]
        assert cfg["head"]["name"] == head, path
        kind, layers = _expected_method(row)
        assert (m["kind"], m["num_layers"]) == (kind, layers), path
        # normalisation, REINFORCE, baseline order, patch and regulariser settings as the paper states them
        assert (d["pixel_mean"], d["pixel_std"]) == (128.0, 128.0), path
        assert m["reward"] == "batch" and m["entropy_weight"] == 1.0e-4 and m["baseline_update"] == "before", path
        assert m["baseline_decay"] == 0.99 and m["p_layer"] == 0.5 and m["patch_radius"] == 30, path
        assert m["layer_draw"] == "per_batch" and m["inference_mask"] is True, path
        assert m["cutout_size"] == 16, path
        assert m["dropblock"] == {"block_size": 7, "final_keep_prob": 0.75, "stages": ["stage3", "stage4"]}, path
        assert d["kind"] == "rec" and d["path"] == DATA[block], path
        if block == "mfn":
            assert cfg["model"] == {"name": "mobilefacenet", "kwargs": {"embedding_size": 128}}, path
            assert m["num_layers"] <= 12  # MobileFaceNet's residual blocks
        else:
            # the paper's ResNet50: max-pool / 1x1-conv shortcuts, BN-Dropout-FC-BN = face.evoLVe's IR-50
            assert cfg["model"]["name"] == "ir50" and cfg["model"]["kwargs"]["embedding_size"] == 512, path
            assert 0.0 < cfg["model"]["kwargs"]["dropout"] < 1.0, path  # BN-Dropout-FC-BN with a non-zero rate
        # where the paper is silent, the value is marked as a choice (on the line of the file that sets it last)
        for key in ("batch_size", "steps", "lr", "schedule", "optimizer"):
            line = [ln for ln in lines if ln.strip().startswith(f"{key}:")][-1]
            assert "(choice)" in line, (path, line)
        assert t["batch_size"] == 512 and t["steps"] >= 28000


def test_paper_configs_build_their_models_and_fit_them():
    """Each distinct (model, method) of the paper configs builds, and num_layers / DropBlock stages fit the backbone."""
    import torch

    from arface_repro.train.loop import build_backbone, check_backbone_fits

    seen = {}
    for path in PAPER:
        cfg = load_config(path)
        key = (cfg["model"]["name"], str(cfg["model"]["kwargs"]))
        if key not in seen:
            torch.manual_seed(0)
            seen[key] = build_backbone(cfg)
        check_backbone_fits(seen[key], cfg)
    r50 = next(b for (name, _), b in seen.items() if name == "ir50")
    drop = [m for m in r50.modules() if isinstance(m, torch.nn.Dropout)]
    assert [d.p for d in drop] == [0.4] and len(r50.mask_points) >= 12


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
