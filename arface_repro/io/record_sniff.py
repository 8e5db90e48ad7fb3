"""What a file given as a result record really is, when it is not JSON text: the first bytes say.

`load_record` reads records as UTF-8 JSON; a feature store, a scores sidecar or a MATLAB file given in its place
would be reported as "not UTF-8". `check_record_file` names the kind of file instead (one-line FormatError).
"""

from __future__ import annotations

import os
from pathlib import Path

from arface_repro.errors import FormatError

_MAGIC = (
    (b"PK\x03\x04", "a zip / .npz archive (a feature store or a scores sidecar)"),
    (b"\x93NUMPY", "a numpy .npy array"),
    (b"MATLAB", "a MATLAB .mat file"),
    (b"\x89HDF", "an HDF5 / MATLAB v7.3 file"),
    (b"\x89PNG", "a PNG image"),
    (b"%PDF", "a PDF document"),
    (b"\xff\xd8\xff", "a JPEG image"),
)


def check_record_file(path: str | os.PathLike) -> None:
    """FormatError when `path` starts like a known binary format rather than a JSON result record."""
    p = Path(path)
    if not p.is_file():
        return  # load_record names a missing file
    with open(p, "rb") as fh:
        head = fh.read(16)
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise FormatError(f"{p}: {what}, not a result record (a JSON file written by `arface evaluate`)")
