"""Feature-map masking through forward hooks (training only).

The backbone names its mask points (`mask_points`: modules whose output is the feature map after the
last op of a residual block). Per batch the trainer picks `num_layers` of them uniformly at random
(without replacement) and masks each picked one with probability 0.5 (DESIGN.md); the hook multiplies
that module's output by the batch's mask M scaled to the map's size (`patches.scale_mask`).
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


def choose_layers(points, num_layers: int, generator: torch.Generator, p_mask: float = 0.5) -> list[str]:
    """Pick `num_layers` mask points at random, keep each with probability `p_mask`."""
    if num_layers <= 0:
        return []
    if num_layers > len(points):
        raise ConfigError(f"num_layers={num_layers} but the backbone has only {len(points)} mask points")
    order = torch.randperm(len(points), generator=generator)[:num_layers]
    coin = torch.rand(num_layers, generator=generator) < p_mask
    return [points[int(i)] for i, c in zip(order, coin) if bool(c)]
