"""Model registry: `@register_model` names a constructor, `create_model(name, **kwargs)` builds it (like timm).

Built-in architectures (MobileFaceNet, IR-ResNet, ...) register themselves when their modules are imported;
`list_models` / `create_model` import them on first use, so other modules can add their own constructors the
same way without this file knowing about them.

Plug-ins: a config file or a model spec only ever *names* a registered architecture; nothing named in a file
is imported. Code outside the package registers architectures in one of two ways chosen by the user who
installs or types it: an installed distribution's entry point in the group `arface_repro.models` (the entry
point's module is imported, and its object called when it is callable, on first use of the registry), or an
explicit `arface --plugin MODULE` (`load_plugin`).
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import re
from collections.abc import Callable

from arface_repro.errors import ConfigError

_REGISTRY: dict[str, Callable] = {}
_BUILTIN_MODULES = ("arface_repro.backbones.mobilefacenet", "arface_repro.backbones.iresnet",
                    "arface_repro.backbones.tiny_resnet", "arface_repro.backbones.ir",
                    "arface_repro.backbones.inception_resnet_v1")
_builtins_loaded = False


def register_model(fn: Callable | None = None, *, name: str | None = None):
    """Decorator registering a model constructor under `name` (default: the function's name)."""

    def deco(f: Callable) -> Callable:
        key = name or f.__name__
        if key in _REGISTRY and _REGISTRY[key] is not f:
            raise ValueError(f"model name {key!r} is already registered by {_REGISTRY[key].__module__}")
        _REGISTRY[key] = f
        return f

    return deco(fn) if fn is not None else deco


ENTRY_POINT_GROUP = "arface_repro.models"  # the plug-in group's public name, older than this package's layout


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for mod in _BUILTIN_MODULES:
            importlib.import_module(mod)
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
                if callable(obj):
                    obj()
            except Exception as exc:
                raise ConfigError(f"model plug-in entry point {ep.name!r} ({ep.value}) failed to load: {exc}") from exc


def load_plugin(module: str) -> None:
    """Import a module the user named explicitly (`arface --plugin MODULE`); it registers its models."""
    _load_builtins()
    if not isinstance(module, str) or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", module):
        raise ConfigError(f"--plugin {module!r}: not a module name (dotted Python identifiers, e.g. mypkg.models)")
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"--plugin {module}: cannot import it: {exc}") from None


def _natural(name: str):
    """Sort key putting iresnet18 before iresnet100."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted registered model names, optionally filtered by a shell-style pattern (e.g. 'iresnet*')."""
    _load_builtins()
    names = sorted(_REGISTRY, key=_natural)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def is_model(name: str) -> bool:
    _load_builtins()
    return name in _REGISTRY


def create_model(name: str, **kwargs):
    """Build the registered model `name`; unknown names and bad keyword arguments raise ConfigError."""
    _load_builtins()
    try:
        fn = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model architecture {name!r}; registered: {', '.join(sorted(_REGISTRY, key=_natural))} "
                          f"(other architectures come from plug-ins: an installed '{ENTRY_POINT_GROUP}' entry point "
                          f"or `arface --plugin MODULE`; a config never imports code)") from None
    try:
        inspect.signature(fn).bind(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"model {name!r}: bad arguments {kwargs}: {exc}") from exc
    try:
        return fn(**kwargs)
    except (TypeError, ValueError, OverflowError, RuntimeError) as exc:  # e.g. embedding_size='abc' or -5
        if not kwargs:
            raise
        raise ConfigError(f"model {name!r} cannot be built with {kwargs}: {str(exc).splitlines()[0][:200]}") from None
