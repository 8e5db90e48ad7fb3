"""A tiny residual backbone with the project's backbone contract, for tests and CPU-scale runs.

Contract (same as the other `arface_repro.backbones`): input N x 3 x 112 x 112, output N x D; `mask_points` = ordered
names of modules whose output is the feature map after the last op (the residual add) of a block;
`stage_points` = {stage1..stage4: [module names]}. `norm="bn"` (BatchNorm) or `"gn"` (GroupNorm, no
batch statistics: lets a CPU DDP run match a single-process run exactly, since SyncBatchNorm is
GPU-only).
"""

from __future__ import annotations

import torch.nn as nn

from arface_repro.backbones.registry import register_model


def _norm(kind: str, c: int) -> nn.Module:
    return nn.BatchNorm2d(c) if kind == "bn" else nn.GroupNorm(4, c)


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), _norm(norm, cout), nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), _norm(norm, cout),
        )
        self.short = None if (cin == cout and stride == 1) else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _norm(norm, cout))

    def forward(self, x):
        return self.body(x) + (x if self.short is None else self.short(x))


class TinyResNet(nn.Module):
    def __init__(self, embedding_size: int = 64, channels=(16, 24, 32, 48), norm: str = "bn", fast: bool = False):
        """`fast=True`: a stride-4 stem (28x28 after the stem instead of 56x56), several times cheaper."""
        super().__init__()
        c1, c2, c3, c4 = channels
        stem = nn.Conv2d(3, c1, 4, 4, 0, bias=False) if fast else nn.Conv2d(3, c1, 3, 2, 1, bias=False)
        self.stem = nn.Sequential(stem, _norm(norm, c1), nn.PReLU(c1))  # 56 (28 when fast)
        self.stage1 = Block(c1, c1, 2, norm)  # 28 (14)
        self.stage2 = Block(c1, c2, 2, norm)  # 14 (7)
        self.stage3 = Block(c2, c3, 1 if fast else 2, norm)  # 7
        self.stage4 = Block(c3, c4, 1, norm)  # 7
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c4 * 49, embedding_size), nn.BatchNorm1d(embedding_size, affine=False) if norm == "bn" else nn.Identity())
        self.mask_points = ["stage1", "stage2", "stage3", "stage4"]
        self.stage_points = {f"stage{i}": [f"stage{i}"] for i in range(1, 5)}

    def forward(self, x):
        x = self.stem(x)
        x = self.stage4(self.stage3(self.stage2(self.stage1(x))))
        return self.head(x)


@register_model
def tiny_resnet(embedding_size: int = 64, channels=(16, 24, 32, 48), norm: str = "bn", fast: bool = False) -> TinyResNet:
    """The tiny residual backbone of the synthetic table rows and the tests (not a face model of any paper)."""
    return TinyResNet(embedding_size=embedding_size, channels=tuple(channels), norm=norm, fast=fast)
