"""Run one protocol on features from Python, the way `arface evaluate` does, and get its result record.

`evaluate_store("lfw", store, pairs="pairs.txt")` = `get_protocol("lfw").from_options(pairs=...).evaluate(store)`:
keyword arguments are the protocol's options (`arface evaluate --protocol P --help`, dashes as underscores),
plus `model` (a label for the record) and `features_path` (the store's file, hashed into the record).
"""

from __future__ import annotations

import os

from arface_repro.eval.protocols import get_protocol, protocol_names


def evaluate_store(protocol: str, store, *, model: str | None = None, features_path: str | os.PathLike | None = None,
                   **options) -> dict:
    """Evaluate `store` (whatever the protocol reads: a FeatureStore for most) on `protocol`; returns the
    complete record (not yet written)."""
    proto = get_protocol(protocol).from_options(**options)
    proto.provenance.label = model
    proto.provenance.features = None if features_path is None else str(features_path)
    proto.note_features(store)
    return proto.evaluate(store)


def __getattr__(name):  # PROTOCOLS: the registered names, read lazily
    if name == "PROTOCOLS":
        return tuple(protocol_names())
    raise AttributeError(name)
