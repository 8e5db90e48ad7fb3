"""TensorFlow ops on PyTorch tensors, with TensorFlow's semantics, for the frozen-graph runner (`tf_graph_net`).

Each supported op type is a small nn.Module built from its NodeDef (`NodeView`): attributes and the
inputs TensorFlow needs as constants (filters, axes, shapes, batch-norm statistics: `static`, read at load
time, so a bad value is a load error naming the node) are checked when the graph is loaded; `forward`
takes the op's run-time inputs and returns its outputs as a tuple. Tensors keep TensorFlow's layout
(NHWC unless `data_format: NCHW`); convolutions and pools look at NHWC data through a permuted N×C×H×W view.

| op | semantics |
|---|---|
| Conv2D | filter H×W×in×out (in·groups = input channels), `strides`, `dilations`, `padding` SAME / VALID / EXPLICIT; SAME pads (out−1)·s + (k−1)·d + 1 − in in total, the odd pixel after (bottom/right) |
| DepthwiseConv2dNative | filter H×W×in×multiplier, same padding rules |
| BiasAdd | a 1-D bias on the channel axis of `data_format` |
| FusedBatchNorm, V2, V3 | inference only (`is_training: false`): (x − mean)·(rsqrt(var + ε)·scale) + offset, as TensorFlow's CPU kernel; the batch-statistics outputs are not computed |
| MaxPool, AvgPool | `ksize`, `strides`, SAME / VALID; SAME max ignores the padding, SAME average divides by the number of input pixels in the window (not the window size) |
| Relu, Relu6, LeakyRelu (`alpha`), Sigmoid, Tanh, Softmax (last axis), Square, Sqrt, Rsqrt, Identity, StopGradient | element-wise |
| Add, AddV2, Sub, Mul, RealDiv, Maximum, Minimum | element-wise with numpy broadcasting |
| MatMul | 2-D, `transpose_a`, `transpose_b` |
| ConcatV2 (axis last), Concat (axis first) | axis from a constant input, negative counts from the end |
| Reshape | shape from a constant input, one −1 at most |
| Squeeze | `squeeze_dims` (none: every size-1 axis) |
| Sum, Mean, Max, Min, Prod | reduction indices from a constant input (scalar or vector, none = identity), `keep_dims` |
| Pad | zero padding, paddings from a constant input |
| Const, PlaceholderWithDefault (its default) | |

Any other op type is a ConfigError naming the op type, the node and the file (`build_op`). Arithmetic is
in the constants' and the input's dtype: float32 for the graphs the runner loads (`tf_graph_net` takes a
float32 Placeholder), as TensorFlow computes them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from arface_repro.errors import ConfigError, FormatError
from arface_repro.models.tf_graphdef import Graph, split_input, tensor_array


class NodeView:
    """What an op sees of its node at load time: attributes and constant inputs; `where` for errors."""

    def __init__(self, graph: Graph, name: str):
        self.graph, self.node = graph, graph.nodes[name]
        self.where = graph.where(name)
        self.data_inputs = [t for t in self.node.input if not t.startswith("^")]

    # ---- attributes
    def has(self, key: str) -> bool:
        return key in self.node.attr

    def s(self, key: str, default: str | None = None) -> str:
        if key not in self.node.attr:
            if default is None:
                raise FormatError(f"{self.where}: attribute {key!r} missing")
            return default
        return self.node.attr[key].s.decode("utf-8", "replace")

    def b(self, key: str, default: bool) -> bool:
        return bool(self.node.attr[key].b) if key in self.node.attr else default

    def f(self, key: str, default: float) -> float:
        return float(self.node.attr[key].f) if key in self.node.attr else default

    def ints(self, key: str, default: list | None = None) -> list[int]:
        if key not in self.node.attr:
            if default is None:
                raise FormatError(f"{self.where}: attribute {key!r} missing")
            return list(default)
        return [int(v) for v in self.node.attr[key].list.i]

    def data_format(self) -> str:
        fmt = self.s("data_format", "NHWC")
        if fmt not in ("NHWC", "NCHW"):
            raise ConfigError(f"{self.where}: data_format {fmt!r} not supported (NHWC or NCHW)")
        return fmt

    def spatial(self, key: str, fmt: str, default: list | None = None) -> tuple[int, int]:
        """(h, w) of a 4-value attribute in `fmt` order; the batch and channel entries must be 1."""
        v = self.ints(key, default)
        if len(v) != 4:
            raise ConfigError(f"{self.where}: {key} {v} must have 4 values")
        (n, h, w, c) = v if fmt == "NHWC" else (v[0], v[2], v[3], v[1])
        if n != 1 or c != 1 or h < 1 or w < 1:
            raise ConfigError(f"{self.where}: {key} {v} not supported (batch and channel entries 1, spatial >= 1)")
        return h, w

    def padding(self, fmt: str):
        """'SAME', 'VALID' or ((top, bottom), (left, right)) for EXPLICIT."""
        mode = self.s("padding")
        if mode in ("SAME", "VALID"):
            return mode
        if mode == "EXPLICIT":
            p = self.ints("explicit_paddings", [])
            if len(p) != 8 or min(p) < 0:
                raise ConfigError(f"{self.where}: explicit_paddings {p} must be 8 values >= 0")
            pairs = [(p[2 * i], p[2 * i + 1]) for i in range(4)]
            n, h, w, c = pairs if fmt == "NHWC" else (pairs[0], pairs[2], pairs[3], pairs[1])
            if n != (0, 0) or c != (0, 0):
                raise ConfigError(f"{self.where}: explicit_paddings {p} pad the batch or channel axis")
            return h, w
        raise ConfigError(f"{self.where}: padding {mode!r} not supported (SAME, VALID, EXPLICIT)")

    # ---- constant inputs
    def const(self, i: int, what: str) -> np.ndarray:
        """The value of data input `i`, which must be a Const (possibly behind Identity nodes)."""
        if i >= len(self.data_inputs):
            raise FormatError(f"{self.where}: has {len(self.data_inputs)} inputs; input {i} ({what}) is missing")
        src, k, _ = split_input(self.data_inputs[i])
        seen = set()
        while self.graph.nodes[src].op in ("Identity", "StopGradient") and src not in seen:
            seen.add(src)
            ins = [t for t in self.graph.nodes[src].input if not t.startswith("^")]
            if len(ins) != 1:
                break
            src, k, _ = split_input(ins[0])
        node = self.graph.nodes[src]
        if node.op != "Const" or k != 0:
            raise ConfigError(f"{self.where}: input {i} ({what}) must be a constant; it comes from node "
                              f"{src!r} ({node.op})")
        return tensor_array(node.attr["value"].tensor, f"{self.graph.path}: node {src!r} (Const)")

    def const_ints(self, i: int, what: str) -> list[int]:
        a = self.const(i, what)
        if a.dtype.kind not in "iu" or a.ndim > 1:
            raise ConfigError(f"{self.where}: input {i} ({what}) must be an integer scalar or vector, "
                              f"got {a.dtype} of shape {list(a.shape)}")
        return [int(v) for v in a.reshape(-1)]


class TFOp(nn.Module):
    static: tuple[int, ...] = ()  # data-input positions read at load time (constants), not passed to forward
    outputs = 1  # outputs computed (a reference to a later one is an error at load)

    def __init__(self, v: NodeView):
        super().__init__()
        self.op_type = v.node.op


def _axis(axis: int, ndim: int, what: str = "axis") -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{what} {axis} out of range for a tensor of rank {ndim}")
    return axis % ndim


def same_pads(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis: (before, after), the odd pixel after."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def _pads(padding, hw, k, s, d) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) for 'SAME' / 'VALID' / explicit pairs."""
    if padding == "VALID":
        return 0, 0, 0, 0
    if padding == "SAME":
        return same_pads(hw[0], k[0], s[0], d[0]) + same_pads(hw[1], k[1], s[1], d[1])
    return padding[0] + padding[1]


