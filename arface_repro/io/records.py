"""Result records: one JSON per evaluation under `results/runs/`, written atomically.

A record holds the protocol, the reporting rule, the headline `metrics` (keys are the paper's column
headers, values in percent), the per-fold / per-trial values behind them, optional curves, the model
spec, sha256 of the inputs (feature store, protocol files), package version, the code identity (source hash,
git commit, dirty flag), the environment (library versions, platform, CPU, threads), command line and UTC time. Tables and plots read records; they never recompute.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from arface_repro import __version__
from arface_repro.errors import FormatError
from arface_repro.io.npz_file import read_npz
from arface_repro.utils.atomic import atomic_paths, write_json_atomic
from arface_repro.utils.hashing import sha256_file
from arface_repro.utils.provenance import code_identity, environment
from arface_repro.utils.textfile import read_text

RECORD_FORMAT = "arface-record/1"
DEFAULT_RUNS_DIR = Path("results") / "runs"
REQUIRED_KEYS = ("format", "protocol", "rule", "metrics", "created_utc")


SIDECAR_SUFFIX = ".scores.npz"


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays (recursively) into plain JSON types; floats keep full precision."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


PROVENANCE_KEYS = ("source_sha256", "git_commit", "dirty", "environment")  # what build_record adds to every record


def build_record(
    protocol: str,
    rule: str,
    metrics: Mapping[str, float],
    *,
    per_fold: Mapping[str, Sequence] | None = None,
    per_trial: Mapping[str, Sequence] | None = None,
    curves: Mapping[str, Any] | None = None,
    model: str | None = None,
    inputs: Mapping[str, str | os.PathLike | None] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict:
    """Assemble a record dict. `inputs` maps a role ('features', 'pairs', ...) to a file whose sha256 is stored."""
    hashed = {}
    for role, path in (inputs or {}).items():
        if path is None:
            continue
        p = Path(path)
        hashed[role] = {"path": str(p), "sha256": sha256_file(p) if p.is_file() else None}
    rec: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "protocol": protocol,
        "rule": rule,
        "metrics": dict(metrics),
        "model": model,
        "inputs": hashed,
        "package_version": __version__,
        **code_identity(),
        "environment": environment(),
        "command": [os.path.basename(sys.argv[0])] + sys.argv[1:],
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    if per_fold is not None:
        rec["per_fold"] = dict(per_fold)
    if per_trial is not None:
        rec["per_trial"] = dict(per_trial)
    if curves is not None:
        rec["curves"] = dict(curves)
    if extra:
        rec.update(extra)
    return to_jsonable(rec)


def default_record_path(record: Mapping[str, Any], runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR) -> Path:
    """`results/runs/<protocol>-<model tag>-<UTC time>.json`."""
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(record.get("model") or "features")).stem)[:40]
    stamp = re.sub(r"[^0-9T]", "", str(record["created_utc"]))[:15]
    return Path(runs_dir) / f"{record['protocol']}-{tag}-{stamp}.json"


def write_record(record: Mapping[str, Any], out: str | os.PathLike | None = None,
                 runs_dir: str | os.PathLike = DEFAULT_RUNS_DIR, arrays: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write a record atomically (to `out`, or a fresh name under `runs_dir`) and return its path.

    `arrays` (optional) go to the sidecar `<record stem>.scores.npz` beside the record (per-pair scores and labels,
    for paired tests between records); the record names it under `sidecars.scores` with its sha256 (`load_sidecar`
    checks it). Record and sidecar are one unit (`utils.atomic.atomic_paths`): both are written to temp files
    first, then the old record is removed, the sidecar renamed into place and the record renamed last. A run
    stopped between the renames leaves a sidecar without a record (nothing reads it); a failure raised there removes
    the new sidecar too; an old record never stands beside a new sidecar (and if one were put there by hand, the
    sha256 check refuses it).
    """
    missing = [k for k in PROVENANCE_KEYS if k not in record]
    if missing:  # every record is assembled by build_record, which adds these: a record without them is a bug
        raise ValueError(f"a result record without {', '.join(missing)}: assemble records with build_record")
    path = Path(out) if out is not None else default_record_path(record, runs_dir)
    if out is None:
        base, n = path, 1
        while path.exists() or (arrays and path.with_suffix(SIDECAR_SUFFIX).exists()):
            path = base.with_name(f"{base.stem}-{n}{base.suffix}")
            n += 1
    record = dict(record)
    if not arrays:
        return write_json_atomic(path, to_jsonable(record))
    side = path.with_suffix(SIDECAR_SUFFIX)
    with atomic_paths([side, path]) as (side_tmp, rec_tmp):
        with open(side_tmp, "wb") as fh:
            named: dict[str, Any] = {k: np.asarray(v) for k, v in arrays.items()}  # Any: savez's stubs type **kwds as its flags
            np.savez(fh, **named)
        record["sidecars"] = {"scores": {"path": side.name, "sha256": sha256_file(side_tmp)}}
        with open(rec_tmp, "w", encoding="utf-8") as fh:
            json.dump(to_jsonable(record), fh, indent=1, sort_keys=False, allow_nan=False)
            fh.write("\n")
    return path


def load_sidecar(record: Mapping[str, Any], name: str = "scores") -> dict[str, np.ndarray]:
    """The arrays of a record's sidecar (path relative to the record's `_path`), checked against its sha256."""
    entry = (record.get("sidecars") or {}).get(name)
    where = record.get("_path", "<record>")
    if not entry:
        raise FormatError(f"{where}: the record has no {name!r} sidecar")
    name_ = entry.get("path") if isinstance(entry, Mapping) else None
    if not isinstance(name_, str) or not name_ or name_ != Path(name_).name or name_ in (".", ".."):
        raise FormatError(f"{where}: sidecar {name!r} must be named by a bare file name beside the record, got {name_!r}")
    side = Path(where).parent / name_
    if not side.is_file():
        raise FormatError(f"{where}: sidecar {side} is missing")
    if sha256_file(side) != entry.get("sha256"):
        raise FormatError(f"{side}: sha256 differs from the one its record {where} names (changed after writing)")

    return read_npz(side, "sidecar", None)[0]  # every member's header checked before its array is allocated


def load_record(path: str | os.PathLike) -> dict:
    """Read a record and check it has the required keys."""

    path = Path(path)
    try:
        rec = json.loads(read_text(path, "result record", max_line=None))
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise FormatError(f"{path}: not a result record (JSON nested too deeply)") from None
    if not isinstance(rec, dict):
        raise FormatError(f"{path}: not an arface result record (a JSON {type(rec).__name__}, not an object)")
    missing = [k for k in REQUIRED_KEYS if k not in rec]
    if missing:
        raise FormatError(f"{path}: not an arface result record (missing {', '.join(missing)})")
    return rec


def load_records(runs_dir: str | os.PathLike, pattern: str = "*.json") -> list[dict]:
    """Every record under `runs_dir` matching `pattern`, sorted by file name, each with its `_path`.

    A file there that is not a valid record is an error naming it (a half-understood runs folder
    would otherwise drop results from tables and figures without a word).
    """
    out = []
    for p in sorted(Path(runs_dir).glob(pattern)):
        rec = load_record(p)
        rec["_path"] = str(p)
        out.append(rec)
    return out
