"""The `opencv:` backend: TensorFlow frozen graphs, ONNX and (OpenCV 4) Caffe models run by cv2.dnn.

The model class and what it reads from the files; the `opencv:` spec syntax and its fallbacks are the kind module
`arface_repro.models.kinds.opencv`. Specs:
- `opencv:MODEL.pb` — a TensorFlow frozen GraphDef (`cv2.dnn.readNetFromTensorflow`); `opencv:MODEL.pb:GRAPH.pbtxt`
  adds OpenCV's text graph config. OpenCV 5.1 removed that importer (and an environment may have no OpenCV):
  there `opencv:MODEL.pb` is run by the package's own GraphDef runner (`tf_graph_net`, model kind 'tfgraph',
  identity engine 'tfgraph-torch-VERSION' instead of 'opencv-VERSION'), equal to OpenCV 4's importer on the
  shared facenet graph within 1e-5 (tests/test_tf_graph_net.py); a `:GRAPH.pbtxt` config, which only OpenCV
  reads, is then an error. The runner also takes over when an OpenCV that has the importer cannot read the
  graph (OpenCV 4.10 and 4.14 reject the shared facenet graph that 4.8 and 5.0 read; `batch_note` says so).
  `tfgraph:MODEL.pb` asks for the runner whatever OpenCV has;
- `opencv:MODEL.onnx` — ONNX through OpenCV (also what a bare `*.onnx` / `onnx:` spec falls back to when
  onnxruntime is not installed), given the bytes `onnx_file.read_onnx` made self-contained: external data is
  read only from inside the model's folder, by that reader, never by OpenCV;
- `opencv:NET.prototxt:WEIGHTS.caffemodel` — Caffe through `cv2.dnn.readNetFromCaffe`. OpenCV 5 removed that
  importer; with it the spec is run by the package's own Caffe reader (`caffe_net`, model kind 'caffe').

Same `EmbeddingModel` interface as the other backends. What the file declares is used and checked:
- input size: a TF graph's Placeholder shape, an ONNX input shape, a prototxt input shape. When the file
  does not declare it, the preprocessing must give it (`--preprocess size=160x160`), else a ConfigError;
  a size different from a declared one is a ConfigError too (OpenCV can crash the process on a wrong size).
- batch: at load, two different inputs are run one by one and together; if the batch of two fails or does
  not reproduce the single outputs, the model is run one image at a time (`fixed_batch = 1`). (OpenCV 5.0
  rejects batch 2 on the shared facenet graph.) A fixed batch > 1 declared by an ONNX input is padded.
- channel order: cv2.dnn gets the blob as the preprocessing makes it (RGB unless `color=BGR`; Caffe files
  default to BGR); the blob is N×C×H×W (OpenCV's layout for TF graphs too), N×H×W×C only when an ONNX
  input declares it.
- several outputs: the first one the file declares (ONNX) or OpenCV's default output.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from arface_repro.errors import ConfigError, FormatError
from arface_repro.models.batch_probe import probe_batching, probe_images
from arface_repro.models.embedding_model import EmbeddingModel, layout_from_shape
from arface_repro.models.onnx_file import read_onnx
from arface_repro.models.preprocess import Preprocess, for_network
from arface_repro.models.tf_graphdef import declared_shape, read_graphdef
from arface_repro.utils.hashing import sha256_bytes, sha256_file

FIRST = {".pb": "tensorflow", ".onnx": "onnx", ".prototxt": "caffe"}
SECOND = {"tensorflow": (".pbtxt",), "caffe": (".caffemodel",)}


def split_spec(rest: str) -> tuple[str, list[Path]]:
    """'MODEL.pb' / 'MODEL.pb:G.pbtxt' / 'NET.prototxt:W.caffemodel' / 'M.onnx' -> (format, files).

    The split is at the ':' after a known first-file suffix, so paths may contain ':' elsewhere."""
    for i, ch in enumerate(rest):
        if ch != ":":
            continue
        first, second = rest[:i], rest[i + 1:]
        fmt = FIRST.get(Path(first).suffix.lower())
        if fmt in SECOND and Path(second).suffix.lower() in SECOND[fmt]:
            return fmt, [Path(first), Path(second)]
    fmt = FIRST.get(Path(rest).suffix.lower())
    if fmt is None:
        raise ConfigError(f"opencv spec {rest!r}: expected MODEL.pb[:GRAPH.pbtxt], MODEL.onnx or "
                          f"NET.prototxt:WEIGHTS.caffemodel")
    if fmt == "caffe":
        raise ConfigError(f"opencv spec {rest!r}: a Caffe model needs NET.prototxt:WEIGHTS.caffemodel")
    return fmt, [Path(rest)]


def has_tensorflow_importer() -> bool:
    """Whether cv2.dnn can read TensorFlow graphs (OpenCV 4.x and 5.0; not 5.1, nor an environment without cv2)."""
    try:
        import cv2
    except ImportError:
        return False
    return hasattr(getattr(cv2, "dnn", None), "readNetFromTensorflow")


def has_caffe_importer() -> bool:
    import cv2

    return hasattr(cv2.dnn, "readNetFromCaffe")


# ---------------------------------------------------------------- what the files declare


def tensorflow_input(path: Path) -> tuple[str | None, list | None]:
    """(name, NHWC shape with None for unknown dims) of the graph's single Placeholder, or (None, None)."""
    holders = [n for n in read_graphdef(path).node if n.op == "Placeholder"]
    if len(holders) != 1:
        return (holders[0].name if holders else None), None
    return holders[0].name, declared_shape(holders[0])


