"""Paired outputs committed as one unit: a record and its `.scores.npz` sidecar, a `.rec` and its `.idx`.

A failure raised between the two renames (os.replace failing on its second call), and a process that dies there
(os._exit in a child), must leave no state a reader accepts as valid: never an old record beside new scores, new
scores without their record after an error, or an `.idx` beside a `.rec` of another write.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from arface_repro.errors import FormatError
from arface_repro.io.records import build_record, load_record, load_sidecar, write_record

ROOT = Path(__file__).resolve().parents[1]


def _record(acc: float) -> dict:
    return build_record("lfw", "insightface", {"Acc": acc}, model="toy")


def _fail_on_call(monkeypatch, n: int, exc: BaseException) -> list:
    """Make os.replace raise `exc` on its n-th call (1-based); returns the list of calls seen."""
    real = os.replace
    calls = []

    def replace(src, dst, *a, **k):
        calls.append(Path(dst).name)
        if len(calls) == n:
            raise exc
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    return calls


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp*"))


def _loaded(path: Path) -> dict:
    rec = load_record(path)
    rec["_path"] = str(path)
    return rec


def test_record_and_sidecar_written_together(tmp_path):
    out = tmp_path / "r.json"
    write_record(_record(99.0), out, arrays={"scores": np.arange(4.0), "labels": np.array([1, 0, 1, 0])})
    rec = _loaded(out)
    assert rec["metrics"]["Acc"] == 99.0 and rec["sidecars"]["scores"]["path"] == "r.scores.npz"
    np.testing.assert_array_equal(load_sidecar(rec)["scores"], np.arange(4.0))
    assert _temps(tmp_path) == []


@pytest.mark.parametrize("fail_at", [1, 2])
def test_failure_between_the_renames_leaves_no_valid_mixed_state(tmp_path, monkeypatch, fail_at):
    out = tmp_path / "r.json"
    write_record(_record(99.0), out, arrays={"scores": np.zeros(3)})
    calls = _fail_on_call(monkeypatch, fail_at, OSError(28, "No space left on device"))
    with pytest.raises(OSError):
        write_record(_record(50.0), out, arrays={"scores": np.ones(3)})
    assert calls[-1] == ("r.scores.npz" if fail_at == 1 else "r.json")  # sidecar first, record last
    assert not out.exists(), "a record survived beside a sidecar of another write"
    if fail_at == 2:
        assert not (tmp_path / "r.scores.npz").exists(), "new scores left without their record after the error"
    assert _temps(tmp_path) == []


def test_record_killed_between_the_renames(tmp_path):
    """A process that dies between the two renames (no cleanup runs): the new sidecar has no record; the old
    record is gone, so no reader pairs it with the new scores."""
    out = tmp_path / "r.json"
    write_record(_record(99.0), out, arrays={"scores": np.zeros(3)})
    script = ("import os, numpy as np\n"
              "from arface_repro.io.records import build_record, write_record\n"
              "real, n = os.replace, []\n"
              "def replace(s, d):\n"
              "    n.append(d)\n"
              "    if len(n) == 2:\n"
              "        os._exit(9)\n"
              "    real(s, d)\n"
              "os.replace = replace\n"
              f"write_record(build_record('lfw', 'insightface', {{'Acc': 50.0}}), {str(out)!r}, arrays={{'scores': np.ones(3)}})\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    assert subprocess.run([sys.executable, "-c", script], env=env).returncode == 9
    assert not out.exists()
    assert (tmp_path / "r.scores.npz").exists()  # the new sidecar, orphaned: no record names it


def test_old_record_beside_new_sidecar_is_refused(tmp_path):
    """The sha256 check: a record whose sidecar was replaced by another write's (e.g. copied by hand) is refused."""
    a, b = tmp_path / "a" / "r.json", tmp_path / "b" / "r.json"
    write_record(_record(99.0), a, arrays={"scores": np.zeros(3)})
    write_record(_record(50.0), b, arrays={"scores": np.ones(3)})
    (a.parent / "r.scores.npz").write_bytes((b.parent / "r.scores.npz").read_bytes())
    with pytest.raises(FormatError, match="sha256 differs"):
        load_sidecar(_loaded(a))


def test_sidecar_name_must_be_a_bare_file_name(tmp_path):
    out = tmp_path / "r.json"
    write_record(_record(99.0), out, arrays={"scores": np.zeros(3)})
    rec = _loaded(out)
    rec["sidecars"]["scores"]["path"] = "../r.scores.npz"
    with pytest.raises(FormatError, match="bare file name"):
        load_sidecar(rec)


# ------------------------------------------------------------------------------------------- .rec / .idx

def _pack(prefix: Path, n: int, seed: int) -> None:
    import cv2

    from arface_repro.data.rec_writer import FaceRecWriter

    rng = np.random.default_rng(seed)
    with FaceRecWriter(prefix, n, 2) as w:
        for i in range(n):
            ok, buf = cv2.imencode(".jpg", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
            w.add(i * 2 // n, buf.tobytes())


def test_rec_and_idx_failure_between_the_renames(tmp_path, monkeypatch):
    from arface_repro.io.recordio import IndexedRecordReader

    prefix = tmp_path / "train"
    _pack(prefix, 4, 0)
    with IndexedRecordReader.from_prefix(prefix) as r:
        assert len(r) == 4 + 1 + 2
    calls = _fail_on_call(monkeypatch, 2, OSError(28, "No space left on device"))
    with pytest.raises(OSError):
        _pack(prefix, 6, 1)
    assert calls == ["train.rec", "train.idx"]  # .rec first, .idx (what readers open first) last
    assert not Path(f"{prefix}.idx").exists() and not Path(f"{prefix}.rec").exists()
    with pytest.raises(FormatError, match="index file not found"):
        IndexedRecordReader.from_prefix(prefix)
    assert _temps(tmp_path) == []


def test_rec_killed_between_the_renames_leaves_no_idx(tmp_path):
    from arface_repro.io.recordio import IndexedRecordReader

    prefix = tmp_path / "train"
    _pack(prefix, 4, 0)
    script = ("import os\n"
              "from pathlib import Path\n"
              "real, n = os.replace, []\n"
              "def replace(s, d):\n"
              "    n.append(d)\n"
              "    if len(n) == 2:\n"
              "        os._exit(9)\n"
              "    real(s, d)\n"
              "os.replace = replace\n"
              "from test_paired_outputs import _pack\n"
              f"_pack(Path({str(prefix)!r}), 6, 1)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}   # the helper's module too
    assert subprocess.run([sys.executable, "-c", script], env=env).returncode == 9
    assert Path(f"{prefix}.rec").exists() and not Path(f"{prefix}.idx").exists()  # the new .rec, no old .idx
    with pytest.raises(FormatError, match="index file not found"):
        IndexedRecordReader.from_prefix(prefix)
