"""`arface:CKPT`: a trained ARFace checkpoint embedded as the trainer does (Attention-Net argmax input mask +
backbone), its switches, its landmarks (padding, mirroring), and its ONNX export (same embeddings and the same LFW
accuracy on real LFW images through the `onnx:` backend)."""

import copy
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require

from arface_repro.cli import main as cli_main
from arface_repro.data.alignment import ARCFACE_112, SPHEREFACE_112x96, mirror_landmarks
from arface_repro.errors import ConfigError, FormatError, MissingDataError
from arface_repro.method.arface_inference import ARFaceInference
from arface_repro.models.backends import load_model, parse_spec
from arface_repro.train.loop import Trainer, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = {
    "name": "arface-tiny",
    "seed": 5,
    "model": {"name": "tiny_resnet", "kwargs": {"channels": [8, 8, 16, 16], "fast": True}},
    "method": {"kind": "arface", "patch_radius": 16, "num_layers": 1, "attention": {"lr": 0.05}},
    "data": {"synthetic": {"num_identities": 6, "images_per_identity": 4},
             "val": {"num_identities": 4, "images_per_identity": 4, "num_pairs": 20}},
    "train": {"steps": 16, "batch_size": 8, "quiet": True, "log_every": 0},
}


@pytest.fixture(scope="module")
def arface_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("arface") / "run"
    train({**CFG, "out_dir": str(out)})
    return out


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plain") / "run"
    train({**CFG, "out_dir": str(out), "method": {"kind": "plain"}, "train": {**CFG["train"], "steps": 2}})
    return out


