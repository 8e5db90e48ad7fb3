"""IR-ResNet (improved residual network of ArcFace) with insightface arcface_torch's exact module layout.

State-dict keys are the same as insightface's `backbones/iresnet.py` (`conv1`, `bn1`, `prelu`, `layerK.i.{bn1,
conv1,bn2,prelu,conv2,bn3}`, `layerK.0.downsample.{0,1}`, `bn2`, `fc`, `features`), so an insightface
`backbone.pth` loads with strict=True. Block: BN - conv3×3 - BN - PReLU - conv3×3(stride) - BN, plus the
shortcut (no activation after the add). Head ("output layer E"): BN2d - flatten - Dropout - FC(512·7·7 -> D) - BN1d
whose scale is fixed to 1 (not trained), as in insightface. All BatchNorms use eps 1e-5.
Input N×3×112×112, output N×D (D = `embedding_size`, 512 by default).
"""

from __future__ import annotations

import torch
from torch import nn

from arface_repro.backbones.registry import register_model

BN_EPS = 1e-5


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """Pre-activation-style improved residual block; its output is the map right after the residual add."""

    def __init__(self, cin: int, cout: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=BN_EPS)
        self.conv1 = _conv3x3(cin, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.prelu = nn.PReLU(cout)
        self.conv2 = _conv3x3(cout, cout, stride)
        self.bn3 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + identity


class IResNet(nn.Module):
    """IR-ResNet backbone. `mask_points` = every residual block `layerK.i`; `stage_points` = layer1..layer4."""

    fc_scale = 7 * 7
    # the four stages, made by setattr in __init__ (their state-dict keys are insightface's layer1..layer4)
    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, layers: list[int], embedding_size: int = 512, dropout: float = 0.0):
        super().__init__()
        self.embedding_size = int(embedding_size)
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=BN_EPS)
        self.prelu = nn.PReLU(64)
        widths = (64, 128, 256, 512)
        for k, (w, n) in enumerate(zip(widths, layers), start=1):
            setattr(self, f"layer{k}", self._make_layer(w, n, stride=2))
        self.bn2 = nn.BatchNorm2d(512, eps=BN_EPS)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(512 * self.fc_scale, self.embedding_size)
        self.features = nn.BatchNorm1d(self.embedding_size, eps=BN_EPS)
        self._init_weights()
        self.stage_points = {f"stage{k}": [f"layer{k}.{i}" for i in range(n)] for k, n in enumerate(layers, start=1)}
        self.mask_points = [name for names in self.stage_points.values() for name in names]

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes, eps=BN_EPS),
            )
        mods = [IBasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        mods += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def _init_weights(self) -> None:
        # Convs: He (fan-in) init, so an untrained net gives finite outputs in eval mode too; insightface uses
        # N(0, 0.1), which only BN in train mode keeps bounded (eval-mode outputs overflow at depth 100).
        # BN scale 1 / shift 0 and the final BN's scale fixed at 1 (not trained) are as in insightface.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False

    def forward_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The 512×7×7 map after layer4 (before the output layer)."""
        x = self.prelu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn2(self.forward_maps(x))
        x = self.dropout(torch.flatten(x, 1))
        return self.features(self.fc(x))


STAGES = {"iresnet18": [2, 2, 2, 2], "iresnet34": [3, 4, 6, 3], "iresnet50": [3, 4, 14, 3], "iresnet100": [3, 13, 30, 3]}


@register_model
def iresnet18(embedding_size: int = 512, dropout: float = 0.0) -> IResNet:
    return IResNet(STAGES["iresnet18"], embedding_size, dropout)


@register_model
def iresnet34(embedding_size: int = 512, dropout: float = 0.0) -> IResNet:
    return IResNet(STAGES["iresnet34"], embedding_size, dropout)


@register_model
def iresnet50(embedding_size: int = 512, dropout: float = 0.0) -> IResNet:
    return IResNet(STAGES["iresnet50"], embedding_size, dropout)


@register_model
def iresnet100(embedding_size: int = 512, dropout: float = 0.0) -> IResNet:
    return IResNet(STAGES["iresnet100"], embedding_size, dropout)
