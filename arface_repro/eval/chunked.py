"""Chunked scoring helpers shared by the large-scale protocols (IJB, MegaFace, Trillion-Pairs, RMFRD).

Three ideas keep the big protocols exact and memory-bounded:

* **Fixed chunk grid.** Score matrices are computed block by block on a grid that depends only on the
  problem size and the memory budget, never on the number of processes. Each process takes every
  `world`-th block, so a block's scores are bit-identical whether one process or eight compute it, and
  the merged results (top-k values, counts) equal the single-process ones exactly.
* **Running top-k.** FAR/FPR targets such as 1e-6 or 1e-9 need only the few highest impostor scores;
  `TopK` keeps the exact multiset of the k largest values seen so far (values not above the current
  k-th largest are discarded before any sort); `topk_scan.scan_top` does it per query row as well.
* **Backends.** `Backend` computes `a @ b.T` and the per-block reductions with numpy (CPU BLAS), or with
  torch on CUDA when present (or on CPU when asked, which the tests use to cover that path). torch is
  imported only when a torch backend is requested.

Distributed runs use `torch.distributed` (NCCL on GPU, gloo on CPU) when it is initialised, e.g. under
`torchrun`; `DistContext` wraps rank, world size, all_gather of variable-length arrays and sums.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from arface_repro.errors import ConfigError, FormatError
from arface_repro.utils.devices import check_device

DEFAULT_MAX_MEMORY_GB = 2.0


# --------------------------------------------------------------------------------------------------
# row normalisation


def l2n(x: np.ndarray) -> np.ndarray:
    """float32 rows divided by their L2 norm; a zero row is refused (FormatError naming it). The large
    protocols' normalisation (MegaFace, Trillion-Pairs, RMFRD)."""
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    if (n == 0).any():
        raise FormatError(f"feature row {int(np.argmax(n[:, 0] == 0))} is all zero; cannot normalise")
    return x / n


# --------------------------------------------------------------------------------------------------
# memory budget -> chunk sizes


def budget_bytes(max_memory_gb: float | None) -> int:
    """The working-memory budget in bytes for score blocks (default 2 GB); must be positive."""
    gb = DEFAULT_MAX_MEMORY_GB if max_memory_gb is None else float(max_memory_gb)
    if not gb > 0:
        raise ConfigError(f"--max-memory-gb must be positive, got {max_memory_gb}")
    return int(gb * (1 << 30))


def block_columns(n_rows: int, max_memory_gb: float | None, *, temporaries: int = 4,
                  cap: int = 1 << 16, floor: int = 256) -> int:
    """Columns per score block so that `temporaries` float32 blocks of n_rows × cols fit in the budget.

    A quarter of the budget goes to score blocks (the rest is left for the inputs and merges); the
    result is capped (`cap`, cache-friendly) and floored (`floor`, so progress is always made).
    """
    per_col = max(1, n_rows) * 4 * temporaries
    cols = budget_bytes(max_memory_gb) // 4 // per_col
    return int(max(floor, min(cap, cols)))


def chunk_grid(n: int, size: int) -> list[tuple[int, int]]:
    """[(start, stop), ...] covering range(n) in blocks of `size` (last one shorter).

    A last block of one item is merged into the one before: a BLAS product with a dimension of 1 runs a
    matrix-vector kernel whose float32 rounding differs from the matrix-matrix kernel's, which would make
    that block's scores differ in the last bit from a whole-matrix product."""
    if size <= 0:
        raise ValueError("chunk size must be positive")
    out = [(s, min(n, s + size)) for s in range(0, n, size)]
    if len(out) > 1 and out[-1][1] - out[-1][0] == 1:
        out[-2:] = [(out[-2][0], n)]
    return out


# --------------------------------------------------------------------------------------------------
# distributed context


