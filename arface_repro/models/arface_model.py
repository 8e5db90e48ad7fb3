"""The `arface:CKPT` model: an `arface train` checkpoint read into the ARFace inference network (an EmbeddingModel).

Paper: "during inference, the test input face was still masked by Attention-Net". For each image the Attention-Net
scores the 5 landmark patches, the most probable of the 31 keep/drop modes is taken (argmax), the normalised input
is multiplied by that mode's mask M, and the Feature-Net backbone embeds the masked input. Feature maps are not
masked at inference (the paper: "the mask is not applied on feature maps during inference"). This is the
computation of the trainer's own `Trainer.embed`, step for step:

    x = (image − data.pixel_mean) / data.pixel_std                    (RGB, N×3×H×W)
    boxes = patches.patch_boxes(landmarks, method.patch_radius, H, W)
    mode = argmax AttentionNet(x, boxes);  keep = the mode's keep flags
    embedding = backbone(x · drop_mask(boxes, keep, H, W))

Spec: `arface:PATH[,mask=on|off]` (the kind module `arface_repro.models.kinds.arface`). PATH is a training checkpoint
or a run folder (its `checkpoint_last.pt`). The network is `method.arface_inference.ARFaceInference`. The checkpoint
is read with `weights_only=True` (`training_checkpoint.read_training_checkpoint`); the backbone is the registry
architecture `config.model.name` (+ `config.model.kwargs`) with the `backbone.*` entries of `fnet`,
the Attention-Net `AttentionNet(method.attention.patch_size, method.attention.channels)` with `attn`. Normalisation
is the config's `data.pixel_mean` / `data.pixel_std` ((x − 127.5)/128 when a config lacks them).

`mask=off` embeds the unmasked input with the backbone (ablation); without the option the config's
`method.inference_mask` decides (true unless the run said otherwise). A checkpoint without an Attention-Net
(methods plain, random, cutout, dropblock) is embedded by its backbone alone. `identity()["attention_mask"]`
says which: `argmax`, `off`, or `none (no Attention-Net: method M)`; so do the embedding cache keys.

Patch centres: `embed(images, landmarks)` takes the 5 points in the images' pixels (`landmarks.txt` of
`arface align`, IJB's 5-point files; for a flip test, `data.alignment.mirror_landmarks` of the flipped images, so a
flipped image gets its own mask); `None` = the aligned template of the images' size (see `input_landmarks`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from arface_repro.backbones.state_dict import build_torch_model
from arface_repro.errors import ConfigError, FormatError
from arface_repro.method.arface_inference import ARFaceInference
from arface_repro.method.attention_net import AttentionNet
from arface_repro.models.embedding_model import EmbeddingModel, resolve_device
from arface_repro.models.input_landmarks import network_landmarks
from arface_repro.models.preprocess import Preprocess
from arface_repro.models.training_checkpoint import read_training_checkpoint
from arface_repro.utils.hashing import sha256_file

FALLBACK_MEAN, FALLBACK_STD = 127.5, 128.0
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _entry(cfg: dict, dotted: str, path, default=None, required: bool = False):
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if required:
                raise FormatError(f"{path}: training checkpoint config lacks {dotted!r}")
            return default
        node = node[part]
    return node


def _flag(cfg: dict, dotted: str, path, default: bool) -> bool:
    """A true/false entry of the checkpoint's config: a real boolean only (the text 'false' would be true)."""
    v = _entry(cfg, dotted, path, default)
    if not isinstance(v, bool):
        raise FormatError(f"{path}: training checkpoint config {dotted} must be true or false, got {v!r}")
    return v


def _number(cfg: dict, dotted: str, path, default: float, positive: bool = False) -> float:
    """A number entry of the checkpoint's config: int or float (not a bool or text), finite in float32."""
    v = _entry(cfg, dotted, path, default)
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and abs(v) <= FLOAT32_MAX
    if not ok or (positive and v <= 0):
        raise FormatError(f"{path}: training checkpoint config {dotted} must be a finite{' positive' if positive else ''} "
                          f"number within float32's range, got {v!r}")
    return float(v)


def _state_dict(obj, what: str, path) -> dict:
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise FormatError(f"{path}: the {what!r} entry of the training checkpoint is not a state dict")
    return obj


