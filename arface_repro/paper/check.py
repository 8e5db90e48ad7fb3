"""Check protocols/paper/ against a text copy of the paper: every table cell, title and quoted sentence."""

from __future__ import annotations

import os
import re

from arface_repro.paper.manifest import load_claims
from arface_repro.paper.paper_text import ROMAN, read_paper_tables
from arface_repro.paper.targets import get_table, load_notes


def strip_math(s: str) -> str:
    """The text copy marks math as $...$; the transcription keeps the text without the markup."""
    return s.replace("$", "")


def normalise_space(s: str) -> str:
    return re.sub(r"[ \n]+", " ", s)


def check_transcription(paper: str | os.PathLike) -> list[str]:
    """Every difference between the transcribed tables / quotes and the paper text (empty list: identical)."""
    text_tables = read_paper_tables(paper)
    problems = []
    for tid in ROMAN:
        if tid not in text_tables:
            problems.append(f"Table {tid}: not found in {paper}")
            continue
        tt, t = text_tables[tid], get_table(tid)
        want = [[strip_math(c) for c in line] for line in tt.lines]
        got = t.printed_lines()
        if strip_math(tt.title) != t.title:
            problems.append(f"Table {tid}: title {t.title!r} != printed {tt.title!r}")
        if len(want) != len(got):
            problems.append(f"Table {tid}: {len(got)} lines transcribed, {len(want)} printed")
        for i, (w, g) in enumerate(zip(want, got)):
            if w != g:
                problems.append(f"Table {tid} line {i + 1}: transcribed {g!r} != printed {w!r}")
    with open(paper, encoding="utf-8") as fh:
        body = normalise_space(strip_math(fh.read()))
    notes = load_notes()
    for sec in ("contradictions", "readings", "checks"):
        for e in notes[sec]:
            for q in e.get("quotes") or []:
                if normalise_space(q["text"]) not in body:
                    problems.append(f"contradictions.yaml {e['id']}: quote not in the paper: {q['text']!r}")

    for c in load_claims().text:
        if normalise_space(c.quote) not in body:
            problems.append(f"claims.yaml {c.id}: quote not in the paper: {c.quote!r}")
    return problems