def _nchw(x: torch.Tensor, fmt: str) -> torch.Tensor:
    if x.ndim != 4:
        raise ValueError(f"expected a 4-D input, got shape {list(x.shape)}")
    return x.permute(0, 3, 1, 2) if fmt == "NHWC" else x


def _back(y: torch.Tensor, fmt: str) -> torch.Tensor:
    return y.permute(0, 2, 3, 1) if fmt == "NHWC" else y


def _padded(x: torch.Tensor, pads, value: float = 0.0) -> torch.Tensor:
    t, b, l, r = pads
    return F.pad(x, (l, r, t, b), value=value) if any(pads) else x


class Const(TFOp):
    def __init__(self, v: NodeView):
        super().__init__(v)
        a = tensor_array(v.node.attr["value"].tensor, v.where)
        self.register_buffer("value", torch.from_numpy(a))

    def forward(self):
        return (self.value,)


class Conv2D(TFOp):
    static = (1,)

    def __init__(self, v: NodeView):
        super().__init__(v)
        self.fmt = v.data_format()
        self.stride = v.spatial("strides", self.fmt)
        self.dilation = v.spatial("dilations", self.fmt, [1, 1, 1, 1])
        self.padding = v.padding(self.fmt)
        w = v.const(1, "filter")
        if w.ndim != 4 or w.dtype.kind != "f" or 0 in w.shape:
            raise FormatError(f"{v.where}: filter of shape {list(w.shape)} ({w.dtype}); expected a non-empty "
                              f"float H×W×in×out")
        self.depthwise = v.node.op == "DepthwiseConv2dNative"
        self.k, self.cin = w.shape[:2], w.shape[2]
        if self.depthwise:  # H×W×in×mult -> (in·mult)×1×H×W, one group per input channel
            w = w.reshape(w.shape[0], w.shape[1], 1, -1)
        self.register_buffer("weight", torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))))

    def forward(self, x):
        x = _nchw(x, self.fmt)
        c = x.shape[1]
        if self.depthwise:
            if c != self.cin:
                raise ValueError(f"input has {c} channels, the depthwise filter {self.cin}")
            groups = c
        else:
            if c % self.cin:
                raise ValueError(f"input has {c} channels, not a multiple of the filter's {self.cin}")
            groups = c // self.cin
        t, b, l, r = _pads(self.padding, x.shape[2:], self.k, self.stride, self.dilation)
        if t == b and l == r:  # symmetric: the convolution pads (no padded copy of the input)
            y = F.conv2d(x, self.weight, None, self.stride, (t, l), self.dilation, groups)
        else:
            y = F.conv2d(_padded(x, (t, b, l, r)), self.weight, None, self.stride, 0, self.dilation, groups)
        return (_back(y, self.fmt),)


