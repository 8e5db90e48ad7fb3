"""`reproduce_table.py N --run --data DATA.yaml`: fill a table's missing cells with what the user has.

DATA.yaml names paths only (read with a safe loader; nothing in it is imported or executed). A `torchscript:`
checkpoint names a program, so it is refused unless the user passes `--trust-torchscript` on the command line:

    datasets:                       # evaluation data, keys of protocols/<name>.yaml `paper`
      lfw_root: /data/lfw/aligned-112x112
      lfw_pairs: /data/lfw/pairs.txt
      blufr_config: /data/blufr/blufr_lfw_config.mat
    training_data:                  # keys of manifest.yaml `training_data`
      vggface2: {kind: rec, path: /data/vggface2/train}     # prefix of train.rec/.idx, or kind: folder
    checkpoints:                    # a run id, or TABLE.ROW ("the ARFace row of Table VI is this checkpoint")
      r50full_arface_l9: runs/r50full_arface_l9/checkpoint_last.pt   # a training checkpoint (arface: spec)
      VI.pickpatch: onnx:/models/pickpatch.onnx                      # or any model spec
    train: true                     # train runs that have training data but no checkpoint (default true)

For every missing cell of the table: the row's run (manifest) gets its model from `checkpoints` (run id or
TABLE.ROW), else by training its config on its training data (`arface_repro.train.api.train_and_evaluate`),
then every protocol of the row with its evaluation data is evaluated through
`arface_repro.paper.evaluate_adapter` into `<runs>/paper/<run id>/<protocol>.json`. What cannot be done is
listed with the reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from arface_repro.errors import ConfigError, FormatError
from arface_repro.eval.protocols.spec import paper_routes
from arface_repro.io.records import load_record
from arface_repro.models.kinds import single_file_prefixes
from arface_repro.paper.evaluate_adapter import evaluate_model
from arface_repro.paper.manifest import load_manifest, record_path
from arface_repro.paper.record_check import record_flags
from arface_repro.paper.targets import get_table, table_id
from arface_repro.shared_data import REPO_ROOT
from arface_repro.utils.textfile import read_yaml_mapping

SPEC_PREFIXES = single_file_prefixes()  # the model kinds whose spec names one file (models.kinds): relocatable
DATA_KEYS = {"datasets", "training_data", "checkpoints", "train"}


@dataclass
class DataSpec:
    datasets: dict = field(default_factory=dict)
    training_data: dict = field(default_factory=dict)
    checkpoints: dict = field(default_factory=dict)      # run id -> model spec
    train: bool = True
    source: str = "DATA.yaml"


def _spec(value: str, where: str, base: Path, trust_torchscript: bool = False) -> str:
    if not isinstance(value, str) or not value:
        raise FormatError(f"{where}: must be a model spec or a checkpoint path")
    if value.startswith("torchscript:") and not trust_torchscript:
        raise FormatError(f"{where}: {value!r} is a TorchScript file, a program; DATA.yaml does not make the "
                          f"package run programs (pass --trust-torchscript to run a file you trust)")
    if value.startswith(SPEC_PREFIXES):
        kind, rest = value.split(":", 1)
        path = rest.rsplit(":", 1)[-1] if kind == "torch" else rest
        p = Path(path) if Path(path).is_absolute() else base / path
        if not p.is_file():
            raise FormatError(f"{where}: {p} does not exist")
        return value if Path(path).is_absolute() else value[: len(value) - len(path)] + str(p)
    p = Path(value) if Path(value).is_absolute() else base / value
    if not p.is_file():
        raise FormatError(f"{where}: checkpoint {p} does not exist")
    return f"arface:{p}"


def load_data_spec(path: str | os.PathLike, trust_torchscript: bool = False) -> DataSpec:
    """Read and check DATA.yaml: every named path must exist; relative paths are relative to the file.
    `trust_torchscript`: the user's explicit --trust-torchscript (else a torchscript: checkpoint is refused)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: DATA.yaml not found")
    d = read_yaml_mapping(path, "DATA.yaml")
    unknown = set(d) - DATA_KEYS
    if unknown:
        raise FormatError(f"{path}: unknown key(s) {sorted(unknown)}; expected {sorted(DATA_KEYS)}")
    m = load_manifest()
    base = path.parent
    train = d.get("train", True)
    if not isinstance(train, bool):  # a real YAML boolean: the text "false" would be true under bool()
        raise FormatError(f"{path}: train must be true or false, got {train!r}")
    out = DataSpec(source=str(path), train=train)
    known_eval = m.evaluation_keys()
    for k, v in (d.get("datasets") or {}).items():
        if k not in known_eval:
            raise FormatError(f"{path}: datasets.{k} is not a known evaluation-data key ({', '.join(sorted(known_eval))})")
        p = Path(str(v)) if Path(str(v)).is_absolute() else base / str(v)
        if not p.exists():
            raise FormatError(f"{path}: datasets.{k}: {p} does not exist")
        out.datasets[k] = str(p)
    for k, v in (d.get("training_data") or {}).items():
        if k not in m.training_data:
            raise FormatError(f"{path}: training_data.{k} is not one of {sorted(m.training_data)}")
        if not isinstance(v, dict) or v.get("kind") not in ("rec", "folder") or not isinstance(v.get("path"), str):
            raise FormatError(f"{path}: training_data.{k} must be {{kind: rec|folder, path: ...}}")
        p = Path(v["path"]) if Path(v["path"]).is_absolute() else base / v["path"]
        probe = p.with_suffix(".rec") if v["kind"] == "rec" else p
        if not probe.exists():
            raise FormatError(f"{path}: training_data.{k}: {probe} does not exist")
        out.training_data[k] = {"kind": v["kind"], "path": str(p)}
    for k, v in (d.get("checkpoints") or {}).items():
        where = f"{path}: checkpoints.{k}"
        if k in m.runs:
            run_id = k
        else:
            tab, _, row = str(k).partition(".")
            try:
                tid = table_id(tab)
            except ConfigError:
                raise FormatError(f"{where}: not a run id of the manifest nor TABLE.ROW") from None
            get_table(tid).row(row)
            r = m.run_for(tid, row)
            if r is None:
                raise FormatError(f"{where}: row {row} of Table {tid} is reported from the literature (no run)")
            run_id = r.id
        spec = _spec(v, where, base, trust_torchscript)
        if run_id in out.checkpoints and out.checkpoints[run_id] != spec:
            raise FormatError(f"{where}: run {run_id} already has checkpoint {out.checkpoints[run_id]}")
        out.checkpoints[run_id] = spec
    return out


