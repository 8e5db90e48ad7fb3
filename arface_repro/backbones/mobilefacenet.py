"""MobileFaceNet (Chen et al., CCBR 2018), exactly the paper's Table 1.

| input | operator | t | c | n | s |  module |
|---|---|---|---|---|---|---|
| 112²×3 | conv3×3 | - | 64 | 1 | 2 | `conv1` |
| 56²×64 | depthwise conv3×3 | - | 64 | 1 | 1 | `conv2_dw` |
| 56²×64 | bottleneck | 2 | 64 | 5 | 2 | `bottleneck1.0-4` |
| 28²×64 | bottleneck | 4 | 128 | 1 | 2 | `bottleneck2.0` |
| 14²×128 | bottleneck | 2 | 128 | 6 | 1 | `bottleneck3.0-5` |
| 14²×128 | bottleneck | 4 | 128 | 1 | 2 | `bottleneck4.0` |
| 7²×128 | bottleneck | 2 | 128 | 2 | 1 | `bottleneck5.0-1` |
| 7²×128 | conv1×1 | - | 512 | 1 | 1 | `conv3` |
| 7²×512 | linear GDConv7×7 | - | 512 | 1 | 1 | `gdconv` |
| 1²×512 | linear conv1×1 | - | D | 1 | 1 | `embedding` (conv + BN) |

Bottleneck (MobileNetV2): 1×1 expand ×t - BN - PReLU - depthwise 3×3 (stride s) - BN - PReLU - linear 1×1 - BN,
with a residual add when stride is 1 and input/output widths agree (only the first block of a row takes stride s).
Non-linearity is PReLU throughout; "linear" layers have BN but no activation. With D = 128 the network has
about 0.99M parameters, as the paper states.

Residual blocks (`mask_points`, 12 in all, output = right after the add): `bottleneck1.1-4` (28×28),
`bottleneck3.0-5` (14×14), `bottleneck5.0-1` (7×7). `stage_points` groups every block output by resolution:
stage1 = 56×56 (`conv1`, `conv2_dw`), stage2 = 28×28 (`bottleneck1.*`), stage3 = 14×14 (`bottleneck2.0`,
`bottleneck3.*`), stage4 = 7×7 (`bottleneck4.0`, `bottleneck5.*`, `conv3`).
"""

from __future__ import annotations

import torch
from torch import nn

from arface_repro.backbones.registry import register_model

# (t, c, n, s) rows of the paper's table
BOTTLENECKS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class ConvBN(nn.Sequential):
    """Conv (no bias) - BN, followed by PReLU unless `linear`."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, linear: bool = False):
        layers = [nn.Conv2d(cin, cout, k, stride, padding=(k - 1) // 2 if k == 3 else 0, groups=groups, bias=False),
                  nn.BatchNorm2d(cout)]
        if not linear:
            layers.append(nn.PReLU(cout))
        super().__init__(*layers)


class Bottleneck(nn.Module):
    """Inverted residual bottleneck; `residual` is True when the block adds its input to its output."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.expand = ConvBN(cin, hidden, 1)
        self.dw = ConvBN(hidden, hidden, 3, stride, groups=hidden)
        self.project = ConvBN(hidden, cout, 1, linear=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.dw(self.expand(x)))
        return x + out if self.residual else out


class MobileFaceNet(nn.Module):
    def __init__(self, embedding_size: int = 128):
        super().__init__()
        self.embedding_size = int(embedding_size)
        self.conv1 = ConvBN(3, 64, 3, stride=2)
        self.conv2_dw = ConvBN(64, 64, 3, groups=64)
        cin = 64
        names = []
        for r, (t, c, n, s) in enumerate(BOTTLENECKS, start=1):
            blocks = []
            for i in range(n):
                blocks.append(Bottleneck(cin, c, s if i == 0 else 1, t))
                cin = c
            setattr(self, f"bottleneck{r}", nn.Sequential(*blocks))
            names.append([f"bottleneck{r}.{i}" for i in range(n)])
        self.conv3 = ConvBN(cin, 512, 1)
        self.gdconv = ConvBN(512, 512, 7, groups=512, linear=True)
        self.embedding = ConvBN(512, self.embedding_size, 1, linear=True)
        self.stage_points = {
            "stage1": ["conv1", "conv2_dw"],
            "stage2": names[0],
            "stage3": names[1] + names[2],
            "stage4": names[3] + names[4] + ["conv3"],
        }
        self.mask_points = [n for group in names for n in group if self.get_submodule(n).residual]
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")  # fan-in: right for depthwise
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The 512×7×7 map after `conv3` (before the GDConv output layers)."""
        x = self.conv2_dw(self.conv1(x))
        for r in range(1, len(BOTTLENECKS) + 1):
            x = getattr(self, f"bottleneck{r}")(x)
        return self.conv3(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.embedding(self.gdconv(self.forward_maps(x))), 1)


@register_model
def mobilefacenet(embedding_size: int = 128) -> MobileFaceNet:
    return MobileFaceNet(embedding_size)
