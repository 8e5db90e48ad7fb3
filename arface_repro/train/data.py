"""Training data: dataset construction from a config, and the global batch order.

Order: exactly torch's `DistributedSampler(shuffle=True, seed=seed)` with `set_epoch(epoch)` (a permutation
per epoch; rank r takes positions r, r+W, r+2W, ...), cut into local batches of B/W with the last partial
batch dropped. The union of the ranks' local batches at step k is the same global batch for any number
of processes W, and position j of rank r's batch is position j*W + r of that global batch (used to
slice per-image random draws). Any step can be started directly, which makes resume exact.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset
from torch.utils.data.distributed import DistributedSampler

from arface_repro.errors import ArfaceError, ConfigError
from arface_repro.utils.worker_lifetime import worker_init


class _Len(Dataset):
    """A dataset of `n` items that only has a length: what DistributedSampler reads to draw an epoch's order."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n


class GlobalBatches:
    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        if n < batch_size:
            raise ConfigError(f"dataset has {n} images, fewer than the global batch size {batch_size}")
        self.n, self.B, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.steps_per_epoch = n // batch_size
        self._epoch: int | None = None
        self._order = np.empty(0, dtype=np.int64)  # the epoch's global order, drawn at its first step

    def local_indices(self, step: int) -> np.ndarray:
        epoch, k = divmod(int(step), self.steps_per_epoch)
        if epoch != self._epoch:
            s: DistributedSampler[int] = DistributedSampler(_Len(self.n), num_replicas=self.world, rank=self.rank, shuffle=True, seed=self.seed)
            s.set_epoch(epoch)
            self._epoch, self._order = epoch, np.fromiter(iter(s), dtype=np.int64)
        b = self.B // self.world
        return self._order[k * b : (k + 1) * b]


class StepBatchSampler:
    """Batch sampler for a DataLoader: yields each step's local indices from `start` to `stop`."""

    def __init__(self, batches: GlobalBatches, start: int, stop: int):
        self.batches, self.start, self.stop = batches, start, stop

    def __iter__(self):
        for step in range(self.start, self.stop):
            yield self.batches.local_indices(step).tolist()

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def collate(items):
    imgs = np.stack([np.asarray(it[0], dtype=np.uint8) for it in items])
    labels = torch.tensor([int(it[1]) for it in items], dtype=torch.long)
    lms = np.stack([np.asarray(it[2], dtype=np.float32) for it in items])
    return torch.from_numpy(imgs), labels, lms


class BatchFetch(Dataset):
    """A map-style view whose item `[indices]` is the whole batch `fetch(dataset, indices)`: a DataLoader worker
    reads (and decodes) one step's batch in one call, in-memory sets by one fancy index."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __getitem__(self, indices):
        return fetch(self.dataset, np.asarray(indices, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.dataset)


def _as_is(batch):
    return batch


def worker_loader(dataset, batches: GlobalBatches, start: int, stop: int, num_workers: int, pin_memory: bool = False):
    """DataLoader with `num_workers` reading/decoding processes, giving exactly the batches `fetch` gives, in order.

    `pin_memory` (set when training on CUDA) puts each batch in page-locked memory in the loader's thread, so
    the copy to the GPU is asynchronous (`non_blocking=True`) and overlaps the step before it."""
    from torch.utils.data import DataLoader

    return DataLoader(BatchFetch(dataset), sampler=StepBatchSampler(batches, start, stop), batch_size=None,
                      num_workers=num_workers, collate_fn=_as_is, persistent_workers=False, pin_memory=pin_memory,
                      prefetch_factor=4 if num_workers else None,
                      worker_init_fn=worker_init() if num_workers else None)  # workers end with this process


def next_batch(loader_iter):
    """The next batch of a DataLoader iterator. A bad-input error raised in a worker process comes back from
    torch with the worker's traceback pasted into its message: it is re-raised with its own one line only."""
    try:
        return next(loader_iter)
    except ArfaceError as exc:
        text = str(exc)
        if "Original Traceback" not in text:
            raise
        last = [ln for ln in text.splitlines() if ln.strip()][-1]
        prefix = f"{type(exc).__module__}.{type(exc).__name__}: "
        raise type(exc)(last[len(prefix):] if last.startswith(prefix) else last) from None


def fetch(dataset, idx: np.ndarray):
    """(images uint8 N,H,W,3 tensor, labels long tensor, landmarks float32 numpy N,5,2)."""
    if hasattr(dataset, "images") and hasattr(dataset, "landmarks"):  # in-memory fast path (synthetic)
        return torch.from_numpy(dataset.images[idx]), torch.from_numpy(np.asarray(dataset.labels)[idx]).long(), np.asarray(dataset.landmarks)[idx]
    return collate([dataset[int(i)] for i in idx])


def build_train_set(cfg: dict):
    d = cfg["data"]
    if d["kind"] == "synthetic":
        # the generator draws with cv2: loaded only for synthetic data
        from arface_repro.data.occluded_faces import SyntheticFaces

        return SyntheticFaces(seed=int(cfg["seed"]), **d["synthetic"])
    if not d["path"]:
        raise ConfigError(f"data.kind={d['kind']!r} needs data.path")
    try:  # the face datasets are torch datasets: loaded only for real data
        from arface_repro.data import face_datasets
    except ImportError as exc:
        raise ConfigError(f"data.kind={d['kind']!r} needs arface_repro.data.face_datasets, which is not available: {exc}") from exc
    if d["kind"] == "rec":  # data.path = the prefix of <prefix>.rec / <prefix>.idx
        return face_datasets.RecFaceDataset(d["path"])
    return face_datasets.ImageFolderFaceDataset(d["path"], landmarks_file=d["landmarks_file"])


def build_val_set(cfg: dict):
    """Held-out synthetic identities (disjoint from training: identity numbers offset by 100000)."""
    if cfg["data"]["kind"] != "synthetic":
        return None
    # the generator draws with cv2: loaded only for synthetic data
    from arface_repro.data.occluded_faces import SyntheticFaces

    syn, val = cfg["data"]["synthetic"], cfg["data"]["val"]
    kw = {k: v for k, v in syn.items() if k not in ("num_identities", "images_per_identity")}
    return SyntheticFaces(num_identities=val["num_identities"], images_per_identity=val["images_per_identity"], seed=int(cfg["seed"]), identity_offset=100000, **kw)
