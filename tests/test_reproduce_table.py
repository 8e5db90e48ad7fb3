"""scripts/reproduce_table.py in quick mode: synthetic rows are trained, recorded, rendered and reused."""

import csv
import importlib.util
import io
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "reproduce_table.py"


@pytest.fixture(scope="module")
def rt():
    spec = importlib.util.spec_from_file_location("reproduce_table", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_table_ids(rt):
    assert rt.table_id("10") == "X" and rt.table_id("xi") == "XI" and rt.table_id("2") == "II"
    with pytest.raises(SystemExit):
        rt.table_id("12")


def test_quick_synthetic_table_trains_records_and_reuses(rt, tmp_path, capsys):
    runs, tables = tmp_path / "runs", tmp_path / "tables"
    args = ["XI", "--steps", "3", "--runs-dir", str(runs), "--tables-dir", str(tables), "--format", "csv", "--quiet"]
    assert rt.main(args) == 0
    out = capsys.readouterr().out
    rows = list(csv.reader(io.StringIO(out.split("\n", 1)[1])))
    assert rows[0][:3] == ["row", "config", "synthetic Acc (%)"]
    assert [r[0] for r in rows[1:6]] == [f"num_layers = {k}" for k in range(5)]
    for r in rows[1:6]:
        assert 0.0 <= float(r[2]) <= 100.0
    recs = sorted(runs.glob("synthetic-verification-*.json"))
    assert len(recs) == 5
    rec = json.loads(recs[0].read_text())
    assert rec["protocol"] == "synthetic-verification" and rec["steps"] == 3 and rec["overrides"] == ["train.steps=3"]
    assert (tables / "table_11.csv").read_text().startswith("row,config")
    # a second call reuses every record instead of training again
    assert rt.main(args) == 0
    assert len(list(runs.glob("synthetic-verification-*.json"))) == 5
    # a different budget is a different run
    assert rt.main(["XI", "--steps", "2", "--runs-dir", str(runs), "--tables-dir", str(tables), "--quiet"]) == 0
    assert len(list(runs.glob("synthetic-verification-*.json"))) == 10


def test_other_tables_list_records(rt, tmp_path, capsys):
    from arface_repro.io.records import build_record, write_record

    write_record(build_record("lfw", "insightface", {"Acc": 99.2}, model="onnx:m.onnx"), runs_dir=tmp_path)
    assert rt.main(["2", "--runs-dir", str(tmp_path), "--tables-dir", str(tmp_path / "t")]) == 0
    out = capsys.readouterr().out
    assert "not transcribed" in out and "Acc 99.20" in out and "onnx:m.onnx" in out
