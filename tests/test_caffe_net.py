"""Caffe models: a small SphereFace-style network written here as a prototxt and a binary .caffemodel (built
with protobuf from this file's own copy of the caffe.proto fields), run by `caffe:`, `opencv:` (OpenCV 5 has
no Caffe importer, so the package's reader runs it) and the `sphereface-20` preset, against a numpy forward
pass that follows Caffe's layer code (convolution, PReLU, BatchNorm with its scale factor, Scale, ReLU,
Eltwise, ceil-rounded MAX and AVE pooling, InnerProduct)."""

from __future__ import annotations

import numpy as np
import pytest

from arface_repro.errors import ConfigError, FormatError
from arface_repro.models.backends import load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- caffe.proto subset (BVLC field numbers)
def caffe_weights_classes():
    """NetParameter/LayerParameter/BlobProto/BlobShape message classes for writing a .caffemodel."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="test_caffe.proto", package="testcaffe", syntax="proto2")
    shape = fdp.message_type.add(name="BlobShape")
    f = shape.field.add(name="dim", number=1, type=F.TYPE_INT64, label=F.LABEL_REPEATED)
    f.options.packed = True
    blob = fdp.message_type.add(name="BlobProto")
    blob.field.add(name="shape", number=7, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL, type_name=".testcaffe.BlobShape")
    f = blob.field.add(name="data", number=5, type=F.TYPE_FLOAT, label=F.LABEL_REPEATED)
    f.options.packed = True
    for name, num in (("num", 1), ("channels", 2), ("height", 3), ("width", 4)):
        blob.field.add(name=name, number=num, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    layer = fdp.message_type.add(name="LayerParameter")
    layer.field.add(name="name", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    layer.field.add(name="type", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    layer.field.add(name="blobs", number=7, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED, type_name=".testcaffe.BlobProto")
    net = fdp.message_type.add(name="NetParameter")
    net.field.add(name="name", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    net.field.add(name="layer", number=100, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                  type_name=".testcaffe.LayerParameter")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("testcaffe.NetParameter"))


# A SphereFace-20-like deploy file (same header and layer style as sphereface_deploy.prototxt), smaller.
PROTOTXT = """name: "TinySphere"
input: "data"
input_dim: 1
input_dim: 3
input_dim: 112
input_dim: 96
layer {
  name: "conv1_1" type: "Convolution" bottom: "data" top: "conv1_1"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1
    weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0 } }
}
layer { name: "relu1_1" type: "PReLU" bottom: "conv1_1" top: "conv1_1" }
layer {
  name: "conv1_2" type: "Convolution" bottom: "conv1_1" top: "conv1_2"
  convolution_param { num_output: 4 kernel_size: 3 stride: 1 pad: 1 group: 2 bias_term: false }
}
layer { name: "bn1_2" type: "BatchNorm" bottom: "conv1_2" top: "conv1_2" batch_norm_param { use_global_stats: true } }
layer { name: "scale1_2" type: "Scale" bottom: "conv1_2" top: "conv1_2" scale_param { bias_term: true } }
layer { name: "relu1_2" type: "ReLU" bottom: "conv1_2" top: "conv1_2" relu_param { negative_slope: 0.1 } }
layer {
  name: "res1_2" type: "Eltwise" bottom: "conv1_1" bottom: "conv1_2" top: "res1_2"
  eltwise_param { operation: 1 coeff: 1 coeff: 0.5 }
}
layer { name: "pool1" type: "Pooling" bottom: "res1_2" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "pool2" type: "Pooling" bottom: "pool1" top: "pool2"
  pooling_param { pool: AVE kernel_size: 2 stride: 2 pad: 1 } }
