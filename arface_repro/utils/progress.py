"""Progress bars that do not flood logs: tqdm with `disable=None` (drawn on a terminal, off when stderr is
redirected to a file or pipe) and `mininterval` of one second; `quiet=True` turns them off everywhere.

Commands print their own one-line summaries at the end, so a redirected run writes those and nothing per item.
"""

from __future__ import annotations

from tqdm import tqdm

MININTERVAL_S = 1.0


def progress(iterable=None, *, quiet: bool = False, **kwargs) -> tqdm:
    """tqdm(iterable, **kwargs), drawn only on a terminal and at most once a second."""
    kwargs.setdefault("mininterval", MININTERVAL_S)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=True if quiet else None, **kwargs)


def progress_write(text: str) -> None:
    """A line above an active bar (a plain line when there is none)."""
    tqdm.write(text)
