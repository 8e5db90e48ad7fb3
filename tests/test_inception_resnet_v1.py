"""`inception_resnet_v1` against a structural copy of facenet-pytorch's InceptionResnetV1 written here:
the copy's state dict (with the training classifier, as facenet-pytorch's files have it) loads strictly into
the registry model through `torch:inception_resnet_v1:PATH` and the preset, and the embeddings agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from arface_repro.backbones.registry import create_model
from arface_repro.errors import ConfigError
from arface_repro.models.backends import load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- structural copy of facenet-pytorch's model
class RefBasicConv2d(nn.Module):
    def __init__(self, in_planes, out_planes, kernel_size, stride, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=kernel_size, stride=stride, padding=padding,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_planes, eps=0.001, momentum=0.1, affine=True)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class RefBlock35(nn.Module):
    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale
        self.branch0 = RefBasicConv2d(256, 32, 1, 1)
        self.branch1 = nn.Sequential(RefBasicConv2d(256, 32, 1, 1), RefBasicConv2d(32, 32, 3, 1, 1))
        self.branch2 = nn.Sequential(RefBasicConv2d(256, 32, 1, 1), RefBasicConv2d(32, 32, 3, 1, 1),
                                     RefBasicConv2d(32, 32, 3, 1, 1))
        self.conv2d = nn.Conv2d(96, 256, kernel_size=1, stride=1)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x):
        out = torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)
        return self.relu(self.conv2d(out) * self.scale + x)


class RefBlock17(nn.Module):
    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale
        self.branch0 = RefBasicConv2d(896, 128, 1, 1)
        self.branch1 = nn.Sequential(RefBasicConv2d(896, 128, 1, 1), RefBasicConv2d(128, 128, (1, 7), 1, (0, 3)),
                                     RefBasicConv2d(128, 128, (7, 1), 1, (3, 0)))
        self.conv2d = nn.Conv2d(256, 896, kernel_size=1, stride=1)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x):
        out = torch.cat((self.branch0(x), self.branch1(x)), 1)
        return self.relu(self.conv2d(out) * self.scale + x)


class RefBlock8(nn.Module):
    def __init__(self, scale=1.0, noReLU=False):
        super().__init__()
        self.scale, self.noReLU = scale, noReLU
        self.branch0 = RefBasicConv2d(1792, 192, 1, 1)
        self.branch1 = nn.Sequential(RefBasicConv2d(1792, 192, 1, 1), RefBasicConv2d(192, 192, (1, 3), 1, (0, 1)),
                                     RefBasicConv2d(192, 192, (3, 1), 1, (1, 0)))
        self.conv2d = nn.Conv2d(384, 1792, kernel_size=1, stride=1)
        if not self.noReLU:
            self.relu = nn.ReLU(inplace=False)

    def forward(self, x):
        out = self.conv2d(torch.cat((self.branch0(x), self.branch1(x)), 1)) * self.scale + x
        return out if self.noReLU else self.relu(out)


class RefMixed6a(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch0 = RefBasicConv2d(256, 384, 3, 2)
        self.branch1 = nn.Sequential(RefBasicConv2d(256, 192, 1, 1), RefBasicConv2d(192, 192, 3, 1, 1),
                                     RefBasicConv2d(192, 256, 3, 2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class RefMixed7a(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(RefBasicConv2d(896, 256, 1, 1), RefBasicConv2d(256, 384, 3, 2))
        self.branch1 = nn.Sequential(RefBasicConv2d(896, 256, 1, 1), RefBasicConv2d(256, 256, 3, 2))
        self.branch2 = nn.Sequential(RefBasicConv2d(896, 256, 1, 1), RefBasicConv2d(256, 256, 3, 1, 1),
                                     RefBasicConv2d(256, 256, 3, 2))
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class RefInceptionResnetV1(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv2d_1a = RefBasicConv2d(3, 32, 3, 2)
        self.conv2d_2a = RefBasicConv2d(32, 32, 3, 1)
        self.conv2d_2b = RefBasicConv2d(32, 64, 3, 1, 1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = RefBasicConv2d(64, 80, 1, 1)
        self.conv2d_4a = RefBasicConv2d(80, 192, 3, 1)
        self.conv2d_4b = RefBasicConv2d(192, 256, 3, 2)
        self.repeat_1 = nn.Sequential(*[RefBlock35(scale=0.17) for _ in range(5)])
        self.mixed_6a = RefMixed6a()
        self.repeat_2 = nn.Sequential(*[RefBlock17(scale=0.10) for _ in range(10)])
        self.mixed_7a = RefMixed7a()
        self.repeat_3 = nn.Sequential(*[RefBlock8(scale=0.20) for _ in range(5)])
        self.block8 = RefBlock8(noReLU=True)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.6)
        self.last_linear = nn.Linear(1792, 512, bias=False)
        self.last_bn = nn.BatchNorm1d(512, eps=0.001, momentum=0.1, affine=True)
        self.logits = nn.Linear(512, num_classes)  # pretrained files carry the classifier

    def forward(self, x):
        for m in (self.conv2d_1a, self.conv2d_2a, self.conv2d_2b, self.maxpool_3a, self.conv2d_3b, self.conv2d_4a,
                  self.conv2d_4b, self.repeat_1, self.mixed_6a, self.repeat_2, self.mixed_7a, self.repeat_3,
                  self.block8, self.avgpool_1a, self.dropout):
            x = m(x)
        x = self.last_bn(self.last_linear(x.view(x.shape[0], -1)))
        return F.normalize(x, p=2, dim=1)  # facenet-pytorch's embedding (classify=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    torch.manual_seed(0)
    ref = RefInceptionResnetV1(num_classes=7)
    with torch.no_grad():  # non-trivial BN statistics, so a misplaced BN would show
        for m in ref.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    ref.eval()
    path = tmp_path_factory.mktemp("irv1") / "20180402-114759-vggface2.pt"
    torch.save(ref.state_dict(), path)
    return ref, path


def test_strict_load_and_equal_outputs(reference):
    ref, path = reference
    ours = create_model("inception_resnet_v1", num_classes=7).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)  # same names and shapes, nothing left over
    assert list(ours.state_dict()) == list(ref.state_dict())
    x = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        want, got = ref(x), F.normalize(ours(x), dim=1)
    assert got.shape == (2, 512)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_spec_and_preset_load_facenet_pytorch_file(reference):
    ref, path = reference
    imgs = np.random.default_rng(1).integers(0, 256, (3, 160, 160, 3), dtype=np.uint8)
    x = torch.from_numpy(((imgs.astype(np.float32) - 127.5) / 128).transpose(0, 3, 1, 2))
    with torch.no_grad():
        want = ref(x).numpy()
    m = load_model(f"torch:inception_resnet_v1:{path}")  # classifier size read from the file
    assert m.preprocess.size == (160, 160) and m.preprocess.std == (128.0,) * 3
    got = m.embed(imgs)
    np.testing.assert_allclose(got / np.linalg.norm(got, axis=1, keepdims=True), want, atol=1e-5)
    p = load_model(f"facenet-pytorch-vggface2:{path}")
    assert p.preset.name == "facenet-pytorch-vggface2" and p.preset.reported[0]["value"] == 99.65
    np.testing.assert_array_equal(p.embed(imgs), got)


def test_wrong_checkpoint_is_a_clear_error(tmp_path):
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="does not fit architecture 'inception_resnet_v1'"):
        load_model(f"torch:inception_resnet_v1:{tmp_path / 'other.pt'}")


def test_hook_points_and_112_input():
    m = create_model("inception_resnet_v1").eval()
    assert len(m.mask_points) == 15 and set(m.mask_points) <= {p for v in m.stage_points.values() for p in v}
    seen = {}
    for names in m.stage_points.values():
        for p in names:
            m.get_submodule(p).register_forward_hook(lambda mod, i, o, p=p: seen.__setitem__(p, o.shape[-1]))
    with torch.no_grad():
        assert m(torch.randn(1, 3, 112, 112)).shape == (1, 512)
    assert [seen[v[0]] for v in m.stage_points.values()] == [11, 11, 5, 2]

