"""MegaFace Challenge 1 devkit files: the family's file reader and writer, numpy only (no torch, no cv2).

* Feature file, one per image, named `<image path>_<algo>.bin` (e.g. `Aaron_Eckhart_136.png_r100.bin`):
  an OpenCV matrix as the devkit's `matio` writes it — int32 ×4 header `(rows, cols, elem_size, type)`
  = `(dim, 1, 4, 5)` (a dim×1 column; element size 4 bytes; type 5 = CV_32F), then `dim` float32 values,
  little-endian. The reader checks every header field and the file length.
* `facescrub_features_list.json`: `{"id": [identity per image], "path": [image path per image]}`.
* `megaface_features_list.json_<size>_<set>`: `{"path": [...]}` (distractor images of that size/set).
* Noise lists (`facescrub_noises.txt`, `megaface_noises.txt`): first line is a comment (`#...`), then one
  image per line (FaceScrub: the file name; MegaFace: the path below the distractor root).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.io.feature_store import TINY_ROW
from arface_repro.utils.atomic import atomic_open
from arface_repro.utils.input_files import read_capped
from arface_repro.utils.textfile import read_lines, read_text

CV_32F = 5
HEADER = struct.Struct("<4i")

MAX_MEGAFACE_LIST_BYTES = 256 << 20  # a JSON list of paths: the 1M-distractor list is ~55 MB
MAX_FEATURE_FILE_BYTES = 1 << 20     # one devkit feature (a 16-byte header and D float32 values)


def feature_file_name(image_path: str, algo: str) -> str:
    """`<image path>_<algo>.bin` (the devkit's file_ending is `_<algo>.bin`)."""
    return f"{image_path}_{algo}.bin"


def write_feature_file(path: str | os.PathLike, feature: np.ndarray) -> Path:
    v = np.asarray(feature, dtype="<f4").ravel()
    with atomic_open(path, "wb") as fh:
        fh.write(HEADER.pack(v.size, 1, 4, CV_32F))
        fh.write(v.tobytes())
    return Path(path)


def read_feature_file(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise MissingDataError(f"{path}: MegaFace feature file not found")
    raw = read_capped(path, "MegaFace feature file", MAX_FEATURE_FILE_BYTES)  # a regular file: a FIFO never blocks
    if len(raw) < HEADER.size:
        raise FormatError(f"{path}: {len(raw)} bytes; a devkit feature file starts with a 16-byte header")
    rows, cols, esize, typ = HEADER.unpack_from(raw)
    if cols != 1 or esize != 4 or typ != CV_32F or rows <= 0:
        raise FormatError(f"{path}: header (rows, cols, elem_size, type) = {(rows, cols, esize, typ)}; "
                          f"expected (dim, 1, 4, {CV_32F}) for a float32 column")
    if len(raw) != HEADER.size + 4 * rows:
        raise FormatError(f"{path}: {len(raw)} bytes; header says {rows} float32 values = {HEADER.size + 4 * rows} bytes")
    v = np.frombuffer(raw, dtype="<f4", offset=HEADER.size).astype(np.float32)
    if not np.isfinite(v).all():
        raise FormatError(f"{path}: the feature holds NaN or inf values")
    if float(np.abs(v).max()) < TINY_ROW:
        raise FormatError(f"{path}: the feature is {'all zero' if not v.any() else 'too small to normalise in float32'}")
    return v


def read_feature_files(root: str | os.PathLike, image_paths: Sequence[str], algo: str) -> np.ndarray:
    """N×D matrix of the feature files of `image_paths` under `root`; all must share one dimension."""
    root = Path(root)
    out = None
    for i, p in enumerate(image_paths):
        v = read_feature_file(root / feature_file_name(p, algo))
        if out is None:
            out = np.empty((len(image_paths), v.size), np.float32)
        elif v.size != out.shape[1]:
            raise FormatError(f"{root / feature_file_name(p, algo)}: dimension {v.size}, earlier files have {out.shape[1]}")
        out[i] = v
    if out is None:
        raise FormatError(f"{root}: empty image list")
    return out


def write_feature_files(root: str | os.PathLike, image_paths: Sequence[str], features: np.ndarray, algo: str) -> None:
    root = Path(root)
    for p, f in zip(image_paths, features):
        write_feature_file(root / feature_file_name(p, algo), f)


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise MissingDataError(f"{path}: MegaFace list not found")
    try:
        obj = json.loads(read_text(path, "MegaFace list", MAX_MEGAFACE_LIST_BYTES, max_line=None))
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("path"), list):
        raise FormatError(f"{path}: expected a JSON object with a 'path' list")
    for key in ("path", "id"):  # strings only: str() of a number, null or list would name a wrong image/identity
        entries = obj.get(key)
        if entries is None and key == "id":
            continue
        if not isinstance(entries, list):
            raise FormatError(f"{path}: '{key}' must be a list of strings, got a JSON {type(entries).__name__}")
        for k, e in enumerate(entries):
            if not isinstance(e, str) or not e:
                raise FormatError(f"{path}: '{key}' entry {k} must be a non-empty string, got {e!r}")
    return obj


def read_facescrub_list(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(identities, paths) from facescrub_features_list.json; identity = 'id' entry (or first path part)."""
    path = Path(path)
    obj = _load_json(path)
    paths = [str(p) for p in obj["path"]]
    ids = obj.get("id")
    if ids is None:
        ids = [p.replace("\\", "/").split("/")[0] for p in paths]
    if len(ids) != len(paths):
        raise FormatError(f"{path}: {len(ids)} ids for {len(paths)} paths")
    _check_unique(path, paths, "probe image", "the devkit scores each FaceScrub probe once; a repeat would add its "
                                              "pairs again to the CMC")
    return [str(i) for i in ids], paths


def read_megaface_list(path: str | os.PathLike) -> list[str]:
    path = Path(path)
    paths = [str(p) for p in _load_json(path)["path"]]
    _check_unique(path, paths, "distractor image", "each distractor counts once in a set; a repeat would rank "
                                                   "the same image twice above a probe")
    return paths


def _check_unique(path: Path, paths: Sequence[str], what: str, reason: str) -> None:
    """A path listed twice is refused naming both entries (0-based positions in the JSON 'path' list)."""
    seen: dict[str, int] = {}
    for k, p in enumerate(paths):
        key = p.replace("\\", "/")
        if key in seen:
            raise FormatError(f"{path}: 'path' entry {k} repeats {what} {p!r} (entry {seen[key]}); {reason}")
        seen[key] = k


def write_facescrub_list(path: str | os.PathLike, ids: Sequence[str], paths: Sequence[str]) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump({"id": list(ids), "path": list(paths)}, fh)


def write_megaface_list(path: str | os.PathLike, paths: Sequence[str]) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump({"path": list(paths)}, fh)


def read_noise_list(path: str | os.PathLike) -> list[str]:
    """Entries of a noise list (the first line must be a '#' comment; blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: noise list not found")

    lines = read_lines(path, "noise list")
    if not lines or not lines[0].startswith("#"):
        raise FormatError(f"{path}:1: a noise list starts with a '#' comment line")
    return [ln.strip() for ln in lines[1:] if ln.strip()]


def noise_mask(paths: Iterable[str], noises: Iterable[str], *, by_basename: bool) -> np.ndarray:
    """Boolean mask of `paths` listed in `noises` (FaceScrub lists give file names, MegaFace lists paths)."""
    noise = set(noises)
    key = (lambda p: p.replace("\\", "/").rsplit("/", 1)[-1]) if by_basename else (lambda p: p.replace("\\", "/"))
    return np.array([key(p) in noise for p in paths], dtype=bool)
