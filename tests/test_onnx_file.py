"""`models.onnx_file.read_onnx`: external data found wherever ONNX keeps a tensor, read only from inside the
model's folder, checked against the tensor's shape, and inlined."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from arface_repro.errors import FormatError
from arface_repro.models.onnx_file import read_onnx
from arface_repro.models.proto_schemas import onnx

WEIGHTS = np.arange(6, dtype="<f4").tobytes()


def external(t, location: str, length: int | None = len(WEIGHTS), offset: str = "0") -> None:
    t.name, t.data_type = "w", 1
    t.dims.extend([2, 3])
    t.data_location = 1
    entries = [("location", location), ("offset", offset)] + ([("length", str(length))] if length is not None else [])
    for k, v in entries:
        e = t.external_data.add()
        e.key, e.value = k, v


def model_with(where: str, location: str, **kw):
    """A ModelProto with one external tensor at `where` (a place ONNX allows tensors)."""
    m = onnx()["ModelProto"]()
    m.ir_version = 8
    g = m.graph
    if where == "initializer":
        external(g.initializer.add(), location, **kw)
    elif where == "node-attribute":
        node = g.node.add(op_type="Constant")
        external(node.attribute.add(name="value").t, location, **kw)
    elif where == "subgraph":
        node = g.node.add(op_type="If")
        external(node.attribute.add(name="then_branch").g.initializer.add(), location, **kw)
    elif where == "sparse-initializer":
        external(g.sparse_initializer.add().values, location, **kw)
    elif where == "function":
        fn = m.functions.add(name="f")
        external(fn.node.add(op_type="Constant").attribute.add(name="value").t, location, **kw)
    elif where == "training-info":
        external(m.training_info.add().initialization.initializer.add(), location, **kw)
    return m


PLACES = ("initializer", "node-attribute", "subgraph", "sparse-initializer", "function", "training-info")


def save(path: Path, m) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(m.SerializeToString())
    return path


@pytest.mark.parametrize("where", PLACES)
def test_data_outside_the_model_folder_is_refused_wherever_the_tensor_sits(tmp_path, where):
    (tmp_path / "secret.bin").write_bytes(WEIGHTS)
    (tmp_path / "m").mkdir()
    os.symlink(tmp_path / "secret.bin", tmp_path / "m/link.bin")
    for location, words in (("../secret.bin", "outside the model's folder"), (str(tmp_path / "secret.bin"), "absolute path"),
                            ("link.bin", "resolves to")):
        with pytest.raises(FormatError, match="only files inside") as exc:
            read_onnx(save(tmp_path / "m/m.onnx", model_with(where, location)))
        assert words in str(exc.value) and "m.onnx" in str(exc.value) and "'w'" in str(exc.value)


@pytest.mark.parametrize("where", PLACES)
def test_data_inside_the_folder_is_inlined(tmp_path, where):
    (tmp_path / "m/sub").mkdir(parents=True)
    (tmp_path / "m/sub/w.bin").write_bytes(b"pad" + WEIGHTS)
    f = read_onnx(save(tmp_path / "m/m.onnx", model_with(where, "sub/w.bin", offset="3")))
    assert f.external_files == [(tmp_path / "m/sub/w.bin").resolve()]
    back = onnx()["ModelProto"]()
    back.ParseFromString(f.data)
    from arface_repro.models.onnx_file import all_tensors

    (t,) = [t for t in all_tensors(back) if t.name == "w"]
    assert t.raw_data == WEIGHTS and not len(t.external_data) and t.data_location == 0
    assert f.sha256 == hashlib.sha256(f.data).hexdigest()


def test_a_model_without_external_data_is_passed_on_byte_for_byte(tmp_path):
    m = onnx()["ModelProto"]()
    t = m.graph.initializer.add(name="w", data_type=1, raw_data=WEIGHTS)
    t.dims.extend([2, 3])
    p = save(tmp_path / "m.onnx", m)
    f = read_onnx(p)
    assert f.data == p.read_bytes() and f.sha256 == hashlib.sha256(p.read_bytes()).hexdigest() and not f.external_files


@pytest.mark.parametrize("kw, words", [
    ({"length": 8}, r"length 8 but shape \[2, 3\]"),
    ({"length": None, "offset": "20"}, "past the end"),
    ({"offset": "-1"}, "not a non-negative integer"),
])
def test_offsets_and_lengths_are_checked_before_reading(tmp_path, kw, words):
    (tmp_path / "w.bin").write_bytes(WEIGHTS)
    with pytest.raises(FormatError, match=words):
        read_onnx(save(tmp_path / "m.onnx", model_with("initializer", "w.bin", **kw)))


def test_a_fifo_or_folder_as_data_file_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "w.bin")
    (tmp_path / "d").mkdir()
    with pytest.raises(FormatError, match="FIFO"):
        read_onnx(save(tmp_path / "m.onnx", model_with("initializer", "w.bin")))
    with pytest.raises(FormatError, match="folder"):
        read_onnx(save(tmp_path / "m.onnx", model_with("initializer", "d")))
