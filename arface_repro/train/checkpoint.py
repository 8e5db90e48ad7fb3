"""Checkpoints for exact resume, written atomically (temp file + rename) by rank 0.

A checkpoint holds everything the next step depends on: model/head/Attention-Net weights, optimizer,
scheduler and GradScaler states, the REINFORCE baseline b, the step counter, and the RNG states of
python, numpy and torch (CPU and CUDA). The data order and every per-batch random draw of the
trainer are functions of (seed, step), so the step alone restores them.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.utils.atomic import atomic_path

FORMAT = "arface-train-checkpoint/1"


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    payload = dict(payload, format=FORMAT, rng=rng_state())
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"checkpoint {path} does not exist")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise FormatError(f"{path}: not an arface training checkpoint (expected format {FORMAT!r})")
    return payload
