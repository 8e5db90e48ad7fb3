"""MXNet RecordIO (`.rec` / `.idx`) reader and writer in pure Python + numpy (no mxnet).

Format (dmlc-core RecordIO, as written by mxnet 1.9.1):
- each physical record: uint32 magic 0xCED7230A, uint32 `lrec` (cflag = upper 3 bits, length = lower 29
  bits), `length` data bytes, zero padding to a multiple of 4;
- a logical record whose data holds the magic word at a 4-byte-aligned offset is split there by the writer
  (cflag 1 = first part, 2 = middle, 3 = last; 0 = whole record); the reader joins the parts and puts the
  magic word back between them. The writer here splits exactly like the reference, so files are byte-identical;
- `.idx`: text lines `key\\toffset` (offset of the record's first physical part in the `.rec`);
- insightface/mxnet image records start with `IRHeader` = struct `<IfQQ` (flag, label, id, id2); when
  flag > 0, `flag` float32 labels follow the header and the header's label field is 0.

Readers memory-map the `.rec` lazily, once per process, so they can be pickled into DataLoader workers and
survive fork. Corrupt input raises `FormatError` naming the file and the offset, key or line.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import numbers
import os
import struct
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from arface_repro.errors import FormatError
from arface_repro.utils.atomic import atomic_path, atomic_paths
from arface_repro.utils.input_files import check_regular, open_regular

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
_LEN_MASK = (1 << 29) - 1
MAX_RECORD_BYTES = 1 << 29

IR_FORMAT = "<IfQQ"
IR_SIZE = struct.calcsize(IR_FORMAT)  # 24

IRHeader = namedtuple("IRHeader", ["flag", "label", "id", "id2"])
IRHeader.__doc__ = """Image record header: flag (number of labels, 0 = single label), label (float, or float32
array when flag > 0), id, id2 (uint64)."""


# --------------------------------------------------------------------------------------------- framing
def encode_record(data: bytes) -> bytes:
    """Frame one logical record as the reference writer does (split at aligned magic words, pad to 4)."""
    data = bytes(data)
    n = len(data)
    if n >= MAX_RECORD_BYTES:
        raise ValueError(f"RecordIO records must be shorter than 2^29 bytes, got {n}")
    out = bytearray()
    start = 0  # start of the part not yet written
    pos = data.find(MAGIC_BYTES)
    while pos != -1 and pos + 4 <= (n & ~3):
        if pos % 4 == 0:
            cflag = 1 if start == 0 else 2
            out += MAGIC_BYTES + struct.pack("<I", (cflag << 29) | (pos - start))
            out += data[start:pos]
            start = pos + 4
            pos = data.find(MAGIC_BYTES, start)
        else:
            pos = data.find(MAGIC_BYTES, pos + 1)
    cflag = 3 if start != 0 else 0
    out += MAGIC_BYTES + struct.pack("<I", (cflag << 29) | (n - start))
    out += data[start:]
    out += b"\0" * ((-n) % 4)
    return bytes(out)


def decode_record(buf, offset: int, path: str | os.PathLike = "<buffer>") -> tuple[bytes, int]:
    """Read the logical record starting at `offset` of `buf`; return (data, offset of the next record)."""
    size = len(buf)
    parts: list[bytes] = []
    pos = offset
    first = True
    while True:
        if pos + 8 > size:
            raise FormatError(
                f"{path}: truncated record header at offset {pos} (file has {size} bytes, need {pos + 8})"
            )
        magic, lrec = struct.unpack_from("<II", buf, pos)
        if magic != MAGIC:
            raise FormatError(f"{path}: bad magic 0x{magic:08X} at offset {pos} (expected 0x{MAGIC:08X})")
        cflag, length = lrec >> 29, lrec & _LEN_MASK
        if first and cflag not in (0, 1):
            raise FormatError(
                f"{path}: record at offset {pos} starts with continuation flag {cflag} (expected 0 or 1)"
            )
        if not first and cflag not in (2, 3):
            raise FormatError(
                f"{path}: split record part at offset {pos} has flag {cflag} (expected 2 or 3)"
            )
        end = pos + 8 + length
        padded = pos + 8 + ((length + 3) & ~3)
        if padded > size:
            raise FormatError(
                f"{path}: truncated record at offset {pos}: {length} data bytes declared, file ends at {size}"
            )
        parts.append(bytes(buf[pos + 8 : end]))
        pos = padded
        first = False
        if cflag in (0, 3):
            break
    return MAGIC_BYTES.join(parts), pos


# --------------------------------------------------------------------------------------------- headers
def pack(header: IRHeader | tuple, payload: bytes) -> bytes:
    """Prepend an IRHeader (and its float32 labels when the label is a sequence) to `payload`.

    Like mxnet's `recordio.pack`: a numeric label gives flag 0; an array label of size k gives flag k,
    header label 0 and the k float32 labels after the header (the flag passed in is ignored).
    """
    flag, label, id_, id2 = header
    if isinstance(label, numbers.Number) or (isinstance(label, np.ndarray) and label.ndim == 0):
        head = struct.pack(IR_FORMAT, 0, float(label), int(id_), int(id2))  # type: ignore[arg-type]  # a Number
        return head + bytes(payload)
    labels = np.asarray(label, dtype="<f4").ravel()
    head = struct.pack(IR_FORMAT, labels.size, 0.0, int(id_), int(id2))
    return head + labels.tobytes() + bytes(payload)


def unpack(record: bytes) -> tuple[IRHeader, bytes]:
    """Split a record into (IRHeader, payload); label is a float32 array when flag > 0."""
    if len(record) < IR_SIZE:
        raise FormatError(f"record of {len(record)} bytes is shorter than the {IR_SIZE}-byte IRHeader")
    flag, label, id_, id2 = struct.unpack_from(IR_FORMAT, record, 0)
    if flag > 0:
        end = IR_SIZE + 4 * flag
        if len(record) < end:
            raise FormatError(
                f"record of {len(record)} bytes is too short for its header's {flag} labels (need {end})"
            )
        labels = np.frombuffer(record, dtype="<f4", count=flag, offset=IR_SIZE).astype(np.float32)
        return IRHeader(flag, labels, id_, id2), bytes(record[end:])
    return IRHeader(flag, float(label), id_, id2), bytes(record[IR_SIZE:])


# --------------------------------------------------------------------------------------------- index
MAX_IDX_BYTES = 2 << 30   # ~90M keys; the largest public face sets have under 20M images
MAX_IDX_LINE = 64         # 'key<TAB>offset' of two 64-bit integers is at most 41 bytes
MIN_RECORD_BYTES = 8      # a record is at least its magic word and length


def read_idx(idx_path: str | os.PathLike, rec_size: int | None = None) -> tuple[list[int], dict[int, int]]:
    """Parse a `.idx` file: keys in file order and key -> offset. Malformed lines raise FormatError.

    Bounded before and while reading: a regular file of at most MAX_IDX_BYTES, lines of at most MAX_IDX_LINE
    bytes and, given the `.rec`'s size, at most rec_size / MIN_RECORD_BYTES keys (more keys than the `.rec`
    can hold records is an error, found before the keys are stored)."""
    keys: list[int] = []
    offsets: dict[int, int] = {}
    max_keys = None if rec_size is None else rec_size // MIN_RECORD_BYTES
    with open_regular(idx_path, "RecordIO index", MAX_IDX_BYTES) as raw:
        fh = io.TextIOWrapper(raw, encoding="ascii", errors="replace")
        for lineno, line in enumerate(iter(lambda: fh.readline(MAX_IDX_LINE + 2), ""), 1):
            text = line.rstrip("\r\n")
            if len(text) > MAX_IDX_LINE:
                raise FormatError(f"{idx_path}: line {lineno}: longer than {MAX_IDX_LINE} characters; expected "
                                  f"'key<TAB>offset' with integers")
            if not text.strip():
                continue
            if max_keys is not None and len(keys) >= max_keys:
                raise FormatError(f"{idx_path}: line {lineno}: more keys than the {rec_size}-byte .rec can hold "
                                  f"records (at most {max_keys}, {MIN_RECORD_BYTES} bytes each)")
            fields = text.split("\t")
            try:
                if len(fields) != 2:
                    raise ValueError
                key, offset = int(fields[0]), int(fields[1])
                if offset < 0:
                    raise ValueError
            except ValueError:
                raise FormatError(
                    f"{idx_path}: line {lineno}: expected 'key<TAB>offset' with integers, got {text!r}"
                ) from None
            if key in offsets:
                raise FormatError(f"{idx_path}: line {lineno}: duplicate key {key}")
            keys.append(key)
            offsets[key] = offset
    return keys, offsets


# --------------------------------------------------------------------------------------------- readers
class _MappedFile:
    """A read-only memory map opened lazily in the current process (reopened after fork/unpickling)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise FormatError(f"{self.path}: RecordIO file not found")
        check_regular(self.path, "RecordIO file")  # a FIFO or device cannot be memory-mapped
        self._pid: int | None = None
        self._buf = None
        self._fh = None

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(state["path"])

    @property
    def buf(self):
        if self._buf is None or self._pid != os.getpid():
            fh = open(self.path, "rb")
            size = os.fstat(fh.fileno()).st_size
            self._buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            self._fh, self._pid = fh, os.getpid()
        return self._buf

    def size(self) -> int:
        return len(self.buf)

    def close(self) -> None:
        if self._pid == os.getpid():
            if isinstance(self._buf, mmap.mmap):
                self._buf.close()
            if self._fh is not None:
                self._fh.close()
        self._buf = self._fh = self._pid = None


