"""IJB-B / IJB-C meta files (as distributed with insightface's IJB evaluation package).

* `<set>_face_tid_mid.txt`: one line per image, `image template_id media_id` (space separated).
* `<set>_template_pair_label.txt`: one line per pair, `template1 template2 label` (label 1 = same).
* `<set>_name_5pts_score.txt`: one line per image, `image x1 y1 … x5 y5 faceness` (12 fields).
* `<set>_1N_gallery_G1.csv`, `<set>_1N_gallery_G2.csv`, `<set>_1N_probe_mixed.csv` (IJB-C; IJB-B uses
  `..._gallery_S1/S2.csv` and `..._probe_mixed.csv`): comma separated with a header line whose first two
  columns are TEMPLATE_ID, SUBJECT_ID; one row per image of the template.

`load_ijb_meta` / `load_ijb_meta_files` read the 1:1 set of them (`IJBMeta`) and check they agree.
Readers are numpy-only (no torch, no cv2) and strict: a line with the wrong number of fields or a non-integer id raises
FormatError naming the file and line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.utils.input_files import open_regular
from arface_repro.utils.textfile import MAX_LIST_BYTES, read_lines


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise MissingDataError(f"{path}: IJB meta file not found")

    return read_lines(path, "IJB meta file", MAX_LIST_BYTES)


def _split_fixed(path: Path, n_fields: int, sep: str | None = None, skip: int = 0) -> list[tuple[int, list[str]]]:
    rows = []
    for ln, line in enumerate(_lines(path)[skip:], start=1 + skip):
        if not line.strip():
            continue
        f = line.split(sep) if sep else line.split()
        f = [x.strip() for x in f]
        if (len(f) < n_fields) if sep else (len(f) != n_fields):
            raise FormatError(f"{path}:{ln}: expected {n_fields} fields, got {len(f)}: {line[:80]!r}")
        rows.append((ln, f))
    if not rows:
        raise FormatError(f"{path}: no records")
    return rows


def _ints(path: Path, rows, cols) -> np.ndarray:
    out = np.empty((len(rows), len(cols)), np.int64)
    for i, (ln, f) in enumerate(rows):
        for j, c in enumerate(cols):
            try:
                v = int(f[c])
                if not -2**63 <= v < 2**63:
                    raise ValueError
                out[i, j] = v
            except ValueError:
                raise FormatError(f"{path}:{ln}: field {c + 1} should be an integer (64-bit), got {f[c]!r}") from None
    return out


@dataclass
class FaceTidMid:
    images: np.ndarray     # (N,) str, image file names as in the meta file (e.g. '1.jpg')
    templates: np.ndarray  # (N,) int64
    medias: np.ndarray     # (N,) int64


def read_face_tid_mid(path: str | os.PathLike) -> FaceTidMid:
    path = Path(path)
    rows = _split_fixed(path, 3)
    ids = _ints(path, rows, (1, 2))
    seen: dict[str, int] = {}
    for ln, f in rows:
        if f[0] in seen:
            raise FormatError(f"{path}:{ln}: repeats image {f[0]!r} of line {seen[f[0]]}; each row is one face crop of "
                              f"the protocol (a repeat would weigh that face twice in its template)")
        seen[f[0]] = ln
    return FaceTidMid(np.array([f[0] for _, f in rows]), ids[:, 0], ids[:, 1])


def read_template_pairs(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t1, t2, label) arrays (int32 ids when they fit, int8 labels); labels must be 0 or 1."""
    path = Path(path)
    # fast path: np.loadtxt handles 15M lines in a few seconds; fall back to the strict reader on error.
    # The file is opened as `read_lines` would (a regular file, size capped) so a FIFO never blocks it.
    try:
        with open_regular(path, "IJB meta file", MAX_LIST_BYTES) as fh:
            arr = np.loadtxt(fh, dtype=np.int64, ndmin=2)
        if arr.shape[1] != 3:
            raise ValueError
    except (ValueError, IndexError, OverflowError):
        if not path.is_file():
            raise MissingDataError(f"{path}: IJB meta file not found") from None
        rows = _split_fixed(path, 3)
        arr = _ints(path, rows, (0, 1, 2))
    if arr.size == 0:
        raise FormatError(f"{path}: no pairs")
    bad = np.flatnonzero((arr[:, 2] != 0) & (arr[:, 2] != 1))
    if bad.size:
        raise FormatError(f"{path}: line {bad[0] + 1}: label must be 0 or 1, got {arr[bad[0], 2]}")
    _check_unique_pairs(path, arr[:, 0], arr[:, 1])
    # compact dtypes: 15M pairs take 135 MB instead of 375 MB
    tdtype = np.int32 if np.abs(arr[:, :2]).max() < 2**31 else np.int64
    return arr[:, 0].astype(tdtype), arr[:, 1].astype(tdtype), arr[:, 2].astype(np.int8)


def _check_unique_pairs(path: Path, t1: np.ndarray, t2: np.ndarray) -> None:
    """Each line of the 1:1 protocol is one comparison of two different templates: a template paired with itself,
    or a pair listed twice (in either order; the score is symmetric), is refused naming the line, since it would
    count twice (or as a certain match) in TAR and FAR. The reference evaluation scores every line as given."""
    self_pair = np.flatnonzero(t1 == t2)
    if self_pair.size:
        i = int(self_pair[0])
        raise FormatError(f"{path}: line {i + 1}: template {t1[i]} is paired with itself; a 1:1 pair compares two "
                          f"different templates")
    lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
    if lo.min() >= -2**31 and hi.max() < 2**31:
        key = (lo.astype(np.int64) << 32) + (hi.astype(np.int64) + 2**31)  # one int64 per unordered pair
    else:
        key = np.unique(np.stack([lo, hi], axis=1), axis=0, return_inverse=True)[1].ravel()
    order = np.argsort(key, kind="stable")
    rep = np.flatnonzero(key[order[1:]] == key[order[:-1]])
    if rep.size:
        first, again = sorted((int(order[rep[0]]), int(order[rep[0] + 1])))
        raise FormatError(f"{path}: line {again + 1}: repeats the template pair ({t1[again]}, {t2[again]}) of line "
                          f"{first + 1}; each pair is one comparison of the protocol (a repeat counts twice in TAR and FAR)")


