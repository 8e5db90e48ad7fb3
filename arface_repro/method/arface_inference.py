"""The ARFace inference network: Attention-Net, argmax keep/drop mode, input mask, Feature-Net backbone.

Paper: "during inference, the test input face was still masked by Attention-Net". For each image the Attention-Net
scores the 5 landmark patches, the most probable of the 31 keep/drop modes is taken (argmax), the normalised input
is multiplied by that mode's mask M, and the Feature-Net backbone embeds the masked input. Feature maps are not
masked at inference (the paper: "the mask is not applied on feature maps during inference"):

    boxes = patches.patch_boxes(landmarks, method.patch_radius, H, W)
    mode = argmax AttentionNet(x, boxes);  keep = the mode's keep flags
    embedding = backbone(x · drop_mask(boxes, keep, H, W))

This module is the network only (a `torch.nn.Module` of traceable ops); reading it from an `arface train`
checkpoint and running it on images is the `arface:` model kind (`arface_repro.models.kinds.arface`).
"""

from __future__ import annotations

import torch
from torch import nn

from arface_repro.method.attention_net import greedy_modes
from arface_repro.method.patches import drop_mask, mode_keep_table, patch_boxes_torch


class ARFaceInference(nn.Module):
    """The whole inference as one module: forward(x normalised N×3×H×W, landmarks N×5×2 in x's pixels) -> N×D.

    Without an Attention-Net (`attention=None`: mask off, or a run without one) it is the backbone alone and
    ignores `landmarks`. Made of traceable ops so that `torch.onnx.export` captures boxes, argmax and mask."""

    keep_table: torch.Tensor  # a buffer: mode -> keep flags of the 5 patches

    def __init__(self, backbone: nn.Module, attention: nn.Module | None = None, patch_radius: float = 30.0):
        super().__init__()
        self.backbone, self.attention, self.patch_radius = backbone, attention, float(patch_radius)
        # mode -> keep flags by table lookup: the same flags as patches.modes_to_keep, as an ONNX Gather
        self.register_buffer("keep_table", torch.from_numpy(mode_keep_table()), persistent=False)

    def modes(self, x: torch.Tensor, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(argmax modes (N,), boxes (N, 5, 4)) of a normalised batch."""
        if self.attention is None:
            raise ValueError("ARFaceInference.modes: this network has no Attention-Net (its mask is off)")
        boxes = patch_boxes_torch(landmarks, self.patch_radius, int(x.shape[-2]), int(x.shape[-1]))
        return greedy_modes(self.attention(x, boxes)), boxes

    def forward(self, x: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        if self.attention is None:
            return self.backbone(x)
        if landmarks is None:
            raise ValueError("ARFaceInference: the Attention-Net places its patches by the 5 landmarks; none given")
        modes, boxes = self.modes(x, landmarks)
        keep = self.keep_table[modes]
        return self.backbone(x * drop_mask(boxes, keep, int(x.shape[-2]), int(x.shape[-1])))
