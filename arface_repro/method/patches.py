"""Landmark patches, keep/drop modes and the ARFace mask M (numpy + torch helpers).

Paper reading (DESIGN.md, "The method"): around each of the 5 landmarks a square of half-side
`patch_radius` (30 px at 112x112); for every patch a keep/drop decision; of the 2**5 = 32 joint
decisions the one where *no patch is picked* (all dropped) is excluded, leaving 31 valid modes.

We take the faithful reading: the policy is ONE categorical ("multinomial") distribution over the 31
valid joint modes, not 5 independent Bernoullis. Mode index k in 0..30 encodes the keep-bitmask
k + 1 (bit i set = patch i kept), so k = 30 keeps every patch and no index maps to "all dropped".

Mask M is 1 everywhere except inside dropped patches, where it is 0 (overlapping patches: a pixel is
0 when it lies in ANY dropped patch, even if it also lies in a kept one).

Scaling M to a feature map of size h x w uses the cell-centre rule by default: cell (i, j) takes the
value of M at pixel (floor((i + .5) H / h), floor((j + .5) W / w)). It is nearest-neighbour sampling
at cell centres: the scaled mask stays binary (a cell is either dropped or kept, as in DropBlock),
and a cell is dropped exactly when its centre lies in a dropped patch. `mode="area"` (fraction of
the cell kept, via adaptive average pooling) is offered as the soft alternative.
"""

from __future__ import annotations

import numpy as np

from arface_repro.data.alignment import ARCFACE_112
from arface_repro.errors import ConfigError

NUM_PATCHES = 5
NUM_MODES = 2 ** NUM_PATCHES - 1  # 31: every joint keep/drop decision except "all dropped"
PATCH_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")

# 112x112 ArcFace template (x, y), used as landmarks for pre-aligned images: the alignment module's.
ARCFACE_TEMPLATE_112 = ARCFACE_112


def mode_keep_table() -> np.ndarray:
    """(31, 5) bool: row k = which patches mode k keeps (bitmask k + 1)."""
    bits = np.arange(1, NUM_MODES + 1)[:, None] >> np.arange(NUM_PATCHES)[None, :]
    return (bits & 1).astype(bool)


def keep_to_mode(keep) -> np.ndarray:
    """Inverse of `mode_keep_table`: (..., 5) bool keep flags -> mode index; all-dropped is an error."""
    keep = np.asarray(keep, dtype=bool)
    code = (keep.astype(np.int64) << np.arange(NUM_PATCHES)).sum(-1)
    if np.any(code == 0):
        raise ConfigError("keep flags with every patch dropped are not a valid ARFace mode")
    return code - 1


def fixed_keep_flags(policy: str, dataset, idx) -> np.ndarray:
    """Keep flags (N, 5) of the fixed test/training masks: `oracle` drops the occludable patch iff the image is
    occluded, `drop` always drops it, `off` keeps everything. Needs a set with `occluded` / `occluded_patch`."""
    idx = np.asarray(idx, np.int64)
    keep = np.ones((len(idx), NUM_PATCHES), bool)
    if policy == "off":
        return keep
    occ, patch = getattr(dataset, "occluded", None), getattr(dataset, "occluded_patch", None)
    if occ is None or patch is None:
        raise ConfigError(f"the fixed mask {policy!r} needs a synthetic set with occlusion flags (data.kind = synthetic)")
    if policy == "oracle":
        keep[:, patch] = ~np.asarray(occ, bool)[idx]
    elif policy == "drop":
        keep[:, patch] = False
    else:
        raise ConfigError(f"fixed mask must be oracle, drop or off, got {policy!r}")
    return keep


