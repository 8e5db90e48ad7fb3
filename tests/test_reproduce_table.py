"""scripts/reproduce_table.py: the paper's tables alone, beside fabricated records (status, differences,
paired tests, --strict), and the synthetic quick mode (trained, recorded, reused)."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as ss

from arface_repro.io.records import build_record, write_record
from arface_repro.paper.manifest import load_manifest, record_path
from arface_repro.paper.targets import ROMAN, get_table

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "reproduce_table.py"


@pytest.fixture(scope="module")
def rt():
    spec = importlib.util.spec_from_file_location("reproduce_table", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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

def _lfw_record(runs: Path, run: str, acc: float, correct: str | None = None, folds=None) -> Path:
    folds = folds if folds is not None else [acc] * 10
    rec = build_record("lfw", "insightface", {"Acc": acc, "Acc.std": float(np.std(folds))}, per_fold={"Acc": folds},
                       model=f"arface:{run}/checkpoint_last.pt")
    if correct is not None:
        rec["per_pair"] = {"correct": correct}
    return write_record(rec, record_path(runs, run, "lfw"))


def _blufr_record(runs: Path, run: str, vr: list[float], dir_: list[float]) -> Path:
    agg = lambda v: float(np.mean(v) - np.std(v, ddof=1))  # noqa: E731
    rec = build_record("blufr", "blufr-official", {"VR@FAR=0.1%": agg(vr), "DIR@FAR=1%": agg(dir_)},
                       per_trial={"trial": list(range(1, 11)), "VR@FAR=0.1%": vr, "DIR@FAR=1%": dir_})
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
    assert rt.main(["X", "--no-synthetic", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "3 of 45 reproducible cells measured (1 off)" in out
    assert "what fills the missing cells" in out and "configs/mfn_arface_l3.yaml" in out and "datasets.blufr_config" in out


def test_strict_exit_codes(rt, tmp_path, capsys):
    runs = tmp_path / "runs"
    _lfw_record(runs, "mfn_plain", 98.60)
    assert rt.main(["X", "--no-synthetic", "--strict", "--runs-dir", str(runs)]) == 0
    _lfw_record(runs, "mfn_random", 98.40)
    assert rt.main(["X", "--no-synthetic", "--strict", "--runs-dir", str(runs)]) == 1
    assert rt.main(["X", "--no-synthetic", "--runs-dir", str(runs)]) == 0          # without --strict
    record_path(runs, "mfn_arface_l3", "lfw").write_text("{not json")
    assert rt.main(["X", "--no-synthetic", "--runs-dir", str(runs)]) == 2
    assert "mfn_arface_l3/lfw.json: not valid JSON" in capsys.readouterr().err
    write_record(build_record("lfw", "insightface", {"Acc.std": 0.1}), record_path(runs, "mfn_arface_l3", "lfw"))
    assert rt.main(["X", "--no-synthetic", "--runs-dir", str(runs)]) == 2
    assert "metric 'Acc' missing" in capsys.readouterr().err


def _ordering_line(out: str, a_label: str, column: str) -> str:
    lines = [ln for ln in out.splitlines() if a_label in ln and column in ln]
    assert lines, (a_label, column)
    return lines[0]


def test_paired_tests_between_measured_records(rt, tmp_path, capsys):
    runs = tmp_path / "runs"
    rng = np.random.default_rng(0)
    a = rng.random(6000) > 0.011
    b = np.where(rng.random(6000) < 0.01, ~a, a)
    bits = lambda x: "".join("1" if v else "0" for v in x)  # noqa: E731
    _lfw_record(runs, "mfn_arface_input", 100 * a.mean(), bits(a))     # Attention-net l0
    _lfw_record(runs, "mfn_random", 100 * b.mean(), bits(b))           # Random l0
    vr_a, vr_b = list(98 + rng.normal(0, 0.2, 10)), list(97.8 + rng.normal(0, 0.2, 10))
    _blufr_record(runs, "mfn_arface_input", vr_a, [87.0] * 10)
    _blufr_record(runs, "mfn_random", vr_b, [87.0] * 10)
    assert rt.main(["X", "--no-synthetic", "--format", "text", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out.replace("\n    ", " ")
    nb, nc = int(np.sum(a & ~b)), int(np.sum(~a & b))
    p = ss.binomtest(nb, nb + nc).pvalue
    assert f"McNemar on 6000 pairs: {nb} vs {nc} discordant, p = {p:.3g}" in " ".join(out.split())
    t = ss.ttest_rel(vr_a, vr_b)
    assert f"paired t over 10 trials: {np.mean(np.subtract(vr_a, vr_b)):+.2f}" in " ".join(out.split())
    assert f"p = {t.pvalue:.3g}" in " ".join(out.split())
    # the paper's 0.06-point LFW difference is within noise whatever the pairs
    assert "4 of 6000 pairs: within noise whatever the per-pair decisions" in " ".join(out.split())


def test_missing_per_pair_says_the_test_is_unavailable(rt, tmp_path, capsys):
    runs = tmp_path / "runs"
    _lfw_record(runs, "mfn_arface_input", 98.8)
    _lfw_record(runs, "mfn_random", 98.7)
    assert rt.main(["X", "--no-synthetic", "--runs-dir", str(runs)]) == 0
    assert "McNemar unavailable: a record lacks per_pair.correct" in " ".join(capsys.readouterr().out.split())


def test_bootstrap_with_score_sidecars(tmp_path):
    """Table VI: TAR@FAR differences are bootstrapped over pairs from the records' scores sidecars."""
    from arface_repro.paper.report import build_report
    from arface_repro.utils.hashing import sha256_file

    runs = tmp_path / "runs"
    rng = np.random.default_rng(1)
    labels = np.r_[np.ones(300, bool), np.zeros(30000, bool)]
    for run, mu in (("r50full_arface_l9", 3.0), ("r50full_pickpatch_l9", 2.0)):
        scores = np.where(labels, rng.normal(mu, 1, labels.size), rng.normal(0, 1, labels.size))
        side = record_path(runs, run, "ijbb").with_suffix(".scores.npz")
        side.parent.mkdir(parents=True, exist_ok=True)
        np.savez(side, scores=scores, labels=labels.astype(np.int64))
        rec = build_record("ijbb", "nearest", {"TAR@FAR=1e-4": 90.0, "TAR@FAR=1e-3": 94.0, "TAR@FAR=1e-2": 97.0})
        rec["sidecars"] = {"scores": {"path": side.name, "sha256": sha256_file(side)}}
        write_record(rec, record_path(runs, run, "ijbb"))
    rep = build_report("VI", runs)
    lines = [r for s in rep.sections for r in s.rows if r and "vs" in r[0] and r[1] == "FAR=0.001" and r[0].startswith("ARFace")]
    assert any("paired bootstrap (1000)" in x[5] for x in lines), lines
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
    args = ["XI", "--steps", "2", "--seeds", "0", "--workers", "1", "--runs-dir", str(runs), "--format", "md",
            "--tables-dir", str(tmp_path / "t"), *sum((["--override", o] for o in TINY), [])]
    assert rt.main(args) == 0
    out = capsys.readouterr().out
    recs = sorted((runs / "synthetic").glob("*.json"))
    assert len(recs) == len(set(load_manifest().scale_cells("synthetic", "XI").values())) == 10
    rec = json.loads(recs[0].read_text())
    assert rec["protocol"] == "synthetic-verification" and rec["steps"] == 2 and rec["seed"] == 0
    assert rec["overrides"] == [*TINY, "train.steps=2"] and len(rec["per_pair"]["correct"]) == 40
    assert "Table XI - synthetic reproduction" in out and "syn_r50_pickpatch_l2" in out and "holds" in out or "reversed" in out
    assert (tmp_path / "t" / "table_11.md").read_text().startswith("### Table XI")
    mtimes = [p.stat().st_mtime_ns for p in recs]
    assert rt.main(args) == 0            # every record reused
    assert "10 of 10 synthetic runs reused" in capsys.readouterr().err
    assert [p.stat().st_mtime_ns for p in sorted((runs / "synthetic").glob("*.json"))] == mtimes
