"""`torch.load(weights_only=True)` with one-line errors: the only way this package reads a PyTorch file.

weights_only loading never runs code from the file: it rebuilds tensors and plain containers (dict, list,
tuple, str, numbers, None) and refuses everything else. Its refusals come in two kinds, told apart here:
a file that names Python objects (a pickled class or function: possibly hostile, never loaded), and a file
that is not a torch.save / pickle stream at all (text, truncated, another format).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from arface_repro.errors import FormatError, MissingDataError


def _first_line(exc: BaseException) -> str:
    """What torch's refusal found, without its boilerplate (which suggests re-running with weights_only off)."""
    text = str(exc)
    for marker in ("Trying to load unsupported", "Unsupported global:", "Unsupported operand", "WeightsUnpickler error:"):
        if marker in text:
            text = text[text.index(marker):]
            break
    else:
        if "Weights only load failed" in text:
            text = ""
    text = text.split("Check the documentation of torch.load")[0].replace("WeightsUnpickler error:", "")
    return " ".join(text.split())[:200] or type(exc).__name__


def torch_load_safe(path: str | os.PathLike, what: str = "PyTorch checkpoint"):
    """The object in a torch.save file, loaded with weights_only=True; FormatError/MissingDataError otherwise."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: {what} file not found")
    import warnings

    try:
        with warnings.catch_warnings():  # "Detected pickle protocol N": the file is refused or read all the same
            warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported global" in text or "GLOBAL" in text:
            raise FormatError(f"{path}: the {what} stores Python objects besides tensors and plain containers "
                              f"({_first_line(exc)}); such files are never unpickled, since reading them could run "
                              f"code from the file. Re-save its state_dict with torch.save(model.state_dict(), ...)") from None
        raise FormatError(f"{path}: not a readable {what} (not a torch.save file, or corrupt: {_first_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - truncated zip, empty file, foreign format: RuntimeError, EOFError, ValueError, ...
        raise FormatError(f"{path}: not a readable {what} (truncated or not a torch.save file: "
                          f"{type(exc).__name__}: {_first_line(exc)})") from None