class DistContext:
    """Rank/world of an initialised torch.distributed group, or a single process (rank 0 of 1)."""

    def __init__(self, use_distributed: bool | None = None):
        self.rank, self.world = 0, 1
        self._dist = None
        if use_distributed is False:
            return
        # a process group can only exist if torch.distributed was imported: don't import torch otherwise
        dist = sys.modules.get("torch.distributed")
        if dist is None:
            return
        if dist.is_available() and dist.is_initialized():
            self._dist = dist
            self.rank, self.world = dist.get_rank(), dist.get_world_size()

    @property
    def active(self) -> bool:
        return self._dist is not None and self.world > 1

    def mine(self, items: Sequence) -> list:
        """This rank's share of a chunk list: every `world`-th item starting at `rank`."""
        return list(items[self.rank::self.world])

    def _device(self):
        import torch  # noqa: PLC0415
        return torch.device("cuda", torch.cuda.current_device()) if self._dist.get_backend() == "nccl" else torch.device("cpu")

    def all_gather(self, arr: np.ndarray) -> list[np.ndarray]:
        """Each rank's array (same dtype and trailing shape, any length), in rank order."""
        arr = np.ascontiguousarray(arr)
        if not self.active:
            return [arr]
        import torch  # noqa: PLC0415
        dev = self._device()
        n = torch.tensor([arr.shape[0]], dtype=torch.int64, device=dev)
        sizes = [torch.zeros_like(n) for _ in range(self.world)]
        self._dist.all_gather(sizes, n)
        sizes = [int(s.item()) for s in sizes]
        m = max(sizes)
        flat = arr.reshape(arr.shape[0], int(np.prod(arr.shape[1:], dtype=np.int64)))
        raw = np.zeros((m, flat.shape[1] * flat.dtype.itemsize), dtype=np.uint8)
        raw[: arr.shape[0]] = flat.view(np.uint8).reshape(arr.shape[0], raw.shape[1])
        t = torch.from_numpy(raw).to(dev)
        bufs = [torch.empty_like(t) for _ in range(self.world)]
        self._dist.all_gather(bufs, t)
        out = []
        for b, s in zip(bufs, sizes):
            r = b.cpu().numpy()[:s]
            out.append(np.ascontiguousarray(r).view(arr.dtype).reshape((s,) + arr.shape[1:]))
        return out

    def all_gather_cat(self, arr: np.ndarray, axis: int = 0) -> np.ndarray:
        """Concatenation of every rank's array along `axis` (rank order)."""
        if not self.active:
            return arr
        moved = np.moveaxis(np.asarray(arr), axis, 0)
        parts = self.all_gather(moved)
        return np.moveaxis(np.concatenate(parts, axis=0), 0, axis)

    def sum(self, arr: np.ndarray) -> np.ndarray:
        """Element-wise sum over ranks (exact for integers; float64 for floats)."""
        arr = np.asarray(arr)
        if not self.active:
            return arr
        parts = self.all_gather(arr.reshape(1, *arr.shape))
        return np.sum(np.concatenate(parts, axis=0), axis=0)


# --------------------------------------------------------------------------------------------------
# compute backends