@dataclass
class FivePoints:
    images: np.ndarray     # (N,) str
    landmarks: np.ndarray  # (N, 5, 2) float32, x/y in the loose crop
    faceness: np.ndarray   # (N,) float32


def read_name_5pts_score(path: str | os.PathLike) -> FivePoints:
    path = Path(path)
    rows = _split_fixed(path, 12)
    vals = np.empty((len(rows), 11), np.float32)
    for i, (ln, f) in enumerate(rows):
        try:
            vals[i] = [float(x) for x in f[1:]]
        except ValueError:
            raise FormatError(f"{path}:{ln}: landmarks and faceness must be numbers: {' '.join(f)[:80]!r}") from None
        if not np.isfinite(vals[i]).all():
            raise FormatError(f"{path}:{ln}: landmarks and faceness must be finite numbers: {' '.join(f)[:80]!r}")
    return FivePoints(np.array([f[0] for _, f in rows]), vals[:, :10].reshape(-1, 5, 2), vals[:, 10].copy())


def read_1n_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(template_ids, subject_ids), one entry per template (rows of a template must agree on the subject)."""
    path = Path(path)
    lines = _lines(path)
    if not lines:
        raise FormatError(f"{path}: empty file")
    header = [h.strip().upper() for h in lines[0].split(",")]
    if len(header) < 2 or header[0] != "TEMPLATE_ID" or header[1] != "SUBJECT_ID":
        raise FormatError(f"{path}:1: expected a header starting TEMPLATE_ID,SUBJECT_ID; got {lines[0][:80]!r}")
    rows = _split_fixed(path, 2, sep=",", skip=1)
    ids = _ints(path, rows, (0, 1))
    tids, first = np.unique(ids[:, 0], return_index=True)
    subj = ids[first, 1]
    # every row of a template must name the same subject
    pos = np.searchsorted(tids, ids[:, 0])
    bad = np.flatnonzero(subj[pos] != ids[:, 1])
    if bad.size:
        ln = rows[bad[0]][0]
        raise FormatError(f"{path}:{ln}: template {ids[bad[0], 0]} has rows with different subjects "
                          f"({subj[pos[bad[0]]]} and {ids[bad[0], 1]})")
    return tids, subj


def find_meta(meta_dir: str | os.PathLike, dataset: str, suffix: str) -> Path:
    """`<meta_dir>/<dataset>_<suffix>` (dataset 'ijbb' / 'ijbc'; lower or upper case accepted)."""
    meta_dir = Path(meta_dir)
    for name in (f"{dataset.lower()}_{suffix}", f"{dataset.upper()}_{suffix}"):
        if (meta_dir / name).is_file():
            return meta_dir / name
    raise MissingDataError(f"{meta_dir}: no {dataset.lower()}_{suffix} (IJB meta file)")


@dataclass
class IJBMeta:
    images: np.ndarray
    templates: np.ndarray
    medias: np.ndarray
    faceness: np.ndarray | None
    landmarks: np.ndarray | None
    t1: np.ndarray
    t2: np.ndarray
    labels: np.ndarray
    files: dict


def load_ijb_meta(meta_dir: str | os.PathLike, dataset: str, need_pairs: bool = True) -> IJBMeta:
    """Read `<dataset>_face_tid_mid.txt`, `_name_5pts_score.txt` (when present) and (optionally)
    `_template_pair_label.txt` from a meta folder; check they agree."""

    f_tm = find_meta(meta_dir, dataset, "face_tid_mid.txt")
    try:
        f_5 = find_meta(meta_dir, dataset, "name_5pts_score.txt")
    except MissingDataError:
        f_5 = None
    f_p = find_meta(meta_dir, dataset, "template_pair_label.txt") if need_pairs else None
    return load_ijb_meta_files(f_tm, f_5, f_p)


def load_ijb_meta_files(face_tid_mid: str | os.PathLike, name_5pts_score: str | os.PathLike | None = None,
                        template_pair_label: str | os.PathLike | None = None) -> IJBMeta:
    """The meta files by path (the 5-point file and the pair list are optional); check they agree."""

    tm = read_face_tid_mid(face_tid_mid)
    files = {"face_tid_mid": str(face_tid_mid)}
    faceness = landmarks = None
    if name_5pts_score is not None:
        fp = read_name_5pts_score(name_5pts_score)
        if fp.images.size != tm.images.size or not np.array_equal(fp.images, tm.images):
            mism = np.flatnonzero(fp.images[: tm.images.size] != tm.images[: fp.images.size])
            where = f"line {mism[0] + 1}" if mism.size else "length"
            raise FormatError(f"{name_5pts_score}: image list differs from {face_tid_mid} ({where}); "
                              "both must list the same images in order")
        faceness, landmarks = fp.faceness, fp.landmarks
        files["name_5pts_score"] = str(name_5pts_score)
    t1 = t2 = labels = np.empty(0, np.int64)
    if template_pair_label is not None:
        t1, t2, labels = read_template_pairs(template_pair_label)
        files["template_pair_label"] = str(template_pair_label)
    return IJBMeta(tm.images, tm.templates, tm.medias, faceness, landmarks, t1, t2, labels, files)