class BiasAdd(TFOp):
    def __init__(self, v: NodeView):
        super().__init__(v)
        self.fmt = v.data_format()

    def forward(self, x, b):
        if b.ndim != 1:
            raise ValueError(f"bias must be 1-D, got shape {list(b.shape)}")
        if self.fmt == "NCHW" and x.ndim >= 3:
            return (x + b.view([-1] + [1] * (x.ndim - 2)),)
        return (x + b,)


class FusedBatchNorm(TFOp):
    static = (1, 2, 3, 4)

    def __init__(self, v: NodeView):
        super().__init__(v)
        if v.b("is_training", True):
            raise ConfigError(f"{v.where}: is_training is true (batch statistics): not an inference graph")
        self.fmt = v.data_format()
        scale, offset, mean, var = (v.const(i, w) for i, w in ((1, "scale"), (2, "offset"), (3, "mean"),
                                                               (4, "variance")))
        arrays = [np.asarray(a).reshape(-1) for a in (scale, offset, mean, var)]
        if len({a.size for a in arrays}) != 1 or min(a.ndim for a in (scale, offset, mean, var)) != 1:
            raise FormatError(f"{v.where}: scale, offset, mean and variance must be 1-D of one size, got "
                              f"{[list(a.shape) for a in (scale, offset, mean, var)]}")
        eps = np.float32(v.f("epsilon", 1e-4))
        t = [torch.from_numpy(a.astype(np.float32)) for a in arrays]
        self.register_buffer("mean", t[2])
        self.register_buffer("factor", torch.rsqrt(t[3] + torch.tensor(eps)) * t[0])
        self.register_buffer("offset", t[1])

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"expected a 4-D input, got shape {list(x.shape)}")
        shape = [-1] if self.fmt == "NHWC" else [-1, 1, 1]
        return ((x - self.mean.view(shape)) * self.factor.view(shape) + self.offset.view(shape),)


