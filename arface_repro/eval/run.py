"""The evaluation API: what `arface evaluate` does, callable from Python (the paper layer calls it too).

* `run_evaluation(proto)` — the whole of one evaluation for a protocol instance (`get_protocol(P)(opts)` or
  `get_protocol(P).from_options(**options)`): outputs checked before any work, features read (`--features`) or
  extracted (`--model`), the protocol evaluated, the record written. Returns (record, path); path is None
  on the torchrun ranks other than 0 (which write nothing).
* `evaluate_store("lfw", store, pairs="pairs.txt")` = `get_protocol("lfw").from_options(pairs=...).evaluate(store)`:
  keyword arguments are the protocol's options (`arface evaluate --protocol P --help`, dashes as underscores),
  plus `model` (a label for the record) and `features_path` (the store's file, hashed into the record).
* `format_metrics(record)` — the short table `arface evaluate` prints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from arface_repro.errors import ConfigError
from arface_repro.eval.embed import extract_for_protocol
from arface_repro.eval.protocols import get_protocol, protocol_names
from arface_repro.io.feature_store import save_feature_store
from arface_repro.io.records import SIDECAR_SUFFIX, write_record
from arface_repro.models.preprocess import GENERIC
from arface_repro.utils.outputs import Output, check_outputs, spec_files


def run_evaluation(proto) -> tuple[dict, Path | None]:
    """Evaluate and write the record of one configured protocol instance; see the module text."""
    opts = proto.opts
    if opts.model and opts.label:
        raise ConfigError("--label names precomputed features; with --model the record names the model spec")
    check_evaluate_outputs(proto, opts)
    if opts.preprocess:  # checked now, not after the protocol's images are listed and the model loaded
        GENERIC.with_overrides(opts.preprocess)
    proto.check_options()
    store = _features(proto, opts)
    proto.note_features(store)
    record = proto.evaluate(store)
    if proto.shards and proto.ctx.rank != 0:
        return record, None
    return record, write_record(record, opts.out, opts.runs_dir, arrays=proto.sidecar_arrays)


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


# options whose values are output locations, or not paths at all
_NOT_INPUTS = {"out", "runs_dir", "save_features", "cache_dir", "data_root", "protocol", "label", "rule", "device",
               "preprocess", "flip", "model"}


def check_evaluate_outputs(proto, opts) -> None:
    """The record (and its scores sidecar), --save-features and --cache-dir, checked before any feature is read:
    a bad location, or an output that is one of the run's input files, is an error now, not after the work."""
    outs = []
    if opts.out:
        outs += [Output(opts.out, "--out"), Output(Path(opts.out).with_suffix(SIDECAR_SUFFIX), "--out (scores sidecar)")]
    else:
        outs.append(Output(opts.runs_dir, "--runs-dir", kind="dir"))
    if opts.save_features:
        if not opts.model:
            raise ConfigError("--save-features keeps the features a --model extraction computes; with --features "
                              "the store already exists")
        if not str(opts.save_features).endswith(".npz"):
            raise ConfigError(f"--save-features {opts.save_features}: a feature store is an .npz file; give a name "
                              f"ending in .npz")
        outs.append(Output(opts.save_features, "--save-features"))
    if opts.model and opts.cache_dir and opts.cache_dir != "none":
        outs.append(Output(opts.cache_dir, "--cache-dir", kind="dir"))
    inputs = [v for k, v in vars(opts).items() if k not in _NOT_INPUTS and isinstance(v, str) and v
              and Path(v).exists()]
    inputs += spec_files(opts.model)
    if proto.data_root is not None:  # the protocol's files under the data root (not the root as a whole)
        inputs += [proto.data_root / rel for rel in proto.spec.layout.values()
                   if (proto.data_root / rel).is_file()]
        if (proto.data_root / "landmarks.txt").is_file():
            inputs.append(proto.data_root / "landmarks.txt")
    check_outputs(outs, inputs)


def _features(proto, opts):
    """The protocol's features: extracted by --model, else read from --features (or the protocol's files)."""
    if not opts.model:
        return proto.read_features(opts.features)

    store = extract_for_protocol(proto, opts)
    if opts.save_features:
        pv = proto.provenance  # the store names its model, so a later `--features` record can name it too
        info = pv.model_info or {}
        save_feature_store(opts.save_features, store.features, store.paths, store.flip_features,
                           model_spec=str(pv.model), model_sha256=str(info.get("sha256")),
                           preprocess=str(info.get("preprocess")), model_identity=json.dumps(info, sort_keys=True))
        proto.provenance.features = opts.save_features
    return store


def format_metrics(record: dict) -> str:
    """A short aligned table of a record's headline metrics."""
    src = record.get("model") or (record.get("inputs") or {}).get("features", {}).get("path", "-")
    lines = [f"protocol {record['protocol']}  rule {record['rule']}  model {src}"]
    width = max((len(k) for k in record["metrics"]), default=0)
    for k, v in record["metrics"].items():
        lines.append(f"  {k:<{width}}  {v:8.4f}" if isinstance(v, (int, float)) else f"  {k:<{width}}  {'n/a':>8}")
    for r in record.get("reported_by_authors") or []:
        lines.append(f"  reported by the checkpoint's authors ({r['preset']}): {r['benchmark']} {r['metric']} "
                     f"{r['value']} — {r.get('protocol', '')} [{r['source']}]")
    return "\n".join(lines)
