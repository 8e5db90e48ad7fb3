"""`load_model(spec)`: a model spec string (or an in-memory torch module) to an `EmbeddingModel`.

A spec `NAME:REST` selects the model kind registered under NAME (`arface_repro.models.kinds`, one module per kind:
`torch:ARCH:PATH`, `torchscript:PATH`, `onnx:PATH`, `tflite:PATH`, `arface:CKPT[,mask=on|off]`, `opencv:PATH`,
`caffe:NET.prototxt:WEIGHTS.caffemodel`, `tfgraph:MODEL.pb`; each module's docstring says what it reads); else a
model preset NAME (`protocols/models/NAME.yaml`, `arface_repro.models.presets`: backend, architecture and
preprocessing of a known checkpoint family, e.g. `facenet-20180408:graph_final.pb`); a bare file is the kind of its
suffix (`*.onnx`, `*.tflite`). Nothing named by a spec is imported: the prefix only selects a registry entry.

Every model: `model.embed(uint8 N×H×W×3 RGB, landmarks=None) -> float32 N×D` (`embedding_model.EmbeddingModel`).

Layering: `backbones` (architectures, state dicts) → `method` (the ARFace inference network) → `models` (this
package: the model kinds and their file readers) → `eval`. Inside `models`, `backends` sits on `presets`, which sits
on `kinds`, which sit on the model classes (`embedding_model`, `torch_model`, `opencv_backend`, `caffe_net`,
`tf_graph_net`, `arface_model`) and their readers; no module imports one above it.
"""

from __future__ import annotations

import os
from pathlib import Path

from arface_repro.backbones.registry import list_models
from arface_repro.errors import ConfigError
from arface_repro.models import presets
from arface_repro.models.embedding_model import EmbeddingModel
from arface_repro.models.kinds import get_kind, kind_of_file, syntaxes
from arface_repro.models.preprocess import GENERIC, Preprocess
from arface_repro.models.torch_model import TorchModel
from arface_repro.utils.devices import check_device
from arface_repro.utils.hashing import sha256_file


def parse_spec(spec: str) -> tuple[str, str | None, Path]:
    """A spec naming one model file -> (kind, argument text or None, path): 'torch:ARCH:PATH' -> ('torch', 'ARCH',
    PATH); 'arface:CKPT,mask=off' -> ('arface', 'mask=off', CKPT); 'onnx:PATH' / a bare *.onnx -> ('onnx', None,
    PATH). Kinds whose specs name several files (opencv, caffe) and presets are a ConfigError."""
    head, sep, rest = spec.partition(":")
    kind = get_kind(head) if sep else None
    if kind is not None:
        if kind.parse is None:
            raise ConfigError(f"model spec {spec!r}: a {head}: spec may name several files; expected a spec of one "
                              f"model file ({syntaxes()})")
        return (kind.name, *kind.parse(rest, spec))
    if sep and head and not Path(spec).exists() and not presets.is_preset(head):
        raise ConfigError(_unknown_prefix(spec, head))  # 'NAME:FILE' with NAME neither a kind nor a preset
    kind = kind_of_file(spec)
    if kind is not None:
        return kind.name, None, Path(spec)
    raise ConfigError(f"model spec {spec!r}: expected {syntaxes()} or PRESET:PATH (presets: protocols/models/*.yaml)")


def _unknown_prefix(spec: str, head: str) -> str:
    """Why 'HEAD:FILE' names no model: HEAD is an architecture (needs torch:), or nothing known."""
    if head in list_models():
        fix = f"torch:{head}:FILE for a PyTorch checkpoint of that architecture"
        near = [p for p in presets.list_presets() if p.startswith(head)]
        if near:
            fix += f", or the preset {near[0]}:FILE"
        return f"model spec {spec!r}: {head!r} is an architecture, not a backend or preset; use {fix}"
    return (f"model spec {spec!r}: {head!r} is not a backend nor a preset (arface list-models); expected "
            f"{syntaxes()} or PRESET:PATH")


def load_model(spec, device=None, preprocess: Preprocess | str | dict | None = None,
               trust_torchscript: bool = False) -> EmbeddingModel:
    """An EmbeddingModel from a spec string (see module docstring), an EmbeddingModel (returned as is) or an
    in-memory torch nn.Module. `preprocess` overrides the kind's default (a Preprocess, a dict or a
    'key=value,...' string). `trust_torchscript`: the spec is the user's own (typed on the command line), so a
    `torchscript:` spec may run the program it names; otherwise such a spec is a ConfigError."""
    if isinstance(spec, EmbeddingModel):
        return spec
    check_device(device)  # every kind: a device that does not exist here is refused before loading
    if not isinstance(spec, (str, os.PathLike)):
        import torch

        if isinstance(spec, torch.nn.Module):
            pre = preprocess if isinstance(preprocess, Preprocess) else GENERIC.with_overrides(preprocess)
            return TorchModel.from_module(spec, type(spec).__name__, pre, device)
        raise ConfigError(f"cannot load a model from {type(spec).__name__}")
    spec = str(spec)
    head, sep, rest = spec.partition(":")
    kind = get_kind(head) if sep else None
    if kind is None and sep and presets.is_preset(head):
        return presets.load_preset_model(spec, device=device, preprocess=preprocess)
    if kind is None:  # a bare file: the kind of its suffix (parse_spec says why when there is none)
        name, _, _ = parse_spec(spec)
        kind, rest = get_kind(name), spec
        if kind is None:  # parse_spec names registered kinds only
            raise ConfigError(f"model spec {spec!r}: no model kind {name!r}")
    return kind.load(spec, rest, preprocess=preprocess, device=device, trust_torchscript=trust_torchscript)


def file_sha256_of(spec) -> str:
    """Hash of the file behind a spec string (without loading the network)."""
    return sha256_file(parse_spec(str(spec))[2])


__all__ = ["load_model", "parse_spec", "file_sha256_of"]
