"""IR / IR-SE networks of the face.evoLVe, TreB1eN InsightFace_Pytorch and AdaFace code bases: the paper's ResNet50.

The paper's Feature-Net: "ResNet50 in which the shortcut was implemented by the max-pool operation or convolutions
used 1×1 kernels" with "the BN-Dropout-FC-BN structure to get the final 512-D embedding according to ArcFace".
That is this family (not insightface arcface_torch's `iresnet50`, whose shortcut is always a 1×1 conv):

- stem `input_layer`: conv3×3(3→64, stride 1) - BN - PReLU (112×112 kept; the first block of each stage strides);
- `body.N`, one module per residual block, output = residual branch + shortcut (no activation after the add);
  shortcut `MaxPool2d(1, stride)` (plain subsampling) where the channel count is unchanged, else conv1×1(stride) - BN;
- `output_layer`: BN2d - Dropout - Flatten - Linear(512·7·7 → D) - BN1d.

State-dict names are the family's own (`input_layer.*`, `body.N.shortcut_layer.*`, `body.N.res_layer.*`,
`output_layer.*`), so their checkpoints load with strict=True through `torch:ir50:PATH`. Three flavours, read
from each code base (they differ only where said):

| flavour | residual branch (`res_layer`) | SE module | final BN1d | `forward` returns | input (default preprocessing) |
|---|---|---|---|---|---|
| `evolve` (face.evoLVe `backbone/model_irse.py`) | BN, conv3×3, PReLU, conv3×3(stride), BN | `res_layer.5` | affine | the BN1d output | RGB, (x/255 − 0.5)/0.5 |
| `treb1en` (TreB1eN InsightFace_Pytorch `model.py`) | as `evolve` | `res_layer.5` | affine | the BN1d output L2-normalised | BGR, (x/255 − 0.5)/0.5 |
| `adaface` (AdaFace `net.py`) | BN, conv3×3, **BN**, PReLU, conv3×3(stride), BN | `res_layer.se_block` | `affine=False` | the BN1d output | BGR, (x/255 − 0.5)/0.5 |

`evolve` and `treb1en` checkpoints have the same keys; `adaface` ones are told apart by the BN at `res_layer.2`
(`kwargs_from_state_dict`, used by the model loader when no `flavour` is given). AdaFace's own `forward` returns
`(embedding / ‖embedding‖, ‖embedding‖)`: `forward_with_norm` gives exactly that pair for every flavour, while
`forward` returns one N×D tensor (the registry contract); `output="unit"|"raw"` overrides the flavour's choice.
TreB1eN's images are BGR because its training images were written from MXNet records (decoded BGR) by PIL and its
validation sets are converted RGB→BGR; AdaFace documents BGR (`inference.py`: `np_img[:, :, ::-1]`).

Stage depths: 18 [2,2,2,2], 34 [3,4,6,3], 50 [3,4,14,3], 100 [3,13,30,3] (AdaFace names the last `ir_101`;
face.evoLVe and TreB1eN define 50/100/152 only, AdaFace also 18/34). SE: reduction 16, conv1×1 without bias,
ReLU, sigmoid. BatchNorm eps 1e-5 everywhere (PyTorch's default, as all three use).

`dropout` is the head's dropout probability (default 0; face.evoLVe uses 0.5, TreB1eN 0.6, AdaFace 0.4 in
training; a no-op at inference). Weights are initialised as AdaFace does (He normal, fan-out, for conv and linear;
BN scale 1, shift 0).

Backbone contract: `mask_points` = `body.0 … body.{n-1}` (every residual block; its output is the map after the
add, the last op of the block), `stage_points` = {stage1..stage4: the blocks at 56², 28², 14², 7²}.
"""

from __future__ import annotations

import torch
from torch import nn

from arface_repro.backbones.registry import register_model
from arface_repro.errors import ConfigError

FLAVOURS = ("evolve", "treb1en", "adaface")
OUTPUTS = ("raw", "unit")
DEFAULT_OUTPUT = {"evolve": "raw", "treb1en": "unit", "adaface": "raw"}
WIDTHS = (64, 128, 256, 512)
UNITS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, (3, 3), stride, 1, bias=False)


