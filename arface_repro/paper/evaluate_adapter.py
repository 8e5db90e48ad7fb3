"""The one place where the paper layer evaluates a model: through the evaluation API (`eval.run.run_evaluation`),
the same function `arface evaluate` calls.

Every evaluation of `reproduce_table.py --run` goes through `evaluate_model(protocol, spec, datasets, out)`:
the protocol is configured as `arface evaluate --protocol P --model SPEC --data-root ROOT [file options]
--out OUT` would configure it; it finds its files under the dataset root (`protocols/<P>.yaml` `layout`) and
extracts the images it needs with the model. Which DATA.yaml keys give the root and the file options is the
definition's `paper` section (`root`, `files`), so a protocol's route is part of its definition.

`datasets` maps those keys to paths (from DATA.yaml): `<P>_root` is the dataset root of protocol P
(`lfw_root` serves LFW and BLUFR); optional keys name files that are not at the protocol's default place
under that root (`lfw_pairs`, `blufr_config`, `ytf_splits`, ...). A protocol whose definition says
`from_images: false` (Trillion-Pairs) cannot be run this way; its `manual` says what the user runs instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from arface_repro.errors import ConfigError
from arface_repro.eval.protocols import get_protocol
from arface_repro.eval.protocols.spec import paper_routes
from arface_repro.eval.run import format_metrics, run_evaluation


def _need(datasets: dict, key: str, protocol: str) -> str:
    v = datasets.get(key)
    if not v:
        raise ConfigError(f"protocol {protocol} needs datasets.{key} in the DATA.yaml")
    return str(v)


def evaluation_options(protocol: str, spec: str, datasets: dict, out: str | os.PathLike, work_dir: str | os.PathLike,
                       quiet: bool = False) -> dict:
    """The protocol's options (`arface evaluate` option names, dashes as underscores) for one evaluation."""
    route = paper_routes().get(protocol)
    if route is None:
        raise ConfigError(f"no evaluation route for protocol {protocol!r} (its definition has no `paper` section)")
    if not route.from_images:
        raise ConfigError(f"{protocol}: {route.manual.replace('RECORD', str(out))}")
    options: dict[str, str | bool] = {"model": spec, "data_root": _need(datasets, route.root, protocol)}
    for option, key, required in route.files:
        if required or datasets.get(key):
            options[option.lstrip("-").replace("-", "_")] = _need(datasets, key, protocol)
    options.update(cache_dir=str(Path(work_dir) / "cache"), out=str(out), quiet=quiet)
    return options


def evaluate_model(protocol: str, spec: str, datasets: dict, out: str | os.PathLike, work_dir: str | os.PathLike,
                   quiet: bool = False) -> Path:
    """Evaluate model `spec` on `protocol`; the record is written to `out`. Returns `out`.

    `work_dir` holds the extraction cache of this run (reused when the same model is evaluated again). The
    metrics go to stderr (stdout carries the table)."""
    options = evaluation_options(protocol, spec, datasets, out, work_dir, quiet)
    record, path = run_evaluation(get_protocol(protocol).from_options(**options))
    print(format_metrics(record) + f"\nrecord: {path}", file=sys.stderr)
    return Path(out)
