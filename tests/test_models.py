"""Model registry, MobileFaceNet and IR-ResNet: build, forward, parameter counts, insightface key layout, hook points."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from arface_repro.backbones.iresnet import IBasicBlock
from arface_repro.backbones.mobilefacenet import Bottleneck
from arface_repro.backbones.registry import create_model, is_model, list_models, register_model
from arface_repro.errors import ConfigError

# (parameters, state-dict entries) with the default embedding size. IR-ResNet figures are insightface's
# arcface_torch backbones (512-d); MobileFaceNet's is ours for the paper's table at 128-d (the paper: "0.99M").
COUNTS = {
    "iresnet18": (24_025_600, 187),
    "iresnet34": (34_139_328, 331),
    "iresnet50": (43_590_848, 475),
    "iresnet100": (65_156_160, 925),
    "mobilefacenet": (1_003_136, 333),
}
DIMS = {"mobilefacenet": 128}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_registry_lists_builtins_in_natural_order():
    names = list_models()
    assert list_models("iresnet*") == ["iresnet18", "iresnet34", "iresnet50", "iresnet100"]  # natural order
    assert list_models("ir[0-9]*") == ["ir18", "ir34", "ir50", "ir100"]
    assert "mobilefacenet" in names and "inception_resnet_v1" in names


@pytest.mark.parametrize("name", list(COUNTS))
def test_builds_forward_and_counts(name):
    torch.manual_seed(0)
    m = create_model(name).eval()
    params, entries = COUNTS[name]
    assert sum(p.numel() for p in m.parameters()) == params
    assert len(m.state_dict()) == entries
    n = 1 if name == "iresnet100" else 2
    with torch.no_grad():
        y = m(torch.randn(n, 3, 112, 112))
    assert y.shape == (n, DIMS.get(name, 512))
    assert torch.isfinite(y).all()
    assert m.embedding_size == y.shape[1]


def test_embedding_size_configurable():
    for name, d in (("mobilefacenet", 512), ("iresnet18", 256)):
        m = create_model(name, embedding_size=d).eval()
        with torch.no_grad():
            assert m(torch.zeros(2, 3, 112, 112)).shape == (2, d)


def test_iresnet_uses_insightface_key_names_and_settings():
    m = create_model("iresnet50")
    sd = m.state_dict()
    for k in ("conv1.weight", "bn1.running_var", "prelu.weight", "layer1.0.bn1.weight", "layer1.0.conv1.weight",
              "layer1.0.bn2.bias", "layer1.0.prelu.weight", "layer1.0.conv2.weight", "layer1.0.bn3.weight",
              "layer1.0.downsample.0.weight", "layer1.0.downsample.1.running_mean", "layer4.2.bn3.weight",
              "bn2.weight", "fc.weight", "fc.bias", "features.weight", "features.running_var"):
        assert k in sd, k
    assert "layer1.1.downsample.0.weight" not in sd  # only the first block of a stage has a shortcut conv
    assert tuple(sd["fc.weight"].shape) == (512, 512 * 7 * 7)
    assert tuple(sd["layer3.13.conv2.weight"].shape) == (256, 256, 3, 3)
    assert m.layer2[0].conv2.stride == (2, 2) and m.layer2[0].conv1.stride == (1, 1)
    assert m.conv1.stride == (1, 1) and m.conv1.bias is None
    assert all(b.eps == 1e-5 for b in m.modules() if isinstance(b, nn.modules.batchnorm._BatchNorm))
    assert not m.features.weight.requires_grad and torch.all(m.features.weight == 1)
    # block order: BN - conv - BN - PReLU - conv - BN
    assert [n for n, _ in m.layer1[0].named_children()] == ["bn1", "conv1", "bn2", "prelu", "conv2", "bn3", "downsample"]


def test_mobilefacenet_follows_paper_table():
    m = create_model("mobilefacenet")
    assert m.conv1[0].stride == (2, 2) and m.conv1[0].out_channels == 64
    assert m.conv2_dw[0].groups == 64
    rows = [(len(getattr(m, f"bottleneck{r}")), getattr(m, f"bottleneck{r}")[0].dw[0].stride[0],
             getattr(m, f"bottleneck{r}")[0].project[0].out_channels,
             getattr(m, f"bottleneck{r}")[0].expand[0].out_channels // getattr(m, f"bottleneck{r}")[0].expand[0].in_channels)
            for r in range(1, 6)]
    assert rows == [(5, 2, 64, 2), (1, 2, 128, 4), (6, 1, 128, 2), (1, 2, 128, 4), (2, 1, 128, 2)]  # (n, s, c, t)
    assert m.gdconv[0].kernel_size == (7, 7) and m.gdconv[0].groups == 512 and len(m.gdconv) == 2  # linear: no PReLU
    assert len(m.embedding) == 2 and m.embedding[0].kernel_size == (1, 1)
    assert sum(isinstance(x, nn.PReLU) for x in m.modules()) > 0
    assert not any(isinstance(x, nn.ReLU) for x in m.modules())


@pytest.mark.parametrize("name,n_points,sizes", [
    ("mobilefacenet", 12, {"stage1": 56, "stage2": 28, "stage3": 14, "stage4": 7}),
    ("iresnet18", 8, {"stage1": 56, "stage2": 28, "stage3": 14, "stage4": 7}),
    ("iresnet50", 24, {"stage1": 56, "stage2": 28, "stage3": 14, "stage4": 7}),
])
def test_mask_and_stage_points(name, n_points, sizes):
    m = create_model(name).eval()
    assert len(m.mask_points) == n_points
    for p in m.mask_points:  # every mask point is a residual block: its output is the sum after the add
        blk = m.get_submodule(p)
        assert isinstance(blk, IBasicBlock) or (isinstance(blk, Bottleneck) and blk.residual), p
    staged = [p for names in m.stage_points.values() for p in names]
    assert set(m.mask_points) <= set(staged)
    seen = {}
    hooks = [m.get_submodule(p).register_forward_hook(lambda mod, i, o, p=p: seen.__setitem__(p, o.shape))
             for p in staged]
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        base = m(x)
    for h in hooks:
        h.remove()
    for stage, names in m.stage_points.items():
        for p in names:
            assert seen[p][-2:] == (sizes[stage], sizes[stage]), (p, seen[p])
    # a hook multiplying the last mask point's output by zero changes the embedding (hooks act on the forward)
    h = m.get_submodule(m.mask_points[-1]).register_forward_hook(lambda mod, i, o: o * 0)
    with torch.no_grad():
        masked = m(x)
    h.remove()
    assert not torch.allclose(base, masked)


def test_registry_errors_and_custom_registration():
    with pytest.raises(ConfigError, match="unknown model architecture 'resnet9'"):
        create_model("resnet9")
    with pytest.raises(ConfigError, match="bad arguments"):
        create_model("mobilefacenet", width=3)

    @register_model(name="_test_tiny")
    def tiny(embedding_size: int = 4):
        return nn.Linear(3, embedding_size)

    assert is_model("_test_tiny") and create_model("_test_tiny", embedding_size=5).out_features == 5
    with pytest.raises(ValueError, match="already registered"):
        register_model(lambda: None, name="_test_tiny")
