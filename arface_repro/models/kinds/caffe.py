"""`caffe:NET.prototxt:WEIGHTS.caffemodel` — a Caffe deploy network run in PyTorch by the package's own reader
(`caffe_net`; OpenCV 5 has no Caffe importer). Default preprocessing: BGR, at the size the prototxt declares."""

from __future__ import annotations

from arface_repro.errors import ConfigError, MissingDataError
from arface_repro.models.embedding_model import EmbeddingModel
from arface_repro.models.kind import ModelKind
from arface_repro.models.opencv_backend import split_spec


def load(spec: str, rest: str, *, preprocess=None, device=None, trust_torchscript: bool = False) -> EmbeddingModel:
    fmt, files = split_spec(rest) if ":" in rest else (None, [])
    if fmt != "caffe":
        raise ConfigError(f"model spec {spec!r}: expected caffe:NET.prototxt:WEIGHTS.caffemodel")
    for f in files:
        if not f.is_file():
            raise MissingDataError(f"{f}: model file not found (spec {spec!r})")
    from arface_repro.models.caffe_net import load_caffe_model  # imports torch at module level

    return load_caffe_model(spec, files[0], files[1], preprocess, device)


KIND = ModelKind("caffe", "caffe:NET.prototxt:WEIGHTS.caffemodel", load)
