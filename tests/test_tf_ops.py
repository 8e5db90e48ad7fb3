"""The GraphDef runner's ops (`tf_ops`) and reader checks (`tf_graphdef`) on small graphs written with the
package's protobuf schema: hand-computed cases for TensorFlow's asymmetric SAME padding, float64 numpy
references for convolutions, pools, batch norm, reductions and the l2-normalise ops, and the one-line errors
for unsupported ops, cycles, dangling inputs, oversized constants and bad attributes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from tf_graph_builder import GraphBuilder

from arface_repro.errors import ConfigError, FormatError, MissingDataError
from arface_repro.models.backends import load_model
from arface_repro.models.tf_graph_net import TFGraphNet
from arface_repro.models.tf_graphdef import MAX_CONST_ELEMENTS, read_graphdef, tensor_array
from arface_repro.models.tf_ops import same_pads, supported_ops

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(b: GraphBuilder, x: np.ndarray, tmp_path, name="g.pb") -> np.ndarray:
    net = TFGraphNet(b.save(tmp_path / name))
    with torch.inference_mode():
        return net.run(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def ref_pads(size, k, s, d=1):
    """SAME padding from TensorFlow's documented output size ceil(in / s)."""
    out = int(np.ceil(size / s))
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def ref_conv(x, w, stride, padding, dilation=(1, 1)):
    """float64 NHWC convolution by its definition; w: H×W×in×out (in·groups = channels)."""
    n, h, wd, c = x.shape
    kh, kw, cin, cout = w.shape
    groups = c // cin
    if padding == "SAME":
        (t, bt), (l, r) = ref_pads(h, kh, stride[0], dilation[0]), ref_pads(wd, kw, stride[1], dilation[1])
    else:
        t = bt = l = r = 0
    xp = np.pad(x.astype(np.float64), ((0, 0), (t, bt), (l, r), (0, 0)))
    eh, ew = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1
    oh, ow = (xp.shape[1] - eh) // stride[0] + 1, (xp.shape[2] - ew) // stride[1] + 1
    out = np.zeros((n, oh, ow, cout))
    per = cout // groups
    for i, j in itertools.product(range(oh), range(ow)):
        patch = xp[:, i * stride[0]:i * stride[0] + eh:dilation[0], j * stride[1]:j * stride[1] + ew:dilation[1], :]
        for g in range(groups):
            out[:, i, j, g * per:(g + 1) * per] = np.einsum(
                "nhwc,hwco->no", patch[..., g * cin:(g + 1) * cin], w[..., g * per:(g + 1) * per])
    return out


def ref_pool(x, k, s, padding, mode):
    """float64 NHWC pooling over the windows' input pixels only (TF: SAME padding is never counted)."""
    n, h, w, c = x.shape
    if padding == "SAME":
        (t, _), (l, _) = ref_pads(h, k[0], s[0]), ref_pads(w, k[1], s[1])
        oh, ow = int(np.ceil(h / s[0])), int(np.ceil(w / s[1]))
    else:
        t = l = 0
        oh, ow = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
    out = np.zeros((n, oh, ow, c))
    for i, j in itertools.product(range(oh), range(ow)):
        r0, c0 = i * s[0] - t, j * s[1] - l
        win = x[:, max(r0, 0):r0 + k[0], max(c0, 0):c0 + k[1], :].astype(np.float64)
        out[:, i, j] = win.max(axis=(1, 2)) if mode == "max" else win.mean(axis=(1, 2))
    return out


# ---------------------------------------------------------------- padding and convolution


def test_same_pads_put_the_odd_pixel_after():
    assert same_pads(5, 2, 2) == (0, 1) and same_pads(6, 3, 2) == (0, 1) and same_pads(5, 3, 2) == (1, 1)
    assert same_pads(7, 3, 1, 2) == (2, 2) and same_pads(4, 1, 2) == (0, 0) and same_pads(3, 5, 3) == (1, 1)


