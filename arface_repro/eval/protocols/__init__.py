"""Every evaluation protocol, one class each, found by name in one registry.

`get_protocol(name)` returns the class; `protocol_names()` lists them in a fixed order. Each class lives in
a module of this package (pair sets, BLUFR, IJB, MegaFace, Trillion-Pairs, YTF, RMFRD) and has a
declarative definition `protocols/<name>.yaml` (see `spec.py`). Modules import their numerical code
lazily, so listing protocols stays cheap.
"""

from __future__ import annotations

from arface_repro.errors import ConfigError

_REGISTRY: dict[str, type] = {}


def register(cls):
    """Class decorator: add a protocol class to the registry under `cls.name`."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"protocol {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    if _REGISTRY:
        return
    # import order = listing order: pair sets, BLUFR, IJB, MegaFace, Trillion-Pairs, YTF, RMFRD
    from arface_repro.eval.protocols import pairs  # noqa: F401
    from arface_repro.eval.protocols import blufr  # noqa: F401
    from arface_repro.eval.protocols import ijb  # noqa: F401
    from arface_repro.eval.protocols import megaface  # noqa: F401
    from arface_repro.eval.protocols import trillion  # noqa: F401
    from arface_repro.eval.protocols import ytf  # noqa: F401
    from arface_repro.eval.protocols import rmfrd  # noqa: F401


def protocol_names() -> list[str]:
    _load_all()
    return list(_REGISTRY)


def get_protocol(name: str):
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown protocol {name!r}; expected one of {', '.join(_REGISTRY)}") from None
