"""Mixed precision, memory format and `torch.compile` for the trainer (`train.amp`, `train.memory_format`,
`train.compile`), resolved against the device the run trains on.

- `train.amp`: `bf16` or `fp16` runs the Feature-Net's forward under `torch.autocast` of that dtype; `off` runs
  float32. The margin heads switch autocast off and compute their logits (and the cross-entropy after them) in
  float32; the Attention-Net runs outside autocast and REINFORCE's log-probabilities are float32. fp16 adds a
  `GradScaler` (its state is in every checkpoint); bf16 needs none (float32's exponent range). Both work on
  CPU too (CPU autocast), which is how CI runs the code path; a CUDA device without bf16 support (before
  Ampere) refuses bf16 with a one-line error.
- `train.memory_format`: `auto` = channels-last on CUDA (NHWC, the tensor cores' layout), contiguous NCHW
  on CPU; `channels_last` on CPU is refused (a oneDNN crash, a double free, in conv backward on this torch
  build when the input is channels-last).
- `train.compile`: compiles the backbone in place (`nn.Module.compile`, so checkpoint keys do not change).
  Feature-map masking then uses `StaticFeatureMasker`: every mask point multiplies by its scaled mask, or by
  ones when the step did not draw it, so one graph serves every draw (the eager masker's Python set of
  armed layers would recompile per draw); x * 1 is x, so the numbers are the eager masker's. DropBlock's
  hooks run eagerly (`EagerDropBlockHooks`: their keep probability changes every step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from arface_repro.errors import ConfigError
from arface_repro.method.baselines import DropBlockHooks
from arface_repro.method.feature_masking import FeatureMasker
from arface_repro.method.patches import scale_mask

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

# keyword arguments of `nn.Module.compile` (tests set backend="eager" to trace without a C++/Triton compiler)
COMPILE_OPTIONS: dict = {}


@dataclass(frozen=True)
class Precision:
    mode: str  # bf16 | fp16 | off
    device_type: str

    @property
    def dtype(self) -> torch.dtype | None:
        return AMP_DTYPES.get(self.mode)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def autocast(self):
        """The Feature-Net's forward region (a no-op context when amp is off)."""
        return torch.autocast(self.device_type, dtype=self.dtype or torch.float32, enabled=self.enabled)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Enabled for fp16 only; a disabled scaler passes `scale`, `step` and `update` straight through."""
        return torch.amp.GradScaler(self.device_type, enabled=self.mode == "fp16")


def resolve_precision(mode, device: torch.device) -> Precision:
    mode = "off" if mode is False else str(mode)
    if mode not in ("bf16", "fp16", "off"):
        raise ConfigError(f"train.amp must be bf16, fp16 or off, got {mode!r}")
    if mode == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"train.amp=bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support; "
                          f"use train.amp=fp16 (with a gradient scaler) or off")
    return Precision(mode, device.type)


def resolve_memory_format(value: str, device: torch.device) -> torch.memory_format:
    if value == "channels_last" and device.type == "cpu":
        raise ConfigError("train.memory_format=channels_last is for CUDA: on CPU the convolution backward of this "
                          "torch build crashes on channels-last inputs (oneDNN); use auto or contiguous")
    if value == "channels_last" or (value == "auto" and device.type == "cuda"):
        return torch.channels_last
    return torch.contiguous_format


class StaticFeatureMasker(FeatureMasker):
    """FeatureMasker with one graph for every draw (for `torch.compile`): an armed forward multiplies every
    mask point's output by its scaled mask where the step drew that layer and by ones elsewhere."""

    def __init__(self, model: nn.Module, points, scale_mode: str = "center"):
        self._flags: torch.Tensor | None = None
        super().__init__(model, points, scale_mode)

    def arm(self, mask: torch.Tensor | None, names) -> None:
        super().arm(mask, names)
        if mask is None:
            return
        flags = torch.tensor([p in self._active for p in self.points], dtype=torch.bool)
        if self._flags is None or self._flags.device != mask.device:
            self._flags = flags.to(mask.device)
        else:
            self._flags.copy_(flags)

    def _make_hook(self, name: str):
        index = self.points.index(name)

        def hook(module, inputs, output):
            if self._mask is None:
                return None
            m = scale_mask(self._mask, output.shape[-2:], self.scale_mode)
            m = torch.where(self._flags[index], m, torch.ones_like(m))
            return output * m.to(output.dtype)

        return hook


class EagerDropBlockHooks(DropBlockHooks):
    """DropBlock hooks kept out of compiled graphs (their keep probability is a new float every step)."""

    @torch.compiler.disable
    def _hook(self, module, inputs, output):
        return super()._hook(module, inputs, output)


def compile_backbone(backbone: nn.Module) -> None:
    """Compile in place (state-dict keys unchanged, so checkpoints are the same as eager runs')."""
    backbone.compile(**COMPILE_OPTIONS)