class Pool(TFOp):
    def __init__(self, v: NodeView):
        super().__init__(v)
        self.fmt = v.data_format()
        self.k = v.spatial("ksize", self.fmt)
        self.stride = v.spatial("strides", self.fmt)
        self.padding = v.s("padding")
        if self.padding not in ("SAME", "VALID"):
            raise ConfigError(f"{v.where}: padding {self.padding!r} not supported (SAME or VALID)")
        self.max = v.node.op == "MaxPool"

    def forward(self, x):
        x = _nchw(x, self.fmt)
        hw = tuple(x.shape[2:])
        pads = _pads(self.padding, hw, self.k, self.stride, (1, 1))
        if self.max:
            return (_back(F.max_pool2d(_padded(x, pads, float("-inf")), self.k, self.stride), self.fmt),)
        total = F.avg_pool2d(_padded(x, pads), self.k, self.stride, divisor_override=1)
        counts = [self._counts(hw[i], self.k[i], self.stride[i], pads[2 * i], total.shape[2 + i]) for i in (0, 1)]
        count = torch.outer(counts[0], counts[1]).to(dtype=x.dtype, device=x.device)
        return (_back(total / count, self.fmt),)

    @staticmethod
    def _counts(size: int, k: int, s: int, before: int, n: int) -> torch.Tensor:
        """Input pixels (not padding) in each window along one axis."""
        start = torch.arange(n) * s - before
        return (torch.clamp(start + k, max=size) - torch.clamp(start, min=0)).to(torch.float64)


_UNARY = {
    "Relu": torch.relu, "Relu6": lambda x: torch.clamp(x, 0, 6), "Sigmoid": torch.sigmoid, "Tanh": torch.tanh,
    "Softmax": lambda x: torch.softmax(x, dim=-1), "Square": lambda x: x * x, "Sqrt": torch.sqrt,
    "Rsqrt": torch.rsqrt, "Identity": lambda x: x, "StopGradient": lambda x: x,
    "PlaceholderWithDefault": lambda x: x,
}
_BINARY = {"Add": torch.add, "AddV2": torch.add, "Sub": torch.sub, "Mul": torch.mul, "RealDiv": torch.div,
           "Maximum": torch.maximum, "Minimum": torch.minimum}


class Unary(TFOp):
    def __init__(self, v: NodeView):
        super().__init__(v)
        self.fn = _UNARY[v.node.op]

    def forward(self, x):
        return (self.fn(x),)


class LeakyRelu(TFOp):
    def __init__(self, v: NodeView):
        super().__init__(v)
        self.alpha = v.f("alpha", 0.2)

    def forward(self, x):
        return (torch.where(x > 0, x, x * self.alpha),)


class Binary(TFOp):
    def __init__(self, v: NodeView):
        super().__init__(v)
        self.fn = _BINARY[v.node.op]

    def forward(self, a, b):
        return (self.fn(a, b),)


class MatMul(TFOp):
    def __init__(self, v: NodeView):
        super().__init__(v)
        self.ta, self.tb = v.b("transpose_a", False), v.b("transpose_b", False)

    def forward(self, a, b):
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"MatMul takes matrices, got shapes {list(a.shape)} and {list(b.shape)}")
        return (torch.matmul(a.T if self.ta else a, b.T if self.tb else b),)


class Concat(TFOp):
    def __init__(self, v: NodeView):
        super().__init__(v)
        n = len(v.data_inputs)
        if n < 2:
            raise FormatError(f"{v.where}: no inputs to concatenate")
        self.axis_at = n - 1 if v.node.op == "ConcatV2" else 0
        self.static = (self.axis_at,)
        axis = v.const_ints(self.axis_at, "axis")
        if len(axis) != 1:
            raise ConfigError(f"{v.where}: axis must be a scalar, got {axis}")
        self.axis = axis[0]

    def forward(self, *xs):
        return (torch.cat(xs, dim=_axis(self.axis, xs[0].ndim)),)


