"""Model presets in protocols/models: every file validates, the families carry their authors' conventions
and reported figures with sources, specs `PRESET:PATH` load, bad preset files are named errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import require

from arface_repro.backbones.registry import is_model
from arface_repro.errors import ConfigError, FormatError, MissingDataError
from arface_repro.models import presets
from arface_repro.models.backends import load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REQUIRED = {"arcface-torch-ms1mv3-r100", "adaface-ir50-ms1mv2", "facenet-20180408", "facenet-pytorch-vggface2",
            "facenet-pytorch-casia-webface", "sphereface-20", "mobilefacenet-expo"}


def test_every_preset_validates():
    names = presets.list_presets()
    assert REQUIRED <= set(names)
    for name in names:
        p = presets.load_preset(name)
        pre = p.preprocess()
        assert pre.size == tuple(p.input["size"]) and p.crop["mode"] in ("box", "template")
        for r in p.reported:
            assert r["source"].startswith("https://") and 0 < r["value"] <= 100


def test_family_conventions():
    fn = presets.load_preset("facenet-20180408")
    assert fn.backend == "opencv" and fn.crop_settings() == {"mode": "box", "margin": 32, "size": (160, 160)}
    pre = fn.preprocess()
    assert (pre.size, pre.color, pre.mean, pre.std, pre.norm) == ((160, 160), "RGB", (127.5,) * 3, (128.0,) * 3, "channel")
    assert [(r["benchmark"], r["value"]) for r in fn.reported] == [("LFW", 99.05)]
    sf = presets.load_preset("sphereface-20").preprocess()
    assert (sf.size, sf.color, sf.mean, sf.std) == ((112, 96), "BGR", (127.5,) * 3, (128.0,) * 3)
    ada = presets.load_preset("adaface-ir50-ms1mv2")
    assert ada.architecture == "ir50" and ada.checkpoint_prefix == "model."
    assert (ada.preprocess().color, ada.preprocess().std) == ("BGR", (127.5,) * 3)
    arc = presets.load_preset("arcface-torch-ms1mv3-r100")
    assert arc.architecture == "iresnet100" and arc.preprocess().color == "RGB" and arc.crop["mode"] == "template"
    fp = presets.load_preset("facenet-pytorch-casia-webface")
    assert fp.architecture == "inception_resnet_v1" and fp.preprocess().size == (160, 160)
    assert presets.reported_results("facenet-20180408:x.pb")[0] == {"preset": "facenet-20180408",
                                                                    **fn.reported[0]}
    assert presets.reported_results("onnx:m.onnx") == []


def test_mobilefacenet_preset_on_the_shared_file(shared):
    path = require(shared / "models" / "mobilefacenet-expo" / "MobileFaceNet.onnx")
    p = load_model(f"mobilefacenet-expo:{path}")
    plain = load_model(str(path))
    imgs = np.random.default_rng(0).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    assert p.spec.startswith("mobilefacenet-expo:") and p.preset.embedding_size == 192
    np.testing.assert_array_equal(p.embed(imgs), plain.embed(imgs))


def test_arcface_torch_preset_loads_backbone(tmp_path):
    torch.manual_seed(0)
    from arface_repro.backbones.registry import create_model

    m = create_model("iresnet50").eval()
    torch.save(m.state_dict(), tmp_path / "backbone.pth")
    p = load_model(f"arcface-torch-ms1mv3-r50:{tmp_path / 'backbone.pth'}")
    imgs = np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    x = torch.from_numpy(((imgs.astype(np.float32) / 255 - 0.5) / 0.5).transpose(0, 3, 1, 2).copy())  # RGB
    with torch.no_grad():
        want = m(x).numpy()
    np.testing.assert_allclose(p.embed(imgs), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.skipif(not is_model("ir50"), reason="the IR family (ir50, AdaFace layout) is not in the registry")
def test_adaface_preset_lightning_checkpoint(tmp_path):
    from arface_repro.backbones.registry import create_model

    torch.manual_seed(0)
    net = create_model("ir50").eval()
    ckpt = {"state_dict": {**{f"model.{k}": v for k, v in net.state_dict().items()},
                           "head.kernel": torch.zeros(512, 10)}, "epoch": 1}
    torch.save(ckpt, tmp_path / "adaface_ir50_ms1mv2.ckpt")
    m = load_model(f"adaface-ir50-ms1mv2:{tmp_path / 'adaface_ir50_ms1mv2.ckpt'}")
    imgs = np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    x = torch.from_numpy(((imgs[..., ::-1].astype(np.float32) / 255 - 0.5) / 0.5).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        out = net(x)
    want = (out[0] if isinstance(out, (tuple, list)) else out).numpy()  # AdaFace returns (embedding, norm)
    # an untrained IR-50 gives outputs of ~1e5: compare relative to their scale (float32 input arithmetic)
    np.testing.assert_allclose(m.embed(imgs), want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()))


def test_bad_preset_files(tmp_path, monkeypatch):
    d = tmp_path / "protocols" / "models"
    d.mkdir(parents=True)
    monkeypatch.setenv("ARFACE_PROTOCOLS", str(tmp_path / "protocols"))
    base = "name: {n}\nbackend: opencv\ninput: {{size: [160, 160]}}\ncrop: {{mode: box, margin: 32}}\n"
    (d / "ok.yaml").write_text(base.format(n="ok"))
    assert presets.list_presets() == ["ok"] and presets.load_preset("ok").preprocess().size == (160, 160)
    (d / "typo.yaml").write_text(base.format(n="typo") + "architcture: x\n")
    with pytest.raises(FormatError, match=r"typo.yaml: unknown key\(s\) \['architcture'\]"):
        presets.load_preset("typo")
    (d / "wrong.yaml").write_text(base.format(n="other"))
    with pytest.raises(FormatError, match="differs from the file name"):
        presets.load_preset("wrong")
    (d / "norm.yaml").write_text(base.format(n="norm").replace("size: [160, 160]", "size: [160, 160], normalization: x"))
    with pytest.raises(ConfigError, match="normalization 'x'"):
        presets.load_preset("norm")
    (d / "rep.yaml").write_text(base.format(n="rep") + "reported: [{benchmark: LFW, metric: acc, value: high}]\n")
    with pytest.raises(FormatError, match=r"reported\[0\] lacks 'source'"):
        presets.load_preset("rep")
    with pytest.raises(MissingDataError, match="no model preset 'nope'.*known: .*ok"):
        presets.load_preset("nope")
    with pytest.raises(ConfigError, match="expected torch:ARCH:PATH"):
        load_model("nope:x.pb")  # not a preset: falls through to the usual spec error
