"""Person names of face data sets, normalised so that the same person matches across sets.

`normalise_name` turns "Jean-Claude_Van_Damme", "jean claude van damme" and "Jean Claude Van-Damme" into one
key, "Zoë Saldaña" into "zoe saldana" and "J.K._Rowling" into "jk rowling":
1. letters that Unicode does not decompose are spelt in ASCII (ø→o, æ→ae, œ→oe, ß→ss, ł→l, đ/ð→d, þ→th,
   ı→i);
2. NFKD decomposition, then the combining marks (accents) are dropped;
3. case folding;
4. apostrophes and full stops are removed without a break (O'Neal → oneal, J.K. → jk);
5. every other character that is not a letter or digit (spaces, '_', '-', commas, quotes, brackets) separates
   words; the key is the words joined by single spaces.
Two names match when their keys are equal: no fuzzy matching (a middle name present in one set and absent in
the other is not a match).

Readers (one-line FormatError naming the file and line for anything malformed):
- `read_names_list`: LFW's `lfw-names.txt` (`Name<TAB>image count` per line) or a plain list of names;
- `read_identity_meta`: VGGFace2's `identity_meta.csv` (`Class_ID, Name, Sample_Num, Flag, Gender`, names
  quoted, a space after each comma) mapping folder ids (n000001) to names;
- `read_class_names`: one identity per line in class order (`id` or `id<TAB>name`), as `arface make-subset`
  writes beside its `.rec`.
"""

from __future__ import annotations

import csv
import io
import os
import re
import unicodedata

from arface_repro.errors import FormatError
from arface_repro.utils.textfile import read_text

_ASCII_SPELLING = str.maketrans({
    "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss", "ẞ": "SS", "ł": "l", "Ł": "L",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH", "ı": "i", "ħ": "h", "Ħ": "H",
})
_JOINERS = re.compile(r"['’‘`´.]")
_WORDS = re.compile(r"[^\W_]+")


def normalise_name(name: str) -> str:
    """The matching key of a person's name (see the module docstring); '' when it has no letter or digit."""
    text = unicodedata.normalize("NFKD", str(name).translate(_ASCII_SPELLING))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(_WORDS.findall(_JOINERS.sub("", text)))


def read_names_list(path: str | os.PathLike) -> dict[str, str]:
    """{normalised key: name as written} of a names list (LFW's `Name<TAB>count` lines, or one name a line)."""
    out: dict[str, str] = {}
    for lineno, line in enumerate(read_text(path, "names list").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        name = fields[0].strip()
        if len(fields) > 2 or (len(fields) == 2 and not fields[1].strip().isdigit()) or not normalise_name(name):
            raise FormatError(f"{path}: line {lineno}: expected 'Name' or 'Name<TAB>image count', got {line!r}")
        out.setdefault(normalise_name(name), name)
    if not out:
        raise FormatError(f"{path}: no names")
    return out


def read_identity_meta(path: str | os.PathLike) -> dict[str, str]:
    """{class id: name} from a VGGFace2 `identity_meta.csv` (a header row starting with Class_ID is skipped)."""
    out: dict[str, str] = {}
    reader = csv.reader(io.StringIO(read_text(path, "identity meta file")), skipinitialspace=True)
    try:
        for row in reader:
            lineno = reader.line_num
            if not row or not "".join(row).strip():
                continue
            if lineno == 1 and row[0].strip().lower() == "class_id":
                continue
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise FormatError(f"{path}: line {lineno}: expected 'Class_ID, Name, ...', got {','.join(row)!r}")
            cid = row[0].strip()
            if cid in out:
                raise FormatError(f"{path}: line {lineno}: class id {cid!r} listed twice")
            out[cid] = row[1].strip()
    except csv.Error as exc:
        raise FormatError(f"{path}: line {reader.line_num}: not CSV ({exc})") from None
    if not out:
        raise FormatError(f"{path}: no identities")
    return out


def read_class_names(path: str | os.PathLike) -> list[tuple[str, str | None]]:
    """[(id, name or None)] in class order from a file of `id` or `id<TAB>name` lines ('#' lines skipped)."""
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for lineno, line in enumerate(read_text(path, "class names file").splitlines(), 1):
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        ident = fields[0].strip()
        if not ident or len(fields) > 2:
            raise FormatError(f"{path}: line {lineno}: expected 'id' or 'id<TAB>name' (one line per class), got {line!r}")
        if ident in seen:
            raise FormatError(f"{path}: line {lineno}: identity {ident!r} listed twice")
        seen.add(ident)
        out.append((ident, fields[1].strip() or None if len(fields) == 2 else None))
    if not out:
        raise FormatError(f"{path}: no classes")
    return out