class _MappedReader:
    """Close and context-manager behaviour shared by the readers (both hold a `_MappedFile` as `_file`)."""

    _file: _MappedFile

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RecordReader(_MappedReader):
    """Sequential reader of a `.rec` file: iterate to get each logical record's bytes in file order."""

    def __init__(self, rec_path: str | os.PathLike):
        self.path = Path(rec_path)
        self._file = _MappedFile(self.path)

    def __iter__(self) -> Iterator[bytes]:
        for _, data in self.iter_with_offsets():
            yield data

    def iter_with_offsets(self) -> Iterator[tuple[int, bytes]]:
        """Yield (offset, record bytes) for every logical record."""
        buf = self._file.buf
        pos, size = 0, len(buf)
        while pos < size:
            data, nxt = decode_record(buf, pos, self.path)
            yield pos, data
            pos = nxt


class IndexedRecordReader(_MappedReader):
    """Random access to a `.rec` by the keys of its `.idx` (keys are ints, in `.idx` order)."""

    def __init__(self, idx_path: str | os.PathLike, rec_path: str | os.PathLike):
        self.idx_path = Path(idx_path)
        self.rec_path = Path(rec_path)
        if not self.idx_path.exists():
            raise FormatError(f"{self.idx_path}: index file not found")
        self._file = _MappedFile(self.rec_path)
        size = os.path.getsize(self.rec_path)
        self.keys, self._offsets = read_idx(self.idx_path, size)
        for key in self.keys:
            off = self._offsets[key]
            if off + 8 > size:
                raise FormatError(
                    f"{self.idx_path}: key {key} points at offset {off}, past the end of "
                    f"{self.rec_path} ({size} bytes)"
                )

    @classmethod
    def from_prefix(cls, prefix: str | os.PathLike) -> IndexedRecordReader:
        """Open `PREFIX.idx` and `PREFIX.rec`."""
        prefix = str(prefix)
        return cls(prefix + ".idx", prefix + ".rec")

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key) -> bool:
        return key in self._offsets

    def offset(self, key: int) -> int:
        try:
            return self._offsets[key]
        except KeyError:
            raise KeyError(f"{self.idx_path}: no key {key!r}") from None

    def read(self, key: int) -> bytes:
        """The logical record stored under `key`."""
        off = self.offset(key)
        try:
            data, _ = decode_record(self._file.buf, off, self.rec_path)
        except FormatError as exc:
            raise FormatError(f"{exc} (key {key} from {self.idx_path})") from None
        return data


