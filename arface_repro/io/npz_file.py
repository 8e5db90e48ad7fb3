"""Reading `.npz` archives with every member's size known and bounded before an array is allocated.

`np.load` trusts each member's `.npy` header: a 3 MB archive of deflated zeros may declare, and expand to,
gigabytes, and a member whose header declares a huge shape makes numpy allocate it before reading. `read_npz`
opens the archive (a regular file), and before reading any array it reads every wanted member's header and
checks it:

- the dtype holds no Python objects (object arrays would be unpickled; they are refused);
- the declared shape × item size plus the header is exactly the member's uncompressed size in the zip
  directory (zipfile never reads past that size, so what is read is what was declared);
- a compressed member expands at most MAX_RATIO× its compressed size (or to MIN_EXPANDED bytes), so a
  small archive cannot become a large one;
- `max_bytes`, when given, bounds the declared size of each member.

Only the members the caller names are read (`want`). With `metadata=True` (feature stores) any other member
must be a single string of at most MAX_META_BYTES (what `save_feature_store` writes for its keyword metadata)
and is read as such; without it, any other member is a FormatError, as is any failed check, naming the
archive and the member.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from arface_repro.errors import FormatError
from arface_repro.utils.input_files import MiB, open_regular

MAX_RATIO = 32             # deflated float features compress ~1.1×; zeros ~1000×
MIN_EXPANDED = 256 * MiB   # any member may expand to this much, whatever its compressed size
MAX_META_BYTES = 1 << 16   # one metadata string (a model spec, a hash, a path)


def _header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, src: str):
    """(shape, dtype, header bytes) of one member's .npy header."""
    from numpy.lib import format as npformat

    name = info.filename[:-4]
    with zf.open(info) as fh:
        try:
            version = npformat.read_magic(fh)
            read = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
            shape, _fortran, dtype = read(fh, max_header_size=10000)
        except Exception as exc:  # noqa: BLE001 - a foreign or corrupt member: ValueError, EOFError, zlib errors
            raise FormatError(f"{src}: member {name!r} is not a .npy array ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:160]})") from None
        return shape, dtype, fh.tell()


def check_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, src: str, max_bytes: int | None,
                 meta: bool = False) -> None:
    name = info.filename[:-4]
    shape, dtype, header = _header(zf, info, src)
    if meta and (tuple(shape) != () or dtype.kind not in "US" or dtype.itemsize > MAX_META_BYTES):
        raise FormatError(f"{src}: unexpected member {name!r} (shape {tuple(shape)}, {dtype}); besides its arrays "
                          f"a feature store holds only metadata strings of at most {MAX_META_BYTES} bytes")
    if dtype.hasobject:
        raise FormatError(f"{src}: not a readable .npz: it holds object (pickled) arrays, which are never loaded "
                          f"(member {name!r}, dtype {dtype})")
    count = 1
    for d in shape:
        count *= int(d)
    declared = count * dtype.itemsize
    if header + declared != info.file_size:
        raise FormatError(f"{src}: member {name!r} declares shape {tuple(shape)} of {dtype} ({declared} bytes) "
                          f"but holds {max(info.file_size - header, 0)} bytes")
    if max_bytes is not None and declared > max_bytes:
        raise FormatError(f"{src}: member {name!r} declares shape {tuple(shape)} of {dtype} ({declared / MiB:.1f} "
                          f"MiB); at most {max_bytes / MiB:.0f} MiB is read")
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > max(MIN_EXPANDED, MAX_RATIO * info.compress_size):
        raise FormatError(f"{src}: member {name!r} is {info.compress_size} bytes compressed and would expand to "
                          f"{info.file_size} bytes (more than {MAX_RATIO}× or {MIN_EXPANDED // MiB} MiB)")


def read_npz(path: str | os.PathLike, what: str, want, optional=(), metadata: bool = False,
             max_bytes: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({name: array} for the members in `want` that are present (those not in `optional` must be),
    {name: string} of the other members when `metadata`), every member checked first (module docstring).
    `want=None` reads every member as an array."""
    from numpy.lib import format as npformat

    src = str(path)
    with open_regular(path, what) as raw:
        head = raw.read(128)
        raw.seek(0)
        if head.startswith(b"MATLAB") or head.startswith(b"\x89HDF"):
            raise FormatError(f"{src}: a MATLAB .mat file, not an .npz {what}; an .npz is written by numpy.savez")
        if head and not head.startswith(b"PK"):
            raise FormatError(f"{src}: not a readable .npz {what}: not a zip archive (numpy would read it as a "
                              f"pickle, which is never loaded)")
        try:
            zf = zipfile.ZipFile(raw)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise FormatError(f"{src}: not a readable .npz {what} ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:200]})") from None
        with zf:
            members = {}
            for info in zf.infolist():
                if not info.filename.endswith(".npy") or info.filename.count("/"):
                    raise FormatError(f"{src}: member {info.filename!r} is not a .npy array of an .npz {what}")
                if info.filename[:-4] in members:  # zipfile would read the last one silently
                    raise FormatError(f"{src}: member {info.filename!r} is stored twice in the {what}")
                members[info.filename[:-4]] = info
            names = list(members) if want is None else list(want)
            extra = sorted(set(members) - set(names))
            if extra and not metadata:
                raise FormatError(f"{src}: unexpected member(s) {extra[:5]} in the {what}; it holds "
                                  f"{', '.join(names)}")
            for name in names:
                if name not in members and name not in optional:
                    need = " and ".join(repr(n) for n in names if n not in optional)
                    raise FormatError(f"{src}: a {what} needs arrays {need}; found {sorted(members)}")
            for name in names:
                if name in members:
                    check_member(zf, members[name], src, max_bytes)
            for name in extra:
                check_member(zf, members[name], src, max_bytes, meta=True)
            out, meta = {}, {}
            for name in names + extra:
                if name not in members:
                    continue
                try:
                    with zf.open(members[name]) as fh:
                        arr = npformat.read_array(fh, allow_pickle=False)
                except Exception as exc:  # noqa: BLE001 - truncated data, bad CRC, zlib errors
                    raise FormatError(f"{src}: member {name!r} of the {what} cannot be read ({type(exc).__name__}: "
                                      f"{' '.join(str(exc).split())[:200]})") from None
                if name in extra:
                    meta[name] = str(arr[()].decode("utf-8", "replace") if isinstance(arr[()], bytes) else arr[()])
                else:
                    out[name] = arr
            return out, meta


__all__ = ["read_npz", "check_member"]
