"""A PyTorch checkpoint's state dict, read safely and loaded strictly into a registry architecture.

`read_checkpoint(path)`: the state dict of a `torch.save` file read with `weights_only=True`
(`arface_repro.utils.safe_load`), from a bare state dict or a checkpoint dict holding one under one of
`CONTAINER_KEYS`; the wrapper prefixes `PREFIXES` are stripped. `build_torch_model(arch, sd, path, **kwargs)`: the
registry architecture with `sd` loaded strictly (missing/unexpected keys and shape mismatches are a ConfigError
listing them). `parse_arch('mobilefacenet,embedding_size=512')`: the architecture text of `torch:ARCH:PATH` specs
and presets. `state_dict_sha256`: the hash of an in-memory network.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

from arface_repro.backbones.registry import create_model, list_models
from arface_repro.errors import ConfigError, FormatError
from arface_repro.utils.safe_load import torch_load_safe

CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "backbone", "net")
PREFIXES = ("module.", "_orig_mod.", "model.", "backbone.")


def state_dict_sha256(sd) -> str:
    """sha256 over names, shapes, dtypes and bytes of a state dict (the hash of an in-memory model)."""
    import torch

    h = hashlib.sha256()
    for k, v in sd.items():
        a = v.detach().cpu().contiguous()
        h.update(f"{k}|{tuple(a.shape)}|{a.dtype}|".encode())
        h.update(a.view(-1).view(torch.uint8).numpy().tobytes() if a.numel() else b"")
    return h.hexdigest()


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The state dict inside a PyTorch checkpoint file, prefixes stripped; clear errors for bad files."""
    obj = torch_load_safe(path, "PyTorch checkpoint")
    return strip_prefixes(unwrap_state_dict(obj, path))


def unwrap_state_dict(obj, path) -> dict:
    import torch

    for _ in range(4):
        if isinstance(obj, torch.nn.Module):
            obj = obj.state_dict()
        if not isinstance(obj, Mapping):
            raise FormatError(f"{path}: expected a state dict or a checkpoint dict, got {type(obj).__name__}")
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        for k in CONTAINER_KEYS:
            if k in obj:
                obj = obj[k]
                break
        else:
            raise FormatError(f"{path}: no state dict found: top-level keys are {sorted(map(str, obj))[:10]}; "
                              f"expected tensors or one of {', '.join(CONTAINER_KEYS)}")
    raise FormatError(f"{path}: no state dict found (nested too deeply)")


def strip_prefixes(sd: dict) -> dict:
    """Remove DataParallel/compile/wrapper prefixes; from a model+head checkpoint keep the `backbone.` part."""
    changed = True
    while changed and sd:
        changed = False
        for p in PREFIXES:
            if all(k.startswith(p) for k in sd):
                sd = {k[len(p):]: v for k, v in sd.items()}
                changed = True
            elif p == "backbone." and any(k.startswith(p) for k in sd):
                sd = {k[len(p):]: v for k, v in sd.items() if k.startswith(p)}
                changed = True
            elif p == "model." and any(k.startswith(p) for k in sd) and all(k.startswith((p, "head.")) for k in sd):
                # a Lightning module's checkpoint (AdaFace): the network under `model.`, the margin head under `head.`
                sd = {k[len(p):]: v for k, v in sd.items() if k.startswith(p)}
                changed = True
    return sd


def _shown(items, n=5) -> str:
    return ", ".join(map(str, items[:n])) + (f" … ({len(items)} in all)" if len(items) > n else "")


def build_torch_model(arch: str, sd: dict, path, **kwargs):
    """Registry model `arch` with checkpoint `sd` loaded strictly (embedding_size read from sd if not given)."""
    model = create_model(arch, **kwargs)
    infer = getattr(model, "kwargs_from_state_dict", None)  # e.g. the IR flavour told by its keys, or the size
    extra = {k: v for k, v in (infer(sd) if callable(infer) else {}).items() if k not in kwargs}  # of a stored classifier
    if extra:
        kwargs = {**kwargs, **extra}
        model = create_model(arch, **kwargs)
    if "embedding_size" not in kwargs and getattr(model, "embedding_size", None):
        msd = model.state_dict()
        d = model.embedding_size
        diff = [k for k, v in msd.items() if k in sd and v.ndim >= 1 and v.shape[0] == d
                and sd[k].ndim == v.ndim and sd[k].shape[0] != d and sd[k].shape[1:] == v.shape[1:]]
        if diff:
            model = create_model(arch, embedding_size=int(sd[diff[-1]].shape[0]), **kwargs)
    msd = model.state_dict()
    missing = [k for k in msd if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in msd]
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(v.shape)}"
              for k, v in msd.items() if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_shown(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_shown(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es): {_shown(shapes, 3)}")
        raise ConfigError(f"{path}: checkpoint does not fit architecture {arch!r} ({'; '.join(parts)}). "
                          f"Is it a checkpoint of another architecture? Registered: {', '.join(list_models())}")
    full = dict(sd)
    for k in msd:
        if k not in full:  # only num_batches_tracked (unused at inference) may be absent
            full[k] = msd[k]
    model.load_state_dict(full, strict=True)
    return model


def parse_arch(text: str) -> tuple[str, dict]:
    """'mobilefacenet,embedding_size=512' -> ('mobilefacenet', {'embedding_size': 512})."""
    name, *rest = [s.strip() for s in text.split(",")]
    kwargs: dict[str, int | float | str] = {}
    for item in rest:
        if "=" not in item:
            raise ConfigError(f"model spec: architecture argument {item!r} is not key=value")
        k, v = item.split("=", 1)
        for conv in (int, float):
            try:
                kwargs[k] = conv(v)
                break
            except ValueError:
                continue
        else:
            kwargs[k] = v
    return name, kwargs
