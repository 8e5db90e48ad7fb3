"""RMFRD (Real-World Masked Face Recognition Dataset): this package's protocol `arface-rmfrd/1`
(`arface_repro.eval.rmfrd.metric`)."""

from __future__ import annotations

from arface_repro.errors import ConfigError
from arface_repro.eval.image_list import list_images
from arface_repro.eval.protocols import register_kind
from arface_repro.eval.protocols.base import ImageRequest, Protocol
from arface_repro.eval.rmfrd import metric as rmfrd


@register_kind("rmfrd")
class RMFRD(Protocol):
    name = "rmfrd"
    summary = "RMFRD: masked probes vs unmasked gallery, TAR@FAR and rank-1 (this package's protocol)"
    shards = True
    features_help = "feature store .npz (paths .../AFDB_masked_face_dataset/<person>/... and .../AFDB_face_dataset/...)"

    @classmethod
    def add_arguments(cls, p) -> None:
        g = p.add_argument_group("rmfrd options")
        cls.add_flip_argument(g)
        cls.add_scale_arguments(p)

    def images(self) -> ImageRequest:
        if self.data_root is None:
            raise ConfigError("--model needs --data-root (holding AFDB_masked_face_dataset/ and AFDB_face_dataset/)")
        paths = []
        for role in ("masked", "unmasked"):
            d = self.spec.file(role)
            paths += [f"{d}/{p}" for p in list_images(self.data_root / d)]
        return ImageRequest(self.data_root, paths, what="RMFRD images")

    def evaluate(self, store) -> dict:
        flip = self.flip_mode(store)
        res = rmfrd.evaluate(store, flip=flip, unmasked_dir=self.spec.file("unmasked").rsplit("/", 1)[-1],
                             masked_dir=self.spec.file("masked").rsplit("/", 1)[-1], backend=self.backend,
                             ctx=self.ctx, max_memory_gb=self.max_memory_gb)
        return self.record(rmfrd.metrics_from(res), extra={"counts": {k: v for k, v in res.items() if k.startswith("n_")},
                                                           "flip": flip})
