"""Every evaluation protocol, found by name in one registry built from the definitions `protocols/<name>.yaml`.

`get_protocol(name)` returns the class; `protocol_names()` lists them in the definitions' `order`. Each
definition names its family (`kind`); a family is one package of `arface_repro.eval` holding its file
reader, its metric and its protocol class (`eval/pair_sets/`, `eval/blufr/`, `eval/ijb/`, `eval/megaface/`,
`eval/trillion/`, `eval/ytf/`, `eval/rmfrd/`); the class sits in the package's `protocol` module,
registered with `@register_kind`. A protocol whose class adds nothing to its family's (every pair set) has
no class of its own: it is made from the definition. A protocol with its own class registers it with
`@register` under its name. This package is the framework only: the registry (here), the base class
(`base`), the definition reader (`spec`) and the option parser (`options`).

The `protocol` modules are found with `pkgutil` over the subpackages of `arface_repro.eval` (no list of
them to keep). A `protocol` module imports its metric lazily where the metric pulls numba at import time
(BLUFR, IJB), so listing protocols stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

import arface_repro.eval
from arface_repro.errors import ConfigError
from arface_repro.eval.protocols.spec import load_spec, spec_names

_REGISTRY: dict[str, type] = {}
_KINDS: dict[str, type] = {}
_MADE: dict[tuple[str, str, str], type] = {}   # classes made from definitions: (file, kind, title) -> class
FAMILY_MODULE = "protocol"   # the module of a family package that holds its protocol class(es)
_loaded = False


def register(cls):
    """Class decorator: add a protocol class to the registry under `cls.name`."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"protocol {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def register_kind(kind: str):
    """Class decorator: the class that evaluates every definition with `kind: <kind>`."""
    def deco(cls):
        if kind in _KINDS and _KINDS[kind] is not cls:
            raise ValueError(f"protocol kind {kind!r} registered twice")
        cls.kind = kind
        _KINDS[kind] = cls
        return cls
    return deco


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for package in family_packages():
        importlib.import_module(f"{package}.{FAMILY_MODULE}")
    _loaded = True


def family_packages() -> list[str]:
    """The subpackages of `arface_repro.eval` that have a `protocol` module, sorted by name."""
    found = []
    for mod in pkgutil.iter_modules(arface_repro.eval.__path__, prefix="arface_repro.eval."):
        if mod.ispkg and importlib.util.find_spec(f"{mod.name}.{FAMILY_MODULE}") is not None:
            found.append(mod.name)
    return sorted(found)


def protocol_names() -> list[str]:
    """Every protocol with a definition, in the definitions' `order`."""
    return spec_names()


def protocol_kinds() -> list[str]:
    _load_all()
    return list(_KINDS)


def _class_of(name: str) -> type:
    spec = load_spec(name)
    family = _KINDS.get(spec.kind)
    if family is None:
        raise ConfigError(f"{spec.path}: kind: unknown protocol kind {spec.kind!r}; known: {', '.join(_KINDS)}")
    cls = _REGISTRY.get(name) or (family if family.name == name else None)
    if cls is None:   # a protocol with no class of its own: its family's, named and described by its definition
        key = (str(spec.path), spec.kind, spec.title)
        cls = _MADE.get(key)
        if cls is None:
            cls = _MADE[key] = type(family.__name__ + "_" + name.replace("-", "_"), (family,),
                                    {"name": name, "summary": spec.title, "__module__": family.__module__})
    elif not issubclass(cls, family):
        raise ConfigError(f"{spec.path}: kind: {name}'s class {cls.__name__} is not a {spec.kind} protocol")
    return cls


def get_protocol(name: str):
    _load_all()
    if name not in spec_names():
        raise ConfigError(f"unknown protocol {name!r}; expected one of {', '.join(spec_names())}")
    return _class_of(name)
