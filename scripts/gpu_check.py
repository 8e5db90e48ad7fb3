#!/usr/bin/env python
"""One prepared check of the GPU path on one CUDA GPU, in a fixed time budget (default 450 s). Run it through
`scripts/gpu_check.sh`, which sets PYTHONPATH to this checkout (nothing is installed into site-packages).

Stages, in priority order, each in its own process group with a time limit (a stage that runs out is killed
and recorded as timed out; the rest go on while the budget lasts):

1. environment: Python, torch, the GPU, and the imports the package needs; wheels in `.whl/` (if any) are
   installed into a temporary folder first (the machine may have no package index);
2. the CUDA-marked tests (`pytest -m cuda` over every test file that has the marker);
3. training throughput (`scripts/bench_train_gpu.py`): MobileFaceNet and IR-50 (`ir50`, else `iresnet50`),
   plain vs ARFace (num_layers 3 / 9), AMP bf16, channels-last, synthetic 112x112 faces, global batch 512,
   DataLoader workers; embedding throughput (backbone on a device batch; `extract_features` over JPEG files);
4. the large protocols on the GPU: MegaFace with 1,000,000 distractors (512-D) and IJB-C at full size
   (469,375 images, 15,658,489 pairs), synthetic inputs written by `scripts/make_synthetic_large.py` (in the
   background while the tests run), scored by `arface evaluate --protocol P --device cuda`; wall time of the
   command and the time inside the protocol's scoring function (cProfile's cumulative time);
5. the plain nets again in contiguous NCHW (does the CUDA default, channels-last, help?), then training with
   `train.compile=true` (MobileFaceNet plain and ARFace), when the budget allows;
6. the same large protocols with `--device cpu`, when the budget allows: the records' metrics compared
   (integer-derived values must be equal; IJB TARs within one genuine pair).

Everything goes to one JSON (`--out FILE`; else `$ARFACE_OUT/gpu_check.json`; else results/gpu_check.json),
rewritten after every stage, with a log beside it (`gpu_check.log`) and the tests' JUnit XML. The goals are
printed beside the figures: MobileFaceNet training >= 6,000 img/s on one H200, ARFace overhead <= 1.05x,
MegaFace 1M <= 5 s. `--smoke` runs every stage at toy sizes on the CPU (to check the script itself).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import importlib.util
import json
import os
import platform
import pstats
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"mobilefacenet_train_img_s_min": 6000.0, "arface_overhead_max": 1.05, "megaface_1m_s_max": 5.0}
NEEDED = ("numpy", "scipy", "sklearn", "cv2", "yaml", "tqdm", "matplotlib", "PIL", "torch", "torchvision", "pytest")
IJB_METRICS_TOLERANCE = "one genuine pair (1 / number of genuine pairs) per TAR"
# `python -c PROFILED PROF MODULE ARGS...`: run a module as __main__ under cProfile, keeping its exit status
# (`python -m cProfile -m MODULE` exits 0 whatever the module's status)
PROFILED = """
import cProfile, runpy, sys
prof, mod = sys.argv[1], sys.argv[2]
sys.argv = [mod] + sys.argv[3:]
p = cProfile.Profile()
code = 0
try:
    p.runcall(runpy.run_module, mod, run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
finally:
    p.dump_stats(prof)
sys.exit(code)
"""


class Check:
    def __init__(self, args):
        self.args = args
        self.t0 = time.monotonic()
        self.out = Path(args.out).resolve()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.log = self.out.with_name("gpu_check.log")
        self.log.write_text("")
        self.work = Path(tempfile.mkdtemp(prefix="arface_gpu_check_"))
        self.py = sys.executable
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), self.env.get("PYTHONPATH", "")) if p)
        self.background: dict[str, tuple[subprocess.Popen, float, object]] = {}
        self.result = {"started_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       "budget_s": args.budget, "smoke": args.smoke, "goals": GOALS, "stages": {}, "figures": {}}

    # ---------------------------------------------------------------------------------------- plumbing
    def remaining(self) -> float:
        return self.args.budget - (time.monotonic() - self.t0)

    def save(self) -> None:
        self.result["elapsed_s"] = round(time.monotonic() - self.t0, 1)
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.result, indent=1, default=str))
        tmp.replace(self.out)

    def say(self, text: str) -> None:
        line = f"[gpu_check {time.monotonic() - self.t0:6.1f}s] {text}"
        print(line, flush=True)
        with open(self.log, "a") as fh:
            fh.write(line + "\n")

    def _pump(self, proc: subprocess.Popen, echo: bool) -> None:
        with open(self.log, "a") as fh:
            for line in proc.stdout:
                fh.write(line)
                fh.flush()
                if echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()

    def run(self, name: str, cmd: list[str], cap: float, reserve: float = 10.0, echo: bool = True) -> dict:
        """Run `cmd` with a limit of min(cap, budget left - reserve) seconds; its output goes to the log."""
        limit = min(cap, self.remaining() - reserve)
        stage = {"cmd": " ".join(map(str, cmd)).replace(PROFILED, "'<cProfile wrapper>'"), "limit_s": round(limit, 1)}
        if limit < 5:
            stage.update(skipped=f"time budget spent ({self.remaining():.0f} s left)")
            self.say(f"{name}: skipped, budget spent")
            self.result["stages"][name] = stage
            self.save()
            return stage
        self.say(f"{name}: {stage['cmd']}  (limit {limit:.0f} s)")
        t = time.monotonic()
        proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        pump = threading.Thread(target=self._pump, args=(proc, echo), daemon=True)
        pump.start()
        try:
            rc = proc.wait(timeout=limit)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc, timed_out = proc.wait(), True
        pump.join(timeout=10)
        stage.update(rc=rc, seconds=round(time.monotonic() - t, 2), timed_out=timed_out)
        self.say(f"{name}: rc {rc}{' (timed out)' if timed_out else ''} in {stage['seconds']} s")
        self.result["stages"][name] = stage
        self.save()
        return stage

    def start_background(self, name: str, cmd: list[str]) -> None:
        fh = open(self.work / f"{name}.log", "w")
        self.say(f"{name}: started in the background: {' '.join(map(str, cmd))}")
        proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.background[name] = (proc, time.monotonic(), fh)

    def wait_background(self, name: str, cap: float) -> bool:
        proc, t, fh = self.background[name]
        limit = max(1.0, min(cap, self.remaining() - 10))
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc = proc.wait()
        fh.close()
        text = (self.work / f"{name}.log").read_text()
        with open(self.log, "a") as log:
            log.write(f"==== {name} (background)\n{text}\n")
        stage = {"rc": rc, "seconds": round(time.monotonic() - t, 2), "output_tail": text[-600:]}
        self.result["stages"][name] = stage
        self.say(f"{name}: rc {rc} after {stage['seconds']} s")
        self.save()
        return rc == 0

    def cleanup(self) -> None:
        for proc, _, fh in self.background.values():
            if proc.poll() is None:
                _kill_group(proc)
            fh.close()
        shutil.rmtree(self.work, ignore_errors=True)

    # ---------------------------------------------------------------------------------------- stages
    def stage_environment(self) -> bool:
        wheels = ROOT / ".whl"
        env = {"python": platform.python_version(), "executable": self.py, "cpus": os.cpu_count(),
               "platform": platform.platform()}
        if wheels.is_dir() and any(wheels.glob("*.whl")):
            target = self.work / "site"
            cmd = [self.py, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                   "--no-cache-dir", "--target", target, *sorted(wheels.glob("*.whl"))]
            self.run("install_wheels", cmd, cap=120)
            self.env["PYTHONPATH"] = os.pathsep.join([str(target), self.env["PYTHONPATH"]])
            site.addsitedir(str(target))   # the dependency wheels, for the import check below
        missing = []
        for mod in NEEDED:
            try:
                importlib.import_module(mod)
            except Exception as exc:  # noqa: BLE001 - any import failure is a missing dependency here
                missing.append(f"{mod} ({type(exc).__name__})")
        env["missing_imports"] = missing
        try:
            import torch

            env.update(torch=torch.__version__, cuda_available=torch.cuda.is_available(),
                       torch_cuda=torch.version.cuda)
            if torch.cuda.is_available():
                p = torch.cuda.get_device_properties(0)
                env.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1),
                           multiprocessors=p.multi_processor_count, capability=f"{p.major}.{p.minor}",
                           bf16_supported=torch.cuda.is_bf16_supported(), gpu_count=torch.cuda.device_count())
        except Exception as exc:  # noqa: BLE001
            env["torch_error"] = f"{type(exc).__name__}: {exc}"
        if shutil.which("nvidia-smi"):
            q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                                "--format=csv,noheader"], capture_output=True, text=True)
            env["nvidia_smi"] = q.stdout.strip() or q.stderr.strip()
        self.result["environment"] = env
        self.say(f"environment: {json.dumps(env)}")
        self.save()
        if missing:
            self.say(f"missing imports: {missing} (carry wheels in .whl/; see the README's GPU section)")
        if not env.get("cuda_available") and not self.args.smoke:
            self.result["error"] = "no CUDA device: this check needs a GPU (--smoke runs it on the CPU at toy sizes)"
            self.say(self.result["error"])
            self.save()
            return False
        return True

    def stage_tests(self) -> None:
        files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                       if "mark.cuda" in p.read_text(encoding="utf-8"))
        junit = self.out.with_name("gpu_check_pytest.xml")
        cmd = [self.py, "-m", "pytest", "-q", "-rfEs", "-m", "cuda", "-p", "no:cacheprovider",
               f"--junitxml={junit}", *files]
        if importlib.util.find_spec("pytest_timeout") is not None:
            cmd += ["--timeout", "240"]
        stage = self.run("cuda_tests", cmd, cap=self.args.tests_cap)
        self.result["tests"] = {"files": files, **_junit_summary(junit)} if junit.exists() else {"files": files}
        if stage.get("timed_out"):
            self.result["tests"]["note"] = "the test run was stopped at its time limit"
        self.save()

    def bench_cmd(self, out: Path, *extra: str) -> list:
        a = self.args
        if a.smoke:
            sizes = ["--device", "cpu", "--models", "tiny_resnet", "--batch", "8", "--steps", "2", "--warmup", "1",
                     "--workers", "2", "--embed-batch", "16", "--embed-images", "32", "--threads", "2"]
        else:
            sizes = ["--device", "cuda", "--models", "mobilefacenet,ir50", "--batch", str(a.batch),
                     "--steps", str(a.steps), "--warmup", "8", "--workers", str(a.workers),
                     "--embed-images", str(a.embed_images)]
        return [self.py, "scripts/bench_train_gpu.py", *sizes, "--amp", "bf16", "--out", out, *extra]

    def stage_train(self) -> None:
        out = self.work / "bench_train.json"
        self.run("train_throughput", self.bench_cmd(out), cap=self.args.train_cap)
        if out.exists():
            self.result["train_bench"] = json.loads(out.read_text())
        self.save()

    def stage_contiguous(self) -> None:
        """The plain nets once more in contiguous NCHW: does channels-last (the CUDA default) help?"""
        out = self.work / "bench_contiguous.json"
        cmd = self.bench_cmd(out, "--memory-format", "contiguous", "--variants", "plain")
        cmd[cmd.index("--embed-images") + 1] = "0"
        self.run("train_throughput_contiguous", cmd, cap=60)
        if out.exists():
            self.result["train_bench_contiguous"] = json.loads(out.read_text())
        self.save()

    def stage_compile(self) -> None:
        out = self.work / "bench_compile.json"
        model = "tiny_resnet" if self.args.smoke else "mobilefacenet"
        cmd = self.bench_cmd(out, "--compile", "on", "--compile-models", model)
        cmd[cmd.index("--models") + 1] = model
        cmd[cmd.index("--embed-images") + 1] = "0"
        self.run("train_throughput_compiled", cmd, cap=self.args.compile_cap, reserve=5)
        if out.exists():
            self.result["train_bench_compiled"] = json.loads(out.read_text())
        self.save()

    def start_large_inputs(self) -> None:
        a = self.args
        mf, ij = self.work / "megaface", self.work / "ijbc"
        dis = "2000" if a.smoke else str(a.distractors)
        self.start_background("make_megaface", [self.py, "scripts/make_synthetic_large.py", "megaface", mf,
                                                "--distractors", dis, "--dim", "512"])
        self.start_background("make_ijbc", [self.py, "scripts/make_synthetic_large.py", "ijbc", ij,
                                            "--scale", "0.002" if a.smoke else str(a.ijb_scale), "--dim", "512"])

    def evaluate(self, protocol: str, device: str) -> None:
        d = self.work / ("megaface" if protocol == "megaface" else "ijbc")
        record = self.work / f"{protocol}_{device}.json"
        prof = self.work / f"{protocol}_{device}.prof"
        args = ["--protocol", protocol, "--data-root", d, "--device", device, "--out", record, "--quiet"]
        if protocol == "megaface":
            args += ["--features", d / "facescrub.npz", "--distractor-features", d / "megaface_distractors.bin",
                     "--noise-rule", "none"]
        else:
            args += ["--features", d / "ijbc_features.npz"]
        name = f"{protocol}_{device}"
        stage = self.run(name, [self.py, "-c", PROFILED, prof, "arface_repro", "evaluate", *args],
                         cap=self.args.large_cap)
        fig = {"device": device, "rc": stage.get("rc")}
        if stage.get("rc") == 0 and record.exists():
            fig["wall_s"] = stage["seconds"]  # the whole command: start-up, reading the inputs, scoring, the record
            fig["metrics"] = json.loads(record.read_text()).get("metrics")
            if prof.exists():
                fig["scoring_s"] = _cumtime(prof, protocol)
        else:
            fig["error"] = stage.get("skipped") or ("timed out" if stage.get("timed_out") else "failed (see the log)")
        self.result.setdefault("large", {})[name] = fig
        self.save()

    def compare_large(self) -> None:
        large = self.result.get("large", {})
        for protocol in ("megaface", "ijbc"):
            a, b = large.get(f"{protocol}_cuda", {}).get("metrics"), large.get(f"{protocol}_cpu", {}).get("metrics")
            if not a or not b:
                continue
            diff = {k: abs(a[k] - b[k]) for k in a if isinstance(a.get(k), (int, float)) and isinstance(b.get(k), (int, float))}
            large[f"{protocol}_cuda_vs_cpu"] = {
                "max_abs_metric_difference": max(diff.values()) if diff else None, "equal": a == b,
                "rule": "every metric equal (integer counts)" if protocol == "megaface" else IJB_METRICS_TOLERANCE,
                "differences": {k: v for k, v in diff.items() if v}}
        self.save()

    # ---------------------------------------------------------------------------------------- summary
    def summarise(self) -> None:
        fig: dict = {}
        rows = (self.result.get("train_bench") or {}).get("train", []) + \
               (self.result.get("train_bench_compiled") or {}).get("train", [])
        ok = [r for r in rows if "img_s" in r]

        def pick(model_prefix, variant, compiled):
            return next((r for r in ok if r["model"].startswith(model_prefix) and r["variant"] == variant
                         and r["compile"] == compiled), None)

        for model in ("mobilefacenet", "ir50", "iresnet50", "tiny_resnet"):
            for comp in (False, True):
                tag = model + ("_compiled" if comp else "")
                plain, arface = pick(model, "plain", comp), pick(model, "arface", comp)
                if plain:
                    fig[f"{tag}_plain_train_img_s"] = round(plain["img_s"], 1)
                if arface:
                    fig[f"{tag}_arface_l{arface['num_layers']}_train_img_s"] = round(arface["img_s"], 1)
                if plain and arface:
                    fig[f"{tag}_arface_overhead"] = round(plain["img_s"] / arface["img_s"], 4)
        for r in (self.result.get("train_bench_contiguous") or {}).get("train", []):
            if "img_s" in r:
                fig[f"{r['model']}_contiguous_{r['variant']}_train_img_s"] = round(r["img_s"], 1)
        for r in (self.result.get("train_bench") or {}).get("embed", []):
            if "img_s" in r:
                what = "backbone_" + r["precision"] if "precision" in r else "extract_features"
                fig[f"{r['model']}_embed_{what}_img_s"] = round(r["img_s"], 1)
        large = self.result.get("large", {})
        for k, v in large.items():
            if "wall_s" in v:
                fig[f"{k}_wall_s"] = v["wall_s"]
            if v.get("scoring_s") is not None:
                fig[f"{k}_scoring_s"] = round(v["scoring_s"], 3)
        goals = {}
        mfn = [fig.get("mobilefacenet_plain_train_img_s"), fig.get("mobilefacenet_compiled_plain_train_img_s")]
        mfn = [v for v in mfn if v is not None]
        goals["mobilefacenet_train_img_s"] = _goal(max(mfn) if mfn else None, ">=", GOALS["mobilefacenet_train_img_s_min"])
        for k in [k for k in fig if k.endswith("_arface_overhead") and not k.startswith("tiny")]:
            goals[k] = _goal(fig[k], "<=", GOALS["arface_overhead_max"])
        goals["megaface_1m_scoring_s"] = _goal(fig.get("megaface_cuda_scoring_s"), "<=", GOALS["megaface_1m_s_max"])
        goals["megaface_1m_wall_s"] = _goal(fig.get("megaface_cuda_wall_s"), "<=", GOALS["megaface_1m_s_max"])
        self.result["figures"] = fig
        self.result["goal_checks"] = goals
        self.save()
        self.say("figures:")
        for k, v in fig.items():
            self.say(f"  {k:<50s} {v}")
        self.say("goals (value, goal, met):")
        for k, g in goals.items():
            self.say(f"  {k:<50s} {g['value']}  {g['goal']}  {g['met']}")
        t = self.result.get("tests", {})
        self.say(f"cuda tests: {t.get('passed')} passed, {t.get('failed')} failed, {t.get('errors')} errors, "
                 f"{t.get('skipped')} skipped")


def _goal(value, op: str, target: float) -> dict:
    met = None if value is None else (value >= target if op == ">=" else value <= target)
    return {"value": value, "goal": f"{op} {target}", "met": met}


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _junit_summary(path: Path) -> dict:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    out = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0, "cases": []}
    for s in suites:
        out["tests"] += int(s.get("tests", 0))
        out["failed"] += int(s.get("failures", 0))
        out["errors"] += int(s.get("errors", 0))
        out["skipped"] += int(s.get("skipped", 0))
        for case in s.iter("testcase"):
            outcome, message = "passed", None
            for tag in ("failure", "error", "skipped"):
                node = case.find(tag)
                if node is not None:
                    outcome = tag
                    message = (node.get("message") or node.text or "")[:600]
            out["cases"].append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                                 "seconds": float(case.get("time", 0) or 0), **({"message": message} if message else {})})
    out["passed"] = out["tests"] - out["failed"] - out["errors"] - out["skipped"]
    return out


def _cumtime(prof: Path, protocol: str) -> float | None:
    """Cumulative seconds in the protocol's scoring function: MegaFace's `evaluate` in eval/megaface/metric.py, IJB's
    `evaluate_11_arrays` (or `evaluate_11`) in eval/ijb/metric.py."""
    names = {"megaface": ("megaface.py", ("evaluate",)), "ijbc": ("ijb.py", ("evaluate_11_arrays", "evaluate_11"))}
    suffix, funcs = names[protocol]
    stats = pstats.Stats(str(prof)).stats
    best = None
    for func in funcs:
        for (filename, _, name), (_, _, _, cum, _) in stats.items():
            if name == func and filename.replace("\\", "/").endswith(f"arface_repro/eval/{suffix}"):
                best = max(best or 0.0, cum)
        if best is not None:
            return best
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help="the JSON (default $ARFACE_OUT/gpu_check.json, else results/gpu_check.json)")
    p.add_argument("--budget", type=float, default=450.0, help="seconds for the whole check (default 450)")
    p.add_argument("--smoke", action="store_true", help="every stage at toy sizes on the CPU (checks the script)")
    p.add_argument("--batch", type=int, default=512, help="global training batch (default 512)")
    p.add_argument("--steps", type=int, default=30, help="timed training steps per variant")
    p.add_argument("--workers", type=int, default=8, help="DataLoader worker processes in the training benchmark")
    p.add_argument("--embed-images", type=int, default=8192, help="JPEG files for the extraction benchmark")
    p.add_argument("--distractors", type=int, default=1_000_000, help="MegaFace distractors")
    p.add_argument("--ijb-scale", type=float, default=1.0, help="IJB-C size (1 = full)")
    p.add_argument("--tests-cap", type=float, default=170.0)
    p.add_argument("--train-cap", type=float, default=130.0)
    p.add_argument("--large-cap", type=float, default=90.0)
    p.add_argument("--compile-cap", type=float, default=150.0)
    p.add_argument("--skip", default="",
                   help="comma-separated stages to leave out: tests,train,large,contiguous,compile,large_cpu")
    args = p.parse_args(argv)
    if args.out is None:
        base = os.environ.get("ARFACE_OUT")
        args.out = str(Path(base) / "gpu_check.json") if base else str(ROOT / "results" / "gpu_check.json")
    skip = set(filter(None, args.skip.split(",")))
    check = Check(args)
    try:
        if not check.stage_environment():
            return 2
        if "large" not in skip:
            check.start_large_inputs()
        if "tests" not in skip:
            check.stage_tests()
        if "train" not in skip:
            check.stage_train()
        if "large" not in skip:
            device = "cpu" if args.smoke else "cuda"
            if check.wait_background("make_megaface", 120):
                check.evaluate("megaface", device)
            if check.wait_background("make_ijbc", 150):
                check.evaluate("ijbc", device)
        if "contiguous" not in skip and not args.smoke:
            check.stage_contiguous()
        if "compile" not in skip and not args.smoke:  # (inductor on a CPU would need minutes of C++ builds)
            check.stage_compile()
        if "large" not in skip and "large_cpu" not in skip and not args.smoke:
            for protocol in ("megaface", "ijbc"):
                if f"{protocol}_cuda" in check.result.get("large", {}):
                    check.evaluate(protocol, "cpu")
            check.compare_large()
        check.summarise()
    finally:
        check.cleanup()
        check.save()
        check.say(f"wrote {check.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