def test_conv_same_stride2_odd_size_by_hand(tmp_path):
    """5×5 input 0..24, 2×2 ones filter, stride 2, SAME: 3×3 output, one padded row/column at the bottom/right."""
    b = GraphBuilder()
    b.placeholder("x", [1, 5, 5, 1])
    b.const("w", np.ones((2, 2, 1, 1), np.float32))
    b.op("Conv2D", "conv", ["x", "w"], strides=[1, 2, 2, 1], padding="SAME", data_format="NHWC")
    x = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
    got = run(b, x, tmp_path)[0, :, :, 0]
    a = x[0, :, :, 0]
    want = [[a[0:2, 0:2].sum(), a[0:2, 2:4].sum(), a[0:2, 4].sum()],
            [a[2:4, 0:2].sum(), a[2:4, 2:4].sum(), a[2:4, 4].sum()],
            [a[4, 0:2].sum(), a[4, 2:4].sum(), a[4, 4]]]
    np.testing.assert_array_equal(got, np.array(want, np.float32))  # small integers: exact in float32


@pytest.mark.parametrize("hw,k,stride,dil,padding,cin,groups", [
    ((7, 9), (3, 3), (2, 2), (1, 1), "SAME", 3, 1),
    ((6, 6), (3, 3), (2, 2), (1, 1), "SAME", 2, 1),
    ((8, 5), (1, 7), (1, 1), (1, 1), "SAME", 4, 1),
    ((9, 7), (3, 2), (3, 2), (1, 1), "VALID", 3, 1),
    ((9, 9), (3, 3), (1, 1), (2, 2), "SAME", 2, 1),
    ((7, 7), (3, 3), (2, 1), (1, 1), "SAME", 2, 2),
])
def test_conv2d_against_numpy(tmp_path, hw, k, stride, dil, padding, cin, groups):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, *hw, cin * groups)).astype(np.float32)
    w = rng.standard_normal((*k, cin, 4 * groups)).astype(np.float32)
    b = GraphBuilder()
    b.placeholder("x", [None, *hw, cin * groups])
    b.const("w", w)
    b.op("Conv2D", "conv", ["x", "w"], strides=[1, *stride, 1], dilations=[1, *dil, 1], padding=padding)
    np.testing.assert_allclose(run(b, x, tmp_path), ref_conv(x, w, stride, padding, dil), rtol=1e-5, atol=1e-5)


def test_conv2d_nchw_and_explicit_padding(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 7, 6, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 5)).astype(np.float32)
    b = GraphBuilder()
    b.placeholder("x", [1, 3, 7, 6])
    b.const("w", w)
    b.op("Conv2D", "conv", ["x", "w"], strides=[1, 1, 2, 2], padding="SAME", data_format="NCHW")
    got = run(b, x.transpose(0, 3, 1, 2), tmp_path).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, ref_conv(x, w, (2, 2), "SAME"), rtol=1e-5, atol=1e-5)
    e = GraphBuilder()
    e.placeholder("x", [1, 7, 6, 3])
    e.const("w", w)
    e.op("Conv2D", "conv", ["x", "w"], strides=[1, 1, 1, 1], padding="EXPLICIT",
         explicit_paddings=[0, 0, 2, 0, 0, 1, 0, 0])
    xp = np.pad(x, ((0, 0), (2, 0), (0, 1), (0, 0)))
    np.testing.assert_allclose(run(e, x, tmp_path, "e.pb"), ref_conv(xp, w, (1, 1), "VALID"), rtol=1e-5, atol=1e-5)


