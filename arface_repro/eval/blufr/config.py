"""The BLUFR protocol configuration (`blufr_lfw_config.mat`, Liao et al. 2014), read with scipy.io.

BLUFR's file reader: numpy (and scipy.io for the `.mat` container, imported when a file is read); no torch,
no cv2.

Indices in the file are 1-based MATLAB indices into `imageList`; they are returned 0-based.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.utils.input_files import read_capped

REQUIRED = ("imageList", "labels", "testIndex", "galIndex", "probIndex")
READ = REQUIRED + ("trainIndex",)   # the variables read (trainIndex optional: the LFW-scale training split); not devTrainIndex, devTestIndex


@dataclass
class BlufrConfig:
    image_list: list[str]          # bare file names in the file's order (Aaron_Eckhart_0001.jpg)
    labels: np.ndarray             # (N,) int class labels as stored (1-based)
    train_index: list[np.ndarray]  # per trial, 0-based
    test_index: list[np.ndarray]
    gal_index: list[np.ndarray]
    prob_index: list[np.ndarray]
    source: str

    @property
    def n_trials(self) -> int:
        return len(self.test_index)


def _integers(arr, where: str) -> np.ndarray:
    """A numeric MATLAB array as int64, refusing text, NaN/inf and non-integral values (never truncated)."""
    a = np.asarray(arr)
    if a.dtype == object or a.dtype.kind not in "iuf":
        raise FormatError(f"{where} must be numeric, got MATLAB {a.dtype.kind!r} data ({a.dtype})")
    a = a.ravel()
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            raise FormatError(f"{where} must hold integers, got {float(a[np.argmax(bad)])!r}")
    return a.astype(np.int64)


def _cell(cfg: dict, key: str, path: Path, n: int) -> list[np.ndarray]:
    cell = cfg.get(key)
    if cell is None:
        return []
    out = []
    for t, arr in enumerate(np.asarray(cell, dtype=object).ravel()):
        where = f"{path}: {key}{{{t + 1}}}"
        idx = _integers(arr, where)
        if idx.size and (idx.min() < 1 or idx.max() > n):
            raise FormatError(f"{where} has indices outside 1..{n}")
        if np.unique(idx).size != idx.size:
            raise FormatError(f"{where} repeats an image index (each image is in a set once)")
        out.append(idx - 1)
    return out


def _name(x, path: Path, k: int) -> str:
    a = np.asarray(x).ravel()
    if a.size != 1 or a.dtype.kind != "U" or not str(a[0]).strip():
        raise FormatError(f"{path}: imageList{{{k + 1}}} is not a file name (got {a.dtype} of {a.size} elements)")
    return str(a[0])


def _check_trial(c: BlufrConfig, t: int, path: Path) -> None:
    """Each trial has what EvalROC / OpenSetROC need: genuine and impostor test pairs, a gallery, genuine and
    impostor probes; gallery and probes are disjoint and together are the test set (so in the official config,
    checked for its 10 trials)."""
    test, gal, prob = c.test_index[t], c.gal_index[t], c.prob_index[t]
    where = f"{path}: trial {t + 1}"
    for name, idx in (("testIndex", test), ("galIndex", gal), ("probIndex", prob)):
        if idx.size == 0:
            raise FormatError(f"{where}: {name}{{{t + 1}}} is empty")
    _, counts = np.unique(c.labels[test], return_counts=True)
    if not (counts > 1).any():
        raise FormatError(f"{where}: the test set has no genuine pair (no class with two images)")
    if counts.size < 2:
        raise FormatError(f"{where}: the test set has no impostor pair (one class only)")
    mated = np.isin(c.labels[prob], c.labels[gal])
    if not mated.any():
        raise FormatError(f"{where}: no probe has a mate in the gallery (open-set DIR needs genuine probes)")
    if mated.all():
        raise FormatError(f"{where}: every probe has a mate in the gallery (open-set FAR needs impostor probes)")
    both = np.intersect1d(gal, prob)
    if both.size:
        raise FormatError(f"{where}: {both.size} image(s) are in both galIndex{{{t + 1}}} and probIndex{{{t + 1}}} (e.g. "
                          f"{c.image_list[both[0]]}); BLUFR's open-set test splits the test images into a gallery and "
                          f"disjoint probes (a shared image would be found by itself)")
    union = np.union1d(gal, prob)
    if union.size != test.size or not np.array_equal(union, np.sort(test)):
        extra = np.setdiff1d(test, union)
        lacking = np.setdiff1d(union, test)
        shown = (f"{extra.size} test image(s) in neither set, e.g. {c.image_list[extra[0]]}" if extra.size else
                 f"{lacking.size} gallery/probe image(s) not in the test set, e.g. {c.image_list[lacking[0]]}")
        raise FormatError(f"{where}: testIndex{{{t + 1}}} is not galIndex ∪ probIndex ({shown}); in BLUFR the "
                          f"verification and open-set tests of a trial use the same test images")


MAX_MAT_BYTES = 64 << 20        # the official config is 0.5 MB
MAX_MAT_EXPANDED = 256 << 20    # its compressed variables expand to 1.5 MB


def check_mat_expansion(data: bytes, path) -> None:
    """Refuse a MATLAB v5 file whose compressed variables expand past MAX_MAT_EXPANDED bytes in all, found by
    streaming each one through zlib and counting (nothing kept), before scipy decodes any variable."""
    import struct
    import zlib

    if len(data) < 128 or data[126:128] not in (b"IM", b"MI"):
        return  # not a v5 file: scipy's own error names it
    end = "<" if data[126:128] == b"IM" else ">"
    i, total = 128, 0
    while i + 8 <= len(data):
        typ, n = struct.unpack(end + "II", data[i:i + 8])
        if typ & 0xFFFF0000:  # a small data element (only inside variables): stop, scipy reports the layout
            return
        if typ == 15:  # miCOMPRESSED
            d = zlib.decompressobj()
            chunk = memoryview(data)[i + 8:i + 8 + n]
            try:
                for k in range(0, len(chunk), 1 << 16):
                    piece: memoryview | bytes = chunk[k:k + (1 << 16)]
                    while piece:
                        total += len(d.decompress(piece, 1 << 20))
                        if total > MAX_MAT_EXPANDED:
                            raise FormatError(f"{path}: compressed MATLAB variables expand to more than "
                                              f"{MAX_MAT_EXPANDED >> 20} MiB; a BLUFR config holds a few MB")
                        piece = d.unconsumed_tail
            except zlib.error:
                return  # a corrupt stream: scipy's own error names it
            i += 8 + n
        else:
            total += n
            i += 8 + n + (-n % 8)


def load_blufr_config(path: str | os.PathLike) -> BlufrConfig:
    """The BLUFR config: only the variables the protocol uses are decoded (REQUIRED, trainIndex), from a regular file of at
    most MAX_MAT_BYTES whose compressed variables expand to at most MAX_MAT_EXPANDED."""
    import io

    import scipy.io

    path = Path(path)
    if not path.exists():
        raise MissingDataError(f"{path}: BLUFR config not found")
    data = read_capped(path, "BLUFR config", MAX_MAT_BYTES)
    check_mat_expansion(data, path)
    try:
        cfg = scipy.io.loadmat(io.BytesIO(data), variable_names=list(READ))
    except Exception as exc:  # noqa: BLE001 - scipy raises several types for bad files
        raise FormatError(f"{path}: not a readable MATLAB .mat file ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:200]})") from None
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise FormatError(f"{path}: BLUFR config lacks variable(s) {', '.join(missing)}")
    names = [_name(x, path, k) for k, x in enumerate(np.asarray(cfg["imageList"], dtype=object).ravel())]
    if not names:
        raise FormatError(f"{path}: imageList is empty")
    seen: dict[str, int] = {}
    for k, nm in enumerate(names):
        if nm in seen:
            raise FormatError(f"{path}: imageList{{{k + 1}}} repeats {nm!r} (imageList{{{seen[nm] + 1}}})")
        seen[nm] = k
    labels = _integers(cfg["labels"], f"{path}: labels")
    n = len(names)
    if labels.size != n:
        raise FormatError(f"{path}: {labels.size} labels for {n} images")
    c = BlufrConfig(names, labels, _cell(cfg, "trainIndex", path, n), _cell(cfg, "testIndex", path, n),
                    _cell(cfg, "galIndex", path, n), _cell(cfg, "probIndex", path, n), str(path))
    if not (len(c.test_index) == len(c.gal_index) == len(c.prob_index)) or not c.test_index:
        raise FormatError(f"{path}: testIndex, galIndex and probIndex must have the same (non-zero) number of trials; "
                          f"found {len(c.test_index)}, {len(c.gal_index)} and {len(c.prob_index)}")
    for t in range(c.n_trials):
        _check_trial(c, t, path)
    return c


def match_image_list(image_list: list[str], store_paths: list[str], source: str = "feature store") -> np.ndarray:
    """Row index in `store_paths` for each bare name of `image_list`.

    A store path matches a name when it equals it or ends with '/' + name. A name matched by two store
    paths is ambiguous and an error; names not matched at all are reported (count and first few).
    """
    by_base: dict[str, int] = {}
    dup: set[str] = set()
    for i, p in enumerate(store_paths):
        base = p.rsplit("/", 1)[-1]
        if base in by_base:
            dup.add(base)
        by_base[base] = i
    out = np.empty(len(image_list), dtype=np.int64)
    missing: list[str] = []
    ambiguous: list[str] = []
    for k, name in enumerate(image_list):
        if name in dup:
            ambiguous.append(name)
            continue
        found = by_base.get(name)
        if found is None:
            missing.append(name)
        else:
            out[k] = found
    if ambiguous:
        raise FormatError(f"{source}: {len(ambiguous)} BLUFR image name(s) match several stored paths, e.g. {ambiguous[:3]}")
    if missing:
        raise MissingDataError(f"{source}: {len(missing)} of {len(image_list)} BLUFR images are missing, e.g. {', '.join(missing[:5])}")
    return out
