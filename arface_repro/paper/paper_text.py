"""Read the tables out of a plain-text copy of the paper, to check the transcription in protocols/paper/.

The text form this understands: a line ``TABLE <roman numeral>``, then the table's title line(s), then
its rows as consecutive tab-separated lines (a header line may start with a tab: a multi-line header;
a row whose first cell is empty continues the block above). The package never needs the paper: this
is only for checking `protocols/paper/table_XX.yaml` against a copy of it (tests, and
`scripts/reproduce_table.py --check-paper PAPER.txt`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from arface_repro.errors import FormatError
from arface_repro.utils.textfile import read_text

ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI")
_HEADING = re.compile(r"^TABLE ([IVX]+)\s*$")


@dataclass
class TextTable:
    roman: str
    title: str                      # title lines joined by one space
    lines: list[list[str]] = field(default_factory=list)   # every tab-separated line, split on tabs
    first_line: int = 0             # 1-based line number of the first tab-separated line


def parse_paper_tables(text: str, source: str = "paper text") -> dict[str, TextTable]:
    """{roman numeral: TextTable} for every ``TABLE`` heading followed by tab-separated rows."""
    lines = text.splitlines()
    out: dict[str, TextTable] = {}
    i = 0
    while i < len(lines):
        m = _HEADING.match(lines[i].strip())
        if not m:
            i += 1
            continue
        roman, i = m.group(1), i + 1
        title = []
        while i < len(lines) and "\t" not in lines[i]:
            if lines[i].strip():
                if _HEADING.match(lines[i].strip()):
                    raise FormatError(f"{source}:{i + 1}: TABLE {roman} has no tab-separated rows")
                title.append(lines[i].strip())
            i += 1
        t = TextTable(roman, " ".join(title), first_line=i + 1)
        while i < len(lines) and "\t" in lines[i]:
            t.lines.append(lines[i].rstrip("\n").split("\t"))
            i += 1
        if roman in out:
            raise FormatError(f"{source}: TABLE {roman} appears twice")
        out[roman] = t
    return out


def read_paper_tables(path: str | os.PathLike) -> dict[str, TextTable]:
    return parse_paper_tables(read_text(path, "paper text"), str(path))
