"""The embedding cache: one entry per image, shared by every protocol that embeds with the same model.

An entry is found by two keys:
- the context key (`context_key`): the model identity (backend kind and sha256 of the model file or of an
  in-memory state dict — not the path it was given by — and every other identity field the backend reports),
  the preprocessing, the landmarks file's sha256 for models that take landmarks, the package's
  code (`utils.provenance.code_key()`) and the environment (`environment_key()`). Entries of one context live
  in the folder `<cache>/emb-<context[:32]>/`; a change of any of these reaches a new folder, so an entry made
  by other code, libraries or weights is never served.
- the image key (`image_keys`): sha256 of the image file's bytes (its content, not its name, size or mtime),
  plus the alignment landmarks and the model landmarks given for that image. The same picture under another
  data root or another protocol's list hits the same entry; an edited image misses.

An entry made with the flipped pass serves both kinds of request (a no-flip request ignores its flip features);
one made without it serves only no-flip requests. So `--flip none` on one protocol and the default on another
share what they can.

Each extraction that misses writes one part file (`part-<hash>.npz`: keys, features and flip features of the
images it embedded; written to a temp file and renamed), so LFW then BLUFR with one model embeds the BLUFR
images LFW did not need and reads the rest. A part file that cannot be read or holds the wrong shapes is left
aside (its images are embedded again and land in a new part) and named in a warning on stderr: a cache is
never a reason to fail a run, and never served when it does not check out.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from arface_repro.io.npz_file import read_npz
from arface_repro.utils.atomic import atomic_path
from arface_repro.utils.provenance import code_key, environment_key

FORMAT_VERSION = 4


def model_identity(model) -> dict:
    """The model's identity without the spelling of its path when a content hash identifies it."""
    ident = dict(model.identity())
    if ident.get("sha256"):
        ident.pop("spec", None)
    return ident


def context_key(model, landmarks_sha256: str | None = None) -> str:
    blob = {"model": model_identity(model), "landmarks": landmarks_sha256,
            "code": code_key(), "environment": environment_key(), "format": FORMAT_VERSION}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()


def image_keys(root: Path, paths: Sequence[str], align: np.ndarray | None = None,
               landmarks: dict | None = None) -> list[str]:
    """One key per image: sha256 of its bytes, of its alignment points and of its model landmarks (if any)."""
    keys = []
    for i, p in enumerate(paths):
        h = hashlib.sha256()
        with open(root / p, "rb") as fh:
            h.update(hashlib.sha256(fh.read()).digest())
        if align is not None:
            h.update(b"align" + np.ascontiguousarray(align[i], np.float32).tobytes())
        if landmarks is not None and landmarks.get(p) is not None:
            h.update(b"landmarks" + np.ascontiguousarray(landmarks[p], np.float32).tobytes())
        keys.append(h.hexdigest())
    return keys


class EmbeddingCache:
    """Entries of one context under `<cache_dir>/emb-<context[:32]>/`."""

    def __init__(self, cache_dir: str | os.PathLike, context: str, flip: bool):
        self.dir = Path(cache_dir) / f"emb-{context[:32]}"
        self.context, self.flip = context, bool(flip)

    def _read_part(self, path: Path):
        """(keys, features, flips) of a part file, or None (with a warning) when it does not check out."""
        try:
            z, _ = read_npz(path, "embedding cache part", ("context", "keys", "features", "flip_features"),
                            optional=("flip_features",))   # headers checked before anything is allocated
            ctx = str(z["context"])
            keys = [str(k) for k in z["keys"]]
            f = np.asarray(z["features"], np.float32)
            g = np.asarray(z["flip_features"], np.float32) if "flip_features" in z else None
        except Exception as exc:  # noqa: BLE001 - any unreadable part is set aside, never served
            print(f"warning: embedding cache {path}: unreadable ({type(exc).__name__}); its images are embedded "
                  "again", file=sys.stderr)
            return None
        ok = (ctx == self.context and f.ndim == 2 and f.shape[0] == len(keys) and np.isfinite(f).all()
              and (g is None or (g.shape == f.shape and np.isfinite(g).all())))
        if not ok:
            print(f"warning: embedding cache {path}: does not match its context or holds bad arrays; its images "
                  "are embedded again", file=sys.stderr)
            return None
        return keys, f, g

    def lookup(self, keys: Sequence[str]):
        """(found mask, features, flips): rows of the keys found (others zero); None arrays when nothing found."""
        want = {k: i for i, k in enumerate(keys)}
        found = np.zeros(len(keys), bool)
        feats = flips = None
        if not self.dir.is_dir():
            return found, feats, flips
        for part in sorted(self.dir.glob("part-*.npz")):
            got = self._read_part(part)
            if got is None:
                continue
            pk, f, g = got
            if (self.flip and g is None) or (feats is not None and f.shape[1] != feats.shape[1]):
                continue   # a part without flip features cannot serve a flip request
            for j, k in enumerate(pk):
                i = want.get(k)
                if i is None or found[i]:
                    continue
                if feats is None:
                    feats = np.zeros((len(keys), f.shape[1]), np.float32)
                    flips = np.zeros_like(feats) if self.flip else None
                feats[i] = f[j]
                if self.flip:
                    flips[i] = g[j]
                found[i] = True
        return found, feats, flips

    def store(self, keys: Sequence[str], feats: np.ndarray, flips: np.ndarray | None) -> Path:
        """Write one part with these entries (temp file, then rename)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(("flip\n" if flips is not None else "\n").encode() + "\n".join(keys).encode()).hexdigest()[:24]
        out = self.dir / f"part-{name}.npz"
        arrays = {"context": np.asarray(self.context), "keys": np.asarray(list(keys), dtype="U64"),
                  "features": np.asarray(feats, np.float32)}
        if flips is not None:
            arrays["flip_features"] = np.asarray(flips, np.float32)
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        return out