def test_depthwise_conv_against_numpy(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 7, 7, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)  # multiplier 2
    b = GraphBuilder()
    b.placeholder("x", [1, 7, 7, 3])
    b.const("w", w)
    b.op("DepthwiseConv2dNative", "dw", ["x", "w"], strides=[1, 2, 2, 1], padding="SAME")
    want = np.concatenate([ref_conv(x[..., c:c + 1], w[:, :, c:c + 1, :], (2, 2), "SAME") for c in range(3)], -1)
    np.testing.assert_allclose(run(b, x, tmp_path), want, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- pools


def test_pools_same_stride2_by_hand(tmp_path):
    """6×6 input 0..35, 3×3 windows, stride 2, SAME: rows/columns 0-2, 2-4, 4-5 (+ one padded row/column
    ignored: the max never sees it, the average divides by the 3×2, 2×3 or 2×2 pixels it covers)."""
    x = np.arange(36, dtype=np.float32).reshape(1, 6, 6, 1)
    a = x[0, :, :, 0]
    for op in ("MaxPool", "AvgPool"):
        b = GraphBuilder()
        b.placeholder("x", [1, 6, 6, 1])
        b.op(op, "pool", ["x"], ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding="SAME")
        got = run(b, x, tmp_path, f"{op}.pb")[0, :, :, 0]
        f = np.max if op == "MaxPool" else np.mean
        want = [[f(a[r:r + 3, c:c + 3]) for c in (0, 2, 4)] for r in (0, 2, 4)]
        np.testing.assert_allclose(got, np.array(want), rtol=1e-6)
    assert want[2][2] == np.mean(a[4:6, 4:6])  # the corner window covers 2×2 pixels


@pytest.mark.parametrize("mode,hw,k,s,padding", [
    ("max", (7, 9), (3, 3), (2, 2), "SAME"), ("avg", (7, 9), (3, 3), (2, 2), "SAME"),
    ("avg", (5, 5), (2, 3), (1, 2), "SAME"), ("max", (8, 8), (3, 3), (2, 2), "VALID"),
    ("avg", (3, 3), (3, 3), (1, 1), "VALID"), ("avg", (7, 7), (5, 5), (3, 3), "SAME"),
])
def test_pools_against_numpy(tmp_path, mode, hw, k, s, padding):
    x = np.random.default_rng(4).standard_normal((2, *hw, 3)).astype(np.float32) - 5  # negative: -inf padding shows
    b = GraphBuilder()
    b.placeholder("x", [None, *hw, 3])
    b.op("MaxPool" if mode == "max" else "AvgPool", "pool", ["x"], ksize=[1, *k, 1], strides=[1, *s, 1],
         padding=padding)
    np.testing.assert_allclose(run(b, x, tmp_path), ref_pool(x, k, s, padding, mode), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- the rest of the Inception-ResNet-v1 op set


def test_bias_batchnorm_relu_concat_add_mul(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 4, 3)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    scale, offset = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    mean, var = rng.standard_normal(3).astype(np.float32), rng.uniform(0.5, 2, 3).astype(np.float32)
    b = GraphBuilder()
    b.placeholder("x", [None, 3, 4, 3])
    b.const("bias", bias)
    b.op("BiasAdd", "ba", ["x", "bias"], data_format="NHWC")
    for n, v in (("scale", scale), ("offset", offset), ("mean", mean), ("var", var)):
        b.const(n, v)
    b.op("FusedBatchNormV3", "bn", ["ba", "scale", "offset", "mean", "var"], epsilon=0.001, is_training=False)
    b.op("Relu6", "r6", ["bn"])
    b.op("Relu", "r", ["ba"])
    b.const("axis", np.int32(-1))
    b.op("ConcatV2", "cat", ["r6", "r", "axis"], N=2)
    b.const("half", np.float32(0.5), as_values=True)
    b.op("Mul", "mul", ["half", "cat"])
    b.op("AddV2", "add", ["mul", "cat"])
    got = run(b, x, tmp_path)
    x64 = x.astype(np.float64) + bias
    bn = (x64 - mean) / np.sqrt(var.astype(np.float64) + np.float64(np.float32(0.001))) * scale + offset
    cat = np.concatenate([np.clip(bn, 0, 6), np.maximum(x64, 0)], axis=-1)
    np.testing.assert_allclose(got, 1.5 * cat, rtol=1e-5, atol=1e-6)


def test_flatten_matmul_and_l2_normalise(tmp_path):
    """The end of facenet's graph: AvgPool, Reshape [-1, C], MatMul, FusedBatchNorm on [-1,1,1,D], Reshape back,
    then Square, Sum(keep_dims), Maximum, Rsqrt, Mul."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 2, 2, 5)).astype(np.float32)
    w = rng.standard_normal((5, 4)).astype(np.float32)
    stats = [rng.uniform(0.5, 2, 4).astype(np.float32) for _ in range(4)]
    b = GraphBuilder()
    b.placeholder("x", [None, 2, 2, 5])
    b.op("AvgPool", "pool", ["x"], ksize=[1, 2, 2, 1], strides=[1, 1, 1, 1], padding="VALID")
    b.const("flat", np.array([-1, 5], np.int32))
    b.op("Reshape", "r1", ["pool", "flat"])
    b.const("w", w)
    b.op("MatMul", "mm", ["r1", "w"], transpose_a=False, transpose_b=False)
    b.const("s4", np.array([-1, 1, 1, 4], np.int32))
    b.op("Reshape", "r2", ["mm", "s4"])
    for n, v in zip(("g", "o", "m", "v"), stats):
        b.const(n, v)
    b.op("FusedBatchNorm", "bn", ["r2", "g", "o", "m", "v"], epsilon=0.001, is_training=False)
    b.const("s2", np.array([-1, 4], np.int32))
    b.op("Reshape", "r3", ["bn", "s2"])
    b.op("Square", "sq", ["r3"])
    b.const("ax", np.int32(1), as_values=True)
    b.op("Sum", "sum", ["sq", "ax"], keep_dims=True)
    b.const("eps", np.float32(1e-10), as_values=True)
    b.op("Maximum", "max", ["sum", "eps"])
    b.op("Rsqrt", "rs", ["max"])
    b.op("Mul", "emb", ["r3", "rs"])
    got = run(b, x, tmp_path)
    g, o, m, v = (s.astype(np.float64) for s in stats)
    y = x.astype(np.float64).mean(axis=(1, 2)) @ w
    y = (y - m) / np.sqrt(v + np.float64(np.float32(0.001))) * g + o
    want = y / np.sqrt(np.maximum((y * y).sum(1, keepdims=True), 1e-10))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, atol=1e-6)


def test_reductions_squeeze_matmul_transpose_pad(tmp_path):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    b = GraphBuilder()
    b.placeholder("x", [2, 3, 4, 5])
    b.const("ax12", np.array([1, -2], np.int32))
    b.op("Mean", "mean", ["x", "ax12"], keep_dims=True)  # 2×1×1×5
    b.op("Squeeze", "sq", ["mean"], squeeze_dims=[1, 2])  # 2×5
    b.op("Max", "mx", ["x", "ax12"], keep_dims=False)  # 2×5
    b.op("MatMul", "mm", ["sq", "mx"], transpose_a=True, transpose_b=False)  # 5×5
    b.const("none", np.zeros(0, np.int32))
    b.op("Sum", "same", ["mm", "none"])  # no reduction indices: unchanged
    b.const("pads", np.array([[1, 0], [0, 2]], np.int32))
    b.op("Pad", "pad", ["same", "pads"])
    b.op("Squeeze", "sq_all", ["pad"])  # nothing of size 1: unchanged
    got = run(b, x, tmp_path)
    x64 = x.astype(np.float64)
    mm = x64.mean(axis=(1, 2)).T @ x64.max(axis=(1, 2))
    np.testing.assert_allclose(got, np.pad(mm, ((1, 0), (0, 2))), rtol=1e-5, atol=1e-6)


def test_elementwise_ops_and_constants_behind_identity(tmp_path):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    c = rng.uniform(0.5, 2, 4).astype(np.float32)
    b = GraphBuilder()
    b.placeholder("x", [2, 3, 4])
    b.const("c", c)
    b.op("Identity", "c_id", ["c"])
    b.op("Sub", "sub", ["x", "c_id"])
    b.op("RealDiv", "div", ["sub", "c"])
    b.op("Minimum", "min", ["div", "c"])
    b.op("LeakyRelu", "lrelu", ["min"], alpha=0.1)
    b.op("Sigmoid", "sig", ["lrelu"])
    b.op("Tanh", "tanh", ["sig"])
    b.op("Sqrt", "sqrt", ["sig"])
    b.op("Add", "add", ["tanh", "sqrt"])
    b.op("Softmax", "soft", ["add"])
    b.op("StopGradient", "sg", ["soft"])
    b.const("shape", np.array([6, -1], np.int32))
    b.op("Identity", "shape_id", ["shape"])
    b.op("Reshape", "flat", ["sg", "shape_id"])  # the shape constant reached through an Identity node
    b.const("ax", np.int32(-1), as_values=True)
    b.op("Prod", "prod", ["flat", "ax"], keep_dims=True)
    b.op("Min", "mn", ["flat", "ax"], keep_dims=True)
    b.const("one", np.int32(1), as_values=True)
    b.op("Concat", "cat", ["one", "prod", "mn"])  # Concat (v1): the axis first
    got = run(b, x, tmp_path)
    m = np.minimum((x.astype(np.float64) - c) / c, c)
    sig = 1 / (1 + np.exp(-np.where(m > 0, m, 0.1 * m)))
    a = np.tanh(sig) + np.sqrt(sig)
    soft = (np.exp(a) / np.exp(a).sum(-1, keepdims=True)).reshape(6, -1)
    want = np.concatenate([soft.prod(-1, keepdims=True), soft.min(-1, keepdims=True)], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_const_value_lists_repeat_the_last_value(tmp_path):
    from arface_repro.models.proto_schemas import tensorflow

    t = tensorflow()["TensorProto"]()
    t.dtype = 1
    for d in (2, 3):
        t.tensor_shape.dim.add().size = d
    t.float_val.extend([1.0, 2.0])
    np.testing.assert_array_equal(tensor_array(t, "t"), [[1, 2, 2], [2, 2, 2]])
    del t.float_val[:]
    np.testing.assert_array_equal(tensor_array(t, "t"), np.zeros((2, 3)))
    t.float_val.extend([0.0] * 7)
    with pytest.raises(FormatError, match="lists 7 values"):
        tensor_array(t, "t")
    del t.float_val[:]
    t.tensor_content = b"\0" * 23
    with pytest.raises(FormatError, match="holds 23 bytes, expected 24"):
        tensor_array(t, "t")


# ---------------------------------------------------------------- errors


def _tiny(b: GraphBuilder | None = None) -> GraphBuilder:
    b = b or GraphBuilder()
    b.placeholder("input", [1, 4, 4, 3])
    return b


def test_unsupported_op_names_op_node_and_file(tmp_path):
    b = _tiny()
    b.op("PyFunc", "evil", ["input"], token="touch /tmp/x")
    path = b.save(tmp_path / "py.pb")
    with pytest.raises(ConfigError, match=r"py\.pb: node 'evil': op type 'PyFunc' is not supported") as e:
        TFGraphNet(path)
    assert "\n" not in str(e.value) and "Conv2D" in str(e.value)
    b = _tiny()
    b.op("ImmutableConst", "file", [])  # would map another file: not an op of this runner
    b.op("AddV2", "out", ["input", "file"])
    with pytest.raises(ConfigError, match="op type 'ImmutableConst' is not supported"):
        TFGraphNet(b.save(tmp_path / "imm.pb"))
    assert "PyFunc" not in supported_ops() and "Conv2D" in supported_ops()


def test_cycle_dangling_input_and_duplicate_names(tmp_path):
    b = _tiny()
    b.op("AddV2", "a", ["input", "b"])
    b.op("Relu", "b", ["a"])
    b.op("Identity", "out", ["b"])
    with pytest.raises(FormatError, match="cycle through node"):
        TFGraphNet(b.save(tmp_path / "cyc.pb"))
    b = _tiny()
    b.op("AddV2", "out", ["input", "missing:0"])
    with pytest.raises(FormatError, match=r"node 'out' \(AddV2\): input 'missing:0' is not a node of the graph"):
        TFGraphNet(b.save(tmp_path / "dangling.pb"))
    b = _tiny()
    b.op("Relu", "r", ["input", "^nowhere"])
    with pytest.raises(FormatError, match="input '\\^nowhere' is not a node"):
        TFGraphNet(b.save(tmp_path / "ctrl.pb"))
    b = _tiny()
    b.op("Relu", "input", ["input"])
    with pytest.raises(FormatError, match="two nodes are named 'input'"):
        TFGraphNet(b.save(tmp_path / "dup.pb"))


def test_constant_sizes_are_bounded_before_allocation(tmp_path):
    b = _tiny()
    node = b.graph.node.add(name="huge", op="Const")
    t = node.attr["value"].tensor
    t.dtype = 1
    for d in (MAX_CONST_ELEMENTS, 2):  # 2^28 values declared, one given: refused without allocating 1 GiB
        t.tensor_shape.dim.add().size = d
    t.float_val.append(1.0)
    b.op("AddV2", "out", ["input", "huge"])
    path = b.save(tmp_path / "huge.pb")
    assert path.stat().st_size < 200
    with pytest.raises(FormatError, match=r"huge.pb: node 'huge' \(Const\): constant of shape .* is over"):
        TFGraphNet(path)
    t.tensor_shape.dim[0].size = -3
    with pytest.raises(FormatError, match="negative dimension"):
        TFGraphNet(b.save(tmp_path / "neg.pb"))
    t.tensor_shape.dim[0].size = 2
    t.dtype = 7  # string
    with pytest.raises(FormatError, match="dtype string is not supported"):
        TFGraphNet(b.save(tmp_path / "str.pb"))


def test_bad_graphs_are_one_line_errors(tmp_path):
    b = _tiny()
    b.placeholder("second", [1, 4, 4, 3])
    b.op("AddV2", "out", ["input", "second"])
    with pytest.raises(ConfigError, match="depends on 2 Placeholder inputs"):
        TFGraphNet(b.save(tmp_path / "two.pb"))
    b = _tiny()
    b.const("s", np.array([1, 1, 1, 1], np.float32))
    b.op("FusedBatchNorm", "bn", ["input", "s", "s", "s", "s"], is_training=True)
    with pytest.raises(ConfigError, match="is_training is true"):
        TFGraphNet(b.save(tmp_path / "train.pb"))
    b = _tiny()
    b.const("s", np.array([1, 1, 1], np.float32))
    b.op("FusedBatchNorm", "bn", ["input", "s", "s", "s", "s"], is_training=False)
    b.op("AddV2", "out", ["bn", "bn:1"])
    with pytest.raises(ConfigError, match=r"uses output 1 of node 'bn' \(FusedBatchNorm\)"):
        TFGraphNet(b.save(tmp_path / "bnout.pb"))
    b = _tiny()
    b.op("Relu", "r", ["input"])
    b.op("Reshape", "out", ["input", "r"])
    with pytest.raises(ConfigError, match=r"input 1 \(shape\) must be a constant; it comes from node 'r' \(Relu\)"):
        TFGraphNet(b.save(tmp_path / "dyn.pb"))
    b = _tiny()
    b.const("w", np.ones((3, 3, 3, 2), np.float32))
    b.op("Conv2D", "c", ["input", "w"], strides=[2, 1, 1, 1], padding="SAME")
    with pytest.raises(ConfigError, match=r"strides \[2, 1, 1, 1\] not supported"):
        TFGraphNet(b.save(tmp_path / "stride.pb"))
    b = _tiny()
    b.const("w", np.ones((3, 3, 3, 2), np.float32))
    b.op("Conv2D", "c", ["input", "w"], strides=[1, 1, 1, 1], padding="FULL")
    with pytest.raises(ConfigError, match="padding 'FULL' not supported"):
        TFGraphNet(b.save(tmp_path / "pad.pb"))
    with pytest.raises(FormatError, match="not a TensorFlow GraphDef"):
        read_graphdef((tmp_path / "garbage.pb").write_bytes(b"\x0a\xff\xff\xff\xff\x0fgarbage") and
                      tmp_path / "garbage.pb")


def test_run_time_errors_name_the_node(tmp_path):
    b = _tiny()
    b.const("shape", np.array([5, -1], np.int32))
    b.op("Reshape", "out", ["input", "shape"])
    net = TFGraphNet(b.save(tmp_path / "r.pb"))
    with pytest.raises(ConfigError, match=r"node 'out' \(Reshape\) failed on inputs \[\[1, 4, 4, 3\]\]: "
                                          r"cannot reshape"):
        net.run(torch.zeros(1, 4, 4, 3))
    with pytest.raises(ConfigError, match=r"is declared \[1, 4, 4, 3\] \(N×H×W×C\); got \[2, 4, 4, 3\]"):
        net.run(torch.zeros(2, 4, 4, 3))


def test_tfgraph_spec_sizes_batches_and_errors(tmp_path):
    """`tfgraph:` loads a graph: declared size used; undeclared batch probed (batched here); a graph whose
    Reshape fixes batch 1 runs one image at a time; missing file and non-image inputs are clear errors."""
    w = np.random.default_rng(8).standard_normal((3, 3, 3, 4)).astype(np.float32)

    def graph(batch, flat):
        b = GraphBuilder()
        b.placeholder("input", [batch, 8, 8, 3])
        b.const("w", w)
        b.op("Conv2D", "c", ["input", "w"], strides=[1, 2, 2, 1], padding="SAME")
        b.const("shape", np.array(flat, np.int32))
        b.op("Reshape", "out", ["c", "shape"])
        return b

    m = load_model(f"tfgraph:{graph(None, [-1, 64]).save(tmp_path / 'a.pb')}")
    assert m.kind == "tfgraph" and m.preprocess.size == (8, 8) and m.batch_note == "batched" and not m.fixed_batch
    assert m.identity()["engine"].startswith("tfgraph-torch-") and m.embedding_size == 64
    imgs = np.random.default_rng(9).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    out = m.embed(imgs)
    x = m.preprocess(imgs, name="t")
    np.testing.assert_allclose(out, ref_conv(x, w, (2, 2), "SAME").reshape(3, -1), rtol=1e-5, atol=1e-5)
    one = load_model(f"tfgraph:{graph(None, [1, -1]).save(tmp_path / 'b.pb')}")
    assert one.fixed_batch == 1 and "a batch of 2 fails" in one.batch_note
    np.testing.assert_allclose(one.embed(imgs), out, rtol=1e-5, atol=1e-5)
    two = load_model(f"tfgraph:{graph(2, [2, 64]).save(tmp_path / 'c.pb')}")
    assert two.fixed_batch == 2 and two.embed(imgs).shape == (3, 64)  # the last batch zero-padded
    with pytest.raises(ConfigError, match="takes 8×8 inputs but the preprocessing asks for 16×16"):
        load_model(f"tfgraph:{tmp_path / 'a.pb'}", preprocess="size=16x16")
    with pytest.raises(MissingDataError, match="nope.pb: model file not found"):
        load_model(f"tfgraph:{tmp_path / 'nope.pb'}")
    b = GraphBuilder()
    b.placeholder("input", [None, 8, 8, 1])
    b.op("Relu", "out", ["input"])
    with pytest.raises(FormatError, match=r"input 'input' has shape \[None, 8, 8, 1\]; N×H×W×3 images expected"):
        load_model(f"tfgraph:{b.save(tmp_path / 'gray.pb')}")


def test_corrupted_graph_bytes_give_only_clear_errors(tmp_path):
    """Random byte changes to a small valid graph: the runner loads and runs it or raises an ArfaceError
    (one-line, exit 2 in the CLI) — never another exception (e.g. names that are not UTF-8)."""
    from arface_repro.errors import ArfaceError

    b = GraphBuilder()
    b.placeholder("input", [None, 6, 6, 3])
    b.const("w", np.ones((3, 3, 3, 2), np.float32))
    b.op("Conv2D", "c", ["input", "w"], strides=[1, 2, 2, 1], padding="SAME")
    b.const("bias", np.ones(2, np.float32))
    b.op("BiasAdd", "ba", ["c", "bias"])
    b.op("MaxPool", "mp", ["ba"], ksize=[1, 2, 2, 1], strides=[1, 1, 1, 1], padding="SAME")
    b.const("ax", np.array([1, 2], np.int32))
    b.op("Mean", "m", ["mp", "ax"], keep_dims=False)
    data = b.graph.SerializeToString()
    rng = np.random.default_rng(0)
    path, outcomes = tmp_path / "m.pb", {"ran": 0, "refused": 0}
    for _ in range(400):
        a = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            a[int(rng.integers(len(a)))] = int(rng.integers(256))
        path.write_bytes(bytes(a))
        try:
            with torch.inference_mode():
                TFGraphNet(path).run(torch.zeros(1, 6, 6, 3))
            outcomes["ran"] += 1
        except ArfaceError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
    assert outcomes["ran"] and outcomes["refused"], outcomes
