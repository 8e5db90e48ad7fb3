"""One check of a command's output locations, made before any work starts.

Every command that writes files calls `check_outputs(outputs, inputs)` right after parsing its arguments, so
that a bad location costs nothing (no feature extraction, BLUFR trials or training lost at the end) and no
output can destroy an input. An output is refused, with a one-line ConfigError naming the option and path, when

* it is an existing folder (a file output) or an existing file (a folder output);
* a component of its parent is a file, or the folder it goes into cannot be written (a probe file is
  created and removed there: this also holds for root and for read-only file systems);
* it is an input (same path, a link to it, or the same file), or it lies inside an input folder;
* it is a folder that receives files named after an input's relative paths (`tree`, e.g. `arface align`'s
  output folder) and an input lies inside it;
* two outputs of the same command are the same file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from arface_repro.errors import ConfigError


@dataclass(frozen=True)
class Output:
    """An output location: `path`, the option that named it (`what`), a 'file' or a 'dir', and `tree`: a folder
    that receives files named after the inputs' relative paths (so no input may lie inside it)."""

    path: str | os.PathLike
    what: str
    kind: str = "file"
    tree: bool = False


def _real(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return p.absolute()


def _inside(path: Path, folder: Path) -> bool:
    return path != folder and folder in path.parents


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _nearest_existing(p: Path) -> Path:
    probe = p
    while not os.path.lexists(probe):
        if probe.parent == probe:
            break
        probe = probe.parent
    return probe


def _probe_writable(folder: Path) -> str | None:
    """None when a file can be created in `folder`, else the reason."""
    try:  # an unnamed file where the system allows it (O_TMPFILE), else one removed at once
        with tempfile.TemporaryFile(dir=folder, prefix=".arface-write-probe-"):
            pass
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def _check_location(out: Output) -> None:
    p = Path(out.path)
    label = f"{out.what} {p}"
    if str(out.path).strip() == "":
        raise ConfigError(f"{out.what}: empty path")
    if out.kind == "file":
        if p.is_dir():
            raise ConfigError(f"{label}: is a folder; give a file path")
        if str(out.path).endswith(("/", os.sep)):
            raise ConfigError(f"{label}: names a folder; give a file path")
        folder = p.parent
    else:
        if os.path.lexists(p) and not p.is_dir():
            raise ConfigError(f"{label}: is a file, not a folder")
        folder = p
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise ConfigError(f"{label}: {base} is a file, so the folder {folder} cannot be made")
    why = _probe_writable(base)
    if why is not None:
        raise ConfigError(f"{label}: cannot write in {base} ({why})")


def check_outputs(outputs: Iterable[Output], inputs: Iterable[str | os.PathLike | None] = ()) -> None:
    """Raise ConfigError (one line naming the option and path) when an output location is bad (module docstring)."""
    outs = [o for o in outputs if o is not None and o.path is not None]
    ins = [(Path(i), _real(Path(i))) for i in inputs if i is not None and str(i) != ""]
    for out in outs:
        _check_location(out)
    seen: dict[Path, Output] = {}
    for out in outs:
        p = Path(out.path)
        real = _real(p)
        for given, src in ins:
            if _same(real, src):
                raise ConfigError(f"{out.what} {p}: is the input {given}; it would be written over. "
                                  f"Choose an output outside the inputs")
            if src.is_dir() and _inside(real, src):
                raise ConfigError(f"{out.what} {p}: lies inside the input folder {given}. "
                                  f"Choose an output outside the inputs")
            if out.kind == "dir" and out.tree and _inside(src, real):
                raise ConfigError(f"{out.what} {p}: the input {given} lies inside this output folder, whose files "
                                  f"could overwrite it. Choose an output outside the inputs")
        if out.kind == "file":
            other = seen.get(real)
            if other is not None:
                raise ConfigError(f"{out.what} {p}: is also the output of {other.what}")
            seen[real] = out


def spec_files(spec: str | None) -> list[Path]:
    """The existing files a model spec names (`onnx:F`, `torch:ARCH:F`, `opencv:A.pb:B.pbtxt`, `PRESET:F`, `F`)."""
    if not spec:
        return []
    parts = str(spec).split(":")
    cands = [":".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)]
    out: list[Path] = []
    for c in cands:
        for head in {c, c.split(",")[0]}:
            p = Path(head)
            if not head or not os.path.lexists(p):
                continue
            # a run folder (`arface:RUN_DIR`) is read for its checkpoint_last.pt only
            q = p / "checkpoint_last.pt" if p.is_dir() else p
            if q not in out:
                out.append(q)
    return out
