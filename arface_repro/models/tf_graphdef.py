"""Reading a TensorFlow frozen GraphDef (`.pb`) without TensorFlow: nodes, constant tensors, run order.

The file is parsed with protobuf (`proto_schemas.tensorflow()`, TensorFlow's own field numbers). What is
checked before anything runs or is allocated, each a FormatError/ConfigError naming the file and node:
- node names are unique; every input (`name`, `name:k`, control `^name`) names a node of the graph
  (a dangling input is an error, whether or not the output needs it);
- the output's ancestors (data and control inputs) form no cycle;
- Const tensors: a dtype of `DTYPES`, a shape of at most `MAX_RANK` non-negative dims, at most
  `MAX_CONST_ELEMENTS` values each and `MAX_TOTAL_ELEMENTS` over the nodes that run — counted from the
  declared shape before any array is made, so a few bytes declaring a huge tensor filled from one value
  are refused; `tensor_content` must hold exactly shape × item size bytes, `*_val` lists at most that many
  values (fewer: the rest repeats the last, none: zeros — TensorFlow's `Tensor::FromProto`).

Only the model file is read: ops that would read other files (ImmutableConst, file readers) or run code
(PyFunc) are not supported op types, so they are refused by `tf_ops` like every op it does not know.

The output is the node no other node consumes; when there are several, the last of them in file order
(what OpenCV's importer returns from `forward()` without a name). Only its ancestors run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arface_repro.errors import ConfigError, FormatError, MissingDataError
from arface_repro.models import proto_schemas
from arface_repro.utils.input_files import read_capped

# TensorFlow DataType enum values (tensorflow/core/framework/types.proto) this reader turns into arrays
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
          10: np.bool_, 19: np.float16}
DTYPE_NAMES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
               8: "complex64", 9: "int64", 10: "bool", 14: "bfloat16", 17: "uint16", 18: "complex128", 19: "float16",
               20: "resource", 21: "variant", 22: "uint32", 23: "uint64"}
_VALUES = {1: "float_val", 2: "double_val", 3: "int_val", 4: "int_val", 5: "int_val", 6: "int_val", 9: "int64_val",
           10: "bool_val", 19: "half_val"}
MAX_RANK = 8
MAX_GRAPH_BYTES = 2047 << 20  # protobuf cannot parse a message of 2 GiB or more
MAX_CONST_ELEMENTS = 1 << 27  # 128 Mi values (512 MiB as float32) in one Const
MAX_TOTAL_ELEMENTS = 1 << 28  # 1 GiB as float32 over all Consts that run (facenet's graph: 23.5 M values)


def dtype_name(code: int) -> str:
    return DTYPE_NAMES.get(int(code), f"DataType {int(code)}")


def read_graphdef(path: str | os.PathLike):
    """The GraphDef message of a binary `.pb` file."""
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: TensorFlow graph not found")
    graph = proto_schemas.tensorflow()["GraphDef"]()
    try:
        graph.ParseFromString(read_capped(path, "TensorFlow graph", MAX_GRAPH_BYTES))
    except DecodeError as exc:
        raise FormatError(f"{path}: not a TensorFlow GraphDef ({exc})") from None
    if not graph.node:
        raise FormatError(f"{path}: not a TensorFlow GraphDef (no nodes; an empty or truncated file)")
    return graph


def tensor_elements(tensor, where: str) -> tuple[tuple[int, ...], int]:
    """(shape, number of values) a TensorProto declares, checked against the bounds above."""
    dims = tensor.tensor_shape.dim
    if tensor.tensor_shape.unknown_rank or len(dims) > MAX_RANK:
        raise FormatError(f"{where}: constant of rank {len(dims)} (unknown or over {MAX_RANK})")
    shape = tuple(int(d.size) for d in dims)
    if any(d < 0 for d in shape):
        raise FormatError(f"{where}: constant with a negative dimension {list(shape)}")
    n = 1
    for d in shape:
        n *= d
        if n > MAX_CONST_ELEMENTS:
            raise FormatError(f"{where}: constant of shape {list(shape)} is over {MAX_CONST_ELEMENTS} values")
    return shape, n


def tensor_array(tensor, where: str) -> np.ndarray:
    """A TensorProto as a numpy array (a copy; the protobuf bytes are not kept)."""
    code = int(tensor.dtype)
    if code not in DTYPES:
        raise FormatError(f"{where}: constant of dtype {dtype_name(code)} is not supported "
                          f"({', '.join(DTYPE_NAMES[c] for c in DTYPES)})")
    dtype = np.dtype(DTYPES[code]).newbyteorder("<")
    shape, n = tensor_elements(tensor, where)
    if tensor.tensor_content:
        content = tensor.tensor_content
        if len(content) != n * dtype.itemsize:
            raise FormatError(f"{where}: constant of shape {list(shape)} ({dtype_name(code)}) holds "
                              f"{len(content)} bytes, expected {n * dtype.itemsize}")
        return np.frombuffer(content, dtype=dtype).astype(dtype.newbyteorder("="), copy=True).reshape(shape)
    values = getattr(tensor, _VALUES[code])
    if len(values) > n:
        raise FormatError(f"{where}: constant of shape {list(shape)} lists {len(values)} values")
    if code == 19:  # half_val: the float16 bit patterns, one per int32
        given = np.asarray(values, dtype=np.uint16).view(np.float16)
    else:
        given = np.asarray(values, dtype=DTYPES[code])
    out: np.ndarray = np.zeros(n, dtype=DTYPES[code])
    if len(given):
        out[:len(given)] = given
        out[len(given):] = given[-1]
    return out.reshape(shape)


def split_input(text: str) -> tuple[str, int, bool]:
    """'name' -> (name, 0, False); 'name:2' -> (name, 2, False); '^name' -> (name, 0, True)."""
    if text.startswith("^"):
        return text[1:], 0, True
    name, sep, index = text.rpartition(":")
    if sep and index.isdigit():
        return name, int(index), False
    return text, 0, False


@dataclass(frozen=True)
class Graph:
    """A checked GraphDef: nodes by name, the output node, its ancestors in run order."""

    path: str
    nodes: dict
    output: str
    order: tuple[str, ...]

    def where(self, name: str) -> str:
        node = self.nodes[name]
        return f"{self.path}: node {name!r} ({node.op})"


def load_graph(path: str | os.PathLike) -> Graph:
    """Read and check a frozen graph (see the module docstring)."""
    path = Path(path)
    graph = read_graphdef(path)
    nodes: dict = {}
    for i, node in enumerate(graph.node):
        if not all(isinstance(v, str) for v in (node.name, node.op, *node.input)):  # protobuf keeps bad UTF-8 as bytes
            raise FormatError(f"{path}: node #{i}: its name, op or an input is not valid UTF-8 text")
        if not node.name:
            raise FormatError(f"{path}: a {node.op or 'node without op'} node has no name")
        if node.name in nodes:
            raise FormatError(f"{path}: two nodes are named {node.name!r}")
        nodes[node.name] = node
    consumed = set()
    for node in graph.node:
        for text in node.input:
            src, _, _ = split_input(text)
            if src not in nodes:
                raise FormatError(f"{path}: node {node.name!r} ({node.op}): input {text!r} is not a node of the graph")
            consumed.add(src)
    sinks = [n.name for n in graph.node if n.name not in consumed and n.op not in ("Const", "NoOp")]
    if not sinks:
        raise FormatError(f"{path}: no output node (every node is consumed by another one, or only constants)")
    output = sinks[-1]
    order = _run_order(path, nodes, output)
    total = 0
    for name in order:
        node = nodes[name]
        if node.op == "Const":
            total += tensor_elements(node.attr["value"].tensor, f"{path}: node {name!r} (Const)")[1]
            if total > MAX_TOTAL_ELEMENTS:
                raise FormatError(f"{path}: the graph's constants hold over {MAX_TOTAL_ELEMENTS} values")
    return Graph(str(path), nodes, output, tuple(order))


def _run_order(path: Path, nodes: dict, output: str) -> list[str]:
    """The output's ancestors (data and control inputs), each after its inputs; a cycle is an error."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack = [(output, iter(nodes[output].input))]
    state[output] = 1
    while stack:
        name, inputs = stack[-1]
        for text in inputs:
            src = split_input(text)[0]
            mark = state.get(src)
            if mark == 1:
                raise FormatError(f"{path}: the graph has a cycle through node {src!r} (input of {name!r}); "
                                  f"a frozen inference graph has none")
            if mark is None:
                state[src] = 1
                stack.append((src, iter(nodes[src].input)))
                break
        else:
            stack.pop()
            state[name] = 2
            order.append(name)
    return order


def single_placeholder(graph: Graph):
    """The one Placeholder among the nodes that run (the image input)."""
    holders = [name for name in graph.order if graph.nodes[name].op == "Placeholder"]
    if len(holders) != 1:
        raise ConfigError(f"{graph.path}: the output {graph.output!r} depends on {len(holders)} Placeholder "
                          f"inputs {holders}; one image input is expected")
    return graph.nodes[holders[0]]


def declared_shape(node) -> list | None:
    """A Placeholder's declared shape (None for unknown dims), or None without one (as `opencv_backend` reads it)."""
    if "shape" not in node.attr or not node.attr["shape"].HasField("shape"):
        return None
    shape = node.attr["shape"].shape
    if shape.unknown_rank or not shape.dim:  # no dims: how older writers leave an unknown shape
        return None
    return [int(d.size) if d.size > 0 else None for d in shape.dim]


__all__ = ["Graph", "load_graph", "read_graphdef", "tensor_array", "tensor_elements", "split_input",
           "single_placeholder", "declared_shape", "dtype_name", "DTYPES", "MAX_CONST_ELEMENTS",
           "MAX_TOTAL_ELEMENTS"]
