"""`tfgraph:MODEL.pb` — a TensorFlow frozen graph run in PyTorch by the package's GraphDef runner (`tf_graph_net`),
whatever OpenCV has (OpenCV 5.1 has no TensorFlow importer, and `opencv:MODEL.pb` falls back to it there)."""

from __future__ import annotations

from arface_repro.errors import MissingDataError
from arface_repro.models.embedding_model import EmbeddingModel
from arface_repro.models.kind import ModelKind, single_file

parse = single_file("tfgraph")


def load(spec: str, rest: str, *, preprocess=None, device=None, trust_torchscript: bool = False) -> EmbeddingModel:
    _, path = parse(rest, spec)
    if not path.is_file():
        raise MissingDataError(f"{path}: model file not found (spec {spec!r})")
    from arface_repro.models.tf_graph_net import load_tfgraph_model  # imports torch at module level

    return load_tfgraph_model(spec, path, preprocess, device)


KIND = ModelKind("tfgraph", "tfgraph:MODEL.pb", load, parse=parse)
