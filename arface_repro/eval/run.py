"""Run one protocol on a feature store and turn the outcome into a result record.

This is what `arface evaluate` calls, and what scripts and table regeneration call directly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from arface_repro.errors import ConfigError
from arface_repro.io.feature_store import FeatureStore
from arface_repro.io.records import build_record

PROTOCOLS = ("lfw", "calfw", "cplfw", "cfp-fp", "cfp-ff", "agedb30", "bin", "blufr")


def evaluate_store(protocol: str, store: FeatureStore, *, pairs: str | os.PathLike | None = None,
                   config: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
                   rule: str | None = None, flip: str = "add", trials: list[int] | None = None,
                   model: str | None = None, features_path: str | os.PathLike | None = None,
                   progress=None) -> dict:
    """Evaluate `store` on `protocol`; returns a complete result record (not yet written)."""
    if protocol == "blufr":
        return _blufr(store, config, data_root, flip, trials, model, features_path, progress)
    from arface_repro.eval.pair_protocols import PAIR_PROTOCOLS, evaluate_pairs, load_pair_protocol

    if protocol not in PAIR_PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    pl = load_pair_protocol(protocol, pairs, data_root)
    out = evaluate_pairs(store, pl, rule=rule or "insightface", flip=flip)
    pair_file = pl.source if Path(pl.source).is_file() else None
    return build_record(protocol, out["rule"], out["metrics"], per_fold=out["per_fold"], curves=out["curves"],
                        model=model, inputs={"features": features_path, "pairs": pair_file},
                        extra={"counts": out["counts"], "tar_rule": out["tar_rule"], "flip": out["flip"]})


def _blufr(store, config, data_root, flip, trials, model, features_path, progress) -> dict:
    from arface_repro.eval.blufr import OSI_FARS, RANKS, VERIFY_FARS, evaluate_blufr
    from arface_repro.io.blufr_config import load_blufr_config, match_image_list

    if config is None:
        if data_root is None:
            raise ConfigError("blufr: --config blufr_lfw_config.mat is required")
        config = Path(data_root) / "blufr_lfw_config.mat"
    cfg = load_blufr_config(config)
    rows = match_image_list(cfg.image_list, store.paths.tolist(), store.source)
    feats = store.combined(flip)[rows]
    res = evaluate_blufr(feats, cfg, trials=trials, progress=progress)
    per_trial = dict(res.per_trial)
    curves = {"verification": {"far": VERIFY_FARS.tolist(), "vr": res.vr.tolist()},
              "open_set": {"far": OSI_FARS.tolist(), "ranks": RANKS.tolist(), "dir": res.dir.tolist()},
              "roc": {"fpr": VERIFY_FARS[1:].tolist(), "tpr": np.mean(res.vr, axis=0)[1:].tolist()}}
    headline = {k: v for k, v in res.metrics.items()}
    return build_record("blufr", "blufr-official", headline, per_trial=per_trial, curves=curves, model=model,
                        inputs={"features": features_path, "config": config},
                        extra={"aggregate": "(mean - std, ddof 1) x 100 over trials",
                               "flip": flip if store.flip_features is not None else "none"})
