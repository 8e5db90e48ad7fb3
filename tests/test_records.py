import json

import pytest

from arface_repro.errors import FormatError
from arface_repro.io.records import build_record, load_record, write_record
from arface_repro.utils.atomic import atomic_open


def test_record_fields_and_atomic_write(tmp_path):
    feats = tmp_path / "f.npz"
    feats.write_bytes(b"abc")
    rec = build_record("lfw", "insightface", {"Acc": 99.2}, per_fold={"Acc": [99.0, 99.4]}, model="onnx:m.onnx",
                       inputs={"features": feats, "pairs": None})
    for key in ("format", "protocol", "rule", "metrics", "per_fold", "inputs", "package_version", "git_commit",
                "command", "created_utc", "model"):
        assert key in rec
    assert rec["inputs"]["features"]["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    p1 = write_record(rec, runs_dir=tmp_path / "runs")
    p2 = write_record(rec, runs_dir=tmp_path / "runs")
    assert p1 != p2 and p1.name.startswith("lfw-onnx_m-")
    assert load_record(p1)["metrics"] == {"Acc": 99.2}
    assert [p.name for p in (tmp_path / "runs").iterdir() if p.name.startswith(".")] == []


def test_interrupted_write_leaves_old_file(tmp_path):
    target = tmp_path / "r.json"
    target.write_text('{"old": 1}')
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write('{"new": ')
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"old": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_load_rejects_non_records(tmp_path):
    (tmp_path / "a.json").write_text("{\"x\": 1}")
    with pytest.raises(FormatError, match="a.json: not an arface result record"):
        load_record(tmp_path / "a.json")
    (tmp_path / "b.json").write_text("{oops")
    with pytest.raises(FormatError, match="b.json: not valid JSON"):
        load_record(tmp_path / "b.json")


def test_atomic_files_get_normal_permissions(tmp_path):
    import os

    umask = os.umask(0)
    os.umask(umask)
    with atomic_open(tmp_path / "x.txt") as fh:
        fh.write("x")
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_load_records_names_a_broken_file(tmp_path):
    from arface_repro.io.records import load_records

    p = write_record(build_record("lfw", "insightface", {"Acc": 99.0}), runs_dir=tmp_path)
    recs = load_records(tmp_path)
    assert [r["_path"] for r in recs] == [str(p)] and recs[0]["metrics"] == {"Acc": 99.0}
    (tmp_path / "zz.json").write_text("{}")
    with pytest.raises(FormatError, match="zz.json: not an arface result record"):
        load_records(tmp_path)