layer { name: "drop" type: "Dropout" bottom: "pool2" top: "pool2" dropout_param { dropout_ratio: 0.5 } }
layer {
  name: "fc5" type: "InnerProduct" bottom: "pool2" top: "fc5"
  inner_product_param { num_output: 512 weight_filler { type: "xavier" } }
}
"""


def make_weights(rng) -> dict:
    w = {
        "conv1_1": [rng.normal(0, 0.3, (4, 3, 3, 3)), rng.normal(0, 0.1, 4)],
        "relu1_1": [rng.uniform(0.1, 0.4, 4)],
        "conv1_2": [rng.normal(0, 0.3, (4, 2, 3, 3))],
        "bn1_2": [rng.normal(0, 0.2, 4) * 2, rng.uniform(0.5, 1.5, 4) * 2, np.array([2.0])],  # scale factor 2
        "scale1_2": [rng.uniform(0.5, 1.5, 4), rng.normal(0, 0.1, 4)],
        "fc5": [rng.normal(0, 0.05, (512, 4 * 15 * 13)), rng.normal(0, 0.1, 512)],
    }
    return {k: [np.asarray(a, np.float32) for a in v] for k, v in w.items()}


def write_caffemodel(path, weights: dict, legacy_shapes: bool = False) -> None:
    Net = caffe_weights_classes()
    net = Net(name="TinySphere")
    for name, arrays in weights.items():
        layer = net.layer.add(name=name, type="?")
        for a in arrays:
            b = layer.blobs.add()
            if legacy_shapes:  # pre-2015 files: num/channels/height/width
                dims = (1,) * (4 - a.ndim) + a.shape
                b.num, b.channels, b.height, b.width = dims
            else:
                b.shape.dim.extend(a.shape)
            b.data.extend(a.reshape(-1).tolist())
    path.write_bytes(net.SerializeToString())


# ---------------------------------------------------------------- numpy forward pass following Caffe's code
def conv(x, w, b, stride, pad, group=1):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, o, oh, ow), np.float64)
    og = o // group
    for g in range(group):
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]  # n, cg, oh, ow
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, w[g * og:(g + 1) * og, :, i, j])
    return out + (0 if b is None else b[None, :, None, None])


def caffe_pool(x, k, s, p, op):
    """Caffe's PoolingLayer::Forward_cpu (ceil rounding; AVE divides by the window clipped to H + pad)."""
    n, c, h, w = x.shape
    ph = int(np.ceil((h + 2 * p - k) / s)) + 1
    pw = int(np.ceil((w + 2 * p - k) / s)) + 1
    if p:
        ph -= (ph - 1) * s >= h + p
        pw -= (pw - 1) * s >= w + p
    out = np.zeros((n, c, ph, pw))
    for i in range(ph):
        for j in range(pw):
            hs, ws = i * s - p, j * s - p
            if op == "max":
                he, we = min(hs + k, h), min(ws + k, w)
                hs, ws = max(hs, 0), max(ws, 0)
                out[:, :, i, j] = x[:, :, hs:he, ws:we].max(axis=(2, 3))
            else:
                he, we = min(hs + k, h + p), min(ws + k, w + p)
                size = (he - hs) * (we - ws)
                hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
                out[:, :, i, j] = x[:, :, hs:he, ws:we].sum(axis=(2, 3)) / size
    return out


