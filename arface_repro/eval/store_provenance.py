"""What a record says about the features it was computed from: the model the feature store names, and the
identity of its image list.

- `store_model_info(store)` — for `--features` runs: the model identity a feature store carries (written by
  `arface embed` and `arface evaluate --save-features`: `model_spec`, `model_sha256`, `preprocess`, and
  `model_identity`, the loaded model's full identity as JSON). None when the store names no model (a
  store made elsewhere); the record then says so rather than guess. A `model_identity` that is not a JSON
  object naming a model is a FormatError naming the store.
- `image_list_identity(paths, root)` — the ordered list of the store's image paths (count and sha256 of
  the paths joined by newlines) and, where the images were read from files under `root` (`--model` runs),
  a sha256 over `path<TAB>size` lines. Sizes, not content hashes: hashing every image of MegaFace or IJB-C
  would cost a second read of the whole dataset on every evaluation, while the list plus sizes catches a
  different, re-encoded, truncated or missing image set; the pair and protocol files are hashed in full
  (`inputs`). For a feature store the list is the store's rows (the protocol reads the images it needs
  from them; which ones is fixed by the hashed protocol files).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from arface_repro.errors import FormatError

MODEL_KEYS = ("model_spec", "model_sha256", "preprocess")


def store_model_info(store) -> dict[str, Any] | None:
    """The model identity a feature store names (its metadata), or None when it names none."""
    meta = getattr(store, "meta", None) or {}
    raw = meta.get("model_identity")
    if raw is not None:
        try:
            ident = json.loads(str(raw))
        except ValueError:
            ident = None
        if not isinstance(ident, dict) or not (ident.get("kind") or ident.get("spec")):
            raise FormatError(f"{getattr(store, 'source', '<feature store>')}: 'model_identity' is not a JSON object "
                              f"naming a model (kind, spec): {str(raw)[:80]!r}")
        return {**ident, "source": "feature store"}
    if not meta.get("model_spec"):
        return None
    return {"spec": str(meta["model_spec"]), "sha256": meta.get("model_sha256"),
            "preprocess": meta.get("preprocess"), "source": "feature store"}


def image_list_identity(paths: Sequence[str], root: str | os.PathLike | None = None) -> dict[str, Any]:
    """{'count', 'paths_sha256'} and, with `root`, 'sizes_sha256' over 'path<TAB>size' lines (None when a
    file cannot be read now)."""
    paths = [str(p) for p in paths]
    out: dict[str, Any] = {"count": len(paths),
                           "paths_sha256": hashlib.sha256("\n".join(paths).encode("utf-8")).hexdigest()}
    if root is not None:
        h = hashlib.sha256()
        base = Path(root)
        try:
            for p in paths:
                h.update(f"{p}\t{(base / p).stat().st_size}\n".encode())
            out["sizes_sha256"] = h.hexdigest()
        except OSError:
            out["sizes_sha256"] = None
        out["root"] = str(base)
    return out
