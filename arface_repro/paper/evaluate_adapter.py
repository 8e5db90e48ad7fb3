"""The one place where the paper layer asks the `arface` command line to evaluate a model.

Every evaluation of `reproduce_table.py --run` goes through `evaluate_model(protocol, spec, datasets, out)`,
which runs `arface evaluate --protocol P --model SPEC --data-root ROOT [file options] --out OUT`: the
protocol finds its files under the dataset root (`protocols/<P>.yaml`) and extracts the images it needs
with the model. Keeping the call here means a change of the evaluation command's flags is a change of this
file only.

`datasets` maps the keys of protocols/paper/manifest.yaml `evaluation_data` to paths (from DATA.yaml):
`<P>_root` is the dataset root of protocol P (`lfw_root` serves LFW and BLUFR); optional keys name files
that are not at the protocol's default place under that root (`lfw_pairs`, `blufr_config`, `ytf_splits`, ...).
"""

from __future__ import annotations

import os
from pathlib import Path

from arface_repro.errors import ArfaceError, ConfigError

#: protocol -> (dataset-root key, [(option, dataset key, required?)])
ROUTES: dict[str, tuple[str, list[tuple[str, str, bool]]]] = {
    "lfw": ("lfw_root", [("--pairs", "lfw_pairs", True)]),
    "blufr": ("lfw_root", [("--config", "blufr_config", True)]),
    "calfw": ("calfw_root", [("--pairs", "calfw_pairs", True)]),
    "cplfw": ("cplfw_root", [("--pairs", "cplfw_pairs", True)]),
    "cfp-fp": ("cfp_root", []),
    "ytf": ("ytf_root", [("--pairs", "ytf_splits", False)]),
    "ijbb": ("ijbb_root", [("--meta-dir", "ijbb_meta", False)]),
    "ijbc": ("ijbc_root", [("--meta-dir", "ijbc_meta", False)]),
    "megaface": ("megaface_root", [("--facescrub-list", "megaface_facescrub_list", False),
                                   ("--megaface-list", "megaface_distractor_list", False)]),
    "rmfrd": ("rmfrd_root", []),
}


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
    """Evaluate model `spec` on `protocol`; the record is written to `out`. Returns `out`.

    `work_dir` holds the extraction cache of this run (reused when the same model is evaluated again)."""
    out = Path(out)
    if protocol == "trillion":
        raise ConfigError("trillion: the protocol reads DeepGlint .bin feature matrices; embed the probe and "
                          "distractor images yourself and run `arface evaluate --protocol trillion --features ... "
                          f"--out {out}` (the table then reads that record)")
    if protocol not in ROUTES:
        raise ConfigError(f"no evaluation route for protocol {protocol!r}")
    root_key, files = ROUTES[protocol]
    argv = ["evaluate", "--protocol", protocol, "--model", spec, "--data-root", _need(datasets, root_key, protocol)]
    for option, key, required in files:
        if required or datasets.get(key):
            argv += [option, _need(datasets, key, protocol)]
    argv += ["--cache-dir", str(Path(work_dir) / "cache"), "--out", str(out)]
    _cli(argv + (["--quiet"] if quiet else []))
    return out
