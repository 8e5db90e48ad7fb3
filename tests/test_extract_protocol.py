"""Extraction for protocols: alignment by 5 points, landmarks for models that use them, and `--model` end to end
(IJB loose crops through the shared ONNX MobileFaceNet)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import require

from arface_repro.data.alignment import ARCFACE_112, align_face, mirror_landmarks
from arface_repro.data.face_datasets import write_landmarks_file
from arface_repro.eval import large_scale_synthetic as synth
from arface_repro.eval.embed import extract_features, fit_landmarks, landmarks_source
from arface_repro.models.embedding_model import EmbeddingModel
from arface_repro.models.preprocess import Preprocess


class LandmarkModel(EmbeddingModel):
    """A model that takes landmarks: it records them and lets them move its output."""

    kind = "test"
    uses_landmarks = True

    def __init__(self):
        super().__init__("test:landmarks", Preprocess(size=(112, 112)), "0" * 64)
        self.seen = []

    def embed(self, batch, landmarks=None):
        self.seen.append((batch.shape, None if landmarks is None else np.array(landmarks)))
        x = batch.reshape(len(batch), -1)[:, :8].astype(np.float32) + 1
        if landmarks is not None:
            x[:, :2] += landmarks[:, 0, :]
        return x


class PlainModel(EmbeddingModel):
    """An ordinary backend: `embed(batch)` only (no landmarks argument)."""

    kind = "test"

    def __init__(self):
        super().__init__("test:plain", Preprocess(size=(112, 112)), "1" * 64)

    def embed(self, batch):
        return batch.reshape(len(batch), -1)[:, :8].astype(np.float32) + 1


def _images(root: Path, names, hw=(112, 96), seed=0):
    rng = np.random.default_rng(seed)
    for n in names:
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / n), rng.integers(0, 255, (*hw, 3), dtype=np.uint8))


def test_landmarks_from_a_file_are_fitted_and_mirrored(tmp_path):
    names = ["a/1.png", "a/2.png", "b/1.png"]
    _images(tmp_path, names)
    rng = np.random.default_rng(1)
    lms = {n: (ARCFACE_112 - [8, 0] + rng.uniform(-2, 2, (5, 2))).astype(np.float32) for n in names}
    write_landmarks_file(tmp_path / "landmarks.txt", lms.items())
    m = LandmarkModel()
    lm, info = landmarks_source(type("O", (), {"landmarks": None})(), tmp_path)
    assert info["source"] == "<data-root>/landmarks.txt" and len(info["sha256"]) == 64
    store = extract_features(m, tmp_path, names, workers=0, quiet=True, landmarks=lm, landmarks_sha256=info["sha256"])
    shape, seen = m.seen[0]
    assert shape == (6, 112, 112, 3)  # 112x96 crops padded by 8 columns each side; originals then mirrors
    fitted = np.stack([np.asarray([[float(f"{v:.4f}") for v in p] for p in lms[n]], np.float32) + [8, 0]
                       for n in names])
    np.testing.assert_allclose(seen[:3], fitted, atol=1e-4)
    np.testing.assert_allclose(seen[3:], mirror_landmarks(seen[:3], 112), atol=0)
    assert store.features.shape == (3, 8) and not np.array_equal(store.features, store.flip_features)
    # the landmarks are part of the cache key: a changed file is a cache miss
    cache = tmp_path / "cache"
    a = extract_features(m, tmp_path, names, workers=0, quiet=True, cache_dir=cache, landmarks=lm,
                         landmarks_sha256="x" * 64)
    b = extract_features(m, tmp_path, names, workers=0, quiet=True, cache_dir=cache, landmarks=lm,
                         landmarks_sha256="y" * 64)
    assert a.meta["cache"] == "miss" and b.meta["cache"] == "miss"
    c = extract_features(m, tmp_path, names, workers=0, quiet=True, cache_dir=cache, landmarks=lm,
                         landmarks_sha256="y" * 64)
    assert c.meta["cache"] == "hit"
    # a plain model is never given landmarks
    p = extract_features(PlainModel(), tmp_path, names, workers=0, quiet=True, landmarks=lm, landmarks_sha256="z")
    assert p.features.shape == (3, 8)
    # without a file: the template (None)
    (tmp_path / "landmarks.txt").unlink()
    assert landmarks_source(type("O", (), {"landmarks": None})(), tmp_path)[1]["source"] == "template"


def test_fit_landmarks_resize():
    pre = Preprocess(size=(112, 112), fit="resize")
    lm = np.array([[0, 0], [55.5, 27.5], [111, 55], [10, 10], [20, 20]], np.float32)
    out = fit_landmarks(lm, (56, 112), pre)  # height doubled
    np.testing.assert_allclose(out[:, 0], lm[:, 0])
    np.testing.assert_allclose(out[:, 1], (lm[:, 1] + 0.5) * 2 - 0.5)


def test_alignment_gives_the_warped_points(tmp_path):
    names = ["loose_crop/1.jpg", "loose_crop/2.jpg"]
    _images(tmp_path, names, hw=(180, 160))
    ang = np.deg2rad([10, -20])
    src = []
    for a, s, t in zip(ang, (1.3, 0.8), ([20, 30], [5, 9])):
        r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        src.append(ARCFACE_112 @ r.T * s + t)
    src = np.asarray(src, np.float32)
    m = LandmarkModel()
    store = extract_features(m, tmp_path, names, workers=0, quiet=True, align=src, flip=False)
    shape, seen = m.seen[0]
    assert shape == (2, 112, 112, 3)
    np.testing.assert_allclose(seen, np.stack([ARCFACE_112] * 2), atol=2e-3)  # the points land on the template
    img = cv2.imread(str(tmp_path / names[0]))[:, :, ::-1]
    crop, _ = align_face(img, src[0])
    np.testing.assert_array_equal(store.features[0, :2], crop.reshape(-1)[:2].astype(np.float32) + 1 + seen[0, 0])


def _tiny_ijb(root: Path, n_images: int = 12):
    data = synth.synth_ijb(n_images=n_images, n_templates=6, n_pairs=9, n_subjects=3, seed=2)
    rng = np.random.default_rng(3)
    src = []
    (root / "loose_crop").mkdir(parents=True)
    for name in data.images.tolist():
        cv2.imwrite(str(root / "loose_crop" / name), rng.integers(0, 255, (150, 130, 3), dtype=np.uint8))
        src.append(ARCFACE_112 * 1.1 + rng.uniform(0, 10, 2))
    data.landmarks = np.asarray(src, np.float32)
    synth.write_ijb(root, data, np.ones((n_images, 4), np.float32), None, "ijbc")
    return data


def test_ijbc_with_a_model_end_to_end(shared, tmp_path):
    """`--protocol ijbc --model SPEC --data-root DIR`: loose crops aligned by their 5 points, embedded, scored."""
    from arface_repro.cli import main
    from arface_repro.io.feature_store import load_feature_store
    from arface_repro.models.backends import load_model

    spec = f"onnx:{require(shared / 'models/mobilefacenet-expo/MobileFaceNet.onnx')}"
    data = _tiny_ijb(tmp_path)
    out, feats = tmp_path / "rec.json", tmp_path / "feats.npz"
    assert main(["evaluate", "--protocol", "ijbc", "--model", spec, "--data-root", str(tmp_path), "--workers", "0",
                 "--cache-dir", "none", "--save-features", str(feats), "--out", str(out), "--quiet"]) == 0
    rec = json.loads(out.read_text())
    assert rec["model"] == spec and rec["model_info"]["sha256"] and rec["extraction"]["aligned"] is True
    assert rec["landmarks"]["source"] == "unused" and rec["flip"] == "add"
    assert len(rec["metrics"]) == 6 and rec["counts"]["pairs"] == 9
    store = load_feature_store(feats)
    assert store.paths.tolist() == [f"loose_crop/{n}" for n in data.images.tolist()]
    from arface_repro.eval.ijb.meta import load_ijb_meta

    m = load_model(spec)
    meta_lm = load_ijb_meta(tmp_path / "meta", "ijbc").landmarks  # as written (2 decimals)
    crops = np.stack([align_face(cv2.imread(str(tmp_path / p))[:, :, ::-1], lm)[0] for p, lm in
                      zip(store.paths.tolist(), meta_lm)])
    np.testing.assert_allclose(store.features, m.embed(crops), atol=1e-5)
    np.testing.assert_allclose(store.flip_features, m.embed(np.ascontiguousarray(crops[:, :, ::-1])), atol=1e-5)


def _write_random(root: Path, rels, seed: int, hw=(112, 112)):
    rng = np.random.default_rng(seed)
    for r in rels:
        (root / r).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / r), rng.integers(0, 255, (*hw, 3), dtype=np.uint8))


@pytest.mark.parametrize("protocol", ["megaface", "ytf", "rmfrd"])
def test_model_extraction_for_image_protocols(protocol, shared, tmp_path):
    """`--model` finds each protocol's images under --data-root (layout in protocols/<name>.yaml)."""
    from arface_repro.cli import main
    from arface_repro.eval.megaface import devkit as dk

    spec = f"onnx:{require(shared / 'models/mobilefacenet-expo/MobileFaceNet.onnx')}"
    args = []
    if protocol == "megaface":
        ids = [f"P{i}" for i in (0, 0, 0, 1, 1, 2, 2)]
        fs = [f"{p}/{p}_{k}.png" for k, p in enumerate(ids)]
        md = [f"000/u{k}@N00/{k}_0.jpg" for k in range(20)]
        (tmp_path / "devkit/templatelists").mkdir(parents=True)
        dk.write_facescrub_list(tmp_path / "devkit/templatelists/facescrub_features_list.json", ids, fs)
        dk.write_megaface_list(tmp_path / "devkit/templatelists/megaface_features_list.json_1000000_1", md)
        _write_random(tmp_path, [f"FaceScrub/{p}" for p in fs] + [f"MegaFace/{p}" for p in md], 1)
        args = ["--noise-rule", "none", "--sizes", "10,20"]
        n_images, key = 27, "Id@20"
    elif protocol == "ytf":
        lines = []
        for s in range(1, 11):
            lines += [f"{s}, {2 * s - 1}, A/0, A/1, 1", f"{s}, {2 * s}, A/0, B/0, 0"]
        (tmp_path / "splits.txt").write_text("\n".join(lines) + "\n")
        _write_random(tmp_path, [f"aligned_images_DB/{v}/aligned_detect_{k}.jpg" for v in ("A/0", "A/1", "B/0")
                                 for k in range(2)], 2)
        n_images, key = 6, "YTF"
    else:
        _write_random(tmp_path, [f"AFDB_masked_face_dataset/p{i}/m.jpg" for i in range(3)]
                      + [f"AFDB_face_dataset/p{i}/u{k}.jpg" for i in range(3) for k in range(2)], 3)
        n_images, key = 9, "Rank-1"
    out = tmp_path / "rec.json"
    assert main(["evaluate", "--protocol", protocol, "--model", spec, "--data-root", str(tmp_path), "--workers", "0",
                 "--cache-dir", "none", "--flip", "none", "--out", str(out), "--quiet", *args]) == 0
    rec = json.loads(out.read_text())
    assert rec["model"] == spec and rec["extraction"]["images"] == n_images and rec["extraction"]["flip_pass"] is False
    assert key in rec["metrics"]
