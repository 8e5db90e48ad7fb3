"""The process-group variables a launcher (torchrun, `train.spawn`) sets: WORLD_SIZE, RANK, LOCAL_RANK.

Read in one place and checked: a value that is not a whole number in range (WORLD_SIZE=abc, RANK=-1, RANK >=
WORLD_SIZE) is a ConfigError naming the variable, not a ValueError traceback from deep inside a run.
"""

from __future__ import annotations

import os

from arface_repro.errors import ConfigError


def env_int(name: str, default: int, lo: int = 0) -> int:
    """The integer value of environment variable `name` (default when unset), at least `lo`."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        v = int(text.strip())
    except ValueError:
        raise ConfigError(f"environment variable {name}={text!r} is not an integer (it is set by the launcher, "
                          f"e.g. torchrun)") from None
    if v < lo:
        raise ConfigError(f"environment variable {name}={v} must be >= {lo}")
    return v


def world_size() -> int:
    return env_int("WORLD_SIZE", 1, lo=1)


def rank() -> int:
    r, w = env_int("RANK", 0), world_size()
    if r >= w:
        raise ConfigError(f"environment variable RANK={r} must be below WORLD_SIZE={w}")
    return r


def local_rank() -> int:
    return env_int("LOCAL_RANK", rank())