def load_training_model(path, mask: str | None = None) -> tuple[ARFaceInference, dict]:
    """(ARFaceInference in eval mode, facts) from an `arface train` checkpoint; facts: attention_mask, method,
    patch_radius, pixel_mean, pixel_std, step, model name, config name (the config's `name`)."""
    ck = read_training_checkpoint(path)
    cfg = ck["config"]
    name = _entry(cfg, "model.name", path, required=True)
    if not isinstance(name, str):
        raise FormatError(f"{path}: config model.name must be a string, got {type(name).__name__}")
    kwargs = _entry(cfg, "model.kwargs", path) or {}
    if not isinstance(kwargs, dict):
        raise FormatError(f"{path}: config model.kwargs must be a mapping")
    fnet = _state_dict(ck.get("fnet"), "fnet", path)
    sd = {k[len("backbone."):]: v for k, v in fnet.items() if k.startswith("backbone.")}
    if not sd:
        raise FormatError(f"{path}: the 'fnet' state dict has no 'backbone.*' entries")
    backbone = build_torch_model(name, sd, path, **kwargs)
    method = str(_entry(cfg, "method.kind", path, "plain"))
    radius = _number(cfg, "method.patch_radius", path, 30.0, positive=True)
    attention = None
    if method == "arface" and ck.get("attn") is not None:
        a = _entry(cfg, "method.attention", path, {}) or {}
        try:
            c1, c2 = (int(c) for c in a.get("channels", (16, 32)))  # two widths, else ValueError below
            attention = AttentionNet(int(a.get("patch_size", 24)), (c1, c2))
            attention.load_state_dict(_state_dict(ck["attn"], "attn", path), strict=True)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise FormatError(f"{path}: the Attention-Net ('attn') does not fit method.attention {a}: "
                              f"{str(exc).splitlines()[0][:300]}") from None
    if attention is None:
        if mask == "on":
            raise ConfigError(f"{path}: mask=on, but this checkpoint has no Attention-Net (method {method})")
        state = f"none (no Attention-Net: method {method})"
    else:
        use = (mask == "on") if mask is not None else _flag(cfg, "method.inference_mask", path, True)
        state = "argmax" if use else "off"
        if not use:
            attention = None
    net = ARFaceInference(backbone, attention, radius).eval()
    config_name = cfg.get("name") if isinstance(cfg, dict) else None
    facts = {"attention_mask": state, "method": method, "patch_radius": radius, "model": name,
             "config": str(config_name) if config_name is not None else None,
             "pixel_mean": _number(cfg, "data.pixel_mean", path, FALLBACK_MEAN),
             "pixel_std": _number(cfg, "data.pixel_std", path, FALLBACK_STD, positive=True), "step": int(ck["step"])}
    return net, facts


class ARFaceModel(EmbeddingModel):
    """`arface:CKPT` as an EmbeddingModel (see the module docstring)."""

    kind = "arface"

    def __init__(self, net: ARFaceInference, spec: str, preprocess: Preprocess, file_sha256: str, facts: dict,
                 device=None):
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval()
        self.facts = dict(facts)
        self.attention_mask = self.facts["attention_mask"]
        self.uses_landmarks = net.attention is not None
        super().__init__(spec, preprocess, file_sha256, embedding_size=getattr(net.backbone, "embedding_size", None))

    @classmethod
    def from_checkpoint(cls, path, spec: str, mask: str | None = None, preprocess=None, device=None) -> ARFaceModel:
        """`mask`: 'on', 'off' or None (the checkpoint's config decides); see `load_training_model`."""
        net, facts = load_training_model(path, mask)
        base = Preprocess(mean=facts["pixel_mean"], std=facts["pixel_std"])
        pre = preprocess if isinstance(preprocess, Preprocess) else base.with_overrides(preprocess)
        return cls(net, spec, pre, sha256_file(path), facts, device)

    def __repr__(self) -> str:
        return f"ARFaceModel({self.spec!r}, attention_mask={self.attention_mask}, preprocess={self.preprocess.key()})"

    def identity(self) -> dict:
        out = super().identity()
        # config name, backbone and method: what tells a paper cell whether this is the row's model
        out.update(attention_mask=self.attention_mask, patch_radius=self.facts["patch_radius"],
                   config=self.facts.get("config"), model=self.facts.get("model"), method=self.facts.get("method"))
        return out

    def _run(self, x: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(self.device)
        lm = None if landmarks is None else torch.from_numpy(np.ascontiguousarray(landmarks)).to(self.device)
        try:
            with torch.inference_mode():
                out = self.net(t, lm)
        except RuntimeError as exc:
            raise ConfigError(f"{self.spec}: the network failed on input {tuple(t.shape)} (N×C×H×W): "
                              f"{str(exc).splitlines()[0]}") from exc
        return out.float().cpu().numpy()

    def modes(self, batch: np.ndarray, landmarks=None) -> np.ndarray:
        """The argmax mode (0..30, `patches.mode_keep_table`) per image; empty when no mask is applied."""
        if self.net.attention is None:
            return np.zeros(0, np.int64)
        x = self.preprocess(batch, name=f"input to {self.spec}")
        lm = network_landmarks(landmarks, batch.shape[1:3], self.preprocess, len(x), f"input to {self.spec}")
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(self.device)
        with torch.inference_mode():
            return self.net.modes(t, torch.from_numpy(lm).to(self.device))[0].cpu().numpy()
