"""YouTube Faces: 5,000 video pairs, 10-fold accuracy with folds = splits (`arface_repro.eval.ytf.metric`)."""

from __future__ import annotations

from arface_repro.errors import ConfigError
from arface_repro.eval.image_list import list_images
from arface_repro.eval.protocols import register_kind
from arface_repro.eval.protocols.base import ImageRequest, Protocol
from arface_repro.eval.ytf import metric as ytf
from arface_repro.eval.ytf.splits import check_splits, read_splits


@register_kind("ytf")
class YTF(Protocol):
    name = "ytf"
    summary = "YouTube Faces: video-pair verification, 10-fold accuracy over the 10 splits"
    features_help = "feature store .npz of the frames (paths [<frames>/]Person/videoIdx/frame.jpg)"

    @classmethod
    def add_arguments(cls, p) -> None:
        g = p.add_argument_group("ytf options")
        g.add_argument("--pairs", metavar="FILE", help="splits.txt" + cls.layout_default("splits"))
        g.add_argument("--pooling", choices=("mean", "min-dist", "mean-dist", "max-dist"), default="mean",
                       help="video comparison: mean of normalised frames (default) or min/mean/max frame-pair distance")
        cls.add_rule_argument(g, "accuracy rule (insightface k-fold)")
        cls.add_flip_argument(g)

    def splits(self):
        pairs = read_splits(self.path("splits", self.opts.pairs, option="pairs"))
        check_splits(pairs)
        return pairs

    def images(self) -> ImageRequest:
        if self.data_root is None:
            raise ConfigError("--model needs --data-root (holding the frame folders)")
        pairs = self.splits()
        frames = self.spec.file("frames")
        paths = []
        for v in sorted(set(pairs.video1) | set(pairs.video2)):
            paths += [f"{frames}/{v}/{p}" for p in list_images(self.data_root / frames / v)]
        return ImageRequest(self.data_root, paths, what="YTF frames")

    def evaluate(self, store) -> dict:
        pairs = self.splits()
        flip = self.flip_mode(store)
        res = ytf.evaluate(store, pairs, pooling=self.opts.pooling, flip=flip, prefix=self.spec.file("frames"))
        return self.record({"YTF": 100.0 * res["accuracy"]},
                           per_fold={"YTF": [100.0 * a for a in res["per_fold"]], "threshold": res["thresholds"]},
                           extra={"std": 100.0 * res["std"], "pooling": self.opts.pooling, "flip": flip,
                                  "counts": {"pairs": res["n_pairs"]}})
