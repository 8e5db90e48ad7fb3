"""`ModelKind`: one entry of the registry of model kinds (`arface_repro.models.kinds`).

A model spec `NAME:REST` selects the kind registered under NAME (a bare file selects the kind whose `suffixes`
hold its suffix); the kind's `load(spec, rest, preprocess=, device=, trust_torchscript=)` returns an
`EmbeddingModel`. A spec only ever *selects* a registered kind: nothing named in a spec, a preset or a config is
imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from arface_repro.errors import ConfigError, MissingDataError
from arface_repro.utils.input_files import check_regular


@dataclass(frozen=True)
class ModelKind:
    name: str                   # the spec prefix: `torch` for `torch:ARCH:PATH`
    syntax: str                 # how its specs are written, for messages: `torch:ARCH:PATH`
    load: Callable              # (spec, rest, *, preprocess, device, trust_torchscript) -> EmbeddingModel
    parse: Callable | None = None  # (rest, spec) -> (argument text or None, the one model file); None: several files
    suffixes: tuple[str, ...] = ()  # a bare file with one of these suffixes (lower case) is of this kind
    in_presets: bool = True     # a preset's `backend:` may name it (not `arface`: a training checkpoint carries
    #                             its own preprocessing and architecture)


def single_file(name: str) -> Callable:
    """`parse` of a kind whose spec is `NAME:PATH`: (None, PATH); an empty PATH is a ConfigError."""
    def parse(rest: str, spec: str) -> tuple[None, Path]:
        if not rest:
            raise ConfigError(f"model spec {spec!r}: no file path after '{name}:'")
        return None, Path(rest)

    return parse


def existing_model_file(path: Path, spec: str) -> Path:
    """`path` if it is a regular file; MissingDataError if absent; FormatError for a FIFO, device or folder."""
    if not path.exists():
        raise MissingDataError(f"{path}: model file not found (spec {spec!r})")
    check_regular(path, "model file")  # a FIFO or device would block or never end
    return path
