"""The embedded default of Tables X and XI: every row trained at small scale on the built-in synthetic
occluded-face generator, over several seeds, evaluated on held-out synthetic identities
(`arface_repro.paper.synthetic_task`: the paper's three columns on synthetic data).

One run = (config under configs/, seed, overrides). Its record is
`<runs dir>/synthetic/<config>-s<seed>-<run key>.json` (protocol `synthetic-verification`); the run key
hashes the config file's bytes, the overrides, the seed and the package version, so a later call reuses
a record when all four match and trains again otherwise. Runs go through
`arface_repro.train.api.train_and_evaluate`, in `workers` processes (one torch thread each).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from arface_repro.errors import ConfigError, FormatError
from arface_repro.io.records import build_record, load_record, write_record
from arface_repro.paper.synthetic_task import PROTOCOL, RULE, verify_fn_for
from arface_repro.shared_data import REPO_ROOT
from arface_repro.train.config import config_files, load_config
from arface_repro.utils.cpus import usable_cpus
from arface_repro.utils.process_pool import run_unordered
from arface_repro.utils.provenance import code_key, environment_key

CONFIG_DIR = REPO_ROOT / "configs"
RECORD_SUBDIR = "synthetic"
SCALE = "synthetic small-scale"


@dataclass(frozen=True)
class Job:
    config: str                 # name under configs/ without .yaml
    seed: int
    overrides: tuple = ()

    @property
    def path(self) -> Path:
        return CONFIG_DIR / f"{self.config}.yaml"

    def all_overrides(self) -> list[str]:
        return [*self.overrides, f"seed={self.seed}", "train.quiet=true"]


def run_key(job: Job) -> str:
    """Identity of a synthetic run: config bytes (of the file and of each base it names), overrides, seed, the code
    (source hash) and the environment.

    Any change to the package's source or to a library version gives a new key, so a record made by other
    code is never found (it is recomputed)."""
    if not job.path.is_file():
        raise ConfigError(f"{job.path}: synthetic config not found")
    h = hashlib.sha256()
    for path in config_files(job.path):  # deepest base first; a config without a base: its bytes alone
        h.update(path.read_bytes())
    h.update(json.dumps(sorted(job.overrides)).encode())
    h.update(f"seed={job.seed}".encode())
    h.update(f"code={code_key()};env={environment_key()}".encode())
    return h.hexdigest()[:16]


def record_file(runs_dir: str | os.PathLike, job: Job) -> Path:
    return Path(runs_dir) / RECORD_SUBDIR / f"{job.config}-s{job.seed}-{run_key(job)}.json"


def find_record(runs_dir: str | os.PathLike, job: Job) -> dict | None:
    path = record_file(runs_dir, job)
    if not path.is_file():
        return None
    rec = load_record(path)
    if rec.get("run_key") != run_key(job) or rec.get("protocol") != PROTOCOL:
        raise FormatError(f"{path}: record does not belong to run {job.config} seed {job.seed} (run_key differs); remove it")
    rec["_path"] = str(path)
    return rec


def train_job(job: Job, runs_dir: str, threads: int = 1) -> dict:
    """Train and evaluate one synthetic run (in this process); write and return its record."""
    import torch

    torch.set_num_threads(threads)
    # the trainer imports torch: imported in the worker that trains, not by the report that reads records
    from arface_repro.train.api import train_and_evaluate
    from arface_repro.train.data import build_val_set  # torch, as the line above

    ov = job.all_overrides()
    cfg = load_config(job.path, ov)
    if cfg["data"]["kind"] != "synthetic":
        raise ConfigError(f"{job.path}: not a synthetic config (data.kind = {cfg['data']['kind']})")
    val = build_val_set(cfg)
    key = run_key(job)
    t0, c0 = time.time(), _cpu_seconds()
    m = train_and_evaluate(job.path, ov, out_dir=Path(runs_dir) / "train" / RECORD_SUBDIR / f"{job.config}-s{job.seed}",
                           verify_fn=verify_fn_for(val, job.seed, int(cfg["data"]["val"]["num_pairs"])))
    seconds, cpu = time.time() - t0, _cpu_seconds() - c0
    rec = build_record(PROTOCOL, RULE, m["metrics"], per_fold=m["per_fold"], model=f"config:{job.config}",
                       inputs={"config": job.path},
                       extra={"run_key": key, "seed": job.seed, "overrides": list(job.overrides), "per_pair": m["per_pair"],
                              "counts": m["counts"], "steps": m.get("steps"), "final_loss": m.get("final_loss"),
                              "final_train_acc": m.get("final_train_acc"), "checkpoint": m.get("checkpoint"),
                              "train_seconds": seconds, "train_cpu_seconds": cpu, "torch_threads": threads, "scale": SCALE,
                              "budget": {"steps": int(cfg["train"]["steps"]), "batch_size": int(cfg["train"]["batch_size"]),
                                         "identities": int(cfg["data"]["synthetic"]["num_identities"]),
                                         "images_per_identity": int(cfg["data"]["synthetic"]["images_per_identity"])}})
    path = write_record(rec, record_file(runs_dir, job))
    rec["_path"] = str(path)
    return rec


def _cpu_seconds() -> float:
    """user + sys CPU time of this process (all its threads)."""
    t = os.times()
    return t.user + t.system


def _worker(args) -> dict:
    job, runs_dir = args
    return train_job(job, runs_dir)


def default_workers() -> int:
    return usable_cpus(8)


def run_jobs(jobs: Iterable[Job], runs_dir: str | os.PathLike, workers: int | None = None, rerun: bool = False,
             log: Callable[[str], None] = print) -> dict[Job, dict]:
    """Every job's record: reused when present (unless `rerun`), else trained, `workers` at a time."""
    runs_dir = str(runs_dir)
    jobs = list(dict.fromkeys(jobs))
    out: dict[Job, dict] = {}
    todo = []
    for j in jobs:
        rec = None if rerun else find_record(runs_dir, j)
        if rec is None:
            todo.append(j)
        else:
            out[j] = rec
    if out:
        log(f"  {len(out)} of {len(jobs)} synthetic runs reused from {Path(runs_dir) / RECORD_SUBDIR}")
    if not todo:
        return out
    workers = default_workers() if workers is None else max(1, int(workers))
    log(f"  training {len(todo)} synthetic runs, {workers} at a time (one torch thread each) ...")
    t0 = time.time()

    def done(i: int, rec: dict) -> None:
        el = time.time() - t0
        eta = el / i * (len(todo) - i)
        m = rec["metrics"]
        log(f"  [{i}/{len(todo)}] {rec['model'][7:]} seed {rec['seed']}: {rec['train_seconds']:.0f} s, "
            f"Acc {m['Acc']:.2f}  ({el:.0f} s elapsed, ~{eta:.0f} s left)")

    if workers == 1:
        for i, j in enumerate(todo, 1):
            out[j] = train_job(j, runs_dir)
            done(i, out[j])
    else:

        for i, ((j, _), rec) in enumerate(run_unordered(_worker, [(j, runs_dir) for j in todo], workers), 1):
            out[j] = rec
            done(i, rec)
    log(f"  trained {len(todo)} runs in {time.time() - t0:.0f} s")
    return out
