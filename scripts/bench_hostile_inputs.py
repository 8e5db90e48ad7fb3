#!/usr/bin/env python
"""Peak memory and time of the CLI on hostile inputs, beside the same commands on ordinary inputs.

Every case of the bad-input suite's families given (default: the round-3 part-A families: reads outside
the model, code from data, unbounded memory, non-regular files) is built exactly as the suite builds it
(`tests/test_bad_input_suite.py`, loaded by path), then run as `arface ...` in a fresh subprocess; the
script prints its exit status, peak resident memory (os.wait4 ru_maxrss of that process and its children)
and wall time. The anchors are ordinary runs of the same commands (`inspect-rec`, `evaluate --protocol lfw`,
`pack-rec`, `embed`, and `train` stopped by a config error) measured in the same run, so a figure reads
against the cost of starting the package (imports of torch and OpenCV dominate it).

    python scripts/bench_hostile_inputs.py [--families unbounded-memory,not-a-regular-file] [--cases NAME,...]
                                           [--timeout 120]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("read-outside-model", "code-from-data", "unbounded-memory", "not-a-regular-file")


def _suite():
    spec = importlib.util.spec_from_file_location("bad_input_suite", ROOT / "tests" / "test_bad_input_suite.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _run(argv: list[str], cwd: Path, env: dict, timeout: float) -> tuple[int, float, float]:
    """(exit status, peak RSS in MiB, wall seconds) of `arface ARGV` in a fresh process."""
    code = "import sys\nfrom arface_repro.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = t0 + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            return -9, usage.ru_maxrss / 1024, time.perf_counter() - t0
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated suite categories")
    ap.add_argument("--cases", help="only these comma-separated case names (the anchors always run)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds before a case counts as hung")
    args = ap.parse_args(argv)
    suite = _suite()
    families = set(args.families.split(","))
    env0 = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env0.pop("ARFACE_PROTOCOLS", None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_root:
        def anchor_inspect(t):
            suite.rec_files(t / "in/r")
            return ["inspect-rec", str(t / "in/r")]

        def anchor_pack_rec(t):
            suite.image_folder(t / "in/f")
            return ["pack-rec", str(t / "in/f"), str(t / "out/o"), "--quiet"]

        by_name = {c.name: c for c in suite.CASES}
        anchors = [("anchor: inspect-rec on a valid pair", anchor_inspect, 0), ("anchor: evaluate lfw", suite.lfw_eval, 0),
                   ("anchor: pack-rec of 4 images", anchor_pack_rec, 0),
                   ("anchor: embed with an ONNX model", by_name["onnx-external-inside-folder"].build, 0),
                   ("anchor: train, config error", by_name["train-config-lr-fast"].build, 2)]
        only = set(args.cases.split(",")) if args.cases else None
        cases = [(c.name, c.build, c.category, c.rc) for c in suite.CASES
                 if c.category in families and (only is None or c.name in only)]
        cases += [(n, b, "anchor", rc) for n, b, rc in anchors]
        for i, (name, build, category, want) in enumerate(cases):
            t = Path(tmp_root) / f"c{i}"
            (t / "in").mkdir(parents=True)
            (t / "out").mkdir()
            os.environ.pop("ARFACE_PROTOCOLS", None)
            cwd = os.getcwd()
            os.chdir(t)
            try:
                argv = [str(a) for a in build(t)]
            except BaseException as exc:  # noqa: BLE001 - a case the suite skips here (e.g. no shared weights)
                rows.append((name, category, None, None, None, f"not run: {type(exc).__name__}"))
                continue
            finally:
                os.chdir(cwd)
            env = dict(env0)
            if "ARFACE_PROTOCOLS" in os.environ:
                env["ARFACE_PROTOCOLS"] = os.environ.pop("ARFACE_PROTOCOLS")
            rc, mib, wall = _run(argv, t, env, args.timeout)
            note = "" if rc == want else f"expected exit {want}"
            rows.append((name, category, rc, mib, wall, note))
            print(f"{name:<44} {category:<20} exit {rc:>3}  peak {mib:7.0f} MiB  {wall:6.1f} s  {note}", flush=True)
    measured = [r for r in rows if r[3] is not None and r[1] != "anchor"]
    if measured:
        worst_mem = max(measured, key=lambda r: r[3])
        worst_time = max(measured, key=lambda r: r[4])
        print(f"\nlargest peak: {worst_mem[3]:.0f} MiB ({worst_mem[0]}); longest: {worst_time[4]:.1f} s ({worst_time[0]})")
    for r in rows:
        if r[3] is None:
            print(f"{r[0]}: {r[5]}")
    print("anchors: " + "; ".join(f"{r[0][8:]} {r[3]:.0f} MiB, {r[4]:.1f} s" for r in rows if r[1] == "anchor" and r[3]))
    print("(shared machine: times are noisy; peak memory is the process's own and its children's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
