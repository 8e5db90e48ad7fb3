"""The paper's Tables I-XI as data: read `protocols/paper/table_XX.yaml` (safe YAML, validated).

A table file holds the printed header line(s) and, per row, the printed cells exactly as in the paper plus
metadata (method, architecture, training set, ..., `source`: reproducible | literature). Values are kept as
the printed strings; `Row.value(col)` parses one to a float (a trailing '%' dropped). Nothing here needs
the paper itself or torch.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from arface_repro.errors import ConfigError, FormatError
from arface_repro.shared_data import protocols_dir
from arface_repro.utils.textfile import read_yaml_mapping

ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI")
TABLE_FORMAT = "arface-paper-table/1"
NOTES_FORMAT = "arface-paper-notes/1"
SOURCES = ("reproducible", "literature")
ROW_META = ("block", "part", "method", "architecture", "training_set", "images", "identities", "models", "protocol",
            "schema", "num_layers", "reference", "reference_text", "reported_by", "source", "notes")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?%?$")


def table_id(text: str | int) -> str:
    """'10', 10, 'x', 'X' -> 'X'. Raises ConfigError for anything else."""
    t = str(text).strip().upper()
    if t.isdigit() and 1 <= int(t) <= len(ROMAN):
        return ROMAN[int(t) - 1]
    if t in ROMAN:
        return t
    raise ConfigError(f"unknown table {text!r}: give 1..11 or I..XI")


def table_number(tid: str) -> int:
    return ROMAN.index(table_id(tid)) + 1


def paper_dir() -> Path:
    return protocols_dir() / "paper"


@dataclass(frozen=True)
class Column:
    id: str
    header: str
    unit: str                 # "%" or "fraction"
    measure: str
    protocol: str
    metric: str               # key in a result record's metrics (records are in percent)
    index: int                # position among the printed cells
    group: str | None = None

    def to_record_units(self, value: float) -> float:
        """A printed value in the units of a record's metrics (percent)."""
        return value * 100.0 if self.unit == "fraction" else value

    def from_record_units(self, value: float) -> float:
        return value / 100.0 if self.unit == "fraction" else value


@dataclass(frozen=True)
class Block:
    id: str
    label: str
    architecture: str
    training_set: str
    images: str | None
    identities: str | None


@dataclass
class Row:
    id: str
    printed: list[str]
    meta: dict
    table: Table = field(repr=False)  # the table it belongs to (read_table sets it)

    @property
    def source(self) -> str:
        return self.meta["source"]

    @property
    def block(self) -> str | None:
        return self.meta.get("block")

    @property
    def label(self) -> str:
        """The row's printed labels joined (empty continuation cells filled from its block)."""
        n = self.table.label_columns
        cells = list(self.printed[:n])
        if self.block and not cells[0]:
            cells[0] = self.table.block(self.block).label
        return " | ".join(c for c in cells if c)

    @property
    def short_label(self) -> str:
        """The printed labels without the block's cell (for rows shown under their block)."""
        n = self.table.label_columns
        cells = self.printed[1:n] if self.block else self.printed[:1]
        return " ".join(c for c in cells if c and c != "—") or "—"

    def text(self, col: Column) -> str:
        return self.printed[col.index]

    def value(self, col: Column) -> float:
        s = self.printed[col.index]
        return float(s.rstrip("%"))

    def decimals(self, col: Column) -> int:
        s = self.printed[col.index].rstrip("%")
        return len(s.split(".", 1)[1]) if "." in s else 0


@dataclass
class Table:
    id: str                   # roman numeral
    number: int
    title: str
    location: str
    header: list[list[str]]
    label_columns: int
    columns: list[Column]
    rows: list[Row]
    blocks: list[Block]
    parts: dict
    source: str

    def row(self, rid: str) -> Row:
        for r in self.rows:
            if r.id == rid:
                return r
        raise ConfigError(f"{self.source}: table {self.id} has no row {rid!r} (rows: {', '.join(r.id for r in self.rows)})")

    def column(self, cid: str) -> Column:
        for c in self.columns:
            if c.id == cid:
                return c
        raise ConfigError(f"{self.source}: table {self.id} has no column {cid!r}")

    def block(self, bid: str) -> Block:
        for b in self.blocks:
            if b.id == bid:
                return b
        raise ConfigError(f"{self.source}: table {self.id} has no block {bid!r}")

    def printed_lines(self) -> list[list[str]]:
        """Header line(s) and rows exactly as printed."""
        return [list(h) for h in self.header] + [list(r.printed) for r in self.rows]


def _need(d: dict, key: str, where: str, kind=None):
    if key not in d:
        raise FormatError(f"{where}: missing key {key!r}")
    v = d[key]
    if kind is not None and not isinstance(v, kind):
        raise FormatError(f"{where}: key {key!r} must be {getattr(kind, '__name__', kind)}, got {v!r}")
    return v


