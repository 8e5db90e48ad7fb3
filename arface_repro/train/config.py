"""Training configs: nested dicts read from YAML, merged over `DEFAULTS`, with `key.sub=value` overrides.

Unknown keys are errors (a typo must not silently fall back to a default). Every value is checked for its
type and range when the config is loaded (`SCHEMA`), and an error names the file (or the override) and the
dotted key: `lr: .nan`, `batch_size: 2.7`, `steps: "ten"`, `p_layer: 7.5` or an unregistered `model.name`
never reach the trainer. Values the paper states are marked `(paper)` in the YAMLs under `configs/` (most of
them in the bases, `configs/base/`); everything else is a documented choice.

YAML (files and override values) is read by the package's one YAML reader, `utils.textfile.parse_yaml`: the safe
loader plus YAML 1.2's float rule, so `lr: 1e-3` is the number 0.001; a quoted "1e-3" stays a string and is
refused for a number key.

Bases: a config file may start from a base, `base: <name>`, and list only the keys that differ (as a mapping
merged over the base's, section by section; a `kwargs` mapping replaces the base's whole). The chain is
DEFAULTS <- deepest base <- ... <- the file <- overrides. `<name>` is a bare name (letters, digits, '_', '-')
of a file `<name>.yaml` in the folder `base/` beside the config file -- for the shipped configs that is
`configs/base/`; a base's own `base:` resolves in that same folder (and a file read from a folder named
`base/`, a base on its own, finds its bases beside it). A path, `..`, an absolute name, a
missing base, a cycle or more than `MAX_BASE_DEPTH` bases is a one-line ConfigError naming the file and the key.
(A name cannot leave the base folder; what the folder holds -- a link placed there by its owner -- is read.)
A config given as a dict has no folder: it cannot name a base. Nothing named in a config is imported or run.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from arface_repro.backbones.registry import is_model, list_models
from arface_repro.errors import ConfigError
from arface_repro.utils.textfile import parse_yaml, read_yaml

DEFAULTS: dict[str, Any] = {
    "name": "unnamed",
    "seed": 0,
    "out_dir": None,  # default: runs/<name>
    "model": {"name": "mobilefacenet", "kwargs": {}},
    "head": {"name": "amsoftmax", "kwargs": {}},  # paper: AM-Softmax s=30, m=0.4
    "method": {
        "kind": "plain",  # plain | random | cutout | dropblock | arface | fixed (diagnostic: a given mask, no policy)
        "fixed_mask": "oracle",  # kind fixed: oracle (drop the occludable patch iff the image is occluded) | drop (always)
        "patch_radius": 30.0,  # paper: 30 at 112x112
        "num_layers": 0,  # feature-map masking: layers drawn per batch (paper: 3 MobileFaceNet, 9 ResNet50)
        "p_layer": 0.5,  # paper: "a fixed probability, which was set at 0.5"
        "layer_draw": "per_batch",  # per_batch: p_layer coin per batch, then exactly num_layers layers | per_layer
        "mask_scale": "center",  # center (binary, nearest at cell centres) | area
        "reward": "batch",  # batch (paper) | sample
        "baseline_decay": 0.99,  # paper (ENAS)
        "baseline_update": "before",  # before: b <- decay*b + (1-decay)*R, then advantage R - b (ENAS code) | after
        "entropy_weight": 1.0e-4,  # (choice) the paper is silent; ENAS's code (its REINFORCE recipe, [32]) uses 1e-4
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
        "synthetic": {  # arguments of arface_repro.data.occluded_faces.SyntheticFaces
            "num_identities": 40, "images_per_identity": 24, "occluded": True, "occluded_patch": "nose",
            "occlusion_rate": 0.5, "part_size": 24, "jitter": 2.0, "variation": 0.35, "noise_std": 6.0, "group_size": 1,
            "occluder_contrast": 1.5,
        },
        "val": {"num_identities": 20, "images_per_identity": 10, "num_pairs": 300},
        "num_workers": 0,  # DataLoader processes that read/decode the batches (same batch order as 0)
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
        "amp": "off",  # mixed precision: bf16 | fp16 (with a GradScaler) | off; heads and REINFORCE stay float32
        "compile": False,  # torch.compile the backbone (GPU runs; off by default)
        "memory_format": "auto",  # auto (channels_last on CUDA, contiguous on CPU) | channels_last | contiguous
        "device": "auto",
        "log_every": 10,
        "eval_every": 0,  # 0: only at the end
        "ckpt_every": 0,  # 0: only at the end
        "grad_clip": 0.0,
        "resume": None,  # path to a checkpoint, or "auto" (out_dir/checkpoint_last.pt when present)
        "quiet": False,
    },
}

METHODS = ("plain", "random", "cutout", "dropblock", "arface", "fixed")
FIXED_MASKS = ("oracle", "drop")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "multistep", "constant")
DATA_KINDS = ("synthetic", "rec", "folder")
STAGES = ("stage1", "stage2", "stage3", "stage4")
PATCHES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")


BASE_KEY = "base"
BASE_DIR = "base"        # bases of a config file live in <its folder>/base/
MAX_BASE_DEPTH = 4       # experiment -> base -> base -> base -> base; the shipped chains are at most 3 deep
_BASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


# ------------------------------------------------------------------------------------------ value checks
# Each check returns None when the value is acceptable, else the words "must be ..." for the message.
Check = Callable[[Any], "str | None"]


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def Int(lo: int | None = None, hi: int | None = None) -> Check:
    rng = f" >= {lo}" if hi is None else f" in [{lo}, {hi}]"
    def check(v):
        if not _is_int(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
            return f"an integer{rng if lo is not None else ''}"
    return check


FLOAT32_MAX = 3.4028234663852886e+38  # numpy.finfo(numpy.float32).max


def Num(lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False) -> Check:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi}")
    words = "a finite number" + (" " + " and ".join(parts) if parts else "")
    def check(v):
        # training computes in float32: 1e308 is finite in float64 but overflows there (|x| <= 3.4e38 accepted)
        if not _is_num(v) or not math.isfinite(v):
            return words
        if abs(v) > FLOAT32_MAX:
            return f"{words} within float32's range (|x| <= {FLOAT32_MAX:.4g})"
        if lo is not None and (v <= lo if lo_open else v < lo):
            return words
        if hi is not None and (v >= hi if hi_open else v > hi):
            return words
    return check


def Enum(*choices) -> Check:
    def check(v):
        if not isinstance(v, str) or v not in choices:
            return f"one of {', '.join(map(str, choices))}"
    return check


def Bool() -> Check:
    def check(v):
        if not isinstance(v, bool):
            return "true or false"
    return check


def Text(optional: bool = False, pattern: str | None = None, what: str = "a non-empty string") -> Check:
    def check(v):
        if v is None and optional:
            return None
        if not isinstance(v, str) or not v.strip() or (pattern and not re.fullmatch(pattern, v)):
            return what + (" (or null)" if optional else "")
    return check


def ListOf(item: Check, what: str, min_len: int = 0, max_len: int | None = None) -> Check:
    def check(v):
        if not isinstance(v, list) or len(v) < min_len or (max_len is not None and len(v) > max_len):
            return what
        if any(item(x) is not None for x in v):
            return what
    return check


def _plain_value(v) -> bool:
    if v is None or isinstance(v, (bool, str)) or _is_int(v):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list):
        return all(_plain_value(x) for x in v)
    return False


def _kwargs(v):
    if not isinstance(v, Mapping) or not all(isinstance(k, str) for k in v) or not all(_plain_value(x) for x in v.values()):
        return "a mapping of names to plain values (finite numbers, strings, booleans, null or lists of them)"


def _milestone(v):
    if _is_int(v) and v >= 1:
        return None
    if _is_num(v) and math.isfinite(v) and 0.0 < v < 1.0:
        return None
    return "x"


def _milestones(v):
    what = "a list of increasing milestones, each a fraction of train.steps in (0, 1) or a step number >= 1"
    if ListOf(_milestone, what)(v):
        return what
    if any(b <= a for a, b in zip(v, v[1:])):
        return what


AMP_MODES = ("bf16", "fp16", "off")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


def _amp(v):
    """bf16 | fp16 | off. YAML 1.1 reads a bare `off` as false, so false is accepted as off; true is refused
    (the old boolean meant fp16 on CUDA only: the precision is now named)."""
    if v is False or (isinstance(v, str) and v in AMP_MODES):
        return None
    if v is True:
        return "bf16, fp16 or off (true no longer picks a precision: write bf16 or fp16)"
    return "bf16, fp16 or off"


def _device(v):
    if not isinstance(v, str) or not re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?", v):
        return "auto, cpu, cuda or cuda:N"


SCHEMA: dict[str, Any] = {
    "name": Text(pattern=r"[\w][\w.+-]*", what="a run name of letters, digits, '_', '.', '+', '-' (no path separators)"),
    "seed": Int(0, 2**63 - 1),
    "out_dir": Text(optional=True),
    "model": {"name": Text(what="the name of a registered architecture"), "kwargs": _kwargs},
    "head": {"name": Enum("softmax", "sphereface", "cosface", "amsoftmax", "arcface", "combined"), "kwargs": _kwargs},
    "method": {
        "kind": Enum(*METHODS),
        "fixed_mask": Enum(*FIXED_MASKS),
        "patch_radius": Num(0.0, lo_open=True),
        "num_layers": Int(0),
        "p_layer": Num(0.0, 1.0),
        "layer_draw": Enum("per_batch", "per_layer"),
        "mask_scale": Enum("center", "area"),
        "reward": Enum("batch", "sample"),
        "baseline_decay": Num(0.0, 1.0),
        "baseline_update": Enum("before", "after"),
        "entropy_weight": Num(0.0),
        "inference_mask": Bool(),
        "attention": {"patch_size": Int(4), "channels": ListOf(Int(1), "a list of 2 integers >= 1", 2, 2),
                      "optimizer": Enum("adam", "sgd"), "lr": Num(0.0, lo_open=True), "weight_decay": Num(0.0)},
        "cutout_size": Int(1, 112),
        "dropblock": {"block_size": Int(1), "final_keep_prob": Num(0.0, 1.0, lo_open=True),
                      "stages": ListOf(Enum(*STAGES), f"a non-empty list of {', '.join(STAGES)}", 1)},
    },
    "data": {
        "kind": Enum(*DATA_KINDS),
        "pixel_mean": Num(),
        "pixel_std": Num(0.0, lo_open=True),
        "path": Text(optional=True),
        "landmarks_file": Text(optional=True),
        "synthetic": {"num_identities": Int(2), "images_per_identity": Int(1), "occluded": Bool(),
                      "occluded_patch": Enum(*PATCHES), "occlusion_rate": Num(0.0, 1.0), "part_size": Int(2, 112),
                      "jitter": Num(0.0), "variation": Num(0.0), "noise_std": Num(0.0), "group_size": Int(1),
                      "occluder_contrast": Num(0.0, lo_open=True)},
        "val": {"num_identities": Int(2), "images_per_identity": Int(2), "num_pairs": Int(5)},
        "num_workers": Int(0, 256),  # reader processes: more is no machine, and a fork storm
    },
    "train": {
        "batch_size": Int(1, 1 << 20),  # the global batch; 2**64 would overflow the batch index arithmetic
        "steps": Int(1),
        "optimizer": Enum(*OPTIMIZERS),
        "lr": Num(0.0, lo_open=True),
        "momentum": Num(0.0, 1.0, hi_open=True),
        "weight_decay": Num(0.0),
        "warmup_steps": Int(0),
        "schedule": Enum(*SCHEDULES),
        "milestones": _milestones,
        "gamma": Num(0.0, lo_open=True),
        "amp": _amp,
        "compile": Bool(),
        "memory_format": Enum(*MEMORY_FORMATS),
        "device": _device,
        "log_every": Int(0),
        "eval_every": Int(0),
        "ckpt_every": Int(0),
        "grad_clip": Num(0.0),
        "resume": Text(optional=True),
        "quiet": Bool(),
    },
}


# ------------------------------------------------------------------------------------------ merging
def _merge(base: dict, over: Mapping, where: str, prefix: str = "") -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        key = f"{prefix}{k}"
        if k not in out:
            raise ConfigError(f"{where}: unknown config key {key!r}; expected one of {sorted(out)}")
        if isinstance(out[k], dict) and k != "kwargs":
            if not isinstance(v, Mapping):
                raise ConfigError(f"{where}: key {key!r} must be a mapping, got {v!r}")
            out[k] = _merge(out[k], v, where, f"{key}.")
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, value = text.split("=", 1)
    path = key.strip().split(".")
    if not all(path):
        raise ConfigError(f"override {text!r}: empty key")
    return path, parse_yaml(value, f"override {text!r}: value", ConfigError)


def apply_overrides(cfg: dict, overrides: Iterable[str], origins: dict | None = None) -> dict:
    """Set `key.sub=value` overrides; a mapping value given for a section is merged into it (its keys checked).

    `origins` (optional) receives dotted key -> the override text that set it."""
    cfg = copy.deepcopy(cfg)
    for text in overrides:
        path, value = parse_override(text)
        node = cfg
        for i, k in enumerate(path[:-1]):
            if not isinstance(node, dict) or k not in node:
                raise ConfigError(f"override {text!r}: unknown key {'.'.join(path[: i + 1])!r}")
            node = node[k]
        last = path[-1]
        in_kwargs = path[-2:-1] == ["kwargs"]
        if not isinstance(node, dict) or (last not in node and not in_kwargs):
            raise ConfigError(f"override {text!r}: unknown key {'.'.join(path)!r}")
        if isinstance(node.get(last), dict) and last != "kwargs" and not in_kwargs:
            if not isinstance(value, Mapping):
                raise ConfigError(f"override {text!r}: key {'.'.join(path)!r} is a section; give a mapping, got {value!r}")
            node[last] = _merge(node[last], value, f"override {text!r}", f"{'.'.join(path)}.")
        else:
            node[last] = value
        if origins is not None:
            origins[".".join(path)] = f"override {text!r}"
    return cfg


# ------------------------------------------------------------------------------------------ validation
def _origin(key: str, origins: Mapping[str, str], default: str) -> str:
    """Where `key` was last set: the latest setter of the key or of a key inside it, else of a section around it."""
    inside = [o for k, o in origins.items() if k == key or k.startswith(key + ".")]
    if inside:
        return inside[-1]  # origins are recorded in order: file keys first, then overrides as given
    parts = key.split(".")
    for n in range(len(parts) - 1, 0, -1):
        hit = origins.get(".".join(parts[:n]))
        if hit:
            return hit
    return default


def _check_tree(cfg: Mapping, schema: Mapping, prefix: str, origins: Mapping[str, str], default: str) -> None:
    for k, rule in schema.items():
        key = f"{prefix}{k}"
        value = cfg[k]
        if isinstance(rule, dict):
            _check_tree(value, rule, f"{key}.", origins, default)
            continue
        words = rule(value)
        if words:
            raise ConfigError(f"{_origin(key, origins, default)}: {key} must be {words}, got {value!r}")


def validate(cfg: dict, origins: Mapping[str, str] | None = None, where: str = "config") -> dict:
    """Check every key's type and range (`SCHEMA`) and the relations between keys; ConfigError names the key.

    `origins` maps dotted keys to where they were set (a file, an override) for the message; keys not in
    it are reported against `where`."""
    # the margin heads import torch: loaded when a config is validated, not by readers of the YAML dialect
    from arface_repro.backbones.heads import check_head_kwargs

    origins = origins or {}
    _check_tree(cfg, SCHEMA, "", origins, where)
    if not is_model(cfg["model"]["name"]):
        raise ConfigError(f"{_origin('model.name', origins, where)}: model.name: unknown model architecture "
                          f"{cfg['model']['name']!r}; registered: {', '.join(list_models())} (other architectures come "
                          f"from plug-ins: an installed entry point or `arface --plugin MODULE`; a config never imports code)")
    mk = cfg["model"]["kwargs"]  # the arguments every backbone of the registry takes; others: the constructor checks
    for sub, rule in (("embedding_size", Int(1)), ("dropout", Num(0.0, 1.0, hi_open=True))):
        words = rule(mk[sub]) if sub in mk else None
        if words:
            key = f"model.kwargs.{sub}"
            raise ConfigError(f"{_origin(key, origins, where)}: {key} must be {words}, got {mk[sub]!r}")
    try:
        check_head_kwargs(cfg["head"]["name"], cfg["head"]["kwargs"])
    except ConfigError as exc:
        raise ConfigError(f"{_origin('head.kwargs', origins, where)}: head.kwargs: {exc}") from None
    t = cfg["train"]
    if t["amp"] is False:  # YAML's bare `off`
        t["amp"] = "off"
    if t["warmup_steps"] > t["steps"]:
        raise ConfigError(f"{_origin('train.warmup_steps', origins, where)}: train.warmup_steps ({t['warmup_steps']}) "
                          f"must not exceed train.steps ({t['steps']})")
    d = cfg["data"]
    if d["kind"] in ("rec", "folder") and not d["path"]:
        raise ConfigError(f"{_origin('data.path', origins, where)}: data.kind={d['kind']} needs data.path")
    if d["landmarks_file"] and d["kind"] != "folder":
        raise ConfigError(f"{_origin('data.landmarks_file', origins, where)}: data.landmarks_file is for data.kind=folder "
                          f"(a .rec carries its landmarks in the record headers: arface pack-rec --landmarks)")
    return cfg


def _leaf_keys(tree: Mapping, prefix: str = "") -> Iterable[str]:
    for k, v in tree.items():
        key = f"{prefix}{k}"
        yield key
        if isinstance(v, Mapping) and k != "kwargs":
            yield from _leaf_keys(v, f"{key}.")


def _read_config_file(path: Path) -> Mapping:
    """The top-level mapping of one config file (UTF-8, size, nesting and alias bounds of the YAML reader)."""
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    user = read_yaml(path, "config file", ConfigError)
    if user is None:  # an empty (or truncated-to-nothing) file would silently train the defaults
        raise ConfigError(f"{path}: the config file is empty; a config names at least the run (name: ...)")
    if not isinstance(user, Mapping):
        raise ConfigError(f"{path}: top level must be a mapping")
    return user


def _base_path(name, where: Path, base_dir: Path) -> Path:
    if not isinstance(name, str) or not _BASE_NAME.fullmatch(name):
        raise ConfigError(f"{where}: key {BASE_KEY!r} must be the bare name of a file in {base_dir}/ (letters, digits, "
                          f"'_', '-'; no path, no '..', no '.yaml'), got {name!r}")
    path = base_dir / f"{name}.yaml"
    if not path.is_file():
        have = sorted(p.stem for p in base_dir.glob("*.yaml")) if base_dir.is_dir() else []
        raise ConfigError(f"{where}: key {BASE_KEY!r}: no base {name!r} ({path} does not exist; bases resolve only in "
                          f"{base_dir}/" + (f": {', '.join(have)})" if have else ")"))
    return path


def config_chain(path: str | Path) -> list[tuple[Path, Mapping]]:
    """The files a config file is made of, deepest base first, each with its mapping (the `base` key removed)."""
    path = Path(path)
    # a file inside a folder named base/ (a base read on its own) finds its bases beside it
    base_dir = path.parent if path.parent.name == BASE_DIR else path.parent / BASE_DIR
    chain: list[tuple[Path, Mapping]] = []
    seen: list[Path] = []
    current = path
    while True:
        user = dict(_read_config_file(current))
        seen.append(current.resolve())
        if BASE_KEY not in user:
            chain.append((current, user))
            return chain[::-1]
        name = user.pop(BASE_KEY)  # `base: null` too is refused below: a base is named or the key is absent
        chain.append((current, user))
        if len(seen) > MAX_BASE_DEPTH:
            raise ConfigError(f"{current}: key {BASE_KEY!r}: more than {MAX_BASE_DEPTH} bases in the chain from {path}")
        nxt = _base_path(name, current, base_dir)
        if nxt.resolve() in seen:
            raise ConfigError(f"{current}: key {BASE_KEY!r}: base {name!r} makes a cycle "
                              f"({' -> '.join(p.name for p in seen)} -> {nxt.name})")
        current = nxt


def config_files(path: str | Path) -> list[Path]:
    """The files a config file is made of, deepest base first and the file itself last (for record keys)."""
    return [p for p, _ in config_chain(path)]


def _note_origins(origins: dict, user: Mapping, where: str) -> None:
    for key in _leaf_keys(user):  # re-inserted: the order of `origins` is the order keys were last set
        origins.pop(key, None)
        origins[key] = where


def load_config(source: str | Path | Mapping | None = None, overrides: Iterable[str] = ()) -> dict:
    """DEFAULTS <- bases <- YAML file (or dict) <- overrides; every key validated (errors name the file or override
    and the key)."""
    origins: dict[str, str] = {}
    if source is None:
        cfg, where = copy.deepcopy(DEFAULTS), "defaults"
    elif isinstance(source, Mapping):
        where = "<dict>"
        if BASE_KEY in source:
            raise ConfigError(f"{where}: key {BASE_KEY!r}: a config given as a dict cannot name a base (bases resolve "
                              f"beside a config file)")
        cfg = _merge(DEFAULTS, source, where)
        _note_origins(origins, source, where)
    else:
        where = str(source)
        cfg = DEFAULTS
        for file, user in config_chain(source):
            cfg = _merge(cfg, user, str(file))
            _note_origins(origins, user, str(file))
    cfg = apply_overrides(cfg, overrides, origins)
    return validate(cfg, origins, where)
