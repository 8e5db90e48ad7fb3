"""Embedding extraction: image lists, flip features, on-disk cache, CLI, and a real-data check on LFW fold 1."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import require

from arface_repro.backbones.registry import create_model
from arface_repro.cli import main as cli_main
from arface_repro.errors import FormatError, MissingDataError
from arface_repro.eval.embed import embed_arrays, extract_features, list_images, read_image_list
from arface_repro.io.feature_store import load_feature_store
from arface_repro.models.backends import load_model

FILES = ["Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Aaron_Peirsol/Aaron_Peirsol_0002.jpg",
         "Abdullah_Gul/Abdullah_Gul_0001.jpg", "Zico/Zico_0001.jpg", "Zico/Zico_0002.jpg"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lfw_root(shared) -> Path:
    return require(shared / "data/lfw/aligned-112x96")


@pytest.fixture(scope="module")
def onnx_model(shared):
    return load_model(f"onnx:{require(shared / 'models/mobilefacenet-expo/MobileFaceNet.onnx')}")


@pytest.fixture
def small_root(lfw_root, tmp_path) -> Path:
    """A writable copy of 5 LFW crops (plus a non-image file that listing must ignore)."""
    for f in FILES:
        (tmp_path / "data" / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lfw_root / f, tmp_path / "data" / f)
    (tmp_path / "data/Zico/notes.txt").write_text("not an image")
    return tmp_path / "data"


def read_rgb(root: Path, files) -> np.ndarray:
    return np.stack([cv2.imread(str(root / f))[:, :, ::-1] for f in files])


def test_list_images_and_list_files(small_root, tmp_path):
    assert list_images(small_root) == sorted(FILES)
    lst = tmp_path / "list.txt"
    lst.write_text("# images\nZico/Zico_0001.jpg 7\n\nAaron_Peirsol/Aaron_Peirsol_0001.jpg\n")
    assert read_image_list(lst) == ["Zico/Zico_0001.jpg", "Aaron_Peirsol/Aaron_Peirsol_0001.jpg"]
    lst.write_text("a.jpg\nb.jpg\na.jpg\n")
    with pytest.raises(FormatError, match=r"list.txt:3: 'a.jpg' repeats line 1"):
        read_image_list(lst)
    lst.write_text("/abs/a.jpg\n")
    with pytest.raises(FormatError, match=r"list.txt:1: .* is absolute"):
        read_image_list(lst)
    with pytest.raises(MissingDataError, match="not a directory"):
        list_images(tmp_path / "nowhere")


def test_features_and_flip_features_are_raw_outputs(small_root, onnx_model):
    store = extract_features(onnx_model, small_root, FILES, batch_size=3, workers=0, quiet=True)
    assert store.paths.tolist() == FILES and store.features.shape == (5, 192)
    imgs = read_rgb(small_root, FILES)
    np.testing.assert_allclose(store.features, onnx_model.embed(imgs), atol=1e-5)
    np.testing.assert_allclose(store.flip_features, onnx_model.embed(imgs[:, :, ::-1].copy()), atol=1e-5)
    assert not np.allclose(store.features, store.flip_features, atol=1e-2)
    assert abs(np.linalg.norm(store.features[0]) - 1) > 1e-2  # not normalised: protocols do that
    # reader processes give the same result, as does the in-memory API
    store1 = extract_features(onnx_model, small_root, FILES, batch_size=2, workers=1, flip=False, quiet=True)
    assert store1.flip_features is None
    np.testing.assert_allclose(store1.features, store.features, atol=1e-5)
    f, g = embed_arrays(onnx_model, list(imgs), batch_size=4)
    np.testing.assert_allclose(f, store.features, atol=1e-5)
    np.testing.assert_allclose(g, store.flip_features, atol=1e-5)


def _count_embeds(model, monkeypatch):
    calls = []
    real = model.embed
    monkeypatch.setattr(model, "embed", lambda x: calls.append(len(x)) or real(x))
    return calls


def test_cache_hit_skips_network(small_root, onnx_model, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = extract_features(onnx_model, small_root, FILES, workers=0, cache_dir=cache, quiet=True)
    assert first.meta["cache"] == "miss" and len(list(cache.glob("emb-*/part-*.npz"))) == 1
    calls = []
    monkeypatch.setattr(onnx_model, "embed", lambda x: calls.append(len(x)) or np.ones((len(x), 192), np.float32))
    second = extract_features(onnx_model, small_root, FILES, workers=0, cache_dir=cache, quiet=True)
    assert second.meta["cache"] == "hit" and calls == []
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_array_equal(second.flip_features, first.flip_features)
    assert second.meta["model_sha256"] == onnx_model.file_sha256
    # entries made with the flipped pass serve a no-flip request (--flip none on another protocol) ...
    third = extract_features(onnx_model, small_root, FILES, workers=0, cache_dir=cache, flip=False, quiet=True)
    assert third.meta["cache"] == "hit" and calls == [] and third.flip_features is None
    np.testing.assert_array_equal(third.features, first.features)
    # ... but entries made without it cannot serve a flip request
    other = tmp_path / "cache2"
    extract_features(onnx_model, small_root, FILES, workers=0, cache_dir=other, flip=False, quiet=True)
    again = extract_features(onnx_model, small_root, FILES, workers=0, cache_dir=other, quiet=True)
    assert again.meta["cache"] == "miss" and calls and again.flip_features is not None
    # another preprocessing is another model identity: a miss
    calls.clear()
    pre = extract_features(onnx_model.spec, small_root, FILES, workers=0, cache_dir=cache, quiet=True,
                           preprocess="fit=resize")
    assert pre.meta["cache"] == "miss"


def test_cache_is_keyed_by_image_content_not_mtime(small_root, onnx_model, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = extract_features(onnx_model, small_root, FILES, workers=0, cache_dir=cache, quiet=True)
    img = small_root / FILES[0]
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))   # touched, same bytes: still an entry
    assert extract_features(onnx_model, small_root, FILES, workers=0, cache_dir=cache, quiet=True).meta["cache"] == "hit"
    # the same bytes under another root and name: the same entry
    other = tmp_path / "other"
    (other / "x").mkdir(parents=True)
    shutil.copy(small_root / FILES[3], other / "x/renamed.jpg")
    assert extract_features(onnx_model, other, ["x/renamed.jpg"], workers=0, cache_dir=cache,
                            quiet=True).meta["cache"] == "hit"
    # an edited image (same size) is embedded again, the others are read from the cache
    rgb = cv2.imread(str(img))
    cv2.imwrite(str(img), 255 - rgb)
    calls = _count_embeds(onnx_model, monkeypatch)
    again = extract_features(onnx_model, small_root, FILES, workers=0, cache_dir=cache, quiet=True)
    assert again.meta["cache"] == "partial" and again.meta["cache_hits"] == "4" and calls == [2]  # 1 image + mirror
    assert not np.allclose(again.features[0], first.features[0], atol=1e-3)
    np.testing.assert_array_equal(again.features[1:], first.features[1:])


def test_cache_is_shared_across_image_lists(small_root, onnx_model, tmp_path, monkeypatch):
    """A first protocol's images (a subset) then a second's (all): the second embeds only the new ones."""
    cache = tmp_path / "cache"
    sub = extract_features(onnx_model, small_root, FILES[:2], workers=0, cache_dir=cache, quiet=True)
    calls = _count_embeds(onnx_model, monkeypatch)
    full = extract_features(onnx_model, small_root, list(reversed(FILES)), workers=0, cache_dir=cache, quiet=True)
    assert full.meta["cache"] == "partial" and full.meta["cache_hits"] == "2" and sum(calls) == 2 * 3
    ref = extract_features(onnx_model, small_root, list(reversed(FILES)), workers=0, quiet=True)
    assert ref.meta["cache"] == "off"
    np.testing.assert_allclose(full.features, ref.features, atol=1e-5)
    np.testing.assert_array_equal(full.features[full.index[FILES[0]]], sub.features[0])
    calls.clear()
    assert extract_features(onnx_model, small_root, FILES, workers=0, cache_dir=cache,
                            quiet=True).meta["cache"] == "hit" and calls == []


def test_stale_cache_entries_are_never_served(small_root, onnx_model, tmp_path, monkeypatch, capsys):
    import arface_repro.eval.embed_cache as ec

    cache = tmp_path / "cache"
    extract_features(onnx_model, small_root, FILES[:2], workers=0, cache_dir=cache, quiet=True)
    # other code or another environment: another context, a miss
    monkeypatch.setattr(ec, "code_key", lambda: "other-code")
    assert extract_features(onnx_model, small_root, FILES[:2], workers=0, cache_dir=cache,
                            quiet=True).meta["cache"] == "miss"
    monkeypatch.undo()
    monkeypatch.setattr(ec, "environment_key", lambda: "other-env")
    assert extract_features(onnx_model, small_root, FILES[:2], workers=0, cache_dir=cache,
                            quiet=True).meta["cache"] == "miss"
    monkeypatch.undo()
    # a damaged part file is set aside with a warning and its images embedded again
    assert extract_features(onnx_model, small_root, FILES[:2], workers=0, cache_dir=cache,
                            quiet=True).meta["cache"] == "hit"
    ctx = ec.context_key(onnx_model)
    for part in (cache / f"emb-{ctx[:32]}").glob("part-*.npz"):
        part.write_bytes(b"PK\x03\x04 damaged")
    capsys.readouterr()
    assert extract_features(onnx_model, small_root, FILES[:2], workers=0, cache_dir=cache,
                            quiet=True).meta["cache"] == "miss"
    assert "unreadable" in capsys.readouterr().err


def test_in_memory_module_and_cache_key_tracks_weights(small_root, tmp_path):
    torch.manual_seed(0)
    m = create_model("mobilefacenet").eval()
    cache = tmp_path / "cache"
    a = extract_features(m, small_root, FILES[:2], workers=0, cache_dir=cache, flip=False, quiet=True)
    x = (read_rgb(small_root, FILES[:2]).astype(np.float32) - 127.5) / 128
    x = np.pad(x, ((0, 0), (0, 0), (8, 8), (0, 0)), constant_values=-127.5 / 128)  # zero pixels, normalised
    with torch.no_grad():
        ref = m(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(a.features, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    with torch.no_grad():
        m.embedding[0].weight.mul_(2)
    b = extract_features(m, small_root, FILES[:2], workers=0, cache_dir=cache, flip=False, quiet=True)
    assert b.meta["cache"] == "miss" and not np.allclose(a.features, b.features)


def test_missing_and_unreadable_images(small_root, onnx_model):
    with pytest.raises(MissingDataError, match=r"1 image\(s\) not found: Zico/Zico_0009.jpg"):
        extract_features(onnx_model, small_root, FILES + ["Zico/Zico_0009.jpg"], workers=0, quiet=True)
    (small_root / "Zico/broken.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(FormatError, match=r"broken.jpg: not a readable image"):
        extract_features(onnx_model, small_root, ["Zico/broken.jpg"], workers=1, quiet=True)
    big = np.zeros((120, 120, 3), np.uint8)
    cv2.imwrite(str(small_root / "Zico/big.png"), big)
    with pytest.raises(FormatError, match=r"big.png: images are 120×120 but the model takes 112×112"):
        extract_features(onnx_model, small_root, ["Zico/big.png"], workers=0, quiet=True)


def test_embed_command_writes_feature_store(small_root, onnx_model, tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join(FILES[:3]) + "\n")
    out = tmp_path / "out" / "feats.npz"
    rc = cli_main(["embed", "--model", onnx_model.spec, "--data-root", str(small_root), "--list", str(lst),
                   "--out", str(out), "--workers", "0", "--quiet"])
    assert rc == 0
    store = load_feature_store(out)
    assert store.paths.tolist() == FILES[:3] and store.flip_features is not None and store.dim == 192
    assert store.meta["model_spec"] == onnx_model.spec
    rc = cli_main(["embed", "--model", "onnx:" + str(tmp_path / "none.onnx"), "--data-root", str(small_root),
                   "--out", str(out), "--quiet"])
    assert rc == 2  # a clear error, no traceback


def _fold1_pairs(pairs_txt: Path):
    """The first 600 pairs of LFW View 2 (fold 1: 300 same then 300 different)."""
    lines = pairs_txt.read_text().splitlines()[1:601]
    pairs, same = [], []
    for line in lines:
        f = line.split("\t")
        if len(f) == 3:
            pairs.append((f"{f[0]}/{f[0]}_{int(f[1]):04d}.jpg", f"{f[0]}/{f[0]}_{int(f[2]):04d}.jpg"))
            same.append(True)
        else:
            pairs.append((f"{f[0]}/{f[0]}_{int(f[1]):04d}.jpg", f"{f[2]}/{f[2]}_{int(f[3]):04d}.jpg"))
            same.append(False)
    return pairs, np.asarray(same)


def test_real_data_lfw_fold1(shared, lfw_root, onnx_model):
    pairs, same = _fold1_pairs(require(shared / "data/lfw/pairs.txt"))
    assert same.sum() == 300 and len(pairs) == 600
    paths = sorted({p for pr in pairs for p in pr})
    store = extract_features(onnx_model, lfw_root, paths, batch_size=64, flip=False, workers=1, quiet=True)
    assert len(store) == len(paths) == 807
    f = store.features / np.linalg.norm(store.features, axis=1, keepdims=True)
    ia = store.indices([a for a, _ in pairs])
    ib = store.indices([b for _, b in pairs])
    cos = np.sum(f[ia] * f[ib], axis=1)
    assert cos[same].mean() > cos[~same].mean() + 0.4
    thresholds = np.concatenate([np.sort(cos), [2.0]])
    best = max(np.mean((cos >= t) == same) for t in thresholds)
    assert best > 0.97, best


def test_two_evaluations_share_the_cache(lfw_root, shared, tmp_path):
    """`arface evaluate --model` on one pair list, then on a larger one (as LFW then BLUFR): the second run
    reads the images the first embedded and embeds only the others; its features equal an uncached run's."""
    import json

    model = require(shared / "models/mobilefacenet-expo/MobileFaceNet.onnx")
    lines = require(shared / "data/lfw/pairs.txt").read_text().splitlines()[1:601]
    body = [ln for k in range(10) for ln in lines[30 * k:30 * k + 2] + lines[300 + 30 * k:300 + 30 * k + 2]]
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    small.write_text("10\t1\n" + "\n".join(body[i] for k in range(10) for i in (4 * k, 4 * k + 2)) + "\n")
    large.write_text("10\t2\n" + "\n".join(body) + "\n")
    cache = tmp_path / "cache"
    common = ["--model", f"onnx:{model}", "--data-root", str(lfw_root), "--cache-dir", str(cache), "--workers", "0",
              "--quiet", "--flip", "none"]
    assert cli_main(["evaluate", "--protocol", "lfw", "--pairs", str(small), "--out", str(tmp_path / "a.json"),
                     "--save-features", str(tmp_path / "a.npz"), *common]) == 0
    assert cli_main(["evaluate", "--protocol", "lfw", "--pairs", str(large), "--out", str(tmp_path / "b.json"),
                     "--save-features", str(tmp_path / "b.npz"), *common]) == 0
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert a["extraction"]["cache"] == "miss" and b["extraction"]["cache"] == "partial"
    parts = sorted(cache.glob("emb-*/part-*.npz"))
    assert len(parts) == 2       # the second run stored only what it embedded
    with np.load(parts[0]) as z0, np.load(parts[1]) as z1:
        assert len(z0["keys"]) + len(z1["keys"]) == b["extraction"]["images"]   # each image embedded once
    fa, fb = load_feature_store(tmp_path / "a.npz"), load_feature_store(tmp_path / "b.npz")
    for p in fa.paths:
        np.testing.assert_array_equal(fa.features[fa.index[p]], fb.features[fb.index[p]])
    ref = extract_features(f"onnx:{model}", lfw_root, fb.paths.tolist(), workers=0, flip=False, quiet=True)
    np.testing.assert_allclose(fb.features, ref.features, atol=1e-5)
