"""Reading the package's text inputs (lists, pair files, meta files, records): UTF-8, errors that name the line.

`read_text(path, what)` returns the decoded text; bytes that are not UTF-8 are a FormatError naming the file,
the line and the byte offset (instead of a UnicodeDecodeError traceback); a missing file is a MissingDataError
and a folder or unreadable file a FormatError.

Bounds, checked before the bytes are read or parsed (`arface_repro.utils.input_files`): only regular files
(a FIFO, /dev/zero or a folder is refused at once, without blocking); at most `MAX_TEXT_BYTES` (64 MiB) unless
the caller passes its own cap (IJB-C meta and Trillion-Pairs labels: 1 GiB; MegaFace JSON lists: 256 MiB);
lines of at most `MAX_LINE_BYTES` (1 MiB) unless the format is JSON (a record or list written on one line).
YAML files are capped at `MAX_YAML_BYTES` and parsed with bounded nesting and alias expansion
(`utils.yaml_limits`).

One YAML reader for every YAML the package reads (training configs and their `key=value` overrides, protocol
specs, model presets, the paper manifest, DATA.yaml, paper tables): `parse_yaml` / `read_yaml`. It is PyYAML's
safe loader (plain scalars, lists and mappings only: nothing named in a file is constructed or run) plus YAML
1.2's float rule, so `lr: 1e-3` is the number 0.001 (plain YAML 1.1 reads it as the string "1e-3"); a quoted
"1e-3" stays a string.
"""

from __future__ import annotations

import os
import re

import numpy as np
import yaml

from arface_repro.errors import ArfaceError, FormatError
from arface_repro.utils.input_files import MiB, read_capped
from arface_repro.utils.yaml_limits import load_bounded

MAX_TEXT_BYTES = 64 * MiB      # pair lists, image lists, landmarks, configs, records
MAX_LIST_BYTES = 1024 * MiB    # protocol-scale lists the caller names (IJB-C meta, Trillion-Pairs labels)
MAX_LINE_BYTES = 1 * MiB       # one line of a line-oriented file
MAX_YAML_BYTES = 4 * MiB       # configs, presets, protocol specs, DATA.yaml, paper tables


def decode_utf8(data: bytes, path: str | os.PathLike, what: str = "text file") -> str:
    """`data` decoded as UTF-8 (a leading BOM dropped); FormatError naming the line of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FormatError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                          f"the {what} must be UTF-8") from None
    return text[1:] if text.startswith("\ufeff") else text


def read_bytes(path: str | os.PathLike, what: str = "file", max_bytes: int | None = MAX_TEXT_BYTES) -> bytes:
    """The bytes of a regular file of at most `max_bytes` (None: no cap); one-line errors otherwise."""
    return read_capped(path, what, max_bytes)


def check_line_lengths(data: bytes, path: str | os.PathLike, what: str, max_line: int = MAX_LINE_BYTES) -> None:
    """FormatError naming the first line longer than `max_line` bytes."""
    if len(data) <= max_line:
        return
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
    bounds = np.concatenate(([-1], ends, [len(data)]))
    lengths = np.diff(bounds) - 1
    long = np.flatnonzero(lengths > max_line)
    if long.size:
        raise FormatError(f"{path}:{long[0] + 1}: line of {lengths[long[0]]} bytes; a line of the {what} has at "
                          f"most {max_line} bytes")


def read_text(path: str | os.PathLike, what: str = "text file", max_bytes: int | None = MAX_TEXT_BYTES,
              max_line: int | None = MAX_LINE_BYTES) -> str:
    """The UTF-8 text of `path` (see module docstring); `max_line=None` for JSON written on one line."""
    data = read_bytes(path, what, max_bytes)
    if max_line is not None:
        check_line_lengths(data, path, what, max_line)
    return decode_utf8(data, path, what)


def read_lines(path: str | os.PathLike, what: str = "text file", max_bytes: int | None = MAX_TEXT_BYTES) -> list[str]:
    return read_text(path, what, max_bytes).splitlines()


class Yaml12Loader(yaml.SafeLoader):
    """yaml.SafeLoader that also reads YAML 1.2 floats without a dot (1e-3, 5E+4) as numbers."""


Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def parse_yaml(text: str, where: str, error: type[ArfaceError] = FormatError):
    """The document of YAML `text` (the reader of the module docstring) within the nesting and alias-expansion
    bounds of `utils.yaml_limits`; invalid YAML is an `error` "<where>: not valid YAML (...)" on one line."""
    try:
        return load_bounded(text, Yaml12Loader)
    except yaml.YAMLError as exc:
        raise error(f"{where}: not valid YAML ({' '.join(str(exc).split())[:300]})") from None


def read_yaml(path: str | os.PathLike, what: str = "YAML file", error: type[ArfaceError] = FormatError):
    """The document of a YAML file (`parse_yaml`), UTF-8 and size checked as `read_text`; invalid YAML is an
    `error` naming the file. Callers validate the structure."""
    return parse_yaml(read_text(path, what, MAX_YAML_BYTES), str(path), error)


def read_yaml_mapping(path: str | os.PathLike, what: str = "YAML file") -> dict:
    """`read_yaml` for a document whose top level must be a mapping."""
    data = read_yaml(path, what)
    if not isinstance(data, dict):
        raise FormatError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data
