"""The GraphDef runner (`tfgraph:`) on the real shared facenet graph, against OpenCV 4.8.1's importer: the
fixture tests/fixtures/facenet_opencv4_reference.npz holds four LFW fold-1 MTCNN box crops and OpenCV's
embeddings of them (made by scripts/make_tfgraph_reference.py in a throw-away OpenCV 4 environment), and
how `opencv:MODEL.pb` and the facenet preset pick the runner when OpenCV cannot import the graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import require
from tf_graph_builder import GraphBuilder

from arface_repro.errors import ConfigError, FormatError
from arface_repro.models import opencv_backend
from arface_repro.models.backends import load_model
from arface_repro.models.presets import load_preset
from arface_repro.models.tf_graph_net import TFGraphModel
from arface_repro.utils.hashing import sha256_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FIXTURE = Path(__file__).parent / "fixtures" / "facenet_opencv4_reference.npz"


@pytest.fixture(scope="module")
def graph(shared) -> Path:
    return require(shared / "models" / "facenet-20180408-opencv" / "graph_final.pb")


@pytest.fixture(scope="module")
def runner(graph):
    return load_model(f"tfgraph:{graph}", preprocess=load_preset("facenet-20180408").preprocess())


def unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_equal_to_opencv4_importer_on_lfw_crops(graph, runner):
    ref = np.load(FIXTURE)
    assert str(ref["graph_sha256"]) == sha256_file(graph), "the fixture was made from another graph file"
    assert str(ref["opencv"]).startswith("4.") and ref["crops"].shape == (4, 160, 160, 3)
    assert runner.preprocess.key() == str(ref["preprocess"])  # the preset's preprocessing, as the script used
    assert isinstance(runner, TFGraphModel) and runner.fixed_batch == 1 and runner.embedding_size == 512
    got = runner.embed(ref["crops"])
    diff = float(np.abs(unit(got) - unit(ref["features"])).max())
    assert diff <= 1e-5, diff
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, atol=1e-6)  # the graph L2-normalises
    same, other = float(unit(got)[0] @ unit(got)[1]), float(unit(got)[2] @ unit(got)[3])
    assert same > 0.6 and other < 0.3, (same, other)  # a same pair and a different pair of fold 1


def test_opencv_spec_and_preset_without_the_tensorflow_importer(graph, runner, monkeypatch):
    monkeypatch.setattr(opencv_backend, "has_tensorflow_importer", lambda: False)  # as OpenCV 5.1
    m = load_model(f"facenet-20180408:{graph}")
    assert isinstance(m, TFGraphModel) and m.kind == "tfgraph" and m.preset.name == "facenet-20180408"
    assert m.identity()["engine"] == runner.identity()["engine"] and m.identity()["spec"].startswith("facenet-")
    imgs = np.load(FIXTURE)["crops"][:2]
    np.testing.assert_array_equal(m.embed(imgs), runner.embed(imgs))  # the same runner on the same input


def test_opencv_spec_falls_back_when_the_importer_fails(tmp_path, monkeypatch):
    b = GraphBuilder()
    b.placeholder("input", [None, 4, 4, 3])
    b.op("Relu", "relu", ["input"])
    b.const("shape", np.array([-1, 48], np.int32))
    b.op("Reshape", "out", ["relu", "shape"])
    path = b.save(tmp_path / "g.pb")
    pbtxt = tmp_path / "g.pbtxt"
    pbtxt.write_text("")

    def importer_rejects(fmt, files, spec, *args):
        raise FormatError(f"{files[0]}: OpenCV 4.14.0 cannot read this tensorflow model: (-215:Assertion failed)")

    monkeypatch.setattr(opencv_backend, "has_tensorflow_importer", lambda: True)
    monkeypatch.setattr(opencv_backend, "OpenCVModel", importer_rejects)
    m = load_model(f"opencv:{path}")
    assert isinstance(m, TFGraphModel) and "GraphDef runner because" in m.batch_note and "4.14.0" in m.batch_note
    with pytest.raises(FormatError, match="OpenCV 4.14.0 cannot read"):  # with a .pbtxt config: OpenCV only
        load_model(f"opencv:{path}:{pbtxt}")
    monkeypatch.setattr(opencv_backend, "has_tensorflow_importer", lambda: False)
    with pytest.raises(ConfigError, match=r"no TensorFlow importer.*text graph config .*g\.pbtxt; give the frozen"):
        load_model(f"opencv:{path}:{pbtxt}")
    with pytest.raises(ConfigError, match="no file path after 'tfgraph:'"):
        load_model("tfgraph:")
