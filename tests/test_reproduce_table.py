"""scripts/reproduce_table.py: the paper's tables alone, beside fabricated records (status, differences,
paired tests, --strict), and the synthetic quick mode (trained, recorded, reused)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.stats as ss

from arface_repro.commands.paper import reproduce_table_main
from arface_repro.io.records import build_record, write_record
from arface_repro.paper import reproduce_table
from arface_repro.paper.manifest import load_manifest, record_path
from arface_repro.paper.targets import ROMAN, get_table


@pytest.fixture(scope="module")
def rt(tmp_path_factory):
    """`reproduce_table_main` (what `scripts/reproduce_table.py` runs) as `rt.main`."""
    with pytest.MonkeyPatch.context() as mp:
        # reports of runs without --tables-dir go here
        mp.setattr(reproduce_table, "DEFAULT_TABLES", tmp_path_factory.mktemp("tables"))
        yield SimpleNamespace(main=reproduce_table_main)


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_targets_only_csv_prints_every_table_as_printed(rt, tmp_path, capsys):
    for n in range(1, 12):
        assert rt.main([str(n), "--targets-only", "--format", "csv", "--tables-dir", str(tmp_path)]) == 0
        got = _csv(capsys.readouterr().out)
        t = get_table(ROMAN[n - 1])
        assert got == t.printed_lines()
        assert (tmp_path / f"table_{n:02d}_paper.csv").read_text(encoding="utf-8").splitlines()[0] == ",".join(
            f'"{c}"' if "," in c else c for c in t.header[0])
    assert rt.main(["X", "--targets-only"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Table X: COMPARISON OF ABLATION RESULTS(%)") and "num_layers = 12" in out


def test_targets_only_csv_equals_the_paper_text(rt, shared, capsys):
    from conftest import require

    from arface_repro.paper.paper_text import read_paper_tables

    text = read_paper_tables(require(shared / "paper" / "arface_tbiom2022.txt"))
    for n in range(1, 12):
        assert rt.main([str(n), "--targets-only", "--format", "csv"]) == 0
        want = [[c.replace("$", "") for c in line] for line in text[ROMAN[n - 1]].lines]
        assert _csv(capsys.readouterr().out) == want


def test_unknown_table_is_an_error(rt, capsys):
    assert rt.main(["12"]) == 2
    assert "unknown table '12'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- fabricated records

def _trained(run: str) -> dict:
    """The model_info of a checkpoint trained from the run's config (what the row's model is)."""
    return {"model_info": {"kind": "arface", "spec": f"arface:{run}/checkpoint_last.pt",
                           "config": load_manifest().runs[run].config}}


def _lfw_record(runs: Path, run: str, acc: float, correct: str | None = None, folds=None) -> Path:
    folds = folds if folds is not None else [acc] * 10
    rec = build_record("lfw", "insightface", {"Acc": acc, "Acc.std": float(np.std(folds))}, per_fold={"Acc": folds},
                       model=f"arface:{run}/checkpoint_last.pt", extra=_trained(run))
    if correct is not None:
        rec["per_pair"] = {"correct": correct}
    return write_record(rec, record_path(runs, run, "lfw"))


def _blufr_record(runs: Path, run: str, vr: list[float], dir_: list[float]) -> Path:
    agg = lambda v: float(np.mean(v) - np.std(v, ddof=1))  # noqa: E731
    rec = build_record("blufr", "blufr-official", {"VR@FAR=0.1%": agg(vr), "DIR@FAR=1%": agg(dir_)},
                       per_trial={"trial": list(range(1, 11)), "VR@FAR=0.1%": vr, "DIR@FAR=1%": dir_}, extra=_trained(run))
    return write_record(rec, record_path(runs, run, "blufr"))


def _cells(out: str) -> dict:
    rows = _csv(out)
    head = rows[0]
    return {(r[head.index("row")], r[head.index("column")]): dict(zip(head, r)) for r in rows[1:]}


def test_cells_from_fabricated_records(rt, tmp_path, capsys):
    runs = tmp_path / "runs"
    _lfw_record(runs, "mfn_plain", 98.60)              # paper 98.58: within 0.20
    _lfw_record(runs, "mfn_random", 98.40)             # paper 98.77: off by 0.37
    _blufr_record(runs, "mfn_plain", [98.5] * 9 + [98.1], [86.0] * 10)
    assert rt.main(["X", "--no-synthetic", "--format", "csv", "--runs-dir", str(runs), "--tables-dir", str(tmp_path / "t")]) == 0
    cells = _cells(capsys.readouterr().out)
    c = cells["mfn_subset.baseline", "LFW 6000pairs/%"]
    assert (c["paper"], c["measured"], c["diff"], c["status"], c["tolerance"], c["run"]) == ("98.58", "98.6000", "+0.0200", "within", "0.2", "mfn_plain")
    c = cells["mfn_subset.random_l0", "LFW 6000pairs/%"]
    assert (c["measured"], c["diff"], c["status"]) == ("98.4000", "-0.3700", "OFF")
    vr = np.mean([98.5] * 9 + [98.1]) - np.std([98.5] * 9 + [98.1], ddof=1)
    c = cells["mfn_subset.baseline", "BLUFR VR@FAR=0.1%"]
    assert c["measured"] == f"{vr:.4f}" and c["status"] == ("within" if abs(vr - 98.20) <= 0.3 else "OFF")
    assert cells["mfn_subset.attention_l3", "BLUFR DIR@FAR=1%"]["status"] == "missing"
    assert (tmp_path / "t" / "table_10.csv").is_file()
    # text: the structure, the fill count and what fills the rest
    assert rt.main(["X", "--no-synthetic", "--runs-dir", str(runs)]) == 0   # the summary: counts and the OFF cell
    out = capsys.readouterr().out
    assert "measured cells: 4 of 45 reproducible (3 within tolerance, 1 OFF, 41 missing)" in out
    assert "OFF mfn_subset.random_l0 | LFW 6000pairs/%: 98.40 vs paper 98.77 (-0.37, tolerance 0.2)" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert rt.main(["X", "--no-synthetic", "--wide", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "4 of 45 reproducible cells measured (1 off)" in out
    assert "what fills the missing cells" in out and "configs/mfn_arface_l3.yaml" in out and "datasets.blufr_config" in out


def test_strict_exit_codes(rt, tmp_path, capsys):
    runs = tmp_path / "runs"
    _lfw_record(runs, "mfn_plain", 98.60)
    assert rt.main(["X", "--no-synthetic", "--strict", "--runs-dir", str(runs)]) == 0
    _lfw_record(runs, "mfn_random", 98.40)
    assert rt.main(["X", "--no-synthetic", "--strict", "--runs-dir", str(runs)]) == 1
    assert rt.main(["X", "--no-synthetic", "--runs-dir", str(runs)]) == 0          # without --strict
    record_path(runs, "mfn_arface_l3", "lfw").parent.mkdir(parents=True)
    record_path(runs, "mfn_arface_l3", "lfw").write_text("{not json")
    assert rt.main(["X", "--no-synthetic", "--runs-dir", str(runs)]) == 2
    assert "mfn_arface_l3/lfw.json: not valid JSON" in capsys.readouterr().err
    write_record(build_record("lfw", "insightface", {"Acc.std": 0.1}), record_path(runs, "mfn_arface_l3", "lfw"))
    assert rt.main(["X", "--no-synthetic", "--runs-dir", str(runs)]) == 2
    assert "metric 'Acc' missing" in capsys.readouterr().err
    # a string where a number belongs is an error naming the record, not a "-" cell with exit 0
    write_record(build_record("lfw", "insightface", {"Acc": "99.2"}), record_path(runs, "mfn_arface_l3", "lfw"))
    assert rt.main(["X", "--no-synthetic", "--runs-dir", str(runs)]) == 2
    assert "mfn_arface_l3/lfw.json: metric 'Acc' missing or not a number" in capsys.readouterr().err


def test_stale_and_other_model_records_are_flagged_and_refused_by_strict(rt, tmp_path, capsys):
    """A record made by other code, or by a model that is not the row's, is never shown as a plain result."""
    from arface_repro.utils.provenance import code_key

    runs = tmp_path / "runs"
    args = ["X", "--no-synthetic", "--format", "csv", "--runs-dir", str(runs), "--tables-dir", str(tmp_path / "t")]
    path = _lfw_record(runs, "mfn_plain", 98.60)
    assert rt.main([*args, "--strict"]) == 0
    cell = _cells(capsys.readouterr().out)["mfn_subset.baseline", "LFW 6000pairs/%"]
    assert cell["status"] == "within" and cell["flags"] == ""
    rec = json.loads(path.read_text())

    def rewrite(**changes):
        write_record({**rec, **changes}, path)

    other_code = "0" * 64
    assert other_code != code_key()
    rewrite(source_sha256=other_code, git_commit="abc1234def", dirty=True)
    assert rt.main(args) == 0
    cell = _cells(capsys.readouterr().out)["mfn_subset.baseline", "LFW 6000pairs/%"]
    assert cell["status"] == "within" and cell["flags"].startswith("stale: made by code 000000000000 (git abc1234def, dirty)")
    tables = ["--tables-dir", str(tmp_path / "t")]
    assert rt.main(["X", "--no-synthetic", "--wide", "--runs-dir", str(runs), *tables]) == 0  # the full table says it
    out = capsys.readouterr().out
    assert "within ±0.2 (stale)" in out and f"code: source {code_key()[:12]}" in out
    assert rt.main(["X", "--no-synthetic", "--runs-dir", str(runs), *tables]) == 0  # and so does the summary
    out = capsys.readouterr().out
    assert "FLAGGED mfn_subset.baseline | LFW 6000pairs/%: stale" in out and f"code: source {code_key()[:12]}" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert rt.main([*args, "--strict"]) == 1
    assert f"--strict: refused {path}: stale" in capsys.readouterr().err
    rewrite(source_sha256=None)
    assert rt.main([*args, "--strict"]) == 1
    assert "the record has no code identity" in capsys.readouterr().err

    # a third-party MobileFaceNet (the shared ONNX through its preset) in the paper's MobileFaceNet row
    rewrite(model_info={"kind": "onnx", "spec": "mobilefacenet-expo:MobileFaceNet.onnx", "sha256": "ab" * 32})
    assert rt.main(args) == 0
    cell = _cells(capsys.readouterr().out)["mfn_subset.baseline", "LFW 6000pairs/%"]
    assert cell["flags"] == ("other model: mobilefacenet-expo:MobileFaceNet.onnx is not a checkpoint trained from "
                             "configs/mfn_plain.yaml")
    assert rt.main([*args, "--strict"]) == 1
    capsys.readouterr()
    # a checkpoint of this package, trained from another row's config; one that names no config
    rewrite(model_info={"kind": "arface", "spec": "arface:x.pt", "config": "mfn_random"})
    assert rt.main(args) == 0
    assert "trained from config 'mfn_random'" in _cells(capsys.readouterr().out)["mfn_subset.baseline", "LFW 6000pairs/%"]["flags"]
    for info in ({"kind": "arface", "spec": "arface:x.pt"}, None):
        rewrite(model_info=info)
        assert rt.main(args) == 0
        assert _cells(capsys.readouterr().out)["mfn_subset.baseline", "LFW 6000pairs/%"]["flags"].startswith("model unverified")
    # a --features record whose store names a checkpoint trained from the row's config
    rewrite(model_info={"kind": "arface", "spec": "arface:x.pt", "config": "mfn_plain", "source": "feature store"})
    assert rt.main([*args, "--strict"]) == 0
    capsys.readouterr()