def parse_table(data: dict, source: str) -> Table:
    if data.get("format") != TABLE_FORMAT:
        raise FormatError(f"{source}: format must be {TABLE_FORMAT!r}, got {data.get('format')!r}")
    tid = table_id(_need(data, "table", source, str))
    number = _need(data, "number", source, int)
    if number != table_number(tid):
        raise FormatError(f"{source}: table {tid} has number {number}")
    header = _need(data, "header", source, list)
    if not header or not all(isinstance(h, list) and all(isinstance(c, str) for c in h) for h in header):
        raise FormatError(f"{source}: header must be a list of lines, each a list of printed cells")
    width = len(header[0])
    nlab = _need(data, "label_columns", source, int)
    cols = []
    for i, c in enumerate(_need(data, "columns", source, list)):
        where = f"{source}: columns[{i}]"
        for k in ("id", "header", "unit", "measure", "protocol", "metric"):
            _need(c, k, where, str)
        if c["unit"] not in ("%", "fraction"):
            raise FormatError(f"{where}: unit must be '%' or 'fraction', got {c['unit']!r}")
        cols.append(Column(c["id"], c["header"], c["unit"], c["measure"], c["protocol"], c["metric"], nlab + i, c.get("group")))
    if nlab + len(cols) != width:
        raise FormatError(f"{source}: {nlab} label columns + {len(cols)} value columns != {width} printed header cells")
    if len({c.id for c in cols}) != len(cols):
        raise FormatError(f"{source}: duplicate column ids")
    for c in cols:
        if c.header != header[-1][c.index]:
            raise FormatError(f"{source}: column {c.id} header {c.header!r} is not the printed {header[-1][c.index]!r}")
    blocks = []
    for i, b in enumerate(data.get("blocks") or []):
        where = f"{source}: blocks[{i}]"
        blocks.append(Block(_need(b, "id", where, str), _need(b, "label", where, str), _need(b, "architecture", where, str),
                            _need(b, "training_set", where, str), b.get("images"), b.get("identities")))
    t = Table(tid, number, _need(data, "title", source, str), _need(data, "location", source, str), header, nlab, cols,
              [], blocks, dict(data.get("parts") or {}), source)
    seen = set()
    prev_block = None
    for i, r in enumerate(_need(data, "rows", source, list)):
        where = f"{source}: rows[{i}]"
        rid = _need(r, "id", where, str)
        where = f"{source}: row {rid}"
        if rid in seen:
            raise FormatError(f"{where}: duplicate row id")
        seen.add(rid)
        printed = _need(r, "printed", where, list)
        if len(printed) != width or not all(isinstance(c, str) for c in printed):
            raise FormatError(f"{where}: printed must be {width} strings (one per printed column), got {printed!r}")
        for c in cols:
            if not _NUMBER.match(printed[c.index]):
                raise FormatError(f"{where}: value {printed[c.index]!r} of column {c.id} is not a printed number")
        unknown = set(r) - {"id", "printed", *ROW_META}
        if unknown:
            raise FormatError(f"{where}: unknown key(s) {sorted(unknown)}")
        meta = {k: r.get(k) for k in ROW_META}
        if meta["source"] not in SOURCES:
            raise FormatError(f"{where}: source must be one of {SOURCES}, got {meta['source']!r}")
        if blocks:
            b = meta.get("block")
            if b not in {x.id for x in blocks}:
                raise FormatError(f"{where}: block {b!r} is not one of the table's blocks")
            label = t.block(b).label
            if b != prev_block and printed[0] != label:
                raise FormatError(f"{where}: first row of block {b} must print its label {label!r}")
            if b == prev_block and printed[0] != "":
                raise FormatError(f"{where}: a continuation row of block {b} prints an empty first cell")
            prev_block = b
        t.rows.append(Row(rid, list(printed), meta, t))
    return t


def load_table(tid: str | int, directory: str | os.PathLike | None = None) -> Table:
    tid = table_id(tid)
    d = Path(directory) if directory is not None else paper_dir()
    path = d / f"table_{table_number(tid):02d}.yaml"
    if not path.is_file():
        raise FormatError(f"{path}: the transcription of Table {tid} is missing")
    t = parse_table(read_yaml_mapping(path, "paper table file"), str(path))
    if t.id != tid:
        raise FormatError(f"{path}: holds table {t.id}, expected {tid}")
    return t


@cache
def _cached(tid: str, directory: str) -> Table:
    return load_table(tid, directory)


def get_table(tid: str | int) -> Table:
    """Cached `load_table` from the default folder."""
    return _cached(table_id(tid), str(paper_dir()))


def load_notes(directory: str | os.PathLike | None = None) -> dict:
    """contradictions.yaml: {'contradictions': [...], 'readings': [...], 'checks': [...]}, validated."""
    d = Path(directory) if directory is not None else paper_dir()
    path = d / "contradictions.yaml"
    data = read_yaml_mapping(path, "paper table file")
    if data.get("format") != NOTES_FORMAT:
        raise FormatError(f"{path}: format must be {NOTES_FORMAT!r}")
    ids = set()
    for sec in ("contradictions", "readings", "checks"):
        for i, e in enumerate(_need(data, sec, str(path), list)):
            where = f"{path}: {sec}[{i}]"
            eid = _need(e, "id", where, str)
            if eid in ids:
                raise FormatError(f"{where}: duplicate id {eid}")
            ids.add(eid)
            _need(e, "topic", where, str)
            for q in e.get("quotes") or []:
                _need(q, "text", where, str)
                _need(q, "where", where, str)
            if sec != "checks":
                _need(e, "reading", where, str)
    return data
