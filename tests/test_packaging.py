"""A non-editable install works: the wheel carries `protocols/` (specs, model presets, the paper's tables) as
package data, and `arface evaluate --protocol lfw --features F --pairs P` runs from an unrelated folder with
only the installed copy on the path (no checkout, no $ARFACE_PROTOCOLS)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from arface_repro.io.feature_store import save_feature_store
from arface_repro.io.pairs import parse_lfw_pairs
from arface_repro.shared_data import CHECKOUT_PROTOCOLS, REPO_ROOT
from arface_repro.utils.provenance import code_key

SOURCE_ITEMS = ("arface_repro", "protocols", "setup.py", "setup.cfg", "pyproject.toml", "README.md")


def _protocol_files() -> list[str]:
    return sorted(p.relative_to(CHECKOUT_PROTOCOLS).as_posix() for p in CHECKOUT_PROTOCOLS.rglob("*")
                  if p.is_file() and p.suffix in (".yaml", ".md"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the checkout (building in place would write build/ into the checkout)."""
    if not CHECKOUT_PROTOCOLS.is_dir() or not (REPO_ROOT / "setup.py").is_file():
        pytest.skip("not running from a checkout (no setup.py / protocols/ beside the package)")
    src = tmp_path_factory.mktemp("src")
    for item in SOURCE_ITEMS:
        p = REPO_ROOT / item
        if p.is_dir():
            shutil.copytree(p, src / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(p, src / item)
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
           "--disable-pip-version-check", "-q", str(src), "-w", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if res.returncode != 0 and "No module named" in res.stderr and ("setuptools" in res.stderr or "wheel" in res.stderr):
        pytest.skip(f"cannot build a wheel without build isolation here: {res.stderr.strip().splitlines()[-1]}")
    assert res.returncode == 0, res.stderr
    (whl,) = out.glob("arface_repro-*.whl")
    return whl


def test_wheel_carries_the_protocols_folder(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _protocol_files()
    assert len(expected) > 30 and {"lfw.yaml", "models/facenet-20180408.yaml", "paper/table_10.yaml"} <= set(expected)
    missing = [f for f in expected if f"arface_repro/protocols/{f}" not in names]
    assert not missing, f"protocols/ files absent from the wheel: {missing}"
    assert "arface_repro/cli.py" in names and "arface_repro/eval/protocols/spec.py" in names


def _lfw_like_pairs(path: Path, folds: int = 10, per_class: int = 6) -> None:
    """A pair file in LFW View 2 format over made-up identities (3 images each)."""
    lines = [f"{folds}\t{per_class}"]
    for f in range(folds):
        lines += [f"id{f}_{k}\t1\t{2 + k % 2}" for k in range(per_class)]
        lines += [f"id{f}_{k}\t1\tid{f}_{(k + 1) % per_class}\t3" for k in range(per_class)]
    path.write_text("\n".join(lines) + "\n")


def test_installed_copy_evaluates_from_another_folder(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:  # what `pip install` puts in site-packages: the wheel's purelib files
        z.extractall(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    pairs = work / "pairs.txt"
    _lfw_like_pairs(pairs)
    paths = parse_lfw_pairs(pairs).unique_paths()
    rng = np.random.default_rng(0)
    ident = {p.split("/")[0]: rng.standard_normal(64) for p in paths}
    feats = np.stack([ident[p.split("/")[0]] + 0.8 * rng.standard_normal(64) for p in paths]).astype(np.float32)
    save_feature_store(work / "feats.npz", feats, paths)

    env = {k: v for k, v in os.environ.items() if k not in ("ARFACE_PROTOCOLS", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)  # ahead of any editable install of the checkout in the interpreter's site-packages
    probe = subprocess.run(
        [sys.executable, "-c", "import arface_repro, arface_repro.shared_data as s, arface_repro.utils.provenance as p;"
         "print(arface_repro.__file__); print(s.protocols_dir()); print(p.code_key())"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    pkg_file, proto_dir, key = probe.stdout.split()
    assert Path(pkg_file).is_relative_to(site) and Path(proto_dir) == site / "arface_repro" / "protocols"
    # the installed copy of unchanged code has the checkout's code identity (protocols/ hashed once either way)
    assert key == code_key()

    out = work / "rec.json"
    res = subprocess.run([sys.executable, "-m", "arface_repro", "evaluate", "--protocol", "lfw", "--features",
                          "feats.npz", "--pairs", "pairs.txt", "--out", str(out)],
                         cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    rec = json.loads(out.read_text())
    assert rec["protocol"] == "lfw" and rec["counts"]["pairs"] == 120 and rec["counts"]["folds"] == 10
    assert 50.0 < rec["metrics"]["Acc"] <= 100.0
    assert rec["git_commit"] is None and rec["source_sha256"] == key  # an installed copy is not a checkout


def _requirement_names(section: str) -> set[str]:
    import configparser
    import re

    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / "setup.cfg", encoding="utf-8")
    sec, _, key = section.rpartition(".")
    lines = [ln.strip() for ln in cfg[sec][key].splitlines() if ln.strip()]
    return {re.split(r"[<>=!~;\[ ]", ln, maxsplit=1)[0].lower().replace("_", "-") for ln in lines}


def test_constraints_pin_every_dependency_and_the_readme_and_ci_use_them():
    if not (REPO_ROOT / "constraints.txt").is_file():
        pytest.skip("not running from a checkout (no constraints.txt)")
    pins = {}
    for n, line in enumerate((REPO_ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and name.strip() and version.strip() and " " not in line, f"constraints.txt:{n}: not 'name==version': {line!r}"
        pins[name.lower().replace("_", "-")] = version
    assert "arface-repro" not in pins, "constraints.txt pins the package itself"
    needed = _requirement_names("options.install_requires") | _requirement_names("options.extras_require.test")
    assert not needed - set(pins), f"dependencies without a pin in constraints.txt: {sorted(needed - set(pins))}"

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8").split("```bash\n", 1)[1].split("```", 1)[0]
    install, test = readme.strip().splitlines()[:2]
    assert install.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    pip_line = install.rsplit("&& ", 1)[1]
    assert pip_line == 'pip install -e ".[test]" -c constraints.txt'
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert pip_line in [ln.strip() for ln in ci] and test in [ln.strip() for ln in ci]
    # the README's CPU-only line names the pinned torch and torchvision (a regenerated file must not leave it behind)
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    cpu = [ln.strip() for ln in text.splitlines() if "download.pytorch.org/whl/cpu" in ln and ln.strip().startswith("pip")]
    assert cpu == [f"pip install torch=={pins['torch']} torchvision=={pins['torchvision']} "
                   "--index-url https://download.pytorch.org/whl/cpu"], cpu
