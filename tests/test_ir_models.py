"""IR / IR-SE family (arface_repro.backbones.ir) against structural copies of face.evoLVe / TreB1eN and AdaFace.

The reference classes below are written here from those code bases' public model files (face.evoLVe
`backbone/model_irse.py`, TreB1eN InsightFace_Pytorch `model.py`, AdaFace `net.py`), kept to their module
structure and names so that their state dicts have the exact keys of those projects' checkpoints. They live in
this test only. Checkpoints are written in each project's on-disk layout (plain state dict; DataParallel
`module.`; AdaFace's PyTorch Lightning `.ckpt` with `model.*` and `head.*`) and must load strict through
`torch:ARCH:PATH` and give the reference outputs.
"""

from collections import namedtuple

import numpy as np
import pytest
import torch
from torch.nn import (
    AdaptiveAvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Linear,
    MaxPool2d,
    Module,
    PReLU,
    ReLU,
    Sequential,
    Sigmoid,
)

from arface_repro.backbones.ir import IRBlock
from arface_repro.backbones.registry import create_model, list_models
from arface_repro.errors import ConfigError
from arface_repro.models.backends import load_model
from arface_repro.models.preprocess import default_for_arch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------ reference: face.evoLVe / TreB1eN (same modules)


class RefFlatten(Module):
    def forward(self, input):
        return input.view(input.size(0), -1)


def ref_l2_norm(input, axis=1):
    norm = torch.norm(input, 2, axis, True)
    return torch.div(input, norm)


class RefSEModule(Module):
    def __init__(self, channels, reduction):
        super().__init__()
        self.avg_pool = AdaptiveAvgPool2d(1)
        self.fc1 = Conv2d(channels, channels // reduction, kernel_size=1, padding=0, bias=False)
        self.relu = ReLU(inplace=True)
        self.fc2 = Conv2d(channels // reduction, channels, kernel_size=1, padding=0, bias=False)
        self.sigmoid = Sigmoid()

    def forward(self, x):
        module_input = x
        x = self.avg_pool(x)
        x = self.fc1(x)
        x = self.relu(x)
        x = self.fc2(x)
        x = self.sigmoid(x)
        return module_input * x


class ref_bottleneck_IR(Module):
    def __init__(self, in_channel, depth, stride):
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer = MaxPool2d(1, stride)
        else:
            self.shortcut_layer = Sequential(Conv2d(in_channel, depth, (1, 1), stride, bias=False), BatchNorm2d(depth))
        self.res_layer = Sequential(
            BatchNorm2d(in_channel),
            Conv2d(in_channel, depth, (3, 3), (1, 1), 1, bias=False), PReLU(depth),
            Conv2d(depth, depth, (3, 3), stride, 1, bias=False), BatchNorm2d(depth))

    def forward(self, x):
        shortcut = self.shortcut_layer(x)
        res = self.res_layer(x)
        return res + shortcut


class ref_bottleneck_IR_SE(Module):
    def __init__(self, in_channel, depth, stride):
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer = MaxPool2d(1, stride)
        else:
            self.shortcut_layer = Sequential(Conv2d(in_channel, depth, (1, 1), stride, bias=False), BatchNorm2d(depth))
        self.res_layer = Sequential(
            BatchNorm2d(in_channel),
            Conv2d(in_channel, depth, (3, 3), (1, 1), 1, bias=False),
            PReLU(depth),
            Conv2d(depth, depth, (3, 3), stride, 1, bias=False),
            BatchNorm2d(depth),
            RefSEModule(depth, 16))

    def forward(self, x):
        shortcut = self.shortcut_layer(x)
        res = self.res_layer(x)
        return res + shortcut


class RefBottleneck(namedtuple("Block", ["in_channel", "depth", "stride"])):
    """A named tuple describing a ResNet block."""


def ref_get_block(in_channel, depth, num_units, stride=2):
    return [RefBottleneck(in_channel, depth, stride)] + [RefBottleneck(depth, depth, 1) for _ in range(num_units - 1)]


def ref_get_blocks(num_layers):
    units = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 14, 3], 100: [3, 13, 30, 3]}[num_layers]  # 18/34: AdaFace
    return [ref_get_block(64, 64, units[0]), ref_get_block(64, 128, units[1]), ref_get_block(128, 256, units[2]),
            ref_get_block(256, 512, units[3])]


