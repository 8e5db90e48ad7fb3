"""IJB-B / IJB-C 1:1 verification and 1:N identification (insightface's `ijb_11.py` / `ijb_1n.py`).

Files come from `protocols/<name>.yaml` under `--data-root` (the IJB release folder, e.g. IJB_release/IJBC:
`meta/ijbc_*.txt|csv` and `loose_crop/`), or from `--meta-dir`. With `--model`, every image of
`loose_crop/` is warped to the 112×112 ArcFace template from its 5 points in `*_name_5pts_score.txt`
before it is embedded (and flipped, unless --flip none).
"""

from __future__ import annotations

from pathlib import Path

from arface_repro.errors import ConfigError, MissingDataError
from arface_repro.eval.ijb.meta import load_ijb_meta_files, read_1n_csv
from arface_repro.eval.protocols import register_kind
from arface_repro.eval.protocols.base import ImageRequest, Protocol
from arface_repro.utils.argtypes import non_negative_int


class IJBBase(Protocol):
    shards = True
    features_help = "feature store .npz of the IJB images (paths name.jpg or loose_crop/name.jpg; raw features)"

    @classmethod
    def add_common_ijb(cls, g) -> None:
        g.add_argument("--meta-dir", metavar="DIR",
                       help="folder with the meta files (default <data-root>/meta; file names as in protocols/"
                            f"{cls.name}.yaml)")
        g.add_argument("--image-norm", action="store_true", help="L2-normalise each image before pooling (default off)")
        g.add_argument("--no-faceness", action="store_true", help="do not weight images by their faceness score")
        cls.add_flip_argument(g)

    def meta_file(self, role: str, required: bool = True) -> Path | None:
        """A meta file: <meta-dir>/<its file name>, or <data-root>/<layout path>."""
        rel = self.spec.file(role)
        if self.opts.meta_dir:
            p = Path(self.opts.meta_dir) / Path(rel).name
            if not p.exists():
                if required:
                    raise MissingDataError(f"{p}: {self.name} {role} not found")
                return None
            self.files[role] = str(p)
            return p
        return self.path(role, required=required, option="meta-dir")

    def meta(self, need_pairs: bool):
        return load_ijb_meta_files(self.meta_file("face_tid_mid"), self.meta_file("name_5pts_score", required=False),
                                   self.meta_file("template_pair_label") if need_pairs else None)

    def combine(self, store):
        from arface_repro.eval.ijb.metric import CombineOptions  # numba kernels at import time: only when evaluating

        return CombineOptions(flip=self.flip_mode(store), normalize=self.opts.image_norm,
                              faceness=not self.opts.no_faceness)

    def images(self) -> ImageRequest:
        if self.data_root is None:
            raise ConfigError("--model needs --data-root (the IJB folder holding loose_crop/)")
        meta = self.meta(need_pairs=False)
        if meta.landmarks is None:
            raise MissingDataError(f"{self.name}: aligning the loose crops needs {self.spec.file('name_5pts_score')}")
        crops = self.spec.file("images")
        return ImageRequest(self.data_root, [f"{crops}/{n}" for n in meta.images.tolist()], align=meta.landmarks,
                            what=f"{self.name} loose crops")


@register_kind("ijb-1:1")
class IJB11(IJBBase):
    """IJB-B / IJB-C 1:1 (every `kind: ijb-1:1` definition)."""

    @classmethod
    def add_arguments(cls, p) -> None:
        g = p.add_argument_group(f"{cls.name} options")
        cls.add_common_ijb(g)
        cls.add_rule_argument(g, "TAR@FAR rule of the headline metrics (both are stored; default nearest = insightface)")
        g.add_argument("--curve-points", type=non_negative_int, default=2000, help="ROC points kept in the record (0 = none)")
        cls.add_scale_arguments(p)

    def evaluate(self, store) -> dict:
        from arface_repro.eval.ijb import metric as ijb  # numba kernels at import time: only when evaluating

        meta = self.meta(need_pairs=True)
        opts = self.combine(store)
        res = ijb.evaluate_11(store, meta, opts=opts, backend=self.backend, ctx=self.ctx,
                              max_memory_gb=self.max_memory_gb, max_curve_points=self.opts.curve_points)
        rule = self.rule()
        other = "strict" if rule == "nearest" else "nearest"
        return self.record(ijb.metrics_from(res, rule), rule=rule, curves={"roc": res["roc"]} if res["roc"] else None,
                           extra={"metrics_other_rule": {"rule": other, "metrics": ijb.metrics_from(res, other)},
                                  "counts": {"templates": res["n_templates"], "pairs": res["n_pairs"],
                                             "genuine": res["n_genuine"]},
                                  "image_combination": opts.label, "flip": opts.flip,
                                  "arithmetic": "insightface ijb_11.py: float32 images/media, float64 templates and scores"})


@register_kind("ijb-1:n")
class IJB1N(IJBBase):
    """IJB-B / IJB-C 1:N (every `kind: ijb-1:n` definition)."""

    @classmethod
    def add_arguments(cls, p) -> None:
        g = p.add_argument_group(f"{cls.name} options")
        cls.add_common_ijb(g)
        cls.add_rule_argument(g, "insightface (ijb_1n.py: one gallery G1+G2; default) or open-set (G1, G2 apart, "
                            "TPIR at FPIR from non-mated probes)")
        cls.add_scale_arguments(p)

    def evaluate(self, store) -> dict:
        from arface_repro.eval.ijb import one_to_n as ijb_1n  # numba kernels at import time: only when evaluating

        meta = self.meta(need_pairs=False)
        gal = {"G1": read_1n_csv(self.meta_file("gallery_1")), "G2": read_1n_csv(self.meta_file("gallery_2"))}
        probes = read_1n_csv(self.meta_file("probe"))
        opts = self.combine(store)
        rule = self.rule()
        res = ijb_1n.evaluate_1n_store(store, meta, gal, probes, rule=rule, opts=opts, backend=self.backend,
                                       ctx=self.ctx, max_memory_gb=self.max_memory_gb)
        metrics = {k: 100.0 * v for k, v in res["metrics"].items()}
        per = {g: {k: (100.0 * v if not k.startswith("n_") else v) for k, v in d.items()}
               for g, d in res["per_gallery"].items()}
        return self.record(metrics, rule=rule, extra={"per_gallery": per, "image_combination": opts.label,
                                                      "flip": opts.flip})

