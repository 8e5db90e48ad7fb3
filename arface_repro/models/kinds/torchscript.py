"""`torchscript:PATH` — a TorchScript file taking N×3×H×W (default preprocessing: GENERIC).

Such a file is a program: it is loaded only when the caller says the spec came from the user
(`trust_torchscript=True`: `--model` typed on the command line, or `reproduce_table.py --trust-torchscript`),
never from DATA.yaml, a preset or a config.
"""

from __future__ import annotations

import warnings

from arface_repro.errors import ConfigError, FormatError
from arface_repro.models.kind import ModelKind, existing_model_file, single_file
from arface_repro.models.preprocess import GENERIC, Preprocess
from arface_repro.models.torch_model import TorchModel
from arface_repro.utils.hashing import sha256_file

parse = single_file("torchscript")


def load(spec: str, rest: str, *, preprocess=None, device=None, trust_torchscript: bool = False) -> TorchModel:
    _, path = parse(rest, spec)
    existing_model_file(path, spec)
    if not trust_torchscript:
        raise ConfigError(f"model spec {spec!r}: a TorchScript file is a program; it is loaded only from a "
                          f"--model typed on the command line (or with --trust-torchscript), never from "
                          f"DATA.yaml, a preset or a config")
    import torch

    try:
        with warnings.catch_warnings():  # torch 2.9+ marks torch.jit.load deprecated; it still loads
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - the runtime raises its own types; re-raised as a one-line error
        raise FormatError(f"{path}: not a loadable TorchScript file ({str(exc).splitlines()[0][:300]})") from None
    pre = preprocess if isinstance(preprocess, Preprocess) else GENERIC.with_overrides(preprocess)
    return TorchModel(module, spec, pre, sha256_file(path), device)


KIND = ModelKind("torchscript", "torchscript:PATH", load, parse=parse)