def _ordering_rows(report, a_short: str, n: int = 3):
    """Rows of the orderings section from the line naming `a_short` (one per value column)."""
    sec = next(s for s in report.sections if "orderings" in s.title)
    i = next(k for k, r in enumerate(sec.rows) if r[0] == a_short)
    return sec.rows[i:i + n]


def test_paired_tests_between_measured_records(tmp_path):
    from arface_repro.paper.report import build_report

    runs = tmp_path / "runs"
    rng = np.random.default_rng(0)
    a = rng.random(6000) > 0.02
    b = rng.random(6000) > 0.03
    bits = lambda x: "".join("1" if v else "0" for v in x)  # noqa: E731
    _lfw_record(runs, "mfn_arface_input", 100 * a.mean(), bits(a))     # Attention-net l0
    _lfw_record(runs, "mfn_random", 100 * b.mean(), bits(b))           # Random l0
    vr_a, vr_b = list(98 + rng.normal(0, 0.2, 10)), list(97.8 + rng.normal(0, 0.2, 10))
    _blufr_record(runs, "mfn_arface_input", vr_a, [87.0] * 10)
    _blufr_record(runs, "mfn_random", vr_b, [87.0] * 10)
    lfw, vr, _ = _ordering_rows(build_report("X", runs), "Attention-net l0 vs Random l0")
    nb, nc = int(np.sum(a & ~b)), int(np.sum(~a & b))
    p = ss.binomtest(nb, nb + nc).pvalue
    assert lfw[5] == f"{100 * (a.mean() - b.mean()):+.2f} (McNemar on 6000 pairs: {nb} vs {nc} discordant, p = {p:.3g})"
    t = ss.ttest_rel(vr_a, vr_b)
    agg = lambda v: np.mean(v) - np.std(v, ddof=1)  # noqa: E731
    assert vr[5] == (f"{agg(vr_a) - agg(vr_b):+.2f} (paired t over 10 trials: {np.mean(np.subtract(vr_a, vr_b)):+.2f} "
                     f"(sd {np.std(np.subtract(vr_a, vr_b), ddof=1):.2f}), p = {t.pvalue:.3g})")
    # the paper's own 0.06-point LFW difference is within noise whatever the pairs
    assert lfw[2] == "+0.06" and lfw[3] == "4 of 6000 pairs: within noise (McNemar p >= 0.125 whatever the pairs)"