def patch_boxes(landmarks, patch_radius: float, height: int = 112, width: int = 112) -> np.ndarray:
    """Integer boxes (..., 5, 4) as [x0, y0, x1, y1) (x1/y1 exclusive), clipped to the image.

    Box = [round(x - r), round(x + r)) x [round(y - r), round(y + r)), so side 2r pixels when unclipped.
    Rounding is half-up (floor(v + 0.5)) so results do not depend on numpy's banker's rounding.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape[-2:] != (NUM_PATCHES, 2):
        raise ConfigError(f"landmarks must have shape (..., 5, 2), got {lm.shape}")
    if patch_radius <= 0:
        raise ConfigError(f"patch_radius must be > 0, got {patch_radius}")
    x, y = lm[..., 0], lm[..., 1]
    x0 = np.floor(x - patch_radius + 0.5)
    x1 = np.floor(x + patch_radius + 0.5)
    y0 = np.floor(y - patch_radius + 0.5)
    y1 = np.floor(y + patch_radius + 0.5)
    boxes = np.stack([np.clip(x0, 0, width), np.clip(y0, 0, height), np.clip(x1, 0, width), np.clip(y1, 0, height)], -1)
    return boxes.astype(np.int64)


def drop_mask_numpy(boxes: np.ndarray, keep: np.ndarray, height: int, width: int) -> np.ndarray:
    """Mask M (N, H, W) float32 for one batch: boxes (N, 5, 4), keep (N, 5) bool. Reference version."""
    n = boxes.shape[0]
    m = np.ones((n, height, width), np.float32)
    for b in range(n):
        for p in range(NUM_PATCHES):
            if not keep[b, p]:
                x0, y0, x1, y1 = boxes[b, p]
                m[b, y0:y1, x0:x1] = 0.0
    return m


# ----------------------------------------------------------------------------------------------
# torch versions (used by the trainer); imported lazily so the numpy part stays torch-free.


def drop_mask(boxes, keep, height: int, width: int):
    """Vectorised torch mask M (N, 1, H, W): boxes (N, 5, 4) long, keep (N, 5) bool."""
    import torch

    ys = torch.arange(height, device=boxes.device).view(1, 1, height, 1)
    xs = torch.arange(width, device=boxes.device).view(1, 1, 1, width)
    b = boxes.view(boxes.shape[0], NUM_PATCHES, 4, 1, 1)
    inside = (xs >= b[:, :, 0]) & (xs < b[:, :, 2]) & (ys >= b[:, :, 1]) & (ys < b[:, :, 3])  # N,5,H,W
    dropped = (inside & ~keep.view(-1, NUM_PATCHES, 1, 1)).any(1, keepdim=True)
    return (~dropped).to(torch.float32)


def patch_boxes_torch(landmarks, patch_radius: float, height: int = 112, width: int = 112):
    """torch twin of `patch_boxes` (same integers: float64 arithmetic, half-up rounding, clipping), made of
    traceable ops only so that an exported ONNX graph computes the boxes itself. landmarks (..., 5, 2) ->
    (..., 5, 4) int64."""
    import torch

    if patch_radius <= 0:
        raise ConfigError(f"patch_radius must be > 0, got {patch_radius}")
    lm = landmarks.to(torch.float64)
    x, y = lm[..., 0], lm[..., 1]
    r = float(patch_radius)
    x0 = torch.floor(x - r + 0.5).clamp(0, width)
    x1 = torch.floor(x + r + 0.5).clamp(0, width)
    y0 = torch.floor(y - r + 0.5).clamp(0, height)
    y1 = torch.floor(y + r + 0.5).clamp(0, height)
    return torch.stack([x0, y0, x1, y1], -1).to(torch.int64)


def modes_to_keep(modes):
    """torch: (N,) mode indices -> (N, 5) bool keep flags."""
    import torch

    code = modes.long() + 1
    return ((code.unsqueeze(-1) >> torch.arange(NUM_PATCHES, device=modes.device)) & 1).bool()


def scale_mask(mask, size, mode: str = "center"):
    """Scale mask (N, 1, H, W) to `size` = (h, w); see the module docstring for the rules."""
    import torch
    import torch.nn.functional as F

    h, w = int(size[0]), int(size[1])
    H, W = mask.shape[-2:]
    if (h, w) == (H, W):
        return mask
    if mode == "center":
        rows = torch.div((2 * torch.arange(h, device=mask.device) + 1) * H, 2 * h, rounding_mode="floor")
        cols = torch.div((2 * torch.arange(w, device=mask.device) + 1) * W, 2 * w, rounding_mode="floor")
        return mask[..., rows[:, None], cols[None, :]]
    if mode == "area":
        return F.adaptive_avg_pool2d(mask, (h, w))
    raise ConfigError(f"mask scaling mode must be 'center' or 'area', got {mode!r}")