@dataclass
class Plan:
    todo: list[tuple[str, list[str], str]]     # (run id, protocols, how: 'checkpoint' | 'train')
    impossible: list[tuple[str, str, str]]     # (run id, protocol, why)


def plan(tid: str, data: DataSpec, runs_dir: str | os.PathLike) -> Plan:
    t = get_table(tid)
    m = load_manifest()
    routes = paper_routes()
    per_run: dict[str, list[str]] = {}
    impossible = []
    for row in t.rows:
        run = m.run_for(t.id, row.id)
        if run is None:
            continue
        for col in t.columns:
            if record_path(runs_dir, run.id, col.protocol).is_file():
                continue
            route = routes.get(col.protocol)
            if route is not None and not route.from_images:   # the definition says what to run instead
                impossible.append((run.id, col.protocol,
                                   route.manual.replace("RECORD", str(record_path(runs_dir, run.id, col.protocol)))))
                continue
            need = [k for k in m.evaluation_data.get(col.protocol, []) if k not in data.datasets]
            if need:
                impossible.append((run.id, col.protocol, "no " + ", ".join(f"datasets.{k}" for k in need)))
                continue
            if run.id not in data.checkpoints and not (data.train and run.data in data.training_data):
                impossible.append((run.id, col.protocol, f"no checkpoints.{run.id} (or a TABLE.ROW key) and no "
                                                         f"training_data.{run.data}" + ("" if data.train else " with train: true")))
                continue
            if col.protocol not in per_run.setdefault(run.id, []):
                per_run[run.id].append(col.protocol)
    todo = [(r, p, "checkpoint" if r in data.checkpoints else "train") for r, p in per_run.items()]
    return Plan(todo, sorted(set(impossible)))


def existing_flagged(tid: str, runs_dir: str | os.PathLike) -> list[tuple[Path, str]]:
    """The table's existing measured records that may not be current (record_check), with why."""
    t = get_table(tid)
    m = load_manifest()
    out = []
    for row in t.rows:
        run = m.run_for(t.id, row.id)
        if run is None:
            continue
        for proto in dict.fromkeys(c.protocol for c in t.columns):
            path = record_path(runs_dir, run.id, proto)
            if path.is_file():
                flags = record_flags(load_record(path), run.config)
                if flags:
                    out.append((path, "; ".join(flags)))
    return list(dict.fromkeys(out))


def execute(tid: str, data: DataSpec, runs_dir: str | os.PathLike, log: Callable[[str], None] = print,
            quiet: bool = False) -> Plan:
    m = load_manifest()
    p = plan(tid, data, runs_dir)
    for path, why in existing_flagged(tid, runs_dir):  # kept: a measured record is not remade on sight
        log(f"  kept {path} ({why}); remove it to evaluate that cell again")
    for run_id, proto, why in p.impossible:
        log(f"  cannot fill {run_id} / {proto}: {why}")
    for i, (run_id, protos, how) in enumerate(p.todo, 1):
        run = m.runs[run_id]
        t0 = time.time()
        if how == "checkpoint":
            spec = data.checkpoints[run_id]
            log(f"[{i}/{len(p.todo)}] {run_id}: model {spec}")
        else:
            # the trainer imports torch: loaded only when a run must be trained, not to plan or to evaluate
            from arface_repro.train.api import train_and_evaluate

            cfg = REPO_ROOT / "configs" / f"{run.config}.yaml"
            if not cfg.is_file():
                log(f"[{i}/{len(p.todo)}] {run_id}: cannot train: {cfg} does not exist")
                continue
            td = data.training_data[run.data]
            out_dir = Path(runs_dir) / "train" / "paper" / run_id
            log(f"[{i}/{len(p.todo)}] {run_id}: training {cfg.name} on {run.data} ({td['path']}) into {out_dir} ...")
            res = train_and_evaluate(cfg, [f"data.kind={td['kind']}", f"data.path={td['path']}"], out_dir=out_dir)
            spec = f"arface:{res['checkpoint']}"
            log(f"    trained in {time.time() - t0:.0f} s")
        for proto in protos:
            t1 = time.time()
            out = record_path(runs_dir, run_id, proto)
            log(f"    evaluating {proto} -> {out} ...")
            evaluate_model(proto, spec, data.datasets, out, Path(runs_dir) / "features" / run_id, quiet=quiet)
            log(f"    {proto} done in {time.time() - t1:.0f} s")
    return p

