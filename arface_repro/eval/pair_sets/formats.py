"""The pair-list formats a `kind: pairs` protocol definition can name (`format:` in `protocols/<name>.yaml`).

A fixed registry: each format is one class here with a `name`, a `help` line for `--pairs`, and
`parse(path, folds) -> PairList`. A definition picks one by name; nothing named by a definition file is
ever imported. A pair set in a format already here needs only its `protocols/<name>.yaml`; a set with a
format of its own needs one class here (decorated with `@pair_format`) and its test.

The formats are numpy-only (no torch, no cv2), like the generic readers they call in `arface_repro.io`
(`io.pairs`, `io.insightface_bin`).

`folds` is the definition's fold rule (`eval.protocols.spec.FoldRule`); formats whose folds come from the
file's own structure ignore it, `label-pairs` cuts its blocks by `folds.size`.
"""

from __future__ import annotations

import os
from pathlib import Path

from arface_repro.errors import ConfigError
from arface_repro.io.insightface_bin import bin_image_names, bin_pairs, load_bin
from arface_repro.io.pairs import (
    PairList,
    parse_calfw_pairs,
    parse_cfp_pairs,
    parse_cplfw_pairs,
    parse_label_pairs,
    parse_lfw_pairs,
)

_FORMATS: dict[str, type[PairFormat]] = {}


def pair_format(cls):
    """Class decorator: add a pair-list format to the registry under `cls.name`."""
    if cls.name in _FORMATS and _FORMATS[cls.name] is not cls:
        raise ValueError(f"pair format {cls.name!r} registered twice")
    _FORMATS[cls.name] = cls
    return cls


def get_pair_format(name: str, where: str = "format") -> type[PairFormat]:
    """The format class of `name`; a ConfigError naming `where` (the definition file and key) otherwise."""
    try:
        return _FORMATS[name]
    except KeyError:
        raise ConfigError(f"{where}: unknown pair-list format {name!r}; known: {', '.join(_FORMATS)}") from None


def pair_format_names() -> list[str]:
    return list(_FORMATS)


class PairFormat:
    """One pair-list format. `embeds_images`: the file holds the images themselves (insightface `.bin`)."""

    name = "?"
    help = "pair list"
    embeds_images = False

    @classmethod
    def parse(cls, path: str | os.PathLike, folds, image_dir: str = "") -> PairList:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def encoded_images(cls, path: str | os.PathLike) -> tuple[list[str], list[bytes]]:
        """The image names and encoded image bytes a file holds (decoding is the data layer's job)."""
        raise ConfigError(f"{path}: a {cls.name} pair list holds no images")


@pair_format
class LFWPairs(PairFormat):
    name = "lfw"
    help = "LFW pairs.txt (header '10 n', then per fold n matched and n mismatched lines)"

    @classmethod
    def parse(cls, path, folds, image_dir=""):
        return parse_lfw_pairs(path)


@pair_format
class CALFWPairs(PairFormat):
    name = "calfw"
    help = "pairs_CALFW.txt (two lines 'file fold' per pair; FaceX-Zoo folds)"

    @classmethod
    def parse(cls, path, folds, image_dir=""):
        return parse_calfw_pairs(path, image_dir)


@pair_format
class CPLFWPairs(PairFormat):
    name = "cplfw"
    help = "pairs_CPLFW.txt (two lines 'file label' per pair; FaceX-Zoo folds)"

    @classmethod
    def parse(cls, path, folds, image_dir=""):
        return parse_cplfw_pairs(path, image_dir)


class CFPPairs(PairFormat):
    """CFP's Protocol/ folder; the path may name the CFP root or its Protocol/ folder."""

    which = "?"
    help = "the CFP Protocol/ folder (Pair_list_F/P.txt, Split/)"

    @classmethod
    def parse(cls, path, folds, image_dir=""):
        p = Path(path)
        return parse_cfp_pairs(p.parent if p.name == "Protocol" else p, cls.which)


@pair_format
class CFPFrontalProfile(CFPPairs):
    name = "cfp-fp"
    which = "FP"


@pair_format
class CFPFrontalFrontal(CFPPairs):
    name = "cfp-ff"
    which = "FF"


@pair_format
class LabelPairs(PairFormat):
    name = "label-pairs"
    help = "pair list 'path_a path_b label' (label 1 same, 0 or -1 different), folds = blocks of folds.size lines"

    @classmethod
    def parse(cls, path, folds, image_dir=""):
        return parse_label_pairs(path, pairs_per_fold=folds.size if folds is not None else None)


@pair_format
class InsightfaceBin(PairFormat):
    name = "insightface-bin"
    help = "an insightface .bin set (its images are inside it)"
    embeds_images = True

    @classmethod
    def parse(cls, path, folds, image_dir=""):
        return bin_pairs(path, folds.count if folds is not None else 10)

    @classmethod
    def encoded_images(cls, path):
        images, _ = load_bin(path)
        return bin_image_names(len(images)), images
