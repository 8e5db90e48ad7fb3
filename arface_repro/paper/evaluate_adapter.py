"""The one place where the paper layer asks the `arface` command line to evaluate a model.

Every evaluation of `reproduce_table.py --run` goes through `evaluate_model(protocol, spec, datasets, out)`:
pair protocols and BLUFR with `arface evaluate --model SPEC ...`, the large and video protocols with
`arface embed` (a feature store) then `arface evaluate-large --features ...`. Keeping all of these calls
here means a change of the evaluation command's flags is a change of this file only.

`datasets` maps the keys of protocols/paper/manifest.yaml `evaluation_data` to paths (from DATA.yaml).
"""

from __future__ import annotations

import os
from pathlib import Path

from arface_repro.errors import ArfaceError, ConfigError

PAIR_PROTOCOLS = {"lfw": ("lfw_root", "lfw_pairs"), "calfw": ("calfw_root", "calfw_pairs"), "cplfw": ("cplfw_root", "cplfw_pairs")}
LARGE = {"ytf", "ijbb", "ijbc", "megaface", "trillion", "rmfrd"}


def _need(datasets: dict, key: str, protocol: str) -> str:
    v = datasets.get(key)
    if not v:
        raise ConfigError(f"protocol {protocol} needs datasets.{key} in the DATA.yaml")
    return str(v)


def _cli(argv: list[str]) -> None:
    """Run one `arface` command; its printout goes to stderr (stdout carries the table)."""
    import contextlib
    import sys

    from arface_repro.cli import main

    with contextlib.redirect_stdout(sys.stderr):
        rc = main(argv)
    if rc != 0:
        raise ArfaceError(f"`arface {' '.join(argv)}` failed with exit status {rc} (its message is above)")


def evaluate_model(protocol: str, spec: str, datasets: dict, out: str | os.PathLike, work_dir: str | os.PathLike,
                   quiet: bool = False) -> Path:
    """Evaluate model `spec` on `protocol`; the record is written to `out`. Returns `out`."""
    out = Path(out)
    q = ["--quiet"] if quiet else []
    if protocol in PAIR_PROTOCOLS:
        root, pairs = PAIR_PROTOCOLS[protocol]
        _cli(["evaluate", "--protocol", protocol, "--model", spec, "--data-root", _need(datasets, root, protocol),
              "--pairs", _need(datasets, pairs, protocol), "--out", str(out), *q])
    elif protocol == "blufr":
        _cli(["evaluate", "--protocol", "blufr", "--model", spec, "--data-root", _need(datasets, "lfw_root", protocol),
              "--config", _need(datasets, "blufr_config", protocol), "--out", str(out), *q])
    elif protocol == "cfp-fp":
        _cli(["evaluate", "--protocol", "cfp-fp", "--model", spec, "--data-root", _need(datasets, "cfp_root", protocol),
              "--out", str(out), *q])
    elif protocol in LARGE:
        work = Path(work_dir)
        work.mkdir(parents=True, exist_ok=True)

        def embed(key: str, name: str) -> str:
            store = work / f"{name}.npz"
            _cli(["embed", "--model", spec, "--data-root", _need(datasets, key, protocol), "--out", str(store), *q])
            return str(store)

        if protocol == "ytf":
            _cli(["evaluate-large", "--protocol", "ytf", "--features", embed("ytf_frames", "ytf"), "--pairs",
                  _need(datasets, "ytf_splits", protocol), "--model", spec, "--out", str(out), *q])
        elif protocol in ("ijbb", "ijbc"):
            _cli(["evaluate-large", "--protocol", protocol, "--features", embed(f"{protocol}_images", protocol), "--meta-dir",
                  _need(datasets, f"{protocol}_meta", protocol), "--model", spec, "--out", str(out), *q])
        elif protocol == "megaface":
            _cli(["evaluate-large", "--protocol", "megaface", "--features", embed("megaface_facescrub_images", "facescrub"),
                  "--distractor-features", embed("megaface_distractor_images", "megaface"),
                  "--facescrub-list", _need(datasets, "megaface_facescrub_list", protocol),
                  "--megaface-list", _need(datasets, "megaface_distractor_list", protocol), "--model", spec, "--out", str(out), *q])
        elif protocol == "trillion":
            raise ConfigError("trillion: the protocol reads DeepGlint .bin feature matrices; embed the probe and distractor "
                              "images yourself and run `arface evaluate-large --protocol trillion ... --out "
                              f"{out}` (the table then reads that record)")
        else:  # rmfrd
            _cli(["evaluate-large", "--protocol", "rmfrd", "--features", embed("rmfrd_root", "rmfrd"), "--model", spec,
                  "--out", str(out), *q])
    else:
        raise ConfigError(f"no evaluation route for protocol {protocol!r}")
    return out
