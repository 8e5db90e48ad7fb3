"""Caffe deploy networks (`NET.prototxt` + `WEIGHTS.caffemodel`) run in PyTorch, without Caffe.

OpenCV 5 removed its Caffe importer, yet the original SphereFace, AM-Softmax, NormFace and CosFace releases
are Caffe models. This module reads both files with protobuf (`proto_schemas.caffe()`: the prototxt as text
format, the weights as binary) and runs the layers in order with PyTorch, following Caffe's own definitions:

| layer | as in Caffe |
|---|---|
| Input (or NetParameter input / input_shape / input_dim) | the one image input; its declared H×W is the network's input size |
| Convolution | pad / kernel / stride / dilation (single or _h/_w), group, bias_term; weights out×in/g×kh×kw |
| InnerProduct | flattens from `axis` (default 1); weights num_output×K (K×num_output if `transpose`) |
| Pooling | MAX / AVE with Caffe's ceil rounding (the last window must start inside the padded input) and AVE divisor counting the padding up to H+pad — PyTorch's `ceil_mode=True, count_include_pad=True`; `global_pooling`; `round_mode: FLOOR` |
| PReLU, ReLU (negative_slope), Sigmoid, TanH, Dropout (identity at test time), Softmax | |
| BatchNorm | blobs mean, variance, scale factor s: (x − mean/s) / sqrt(var/s + eps) (s = 0 → 0) |
| Scale, Bias | one learned blob over `axis` (num_axes 1), optional bias |
| Eltwise | SUM (with `coeff`), PROD, MAX |
| Flatten, Reshape, Concat, Slice, Split | |

Layers excluded from the TEST phase are skipped; Data, loss and accuracy layers are an error (a deploy
prototxt is expected). Any other layer type, a field this reader does not know, a missing layer in the
weights file or a blob of the wrong shape is a ConfigError/FormatError naming the file and layer. The
network's output is the last blob that no later layer consumes. Arithmetic: float32, like Caffe.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from arface_repro.errors import ConfigError, FormatError, MissingDataError
from arface_repro.models import proto_schemas
from arface_repro.models.preprocess import Preprocess, for_network
from arface_repro.models.torch_model import TorchModel
from arface_repro.utils.hashing import sha256_bytes, sha256_file
from arface_repro.utils.input_files import read_capped
from arface_repro.utils.textfile import MAX_TEXT_BYTES

MAX_PROTO_BYTES = 2047 << 20  # protobuf cannot parse a message of 2 GiB or more
SKIPPED_AT_TEST = ("Dropout", "Silence")
UNSUPPORTED_HINT = {"Data": "a data layer", "ImageData": "a data layer", "HDF5Data": "a data layer",
                    "MemoryData": "a data layer", "SoftmaxWithLoss": "a loss layer", "Accuracy": "an accuracy layer",
                    "EuclideanLoss": "a loss layer", "ContrastiveLoss": "a loss layer"}
SUPPORTED = ("Input", "Convolution", "InnerProduct", "Pooling", "PReLU", "ReLU", "Sigmoid", "TanH", "Dropout",
             "Softmax", "BatchNorm", "Scale", "Bias", "Eltwise", "Flatten", "Reshape", "Concat", "Slice", "Split")


def read_prototxt(path: str | os.PathLike):
    """NetParameter from a text prototxt; a field outside the supported schema names its line."""
    from google.protobuf import text_format

    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: prototxt not found")
    net = proto_schemas.caffe()["NetParameter"]()
    try:
        text = read_capped(path, "Caffe prototxt", MAX_TEXT_BYTES).decode("utf-8", errors="replace")
        text_format.Parse(text, net)
    except text_format.ParseError as exc:
        line = exc.GetLine() if hasattr(exc, "GetLine") else None
        msg = str(exc).split(" : ", 1)[-1] if line else str(exc)
        where = f"{path}: line {line}" if line else str(path)
        raise FormatError(f"{where}: not a Caffe prototxt this reader understands: {msg}") from None
    return net


def read_caffemodel(path: str | os.PathLike):
    """NetParameter from a binary .caffemodel."""
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: caffemodel not found")
    net = proto_schemas.caffe()["NetParameter"]()
    try:
        net.ParseFromString(read_capped(path, "caffemodel", MAX_PROTO_BYTES))
    except DecodeError as exc:
        raise FormatError(f"{path}: not a binary Caffe NetParameter ({exc})") from None
    if not net.layer and not net.layers:
        raise FormatError(f"{path}: no layers in this Caffe weights file")
    return net


def blob_array(blob, where: str) -> np.ndarray:
    """A BlobProto as a float32 array of its shape (new `shape` field or legacy num/channels/height/width)."""
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    else:
        # legacy 4-D num×channels×height×width (vectors 1×1×1×C, matrices 1×1×R×C: reshaped by their users)
        shape = tuple(int(v) for v in (blob.num, blob.channels, blob.height, blob.width))
    data = np.asarray(blob.data if len(blob.data) else blob.double_data, dtype=np.float32)
    if data.size != int(np.prod(shape)):
        raise FormatError(f"{where}: blob of shape {shape} holds {data.size} values")
    return data.reshape(shape)


def _included_in_test(layer) -> bool:
    """Caffe's NetStateRule check for phase TEST (levels and stages are not used by deploy files)."""
    if layer.include:
        return any(not r.HasField("phase") or r.phase == 1 for r in layer.include)
    return not any(r.HasField("phase") and r.phase == 1 for r in layer.exclude)


