"""YouTube Faces `splits.txt`: the family's file reader, numpy only (no torch, no cv2).

Comma separated; an optional header line (`split number, pair number, first name, second name, is same` —
the copy in ../shared has none); fields 2 and 3 (0-based) are `Person/videoIdx`, the last field is same =
1 / 0, the first is the split (1..10) used as the fold. `check_splits` checks YTF's fold structure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.io.pairs import check_folds
from arface_repro.utils.textfile import read_lines


@dataclass
class YTFPairs:
    split: np.ndarray   # (P,) int, 1..10
    video1: list[str]
    video2: list[str]
    issame: np.ndarray  # (P,) bool
    source: str


def read_splits(path: str | os.PathLike) -> YTFPairs:
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: YTF splits file not found")
    split, v1, v2, same = [], [], [], []

    lines = read_lines(path, "YTF splits file")
    for ln, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        f = [x.strip() for x in line.split(",")]
        if ln == 1 and not f[0].isdigit():
            continue  # header line
        if len(f) < 5:
            raise FormatError(f"{path}:{ln}: expected 'split, pair, Person/video, Person/video, same' (5 fields), got {len(f)}")
        try:
            s, lab = int(f[0]), int(f[-1])
        except ValueError:
            raise FormatError(f"{path}:{ln}: split and same fields must be integers: {line[:80]!r}") from None
        if lab not in (0, 1):
            raise FormatError(f"{path}:{ln}: last field (same) must be 0 or 1, got {lab}")
        for v in (f[2], f[3]):
            parts = v.split("/")
            if len(parts) != 2 or any(p in ("", ".", "..") or "\\" in p for p in parts):
                raise FormatError(f"{path}:{ln}: video {v!r} is not 'Person/videoIdx'")
        if f[2] == f[3]:
            raise FormatError(f"{path}:{ln}: the pair names video {f[2]!r} twice; a pair compares two videos")
        split.append(s)
        v1.append(f[2])
        v2.append(f[3])
        same.append(bool(lab))
    if not split:
        raise FormatError(f"{path}: no pairs")
    return YTFPairs(np.asarray(split), v1, v2, np.asarray(same), str(path))


def check_splits(pairs: YTFPairs) -> None:
    """YTF's fold structure: splits 1..10, each with as many same as different pairs and all of one size (500)."""

    check_folds(pairs.split, pairs.issame, pairs.source, "ytf (folds = the split field)", range(1, 11),
                balanced=True, equal_sizes=True)
