"""The embedded default of the table reproduction: the ablation rows trained at small scale on the
built-in synthetic occluded-face generator (CPU, minutes), each evaluated by held-out pair verification.

Rows name the method variant, not a paper row label: the paper's printed tables are not transcribed in
this package (see README, "Reproducing the paper's tables"). Every trained row writes a result record
(`protocol: synthetic-verification`); a later call reuses a record whose config file, overrides and
package version match instead of training again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from arface_repro import __version__
from arface_repro.errors import ConfigError
from arface_repro.io.records import build_record, load_records, write_record
from arface_repro.shared_data import REPO_ROOT

CONFIG_DIR = REPO_ROOT / "configs"
PROTOCOL = "synthetic-verification"


@dataclass(frozen=True)
class Row:
    label: str
    config: str   # file name under configs/


# Table X: the components of ARFace against the baselines; Table XI: the number of masked feature-map
# layers (0 = input masking only). The synthetic backbone has 4 mask points, so num_layers runs 0..4.
TABLES: dict[str, list[Row]] = {
    "X": [
        Row("Feature-Net (plain AM-Softmax)", "syn_plain.yaml"),
        Row("+ Random patch dropping (PickPatch)", "syn_random.yaml"),
        Row("+ Cutout 16x16", "syn_cutout.yaml"),
        Row("+ DropBlock (stages 3, 4)", "syn_dropblock.yaml"),
        Row("+ Attention-Net, input mask only", "syn_arface_input.yaml"),
        Row("+ Attention-Net + feature-map masking (3 layers)", "syn_arface_l3.yaml"),
    ],
    "XI": [
        Row("num_layers = 0", "syn_arface_input.yaml"),
        Row("num_layers = 1", "syn_arface_l1.yaml"),
        Row("num_layers = 2", "syn_arface_l2.yaml"),
        Row("num_layers = 3", "syn_arface_l3.yaml"),
        Row("num_layers = 4", "syn_arface_l4.yaml"),
    ],
}


def run_key(config_path: Path, overrides: Iterable[str]) -> str:
    """Identity of a synthetic run: config bytes, overrides and package version."""
    h = hashlib.sha256(config_path.read_bytes())
    h.update(json.dumps(sorted(overrides)).encode())
    h.update(__version__.encode())
    return h.hexdigest()[:16]


def find_record(key: str, runs_dir: Path) -> dict | None:
    """The newest record of this run key, or None."""
    matches = [r for r in load_records(runs_dir, f"{PROTOCOL}-*.json") if r.get("run_key") == key]
    return matches[-1] if matches else None


def run_row(row: Row, runs_dir: Path, overrides: Iterable[str] = (), rerun: bool = False,
            log: Callable[[str], None] = print) -> dict:
    """Train + evaluate one row (or reuse its record); returns the record."""
    cfg = CONFIG_DIR / row.config
    if not cfg.is_file():
        raise ConfigError(f"{cfg}: config of row '{row.label}' not found")
    overrides = list(overrides)
    key = run_key(cfg, overrides)
    if not rerun:
        rec = find_record(key, runs_dir)
        if rec is not None:
            log(f"  {row.config}: reusing {rec['_path']}")
            return rec
    from arface_repro.train.api import train_and_evaluate

    log(f"  {row.config}: training ...")
    out_dir = runs_dir / "train" / cfg.stem
    m = train_and_evaluate(cfg, overrides, out_dir=out_dir)
    metrics = {"Acc": m["val_accuracy"]}
    for k in ("drop_occluded", "drop_clean"):
        if m.get(k) is not None:
            metrics[k] = 100.0 * m[k]
    rec = build_record(PROTOCOL, "kfold-best-threshold", metrics, model=f"config:{row.config}",
                       inputs={"config": cfg},
                       extra={"run_key": key, "overrides": overrides, "steps": m.get("steps"),
                              "final_loss": m.get("final_loss"), "drop_rate": m.get("drop_rate"),
                              "checkpoint": m.get("checkpoint"), "scale": "synthetic small-scale"})
    path = write_record(rec, runs_dir=runs_dir)
    rec["_path"] = str(path)
    return rec


def run_table(table: str, runs_dir: Path, overrides: Iterable[str] = (), rerun: bool = False,
              log: Callable[[str], None] = print) -> list[tuple[Row, dict]]:
    rows = TABLES.get(table)
    if rows is None:
        raise ConfigError(f"table {table} has no synthetic ablation rows (only {', '.join(TABLES)})")
    done: dict[str, dict] = {}
    out = []
    for row in rows:
        if row.config not in done:
            done[row.config] = run_row(row, runs_dir, overrides, rerun, log)
        out.append((row, done[row.config]))
    return out
