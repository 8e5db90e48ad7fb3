"""Reading the package's text inputs (lists, pair files, meta files, records): UTF-8, errors that name the line.

`read_text(path, what)` returns the decoded text; bytes that are not UTF-8 are a FormatError naming the file,
the line and the byte offset (instead of a UnicodeDecodeError traceback); a missing file is a MissingDataError
and a folder or unreadable file a FormatError.
"""

from __future__ import annotations

import os
from pathlib import Path

from arface_repro.errors import FormatError, MissingDataError


def decode_utf8(data: bytes, path: str | os.PathLike, what: str = "text file") -> str:
    """`data` decoded as UTF-8 (a leading BOM dropped); FormatError naming the line of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FormatError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                          f"the {what} must be UTF-8") from None
    return text[1:] if text.startswith("\ufeff") else text


def read_bytes(path: str | os.PathLike, what: str = "file") -> bytes:
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise MissingDataError(f"{p}: {what} not found") from None
    except IsADirectoryError:
        raise FormatError(f"{p}: is a folder; expected a {what}") from None
    except OSError as exc:
        raise FormatError(f"{p}: cannot read the {what} ({exc.strerror or type(exc).__name__})") from None


def read_text(path: str | os.PathLike, what: str = "text file") -> str:
    """The UTF-8 text of `path` (see module docstring)."""
    return decode_utf8(read_bytes(path, what), path, what)


def read_lines(path: str | os.PathLike, what: str = "text file") -> list[str]:
    return read_text(path, what).splitlines()


def read_yaml(path: str | os.PathLike, what: str = "YAML file"):
    """The document of a YAML file read with `yaml.safe_load` (plain data only: nothing in it is constructed or
    run), UTF-8 checked as `read_text`; invalid YAML is a FormatError naming the file. Callers validate the
    structure."""
    import yaml

    try:
        return yaml.safe_load(read_text(path, what))
    except yaml.YAMLError as exc:
        raise FormatError(f"{path}: not valid YAML ({' '.join(str(exc).split())[:300]})") from None


def read_yaml_mapping(path: str | os.PathLike, what: str = "YAML file") -> dict:
    """`read_yaml` for a document whose top level must be a mapping."""
    data = read_yaml(path, what)
    if not isinstance(data, dict):
        raise FormatError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data