def reference_forward(x, W):
    y = conv(x, *W["conv1_1"], stride=2, pad=1)
    y1 = np.where(y > 0, y, y * W["relu1_1"][0][None, :, None, None])
    z = conv(y1, W["conv1_2"][0], None, stride=1, pad=1, group=2)
    mean, var, sf = W["bn1_2"]
    z = (z - (mean / sf[0])[None, :, None, None]) / np.sqrt((var / sf[0])[None, :, None, None] + 1e-5)
    z = z * W["scale1_2"][0][None, :, None, None] + W["scale1_2"][1][None, :, None, None]
    z = np.where(z > 0, z, 0.1 * z)
    r = y1 + 0.5 * z
    q = caffe_pool(caffe_pool(r, 3, 2, 0, "max"), 2, 2, 1, "ave")
    assert q.shape[1:] == (4, 15, 13)  # 56×48 -> ceil: 28×24 -> 15×13
    return q.reshape(len(q), -1) @ W["fc5"][0].T.astype(np.float64) + W["fc5"][1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("caffe")
    rng = np.random.default_rng(0)
    W = make_weights(rng)
    (d / "deploy.prototxt").write_text(PROTOTXT)
    write_caffemodel(d / "model.caffemodel", W)
    write_caffemodel(d / "legacy.caffemodel", W, legacy_shapes=True)
    imgs = rng.integers(0, 256, (3, 112, 96, 3), dtype=np.uint8)
    x = ((imgs[..., ::-1].astype(np.float64) - 127.5) / 128).transpose(0, 3, 1, 2)  # BGR, (x − 127.5)/128
    return d, imgs, reference_forward(x, W)


def test_caffe_spec_matches_caffe_arithmetic(tiny):
    d, imgs, want = tiny
    m = load_model(f"caffe:{d / 'deploy.prototxt'}:{d / 'model.caffemodel'}")
    assert m.kind == "caffe" and m.preprocess.size == (112, 96) and m.preprocess.color == "BGR"
    got = m.embed(imgs)
    assert got.shape == (3, 512)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    legacy = load_model(f"caffe:{d / 'deploy.prototxt'}:{d / 'legacy.caffemodel'}")
    np.testing.assert_array_equal(legacy.embed(imgs), got)


def test_opencv_spec_and_sphereface_preset(tiny):
    import cv2

    d, imgs, want = tiny
    spec = f"{d / 'deploy.prototxt'}:{d / 'model.caffemodel'}"
    m = load_model(f"opencv:{spec}")
    if not hasattr(cv2.dnn, "readNetFromCaffe"):
        assert m.kind == "caffe"  # OpenCV >= 5: the package's reader runs the Caffe spec
    np.testing.assert_allclose(m.embed(imgs), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    p = load_model(f"sphereface-20:{spec}")
    assert p.preset.name == "sphereface-20" and p.preprocess.key() == m.preprocess.key()
    np.testing.assert_allclose(p.embed(imgs), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_input_size_from_preprocess_when_undeclared(tiny, tmp_path):
    d, imgs, want = tiny
    text = PROTOTXT.replace('input_dim: 1\ninput_dim: 3\ninput_dim: 112\ninput_dim: 96\n', "")
    (tmp_path / "nosize.prototxt").write_text(text)
    spec = f"caffe:{tmp_path / 'nosize.prototxt'}:{d / 'model.caffemodel'}"
    with pytest.raises(ConfigError, match="does not declare its input size"):
        load_model(spec)
    m = load_model(spec, preprocess="size=112x96")
    np.testing.assert_allclose(m.embed(imgs), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    with pytest.raises(ConfigError, match="takes 112×96 inputs"):
        load_model(f"caffe:{d / 'deploy.prototxt'}:{d / 'model.caffemodel'}", preprocess="size=112x112")


def test_bad_files_name_the_layer_or_line(tiny, tmp_path):
    d, _, _ = tiny
    w = d / "model.caffemodel"
    (tmp_path / "odd.prototxt").write_text(PROTOTXT.replace('type: "Dropout"', 'type: "Flip"'))
    with pytest.raises(ConfigError, match="layer 'drop' \\(Flip\\): layer type not supported"):
        load_model(f"caffe:{tmp_path / 'odd.prototxt'}:{w}")
    (tmp_path / "typo.prototxt").write_text(PROTOTXT.replace("num_output: 512", "num_outputs: 512"))
    with pytest.raises(FormatError, match=r"typo.prototxt: line 31: .*no field named \"num_outputs\""):
        load_model(f"caffe:{tmp_path / 'typo.prototxt'}:{w}")
    (tmp_path / "extra.prototxt").write_text(PROTOTXT + 'layer { name: "fc6" type: "InnerProduct" bottom: "fc5" '
                                                        'top: "fc6" inner_product_param { num_output: 2 } }\n')
    with pytest.raises(FormatError, match="layer 'fc6': layer not in the weights file"):
        load_model(f"caffe:{tmp_path / 'extra.prototxt'}:{w}")
    (tmp_path / "train.prototxt").write_text(PROTOTXT + 'layer { name: "loss" type: "SoftmaxWithLoss" '
                                                        'bottom: "fc5" bottom: "label" top: "loss" }\n')
    with pytest.raises(ConfigError, match="a loss layer; give the deploy prototxt"):
        load_model(f"caffe:{tmp_path / 'train.prototxt'}:{w}")
    (tmp_path / "junk.caffemodel").write_bytes(b"\x0a\xff\xff not protobuf")
    with pytest.raises(FormatError, match="junk.caffemodel"):
        load_model(f"caffe:{d / 'deploy.prototxt'}:{tmp_path / 'junk.caffemodel'}")
    with pytest.raises(ConfigError, match="NET.prototxt:WEIGHTS.caffemodel"):
        load_model(f"caffe:{d / 'deploy.prototxt'}")
