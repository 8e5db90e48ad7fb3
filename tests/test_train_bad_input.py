"""Bad training input through the real CLI entry point: exit 2, one line naming the file or override and the key.

Nothing may train, write a checkpoint, print a traceback or advise unsafe loading. The per-key config values
(NaN learning rates, fractional batch sizes, unknown keys, import paths as model names, ...) are rows of the
one bad-input table, tests/test_bad_input_suite.py; what needs a run (divergence, corrupt records, MTCNN
weights) is here.
"""

from pathlib import Path

import pytest

from arface_repro.cli import main
from arface_repro.commands.paper import reproduce_table_main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
TINY = ["train.steps=2", "train.batch_size=8", "train.log_every=1", "data.synthetic.num_identities=4",
        "data.synthetic.images_per_identity=4", "data.val.num_identities=3", "data.val.images_per_identity=3",
        "data.val.num_pairs=10"]
BASE = "name: bad\nmodel: {name: tiny_resnet, kwargs: {channels: [8, 8, 16, 16], fast: true}}\n"

# The per-key config cases (bad values in a file or an override) are rows of the bad-input table:
# tests/test_bad_input_suite.py (TRAIN_CONFIG_CASES), run through the same CLI entry point.


def _one_line_error(capsys, rc, words, command="train"):
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"arface {command}: error: "), err
    assert "Traceback" not in err and "weights_only=False" not in err and "TRUST_PICKLE" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def test_config_file_not_utf8(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_bytes(b"name: caf\xe9\n")
    line = _one_line_error(capsys, main(["train", str(cfg), "--quiet"]), ["bad.yaml", "not UTF-8"])
    assert "offset 9" in line  # the message names where the bad byte is


def test_yaml_12_floats_are_numbers(tmp_path):
    from arface_repro.train.config import load_config

    cfg = tmp_path / "ok.yaml"
    cfg.write_text(BASE + "train: {lr: 1e-3, weight_decay: 5E-4}\n")
    t = load_config(cfg)["train"]
    assert t["lr"] == 0.001 and t["weight_decay"] == 0.0005


def test_non_finite_loss_stops_training_naming_the_step(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", str(ROOT / "configs" / "syn_plain.yaml"), *TINY, "train.steps=4", "train.lr=1.0e+30",
               "--out-dir", str(out), "--quiet"])
    line = _one_line_error(capsys, rc, ["loss is nan", "step 2 of 4", "train.lr"])
    assert "checkpoint" not in line  # none was written in this run
    assert not (out / "checkpoint_last.pt").exists()  # the diverged state is never saved


def test_garbage_resume_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "ck.pt"
    bad.write_bytes(bytes(range(256)) * 4)
    rc = main(["train", str(ROOT / "configs" / "syn_plain.yaml"), *TINY, "--out-dir", str(tmp_path / "r"),
               "--resume", str(bad), "--quiet"])
    line = _one_line_error(capsys, rc, [str(bad), "not a readable arface training checkpoint"])
    assert rc == 2 and not (tmp_path / "r" / "checkpoint_last.pt").exists()  # nothing trained or written
    assert "weights_only" not in line


@pytest.mark.parametrize("content", ["random", "text", "wrong-dict"])
def test_garbage_mtcnn_weights_is_one_line(tmp_path, capsys, shared, content):
    import torch
    from conftest import require

    src_root = require(shared / "data" / "lfw" / "deepfunneled-fold1")
    person = sorted(p for p in src_root.iterdir() if p.is_dir())[0]
    src = tmp_path / "src" / person.name
    src.mkdir(parents=True)
    first = sorted(person.iterdir())[0]
    (src / first.name).write_bytes(first.read_bytes())
    weights = tmp_path / "weights"
    weights.mkdir()
    for name in ("pnet", "rnet", "onet"):
        path = weights / f"{name}.pt"
        if content == "random":
            path.write_bytes(bytes((i * 37) % 256 for i in range(300)))
        elif content == "text":
            path.write_text("not weights\n")
        else:
            torch.save({"conv1.weight": torch.zeros(3)}, path)
    rc = main(["align", str(tmp_path / "src"), str(tmp_path / "dst"), "--weights", str(weights), "--quiet"])
    _one_line_error(capsys, rc, ["pnet.pt", "MTCNN"], command="align")
    assert not (tmp_path / "dst" / person.name / first.name).exists()


def test_reproduce_table_override_goes_through_validation(tmp_path, capsys):
    for override, words in (("train.lr=.nan", ["train.lr", "nan"]), ("train.batch_size=2.7", ["train.batch_size"]),
                            ("model.name=os:system", ["unknown model architecture"])):
        rc = reproduce_table_main(["XI", "--override", override, "--runs-dir", str(tmp_path / "runs"),
                                   "--tables-dir", str(tmp_path / "tables"), "--quiet"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert all(w in err for w in words) and f"override '{override}'" in err, err
        assert not list((tmp_path / "runs").glob("*.json"))  # nothing trained, nothing recorded


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_record_is_one_line_with_and_without_worker_processes(tmp_path, capsys, workers):
    import cv2
    import numpy as np

    from arface_repro.data.rec_writer import FaceRecWriter

    rng = np.random.default_rng(0)
    with FaceRecWriter(tmp_path / "bad", 16, 4) as w:
        for i in range(16):
            ok, buf = cv2.imencode(".jpg", rng.integers(0, 256, (112, 112, 3), dtype=np.uint8))
            w.add(i // 4, buf.tobytes() if i != 9 else b"\xff\xd8 not a jpeg")
    rc = main(["train", str(ROOT / "configs" / "syn_random.yaml"), "data.kind=rec", f"data.path={tmp_path / 'bad'}",
               f"data.num_workers={workers}", "train.batch_size=8", "train.steps=4", "--out-dir", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("arface train: error:")]
    assert rc == 2 and "Traceback" not in err and len(errors) == 1, err
    assert "bad.rec key 10: not a decodable image" in errors[0]
    assert not (tmp_path / "r" / "checkpoint_last.pt").exists()


def test_resume_with_a_foreign_metrics_log_is_one_line(tmp_path, capsys):
    """Resuming trims metrics.jsonl to the checkpoint's step; a log line that is not one of ours is named, not a
    JSON traceback."""
    out = tmp_path / "run"
    assert main(["train", str(ROOT / "configs" / "syn_plain.yaml"), *TINY, "--out-dir", str(out), "--quiet"]) == 0
    capsys.readouterr()
    (out / "metrics.jsonl").write_text('{"step": 1}\nnot json at all\n')
    rc = main(["train", str(ROOT / "configs" / "syn_plain.yaml"), *TINY, "train.steps=3", "--out-dir", str(out),
               "--resume", "--quiet"])
    _one_line_error(capsys, rc, ["metrics.jsonl", "not a metrics record"])
    assert (out / "metrics.jsonl").read_text() == '{"step": 1}\nnot json at all\n'  # left as it was