# --------------------------------------------------------------------------------------------- writers
class RecordWriter:
    """Sequential `.rec` writer; the file appears (atomically renamed) only when closed without error."""

    def __init__(self, rec_path: str | os.PathLike):
        self.rec_path = Path(rec_path)
        self._stack: contextlib.ExitStack | None = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.rec_path, clean_stale=True))
        self._fh = self._stack.enter_context(open(tmp, "wb"))
        self._pos = 0

    def tell(self) -> int:
        return self._pos

    def write(self, record: bytes) -> int:
        """Append one logical record; return its offset."""
        off = self._pos
        framed = encode_record(record)
        self._fh.write(framed)
        self._pos += len(framed)
        return off

    def close(self) -> None:
        self._finish(None, None, None)

    def abort(self) -> None:
        """Discard everything written so far (no output file appears)."""
        err = RuntimeError("RecordIO writer aborted")
        with contextlib.suppress(RuntimeError):
            self._finish(RuntimeError, err, None)

    def _finish(self, et, ev, tb) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            if et is None:
                stack.close()
            else:
                stack.__exit__(et, ev, tb)

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        self._finish(et, ev, tb)
        return False


class IndexedRecordWriter(RecordWriter):
    """Writes `.rec` + `.idx` (lines `key\\toffset`, as mxnet writes them); both committed as one unit at close."""

    def __init__(self, idx_path: str | os.PathLike, rec_path: str | os.PathLike):
        # no super().__init__: the pair is committed as one unit (`atomic_paths`, the .idx last: the old .idx is
        # removed first, so a .rec never stands beside an .idx of another write; an interrupted commit leaves a
        # .rec without .idx, which IndexedRecordReader refuses)
        self.rec_path, self.idx_path = Path(rec_path), Path(idx_path)
        self._stack = contextlib.ExitStack()
        try:
            rec_tmp, idx_tmp = self._stack.enter_context(atomic_paths([self.rec_path, self.idx_path], clean_stale=True))
            self._fh = self._stack.enter_context(open(rec_tmp, "wb"))
            self._idx = self._stack.enter_context(open(idx_tmp, "w", encoding="ascii", newline="\n"))
        except BaseException:
            self.abort()
            raise
        self._pos = 0
        self._keys: set[int] = set()

    @classmethod
    def from_prefix(cls, prefix: str | os.PathLike) -> IndexedRecordWriter:
        prefix = str(prefix)
        return cls(prefix + ".idx", prefix + ".rec")

    def write_idx(self, key: int, record: bytes) -> int:
        """Append `record` under integer `key`; return its offset."""
        key = int(key)
        if key in self._keys:
            raise ValueError(f"duplicate RecordIO key {key}")
        self._keys.add(key)
        off = self.write(record)
        self._idx.write(f"{key}\t{off}\n")
        return off
