"""`onnx:PATH` (or a bare `*.onnx`) — onnxruntime, given the file as read by `onnx_file.read_onnx`.

External data is read only from inside the model's folder; NCHW or NHWC is read from the input shape, as are a fixed
batch size (the last batch is zero-padded and the padding rows dropped) and a fixed H×W. The preprocessing is the
one the file names in its metadata (`onnx_file.PREPROCESS_METADATA`, written by `arface export-onnx`), else
GENERIC. An optional second input `landmarks` (N×5×2, network-input pixels) is fed from the landmarks given to
`embed`: an exported ARFace model. Without onnxruntime installed, the file is run by OpenCV (`opencv_backend`).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np

from arface_repro.errors import ConfigError, FormatError
from arface_repro.models.embedding_model import EmbeddingModel, layout_from_shape
from arface_repro.models.kind import ModelKind, existing_model_file, single_file
from arface_repro.models.onnx_file import LANDMARKS_INPUT, PREPROCESS_METADATA, read_onnx
from arface_repro.models.opencv_backend import OpenCVModel
from arface_repro.models.preprocess import GENERIC, Preprocess, for_network

parse = single_file("onnx")


def _declared_preprocess(session, path) -> Preprocess:
    """The preprocessing an ONNX file names in its metadata (written by `arface export-onnx`), else GENERIC."""
    text = session.get_modelmeta().custom_metadata_map.get(PREPROCESS_METADATA)
    if not text:
        return GENERIC
    try:
        fields = json.loads(text)
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
        return Preprocess(**values)
    except (ValueError, TypeError, AttributeError, ConfigError) as exc:
        raise FormatError(f"{path}: metadata {PREPROCESS_METADATA!r} is not a valid preprocessing ({exc})") from None


class OnnxModel(EmbeddingModel):
    kind = "onnx"

    def __init__(self, path: Path, spec: str, preprocess=None, device=None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("onnx models need onnxruntime: pip install 'arface_repro[onnx]'") from None
        providers = ["CPUExecutionProvider"]
        if str(device or "").startswith("cuda") or (device is None and "CUDAExecutionProvider" in ort.get_available_providers()):
            providers.insert(0, "CUDAExecutionProvider")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        # no busy-waiting worker threads: on a shared CPU, spinning made runs 2× slower (measured, 2 cores)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")

        onnx_file = read_onnx(path)  # external data checked and inlined: onnxruntime never opens a file itself
        try:
            self.session = ort.InferenceSession(onnx_file.data, sess_options=opts, providers=providers)
        except Exception as exc:  # noqa: BLE001 - the runtime raises its own types; re-raised as a one-line error
            raise FormatError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:300]})") from None
        inputs = self.session.get_inputs()
        # an optional second input 'landmarks' (N×5×2, network-input pixels): an exported ARFace model
        self.landmarks_name = inputs[1].name if len(inputs) == 2 and inputs[1].name == LANDMARKS_INPUT else None
        self.uses_landmarks = self.landmarks_name is not None
        if len(inputs) != 1 and not self.uses_landmarks:
            raise FormatError(f"{path}: expected one network input (and optionally '{LANDMARKS_INPUT}'), "
                              f"found {[i.name for i in inputs]}")
        inp = inputs[0]
        if inp.type != "tensor(float)":
            raise FormatError(f"{path}: input {inp.name!r} is {inp.type}; only float32 image inputs are supported")
        self.input_name = inp.name
        self.output_name = self.session.get_outputs()[0].name
        self.layout, fixed, hw = layout_from_shape(inp.shape, spec)
        pre = for_network(spec, _declared_preprocess(self.session, path), preprocess, hw)
        out_shape = self.session.get_outputs()[0].shape
        d = out_shape[1] if len(out_shape) >= 2 and isinstance(out_shape[1], int) else None
        super().__init__(spec, pre, onnx_file.sha256, fixed_batch=fixed, embedding_size=d)

    def _run(self, x: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        if self.layout == "NCHW":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        feeds = {self.input_name: x}
        if self.landmarks_name is not None:
            feeds[self.landmarks_name] = np.ascontiguousarray(landmarks, dtype=np.float32)
        try:
            return self.session.run([self.output_name], feeds)[0]
        except Exception as exc:  # noqa: BLE001 - the runtime raises its own types; re-raised as a one-line error
            raise ConfigError(f"{self.spec}: onnxruntime failed on input {x.shape} ({self.layout}): "
                              f"{str(exc).splitlines()[0][:300]}") from None


def load(spec: str, rest: str, *, preprocess=None, device=None, trust_torchscript: bool = False) -> EmbeddingModel:
    _, path = parse(rest, spec)
    existing_model_file(path, spec)
    if importlib.util.find_spec("onnxruntime") is None:  # no onnxruntime: run the file with OpenCV
        return OpenCVModel("onnx", [path], spec, preprocess, device)
    return OnnxModel(path, spec, preprocess, device)


KIND = ModelKind("onnx", "onnx:PATH", load, parse=parse, suffixes=(".onnx",))
