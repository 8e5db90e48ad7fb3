"""Attention-Net: a small CNN that looks at the 5 landmark patches and outputs a distribution over
the 31 valid keep/drop modes (see `patches.py`).

Paper: "two conv layers" in the text, five layers in the figure, large kernels, pooling, PReLU. Ours
(documented choice): each patch is resampled to `patch_size` x `patch_size` (24 by default; the paper
does not give the input size) with RoIAlign, then a shared per-patch CNN
conv7x7(3->c1) PReLU maxpool2 conv5x5(c1->c2) PReLU maxpool2 global-avg-pool, and a linear layer on
the 5 concatenated patch descriptors (patch order = landmark order, so the layer knows which patch is
which) gives 31 logits. About 20k parameters: its step is cheap next to the Feature-Net's.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.distributions import Categorical

from arface_repro.method.patches import NUM_MODES, NUM_PATCHES


class AttentionNet(nn.Module):
    def __init__(self, patch_size: int = 24, channels: tuple[int, int] = (16, 32), num_modes: int = NUM_MODES):
        super().__init__()
        c1, c2 = channels
        self.patch_size = patch_size
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 7, padding=3),
            nn.PReLU(c1),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=2),
            nn.PReLU(c2),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(NUM_PATCHES * c2, num_modes)
        nn.init.zeros_(self.classifier.weight)  # start from the uniform policy over the 31 modes
        nn.init.zeros_(self.classifier.bias)

    def crop_patches(self, images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """images (N,3,H,W) float, boxes (N,5,4) int [x0,y0,x1,y1) -> (N*5, 3, P, P)."""
        from torchvision.ops import roi_align

        n = images.shape[0]
        idx = torch.arange(n, device=images.device, dtype=images.dtype).repeat_interleave(NUM_PATCHES)
        rois = torch.cat([idx[:, None], boxes.reshape(-1, 4).to(images.dtype)], 1)
        return roi_align(images, rois, (self.patch_size, self.patch_size), spatial_scale=1.0, sampling_ratio=2, aligned=True)

    def forward(self, images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Return mode logits (N, 31)."""
        n = images.shape[0]
        f = self.features(self.crop_patches(images, boxes)).flatten(1)  # N*5, c2
        return self.classifier(f.view(n, -1))


def _no_autocast(t: torch.Tensor):
    """The policy's probabilities are float32 even inside a mixed-precision region (autocast off)."""
    return torch.autocast(t.device.type, enabled=False)


def sample_modes(logits: torch.Tensor, uniforms: torch.Tensor | None = None) -> torch.Tensor:
    """Sample one mode per row (training). `uniforms` (N,) in [0,1) makes the draw reproducible across
    process counts (inverse-CDF sampling); without it torch's multinomial is used."""
    with _no_autocast(logits):
        return _sample(torch.softmax(logits.detach().float(), -1), logits.shape[1], uniforms)


def _sample(probs: torch.Tensor, n_modes: int, uniforms: torch.Tensor | None) -> torch.Tensor:
    if uniforms is None:
        return torch.multinomial(probs, 1).squeeze(1)
    cdf = probs.cumsum(-1)
    cdf[:, -1] = 1.0
    return torch.searchsorted(cdf, uniforms.to(cdf).unsqueeze(1), right=True).squeeze(1).clamp_max(n_modes - 1)


def greedy_modes(logits: torch.Tensor) -> torch.Tensor:
    """Inference decision: the most probable mode."""
    return logits.argmax(-1)


def log_prob(logits: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
    """Per-row log p(mode) (N,), float32; sum it for the log-probability of the whole batch's decisions."""
    with _no_autocast(logits):
        return Categorical(logits=logits.float()).log_prob(modes)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    with _no_autocast(logits):
        return Categorical(logits=logits.float()).entropy()