def test_missing_per_pair_says_the_test_is_unavailable(tmp_path):
    from arface_repro.paper.report import build_report

    runs = tmp_path / "runs"
    _lfw_record(runs, "mfn_arface_input", 98.8)
    _lfw_record(runs, "mfn_random", 98.7)
    lfw = _ordering_rows(build_report("X", runs), "Attention-net l0 vs Random l0")[0]
    assert lfw[5] == "+0.10 (McNemar unavailable: a record lacks per_pair.correct)"


def test_bootstrap_with_score_sidecars(tmp_path):
    """Table VI: TAR@FAR differences are bootstrapped over pairs from the records' scores sidecars."""
    from arface_repro.paper.report import build_report
    from arface_repro.utils.hashing import sha256_file

    runs = tmp_path / "runs"
    rng = np.random.default_rng(1)
    labels = np.r_[np.ones(200, bool), np.zeros(5000, bool)]
    for run, mu in (("r50full_arface_l9", 3.0), ("r50full_pickpatch_l9", 2.0)):
        scores = np.where(labels, rng.normal(mu, 1, labels.size), rng.normal(0, 1, labels.size))
        side = record_path(runs, run, "ijbb").with_suffix(".scores.npz")
        side.parent.mkdir(parents=True, exist_ok=True)
        np.savez(side, scores=scores, labels=labels.astype(np.int64))
        rec = build_record("ijbb", "nearest", {"TAR@FAR=1e-4": 90.0, "TAR@FAR=1e-3": 94.0, "TAR@FAR=1e-2": 97.0})
        rec["sidecars"] = {"scores": {"path": side.name, "sha256": sha256_file(side)}}
        write_record(rec, record_path(runs, run, "ijbb"))
    rows = _ordering_rows(build_report("VI", runs), "ARFace vs PickPatch [13]", 6)
    # each column names its dataset (IJB-B and IJB-C have the same FAR headers)
    assert [r[1] for r in rows] == [f"TAR on IJB-{d} dataset: {f}" for d in "BC" for f in ("FAR=0.0001", "FAR=0.001", "FAR=0.01")]
    assert all(r[5].startswith("+0.000 (paired bootstrap (1000): +0.") for r in rows[:3]), [r[5] for r in rows]   # same headline values
    assert all(r[5] == "-" for r in rows[3:])                                   # no IJB-C records
    # a tampered sidecar is an error naming it
    side = record_path(runs, "r50full_arface_l9", "ijbb").with_suffix(".scores.npz")
    np.savez(side, scores=np.zeros(labels.size), labels=labels.astype(np.int64))
    from arface_repro.errors import FormatError

    with pytest.raises(FormatError, match="does not match its sha256"):
        build_report("VI", runs)