class Reshape(TFOp):
    static = (1,)

    def __init__(self, v: NodeView):
        super().__init__(v)
        self.shape = v.const_ints(1, "shape")
        if self.shape.count(-1) > 1 or any(d < -1 for d in self.shape):
            raise ConfigError(f"{v.where}: shape {self.shape} (one -1 at most, other dims >= 0)")

    def forward(self, x):
        known = int(np.prod([d for d in self.shape if d != -1], dtype=np.int64))
        n = x.numel()
        if -1 in self.shape:
            if known == 0 or n % known:
                raise ValueError(f"cannot reshape {list(x.shape)} ({n} values) to {self.shape}")
        elif known != n:
            raise ValueError(f"cannot reshape {list(x.shape)} ({n} values) to {self.shape}")
        return (x.reshape(self.shape),)


class Squeeze(TFOp):
    def __init__(self, v: NodeView):
        super().__init__(v)
        self.dims = v.ints("squeeze_dims", [])

    def forward(self, x):
        if not self.dims:
            return (x.reshape([d for d in x.shape if d != 1]),)
        dims = {_axis(d, x.ndim, "squeeze dim") for d in self.dims}
        bad = [d for d in dims if x.shape[d] != 1]
        if bad:
            raise ValueError(f"cannot squeeze dims {sorted(bad)} of shape {list(x.shape)} (not size 1)")
        return (x.reshape([s for i, s in enumerate(x.shape) if i not in dims]),)


_REDUCE = {"Sum": torch.sum, "Mean": torch.mean, "Max": torch.amax, "Min": torch.amin, "Prod": None}


class Reduce(TFOp):
    static = (1,)

    def __init__(self, v: NodeView):
        super().__init__(v)
        self.kind = v.node.op
        self.axes = v.const_ints(1, "reduction_indices")
        self.keep = v.b("keep_dims", False)

    def forward(self, x):
        if not self.axes:  # TensorFlow: no reduction indices reduce nothing
            return (x,)
        axes = sorted({_axis(a, x.ndim, "reduction index") for a in self.axes})
        if self.kind == "Prod":
            out = x
            for a in reversed(axes):
                out = torch.prod(out, dim=a, keepdim=self.keep)
            return (out,)
        return (_REDUCE[self.kind](x, dim=axes, keepdim=self.keep),)


class Pad(TFOp):
    static = (1,)

    def __init__(self, v: NodeView):
        super().__init__(v)
        p = v.const(1, "paddings")
        if p.ndim != 2 or p.shape[1:] != (2,) or p.dtype.kind not in "iu" or (p < 0).any():
            raise ConfigError(f"{v.where}: paddings must be rank×2 integers >= 0, got {p.tolist()}")
        self.pairs = [(int(a), int(b)) for a, b in p]

    def forward(self, x):
        if len(self.pairs) != x.ndim:
            raise ValueError(f"{len(self.pairs)} padding pairs for a tensor of rank {x.ndim}")
        flat = [v for a, b in reversed(self.pairs) for v in (a, b)]
        return (F.pad(x, flat),)


OPS: dict[str, type] = {
    "Const": Const, "Conv2D": Conv2D, "DepthwiseConv2dNative": Conv2D, "BiasAdd": BiasAdd,
    "FusedBatchNorm": FusedBatchNorm, "FusedBatchNormV2": FusedBatchNorm, "FusedBatchNormV3": FusedBatchNorm,
    "MaxPool": Pool, "AvgPool": Pool, "LeakyRelu": LeakyRelu, "MatMul": MatMul, "ConcatV2": Concat,
    "Concat": Concat, "Reshape": Reshape, "Squeeze": Squeeze, "Pad": Pad,
    **{k: Unary for k in _UNARY}, **{k: Binary for k in _BINARY}, **{k: Reduce for k in _REDUCE},
}
INPUT_OPS = ("Placeholder",)


def supported_ops() -> list[str]:
    return sorted(set(OPS) | set(INPUT_OPS))


def build_op(graph: Graph, name: str) -> TFOp:
    """The module for node `name`; an op type outside `OPS` is a ConfigError naming it, the node and the file."""
    node = graph.nodes[name]
    cls = OPS.get(node.op)
    if cls is None:
        raise ConfigError(f"{graph.path}: node {name!r}: op type {node.op!r} is not supported by the GraphDef "
                          f"runner (supported: {', '.join(supported_ops())})")
    return cls(NodeView(graph, name))


__all__ = ["OPS", "NodeView", "TFOp", "build_op", "same_pads", "supported_ops"]
