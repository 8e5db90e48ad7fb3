"""The registry of model kinds: every spec prefix the package loads, each kind in its own module.

    torch:ARCH:PATH        torch.py        a registry architecture + a PyTorch checkpoint (weights_only)
    torchscript:PATH       torchscript.py  a TorchScript program (only from a --model the user typed)
    onnx:PATH, *.onnx      onnx.py         onnxruntime (OpenCV when onnxruntime is absent)
    tflite:PATH, *.tflite  tflite.py       ai-edge-litert
    arface:CKPT[,mask=..]  arface.py       an `arface train` checkpoint: the paper's inference with the mask
    opencv:PATH            opencv.py       cv2.dnn (TF graph, ONNX, Caffe), with the package's fallbacks
    caffe:NET:WEIGHTS      caffe.py        Caffe deploy networks run in PyTorch
    tfgraph:MODEL.pb       tfgraph.py      TensorFlow frozen graphs run in PyTorch

`KINDS` below is the one list of them: `models.backends.load_model`, `parse_spec`, the presets' `backend:` values,
the paper layer's DATA.yaml prefixes and the messages are derived from it. A spec `NAME:REST` whose NAME is not a
kind may name a model preset (`protocols/models/NAME.yaml`, `models.presets`), which runs one of these kinds.
Adding a kind: a module here defining `KIND = ModelKind(...)` (`models.kind`), listed in `KINDS`, and its test.
Nothing here imports a module named by a spec or a file.
"""

from __future__ import annotations

from pathlib import Path

from arface_repro.models.kind import ModelKind
from arface_repro.models.kinds import arface, caffe, onnx, opencv, tfgraph, tflite, torch, torchscript

KINDS: dict[str, ModelKind] = {k.name: k for k in (torch.KIND, torchscript.KIND, onnx.KIND, tflite.KIND, arface.KIND,
                                                   opencv.KIND, caffe.KIND, tfgraph.KIND)}


def get_kind(name: str) -> ModelKind | None:
    """The kind registered under a spec prefix, or None."""
    return KINDS.get(name)


def kind_names() -> tuple[str, ...]:
    return tuple(KINDS)


def kind_of_file(path: str | Path) -> ModelKind | None:
    """The kind a bare file spec is, by its suffix (`model.onnx` -> onnx), or None."""
    suffix = Path(path).suffix.lower()
    return next((k for k in KINDS.values() if suffix in k.suffixes), None)


def single_file_prefixes() -> tuple[str, ...]:
    """'NAME:' of the kinds whose spec names exactly one model file (`NAME:PATH`, `torch:ARCH:PATH`)."""
    return tuple(f"{k.name}:" for k in KINDS.values() if k.parse is not None)


def preset_backends() -> tuple[str, ...]:
    """The kinds a preset's `backend:` may name."""
    return tuple(k.name for k in KINDS.values() if k.in_presets)


def syntaxes() -> str:
    """'torch:ARCH:PATH, torchscript:PATH, ...' for messages."""
    return ", ".join(k.syntax for k in KINDS.values())