def _pair(values, h, w, default, what, where) -> tuple[int, int]:
    vals = list(values)
    if h is not None or w is not None:
        if vals:
            raise ConfigError(f"{where}: give either {what} or {what}_h/{what}_w, not both")
        return int(h if h is not None else default), int(w if w is not None else default)
    if not vals:
        return default, default
    if len(vals) == 1:
        return int(vals[0]), int(vals[0])
    if len(vals) == 2:
        return int(vals[0]), int(vals[1])
    raise ConfigError(f"{where}: {what} has {len(vals)} values; 2-D layers take 1 or 2")


def _opt(msg, name):
    return getattr(msg, name) if msg.HasField(name) else None


class CaffeNet(nn.Module):
    """A Caffe deploy network as a torch module: `forward(N×C×H×W) -> N×D` (the network's output blob)."""

    def __init__(self, prototxt: str | os.PathLike, caffemodel: str | os.PathLike):
        super().__init__()
        self.prototxt, self.caffemodel = str(prototxt), str(caffemodel)
        net = read_prototxt(prototxt)
        if net.layers:
            raise FormatError(f"{prototxt}: V1 'layers' prototxt (pre-2015 Caffe); upgrade it with Caffe's "
                              f"upgrade_net_proto_text tool to the 'layer' format")
        weights = read_caffemodel(caffemodel)
        blobs = {layer.name: list(layer.blobs) for layer in weights.layer}
        blobs.update({layer.name: list(layer.blobs) for layer in weights.layers if layer.name not in blobs})
        self.input_name, self.input_shape = self._declared_input(net)
        self.steps: list[tuple] = []  # (type, name, bottoms, tops, settings)
        self.params = nn.ParameterDict()
        produced, consumed = [self.input_name], set()
        for layer in net.layer:
            if not _included_in_test(layer) or layer.type == "Input":
                continue
            where = f"{prototxt}: layer {layer.name!r} ({layer.type})"
            if layer.type in UNSUPPORTED_HINT:
                raise ConfigError(f"{where} is {UNSUPPORTED_HINT[layer.type]}; give the deploy prototxt")
            if layer.type not in SUPPORTED:
                raise ConfigError(f"{where}: layer type not supported; supported: {', '.join(SUPPORTED)}")
            for b in layer.bottom:
                if b not in produced:
                    raise ConfigError(f"{where}: input blob {b!r} is not produced by an earlier layer")
                consumed.add(b)
            settings = self._settings(layer, blobs.get(layer.name), where, f"{caffemodel}: layer {layer.name!r}")
            self.steps.append((layer.type, layer.name, list(layer.bottom), list(layer.top), settings))
            for t in layer.top:  # a (re)written blob: its new value is not consumed yet (in-place layers)
                consumed.discard(t)
                produced.append(t)
        outputs = [t for t in dict.fromkeys(produced[1:]) if t not in consumed]
        if not self.steps or not outputs:
            raise ConfigError(f"{prototxt}: no layers after the input")
        self.output_name = outputs[-1]

    # ------------------------------------------------------------------ reading
    @staticmethod
    def _declared_input(net) -> tuple[str, tuple[int, ...] | None]:
        names, shapes = list(net.input), [tuple(int(d) for d in s.dim) for s in net.input_shape]
        if net.input_dim:
            dims = [int(d) for d in net.input_dim]
            shapes = [tuple(dims[i:i + 4]) for i in range(0, len(dims), 4)]
        for layer in net.layer:
            if layer.type == "Input" and _included_in_test(layer):
                names += list(layer.top)
                shapes += [tuple(int(d) for d in s.dim) for s in layer.input_param.shape]
        if len(names) != 1:
            raise ConfigError(f"the network has {len(names)} inputs {names}; one image input is expected")
        return names[0], (shapes[0] if shapes else None)

    def _add(self, array: np.ndarray) -> str:
        key = f"{len(self.params)}"
        self.params[key] = nn.Parameter(torch.from_numpy(np.ascontiguousarray(array)), requires_grad=False)
        return key

    def _settings(self, layer, blobs, where: str, wwhere: str) -> dict:
        t = layer.type
        need = {"Convolution": (1, 2), "InnerProduct": (1, 2), "PReLU": (1, 1), "BatchNorm": (3, 3),
                "Scale": (1, 2), "Bias": (1, 1)}.get(t)
        arrays = []
        if need:
            if blobs is None:
                raise FormatError(f"{wwhere}: layer not in the weights file (prototxt and caffemodel differ?)")
            arrays = [blob_array(b, f"{wwhere} blob {i}") for i, b in enumerate(blobs)]
            if not need[0] <= len(arrays) <= need[1]:
                raise FormatError(f"{wwhere}: {len(arrays)} weight blob(s), expected {need[0]}–{need[1]}")
        s: dict = {}
        if t == "Convolution":
            p = layer.convolution_param
            kh, kw = _pair(p.kernel_size, _opt(p, "kernel_h"), _opt(p, "kernel_w"), 0, "kernel_size", where)
            s["stride"] = _pair(p.stride, _opt(p, "stride_h"), _opt(p, "stride_w"), 1, "stride", where)
            s["pad"] = _pair(p.pad, _opt(p, "pad_h"), _opt(p, "pad_w"), 0, "pad", where)
            s["dilation"] = _pair(p.dilation, None, None, 1, "dilation", where)
            s["groups"] = int(p.group)
            if p.axis != 1:
                raise ConfigError(f"{where}: convolution axis {p.axis} not supported (only 1)")
            w = arrays[0]
            if w.ndim != 4 or w.shape[0] != p.num_output or w.shape[2:] != (kh, kw):
                raise FormatError(f"{wwhere}: weights {w.shape}, expected {p.num_output}×C×{kh}×{kw}")
            s["w"] = self._add(w)
            s["b"] = None
            if p.bias_term:
                if len(arrays) < 2 or arrays[1].size != p.num_output:
                    raise FormatError(f"{wwhere}: bias_term is set but no bias of {p.num_output} values")
                s["b"] = self._add(arrays[1].reshape(-1))
        elif t == "InnerProduct":
            p = layer.inner_product_param
            w = arrays[0].reshape(-1, arrays[0].shape[-1]) if arrays[0].ndim > 2 else arrays[0]
            if w.ndim == 1:
                raise FormatError(f"{wwhere}: weights must be a matrix, got shape {arrays[0].shape}")
            w = w.T if p.transpose else w
            if w.shape[0] != p.num_output:
                raise FormatError(f"{wwhere}: weights {w.shape}, expected {p.num_output} rows")
            s["axis"], s["w"], s["b"] = int(p.axis), self._add(w), None
            if p.bias_term:
                if len(arrays) < 2 or arrays[1].size != p.num_output:
                    raise FormatError(f"{wwhere}: bias_term is set but no bias of {p.num_output} values")
                s["b"] = self._add(arrays[1].reshape(-1))
        elif t == "Pooling":
            p = layer.pooling_param
            if p.pool not in (0, 1):
                raise ConfigError(f"{where}: only MAX and AVE pooling are supported")
            s["max"], s["global"], s["ceil"] = p.pool == 0, bool(p.global_pooling), p.round_mode == 0
            if not s["global"]:
                s["kernel"] = _pair(p.kernel_size, _opt(p, "kernel_h"), _opt(p, "kernel_w"), 0, "kernel_size", where)
                if min(s["kernel"]) <= 0:
                    raise ConfigError(f"{where}: pooling needs kernel_size (or global_pooling)")
            s["stride"] = _pair(p.stride, _opt(p, "stride_h"), _opt(p, "stride_w"), 1, "stride", where)
            s["pad"] = _pair(p.pad, _opt(p, "pad_h"), _opt(p, "pad_w"), 0, "pad", where)
        elif t == "PReLU":
            s["w"] = self._add(arrays[0].reshape(-1))
        elif t == "ReLU":
            s["slope"] = float(layer.relu_param.negative_slope)
        elif t == "BatchNorm":
            p = layer.batch_norm_param
            if p.HasField("use_global_stats") and not p.use_global_stats:
                raise ConfigError(f"{where}: use_global_stats: false (batch statistics) cannot be evaluated")
            factor = float(arrays[2].reshape(-1)[0]) if arrays[2].size else 1.0
            k = 0.0 if factor == 0 else 1.0 / factor
            mean, var = arrays[0].reshape(-1) * np.float32(k), arrays[1].reshape(-1) * np.float32(k)
            s["mean"], s["var"], s["eps"] = self._add(mean), self._add(var), float(p.eps)
        elif t in ("Scale", "Bias"):
            p = layer.scale_param if t == "Scale" else layer.bias_param
            if len(layer.bottom) != 1:
                raise ConfigError(f"{where}: a {t} layer with a second input blob is not supported")
            if p.num_axes != 1:
                raise ConfigError(f"{where}: {t} num_axes {p.num_axes} not supported (only 1)")
            s["axis"] = int(p.axis)
            s["w"] = self._add(arrays[0].reshape(-1))
            s["b"] = None
            if t == "Scale" and p.bias_term:
                if len(arrays) < 2:
                    raise FormatError(f"{wwhere}: bias_term is set but the layer has no bias blob")
                s["b"] = self._add(arrays[1].reshape(-1))
        elif t == "Eltwise":
            p = layer.eltwise_param
            s["op"] = {0: "prod", 1: "sum", 2: "max"}[p.operation]
            s["coeff"] = list(p.coeff) or [1.0] * len(layer.bottom)
            if len(s["coeff"]) != len(layer.bottom):
                raise ConfigError(f"{where}: {len(s['coeff'])} coefficients for {len(layer.bottom)} inputs")
            if s["op"] != "sum" and list(p.coeff):
                raise ConfigError(f"{where}: coeff is only allowed with SUM")
        elif t == "Flatten":
            s["axis"], s["end"] = int(layer.flatten_param.axis), int(layer.flatten_param.end_axis)
        elif t == "Reshape":
            p = layer.reshape_param
            s["shape"], s["axis"], s["num_axes"] = [int(d) for d in p.shape.dim], int(p.axis), int(p.num_axes)
        elif t == "Concat":
            p = layer.concat_param
            s["axis"] = int(p.axis) if p.HasField("axis") or not p.HasField("concat_dim") else int(p.concat_dim)
        elif t == "Slice":
            p = layer.slice_param
            s["axis"] = int(p.axis) if p.HasField("axis") or not p.HasField("slice_dim") else int(p.slice_dim)
            s["points"] = [int(v) for v in p.slice_point]
        elif t == "Softmax":
            s["axis"] = int(layer.softmax_param.axis)
        return s

    # ------------------------------------------------------------------ running
    def _p(self, key):
        return None if key is None else self.params[key]

    def _run(self, t: str, name: str, x: list, s: dict, tops: int) -> list:
        if t == "Convolution":
            return [F.conv2d(x[0], self._p(s["w"]), self._p(s["b"]), s["stride"], s["pad"], s["dilation"], s["groups"])]
        if t == "InnerProduct":
            a = x[0].flatten(s["axis"] % x[0].ndim)
            return [F.linear(a, self._p(s["w"]), self._p(s["b"]))]
        if t == "Pooling":
            inp = x[0]
            if s["global"]:
                kernel, stride, pad = tuple(inp.shape[2:]), (1, 1), (0, 0)
            else:
                kernel, stride, pad = s["kernel"], s["stride"], s["pad"]
            if s["max"]:
                return [F.max_pool2d(inp, kernel, stride, pad, ceil_mode=s["ceil"])]
            return [F.avg_pool2d(inp, kernel, stride, pad, ceil_mode=s["ceil"], count_include_pad=True)]
        if t == "PReLU":
            w = self._p(s["w"])
            shape = [1, -1] + [1] * (x[0].ndim - 2) if w.numel() > 1 else [1]
            return [torch.where(x[0] > 0, x[0], x[0] * w.view(shape))]
        if t == "ReLU":
            return [F.leaky_relu(x[0], s["slope"]) if s["slope"] else F.relu(x[0])]
        if t == "Sigmoid":
            return [torch.sigmoid(x[0])]
        if t == "TanH":
            return [torch.tanh(x[0])]
        if t == "Softmax":
            return [torch.softmax(x[0], dim=s["axis"])]
        if t in SKIPPED_AT_TEST or t == "Split":
            return [x[0]] * max(tops, 1)
        if t == "BatchNorm":
            shape = [1, -1] + [1] * (x[0].ndim - 2)
            return [(x[0] - self._p(s["mean"]).view(shape)) / torch.sqrt(self._p(s["var"]).view(shape) + s["eps"])]
        if t in ("Scale", "Bias"):
            axis = s["axis"] % x[0].ndim
            shape = [1] * axis + [-1] + [1] * (x[0].ndim - axis - 1)
            if t == "Bias":
                return [x[0] + self._p(s["w"]).view(shape)]
            out = x[0] * self._p(s["w"]).view(shape)
            return [out + self._p(s["b"]).view(shape) if s["b"] is not None else out]
        if t == "Eltwise":
            if s["op"] == "sum":
                out = x[0] * s["coeff"][0] if s["coeff"][0] != 1 else x[0]
                for xi, c in zip(x[1:], s["coeff"][1:]):
                    out = out + (xi * c if c != 1 else xi)
                return [out]
            out = x[0]
            for xi in x[1:]:
                out = out * xi if s["op"] == "prod" else torch.maximum(out, xi)
            return [out]
        if t == "Flatten":
            return [x[0].flatten(s["axis"] % x[0].ndim, s["end"] % x[0].ndim)]
        if t == "Reshape":
            shape = list(x[0].shape)
            a = s["axis"] % (len(shape) + 1)
            end = len(shape) if s["num_axes"] == -1 else a + s["num_axes"]
            new = [shape[a + i] if d == 0 else d for i, d in enumerate(s["shape"])]
            return [x[0].reshape(shape[:a] + new + shape[end:])]
        if t == "Concat":
            return [torch.cat(x, dim=s["axis"])]
        if t == "Slice":
            axis, size = s["axis"] % x[0].ndim, x[0].shape[s["axis"] % x[0].ndim]
            points = s["points"] or [size // tops * i for i in range(1, tops)]
            edges = [0] + points + [size]
            return [x[0].narrow(axis, a, b - a) for a, b in zip(edges[:-1], edges[1:])]
        raise ConfigError(f"layer {name!r}: type {t} not supported")  # pragma: no cover - rejected at load

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blobs = {self.input_name: x}
        for t, name, bottoms, tops, s in self.steps:
            try:
                outs = self._run(t, name, [blobs[b] for b in bottoms], s, len(tops))
            except RuntimeError as exc:
                shapes = [tuple(blobs[b].shape) for b in bottoms]
                raise ConfigError(f"{self.prototxt}: layer {name!r} ({t}) failed on input {shapes}: "
                                  f"{str(exc).splitlines()[0]}") from None
            if len(outs) != len(tops):
                raise ConfigError(f"{self.prototxt}: layer {name!r} ({t}) makes {len(outs)} blobs, has {len(tops)} tops")
            blobs.update(zip(tops, outs))
        out = blobs[self.output_name]
        return out.flatten(1) if out.ndim > 2 else out


class CaffeModel(TorchModel):
    """A Caffe deploy network run by `CaffeNet` in PyTorch (`caffe:NET.prototxt:WEIGHTS.caffemodel`)."""

    kind = "caffe"


def load_caffe_model(spec: str, prototxt: Path, caffemodel: Path, preprocess=None, device=None) -> CaffeModel:
    """The Caffe network as an EmbeddingModel. Input size from the prototxt, else from `preprocess`
    (size=HxW), else a ConfigError. Default preprocessing: BGR (Caffe's convention), (x − 127.5)/128."""
    module = CaffeNet(prototxt, caffemodel)
    declared = module.input_shape
    hw = tuple(declared[2:4]) if declared and len(declared) == 4 and min(declared[2:4]) > 0 else None
    if declared and len(declared) == 4 and declared[1] != 3:
        raise ConfigError(f"{prototxt}: input {module.input_name!r} has {declared[1]} channels; 3 (colour) expected")
    pre = for_network(spec, Preprocess(color="BGR"), preprocess, hw, source=prototxt)
    digest = sha256_bytes((sha256_file(prototxt) + sha256_file(caffemodel)).encode())
    return CaffeModel(module, spec, pre, digest, device)
