"""`EmbeddingModel`: the one interface every model kind gives (`arface_repro.models.kinds`).

`model.embed(uint8 N×H×W×3 RGB, landmarks=None) -> float32 N×D` (it applies `model.preprocess` itself),
`model.spec`, `model.preprocess`, `model.file_sha256`, `model.embedding_size` (None until known for files),
`model.identity()` (what determines the outputs: cache keys and records). Models with `uses_landmarks` use the
5-point landmarks (N×5×2, pixels of the images given; None = the aligned template; see `input_landmarks`); the
others ignore them. A kind implements `_run(float32 N×H×W×3) -> N×D` for a batch it accepts; a fixed batch size
(`fixed_batch`) is honoured here by zero-padding the last batch and dropping the padding rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from arface_repro.errors import FormatError
from arface_repro.models.input_landmarks import network_landmarks
from arface_repro.models.preprocess import Preprocess
from arface_repro.utils.devices import check_device


class EmbeddingModel:
    """Common interface. Subclasses implement `_run(float32 N×H×W×3) -> N×D` for a batch they accept."""

    # the models.presets.Preset it was loaded through, if any (typed Any: presets imports this module)
    preset: Any = None
    batch_note: str = ""  # how the batch size it accepts was found (declared by the file, or probed)

    kind = "?"
    uses_landmarks = False  # True: `_run(x, landmarks)` gets N×5×2 landmarks in network-input pixels

    def __init__(self, spec: str, preprocess: Preprocess, file_sha256: str, fixed_batch: int | None = None,
                 embedding_size: int | None = None):
        self.spec = spec
        self.preprocess = preprocess
        self.file_sha256 = file_sha256
        self.fixed_batch = fixed_batch
        self.embedding_size = embedding_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r}, preprocess={self.preprocess.key()})"

    def identity(self) -> dict:
        """What determines the outputs (used in embedding cache keys and result records)."""
        return {"kind": self.kind, "spec": self.spec, "sha256": self.file_sha256, "preprocess": self.preprocess.key()}

    def embed(self, batch: np.ndarray, landmarks=None) -> np.ndarray:
        """uint8 N×H×W×3 RGB images -> float32 N×D raw (unnormalised) embeddings. `landmarks`: float N×5×2 in the
        images' pixels, for models that use them (None: the aligned template); ignored by the others."""
        x = self.preprocess(batch, name=f"input to {self.spec}")
        n = len(x)
        if n == 0:
            return np.zeros((0, self.embedding_size or 0), dtype=np.float32)
        lm = None
        if self.uses_landmarks:
            lm = network_landmarks(landmarks, batch.shape[1:3], self.preprocess, n, f"input to {self.spec}")

        def run(xs, ls):
            return self._run(xs) if ls is None else self._run(xs, ls)

        if self.fixed_batch:
            b = self.fixed_batch
            outs = []
            for i in range(0, n, b):
                chunk = x[i:i + b]
                lchunk = None if lm is None else lm[i:i + b]
                k = len(chunk)
                if k < b:  # the network only takes exactly b images: zero-pad, then drop the padding rows
                    chunk = np.concatenate([chunk, np.zeros((b - k,) + chunk.shape[1:], np.float32)])
                    if lchunk is not None:
                        lchunk = np.concatenate([lchunk, np.zeros((b - k, 5, 2), np.float32)])
                outs.append(self._checked(run(chunk, lchunk), b)[:k])
            out = np.concatenate(outs)
        else:
            out = self._checked(run(x, lm), n)
        self.embedding_size = out.shape[1]
        return out

    def _checked(self, out, n: int) -> np.ndarray:
        out = np.asarray(out, dtype=np.float32)
        if out.ndim > 2 and all(d == 1 for d in out.shape[2:]):
            out = out.reshape(out.shape[:2])
        if out.ndim != 2 or out.shape[0] != n:
            raise FormatError(f"{self.spec}: the network returned shape {out.shape} for {n} images; expected {n}×D")
        return out

    def _run(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def resolve_device(device=None):
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(device)


def layout_from_shape(shape, spec: str) -> tuple[str, int | None, tuple[int, int] | None]:
    """(layout, fixed batch or None, (H, W) or None) from a 4-D input shape with ints or symbolic dims."""
    dims: list[int | None] = [int(d) if isinstance(d, (int, np.integer)) and d > 0 else None for d in shape]
    if len(dims) != 4:
        raise FormatError(f"{spec}: the network input has shape {list(shape)}; expected 4-D images (N×3×H×W or N×H×W×3)")
    if dims[1] == 3 and dims[3] != 3:
        layout, hw = "NCHW", (dims[2], dims[3])
    elif dims[3] == 3:
        layout, hw = "NHWC", (dims[1], dims[2])
    elif dims[1] is None and dims[3] is None:
        layout, hw = "NCHW", (dims[2], dims[3])
    else:
        raise FormatError(f"{spec}: cannot tell the channel axis of input shape {list(shape)} (no axis of size 3)")
    fixed = int(dims[0]) if dims[0] else None
    h, w = hw
    return layout, fixed, (None if h is None or w is None else (h, w))
