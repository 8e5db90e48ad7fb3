"""Pair verification sets: LFW, CALFW, CPLFW, CFP-FP, CFP-FF, AgeDB-30 and insightface `.bin` sets.

The metric code is `arface_repro.eval.pair_protocols` (insightface's `verification.py` rule, audited
there); these classes only find the pair list, the images and the options.
"""

from __future__ import annotations

from pathlib import Path

from arface_repro.errors import ConfigError
from arface_repro.eval.protocols import register
from arface_repro.eval.protocols.base import ImageRequest, Protocol


class PairProtocol(Protocol):
    """One pair list, 10 folds, the insightface accuracy rule (or the LFW-official ± figure)."""

    pairs_help = "pair list"

    @classmethod
    def add_arguments(cls, p) -> None:
        g = p.add_argument_group(f"{cls.name} options")
        default = _layout_of(cls.name)
        g.add_argument("--pairs", metavar="FILE",
                       help=cls.pairs_help + (f" (default <data-root>/{default})" if default else ""))
        g.add_argument("--rule", choices=("insightface", "lfw-official"), default=None,
                       help="accuracy rule: insightface (± = np.std, default) or lfw-official (± = standard error)")
        cls.add_flip_argument(g)

    def pair_list(self):
        from arface_repro.eval.pair_protocols import load_pair_protocol

        path = self.path("pairs", self.opts.pairs, option="pairs")
        return load_pair_protocol(self.name, path)

    def images(self) -> ImageRequest:
        if self.data_root is None:
            raise ConfigError("--model needs --data-root (the folder the pair list's image paths are relative to)")
        return ImageRequest(self.data_root, self.pair_list().unique_paths())

    def evaluate(self, store) -> dict:
        from arface_repro.eval.pair_protocols import evaluate_pairs

        pl = self.pair_list()
        out = evaluate_pairs(store, pl, rule=self.rule(), flip=self.flip_mode(store))
        self.sidecar_arrays = out["arrays"]  # per-pair cosine scores, labels and folds: written beside the record
        return self.record(out["metrics"], per_fold=out["per_fold"], curves=out["curves"],
                           extra={"counts": out["counts"], "tar_rule": out["tar_rule"], "flip": out["flip"],
                                  "per_pair": out["per_pair"]})


def _layout_of(name: str) -> str:
    from arface_repro.eval.protocols.spec import load_spec

    return load_spec(name).layout.get("pairs", "")


@register
class LFW(PairProtocol):
    name = "lfw"
    summary = "LFW View 2, 10-fold verification accuracy (pairs.txt)"
    pairs_help = "LFW pairs.txt (10 folds of 300 + 300)"


@register
class CALFW(PairProtocol):
    name = "calfw"
    summary = "Cross-Age LFW, 10-fold verification accuracy (pairs_CALFW.txt)"
    pairs_help = "pairs_CALFW.txt"


@register
class CPLFW(PairProtocol):
    name = "cplfw"
    summary = "Cross-Pose LFW, 10-fold verification accuracy (pairs_CPLFW.txt)"
    pairs_help = "pairs_CPLFW.txt"


class CFP(PairProtocol):
    pairs_help = "the CFP Protocol/ folder (Pair_list_F/P.txt, Split/)"

    def pair_list(self):
        from arface_repro.eval.pair_protocols import load_pair_protocol

        proto = self.path("pairs", self.opts.pairs, option="pairs")
        # the parser takes the CFP root (the folder holding Protocol/); --pairs may name either
        root = proto.parent if proto.name == "Protocol" else proto
        return load_pair_protocol(self.name, root)


@register
class CFPFP(CFP):
    name = "cfp-fp"
    summary = "CFP frontal-profile, 10-fold verification accuracy"


@register
class CFPFF(CFP):
    name = "cfp-ff"
    summary = "CFP frontal-frontal, 10-fold verification accuracy"


@register
class AgeDB30(PairProtocol):
    name = "agedb30"
    summary = "AgeDB-30, 10-fold verification accuracy (pair list 'a b label', 10 x 600)"
    pairs_help = "pair list 'path_a path_b label' (label -1 = different)"


@register
class BinSet(PairProtocol):
    name = "bin"
    summary = "an insightface .bin set (lfw.bin, cfp_fp.bin, agedb_30.bin, ...): its images are inside it"
    pairs_help = "the .bin file"

    def images(self) -> ImageRequest:
        from arface_repro.data.image_decoding import decode_bin_images

        path = self.path("pairs", self.opts.pairs, option="pairs")
        names, images = decode_bin_images(path)
        return ImageRequest(None, list(names), arrays=images, what=f"images of {Path(path).name}")