@pytest.fixture(scope="module")
def trainer(arface_run):
    """The trainer itself, resumed from the checkpoint: the reference for `Trainer.embed`."""
    ck = torch.load(arface_run / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    cfg = copy.deepcopy(ck["config"])
    cfg["train"]["resume"] = str(arface_run / "checkpoint_last.pt")
    tr = Trainer(cfg)
    yield tr
    tr.close()


def rand_images(n, h=112, w=112, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def jittered(template, n, seed=1, sd=4.0):
    return (np.asarray(template)[None] + np.random.default_rng(seed).normal(0, sd, (n, 5, 2))).astype(np.float32)


def unit(f):
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def test_embeddings_are_exactly_the_trainers(arface_run, trainer):
    model = load_model(f"arface:{arface_run}", device="cpu")
    assert model.kind == "arface" and model.uses_landmarks and model.attention_mask == "argmax"
    assert model.identity()["attention_mask"] == "argmax"
    assert model.preprocess.mean == (128.0,) * 3 and model.preprocess.std == (128.0,) * 3  # the config's (paper's)
    imgs = rand_images(12)
    lms = jittered(ARCFACE_112, 12)
    want, modes = trainer.embed(imgs, lms)
    got = model.embed(imgs, lms)
    assert np.array_equal(got, want)  # bit for bit: same normalisation, boxes, argmax, mask, backbone
    assert np.array_equal(model.modes(imgs, lms), modes)
    want_t, _ = trainer.embed(imgs, np.broadcast_to(ARCFACE_112, (12, 5, 2)).copy())
    assert np.array_equal(model.embed(imgs), want_t)  # no landmarks: the 112×112 template
    # the mask is what makes it ARFace: the backbone alone on the unmasked input differs
    off = load_model(f"arface:{arface_run}/checkpoint_last.pt,mask=off", device="cpu")
    assert off.attention_mask == "off" and not off.uses_landmarks and off.identity()["attention_mask"] == "off"
    with torch.no_grad():
        plain = trainer.fnet.eval().backbone(torch.from_numpy(off.preprocess(imgs)).permute(0, 3, 1, 2).contiguous())
    trainer.fnet.train()
    assert np.array_equal(off.embed(imgs, lms), plain.numpy())
    assert not np.allclose(off.embed(imgs), got)
    assert model.identity() != off.identity()  # so embedding caches and records tell them apart


def test_padded_crops_and_flipped_images_get_their_own_landmarks(arface_run, trainer):
    model = load_model(f"arface:{arface_run}", device="cpu")
    imgs96 = rand_images(6, 112, 96, seed=3)
    lm96 = jittered(SPHEREFACE_112x96, 6, seed=4, sd=6.0)
    padded = np.pad(imgs96, ((0, 0), (0, 0), (8, 8), (0, 0)))
    shift = np.array([8.0, 0.0], np.float32)
    want, _ = trainer.embed(padded, lm96 + shift)
    assert np.array_equal(model.embed(imgs96, lm96), want)  # landmarks follow the 8-column padding
    want_t, _ = trainer.embed(padded, np.broadcast_to(ARCFACE_112, (6, 5, 2)).copy())
    assert np.array_equal(model.embed(imgs96), want_t)  # SphereFace template + 8 = ArcFace template
    flipped = imgs96[:, :, ::-1]
    mlm = mirror_landmarks(lm96, 96)
    want_f, modes_f = trainer.embed(np.pad(flipped, ((0, 0), (0, 0), (8, 8), (0, 0))), mlm + shift)
    assert np.array_equal(model.embed(flipped, mlm), want_f)
    assert np.array_equal(model.modes(flipped, mlm), modes_f)


def test_spec_forms_and_switches(arface_run, plain_run, tmp_path):
    ck = arface_run / "checkpoint_last.pt"
    assert parse_spec(f"arface:{arface_run}") == ("arface", None, ck)
    assert parse_spec(f"arface:{ck},mask=off") == ("arface", "mask=off", ck)
    a, b = load_model(f"arface:{arface_run}"), load_model(f"arface:{ck},mask=on")
    assert a.file_sha256 == b.file_sha256 and a.identity()["attention_mask"] == b.identity()["attention_mask"] == "argmax"
    with pytest.raises(ConfigError, match="unknown arface option 'masks'"):
        parse_spec(f"arface:{ck},masks=off")
    with pytest.raises(ConfigError, match="mask=on|off"):
        load_model(f"arface:{ck},mask=maybe")
    with pytest.raises(MissingDataError, match="checkpoint_last.pt"):
        load_model(f"arface:{tmp_path}")
    # a run without an Attention-Net: the backbone alone, and it says so
    plain = load_model(f"arface:{plain_run}")
    assert plain.attention_mask == "none (no Attention-Net: method plain)" and not plain.uses_landmarks
    assert plain.identity()["attention_mask"].startswith("none")
    assert plain.embed(rand_images(2)).shape == (2, 64)
    with pytest.raises(ConfigError, match="no Attention-Net"):
        load_model(f"arface:{plain_run},mask=on")


def test_bad_inputs_are_one_line_errors(arface_run, tmp_path):
    model = load_model(f"arface:{arface_run}")
    with pytest.raises(ConfigError, match=r"landmarks must be 2×5×2"):
        model.embed(rand_images(2), np.zeros((3, 5, 2), np.float32))
    with pytest.raises(ConfigError, match="finite"):
        model.embed(rand_images(1), np.full((1, 5, 2), np.nan, np.float32))
    with pytest.raises(ConfigError, match="no 5-point template"):
        load_model(f"arface:{arface_run}", preprocess="fit=resize").embed(rand_images(1, 100, 100))
    resized = load_model(f"arface:{arface_run}", preprocess="fit=resize")  # explicit landmarks are scaled with it
    assert resized.embed(rand_images(1, 100, 100), jittered(ARCFACE_112 * 100 / 112, 1)).shape == (1, 64)
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    with pytest.raises(FormatError, match="not a readable arface training checkpoint"):
        load_model(f"arface:{tmp_path / 'text.pt'}")
    torch.save({"backbone.w": torch.zeros(1)}, tmp_path / "sd.pt")
    with pytest.raises(FormatError, match="not an arface training checkpoint"):
        load_model(f"arface:{tmp_path / 'sd.pt'}")


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_planted_checkpoint_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"format": "arface-train-checkpoint/2", "config": {}, "step": 0, "x": Payload(marker)},
               run / "checkpoint_last.pt", pickle_protocol=2)
    with pytest.raises(FormatError, match="never unpickled"):
        load_model(f"arface:{run}")
    (tmp_path / "p.pt").write_bytes(pickle.dumps(Payload(marker), protocol=2))
    with pytest.raises(FormatError):
        load_model(f"arface:{tmp_path / 'p.pt'}")
    assert not marker.exists()


def test_inference_module_keep_table_is_the_trainers():
    from arface_repro.method.patches import NUM_MODES, modes_to_keep, patch_boxes, patch_boxes_torch

    net = ARFaceInference(torch.nn.Identity())
    modes = torch.arange(NUM_MODES)
    assert torch.equal(net.keep_table[modes], modes_to_keep(modes))
    lm = jittered(ARCFACE_112, 64, seed=9, sd=40.0)  # many clipped and half-way cases
    lm[:8] = np.round(lm[:8]) + 0.5  # exact .5 cases of the half-up rounding
    # bitwise on purpose: the product promises the same integers (element-wise float64 subtract, add, floor and
    # clip are correctly rounded in any implementation; no reduction, no BLAS), which ONNX export relies on
    for r in (16, 30, 29.5):
        assert np.array_equal(patch_boxes_torch(torch.from_numpy(lm), r, 112, 112).numpy(), patch_boxes(lm, r, 112, 112))


