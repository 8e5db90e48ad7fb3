"""Regularisation baselines the paper compares against.

- Random patch dropping (PickPatch): the same 31 modes as ARFace, drawn uniformly (no Attention-Net).
- Cutout 16x16 on the input: a square of side 16 centred at a uniform random pixel, clipped (DeVries &
  Taylor's rule: the centre may be near the border so part of the square falls outside).
- DropBlock (Ghiasi et al.): block_size 7, keep_prob annealed linearly 1 -> 0.75 over training, on the
  backbone's stage3 and stage4 outputs (the paper's "groups 3 and 4"), i.e. after every module the
  backbone lists in `stage_points['stage3']` and `['stage4']`:
    IR-ResNet: every block of layer3 (14x14) and layer4 (7x7);
    MobileFaceNet: the 14x14 blocks bottleneck2.0, bottleneck3.0-5 and the 7x7 ones bottleneck4.0,
    bottleneck5.0-1 and conv3. On 7x7 maps block_size 7 covers the whole map (as in the DropBlock paper's
    ResNet-50 group 4), so a dropped block removes a whole channel there.
  gamma = (1 - keep_prob) / block_size**2 * (h * w) / ((h - block_size + 1) * (w - block_size + 1)), block
  centres are drawn in the valid region, and the output is rescaled by numel / count_ones.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from arface_repro.method.feature_masking import resolve_points


def cutout_mask(n: int, height: int, width: int, size: int, uniforms: torch.Tensor) -> torch.Tensor:
    """(N,1,H,W) mask with one size x size zero square per image; uniforms (N,2) in [0,1) pick the centre."""
    cy = (uniforms[:, 0] * height).long().clamp_max(height - 1)
    cx = (uniforms[:, 1] * width).long().clamp_max(width - 1)
    y0, x0 = cy - size // 2, cx - size // 2
    ys = torch.arange(height, device=uniforms.device).view(1, height, 1)  # built where the uniforms are (CPU or GPU)
    xs = torch.arange(width, device=uniforms.device).view(1, 1, width)
    inside = (ys >= y0.view(-1, 1, 1)) & (ys < (y0 + size).view(-1, 1, 1)) & (xs >= x0.view(-1, 1, 1)) & (xs < (x0 + size).view(-1, 1, 1))
    return (~inside).float().unsqueeze(1)


def dropblock(x: torch.Tensor, keep_prob: float, block_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    if keep_prob >= 1.0:
        return x
    n, c, h, w = x.shape
    bs = min(block_size, h, w)
    gamma = (1.0 - keep_prob) / bs**2 * (h * w) / ((h - bs + 1) * (w - bs + 1))
    valid = torch.zeros(h, w, dtype=torch.bool, device=x.device)
    valid[bs // 2 : h - (bs - 1) // 2, bs // 2 : w - (bs - 1) // 2] = True
    # drawn on the generator's device (the trainer passes one on the training device), else on x's
    noise = torch.rand((n, c, h, w), generator=generator, device=generator.device if generator is not None else x.device)
    noise = noise.to(x.device)
    half = x.dtype in (torch.float16, torch.bfloat16)  # mixed precision: the mask and its count stay float32
    seeds = ((noise < gamma) & valid).to(torch.float32 if half else x.dtype)
    block = F.max_pool2d(seeds, kernel_size=bs, stride=1, padding=bs // 2)
    if bs % 2 == 0:
        block = block[..., :h, :w]
    keep = 1.0 - block
    scale = keep.numel() / keep.sum().clamp_min(1.0)
    return x * (keep * scale).to(x.dtype) if half else x * keep * scale


class DropBlockHooks:
    """DropBlock on named stage outputs, active only while the backbone is in training mode."""

    def __init__(self, model: nn.Module, stage_names, block_size: int = 7, final_keep_prob: float = 0.75, generator=None):
        self.block_size = block_size
        self.final_keep_prob = final_keep_prob
        self.keep_prob = 1.0
        self.generator = generator
        self.handles = [m.register_forward_hook(self._hook) for m in resolve_points(model, stage_names).values()]

    def set_progress(self, fraction: float) -> None:
        """Linear schedule: keep_prob = 1 - fraction * (1 - final_keep_prob), fraction in [0, 1]."""
        f = min(max(float(fraction), 0.0), 1.0)
        self.keep_prob = 1.0 - f * (1.0 - self.final_keep_prob)

    def _hook(self, module, inputs, output):
        if not module.training:
            return None
        return dropblock(output, self.keep_prob, self.block_size, self.generator)
