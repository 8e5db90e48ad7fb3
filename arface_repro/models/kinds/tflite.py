"""`tflite:PATH` (or a bare `*.tflite`) — ai-edge-litert (optional extra `[tflite]`), NHWC, fixed or dynamic batch.

Default preprocessing: GENERIC, at the input size the file declares.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from arface_repro.errors import ConfigError, FormatError
from arface_repro.models.embedding_model import EmbeddingModel, layout_from_shape
from arface_repro.models.kind import ModelKind, existing_model_file, single_file
from arface_repro.models.preprocess import GENERIC, for_network
from arface_repro.utils.hashing import sha256_file

parse = single_file("tflite")


class TfliteModel(EmbeddingModel):
    kind = "tflite"

    def __init__(self, path: Path, spec: str, preprocess=None, device=None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ConfigError("tflite models need ai-edge-litert: pip install 'arface_repro[tflite]'") from None
        try:
            self.interpreter = Interpreter(model_path=str(path))
            self.interpreter.allocate_tensors()
        except Exception as exc:  # noqa: BLE001 - the runtime raises its own types; re-raised as a one-line error
            raise FormatError(f"{path}: not a loadable TFLite model ({str(exc).splitlines()[0][:300]})") from None
        ins = self.interpreter.get_input_details()
        if len(ins) != 1:
            raise FormatError(f"{path}: expected one network input, found {len(ins)}")
        self.inp = ins[0]
        self.out = self.interpreter.get_output_details()[0]
        if self.inp["dtype"] != np.float32:
            raise FormatError(f"{path}: input is {np.dtype(self.inp['dtype']).name}; only float32 inputs are supported")
        sig = [int(v) for v in self.inp.get("shape_signature", self.inp["shape"])]
        layout, fixed, hw = layout_from_shape(sig, spec)
        if layout != "NHWC":
            raise FormatError(f"{path}: TFLite input shape {sig} is not N×H×W×3")
        self._current: tuple[int, ...] | None = None  # the input shape the interpreter is allocated for
        pre = for_network(spec, GENERIC, preprocess, hw)
        super().__init__(spec, pre, sha256_file(path), fixed_batch=fixed, embedding_size=int(self.out["shape"][-1]))

    def _run(self, x: np.ndarray) -> np.ndarray:
        it = self.interpreter
        if self.fixed_batch is None and self._current != x.shape:
            it.resize_tensor_input(self.inp["index"], list(x.shape))
            it.allocate_tensors()
            self._current = x.shape
        try:
            it.set_tensor(self.inp["index"], np.ascontiguousarray(x, dtype=np.float32))
            it.invoke()
        except Exception as exc:  # noqa: BLE001 - the runtime raises its own types; re-raised as a one-line error
            raise ConfigError(f"{self.spec}: TFLite failed on input {x.shape}: {str(exc).splitlines()[0][:300]}") from None
        return it.get_tensor(self.out["index"]).copy()


def load(spec: str, rest: str, *, preprocess=None, device=None, trust_torchscript: bool = False) -> TfliteModel:
    _, path = parse(rest, spec)
    existing_model_file(path, spec)
    return TfliteModel(path, spec, preprocess, device)


KIND = ModelKind("tflite", "tflite:PATH", load, parse=parse, suffixes=(".tflite",))
