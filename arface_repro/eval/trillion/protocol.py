"""Trillion-Pairs (DeepGlint): verification TPR@FPR=1e-9 and identification TPR@FPR=1e-3 from feature
matrices (`arface_repro.eval.trillion.metric`; both metrics are this package's definitions)."""

from __future__ import annotations

from arface_repro.eval.protocols import register_kind
from arface_repro.eval.protocols.base import Protocol
from arface_repro.eval.trillion import metric as tp
from arface_repro.eval.trillion import reader as tpio
from arface_repro.io.feature_store import load_feature_store
from arface_repro.utils.argtypes import probability


@register_kind("trillion")
class TrillionPairs(Protocol):
    name = "trillion"
    summary = "Trillion-Pairs: Ver TPR@FPR=1e-9 over probe x (distractor + probe) pairs, Id TPR@FPR=1e-3"
    shards = True
    features_help = "probe feature matrix (DeepGlint .bin; default from the layout under --data-root)"

    @classmethod
    def add_arguments(cls, p) -> None:
        g = p.add_argument_group("trillion options")
        g.add_argument("--probe-labels", metavar="FILE", help="identity per probe row ('id' or 'path id' lines)")
        g.add_argument("--distractor-features", metavar="FILE", help="distractor feature matrix (.bin)")
        g.add_argument("--ver-fpr", type=probability, default=1e-9, help="verification FPR (default 1e-9)")
        g.add_argument("--id-fpr", type=probability, default=1e-3, help="identification FPR (default 1e-3)")
        cls.add_scale_arguments(p)

    def read_features(self, path):
        p = self.path("probe_features", path, option="features")
        self.files.pop("probe_features", None)
        self.provenance.features = str(p)
        if str(p).endswith(".npz"):

            return load_feature_store(p).features
        return tpio.read_features(p)

    def evaluate(self, store) -> dict:
        probes = store
        labels = tpio.read_labels(self.path("probe_labels", self.opts.probe_labels, option="probe-labels"),
                                  expected_rows=probes.shape[0])
        dis = tpio.read_features(self.path("distractor_features", self.opts.distractor_features,
                                           option="distractor-features"))
        res = tp.evaluate(probes, labels, dis, ver_fpr=self.opts.ver_fpr, id_fpr=self.opts.id_fpr,
                          backend=self.backend, ctx=self.ctx, max_memory_gb=self.max_memory_gb,
                          progress=not self.opts.quiet)
        return self.record(tp.metrics_from(res),
                           extra={"counts": {k: v for k, v in res.items() if k.startswith("n_")},
                                  "thresholds": {"ver": res["ver_threshold"], "id": res["id_threshold"]}})