# ----------------------------------------------------------------------------- quick mode

TINY = ["data.synthetic.num_identities=6", "data.synthetic.images_per_identity=4", "data.val.num_identities=6",
        "data.val.images_per_identity=5", "data.val.num_pairs=20", "train.batch_size=8"]


@pytest.mark.usefixtures("one_torch_thread")
def test_quick_mode_trains_records_and_reuses(rt, tmp_path, capsys):
    runs = tmp_path / "runs"
    args = ["XI", "--full", "--steps", "2", "--seeds", "0", "--workers", "1", "--runs-dir", str(runs), "--format", "md",
            "--tables-dir", str(tmp_path / "t"), *sum((["--override", o] for o in TINY), [])]
    assert rt.main(args) == 0
    out = capsys.readouterr().out
    recs = sorted((runs / "synthetic").glob("*.json"))
    assert len(recs) == len(set(load_manifest().scale_cells("synthetic", "XI").values())) == 10
    rec = json.loads(recs[0].read_text())
    assert rec["protocol"] == "synthetic-verification" and rec["steps"] == 2 and rec["seed"] == 0
    assert rec["overrides"] == [*TINY, "train.steps=2"] and len(rec["per_pair"]["correct"]) == 40
    assert "Table XI - synthetic reproduction" in out and "syn_r50_pickpatch_l2" in out
    assert "synthetic verdict" in out and ("holds" in out or "reversed" in out or "tie" in out)
    md = (tmp_path / "t" / "table_11.md").read_text()
    assert md.startswith("# Table XI: ") and md.splitlines()[0].endswith("[QUICK RUN]")
    assert "quick run: 2 training steps per run; seed 0 of 0, 1, 2, 3, 4 (no spread)" in md
    assert "± 0.00" not in md and "1 seed: no spread, no test" in md   # one seed: no spread printed as if measured
    assert (tmp_path / "t" / "table_11.html").read_text().count("QUICK RUN") >= 1
    mtimes = [p.stat().st_mtime_ns for p in recs]
    assert rt.main(args) == 0            # every record reused
    assert "10 of 10 synthetic runs reused" in capsys.readouterr().err
    assert [p.stat().st_mtime_ns for p in sorted((runs / "synthetic").glob("*.json"))] == mtimes


