"""Feature-map masking through forward hooks (training only).

The backbone names its mask points (`mask_points`: modules whose output is the feature map after the
last op of a residual block). The paper: "num_layers is the number of masked layers" and "for every batch,
we randomly selected some layers and masked selected feature maps ... with a fixed probability, which was
set at 0.5". Two readings are offered (`method.layer_draw`):

* `per_batch` (default): one coin per batch; with probability p (0.5) exactly `num_layers` mask points,
  drawn uniformly without replacement, are masked, otherwise none. "num_layers" is then the number of
  masked layers whenever masking happens, as the paper defines it.
* `per_layer`: `num_layers` points are drawn and each is masked with its own coin of probability p
  (num_layers · p layers on average; all of them with probability p^num_layers).

The hook multiplies the module's output by the batch's mask M scaled to the map's size
(`patches.scale_mask`).
At inference nothing is armed, so the hooks are a no-op.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from arface_repro.errors import ConfigError
from arface_repro.method.patches import scale_mask


def resolve_points(model: nn.Module, names) -> dict[str, nn.Module]:
    modules = dict(model.named_modules())
    out = {}
    for name in names:
        if name not in modules:
            raise ConfigError(f"mask point {name!r} is not a submodule of {type(model).__name__}")
        out[name] = modules[name]
    return out


class FeatureMasker:
    """Holds hooks on every mask point; `arm(mask, names)` activates some of them for one forward."""

    def __init__(self, model: nn.Module, points, scale_mode: str = "center"):
        self.points = list(points)
        self.scale_mode = scale_mode
        self._mask: torch.Tensor | None = None
        self._active: set[str] = set()
        self.handles = []
        for name, module in resolve_points(model, self.points).items():
            self.handles.append(module.register_forward_hook(self._make_hook(name)))

    def _make_hook(self, name: str):
        def hook(module, inputs, output):
            if self._mask is None or name not in self._active:
                return None
            m = scale_mask(self._mask, output.shape[-2:], self.scale_mode).to(output.dtype)
            return output * m

        return hook

    def arm(self, mask: torch.Tensor | None, names) -> None:
        self._mask = mask
        self._active = set(names) if mask is not None else set()

    def disarm(self) -> None:
        self._mask, self._active = None, set()

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


LAYER_DRAWS = ("per_batch", "per_layer")


def choose_layers(points, num_layers: int, generator: torch.Generator, p_mask: float = 0.5,
                  draw: str = "per_batch") -> list[str]:
    """The mask points masked in this batch (see the module docstring for the two readings)."""
    if draw not in LAYER_DRAWS:
        raise ConfigError(f"method.layer_draw must be one of {LAYER_DRAWS}, got {draw!r}")
    if num_layers <= 0:
        return []
    if num_layers > len(points):
        raise ConfigError(f"num_layers={num_layers} but the backbone has only {len(points)} mask points")
    order = torch.randperm(len(points), generator=generator)[:num_layers]
    if draw == "per_batch":
        coin = bool(torch.rand(1, generator=generator)[0] < p_mask)
        return [points[int(i)] for i in order] if coin else []
    coins = torch.rand(num_layers, generator=generator) < p_mask
    return [points[int(i)] for i, c in zip(order, coins) if bool(c)]
