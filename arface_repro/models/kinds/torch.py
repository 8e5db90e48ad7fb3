"""`torch:ARCH:PATH` — a registry architecture (`arface list-models`) plus a PyTorch checkpoint.

The checkpoint is a state dict or a checkpoint dict holding one under 'state_dict' / 'model_state_dict' / 'model' /
'backbone' / 'net'; `module.`, `model.`, `backbone.`, `_orig_mod.` prefixes are stripped. Loading is strict:
missing/unexpected keys and shape mismatches are a ConfigError listing them (`backbones.state_dict`). Keyword
arguments go after the name: `torch:mobilefacenet,embedding_size=512:PATH`; without `embedding_size` it is read
from the checkpoint. Checkpoints are read with `weights_only=True` only (`arface_repro.utils.safe_load`): a file
that stores other Python objects is refused, never unpickled. Default preprocessing: the architecture's
(`preprocess.default_for_arch`).
"""

from __future__ import annotations

from pathlib import Path

from arface_repro.backbones.state_dict import build_torch_model, parse_arch, read_checkpoint
from arface_repro.errors import ConfigError
from arface_repro.models.kind import ModelKind, existing_model_file
from arface_repro.models.preprocess import Preprocess, default_for_arch
from arface_repro.models.torch_model import TorchModel
from arface_repro.utils.hashing import sha256_file


def parse(rest: str, spec: str) -> tuple[str, Path]:
    """'ARCH[,k=v]:PATH' -> (architecture text, checkpoint path); the path may contain ':'."""
    arch, sep, path = rest.partition(":")
    if not sep or not arch or not path:
        raise ConfigError(f"model spec {spec!r}: expected torch:ARCH:PATH (architectures: arface list-models)")
    return arch, Path(path)


def load(spec: str, rest: str, *, preprocess=None, device=None, trust_torchscript: bool = False) -> TorchModel:
    arch_text, path = parse(rest, spec)
    existing_model_file(path, spec)
    arch, kwargs = parse_arch(arch_text)
    module = build_torch_model(arch, read_checkpoint(path), path, **kwargs)
    base = default_for_arch(arch, getattr(module, "flavour", None))
    pre = preprocess if isinstance(preprocess, Preprocess) else base.with_overrides(preprocess)
    return TorchModel(module, spec, pre, sha256_file(path), device)


KIND = ModelKind("torch", "torch:ARCH:PATH", load, parse=parse)
