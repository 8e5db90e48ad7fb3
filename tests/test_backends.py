"""Checkpoint backends: strict torch loading with clear errors, TorchScript, ONNX vs TFLite on the shared
MobileFaceNet (fixed batch 2, padded last batch) on real LFW crops, export-onnx round trip, preprocessing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import require

from arface_repro.backbones.registry import create_model
from arface_repro.cli import main as cli_main
from arface_repro.errors import ConfigError, FormatError, MissingDataError
from arface_repro.models.backends import load_model, parse_spec
from arface_repro.models.preprocess import Preprocess, parse_overrides

LFW_FILES = ["Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Aaron_Peirsol/Aaron_Peirsol_0002.jpg",
             "Abdullah_Gul/Abdullah_Gul_0001.jpg", "Abdullah_Gul/Abdullah_Gul_0002.jpg",
             "Zico/Zico_0001.jpg"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def calibrated(name: str, seed: int = 0, **kwargs):
    """A registry model whose BN running statistics come from one batch, so eval outputs are O(1) like a
    trained net's (untrained BN statistics make deep nets' eval outputs explode)."""
    torch.manual_seed(seed)
    m = create_model(name, **kwargs)
    for b in m.modules():
        if isinstance(b, torch.nn.modules.batchnorm._BatchNorm):
            b.momentum = None  # cumulative average: one batch sets the statistics
    m.train()
    with torch.no_grad():
        m(torch.randn(8, 3, 112, 112))
    return m.eval()


def lfw_crops(shared: Path, files=LFW_FILES) -> np.ndarray:
    root = require(shared / "data/lfw/aligned-112x96")
    return np.stack([cv2.imread(str(root / f))[:, :, ::-1] for f in files])


def rand_images(n: int, h: int = 112, w: int = 112, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def r50(tmp_path_factory):
    m = calibrated("iresnet50")
    d = tmp_path_factory.mktemp("r50")
    torch.save(m.state_dict(), d / "plain.pth")
    torch.save({"state_dict": {f"module.{k}": v for k, v in m.state_dict().items()}, "epoch": 3}, d / "ddp.pth")
    with torch.no_grad():
        ref = m(torch.from_numpy(((rand_images(2).astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2))).numpy()
    return d, ref


def test_iresnet50_state_dict_reloads_strict(r50):
    d, ref = r50
    for f in ("plain.pth", "ddp.pth"):
        m = load_model(f"torch:iresnet50:{d / f}", device="cpu")
        assert m.preprocess.std == (127.5,) * 3  # insightface normalisation for IR-ResNets
        out = m.embed(rand_images(2))
        assert out.shape == (2, 512) and out.dtype == np.float32
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
        assert len(m.file_sha256) == 64


def test_wrong_architecture_is_a_clear_error(r50, tmp_path):
    d, _ = r50
    with pytest.raises(ConfigError, match=r"does not fit architecture 'iresnet34'.*unexpected key.*layer3\.6"):
        load_model(f"torch:iresnet34:{d / 'plain.pth'}")
    torch.save(create_model("mobilefacenet").state_dict(), tmp_path / "mfn.pth")
    with pytest.raises(ConfigError, match=r"156 missing key\(s\): conv1\.weight.*333 unexpected key\(s\): conv1\.0\.weight"):
        load_model(f"torch:iresnet18:{tmp_path / 'mfn.pth'}")
    sd = create_model("iresnet18").state_dict()
    sd["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    torch.save(sd, tmp_path / "shape.pth")
    with pytest.raises(ConfigError, match=r"shape mismatch.*conv1\.weight: checkpoint \(64, 3, 5, 5\) vs model \(64, 3, 3, 3\)"):
        load_model(f"torch:iresnet18:{tmp_path / 'shape.pth'}")
    with pytest.raises(ConfigError, match="unknown model architecture 'resnet50'"):
        load_model(f"torch:resnet50:{d / 'plain.pth'}")


def test_truncated_garbage_and_missing_files(r50, tmp_path):
    d, _ = r50
    data = (d / "plain.pth").read_bytes()
    (tmp_path / "trunc.pth").write_bytes(data[: len(data) // 3])
    (tmp_path / "garbage.pth").write_bytes(b"this is not a checkpoint\n" * 50)
    for f in ("trunc.pth", "garbage.pth"):
        with pytest.raises(FormatError, match=rf"{f}: not a readable PyTorch checkpoint"):
            load_model(f"torch:iresnet50:{tmp_path / f}")
    with pytest.raises(MissingDataError, match="model file not found"):
        load_model(f"torch:iresnet50:{tmp_path / 'absent.pth'}")
    torch.save({"epoch": 3, "optimizer": {"lr": torch.tensor(0.1)}}, tmp_path / "nostate.pth")
    with pytest.raises(FormatError, match="no state dict found"):
        load_model(f"torch:iresnet18:{tmp_path / 'nostate.pth'}")
    for bad in ("onnx:" + str(tmp_path / "garbage.pth"), "tflite:" + str(tmp_path / "garbage.pth")):
        with pytest.raises(FormatError, match="not a loadable"):
            load_model(bad)


def test_backbone_prefix_and_embedding_size_inferred(tmp_path):
    m = calibrated("mobilefacenet", embedding_size=512)
    sd = {f"backbone.{k}": v for k, v in m.state_dict().items()}
    sd["head.weight"] = torch.zeros(10, 512)  # a classifier saved with the backbone is ignored
    torch.save({"model": sd}, tmp_path / "full.pth")
    lm = load_model(f"torch:mobilefacenet:{tmp_path / 'full.pth'}", device="cpu")
    x = rand_images(3)
    with torch.no_grad():
        ref = m(torch.from_numpy(((x.astype(np.float32) - 127.5) / 128).transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(lm.embed(x), ref, rtol=1e-5, atol=1e-5)
    assert lm.embed(x).shape == (3, 512)
    with pytest.raises(ConfigError, match="shape mismatch"):  # an explicit size must match the checkpoint
        load_model(f"torch:mobilefacenet,embedding_size=128:{tmp_path / 'full.pth'}")


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated but TorchScript files exist
def test_torchscript_backend(tmp_path):
    m = calibrated("mobilefacenet")
    torch.jit.trace(m, torch.zeros(1, 3, 112, 112)).save(str(tmp_path / "m.pt"))
    torch.save(m.state_dict(), tmp_path / "m.pth")
    x = rand_images(3)
    a = load_model(f"torchscript:{tmp_path / 'm.pt'}", trust_torchscript=True).embed(x)
    b = load_model(f"torch:mobilefacenet:{tmp_path / 'm.pth'}").embed(x)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_onnx_and_tflite_agree_on_lfw_with_padding(shared):
    mdir = shared / "models/mobilefacenet-expo"
    onnx = load_model(f"onnx:{require(mdir / 'MobileFaceNet.onnx')}")
    tfl = load_model(f"tflite:{require(mdir / 'MobileFaceNet.tflite')}")
    assert onnx.fixed_batch == 2 and tfl.fixed_batch == 2 and onnx.layout == "NCHW"
    imgs = lfw_crops(shared)  # 5 crops of 112×96: an odd count exercises the padded last batch
    assert imgs.shape == (5, 112, 96, 3)
    a, b = onnx.embed(imgs), tfl.embed(imgs)
    assert a.shape == b.shape == (5, 192)
    assert np.abs(a - b).max() < 1e-3
    # the padded last image gets the same embedding as when it shares a batch with a real image
    np.testing.assert_allclose(onnx.embed(imgs[3:5])[1], a[4], atol=1e-5)
    # preprocessing is exactly: pad 8 zero columns each side, RGB, (x - 127.5) / 128, NCHW
    x = np.pad(imgs[:2], ((0, 0), (0, 0), (8, 8), (0, 0))).astype(np.float32)
    direct = onnx.session.run(None, {"input": ((x - 127.5) / 128).transpose(0, 3, 1, 2).copy()})[0]
    np.testing.assert_allclose(a[:2], direct, atol=1e-6)
    # same person is closer than different people
    n = a / np.linalg.norm(a, axis=1, keepdims=True)
    assert n[0] @ n[1] > max(n[0] @ n[2], n[0] @ n[4]) and n[2] @ n[3] > n[2] @ n[4]


def test_wrong_input_size_is_a_clear_error(shared):
    model = load_model(f"onnx:{require(shared / 'models/mobilefacenet-expo/MobileFaceNet.onnx')}")
    with pytest.raises(ConfigError, match=r"250×250 but the model takes 112×112"):
        model.embed(rand_images(1, 250, 250))
    with pytest.raises(ConfigError, match="expected uint8 N×H×W×3"):
        model.embed(rand_images(1).astype(np.float32))
    with pytest.raises(ConfigError, match="takes 112×112 inputs but the preprocessing asks for 128×128"):
        load_model(model.spec, preprocess="size=128x128")
    resized = load_model(model.spec, preprocess="fit=resize")
    assert resized.embed(rand_images(1, 250, 250)).shape == (1, 192)


def test_export_onnx_matches_torch(shared, tmp_path):
    torch.save(calibrated("mobilefacenet").state_dict(), tmp_path / "m.pth")
    assert cli_main(["export-onnx", "mobilefacenet", "--checkpoint", str(tmp_path / "m.pth"),
                     "-o", str(tmp_path / "m.onnx")]) == 0
    onnx = load_model(f"onnx:{tmp_path / 'm.onnx'}")
    assert onnx.fixed_batch is None  # dynamic batch
    ref = load_model(f"torch:mobilefacenet:{tmp_path / 'm.pth'}")
    imgs = lfw_crops(shared)
    a, b = onnx.embed(imgs), ref.embed(imgs)
    assert a.shape == (5, 128) and np.abs(a - b).max() < 1e-4
    assert onnx.embed(imgs[:1]).shape == (1, 128)


def test_specs_and_preprocess_parsing():
    assert parse_spec("torch:iresnet50:/a/b:c.pth") == ("torch", "iresnet50", Path("/a/b:c.pth"))
    assert parse_spec("x/model.onnx")[0] == "onnx" and parse_spec("tflite:m.bin")[0] == "tflite"
    for bad in ("torch:only.pth", "m.pth", "onnx:"):
        with pytest.raises(ConfigError):
            parse_spec(bad)
    p = Preprocess().with_overrides("color=bgr,mean=1/2/3,std=127.5,size=112x96,fit=none")
    assert (p.color, p.mean, p.std, p.size, p.fit) == ("BGR", (1.0, 2.0, 3.0), (127.5,) * 3, (112, 96), "none")
    img = np.zeros((1, 112, 96, 3), np.uint8)
    img[..., 0] = 10  # red channel
    out = p(img)
    assert out.shape == (1, 112, 96, 3) and np.allclose(out[..., 2], (10 - 3) / 127.5) and np.allclose(out[..., 0], -1 / 127.5)
    padded = Preprocess().fit_batch(np.full((1, 112, 96, 3), 200, np.uint8))
    assert padded.shape == (1, 112, 112, 3) and (padded[:, :, :8] == 0).all() and (padded[:, :, 8:104] == 200).all()
    with pytest.raises(ConfigError, match="112×96 but the model takes 112×112"):
        Preprocess(fit="none").fit_batch(img)
    with pytest.raises(ConfigError, match="unknown preprocess field"):
        Preprocess().with_overrides({"scale": 2})
    with pytest.raises(ConfigError, match="not key=value"):
        parse_overrides("std")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_nhwc_dynamic_batch_layout(tmp_path):
    m = calibrated("mobilefacenet")

    class NHWC(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x.permute(0, 3, 1, 2))

    torch.onnx.export(NHWC(m).eval(), (torch.zeros(2, 112, 112, 3),), str(tmp_path / "nhwc.onnx"), dynamo=False,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    onnx = load_model(f"onnx:{tmp_path / 'nhwc.onnx'}")
    assert onnx.layout == "NHWC" and onnx.fixed_batch is None and onnx.preprocess.size == (112, 112)
    x = rand_images(3)
    torch.save(m.state_dict(), tmp_path / "m.pth")
    np.testing.assert_allclose(onnx.embed(x), load_model(f"torch:mobilefacenet:{tmp_path / 'm.pth'}").embed(x),
                               atol=1e-4)


def test_in_memory_module_keeps_training_mode():
    from arface_repro.models.torch_model import TorchModel

    m = calibrated("mobilefacenet").train()
    wrapped = load_model(m)
    assert isinstance(wrapped, TorchModel) and wrapped.spec.startswith("torch-module:")
    x = rand_images(2)
    with torch.no_grad():
        ref = m.eval()(torch.from_numpy(((x.astype(np.float32) - 127.5) / 128).transpose(0, 3, 1, 2).copy())).numpy()
    m.train()
    np.testing.assert_allclose(wrapped.embed(x), ref, rtol=1e-5, atol=1e-5)  # eval-mode output
    assert m.training  # ... and the training module is left as it was
