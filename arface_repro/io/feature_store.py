"""Feature store: an `.npz` with `features` (N×D float32), `paths` (N relative '/'-paths), optional `flip_features`.

Every protocol can start from a feature store, so users with their own embeddings skip the model.
Paths are relative to the dataset root and use '/', so a store made on one machine works on another.
Validation is strict: mismatched lengths, duplicate paths, non-finite or all-zero rows are errors that
name the offending path, because a silently dropped row shifts every fold after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.io.npz_file import read_npz
from arface_repro.utils.atomic import atomic_path


def normalize_rel_path(p: str) -> str:
    """Relative '/'-separated form of a path as stored in a feature store."""
    p = str(p).replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p


@dataclass
class FeatureStore:
    features: np.ndarray
    paths: np.ndarray
    flip_features: np.ndarray | None = None
    source: str = "<memory>"
    meta: dict = field(default_factory=dict)
    _index: dict | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.features = np.asarray(self.features)
        self.paths = np.asarray([normalize_rel_path(p) for p in self.paths], dtype=str)
        if self.flip_features is not None:
            self.flip_features = np.asarray(self.flip_features)
        validate(self)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {p: i for i, p in enumerate(self.paths.tolist())}
        return self._index

    def indices(self, paths: Iterable[str], what: str = "protocol") -> np.ndarray:
        """Row indices of `paths`; raises MissingDataError naming the first missing paths."""
        idx = self.index
        out, missing = [], []
        for p in paths:
            i = idx.get(normalize_rel_path(p))
            if i is None:
                missing.append(p)
            else:
                out.append(i)
        if missing:
            shown = ", ".join(missing[:5]) + (f" … ({len(missing)} in all)" if len(missing) > 5 else "")
            raise MissingDataError(f"{self.source}: {len(missing)} image(s) the {what} needs are not in the feature store: {shown}")
        return np.asarray(out, dtype=np.int64)

    def combined(self, flip: str = "add") -> np.ndarray:
        """Features for scoring: 'add' = features + flip_features (insightface), 'concat', or 'none'."""
        if flip == "none" or self.flip_features is None:
            if flip not in ("none", "add", "concat"):
                raise ValueError(f"unknown flip mode {flip!r}")
            return self.features.astype(np.float32, copy=False)
        if flip == "add":
            x = (self.features + self.flip_features).astype(np.float32, copy=False)
            check_rows(x, self.paths, self.source, "features + flip_features")
            return x
        if flip == "concat":
            return np.concatenate([self.features, self.flip_features], axis=1).astype(np.float32, copy=False)
        raise ValueError(f"unknown flip mode {flip!r} (expected add, concat or none)")


# the smallest largest-|value| of a row whose squared norm is a normal float32 (below it the norm underflows and
# the row would stay unnormalised or become zero)
TINY_ROW = float(np.sqrt(np.finfo(np.float32).tiny))


def check_rows(x: np.ndarray, paths: np.ndarray, source: str, what: str, row_ids: np.ndarray | None = None) -> None:
    """Rows about to be L2-normalised in float32 (e.g. features + flip_features): each must be finite, non-zero and
    large enough for its squared norm to be a normal float32; otherwise a FormatError naming the first bad row."""
    if not x.size:
        return
    peak = np.abs(x).max(axis=1).astype(np.float64)
    bad = ~np.isfinite(peak) | (peak < TINY_ROW)
    if bad.any():
        i = int(np.argmax(bad))
        kind = "non-finite" if not np.isfinite(peak[i]) else ("all zero" if peak[i] == 0 else
                                                              f"too small to normalise in float32 (|x| <= {peak[i]:.3g})")
        row = i if row_ids is None else int(row_ids[i])
        raise FormatError(f"{source}: {what} row for {paths[i]} (row {row}) is {kind} ({int(bad.sum())} such rows"
                          f"{'' if row_ids is None else ' in this block'}); it cannot be L2-normalised")


def check_flip_sum(store: FeatureStore, rows: np.ndarray | None = None, chunk: int = 65536) -> None:
    """`check_rows` on features + flip_features (the insightface 'add' mode), over `rows` (default all) in chunks,
    for protocols that add the two passes themselves (IJB): flip_features = −features would give zero rows."""
    if store.flip_features is None:
        return
    rows = np.arange(len(store)) if rows is None else np.asarray(rows)
    for s in range(0, rows.size, chunk):
        r = rows[s:s + chunk]
        x = (store.features[r] + store.flip_features[r]).astype(np.float32, copy=False)
        check_rows(x, store.paths[r], store.source, "features + flip_features", row_ids=r)


def validate(store: FeatureStore) -> None:
    src = store.source
    f = store.features
    if f.ndim != 2:
        raise FormatError(f"{src}: 'features' must be 2-D (N×D), got shape {f.shape}")
    n = f.shape[0]
    if store.paths.ndim != 1 or len(store.paths) != n:
        raise FormatError(f"{src}: {len(store.paths)} paths for {n} feature rows; they must match one to one")
    if not np.issubdtype(f.dtype, np.floating):
        raise FormatError(f"{src}: 'features' must be floating point, got {f.dtype}")
    if store.flip_features is not None and store.flip_features.shape != f.shape:
        raise FormatError(f"{src}: 'flip_features' has shape {store.flip_features.shape}, 'features' {f.shape}")
    if n:
        absolute = np.char.startswith(store.paths, "/") | (np.char.find(np.char.ljust(store.paths, 3).astype("<U3"), ":") >= 0)
        if absolute.any():
            i = int(np.argmax(absolute))
            raise FormatError(f"{src}: path {str(store.paths[i])!r} (row {i}) is absolute ({int(absolute.sum())} such "
                              f"rows); store paths relative to the dataset root")
        empty = np.char.str_len(store.paths) == 0
        if empty.any():
            raise FormatError(f"{src}: row {int(np.argmax(empty))} has an empty path")
    uniq, counts = np.unique(store.paths, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1]
        raise FormatError(f"{src}: duplicate path(s) in the feature store: {', '.join(dup[:5].tolist())}")
    for name, arr in (("features", f), ("flip_features", store.flip_features)):
        if arr is None:
            continue
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            raise FormatError(f"{src}: non-finite (NaN/inf) {name} row for {store.paths[np.argmax(bad)]} ({int(bad.sum())} such rows)")
        zero = ~(arr != 0).any(axis=1)
        if zero.any():
            raise FormatError(f"{src}: all-zero {name} row for {store.paths[np.argmax(zero)]} ({int(zero.sum())} such rows)")
        if arr.size:
            # protocols add the flipped pass and normalise in float32: a row whose squared norm (or sum with its
            # flip) overflows float32 would silently become a zero vector, so such magnitudes are refused
            limit = np.float64(np.sqrt(np.finfo(np.float32).max / (4.0 * arr.shape[1])))
            peak = np.maximum(arr.max(axis=1), -arr.min(axis=1)).astype(np.float64)
            big = peak > limit
            small = peak < TINY_ROW
            if small.any():
                i = int(np.argmax(small))
                raise FormatError(f"{src}: {name} row for {store.paths[i]} (row {i}) has values of magnitude at most "
                                  f"{peak[i]:.3g}: its squared norm underflows float32 (limit {TINY_ROW:.3g}), so it "
                                  f"cannot be L2-normalised ({int(small.sum())} such rows)")
            if big.any():
                i = int(np.argmax(big))
                raise FormatError(f"{src}: {name} row for {store.paths[i]} has values of magnitude "
                                  f"{float(np.abs(arr[i]).max()):.3g}, too large for float32 arithmetic (limit "
                                  f"{limit:.3g} at {arr.shape[1]} dims; {int(big.sum())} such rows)")


def load_feature_store(path: str | os.PathLike) -> FeatureStore:
    """Load and validate a feature store `.npz`."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: feature store not found")
    # every member's header is checked before any array is allocated (`io.npz_file`): no object arrays, sizes
    # as declared, compressed members bounded; besides the arrays only metadata strings are accepted
    arrays, meta = read_npz(path, "feature store", ("features", "paths", "flip_features"),
                            optional=("flip_features",), metadata=True)
    return FeatureStore(features=arrays["features"], paths=arrays["paths"], flip_features=arrays.get("flip_features"),
                        source=str(path), meta=meta)


def save_feature_store(
    path: str | os.PathLike,
    features: np.ndarray,
    paths: Sequence[str],
    flip_features: np.ndarray | None = None,
    **meta: str,
) -> Path:
    """Validate and write a feature store atomically; extra keyword arrays/strings are stored as metadata."""
    store = FeatureStore(features=np.asarray(features, dtype=np.float32), paths=np.asarray(paths, dtype=str),
                         flip_features=None if flip_features is None else np.asarray(flip_features, dtype=np.float32),
                         source=str(path))
    arrays: dict[str, Any] = {"features": store.features, "paths": store.paths}  # Any: savez's stubs type **kwds as its flags
    if store.flip_features is not None:
        arrays["flip_features"] = store.flip_features
    for k, v in meta.items():
        arrays[k] = np.asarray(v)
    with atomic_path(path, clean_stale=True) as tmp, open(tmp, "wb") as fh:  # a file object: np.savez would append .npz to a name
        np.savez(fh, **arrays)
    return Path(path)