class RefEvolveBackbone(Module):
    """face.evoLVe's Backbone (112×112); `l2=True` is TreB1eN's forward (returns l2_norm of the output)."""

    def __init__(self, num_layers, mode="ir", drop_ratio=0.5, l2=False):
        super().__init__()
        unit_module = ref_bottleneck_IR if mode == "ir" else ref_bottleneck_IR_SE
        self.input_layer = Sequential(Conv2d(3, 64, (3, 3), 1, 1, bias=False), BatchNorm2d(64), PReLU(64))
        self.output_layer = Sequential(BatchNorm2d(512), Dropout(drop_ratio), RefFlatten(), Linear(512 * 7 * 7, 512),
                                       BatchNorm1d(512))
        modules = []
        for block in ref_get_blocks(num_layers):
            for b in block:
                modules.append(unit_module(b.in_channel, b.depth, b.stride))
        self.body = Sequential(*modules)
        self.l2 = l2

    def forward(self, x):
        x = self.input_layer(x)
        x = self.body(x)
        x = self.output_layer(x)
        return ref_l2_norm(x) if self.l2 else x


# ------------------------------------------------------------------ reference: AdaFace net.py


class RefBasicBlockIR(Module):
    def __init__(self, in_channel, depth, stride):
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer = MaxPool2d(1, stride)
        else:
            self.shortcut_layer = Sequential(Conv2d(in_channel, depth, (1, 1), stride, bias=False), BatchNorm2d(depth))
        self.res_layer = Sequential(
            BatchNorm2d(in_channel),
            Conv2d(in_channel, depth, (3, 3), (1, 1), 1, bias=False),
            BatchNorm2d(depth),
            PReLU(depth),
            Conv2d(depth, depth, (3, 3), stride, 1, bias=False),
            BatchNorm2d(depth))

    def forward(self, x):
        shortcut = self.shortcut_layer(x)
        res = self.res_layer(x)
        return res + shortcut


class RefBasicBlockIRSE(RefBasicBlockIR):
    def __init__(self, in_channel, depth, stride):
        super().__init__(in_channel, depth, stride)
        self.res_layer.add_module("se_block", RefSEModule(depth, 16))


class RefAdaFaceBackbone(Module):
    def __init__(self, num_layers, mode="ir"):
        super().__init__()
        self.input_layer = Sequential(Conv2d(3, 64, (3, 3), 1, 1, bias=False), BatchNorm2d(64), PReLU(64))
        unit_module = RefBasicBlockIR if mode == "ir" else RefBasicBlockIRSE
        self.output_layer = Sequential(BatchNorm2d(512), Dropout(0.4), RefFlatten(), Linear(512 * 7 * 7, 512),
                                       BatchNorm1d(512, affine=False))
        modules = []
        for block in ref_get_blocks(num_layers):
            for b in block:
                modules.append(unit_module(b.in_channel, b.depth, b.stride))
        self.body = Sequential(*modules)

    def forward(self, x):
        x = self.input_layer(x)
        for module in self.body:
            x = module(x)
        x = self.output_layer(x)
        norm = torch.norm(x, 2, 1, True)
        output = torch.div(x, norm)
        return output, norm


class RefAdaFaceHead(Module):
    """Only the parameters/buffers of AdaFace's margin head, as they appear in its checkpoints."""

    def __init__(self, classnum=10):
        super().__init__()
        self.kernel = torch.nn.Parameter(torch.randn(512, classnum))
        self.register_buffer("t", torch.zeros(1))
        self.register_buffer("batch_mean", torch.ones(1) * 20)
        self.register_buffer("batch_std", torch.ones(1) * 100)


# ------------------------------------------------------------------ helpers

ARCH = {"ir18": (18, "ir"), "ir34": (34, "ir"), "ir50": (50, "ir"), "ir100": (100, "ir"),
        "ir_se50": (50, "ir_se"), "ir_se101": (100, "ir_se")}


