"""Which code, which environment: the identity that records carry and that every cache key includes.

- `code_identity()` — a sha256 over the package's own source files and the declarative `protocols/` data
  (relative path + bytes of each file, in sorted order; the same for a checkout and an installed copy), plus the git commit and a dirty flag where the
  package runs from a checkout. The hash changes when any line of the package changes, committed or not,
  so a cache keyed on it never serves a result that other code made.
- `environment()` — python, numpy, torch, torchvision, scipy, scikit-learn, onnxruntime, opencv, platform,
  CPU model and thread counts. Library versions are read from installed distribution metadata, so asking
  does not import torch or OpenCV.

Both are computed once per process (the source tree does not change under a running process).
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_info

from arface_repro.shared_data import REPO_ROOT, protocols_dir
from arface_repro.utils.cpus import usable_cpus

PACKAGE_DIR = Path(__file__).resolve().parent.parent
_SOURCE_SUFFIXES = (".py", ".yaml", ".yml", ".json", ".txt", ".cfg", ".toml")

# distribution name -> record key
_LIBRARIES = {
    "numpy": "numpy",
    "torch": "torch",
    "torchvision": "torchvision",
    "scipy": "scipy",
    "scikit-learn": "scikit-learn",
    "onnxruntime": "onnxruntime",
    "opencv-python-headless": "opencv",
    "opencv-python": "opencv-python",
    "numba": "numba",
    "protobuf": "protobuf",
    "PyYAML": "pyyaml",
}


def _tree_files(root: Path, skip: Path | None = None) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith(".")
                             and (skip is None or Path(dirpath, d).resolve() != skip))
        for name in sorted(filenames):
            if name.endswith(_SOURCE_SUFFIXES):
                out.append(Path(dirpath) / name)
    return out


def source_hash() -> str:
    """sha256 over the package's source files and the protocols/ data (paths relative to their root). The
    protocols folder in use (ARFACE_PROTOCOLS may point elsewhere) is part of the key of the cached value, so
    a hash computed while another folder was in use is never served for this one."""
    return _source_hash(protocols_dir().resolve())


@functools.lru_cache(maxsize=8)
def _source_hash(protocols: Path) -> str:
    h = hashlib.sha256()
    # an installed package carries protocols/ inside itself: hash it once, under its own label, so a checkout
    # and an install of the same code have the same identity
    for label, root in (("arface_repro", PACKAGE_DIR), ("protocols", protocols)):
        if not root.is_dir():
            continue
        for f in _tree_files(root, skip=protocols if label == "arface_repro" else None):
            rel = f.relative_to(root).as_posix()
            h.update(f"{label}/{rel}\0".encode())
            with open(f, "rb") as fh:
                h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()


def _git(*args: str) -> str | None:
    if not (REPO_ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def git_state() -> dict[str, Any]:
    """{'git_commit': sha or None, 'dirty': bool or None} for the checkout the package runs from."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no", "--", "arface_repro", "protocols")
    return {"git_commit": commit.strip() or None, "dirty": None if status is None else bool(status.strip())}


def code_identity() -> dict[str, Any]:
    """{'source_sha256', 'git_commit', 'dirty'}: what a record says made it and what cache keys include."""
    return {"source_sha256": source_hash(), **git_state()}


def code_summary() -> str:
    """One line for printouts: 'source 1197e9e4801a, git d6c5d4f009 (dirty)'."""
    ident = code_identity()
    out = f"source {ident['source_sha256'][:12]}"
    if ident["git_commit"]:
        out += f", git {ident['git_commit'][:10]}" + (" (dirty)" if ident["dirty"] else "")
    return out


def code_key() -> str:
    """A short string for cache keys: the source hash (the git state adds nothing the hash lacks)."""
    return source_hash()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


@functools.lru_cache(maxsize=1)
def _static_environment() -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpus_usable": usable_cpus(),
    }
    for dist, key in _LIBRARIES.items():
        v = _version(dist)
        if v is not None or key in ("numpy", "torch", "torchvision", "scipy", "scikit-learn", "onnxruntime", "opencv"):
            env[key] = v
    return env


def environment() -> dict[str, Any]:
    """The environment block of a record: library versions, platform, CPU model and the threads in use now."""
    env = dict(_static_environment())
    threads: dict[str, Any] = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
                               if os.environ.get(k) is not None}
    if "torch" in sys.modules:  # only report torch's pool when torch is already loaded: asking must not import it
        try:
            threads["torch"] = int(sys.modules["torch"].get_num_threads())
        except Exception:  # noqa: BLE001 - a broken torch must not break a record
            pass
    try:
        threads["blas"] = [{"api": i.get("internal_api"), "threads": i.get("num_threads")} for i in threadpool_info()]
    except Exception:  # noqa: BLE001
        pass
    env["threads"] = threads
    return env


def environment_key() -> str:
    """A short hash of the environment parts that can change a number (library versions, platform)."""
    env = _static_environment()
    parts = [f"{k}={env.get(k)}" for k in sorted(env) if k not in ("cpu_model", "cpus_usable")]
    return hashlib.sha256(";".join(parts).encode()).hexdigest()[:16]
