"""The on-disk format of `arface train` checkpoints, and its safe reader.

A training checkpoint is a `torch.save` of a dict holding only tensors and plain containers (dict, list,
str, int, float, bool, None), so it loads with `torch.load(weights_only=True)`: reading one never runs code
from the file. Keys:

- `format`: `FORMAT`; `step`: int; `config`: the training config as a plain nested dict;
- `fnet`: the Feature-Net state dict (`backbone.*` = the embedding network, `head.*` = the margin head);
- `attn`: the Attention-Net state dict (ARFace runs only);
- training state for exact resume: optimizer/scheduler/scaler states, the REINFORCE baseline, the metric
  history and the RNG states (all as tensors and numbers; see `arface_repro.train.checkpoint`).

This module sits below both the trainer (which writes and resumes checkpoints) and the evaluation side
(which reads the Feature-Net and Attention-Net of a trained model), so neither imports the other.
"""

from __future__ import annotations

import os

from arface_repro.errors import FormatError
from arface_repro.utils.safe_load import torch_load_safe

FORMAT = "arface-train-checkpoint/2"
OLD_FORMATS = ("arface-train-checkpoint/1",)


def read_training_checkpoint(path: str | os.PathLike) -> dict:
    """Load an `arface train` checkpoint with `weights_only=True`; one-line errors for anything else."""
    payload = torch_load_safe(path, "arface training checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        hint = " (written by an older version of this package; retrain or re-save it)" if found in OLD_FORMATS else ""
        raise FormatError(f"{path}: not an arface training checkpoint (format {found!r}, expected {FORMAT!r}){hint}")
    for key in ("config", "step"):
        if key not in payload:
            raise FormatError(f"{path}: training checkpoint without the {key!r} entry")
    if not isinstance(payload["config"], dict):
        raise FormatError(f"{path}: the 'config' entry is a {type(payload['config']).__name__}, expected a mapping")
    return payload


def check_plain(obj, where: str = "checkpoint") -> None:
    """Raise FormatError unless `obj` is made of tensors and plain containers only (what weights_only reads)."""
    import torch

    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise FormatError(f"{where}: key {k!r} is a {type(k).__name__}; only str/int keys are saved")
            check_plain(v, f"{where}.{k}")
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_plain(v, f"{where}[{i}]")
        return
    raise FormatError(f"{where}: a {type(obj).__name__} cannot be saved in a safe checkpoint "
                      f"(tensors and plain containers only)")