@dataclass
class Backend:
    """Where score blocks are computed: 'numpy' (CPU BLAS) or 'torch' on `device` ('cuda' / 'cpu')."""

    kind: str = "numpy"
    device: str = "cpu"

    def put(self, x: np.ndarray):
        """Move a float32 matrix to the backend (a no-op for numpy)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.kind == "numpy":
            return x
        import torch  # noqa: PLC0415
        return torch.from_numpy(x).to(self.device)

    def scores(self, a, b):
        """a @ b.T for backend arrays."""
        return a @ b.T

    def numpy(self, x) -> np.ndarray:
        if self.kind == "numpy":
            return np.asarray(x)
        return x.detach().cpu().numpy()


def _row_topk_np(s: np.ndarray, k: int) -> np.ndarray:
    """Top-k values of each row, sorted descending, padded with -inf when a row is shorter than k."""
    n, m = s.shape
    if m > k:
        part = np.partition(s, m - k, axis=1)[:, m - k:]
    else:
        part = np.concatenate([s, np.full((n, k - m), -np.inf, s.dtype)], axis=1)
    return -np.sort(-part, axis=1).astype(np.float32, copy=False)


def make_backend(device: str = "auto") -> Backend:
    """'auto' = torch on CUDA when available, else numpy; 'cpu'/'numpy' = numpy; 'cuda' = torch CUDA;
    'torch-cpu' = torch on CPU (same numbers as numpy up to BLAS rounding; used to test the torch path)."""
    if device in ("cpu", "numpy"):
        return Backend("numpy", "cpu")
    if device == "torch-cpu":
        return Backend("torch", "cpu")
    if device == "auto" and "torch" not in sys.modules and not any(
            os.path.exists(p) for p in ("/dev/nvidiactl", "/proc/driver/nvidia")):
        return Backend("numpy", "cpu")  # no NVIDIA driver: skip importing torch (~0.4 GB of RSS)
    if device in ("auto", "cuda") or device.startswith("cuda:"):
        try:
            import torch  # noqa: PLC0415
            has_cuda = torch.cuda.is_available()
        except ImportError:
            has_cuda = False
        if has_cuda:
            if device != "auto":
                check_device(device)
            return Backend("torch", "cuda" if device == "auto" else device)
        if device == "auto":
            return Backend("numpy", "cpu")
        raise ConfigError(f"--device {device}: CUDA is not available on this machine")
    raise ConfigError(f"unknown --device {device!r} (expected auto, cpu, cuda, cuda:N or torch-cpu)")


# --------------------------------------------------------------------------------------------------
# running top-k


class TopK:
    """Exact running multiset of the k largest values of a stream (float32 unless `dtype`, sorted on demand)."""

    def __init__(self, k: int, dtype=np.float32):
        if k < 1:
            raise ValueError("k must be at least 1")
        self.k = int(k)
        self.dtype = np.dtype(dtype)
        self._vals = np.empty(0, self.dtype)
        self.seen = 0

    @property
    def tau(self) -> float:
        """Values not above this cannot enter the top-k (-inf until k values have been seen)."""
        return float(self._vals.min()) if self._vals.size >= self.k else -math.inf

    def push(self, values: np.ndarray, n_seen: int | None = None) -> None:
        """Add candidate values (already filtered to > tau is fine); `n_seen` = how many the block held."""
        v = np.asarray(values, self.dtype).ravel()
        self.seen += int(v.size if n_seen is None else n_seen)
        if v.size == 0:
            return
        allv = np.concatenate([self._vals, v])
        if allv.size > self.k:
            allv = np.partition(allv, allv.size - self.k)[allv.size - self.k:]
        self._vals = allv

    def merge(self, other_values: np.ndarray) -> None:
        self.push(other_values, n_seen=0)

    def values(self) -> np.ndarray:
        """The kept values sorted descending."""
        return -np.sort(-self._vals)

    def gather(self, ctx: DistContext) -> np.ndarray:
        """Merge the top-k of all ranks; returns the global top-k sorted descending."""
        if ctx.active:
            parts = ctx.all_gather(self._vals)
            merged = TopK(self.k, self.dtype)
            merged.push(np.concatenate(parts), n_seen=0)
            return merged.values()
        return self.values()


# --------------------------------------------------------------------------------------------------
# thresholds from a top-k of impostors


def strict_k(far: float, n_impostor: int) -> int:
    """How many impostors may be accepted at FAR ≤ far: floor(far × n_impostor) (exact in integers)."""
    return int(math.floor(far * n_impostor + 1e-9 * max(1.0, far * n_impostor)))


def tar_at_far_from_top(genuine: np.ndarray, top_impostors: np.ndarray, n_impostor: int,
                        far: float) -> tuple[float, float]:
    """Strict rule from the top impostor scores: (TAR, threshold).

    With K = floor(far × N_imp) and v = the (K+1)-th largest impostor score, a pair is accepted iff its
    score > v; at most K impostors are then accepted (FAR ≤ far) and no lower threshold keeps that
    true. TAR = share of genuine scores > v. `top_impostors` must hold at least K+1 values (sorted
    descending) unless it holds all impostors; when K ≥ N_imp every pair is accepted.
    """
    genuine = np.asarray(genuine)
    k = strict_k(far, n_impostor)
    if k >= n_impostor:
        return 1.0, -math.inf
    if top_impostors.size < k + 1:
        raise ValueError(f"need the top {k + 1} impostor scores, have {top_impostors.size}")
    v = float(top_impostors[k])
    tar = float(np.count_nonzero(genuine > v)) / max(1, genuine.size)
    return tar, v
