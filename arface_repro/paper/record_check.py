"""Whether a measured record may fill a paper cell as current: made by this code, and by the row's model.

A measured record (`<runs>/paper/<run>/<protocol>.json`) can take hours to remake, so a doubtful one is not
recomputed on sight; it is flagged in the printout and `reproduce_table.py --strict` refuses it:

- `stale` — the record's `source_sha256` (the package's code identity, `utils.provenance`) is not the
  running code's, or the record has none (made before records carried it). Its numbers came from other code.
- `other model` — the row's model is a checkpoint this package trained from the run's config
  (`protocols/paper/manifest.yaml`: run -> config). A record from any other kind of model (an ONNX, Caffe or
  TensorFlow file, a preset's released weights, e.g. a third-party MobileFaceNet in the paper's
  MobileFaceNet row), or from an `arface:` checkpoint trained from another config, is not the row's result.
- `model unverified` — the record does not say enough to tell (no `model_info`; a feature store that does
  not name its model; an `arface:` checkpoint or store whose config name the record lacks).

The model of a record is `model_info` (for `--model` runs the loaded model's identity; for `--features` runs
the identity the feature store carries, see `eval.store_provenance`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arface_repro.utils.provenance import code_key

STALE, OTHER_MODEL, UNVERIFIED = "stale", "other model", "model unverified"
TRAINED_KIND = "arface"   # what `arface train` checkpoints load as (`arface:CKPT`)


def stale_reason(rec: Mapping[str, Any]) -> str | None:
    """Why the record was made by other code than the running one, or None when it was made by this code."""
    made = rec.get("source_sha256")
    if not made:
        return f"{STALE}: the record has no code identity (source_sha256)"
    if made != code_key():
        commit = rec.get("git_commit")
        git = f" (git {str(commit)[:10]}{', dirty' if rec.get('dirty') else ''})" if commit else ""
        return f"{STALE}: made by code {str(made)[:12]}{git}, not the running {code_key()[:12]}"
    return None


def _kind(info: Mapping[str, Any]) -> str | None:
    kind = info.get("kind")
    if kind:
        return str(kind)
    spec = info.get("spec")
    return str(spec).split(":", 1)[0] if spec and ":" in str(spec) else None


def model_reason(rec: Mapping[str, Any], run_config: str) -> str | None:
    """Why the record's model is not (or cannot be shown to be) the row's model; None when it is."""
    info = rec.get("model_info")
    if not isinstance(info, Mapping) or not (info.get("kind") or info.get("spec")):
        return f"{UNVERIFIED}: the record names no model identity (model_info)"
    kind = _kind(info)
    what = info.get("spec") or kind
    if kind != TRAINED_KIND:
        return f"{OTHER_MODEL}: {what} is not a checkpoint trained from configs/{run_config}.yaml"
    config = info.get("config")
    if not config:
        return f"{UNVERIFIED}: {what} does not name the config it was trained from"
    if config != run_config:
        return f"{OTHER_MODEL}: {what} was trained from config {config!r}, the row's run from {run_config!r}"
    return None


def record_flags(rec: Mapping[str, Any], run_config: str) -> list[str]:
    """The flags of a measured record filling a cell of run `run_config` (empty: current and the row's model)."""
    return [r for r in (stale_reason(rec), model_reason(rec, run_config)) if r]
