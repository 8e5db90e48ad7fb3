"""Small TensorFlow GraphDefs written with the package's own protobuf schema (no TensorFlow), for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from arface_repro.models.proto_schemas import tensorflow

TF_DTYPE = {np.dtype(np.float32): 1, np.dtype(np.float64): 2, np.dtype(np.int32): 3, np.dtype(np.int64): 9}


class GraphBuilder:
    def __init__(self):
        self.graph = tensorflow()["GraphDef"]()

    def placeholder(self, name: str = "input", shape=None, dtype: int = 1):
        node = self.graph.node.add(name=name, op="Placeholder")
        node.attr["dtype"].type = dtype
        if shape is not None:
            for d in shape:
                node.attr["shape"].shape.dim.add().size = -1 if d is None else d
        return name

    def const(self, name: str, value, dtype=None, as_values: bool = False):
        """A Const node; the array goes into tensor_content, or into the typed *_val list (`as_values`)."""
        a = np.asarray(value, dtype=dtype)
        if a.dtype == np.float64 and dtype is None:
            a = a.astype(np.float32)
        if a.dtype == np.int64 and dtype is None:
            a = a.astype(np.int32)
        node = self.graph.node.add(name=name, op="Const")
        code = TF_DTYPE[a.dtype]
        node.attr["dtype"].type = code
        t = node.attr["value"].tensor
        t.dtype = code
        for d in a.shape:
            t.tensor_shape.dim.add().size = d
        if as_values:
            field = {1: t.float_val, 2: t.double_val, 3: t.int_val, 9: t.int64_val}[code]
            field.extend(a.reshape(-1).tolist())
        else:
            t.tensor_content = a.astype(a.dtype.newbyteorder("<")).tobytes()
        return name

    def op(self, op: str, name: str, inputs, **attrs):
        node = self.graph.node.add(name=name, op=op, input=list(inputs))
        for key, v in attrs.items():
            a = node.attr[key]
            if isinstance(v, bool):
                a.b = v
            elif isinstance(v, int):
                a.i = v
            elif isinstance(v, float):
                a.f = v
            elif isinstance(v, str):
                a.s = v.encode()
            elif isinstance(v, (list, tuple)):
                a.list.i.extend(int(x) for x in v)
            else:
                raise TypeError(f"attribute {key}: {v!r}")
        return name

    def save(self, path: Path) -> Path:
        path.write_bytes(self.graph.SerializeToString())
        return path
