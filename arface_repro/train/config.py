"""Training configs: nested dicts read from YAML, merged over `DEFAULTS`, with `key.sub=value` overrides.

Unknown keys are errors (a typo must not silently fall back to a default). Values the paper states are
marked in the experiment YAMLs under `configs/`; everything else is a documented choice.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from arface_repro.errors import ConfigError

DEFAULTS: dict[str, Any] = {
    "name": "unnamed",
    "seed": 0,
    "out_dir": None,  # default: runs/<name>
    "model": {"name": "mobilefacenet", "kwargs": {}},
    "head": {"name": "amsoftmax", "kwargs": {}},  # paper: AM-Softmax s=30, m=0.4
    "method": {
        "kind": "plain",  # plain | random | cutout | dropblock | arface
        "patch_radius": 30.0,  # paper: 30 at 112x112
        "num_layers": 0,  # feature-map masking: layers drawn per batch (paper: 3 MobileFaceNet, 9 ResNet50)
        "p_layer": 0.5,  # paper: "a fixed probability, which was set at 0.5"
        "layer_draw": "per_batch",  # per_batch: p_layer coin per batch, then exactly num_layers layers | per_layer
        "mask_scale": "center",  # center (binary, nearest at cell centres) | area
        "reward": "batch",  # batch (paper) | sample
        "baseline_decay": 0.99,  # paper (ENAS)
        "baseline_update": "before",  # before: b <- decay*b + (1-decay)*R, then advantage R - b (ENAS code) | after
        "entropy_weight": 0.0,
        "inference_mask": True,  # ARFace: mask the test input with the Attention-Net's argmax mode
        "attention": {"patch_size": 24, "channels": [16, 32], "optimizer": "adam", "lr": 1.0e-3, "weight_decay": 0.0},
        "cutout_size": 16,  # paper: 16x16
        "dropblock": {"block_size": 7, "final_keep_prob": 0.75, "stages": ["stage3", "stage4"]},  # paper
    },
    "data": {
        "kind": "synthetic",  # synthetic | rec | folder
        "pixel_mean": 128.0,  # paper: "each pixel was normalized by subtracting 128 and divided by 128"
        "pixel_std": 128.0,
        "path": None,  # rec: prefix of <prefix>.rec/.idx; folder: root of <identity>/<image> folders
        "landmarks_file": None,  # folder only: 5-point landmarks per image (else the template is used)
        "synthetic": {  # arguments of arface_repro.data.synthetic.SyntheticFaces
            "num_identities": 40, "images_per_identity": 24, "occluded": True, "occluded_patch": "nose",
            "occlusion_rate": 0.5, "part_size": 24, "jitter": 2.0, "variation": 0.35, "noise_std": 6.0, "group_size": 1,
        },
        "val": {"num_identities": 20, "images_per_identity": 10, "num_pairs": 300},
        "num_workers": 0,  # DataLoader decoding processes for rec/folder sets (same batch order as 0)
    },
    "train": {
        "batch_size": 64,  # GLOBAL batch (split evenly over processes)
        "steps": 200,
        "optimizer": "sgd",  # sgd | adamw
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 5.0e-4,
        "warmup_steps": 0,
        "schedule": "cosine",  # cosine | multistep | constant
        "milestones": [],  # fractions of `steps` (multistep)
        "gamma": 0.1,
        "amp": True,  # used on CUDA only
        "device": "auto",
        "log_every": 10,
        "eval_every": 0,  # 0: only at the end
        "ckpt_every": 0,  # 0: only at the end
        "grad_clip": 0.0,
        "resume": None,  # path to a checkpoint, or "auto" (out_dir/checkpoint_last.pt when present)
        "quiet": False,
    },
}

METHODS = ("plain", "random", "cutout", "dropblock", "arface")


def _merge(base: dict, over: Mapping, where: str) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if k not in out:
            raise ConfigError(f"{where}: unknown config key {k!r}; expected one of {sorted(out)}")
        if isinstance(out[k], dict) and k not in ("kwargs",):
            if not isinstance(v, Mapping):
                raise ConfigError(f"{where}: key {k!r} must be a mapping, got {v!r}")
            out[k] = _merge(out[k], v, f"{where}:{k}")
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, value = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(value)


def apply_overrides(cfg: dict, overrides: Iterable[str]) -> dict:
    cfg = copy.deepcopy(cfg)
    for text in overrides:
        path, value = parse_override(text)
        node = cfg
        for i, k in enumerate(path[:-1]):
            if not isinstance(node, dict) or k not in node:
                raise ConfigError(f"override {text!r}: unknown key {'.'.join(path[: i + 1])!r}")
            node = node[k]
        last = path[-1]
        if not isinstance(node, dict) or (last not in node and path[-2:-1] != ["kwargs"]):
            raise ConfigError(f"override {text!r}: unknown key {'.'.join(path)!r}")
        node[last] = value
    return cfg


def validate(cfg: dict) -> dict:
    m = cfg["method"]
    if m["kind"] not in METHODS:
        raise ConfigError(f"method.kind must be one of {METHODS}, got {m['kind']!r}")
    if m["layer_draw"] not in ("per_batch", "per_layer"):
        raise ConfigError(f"method.layer_draw must be 'per_batch' or 'per_layer', got {m['layer_draw']!r}")
    if m["baseline_update"] not in ("before", "after"):
        raise ConfigError(f"method.baseline_update must be 'before' or 'after', got {m['baseline_update']!r}")
    if m["reward"] not in ("batch", "sample"):
        raise ConfigError(f"method.reward must be 'batch' or 'sample', got {m['reward']!r}")
    if cfg["train"]["optimizer"] not in ("sgd", "adamw"):
        raise ConfigError(f"train.optimizer must be 'sgd' or 'adamw', got {cfg['train']['optimizer']!r}")
    if cfg["train"]["schedule"] not in ("cosine", "multistep", "constant"):
        raise ConfigError(f"train.schedule must be cosine|multistep|constant, got {cfg['train']['schedule']!r}")
    if cfg["data"]["kind"] not in ("synthetic", "rec", "folder"):
        raise ConfigError(f"data.kind must be synthetic|rec|folder, got {cfg['data']['kind']!r}")
    if int(cfg["train"]["batch_size"]) < 1 or int(cfg["train"]["steps"]) < 1:
        raise ConfigError("train.batch_size and train.steps must be >= 1")
    return cfg


def load_config(source: str | Path | Mapping | None = None, overrides: Iterable[str] = ()) -> dict:
    """DEFAULTS <- YAML file (or dict) <- overrides; validated."""
    if source is None:
        user: Mapping = {}
    elif isinstance(source, Mapping):
        user, where = source, "<dict>"
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            user = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(user, Mapping):
            raise ConfigError(f"{path}: top level must be a mapping")
    where = str(source) if source is not None and not isinstance(source, Mapping) else "<dict>"
    cfg = _merge(DEFAULTS, user, where)
    return validate(apply_overrides(cfg, overrides))
