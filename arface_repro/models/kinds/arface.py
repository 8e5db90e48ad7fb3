"""`arface:CKPT[,mask=on|off]` — a model trained by `arface train`, embedded as the paper evaluates it.

CKPT is a training checkpoint or a run folder (its `checkpoint_last.pt`). The network is the ARFace inference
network (`method.arface_inference`: Attention-Net, argmax input mask, Feature-Net backbone), read from the
checkpoint by `arface_model` (which says what is read and how). `mask=off` embeds the unmasked input with the
backbone (ablation); without the option the checkpoint's config `method.inference_mask` decides.
"""

from __future__ import annotations

import re
from pathlib import Path

from arface_repro.errors import ConfigError
from arface_repro.models.embedding_model import EmbeddingModel
from arface_repro.models.kind import ModelKind, existing_model_file

OPTIONS = {"mask": ("on", "off")}
RUN_CHECKPOINT = "checkpoint_last.pt"


def parse(rest: str, spec: str) -> tuple[str | None, Path]:
    """'PATH[,mask=off]' (the part after 'arface:') -> (options text or None, checkpoint path).

    Options are peeled from the right as long as they are `key=value` with a key of `OPTIONS`; a run folder
    stands for its `checkpoint_last.pt`."""
    parts = rest.split(",")
    opts: list[str] = []
    while len(parts) > 1 and re.fullmatch(r"\s*[A-Za-z_]+\s*=.*", parts[-1]):
        key = parts[-1].split("=", 1)[0].strip()
        if key not in OPTIONS:
            raise ConfigError(f"model spec {spec!r}: unknown arface option {key!r}; known: "
                              + ", ".join(f"{k}={'|'.join(v)}" for k, v in OPTIONS.items()))
        opts.insert(0, parts.pop().strip())
    path = ",".join(parts)
    if not path:
        raise ConfigError(f"model spec {spec!r}: expected arface:CKPT (a training checkpoint or a run folder)")
    p = Path(path)
    if p.is_dir():
        p = p / RUN_CHECKPOINT
    return (",".join(opts) or None), p


def parse_options(text: str | None, spec: str) -> dict:
    out: dict = {}
    for item in filter(None, (s.strip() for s in (text or "").split(","))):
        key, _, value = (s.strip() for s in item.partition("="))
        if key not in OPTIONS or value not in OPTIONS[key]:
            raise ConfigError(f"model spec {spec!r}: option {item!r}; expected "
                              + ", ".join(f"{k}={'|'.join(v)}" for k, v in OPTIONS.items()))
        out[key] = value
    return out


def load(spec: str, rest: str, *, preprocess=None, device=None, trust_torchscript: bool = False) -> EmbeddingModel:
    options, path = parse(rest, spec)
    existing_model_file(path, spec)
    mask = parse_options(options, spec).get("mask")
    # arface_model imports torch and the method's networks at module level: imported when such a model is loaded
    from arface_repro.models.arface_model import ARFaceModel

    return ARFaceModel.from_checkpoint(path, spec, mask, preprocess, device)


KIND = ModelKind("arface", "arface:CKPT", load, parse=parse, in_presets=False)
