"""Pair-list parsers for the verification protocols; one parsed form for all of them.

`PairList` holds, per pair: image path a, image path b (relative to the dataset root, '/'-separated),
same-identity flag, and fold id. Each parser checks its file line by line and raises FormatError naming
the file and line on anything unexpected; nothing is dropped silently, since a dropped pair shifts every
fold after it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.utils.textfile import read_lines


@dataclass
class PairList:
    path_a: np.ndarray   # (P,) str
    path_b: np.ndarray   # (P,) str
    issame: np.ndarray   # (P,) bool
    fold: np.ndarray     # (P,) int, 0-based
    source: str

    def __post_init__(self) -> None:
        n = len(self.issame)
        if not (len(self.path_a) == len(self.path_b) == len(self.fold) == n):
            raise ValueError("PairList arrays must have one entry per pair")

    def __len__(self) -> int:
        return len(self.issame)

    @property
    def n_folds(self) -> int:
        return int(len(np.unique(self.fold)))

    def unique_paths(self) -> list[str]:
        """Every image the protocol needs, sorted."""
        return sorted(set(self.path_a.tolist()) | set(self.path_b.tolist()))

    def check_images(self, data_root: str | os.PathLike) -> None:
        """Raise MissingDataError naming the first pairs whose image file is absent under data_root."""
        root = Path(data_root)
        missing = []
        for i, (a, b) in enumerate(zip(self.path_a, self.path_b)):
            for p in (a, b):
                if not (root / p).is_file():
                    missing.append(f"pair {i + 1} ({a}, {b}): {root / p}")
                    break
            if len(missing) >= 5:
                break
        if missing:
            raise MissingDataError(f"{self.source}: images missing under {root}: " + "; ".join(missing))


def _lines(path: str | os.PathLike) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: pair file not found")
    return read_lines(path, "pair list")


def _int(tok: str, path, lineno: int, what: str) -> int:
    try:
        return int(tok)
    except ValueError:
        raise FormatError(f"{path}:{lineno}: expected an integer {what}, got {tok!r}") from None


def lfw_image(name: str, num: int, ext: str = "jpg") -> str:
    return f"{name}/{name}_{num:04d}.{ext}"


def parse_lfw_pairs(path: str | os.PathLike, ext: str = "jpg") -> PairList:
    """LFW `pairs.txt` (View 2: header `10<TAB>300`, per fold 300 same then 300 different lines) or
    `pairsDevTest.txt`/`pairsDevTrain.txt` (header: one number N; N same then N different lines; one fold).

    The official files name every pair once, a mismatched pair names two different people and no pair names one
    image twice (checked on the real pairs.txt, pairsDevTest.txt and pairsDevTrain.txt); a file breaking one of
    these is refused naming the line, since a repeated pair counts twice in its fold's accuracy."""
    lines = _lines(path)
    if not lines:
        raise FormatError(f"{path}:1: empty file; expected a header line")
    head = lines[0].split()
    if len(head) == 2:
        n_folds, n = _int(head[0], path, 1, "fold count"), _int(head[1], path, 1, "pairs per class")
    elif len(head) == 1:
        n_folds, n = 1, _int(head[0], path, 1, "pairs per class")
    else:
        raise FormatError(f"{path}:1: header must be 'folds<TAB>pairs_per_class' or 'pairs_per_class', got {lines[0]!r}")
    body = [(i + 2, ln) for i, ln in enumerate(lines[1:]) if ln.strip()]
    expected = n_folds * 2 * n
    if len(body) != expected:
        raise FormatError(f"{path}: header promises {n_folds} fold(s) × {2 * n} pairs = {expected} lines, found {len(body)}")
    a, b, same, fold = [], [], [], []
    seen: dict[tuple[str, str], int] = {}
    for k, (lineno, ln) in enumerate(body):
        f, within = divmod(k, 2 * n)
        want_same = within < n
        tok = ln.split()
        if want_same:
            if len(tok) != 3:
                raise FormatError(f"{path}:{lineno}: expected a matched pair 'name n1 n2' (fold {f + 1}), got {ln!r}")
            name = tok[0]
            a.append(lfw_image(name, _int(tok[1], path, lineno, "image number"), ext))
            b.append(lfw_image(name, _int(tok[2], path, lineno, "image number"), ext))
        else:
            if len(tok) != 4:
                raise FormatError(f"{path}:{lineno}: expected a mismatched pair 'name1 n1 name2 n2' (fold {f + 1}), got {ln!r}")
            if tok[0] == tok[2]:
                raise FormatError(f"{path}:{lineno}: a mismatched pair names {tok[0]!r} on both sides; mismatched pairs "
                                  f"are two different people (fold {f + 1})")
            a.append(lfw_image(tok[0], _int(tok[1], path, lineno, "image number"), ext))
            b.append(lfw_image(tok[2], _int(tok[3], path, lineno, "image number"), ext))
        if a[-1] == b[-1]:
            raise FormatError(f"{path}:{lineno}: the pair names image {a[-1]} twice; a pair compares two images")
        key = (a[-1], b[-1]) if a[-1] < b[-1] else (b[-1], a[-1])
        if key in seen:
            raise FormatError(f"{path}:{lineno}: repeats the pair of line {seen[key]} ({a[-1]}, {b[-1]}); each LFW pair "
                              f"appears once in the protocol (a repeat would count twice in its fold's accuracy)")
        seen[key] = lineno
        same.append(want_same)
        fold.append(f)
    return PairList(np.array(a), np.array(b), np.array(same), np.array(fold), str(path))


