"""Image lists for embedding extraction: scan a dataset root, or read a list file (numpy-free, torch-free)."""

from __future__ import annotations

import os
from pathlib import Path

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.utils.textfile import read_text

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


def list_images(data_root: str | os.PathLike, exts: tuple[str, ...] = IMAGE_EXTS) -> list[str]:
    """Sorted '/'-separated paths, relative to `data_root`, of every image file below it."""
    root = Path(data_root)
    if not root.is_dir():
        raise MissingDataError(f"{root}: data root is not a directory")
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root)
        for f in filenames:
            if f.lower().endswith(exts) and not f.startswith("."):
                out.append((rel / f).as_posix())
    return sorted(out)


def outside_root(p: str) -> str | None:
    """Why the '/'-path `p` would leave the data root it is relative to (None when it stays inside)."""
    if p.startswith("/") or p.startswith("\\") or (len(p) > 1 and p[1] == ":"):
        return "is absolute"
    if ".." in p.split("/"):
        return "has a '..' component"
    if "\x00" in p:
        return "contains a NUL byte"
    return None


def check_inside_root(paths, where: str) -> None:
    """FormatError naming the first path (relative to a data root) that is absolute or has a '..' component."""
    for p in paths:
        why = outside_root(str(p).replace("\\", "/"))
        if why:
            raise FormatError(f"{where}: image path {str(p)!r} {why}; paths must stay inside the data root")


def read_image_list(path: str | os.PathLike) -> list[str]:
    """Relative image paths from a text file, one per line; blank lines and '#' comments are skipped.

    Extra whitespace-separated fields after the path (e.g. a label) are ignored. Absolute paths, paths with a
    '..' component (they would leave the data root) and duplicates are errors naming the line.
    """

    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: image list not found")
    out, seen = [], {}
    for lineno, line in enumerate(read_text(path, "image list").splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        p = s.split()[0].replace("\\", "/")
        why = outside_root(p)
        if why:
            raise FormatError(f"{path}:{lineno}: {p!r} {why}; list paths relative to the data root, inside it")
        if p in seen:
            raise FormatError(f"{path}:{lineno}: {p!r} repeats line {seen[p]}")
        seen[p] = lineno
        out.append(p)
    if not out:
        raise FormatError(f"{path}: the image list is empty")
    return out
