"""Model presets: `protocols/models/NAME.yaml` says how a known third-party checkpoint family is run.

A spec `NAME:PATH` (`NAME:NET.prototxt:WEIGHTS.caffemodel` for Caffe) loads PATH with the preset's backend,
architecture and preprocessing, so `arface evaluate --model facenet-20180408:graph_final.pb` needs no other
model flag; a `--preprocess` given as well overrides single fields. The preset also records which crops
the checkpoint expects (`arface align --preset NAME` makes them) and the accuracy its authors report,
with the source, so a result can be put beside it (`reported_results`).

Preset file (YAML; unknown keys are errors naming the file):

    name: facenet-20180408            # = the file name without .yaml; the spec prefix
    family: facenet
    description: one line
    backend: opencv                   # a model kind (models/kinds: opencv, caffe, tfgraph, torch, onnx, tflite;
                                      #   torchscript is refused) or file (the kind of the file's extension)
    architecture: inception_resnet_v1 # torch only: a registry name, options as in torch:ARCH,k=v:PATH
    checkpoint_prefix: model.         # torch only, optional: keep the keys under this prefix (prefix removed)
    input: {size: [160, 160], color: RGB, normalization: fixed}   # normalization: a preprocess preset
                                      #   name (fixed, arcface, prewhiten) or {mean: .., std: ..}; fit: optional
    crop: {mode: box, margin: 32, size: [160, 160]}   # box: MTCNN box + margin; template: 5-point alignment
    embedding_size: 512
    reported:                         # what the authors report (percent), with where they report it
      - {benchmark: LFW, metric: accuracy, value: 99.05, protocol: "...", source: "https://..."}
    notes: free text
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from arface_repro.backbones.registry import is_model
from arface_repro.backbones.state_dict import build_torch_model, parse_arch, read_checkpoint
from arface_repro.errors import ConfigError, FormatError, MissingDataError
from arface_repro.models.embedding_model import EmbeddingModel
from arface_repro.models.kinds import KINDS, get_kind, kind_of_file, preset_backends
from arface_repro.models.preprocess import PRESETS, Preprocess
from arface_repro.models.torch_model import TorchModel
from arface_repro.shared_data import protocols_dir
from arface_repro.utils.hashing import sha256_file
from arface_repro.utils.textfile import read_yaml

BACKENDS = (*preset_backends(), "file")  # a registered model kind (`models.kinds`), or `file`: the kind of its suffix
TOP_KEYS = {"name", "family", "description", "backend", "architecture", "checkpoint_prefix", "input", "crop",
            "embedding_size", "reported", "notes"}
INPUT_KEYS = {"size", "color", "normalization", "fit"}
CROP_KEYS = {"mode", "margin", "size", "detector"}
REPORTED_KEYS = {"benchmark", "metric", "value", "protocol", "source", "training_set"}
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class Preset:
    name: str
    family: str
    description: str
    backend: str
    architecture: str | None
    checkpoint_prefix: str | None
    input: dict
    crop: dict
    embedding_size: int | None
    reported: list = field(default_factory=list)
    notes: str = ""
    path: str = ""

    def preprocess(self):
        """The Preprocess of this preset's `input` block."""
        fields = {"size": tuple(self.input["size"]), "color": self.input.get("color", "RGB")}
        norm = self.input.get("normalization", "fixed")
        if isinstance(norm, str):
            if norm not in ("fixed", "arcface", "prewhiten"):
                raise ConfigError(f"{self.path}: input.normalization {norm!r}: expected fixed, arcface, prewhiten "
                                  f"or {{mean: .., std: ..}}")
            fields.update(PRESETS[norm][1])
        elif isinstance(norm, dict) and set(norm) == {"mean", "std"}:
            fields.update(mean=norm["mean"], std=norm["std"])
        else:
            raise ConfigError(f"{self.path}: input.normalization must be fixed, arcface, prewhiten or "
                              f"{{mean: .., std: ..}}, got {norm!r}")
        if "fit" in self.input:
            fields["fit"] = self.input["fit"]
        return Preprocess(**fields)

    def crop_settings(self) -> dict:
        """{'mode': 'box'|'template', 'margin': int, 'size': (h, w)} for `arface align`."""
        c = self.crop
        size, margin = c.get("size", self.input["size"]), c.get("margin", 0)
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and 0 < v <= 4096 for v in size)):
            raise ConfigError(f"{self.path}: crop.size must be [height, width], got {size!r}")
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < 1e4:
            raise ConfigError(f"{self.path}: crop.margin must be a number of pixels >= 0, got {margin!r}")
        return {"mode": c["mode"], "margin": int(margin), "size": tuple(size)}


def presets_dir() -> Path:
    return protocols_dir() / "models"


def list_presets() -> list[str]:
    d = presets_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def is_preset(name: str) -> bool:
    return bool(NAME.match(name)) and (presets_dir() / f"{name}.yaml").is_file()


def _check_keys(d, allowed: set, where: str) -> None:
    if not isinstance(d, dict):
        raise FormatError(f"{where}: expected a mapping, got {type(d).__name__}")
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise FormatError(f"{where}: unknown key(s) {unknown}; known: {', '.join(sorted(allowed))}")