# ------------------------------------------------------------------ ONNX and LFW


def lfw_subset(shared: Path, tmp_path: Path, per_class: int = 30) -> Path:
    """2 × `per_class` genuine and as many impostor pairs of LFW View 2 as a 10-fold pairs.txt (the protocol's
    fold structure): the first per_class // 5 genuine and impostor pairs of each of its 10 folds."""
    lines = require(shared / "data/lfw/pairs.txt").read_text().splitlines()
    body = lines[1:]
    n = per_class // 5
    keep = []
    for fold in range(10):
        block = body[fold * 600:(fold + 1) * 600]
        keep += block[:n] + block[300:300 + n]
    out = tmp_path / "pairs_subset.txt"
    out.write_text(f"10\t{n}\n" + "\n".join(keep) + "\n")
    return out


def test_onnx_export_gives_the_same_embeddings_and_lfw_accuracy(shared, arface_run, tmp_path, capsys):
    from arface_repro.eval.embed import extract_features
    from arface_repro.eval.run import evaluate_store

    root = require(shared / "data/lfw/aligned-112x96")
    pairs = lfw_subset(shared, tmp_path, per_class=20)
    spec = f"arface:{arface_run}/checkpoint_last.pt"
    assert cli_main(["export-onnx", "--model", spec, "-o", str(tmp_path / "a.onnx")]) == 0
    assert "inputs: input, landmarks; attention mask: argmax" in capsys.readouterr().out
    assert cli_main(["export-onnx", "--model", spec, "--fixed-template", "-o", str(tmp_path / "t.onnx")]) == 0
    onnx_lm, onnx_t = load_model(f"onnx:{tmp_path / 'a.onnx'}"), load_model(f"onnx:{tmp_path / 't.onnx'}")
    torch_model = load_model(spec, device="cpu")
    assert onnx_lm.uses_landmarks and not onnx_t.uses_landmarks
    assert onnx_lm.preprocess == onnx_t.preprocess == torch_model.preprocess  # named in the file's metadata

    from arface_repro.eval.pair_sets.verification import load_pair_protocol

    paths = load_pair_protocol("lfw", pairs, root).unique_paths()
    stores = {name: extract_features(m, root, paths, flip=True, workers=0, quiet=True)
              for name, m in (("torch", torch_model), ("onnx", onnx_lm), ("onnx-template", onnx_t))}
    ref = stores["torch"]
    for name in ("onnx", "onnx-template"):
        s = stores[name]
        assert np.abs(unit(s.features) - unit(ref.features)).max() < 1e-4, name
        assert np.abs(unit(s.flip_features) - unit(ref.flip_features)).max() < 1e-4, name
    acc = {name: evaluate_store("lfw", s, pairs=pairs, data_root=root)["metrics"] for name, s in stores.items()}
    assert acc["onnx"] == acc["torch"] == acc["onnx-template"]
    # explicit landmarks reach the exported graph too (real crops, SphereFace-template landmarks moved a little)
    import cv2

    imgs = np.stack([cv2.imread(str(root / p))[:, :, ::-1] for p in paths[:16]])
    lm = jittered(SPHEREFACE_112x96, 16, seed=7, sd=5.0)
    assert np.abs(unit(onnx_lm.embed(imgs, lm)) - unit(torch_model.embed(imgs, lm))).max() < 1e-4
    assert not np.allclose(torch_model.embed(imgs, lm), torch_model.embed(imgs), atol=1e-4)  # they are used


def test_evaluate_command_end_to_end(shared, arface_run, tmp_path, capsys):
    root = require(shared / "data/lfw/aligned-112x96")
    pairs = lfw_subset(shared, tmp_path, per_class=15)
    out = tmp_path / "rec.json"
    assert cli_main(["evaluate", "--protocol", "lfw", "--model", f"arface:{arface_run}/checkpoint_last.pt",
                     "--data-root", str(root), "--pairs", str(pairs), "--out", str(out), "--cache-dir", "none",
                     "--workers", "0", "--quiet"]) == 0
    rec = json.loads(out.read_text())
    assert rec["model"].startswith("arface:") and 0.0 <= rec["metrics"]["Acc"] <= 100.0