class SEModule(nn.Module):
    """Squeeze-and-excitation: x · sigmoid(fc2(relu(fc1(avgpool(x))))), fc = 1×1 conv without bias."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1, padding=0, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1, padding=0, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class IRBlock(nn.Module):
    """One residual block: `res_layer(x) + shortcut_layer(x)` (see the module docstring for each flavour)."""

    def __init__(self, cin: int, depth: int, stride: int, se: bool, flavour: str):
        super().__init__()
        self.shortcut_layer: nn.Module
        if cin == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, depth, (1, 1), stride, bias=False), nn.BatchNorm2d(depth))
        if flavour == "adaface":
            self.res_layer = nn.Sequential(nn.BatchNorm2d(cin), _conv3x3(cin, depth), nn.BatchNorm2d(depth),
                                           nn.PReLU(depth), _conv3x3(depth, depth, stride), nn.BatchNorm2d(depth))
            if se:
                self.res_layer.add_module("se_block", SEModule(depth, 16))
        else:
            layers = [nn.BatchNorm2d(cin), _conv3x3(cin, depth), nn.PReLU(depth), _conv3x3(depth, depth, stride),
                      nn.BatchNorm2d(depth)]
            if se:
                layers.append(SEModule(depth, 16))
            self.res_layer = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class IRNet(nn.Module):
    """IR / IR-SE backbone (input N×3×112×112, output N×D)."""

    def __init__(self, depth: int, se: bool = False, embedding_size: int = 512, dropout: float = 0.0,
                 flavour: str = "evolve", output: str | None = None):
        super().__init__()
        if flavour not in FLAVOURS:
            raise ConfigError(f"IR network flavour must be one of {', '.join(FLAVOURS)}, got {flavour!r}")
        output = DEFAULT_OUTPUT[flavour] if output is None else output
        if output not in OUTPUTS:
            raise ConfigError(f"IR network output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"IR network dropout must be in [0, 1), got {dropout!r}")
        self.flavour, self.output, self.se = flavour, output, bool(se)
        self.embedding_size = int(embedding_size)
        units = UNITS[depth]
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, (3, 3), 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        blocks: list[nn.Module] = []
        cin = 64
        self.stage_points = {}
        for k, (width, n) in enumerate(zip(WIDTHS, units), start=1):
            first = len(blocks)
            for i in range(n):
                blocks.append(IRBlock(cin, width, 2 if i == 0 else 1, se, flavour))
                cin = width
            self.stage_points[f"stage{k}"] = [f"body.{j}" for j in range(first, len(blocks))]
        self.body = nn.Sequential(*blocks)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(float(dropout)), nn.Flatten(),
                                          nn.Linear(512 * 7 * 7, self.embedding_size),
                                          nn.BatchNorm1d(self.embedding_size, affine=flavour != "adaface"))
        self.mask_points = [f"body.{j}" for j in range(len(blocks))]
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def kwargs_from_state_dict(sd) -> dict:
        """Constructor arguments a checkpoint's keys reveal: `flavour='adaface'` when its blocks have a BN at
        `res_layer.2` (face.evoLVe/TreB1eN have a PReLU there); nothing otherwise."""
        return {"flavour": "adaface"} if "body.0.res_layer.2.running_mean" in sd else {}

    def forward_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The 512×7×7 map after the last block (before the output layer)."""
        return self.body(self.input_layer(x))

    def forward_with_norm(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """AdaFace's output: (embedding / ‖embedding‖, ‖embedding‖ as N×1)."""
        e = self.output_layer(self.forward_maps(x))
        norm = torch.norm(e, 2, 1, True)
        return torch.div(e, norm), norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.output_layer(self.forward_maps(x))
        if self.output == "unit":
            return torch.div(e, torch.norm(e, 2, 1, True))
        return e


def _builder(depth: int, se: bool, name: str):
    def build(embedding_size: int = 512, dropout: float = 0.0, flavour: str = "evolve", output: str | None = None) -> IRNet:
        return IRNet(depth, se, embedding_size, dropout, flavour, output)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = (f"IR{'-SE' if se else ''}-{depth} of face.evoLVe / TreB1eN / AdaFace (flavour evolve|treb1en|adaface; "
                     f"see arface_repro.backbones.ir)")
    return register_model(build, name=name)


ir18 = _builder(18, False, "ir18")
ir34 = _builder(34, False, "ir34")
ir50 = _builder(50, False, "ir50")
ir100 = _builder(100, False, "ir100")
ir_se50 = _builder(50, True, "ir_se50")
ir_se101 = _builder(100, True, "ir_se101")
