"""Inception-ResNet-v1 (Szegedy et al. 2017) as facenet trains it, with facenet-pytorch's state-dict names.

`torch:inception_resnet_v1:PATH` loads facenet-pytorch's `20180402-114759-vggface2.pt` and
`20180408-102900-casia-webface.pt` (the TensorFlow facenet models ported to PyTorch) with `strict=True`:
module names (`conv2d_1a.conv`, `repeat_1.0.branch2.1.bn`, `mixed_6a.branch0.conv`, `block8.conv2d`,
`last_linear`, `last_bn`, `logits`) and shapes are theirs. Their files also hold the training classifier
(`logits`, 8631 VGGFace2 or 10575 CASIA-WebFace classes); it is built only when the checkpoint has it
(`kwargs_from_state_dict`) and never used for embeddings.

Input N×3×160×160, (x − 127.5)/128 (facenet-pytorch's fixed_image_standardization). Output: the 512-d
embedding after `last_bn`, unnormalised (facenet-pytorch L2-normalises it in `forward`; here the protocols
normalise). Batch norms use eps 0.001 as in TensorFlow.

Hook points (the registry's contract, for ARFace feature masking and DropBlock): `stage_points` = stem
(`conv2d_4b`), the 5 Block35, the 10 Block17 and the 5 Block8 + `block8` (maps of 17, 8 and 3 px at 160×160
input; 11, 5 and 2 px at 112×112); `mask_points` = the Block35 and Block17 residual blocks, whose maps are
large enough (≥ 5×5 at 112 px) for a patch mask to land on whole cells.
"""

from __future__ import annotations

import torch
from torch import nn

from arface_repro.backbones.registry import register_model


class BasicConv2d(nn.Sequential):
    """Convolution without bias, batch norm (eps 0.001), ReLU: children `conv`, `bn`, `relu`."""

    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001, momentum=0.1)
        self.relu = nn.ReLU()


def _chain(*specs) -> nn.Sequential:
    """A Sequential of BasicConv2d from (cin, cout, kernel, stride, padding) tuples."""
    return nn.Sequential(*(BasicConv2d(*s) for s in specs))


class _Residual(nn.Module):
    """Inception-ResNet block: branches -> concat -> 1×1 `conv2d` (with bias) -> x + scale·out -> ReLU."""

    def __init__(self, channels: int, branches: list, mixed: int, scale: float, relu: bool = True):
        super().__init__()
        self.scale = scale
        for i, b in enumerate(branches):
            setattr(self, f"branch{i}", b)
        self._n = len(branches)
        self.conv2d = nn.Conv2d(mixed, channels, 1)
        if relu:  # facenet-pytorch's last block has no ReLU and no `relu` child
            self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([getattr(self, f"branch{i}")(x) for i in range(self._n)], 1)
        out = self.conv2d(out) * self.scale + x
        return self.relu(out) if hasattr(self, "relu") else out


def block35(scale: float) -> _Residual:  # 35×35 grid in the paper (17×17 at 160 px input), 256 channels
    return _Residual(256, [BasicConv2d(256, 32, 1),
                           _chain((256, 32, 1), (32, 32, 3, 1, 1)),
                           _chain((256, 32, 1), (32, 32, 3, 1, 1), (32, 32, 3, 1, 1))], 96, scale)


def block17(scale: float) -> _Residual:  # 896 channels, factorised 7×7
    return _Residual(896, [BasicConv2d(896, 128, 1),
                           _chain((896, 128, 1), (128, 128, (1, 7), 1, (0, 3)), (128, 128, (7, 1), 1, (3, 0)))],
                     256, scale)


def block8(scale: float, relu: bool = True) -> _Residual:  # 1792 channels, factorised 3×3
    return _Residual(1792, [BasicConv2d(1792, 192, 1),
                            _chain((1792, 192, 1), (192, 192, (1, 3), 1, (0, 1)), (192, 192, (3, 1), 1, (1, 0)))],
                     384, scale, relu)


class _Reduction(nn.Module):
    """Grid reduction: parallel branches (the last one a 3×3/2 max pool) concatenated on channels."""

    def __init__(self, branches: list):
        super().__init__()
        for i, b in enumerate(branches):
            setattr(self, f"branch{i}", b)
        self._n = len(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([getattr(self, f"branch{i}")(x) for i in range(self._n)], 1)


class InceptionResnetV1(nn.Module):
    def __init__(self, embedding_size: int = 512, num_classes: int | None = None, dropout: float = 0.6):
        super().__init__()
        self.embedding_size = embedding_size
        self.conv2d_1a = BasicConv2d(3, 32, 3, 2)
        self.conv2d_2a = BasicConv2d(32, 32, 3)
        self.conv2d_2b = BasicConv2d(32, 64, 3, 1, 1)
        self.maxpool_3a = nn.MaxPool2d(3, 2)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.conv2d_4b = BasicConv2d(192, 256, 3, 2)
        self.repeat_1 = nn.Sequential(*(block35(0.17) for _ in range(5)))
        self.mixed_6a = _Reduction([BasicConv2d(256, 384, 3, 2),
                                    _chain((256, 192, 1), (192, 192, 3, 1, 1), (192, 256, 3, 2)),
                                    nn.MaxPool2d(3, 2)])
        self.repeat_2 = nn.Sequential(*(block17(0.10) for _ in range(10)))
        self.mixed_7a = _Reduction([_chain((896, 256, 1), (256, 384, 3, 2)),
                                    _chain((896, 256, 1), (256, 256, 3, 2)),
                                    _chain((896, 256, 1), (256, 256, 3, 1, 1), (256, 256, 3, 2)),
                                    nn.MaxPool2d(3, 2)])
        self.repeat_3 = nn.Sequential(*(block8(0.20) for _ in range(5)))
        self.block8 = block8(1.0, relu=False)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.last_linear = nn.Linear(1792, embedding_size, bias=False)
        self.last_bn = nn.BatchNorm1d(embedding_size, eps=0.001, momentum=0.1)
        if num_classes:
            self.logits = nn.Linear(embedding_size, num_classes)  # training classifier: loaded, not used
        self.stage_points = {"stage1": ["conv2d_4b"], "stage2": [f"repeat_1.{i}" for i in range(5)],
                             "stage3": [f"repeat_2.{i}" for i in range(10)],
                             "stage4": [f"repeat_3.{i}" for i in range(5)] + ["block8"]}
        self.mask_points = self.stage_points["stage2"] + self.stage_points["stage3"]

    @staticmethod
    def kwargs_from_state_dict(state_dict: dict) -> dict:
        """Constructor arguments a checkpoint implies: its classifier size, when it stores one."""
        w = state_dict.get("logits.weight")
        return {"num_classes": int(w.shape[0])} if w is not None and w.ndim == 2 else {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b",
                     "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8", "avgpool_1a", "dropout"):
            x = getattr(self, name)(x)
        return self.last_bn(self.last_linear(x.flatten(1)))


@register_model
def inception_resnet_v1(embedding_size: int = 512, num_classes: int | None = None, dropout: float = 0.6):
    """facenet's Inception-ResNet-v1 with facenet-pytorch's state-dict names (160×160 input, 512-d)."""
    return InceptionResnetV1(embedding_size=embedding_size, num_classes=num_classes, dropout=dropout)