@pytest.mark.usefixtures("one_torch_thread")
def test_quick_mode_table_x_default_block_with_diagnostics(rt, tmp_path, capsys):
    runs = tmp_path / "runs"
    args = ["X", "--steps", "2", "--seeds", "0,1", "--workers", "1", "--runs-dir", str(runs),
            *sum((["--override", o] for o in TINY), [])]
    assert rt.main(args) == 0
    out = capsys.readouterr().out
    m = load_manifest()
    mfn = {c for r, c in m.scale_cells("synthetic", "X").items() if r.startswith("mfn_subset.")}
    configs = {json.loads(p.read_text())["model"][len("config:"):] for p in (runs / "synthetic").glob("*.json")}
    assert configs == mfn | {"syn_fixed_oracle", "syn_fixed_drop"}          # the default block + diagnostic rows
    assert len(list((runs / "synthetic").glob("*.json"))) == 2 * len(configs)
    assert "synthetic budget: blocks ['mfn_subset'] (--full for all); per run 2 steps x batch 8 on 6 identities" in out
    assert "seeds [0, 1]; 14 runs;" in out
    assert "policy syn_arface_input: " in out and max(len(line) for line in out.splitlines()) <= 100  # the summary
    assert rt.main([*args, "--wide"]) == 0   # the full tables, every record reused
    out = capsys.readouterr().out
    assert "Table X - synthetic diagnostics (not in the paper)" in out and "P(drop nose | occluded) %" in out
    assert "Table X - the room a conditional policy has" in out and "fixed: oracle - always drop the nose" in out
    assert "syn_r50_plain" not in out


# ----------------------------------------------------------------------------- the package command and the script

def test_arface_paper_table_and_the_script_print_the_same_table(tmp_path):
    """`arface paper table X` and its wrapper `python scripts/reproduce_table.py X`, each in its own process, print
    the same report (text with --wide, and CSV) from the same fabricated records."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}   # the checkout's package, not another installed copy
    runs = tmp_path / "runs"
    _lfw_record(runs, "mfn_plain", 98.60)
    _lfw_record(runs, "mfn_random", 98.40)
    _blufr_record(runs, "mfn_plain", [98.5] * 9 + [98.1], [86.0] * 10)
    for view in (["--wide"], ["--format", "csv"]):
        args = ["X", "--no-synthetic", "--quiet", *view, "--runs-dir", str(runs), "--tables-dir", str(tmp_path / "t")]
        outs = [subprocess.run(cmd + args, env=env, capture_output=True, text=True, timeout=300)
                for cmd in ([sys.executable, "-m", "arface_repro", "paper", "table"],
                            [sys.executable, str(root / "scripts" / "reproduce_table.py")])]
        for r in outs:
            assert r.returncode == 0 and r.stderr == "", r.stderr
        assert outs[0].stdout == outs[1].stdout
        assert "98.6" in outs[0].stdout and "OFF" in outs[0].stdout   # the fabricated cells are in it
