"""The one reader of ONNX files, for every backend (onnxruntime, OpenCV, the onnx→OpenCV fallback, presets).

An ONNX tensor may keep its bytes in another file ("external data": a `location` relative to the model's
folder, an `offset` and a `length`). Engines resolve that location themselves, and a hostile file can name
`../../etc/passwd`, an absolute path or a symlink leading out of the folder, so that file's bytes become the
network's weights. Here the engines are never given a path: `read_onnx` parses the file (at most
MAX_ONNX_BYTES), finds every tensor that has external data wherever it sits (initializers, sparse
initializers, node attributes, subgraphs, functions, training info), checks its location and reads the bytes
itself, and hands the engine one self-contained serialized model:

- a location must be relative, and the file it names, with every symlink resolved, must lie inside the
  model's folder (the folder of the path given, also resolved) and be a regular file;
- offset and length must be non-negative integers, lie inside that file and agree with the tensor's shape
  and type (the bytes a tensor declares are checked before they are read);
- the inlined model must stay under protobuf's 2 GiB limit.

Anything else is a FormatError naming the model file, the tensor and the location. A file with no external
data is passed on byte for byte (its hash is the file's sha256); a model with external data is identified by
the sha256 of the self-contained bytes, so a change in a data file changes the model's identity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from arface_repro.errors import FormatError
from arface_repro.models import proto_schemas
from arface_repro.utils.hashing import sha256_bytes
from arface_repro.utils.input_files import MiB, check_regular, read_capped

# the package's conventions for the ONNX files `arface export-onnx` writes (`onnx_export`) and the `onnx:` kind reads
LANDMARKS_INPUT = "landmarks"  # optional second input: N×5×2 landmarks in network-input pixels (an ARFace model)
PREPROCESS_METADATA = "arface_repro.preprocess"  # metadata: the Preprocess key() the network expects

MAX_ONNX_BYTES = 2047 * MiB      # protobuf cannot serialize or parse a message of 2 GiB or more
EXTERNAL = 1                     # TensorProto.DataLocation.EXTERNAL
# bytes per element of TensorProto.DataType (STRING, 8, has no fixed size; 0 is UNDEFINED)
ITEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2,
              17: 1, 18: 1, 19: 1, 20: 1, 21: 1, 22: 1, 23: 1}


@dataclass
class OnnxFile:
    path: Path
    model: object           # the parsed ModelProto (proto_schemas.onnx()), external data inlined
    data: bytes             # the self-contained serialized model to hand to an engine
    sha256: str
    external_files: list    # the data files read (resolved paths), in order of first use


def _tensors_of_graph(g, out: list) -> None:
    out.extend(g.initializer)
    for sp in g.sparse_initializer:
        out.extend((sp.values, sp.indices))
    for node in g.node:
        _tensors_of_attributes(node.attribute, out)


def _tensors_of_attributes(attrs, out: list) -> None:
    for a in attrs:
        if a.HasField("t"):
            out.append(a.t)
        out.extend(a.tensors)
        if a.HasField("sparse_tensor"):
            out.extend((a.sparse_tensor.values, a.sparse_tensor.indices))
        for sp in a.sparse_tensors:
            out.extend((sp.values, sp.indices))
        if a.HasField("g"):
            _tensors_of_graph(a.g, out)
        for sub in a.graphs:
            _tensors_of_graph(sub, out)


def all_tensors(model) -> list:
    """Every TensorProto of a ModelProto, wherever ONNX allows one."""
    out: list = []
    _tensors_of_graph(model.graph, out)
    for ti in model.training_info:
        _tensors_of_graph(ti.initialization, out)
        _tensors_of_graph(ti.algorithm, out)
    for fn in model.functions:
        _tensors_of_attributes(fn.attribute_proto, out)
        for node in fn.node:
            _tensors_of_attributes(node.attribute, out)
    return out


def _data_file(path: Path, folder: Path, location: str, where: str) -> Path:
    """The resolved data file `location` names, checked to lie inside the model's folder."""
    if not location or "\0" in location:
        raise FormatError(f"{where}: external data location {location!r} is empty or not a file name")
    if os.path.isabs(location) or location.startswith(("/", "\\")) or (len(location) > 1 and location[1] == ":"):
        raise FormatError(f"{where}: external data location {location!r} is an absolute path; only files inside "
                          f"the model's folder {folder} are read")
    real = Path(os.path.realpath(folder / location))
    if os.path.commonpath([str(real), str(folder)]) != str(folder):
        raise FormatError(f"{where}: external data location {location!r} resolves to {real}, outside the "
                          f"model's folder {folder} (through '..' or a symlink); only files inside it are read")
    check_regular(real, f"external data file of {path}")
    return real


