"""Pair verification sets (LFW, CALFW, CPLFW, CFP-FP, CFP-FF, AgeDB-30, insightface `.bin` sets, and any
other pair list in a known format): one class for all of them, `kind: pairs`.

A pair set is its definition `protocols/<name>.yaml`: the pair file (`layout.pairs`), its format (`format`,
a parser of `arface_repro.eval.pair_sets.formats`), the fold structure it requires (`folds`) and its rules. The
metric code is `arface_repro.eval.pair_sets.verification` (insightface's `verification.py` rule, audited there;
numpy only, so it is imported with the class); this class only finds the pair list, the images and the options.
"""

from __future__ import annotations

from arface_repro.data.image_decoding import decode_rgb_images
from arface_repro.errors import ConfigError
from arface_repro.eval.pair_sets.formats import get_pair_format
from arface_repro.eval.pair_sets.verification import RULES, evaluate_pairs, load_pair_protocol
from arface_repro.eval.protocols import register_kind
from arface_repro.eval.protocols.base import ImageRequest, Protocol
from arface_repro.eval.protocols.spec import load_spec


@register_kind("pairs")
class PairProtocol(Protocol):
    """One pair list, k folds, the insightface accuracy rule (or the LFW-official ± figure)."""

    @classmethod
    def pair_format(cls):
        spec = load_spec(cls.name)
        return get_pair_format(spec.format, f"{spec.path}: format")

    @classmethod
    def add_arguments(cls, p) -> None:
        g = p.add_argument_group(f"{cls.name} options")
        g.add_argument("--pairs", metavar="FILE", help=cls.pair_format().help + cls.layout_default("pairs"))
        cls.add_rule_argument(g, "accuracy rule: insightface (± = np.std, default) or lfw-official (± = standard error)")
        cls.add_flip_argument(g)

    def check_options(self) -> None:
        other = [r for r in self.spec.rules if r not in RULES]
        if other:
            raise ConfigError(f"{self.spec.path}: rule: {', '.join(other)} is not a rule of the pair protocols "
                              f"({', '.join(RULES)})")

    def pair_list(self):
        path = self.path("pairs", self.opts.pairs, option="pairs")
        return load_pair_protocol(self.name, path)

    def images(self) -> ImageRequest:
        fmt = self.pair_format()
        if fmt.embeds_images:   # the pair file holds the images (an insightface .bin)
            path = self.path("pairs", self.opts.pairs, option="pairs")
            names, encoded = fmt.encoded_images(path)
            images = decode_rgb_images(encoded, str(path))
            return ImageRequest(None, list(names), arrays=images, what=f"images of {path.name}")
        if self.data_root is None:
            raise ConfigError("--model needs --data-root (the folder the pair list's image paths are relative to)")
        return ImageRequest(self.data_root, self.pair_list().unique_paths())

    def evaluate(self, store) -> dict:
        pl = self.pair_list()
        out = evaluate_pairs(store, pl, rule=self.rule(), flip=self.flip_mode(store))
        self.sidecar_arrays = out["arrays"]  # per-pair cosine scores, labels and folds: written beside the record
        return self.record(out["metrics"], per_fold=out["per_fold"], curves=out["curves"],
                           extra={"counts": out["counts"], "tar_rule": out["tar_rule"], "flip": out["flip"],
                                  "per_pair": out["per_pair"]})