@functools.cache
def _load(path: str, mtime_ns: int) -> Preset:
    data = read_yaml(path, "model preset")
    _check_keys(data, TOP_KEYS, path)
    for key in ("name", "backend", "input", "crop"):
        if key not in data:
            raise FormatError(f"{path}: missing key {key!r}")
    if data["name"] != Path(path).stem:
        raise FormatError(f"{path}: name {data['name']!r} differs from the file name {Path(path).stem!r}")
    if data["backend"] not in BACKENDS:
        raise FormatError(f"{path}: backend {data['backend']!r}; expected one of {', '.join(BACKENDS)}")
    if data["backend"] == "torch" and not data.get("architecture"):
        raise FormatError(f"{path}: backend torch needs an architecture")
    _check_keys(data["input"], INPUT_KEYS, f"{path}: input")
    size = data["input"].get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise FormatError(f"{path}: input.size must be [height, width], got {size!r}")
    _check_keys(data["crop"], CROP_KEYS, f"{path}: crop")
    if data["crop"].get("mode") not in ("box", "template"):
        raise FormatError(f"{path}: crop.mode must be box or template, got {data['crop'].get('mode')!r}")
    reported = data.get("reported") or []
    if not isinstance(reported, list):
        raise FormatError(f"{path}: reported must be a list")
    for i, r in enumerate(reported):
        _check_keys(r, REPORTED_KEYS, f"{path}: reported[{i}]")
        for key in ("benchmark", "metric", "value", "source"):
            if key not in r:
                raise FormatError(f"{path}: reported[{i}] lacks {key!r}")
        if not isinstance(r["value"], (int, float)):
            raise FormatError(f"{path}: reported[{i}].value must be a number (percent)")
    preset = Preset(name=data["name"], family=str(data.get("family", data["name"])),
                    description=str(data.get("description", "")), backend=data["backend"],
                    architecture=data.get("architecture"), checkpoint_prefix=data.get("checkpoint_prefix"),
                    input=dict(data["input"]), crop=dict(data["crop"]), embedding_size=data.get("embedding_size"),
                    reported=[dict(r) for r in reported], notes=str(data.get("notes", "")), path=path)
    try:
        preset.preprocess()  # validates the input block
        preset.crop_settings()
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
    return preset


def load_preset(name: str) -> Preset:
    path = presets_dir() / f"{name}.yaml"
    if not NAME.match(name) or not path.is_file():
        known = ", ".join(list_presets()) or "none"
        raise MissingDataError(f"no model preset {name!r} in {presets_dir()} (known: {known})")
    return _load(str(path), path.stat().st_mtime_ns)


def split_preset_spec(spec: str) -> tuple[Preset, str]:
    name, sep, rest = str(spec).partition(":")
    if not sep or not rest:
        raise ConfigError(f"model spec {spec!r}: expected PRESET:PATH")
    return load_preset(name), rest


def load_preset_model(spec: str, device=None, preprocess=None) -> EmbeddingModel:
    """An EmbeddingModel for `PRESET:PATH`, run by the preset's backend (a registered model kind; `file`: the kind
    of PATH's suffix); `model.preset` is the Preset and `model.spec` the whole `PRESET:PATH`."""
    preset, rest = split_preset_spec(spec)
    pre = preprocess if isinstance(preprocess, Preprocess) else preset.preprocess().with_overrides(preprocess)
    backend = preset.backend
    if backend == "torchscript":  # a preset is a data file: it never makes the package run a program
        raise ConfigError(f"preset {preset.name}: backend torchscript is not loaded from a preset (a TorchScript "
                          f"file is a program); type torchscript:{rest} on the command line to run a file you trust")
    model: EmbeddingModel
    if backend == "torch":  # the preset names the architecture, and may keep a sub-dict of the checkpoint
        path = Path(rest)
        sd = read_checkpoint(path)
        p = preset.checkpoint_prefix
        if p and any(k.startswith(p) for k in sd):  # `read_checkpoint` already strips the usual wrapper prefixes
            sd = {k[len(p):]: v for k, v in sd.items() if k.startswith(p)}
        if not preset.architecture:  # read_preset refuses such a file; a Preset built in code may lack it
            raise ConfigError(f"preset {preset.name}: backend torch needs an architecture")
        arch, kwargs = parse_arch(preset.architecture)
        if not is_model(arch):
            raise ConfigError(f"preset {preset.name}: architecture {arch!r} is not in this installation's registry")
        model = TorchModel(build_torch_model(arch, sd, path, **kwargs), spec, pre, sha256_file(path), device)
    else:
        kind = kind_of_file(rest) if backend == "file" else get_kind(backend)
        if kind is None:
            suffixes = ", ".join(s for k in KINDS.values() for s in k.suffixes)
            raise ConfigError(f"model spec {spec!r}: preset {preset.name} (backend file) needs a file whose suffix "
                              f"names its kind ({suffixes}), got {rest!r}")
        model = kind.load(spec, rest, preprocess=pre, device=device)
        model.spec = spec
    if preset.embedding_size and model.embedding_size and model.embedding_size != preset.embedding_size:
        raise ConfigError(f"{rest}: the network gives {model.embedding_size}-d embeddings; preset {preset.name} "
                          f"expects {preset.embedding_size}-d (a checkpoint of another family?)")
    model.preset = preset
    return model


def reported_results(model_or_spec) -> list[dict]:
    """The preset's reported figures (with preset name and source) for a model or spec; [] without a preset."""
    preset = getattr(model_or_spec, "preset", None)
    if preset is None and isinstance(model_or_spec, (str, os.PathLike)):
        head = str(model_or_spec).partition(":")[0]
        preset = load_preset(head) if is_preset(head) else None
    if preset is None:
        return []
    return [{"preset": preset.name, **r} for r in preset.reported]
