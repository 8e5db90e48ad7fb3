"""Checkpoints for exact resume, written atomically (temp file + rename) by rank 0.

A checkpoint holds everything the next step depends on: model/head/Attention-Net weights, optimizer,
scheduler and GradScaler states, the REINFORCE baseline b, the step counter, and the RNG states of
python, numpy and torch (CPU and CUDA). The data order and every per-batch random draw of the
trainer are functions of (seed, step), so the step alone restores them.

The file holds tensors and plain containers only (`arface_repro.models.training_checkpoint`): RNG states
are stored as tensors, so every checkpoint loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from arface_repro.models.training_checkpoint import FORMAT, check_plain, read_training_checkpoint
from arface_repro.utils.atomic import atomic_path


def rng_state() -> dict:
    """python, numpy, torch (and CUDA) generator states as tensors and numbers."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": int(version), "state": torch.tensor(mt, dtype=torch.int64), "gauss_next": gauss},
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    p, n = state["python"], state["numpy"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"]))
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    payload = dict(payload, format=FORMAT, rng=rng_state())
    check_plain(payload, str(path))
    with atomic_path(path, clean_stale=True) as tmp:  # a killed run's checkpoint temp files go first
        with open(tmp, "wb", buffering=0) as fh:  # unbuffered: a failed write is seen in write(), not at close
            out = _WriteErrors(fh)
            try:
                torch.save(payload, out)  # type: ignore[arg-type]  # any object with write(); the stub says IO
            except RuntimeError:
                if out.error is None:
                    raise
                # torch reports a failed write (disk full, file size limit) as "[enforce fail ...] unexpected pos";
                # the OSError below names the file and the system's reason instead
                raise OSError(out.error.errno, out.error.strerror, str(path)) from None
    return Path(path)


class _WriteErrors:
    """A binary file for torch.save that remembers the OSError of a failed write (torch wraps it in RuntimeError)."""

    def __init__(self, fh):
        self.fh, self.error = fh, None

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        try:
            while done < len(view):  # a raw file may write part of a buffer
                done += self.fh.write(view[done:])
        except OSError as exc:
            self.error = exc
            raise
        return done

    def flush(self) -> None:
        self.fh.flush()


def load_checkpoint(path: str | Path) -> dict:
    """A training checkpoint, read with `weights_only=True` (see `read_training_checkpoint`)."""
    return read_training_checkpoint(path)
