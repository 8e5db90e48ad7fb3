"""Provenance in records: the environment block and code identity, the model a feature store names
(`--features` runs), and the identity of the image list (paths, and sizes where images were read)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from conftest import require

from arface_repro.cli import main
from arface_repro.errors import FormatError
from arface_repro.eval.store_provenance import image_list_identity, store_model_info
from arface_repro.io.feature_store import FeatureStore, load_feature_store, save_feature_store
from arface_repro.io.pairs import parse_lfw_pairs
from arface_repro.io.records import build_record
from arface_repro.utils.hashing import sha256_file
from arface_repro.utils.provenance import code_identity

ENV_KEYS = {"python", "numpy", "torch", "torchvision", "scipy", "scikit-learn", "onnxruntime", "opencv", "platform",
            "cpu_model", "threads"}


def test_every_record_has_the_environment_and_code_identity():
    rec = build_record("lfw", "insightface", {"Acc": 99.0})
    assert ENV_KEYS <= set(rec["environment"]) and rec["environment"]["numpy"] == np.__version__
    ident = code_identity()
    assert rec["source_sha256"] == ident["source_sha256"] and len(rec["source_sha256"]) == 64
    assert rec["git_commit"] == ident["git_commit"] and rec["dirty"] == ident["dirty"]


def test_image_list_identity_is_the_ordered_paths_and_sizes(tmp_path):
    for name, size in (("a/1.jpg", 10), ("b/2.jpg", 7)):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x" * size)
    ident = image_list_identity(["a/1.jpg", "b/2.jpg"], tmp_path)
    assert ident["count"] == 2 and ident["paths_sha256"] == hashlib.sha256(b"a/1.jpg\nb/2.jpg").hexdigest()
    assert ident["sizes_sha256"] == hashlib.sha256(b"a/1.jpg\t10\nb/2.jpg\t7\n").hexdigest()
    assert image_list_identity(["b/2.jpg", "a/1.jpg"])["paths_sha256"] != ident["paths_sha256"]  # order counts
    (tmp_path / "b/2.jpg").write_bytes(b"x" * 8)  # a re-encoded image
    assert image_list_identity(["a/1.jpg", "b/2.jpg"], tmp_path)["sizes_sha256"] != ident["sizes_sha256"]
    (tmp_path / "b/2.jpg").unlink()
    assert image_list_identity(["a/1.jpg", "b/2.jpg"], tmp_path)["sizes_sha256"] is None


def test_store_model_info_from_metadata():
    f = np.eye(2, dtype=np.float32) + 0.5
    assert store_model_info(FeatureStore(f, ["a.jpg", "b.jpg"])) is None  # a store made elsewhere names no model
    ident = {"kind": "arface", "spec": "arface:x.pt", "sha256": "ab", "config": "mfn_plain"}
    s = FeatureStore(f, ["a.jpg", "b.jpg"], meta={"model_spec": "arface:x.pt", "model_identity": json.dumps(ident)})
    assert store_model_info(s) == {**ident, "source": "feature store"}
    s = FeatureStore(f, ["a.jpg", "b.jpg"], meta={"model_spec": "onnx:m.onnx", "model_sha256": "cd", "preprocess": "{}"})
    assert store_model_info(s) == {"spec": "onnx:m.onnx", "sha256": "cd", "preprocess": "{}", "source": "feature store"}
    for bad in ("{not json", "[1, 2]", "{}"):
        s = FeatureStore(f, ["a.jpg", "b.jpg"], source="x.npz", meta={"model_identity": bad})
        with pytest.raises(FormatError, match="x.npz: 'model_identity' is not a JSON object naming a model"):
            store_model_info(s)


@pytest.fixture(scope="module")
def small_lfw(shared, tmp_path_factory):
    """10 folds of one matched and one mismatched LFW pair, the shared MobileFaceNet and its aligned crops."""
    model = require(shared / "models" / "mobilefacenet-expo" / "MobileFaceNet.onnx")
    root = require(shared / "data" / "lfw" / "aligned-112x96")
    lines = (shared / "data" / "lfw" / "pairs.txt").read_text().splitlines()[1:]
    body = [ln for k in range(10) for ln in (lines[600 * k], lines[600 * k + 300])]
    d = tmp_path_factory.mktemp("prov")
    pairs = d / "pairs.txt"
    pairs.write_text("10\t1\n" + "\n".join(body) + "\n")
    paths = parse_lfw_pairs(pairs).unique_paths()
    (d / "list.txt").write_text("\n".join(paths) + "\n")
    return d, pairs, root, model, paths


def test_features_and_model_runs_record_the_model_and_the_image_list(small_lfw, capsys):
    d, pairs, root, model, paths = small_lfw
    spec = f"mobilefacenet-expo:{model}"
    store = d / "embedded.npz"
    assert main(["embed", "--model", spec, "--data-root", str(root), "--list", str(d / "list.txt"), "--out", str(store),
                 "--workers", "0", "--quiet"]) == 0
    rec_path = d / "features.json"
    assert main(["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs), "--out", str(rec_path)]) == 0
    rec = json.loads(rec_path.read_text())
    info = rec["model_info"]
    assert info["source"] == "feature store" and info["spec"] == spec and info["sha256"] == sha256_file(model)
    assert info["kind"] == "onnx"
    stored = load_feature_store(store).paths.tolist()
    assert stored == paths
    assert rec["images"] == {"count": len(paths), "paths_sha256": hashlib.sha256("\n".join(paths).encode()).hexdigest()}
    assert ENV_KEYS <= set(rec["environment"]) and rec["source_sha256"] == code_identity()["source_sha256"]

    # a --model run read the images: their sizes are in the record too; --save-features keeps the model's name
    saved = d / "saved.npz"
    out2 = d / "model.json"
    assert main(["evaluate", "--protocol", "lfw", "--model", spec, "--data-root", str(root), "--pairs", str(pairs),
                 "--out", str(out2), "--cache-dir", "none", "--save-features", str(saved), "--workers", "0",
                 "--quiet"]) == 0
    rec2 = json.loads(out2.read_text())
    sizes = hashlib.sha256("".join(f"{p}\t{(root / p).stat().st_size}\n" for p in paths).encode()).hexdigest()
    assert rec2["images"]["sizes_sha256"] == sizes and rec2["images"]["paths_sha256"] == rec["images"]["paths_sha256"]
    assert rec2["model_info"]["sha256"] == info["sha256"] and rec2["model"] == spec
    assert store_model_info(load_feature_store(saved))["sha256"] == info["sha256"]
    capsys.readouterr()

    # a store that names no model: the record says none (it does not guess)
    bare = d / "bare.npz"
    s = load_feature_store(store)
    save_feature_store(bare, s.features, s.paths, s.flip_features)
    out3 = d / "bare.json"
    assert main(["evaluate", "--protocol", "lfw", "--features", str(bare), "--pairs", str(pairs), "--out", str(out3)]) == 0
    assert json.loads(out3.read_text())["model_info"] is None


def test_a_record_without_provenance_is_not_written(tmp_path):
    from arface_repro.io.records import write_record

    rec = build_record("lfw", "insightface", {"Acc": 99.0})
    bare = {k: v for k, v in rec.items() if k != "environment"}
    with pytest.raises(ValueError, match="without environment"):
        write_record(bare, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()
    assert write_record(rec, tmp_path / "r.json").is_file()
