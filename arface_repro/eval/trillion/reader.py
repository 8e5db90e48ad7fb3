"""Trillion-Pairs (DeepGlint) feature matrices and label lists: the family's file reader, numpy only (no torch, no cv2).

Feature file: int32 ×4 header `(rows, cols, cols*4, 5)` — rows, columns, bytes per row, OpenCV type 5 =
CV_32F — then the row-major float32 matrix (little-endian); rows are L2-normalised features. The reader
checks every header field and the file size, and returns a read-only memory map so a 1.58M × 512
matrix is paged in chunk by chunk instead of loaded.

Label list (this package's plain format for the probe identities): one line per probe row, either
`identity` or `image_path identity` (whitespace separated); the identity is the last field.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.io.feature_store import TINY_ROW
from arface_repro.utils.atomic import atomic_open
from arface_repro.utils.textfile import MAX_LIST_BYTES, read_lines

CV_32F = 5
HEADER = struct.Struct("<4i")


def read_header(path: str | os.PathLike) -> tuple[int, int]:
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: Trillion-Pairs feature file not found")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        raw = fh.read(HEADER.size)
    if len(raw) < HEADER.size:
        raise FormatError(f"{path}: {size} bytes; a Trillion-Pairs feature file starts with a 16-byte header")
    rows, cols, stride, typ = HEADER.unpack(raw)
    if rows < 0 or cols <= 0 or stride != cols * 4 or typ != CV_32F:
        raise FormatError(f"{path}: header (rows, cols, row_bytes, type) = {(rows, cols, stride, typ)}; "
                          f"expected (rows, cols, cols*4, {CV_32F})")
    if size != HEADER.size + rows * cols * 4:
        raise FormatError(f"{path}: {size} bytes; header {rows}×{cols} float32 needs {HEADER.size + rows * cols * 4}")
    return rows, cols


def read_features(path: str | os.PathLike, mmap: bool = True, check: bool = True) -> np.ndarray:
    """The feature matrix (rows × cols float32), memory-mapped read-only by default. With `check` (default), every
    row is checked to be finite and not all zero (one pass over the file, in chunks)."""
    rows, cols = read_header(path)
    if mmap:
        out = np.memmap(path, dtype="<f4", mode="r", offset=HEADER.size, shape=(rows, cols)) if rows else \
            np.zeros((0, cols), "<f4")
    else:
        with open(path, "rb") as fh:
            fh.seek(HEADER.size)
            out = np.fromfile(fh, dtype="<f4", count=rows * cols).reshape(rows, cols)
    if check:
        check_rows(out, path)
    return out


def check_rows(matrix: np.ndarray, path, chunk_rows: int = 65536) -> None:
    """FormatError naming the first row that is not finite or is all zero (a silent NaN would rank nowhere)."""
    for s in range(0, matrix.shape[0], chunk_rows):
        block = np.asarray(matrix[s:s + chunk_rows])
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            raise FormatError(f"{path}: row {s + int(np.argmax(bad))} has NaN or inf values")
        zero = ~(block != 0).any(axis=1)
        if zero.any():
            raise FormatError(f"{path}: row {s + int(np.argmax(zero))} is all zero")
        small = np.abs(block).max(axis=1) < TINY_ROW  # squared norm underflows float32: it would stay unnormalised
        if small.any():
            i = int(np.argmax(small))
            raise FormatError(f"{path}: row {s + i} is too small to normalise in float32 (largest |value| "
                              f"{float(np.abs(block[i]).max()):.3g} < {TINY_ROW:.3g})")


def write_features(path: str | os.PathLike, features: np.ndarray, chunk_rows: int = 65536) -> Path:
    """Write a matrix in the Trillion-Pairs format (atomically; rows written in chunks)."""
    rows, cols = features.shape
    with atomic_open(path, "wb") as fh:
        fh.write(HEADER.pack(rows, cols, cols * 4, CV_32F))
        for s in range(0, rows, chunk_rows):
            fh.write(np.ascontiguousarray(features[s:s + chunk_rows], dtype="<f4").tobytes())
    return Path(path)


def read_labels(path: str | os.PathLike, expected_rows: int | None = None) -> np.ndarray:
    """Identity per probe row (strings) from a label list."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: label list not found")
    out = []

    for ln, line in enumerate(read_lines(path, "label list", MAX_LIST_BYTES), start=1):
        f = line.split()
        if not f:
            continue
        if len(f) > 2:
            raise FormatError(f"{path}:{ln}: expected 'identity' or 'image identity', got {line[:80]!r}")
        out.append(f[-1])
    if expected_rows is not None and len(out) != expected_rows:
        raise FormatError(f"{path}: {len(out)} labels for {expected_rows} feature rows")
    return np.asarray(out)
