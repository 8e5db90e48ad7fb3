"""argparse `type=` functions for numeric options: the range is checked when the command line is parsed.

`--workers -1`, `--batch-size 0`, `--max-memory-gb nan` and the like are refused by argparse with the option
named (exit status 2), before any file is read.
"""

from __future__ import annotations

import argparse
import math


def int_range(lo: int | None = None, hi: int | None = None):
    """An int in [lo, hi] (either bound may be None)."""

    def parse(text: str) -> int:
        try:
            v = int(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"must be {_bounds(lo, hi)}, got {v}")
        return v

    parse.__name__ = "integer"
    return parse


def float_range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False):
    """A finite float in [lo, hi] ((lo, hi) with lo_open / hi_open)."""

    def parse(text: str) -> float:
        try:
            v = float(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        bad = not math.isfinite(v)
        if lo is not None:
            bad |= v <= lo if lo_open else v < lo
        if hi is not None:
            bad |= v >= hi if hi_open else v > hi
        if bad:
            what = []
            if lo is not None:
                what.append(f"{'>' if lo_open else '>='} {lo:g}")
            if hi is not None:
                what.append(f"{'<' if hi_open else '<='} {hi:g}")
            raise argparse.ArgumentTypeError(f"must be a finite number{' ' + ' and '.join(what) if what else ''}, "
                                             f"got {text!r}")
        return v

    parse.__name__ = "number"
    return parse


def _bounds(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"in {lo}..{hi}"
    if lo is not None:
        return f">= {lo}"
    return f"<= {hi}"


positive_int = int_range(1)
MAX_BATCH = 1 << 16  # images per forward pass: far above any GPU's memory, below where slicing overflows (2**64)
batch_size = int_range(1, MAX_BATCH)
non_negative_int = int_range(0)
positive_float = float_range(0.0, lo_open=True)
probability = float_range(0.0, 1.0, lo_open=True)