def _two_line_pairs(path) -> list[tuple[int, str, str, int, int]]:
    """(lineno, file_a, file_b, token_a, token_b) for files with two lines `file token` per pair."""
    body = [(i + 1, ln.split()) for i, ln in enumerate(_lines(path)) if ln.strip()]
    if len(body) % 2:
        raise FormatError(f"{path}: {len(body)} non-empty lines; pairs take two lines each")
    out = []
    for k in range(0, len(body), 2):
        (la, ta), (lb, tb) = body[k], body[k + 1]
        for ln_no, t in ((la, ta), (lb, tb)):
            if len(t) != 2:
                raise FormatError(f"{path}:{ln_no}: expected 'file token', got {' '.join(t)!r}")
        out.append((la, ta[0], tb[0], _int(ta[1], path, la, "label"), _int(tb[1], path, lb, "label")))
    return out


def _facex_folds(issame: np.ndarray, path, n_folds: int = 10) -> np.ndarray:
    """FaceX-Zoo's rule: positives first, then negatives; fold i = pos[s*i:s*(i+1)] + neg[s*i:s*(i+1)]."""
    n_pos = int(issame.sum())
    n_neg = issame.size - n_pos
    if not issame[:n_pos].all() or issame[n_pos:].any():
        raise FormatError(f"{path}: positives must all come before negatives")
    if n_pos != n_neg or n_pos % n_folds:
        raise FormatError(f"{path}: expected equal numbers of positive and negative pairs divisible by {n_folds}, got {n_pos} + {n_neg}")
    s = n_pos // n_folds
    return np.concatenate([np.arange(n_pos) // s, np.arange(n_neg) // s])


def parse_calfw_pairs(path: str | os.PathLike, image_dir: str = "") -> PairList:
    """CALFW `pairs_CALFW.txt`: two lines per pair `file token`; 3000 positives (token = fold 1..10), then
    3000 negatives (token 0). Folds by FaceX-Zoo's rule. Paths get `image_dir/` prefixed."""
    rows = _two_line_pairs(path)
    same = np.array([ta != 0 for _, _, _, ta, _ in rows])
    for lineno, _, _, ta, tb in rows:
        if ta != tb:
            raise FormatError(f"{path}:{lineno}: the two lines of a pair carry different tokens ({ta}, {tb})")
    pre = f"{image_dir.rstrip('/')}/" if image_dir else ""
    return PairList(np.array([pre + r[1] for r in rows]), np.array([pre + r[2] for r in rows]), same,
                    _facex_folds(same, path), str(path))


def parse_cplfw_pairs(path: str | os.PathLike, image_dir: str = "") -> PairList:
    """CPLFW `pairs_CPLFW.txt`: two lines per pair `file label` (1 same, 0 different), positives first."""
    rows = _two_line_pairs(path)
    for lineno, _, _, ta, tb in rows:
        if ta not in (0, 1) or ta != tb:
            raise FormatError(f"{path}:{lineno}: expected matching labels 0/1 on both lines, got ({ta}, {tb})")
    same = np.array([r[3] == 1 for r in rows])
    pre = f"{image_dir.rstrip('/')}/" if image_dir else ""
    return PairList(np.array([pre + r[1] for r in rows]), np.array([pre + r[2] for r in rows]), same,
                    _facex_folds(same, path), str(path))


def _cfp_list(path: Path) -> dict[int, str]:
    out = {}
    for i, ln in enumerate(_lines(path)):
        if not ln.strip():
            continue
        tok = ln.split()
        if len(tok) != 2:
            raise FormatError(f"{path}:{i + 1}: expected 'index path', got {ln!r}")
        rel = os.path.normpath(os.path.join("Protocol", tok[1])).replace(os.sep, "/")
        out[_int(tok[0], path, i + 1, "index")] = rel
    return out


def parse_cfp_pairs(root: str | os.PathLike, which: str = "FP") -> PairList:
    """CFP (Sengupta et al.): `Protocol/Pair_list_{F,P}.txt` and `Protocol/Split/{FF,FP}/01..10/{same,diff}.txt`.

    For FP the first index is frontal and the second profile; for FF both are frontal. Image paths in the
    lists are relative to `Protocol/`; they are returned relative to the CFP root.
    """
    which = which.upper()
    if which not in ("FF", "FP"):
        raise ValueError("which must be 'FF' or 'FP'")
    root = Path(root)
    proto = root / "Protocol"
    frontal = _cfp_list(proto / "Pair_list_F.txt")
    second = frontal if which == "FF" else _cfp_list(proto / "Pair_list_P.txt")
    a, b, same, fold = [], [], [], []
    for f in range(10):
        for name, is_same in (("same.txt", True), ("diff.txt", False)):
            p = proto / "Split" / which / f"{f + 1:02d}" / name
            for i, ln in enumerate(_lines(p)):
                if not ln.strip():
                    continue
                tok = ln.strip().split(",")
                if len(tok) != 2:
                    raise FormatError(f"{p}:{i + 1}: expected 'i,j', got {ln!r}")
                ia, ib = _int(tok[0], p, i + 1, "index"), _int(tok[1], p, i + 1, "index")
                if ia not in frontal or ib not in second:
                    raise FormatError(f"{p}:{i + 1}: index {ia if ia not in frontal else ib} is not in the pair list")
                a.append(frontal[ia])
                b.append(second[ib])
                same.append(is_same)
                fold.append(f)
    return PairList(np.array(a), np.array(b), np.array(same), np.array(fold), str(proto / "Split" / which))


def parse_label_pairs(path: str | os.PathLike, pairs_per_fold: int | None = 600) -> PairList:
    """One pair per line `path_a path_b label` with label 1 = same and 0 or -1 = different (AgeDB-30's list
    uses -1). Folds are contiguous blocks of `pairs_per_fold` lines (AgeDB-30: 10 × 600)."""
    a, b, same = [], [], []
    for i, ln in enumerate(_lines(path)):
        if not ln.strip():
            continue
        tok = ln.split()
        if len(tok) != 3:
            raise FormatError(f"{path}:{i + 1}: expected 'path_a path_b label', got {ln!r}")
        lab = _int(tok[2], path, i + 1, "label")
        if lab not in (1, 0, -1):
            raise FormatError(f"{path}:{i + 1}: label must be 1 (same) or 0/-1 (different), got {lab}")
        a.append(tok[0])
        b.append(tok[1])
        same.append(lab == 1)
    n = len(same)
    if pairs_per_fold and n % pairs_per_fold:
        raise FormatError(f"{path}: {n} pairs is not a whole number of folds of {pairs_per_fold}")
    fold = np.arange(n) // pairs_per_fold if pairs_per_fold else np.zeros(n, int)
    return PairList(np.array(a), np.array(b), np.array(same), fold, str(path))


def check_folds(folds, issame, source: str, what: str, fold_ids=range(10), *, balanced: bool = False,
                equal_sizes: bool = False, fold_size: int | None = None, numbering: str = "") -> None:
    """The fold structure a k-fold protocol's definition requires, or a FormatError saying what was found.

    Every id of `fold_ids` must be present and no other (a fold of its own would be tuned on nothing, a single
    fold would tune the threshold on its test pairs); with `balanced` each fold holds as many matched as
    mismatched pairs; with `equal_sizes` all folds are the same size; with `fold_size` that size is given.
    """
    folds = np.asarray(folds)
    issame = np.asarray(issame, bool)
    want = np.asarray(list(fold_ids))
    ids, counts = np.unique(folds, return_counts=True)
    same = np.array([int(issame[folds == f].sum()) for f in ids], dtype=np.int64)
    shown = ids + (1 if numbering == "1-based" else 0)
    k = len(ids)
    folds_text = f"{k} fold{'' if k == 1 else 's'} (numbered {_id_text(shown)})"
    if k == 0:
        found = "no pairs"
    elif (counts == counts[0]).all() and (same == same[0]).all():
        found = f"{folds_text} of {counts[0]} pairs ({same[0]} matched){' each' if k > 1 else ''}"
    else:
        parts = [f"{i}: {c} ({m} matched)" for i, c, m in zip(shown.tolist(), counts.tolist(), same.tolist())]
        found = f"{folds_text}, pairs per fold " + "; ".join(parts[:12]) + (" …" if len(parts) > 12 else "")
    rule = f"{len(want)} folds"
    if fold_size:
        rule += f" of {fold_size} pairs"
    elif equal_sizes:
        rule += " of equal size"
    if balanced:
        rule += ", each half matched and half mismatched pairs"
    problem = None
    if len(ids) != len(want) or not np.array_equal(ids, want):
        problem = "fold numbers differ"
    elif (counts == 0).any():
        problem = "an empty fold"
    elif balanced and (2 * same != counts).any():
        problem = "an unbalanced fold"
    elif equal_sizes and not (counts == counts[0]).all():
        problem = "folds of different sizes"
    elif fold_size and not (counts == fold_size).all():
        problem = "folds of another size"
    if problem:
        raise FormatError(f"{source}: {what} needs {rule}; found {found}")


def _id_text(ids: np.ndarray) -> str:
    ids = ids.tolist()
    if len(ids) > 2 and ids == list(range(ids[0], ids[0] + len(ids))):
        return f"{ids[0]}..{ids[-1]}"
    return ", ".join(map(str, ids[:12])) + (" …" if len(ids) > 12 else "")


def contiguous_folds(n: int, k: int = 10) -> np.ndarray:
    """Fold id per item as `sklearn.model_selection.KFold(k, shuffle=False)` splits range(n)."""
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    return np.repeat(np.arange(k), sizes)