def reference(arch: str, flavour: str) -> Module:
    depth, mode = ARCH[arch]
    if flavour == "adaface":
        return RefAdaFaceBackbone(depth, mode)
    return RefEvolveBackbone(depth, mode, l2=flavour == "treb1en")


def randomise(model: Module, seed: int) -> Module:
    """Random weights and BN statistics of moderate size (so that deep nets stay finite and every op matters)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.75)
            elif name.endswith("running_mean") or name.endswith(".bias"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.05)
            elif t.ndim == 1:  # BN scale, PReLU slope
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5)
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) * (0.5 / fan_in) ** 0.5)
    return model.eval()


def images(n=2, seed=0, h=112, w=112):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def reference_input(imgs: np.ndarray, bgr: bool) -> torch.Tensor:
    """The projects' own input pipelines: ToTensor + Normalize(0.5, 0.5) (face.evoLVe, TreB1eN) or AdaFace's
    `to_input` (((x[..., ::-1] / 255.) - 0.5) / 0.5 in float64, then float32)."""
    x = imgs[..., ::-1] if bgr else imgs
    return torch.from_numpy(((x / 255.0 - 0.5) / 0.5).transpose(0, 3, 1, 2).copy()).float()


def n_params(m: Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------ tests


def test_registered_names_and_parameter_counts():
    assert {"ir18", "ir34", "ir50", "ir100", "ir_se50", "ir_se101"} <= set(list_models("ir*"))
    expected = {  # (evolve/treb1en, adaface): counted from the reference classes below, and stated in the README
        "ir18": (24017536, 24020352), "ir34": (34127552, 34134080), "ir50": (43574976, 43585600),
        "ir100": (65129792, 65150912), "ir_se50": (43797696, 43808320), "ir_se101": (65502016, 65523136),
    }
    for arch, (n_evolve, n_ada) in expected.items():
        for flavour, n in (("evolve", n_evolve), ("adaface", n_ada)):
            with torch.device("meta"):  # shapes only: no memory, no initialisation cost
                ours, ref = create_model(arch, flavour=flavour), reference(arch, flavour)
            assert n_params(ours) == n_params(ref) == n, (arch, flavour)
            assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
                   {k: tuple(v.shape) for k, v in ref.state_dict().items()}, (arch, flavour)
            del ours, ref


@pytest.mark.parametrize("arch,flavour,layout", [
    ("ir_se50", "treb1en", "plain"),
    ("ir18", "evolve", "dataparallel"),
    ("ir50", "adaface", "lightning"),
    ("ir_se50", "adaface", "lightning"),
    ("ir18", "adaface", "lightning"),
])
def test_checkpoints_load_strict_and_match_the_reference(tmp_path, arch, flavour, layout):
    ref = randomise(reference(arch, flavour), seed=1)
    sd = ref.state_dict()
    path = tmp_path / "ckpt.pth"
    if layout == "plain":
        torch.save(sd, path)
    elif layout == "dataparallel":
        torch.save({f"module.{k}": v for k, v in sd.items()}, path)
    else:  # AdaFace's released .ckpt: a Lightning checkpoint, network under model., margin head under head.
        state = {f"model.{k}": v for k, v in sd.items()}
        state.update({f"head.{k}": v for k, v in RefAdaFaceHead().state_dict().items()})
        torch.save({"epoch": 25, "global_step": 100, "pytorch-lightning_version": "1.5.4", "state_dict": state,
                    "hyper_parameters": {"arch": arch, "head": "adaface", "m": 0.4, "h": 0.333}}, path)
    spec = f"torch:{arch}:{path}" if flavour != "treb1en" else f"torch:{arch},flavour=treb1en:{path}"
    model = load_model(spec, device="cpu")  # AdaFace's flavour is told by its keys; TreB1eN's has to be named
    net = model.module.eval()
    assert net.flavour == flavour
    # same weights, same network: identical outputs on the same tensor
    imgs = images(1)
    x = reference_input(imgs, bgr=flavour != "evolve")
    with torch.no_grad():
        if flavour == "adaface":
            e_ref, n_ref = ref(x)
            e, n = net.forward_with_norm(x)
            assert torch.equal(e, e_ref) and torch.equal(n, n_ref)
            want = e_ref * n_ref
        else:
            want = ref(x)
            assert torch.equal(net(x), want)
    # the backend with the flavour's default input convention (colour order, (x/255 − 0.5)/0.5)
    assert model.preprocess == default_for_arch(arch, flavour)
    assert model.preprocess.color == ("RGB" if flavour == "evolve" else "BGR")
    got = model.embed(imgs)
    assert np.allclose(got, want.numpy(), rtol=1e-4, atol=1e-4 * float(want.abs().max()))


def test_wrong_family_or_variant_is_a_clear_error(tmp_path):
    torch.save({f"model.{k}": v for k, v in RefAdaFaceBackbone(18).state_dict().items()}, tmp_path / "ada.pth")
    with pytest.raises(ConfigError, match="unexpected key"):
        load_model(f"torch:ir18,flavour=evolve:{tmp_path / 'ada.pth'}")
    with pytest.raises(ConfigError, match="does not fit architecture 'ir34'"):
        load_model(f"torch:ir34:{tmp_path / 'ada.pth'}")
    with pytest.raises(ConfigError, match="flavour must be one of"):
        create_model("ir50", flavour="insightface")
    with pytest.raises(ConfigError, match="output must be one of"):
        create_model("ir50", output="tuple")


def test_mask_points_are_every_residual_block_and_stages_by_resolution():
    for arch, blocks in (("ir18", 8), ("ir50", 24), ("ir_se101", 49)):
        with torch.device("meta"):
            net = create_model(arch)
        assert net.mask_points == [f"body.{i}" for i in range(blocks)]
        assert sum(len(v) for v in net.stage_points.values()) == blocks
        assert [p for s in ("stage1", "stage2", "stage3", "stage4") for p in net.stage_points[s]] == net.mask_points
        assert all(isinstance(net.get_submodule(p), IRBlock) for p in net.mask_points)
    net = randomise(create_model("ir18", flavour="adaface"), 3)
    outs, ins = {}, {}
    def keep(p):
        def hook(module, inputs, output):
            ins[p], outs[p] = inputs[0], output
        return hook

    hooks = [net.get_submodule(p).register_forward_hook(keep(p)) for p in net.mask_points]
    x = reference_input(images(1), True)
    with torch.no_grad():
        maps = net.forward_maps(x)
    for h in hooks:
        h.remove()
    for a, b in zip(net.mask_points, net.mask_points[1:]):  # a block's output is the next block's input: nothing between
        assert outs[a] is ins[b]
    assert torch.equal(outs[net.mask_points[-1]], maps)
    for p in net.mask_points:  # the output is the residual add, the block's last op
        blk = net.get_submodule(p)
        with torch.no_grad():
            assert torch.equal(outs[p], blk.res_layer(ins[p]) + blk.shortcut_layer(ins[p]))
    sizes = {s: {outs[p].shape[-1] for p in names} for s, names in net.stage_points.items()}
    assert sizes == {"stage1": {56}, "stage2": {28}, "stage3": {14}, "stage4": {7}}


def test_dropout_keyword_and_outputs():
    net = create_model("ir18", dropout=0.4)
    assert net.output_layer[1].p == 0.4 and create_model("ir18").output_layer[1].p == 0.0
    with pytest.raises(ConfigError, match="dropout"):
        create_model("ir18", dropout=1.5)
    randomise(net, 5)
    x = reference_input(images(2), False)
    with torch.no_grad():
        raw = net(x)
        e, n = net.forward_with_norm(x)
        assert torch.allclose(e * n, raw, rtol=1e-5, atol=1e-6)
        unit = create_model("ir18", flavour="treb1en")
        unit.load_state_dict(net.state_dict())
        assert torch.allclose(unit.eval()(x).norm(dim=1), torch.ones(2))
        net.train()
        assert not torch.equal(net(x), net(x))  # dropout acts in training