def onnx_io(path: Path, model) -> tuple[list | None, str | None]:
    """(shape of the single graph input with None for symbolic dims, name of the first output) of a ModelProto
    read by `onnx_file.read_onnx`."""
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise FormatError(f"{path}: expected one network input, found {[i.name for i in inputs]}")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = [int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims] or None
    out = model.graph.output[0].name if model.graph.output else None
    return shape, out


def caffe_input(prototxt: Path) -> tuple[int, ...] | None:
    # caffe_net imports torch at module level: imported here so that an `opencv:` model never needs torch
    from arface_repro.models.caffe_net import CaffeNet, read_prototxt

    return CaffeNet._declared_input(read_prototxt(prototxt))[1]


# ---------------------------------------------------------------- the backend


class OpenCVModel(EmbeddingModel):
    kind = "opencv"

    def __init__(self, fmt: str, files: list[Path], spec: str, preprocess=None, device=None):
        import cv2

        self.format, self.files = fmt, files
        self.output_name = None
        self.layout, declared_batch, hw = "NCHW", None, None
        base = Preprocess()
        shape: list | tuple[int, ...] | None  # as each format's reader declares the input
        if fmt == "tensorflow":
            _, shape = tensorflow_input(files[0])
            if shape is not None and len(shape) == 4:  # TF Placeholders are N×H×W×C; OpenCV takes N×C×H×W
                hw = (shape[1], shape[2]) if shape[1] and shape[2] else None
                if shape[3] not in (None, 3):
                    raise FormatError(f"{files[0]}: input has {shape[3]} channels; 3 (colour) expected")
        elif fmt == "onnx":
            onnx_file = read_onnx(files[0])  # external data checked and inlined: OpenCV never opens a file itself
            shape, self.output_name = onnx_io(files[0], onnx_file.model)
            if shape is not None:
                self.layout, declared_batch, hw = layout_from_shape(shape, spec)
        else:
            shape = caffe_input(files[0])
            base = Preprocess(color="BGR")
            if shape is not None and len(shape) == 4 and min(shape[2:4]) > 0:
                hw = (int(shape[2]), int(shape[3]))
        pre = for_network(spec, base, preprocess, hw, source=files[0])
        try:
            with quiet_opencv():
                if fmt == "tensorflow":
                    # OpenCV 5 has no TensorFlow importer (nor its stub); models.kinds.opencv comes here only when
                    # has_tensorflow_importer() found one in this OpenCV
                    self.net = cv2.dnn.readNetFromTensorflow(*[str(f) for f in files])  # type: ignore[attr-defined]
                elif fmt == "onnx":
                    self.net = cv2.dnn.readNetFromONNX(np.frombuffer(onnx_file.data, np.uint8))
                else:
                    # OpenCV 5 has no Caffe importer (nor its stub); models.kinds.opencv comes here only when
                    # has_caffe_importer() found one in this OpenCV
                    self.net = cv2.dnn.readNetFromCaffe(str(files[0]), str(files[1]))  # type: ignore[attr-defined]
        except cv2.error as exc:
            raise FormatError(f"{files[0]}: OpenCV {cv2.__version__} cannot read this {fmt} model: "
                              f"{_first_line(exc)}") from None
        self._set_device(device)
        digest = onnx_file.sha256 if fmt == "onnx" else sha256_file(files[0]) if len(files) == 1 else \
            sha256_bytes("".join(sha256_file(f) for f in files).encode())
        super().__init__(spec, pre, digest, fixed_batch=declared_batch if declared_batch and declared_batch > 1 else None)
        self.batch_note = self._probe_batch()

    def identity(self) -> dict:
        import cv2

        return {**super().identity(), "engine": f"opencv-{cv2.__version__}"}

    def _set_device(self, device) -> None:
        import cv2

        if device is None or str(device) == "cpu":
            return
        if not str(device).startswith("cuda"):
            raise ConfigError(f"opencv backend: device {device!r} not supported (cpu or cuda)")
        if cv2.cuda.getCudaEnabledDeviceCount() == 0:
            raise ConfigError(f"this OpenCV {cv2.__version__} build has no CUDA (device {device!r} asked for); "
                              f"use device cpu")
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        self.net.setInput(np.ascontiguousarray(x, dtype=np.float32))
        with quiet_opencv():
            out = self.net.forward(self.output_name) if self.output_name else self.net.forward()
        return np.asarray(out)

    def _run(self, x: np.ndarray) -> np.ndarray:
        import cv2

        try:
            return self._forward(x)
        except cv2.error as exc:
            raise ConfigError(f"{self.spec}: OpenCV failed on input {x.shape} (N×H×W×C): {_first_line(exc)}") from None

    def _probe_batch(self) -> str:
        """Decide whether the network runs whole batches (see module docstring); returns what was found."""
        import cv2

        if self.fixed_batch:
            n = max(2, self.fixed_batch)
            self.embedding_size = self._checked(self._run(probe_images(self.preprocess, n)), n).shape[1]
            return f"fixed batch {n} declared by the file (the last batch is zero-padded)"
        return probe_batching(self, self._forward, (cv2.error, FormatError),
                              lambda exc: f"rejected by OpenCV: {_first_line(exc)[:120]}")


@contextlib.contextmanager
def quiet_opencv():
    """OpenCV's own log lines off while a file is read or run: its failures come back as cv2.error, which the
    callers turn into one-line errors; the native `[ERROR:0@...]` lines would add to them on stderr."""
    import cv2

    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is None:  # pragma: no cover - builds without cv2.utils.logging
        yield
        return
    level = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        log.setLogLevel(level)


def _first_line(exc: BaseException) -> str:
    """The informative part of a cv2.error ('(-215:Assertion failed) ... in function ...')."""
    lines = [s.strip() for s in str(exc).splitlines() if s.strip()]
    text = next((s for s in lines if "error:" in s), lines[-1] if lines else type(exc).__name__)
    return text.split("error: ", 1)[-1]


__all__ = ["OpenCVModel", "split_spec", "tensorflow_input", "onnx_io", "caffe_input", "quiet_opencv",
           "has_caffe_importer", "has_tensorflow_importer"]
