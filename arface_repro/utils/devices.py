"""Checking a device the user named (`--device`, `train.device`) before any work, with a one-line ConfigError.

`cuda:99` on a machine with one GPU, `cuda` on a machine without CUDA, or a string torch does not parse would
otherwise fail deep inside torch (RuntimeError: invalid device ordinal, no NVIDIA driver) as a traceback.
"""

from __future__ import annotations

from arface_repro.errors import ConfigError


def check_device(device, flag: str = "--device"):
    """`device` (a string or torch.device; None and 'auto' pass through unchanged) as a torch.device, after
    checking that a CUDA device exists on this machine."""
    if device is None or device == "auto":
        return device
    import torch  # the device names are torch's; imported only when one is given

    try:
        d = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"{flag} {device!r}: not a device name (cpu, cuda or cuda:N)") from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{flag} {device}: CUDA is not available on this machine (torch {torch.__version__})")
        n = torch.cuda.device_count()
        if d.index is not None and d.index >= n:
            raise ConfigError(f"{flag} {device}: this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1})")
    return d
