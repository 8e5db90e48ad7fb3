"""`opencv:MODEL.pb[:GRAPH.pbtxt]`, `opencv:MODEL.onnx`, `opencv:NET.prototxt:WEIGHTS.caffemodel` — cv2.dnn.

The model class is `opencv_backend.OpenCVModel` (see that module for what is read from the files). Fallbacks, for
OpenCV builds without an importer: a Caffe pair is run by the package's Caffe reader (`caffe_net`, kind `caffe`),
a frozen TensorFlow graph by its GraphDef runner (`tf_graph_net`, kind `tfgraph`); the runner also takes over when
an OpenCV that has the importer cannot read the graph (`batch_note` says so). A `:GRAPH.pbtxt` config, which only
OpenCV reads, is an error without the importer.
"""

from __future__ import annotations

from arface_repro.errors import ConfigError, FormatError, MissingDataError
from arface_repro.models import opencv_backend
from arface_repro.models.embedding_model import EmbeddingModel
from arface_repro.models.kind import ModelKind


def load(spec: str, rest: str, *, preprocess=None, device=None, trust_torchscript: bool = False) -> EmbeddingModel:
    fmt, files = opencv_backend.split_spec(rest)
    for f in files:
        if not f.is_file():
            raise MissingDataError(f"{f}: model file not found (spec {spec!r})")
    # caffe_net and tf_graph_net import torch at module level: imported below only when OpenCV cannot run the file
    if fmt == "caffe" and not opencv_backend.has_caffe_importer():
        from arface_repro.models.caffe_net import load_caffe_model  # torch, only when OpenCV cannot run it

        return load_caffe_model(spec, files[0], files[1], preprocess, device)
    if fmt == "tensorflow" and not opencv_backend.has_tensorflow_importer():
        if len(files) > 1:
            raise ConfigError(f"model spec {spec!r}: this OpenCV has no TensorFlow importer, and the package's "
                              f"GraphDef runner does not read OpenCV's text graph config {files[1]}; "
                              f"give the frozen graph alone (opencv:{files[0]} or tfgraph:{files[0]})")
        from arface_repro.models.tf_graph_net import load_tfgraph_model  # torch, only when OpenCV cannot

        return load_tfgraph_model(spec, files[0], preprocess, device)
    if fmt == "tensorflow" and len(files) == 1:
        try:
            return opencv_backend.OpenCVModel(fmt, files, spec, preprocess, device)
        except FormatError as exc:  # e.g. OpenCV 4.10 and 4.14 reject the shared facenet graph that 4.8 and 5.0 read
            from arface_repro.models.tf_graph_net import load_tfgraph_model

            model = load_tfgraph_model(spec, files[0], preprocess, device)  # its own error if it cannot either
            model.batch_note += f"; run by the GraphDef runner because {str(exc)[:200]}"
            return model
    return opencv_backend.OpenCVModel(fmt, files, spec, preprocess, device)


KIND = ModelKind("opencv", "opencv:PATH", load)