def _int_entry(entries: dict, key: str, where: str) -> int | None:
    if key not in entries:
        return None
    text = entries[key]
    if not text.isdigit():  # ASCII digits only: no sign, no spaces
        raise FormatError(f"{where}: external data {key} {text!r} is not a non-negative integer")
    return int(text)


def _inline(path: Path, folder: Path, tensor, used: dict) -> int:
    """Read a tensor's external bytes into raw_data; the number of bytes read."""
    name = tensor.name or "(unnamed)"
    entries = {}
    for e in tensor.external_data:
        if e.key in entries:
            raise FormatError(f"{path}: tensor {name!r}: external data key {e.key!r} given twice")
        entries[e.key] = e.value
    where = f"{path}: tensor {name!r}"
    real = _data_file(path, folder, entries.get("location", ""), where)
    size = used.setdefault(real, real.stat().st_size)
    offset = _int_entry(entries, "offset", where) or 0
    length = _int_entry(entries, "length", where)
    item = ITEM_BYTES.get(tensor.data_type)
    if item is None:
        raise FormatError(f"{where}: external data of data type {tensor.data_type} (only fixed-size numeric "
                          f"types can be stored outside the model file)")
    count = 1
    for d in tensor.dims:
        if d < 0:
            raise FormatError(f"{where}: negative dimension {d}")
        count *= d
    need = count * item
    if length is not None and length != need:
        raise FormatError(f"{where}: external data length {length} but shape {list(tensor.dims)} of type "
                          f"{tensor.data_type} needs {need} bytes")
    if offset + need > size:
        raise FormatError(f"{where}: external data bytes {offset}..{offset + need} lie past the end of "
                          f"{real} ({size} bytes)")
    with open(real, "rb") as fh:
        fh.seek(offset)
        raw = fh.read(need)
    if len(raw) != need:
        raise FormatError(f"{where}: {real} ended while reading external data ({len(raw)} of {need} bytes)")
    tensor.raw_data = raw
    del tensor.external_data[:]
    tensor.ClearField("data_location")
    return need


def read_onnx(path: str | os.PathLike, what: str = "ONNX model") -> OnnxFile:
    """The model at `path`, parsed and made self-contained (see the module docstring)."""
    from google.protobuf.message import DecodeError

    path = Path(path)
    data = read_capped(path, what, MAX_ONNX_BYTES)
    model = proto_schemas.onnx()["ModelProto"]()
    try:
        model.ParseFromString(data)
    except (DecodeError, RecursionError) as exc:
        raise FormatError(f"{path}: not a loadable ONNX model ({exc or type(exc).__name__})") from None
    folder = Path(os.path.realpath(path.parent))
    used: dict = {}
    total = 0
    for t in all_tensors(model):
        if t.data_location == EXTERNAL or len(t.external_data):
            total += _inline(path, folder, t, used)
            if len(data) + total > MAX_ONNX_BYTES:
                raise FormatError(f"{path}: model with its external data exceeds {MAX_ONNX_BYTES // MiB} MiB, "
                                  f"more than one ONNX file can hold")
    if not used:
        return OnnxFile(path, model, data, sha256_bytes(data), [])
    inlined = model.SerializeToString()
    return OnnxFile(path, model, inlined, sha256_bytes(inlined), list(used))
