"""`scripts/reproduce_table.py` fails with one line and a status, never a traceback: an unusable or full
`--tables-dir` (exit 2), Ctrl-C (exit 130, worker processes stopped)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "reproduce_table.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _run(args, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=ENV, capture_output=True, text=True,
                          preexec_fn=preexec, timeout=300)


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("reproduce_table: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _read_only_folder(tmp_path: Path) -> Path:
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    if os.access(d, os.W_OK):  # root writes anywhere a mode forbids: use a read-only pseudo file system instead
        d = Path("/proc/self/arface-tables")
    return d


@pytest.mark.parametrize("kind", ["a-file", "read-only"])
def test_unusable_tables_dir_is_one_line_before_any_work(tmp_path, kind):
    if kind == "a-file":
        d = tmp_path / "tables"
        d.write_text("not a folder\n")
    else:
        d = _read_only_folder(tmp_path)
    r = _run(["2", "--targets-only", "--format", "csv", "--tables-dir", str(d)])
    assert r.returncode == 2 and r.stdout == ""  # refused before the table is printed
    line = _one_error_line(r.stderr)
    assert "--tables-dir" in line and str(d) in line


def test_full_tables_dir_is_one_line_naming_the_table(tmp_path):
    """The file system refuses the write (a file size limit of 0 bytes: EFBIG, as a full disk gives ENOSPC)."""
    import resource

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    d = tmp_path / "tables"
    r = _run(["2", "--targets-only", "--format", "csv", "--tables-dir", str(d)], preexec=limit)
    assert r.returncode == 2
    line = _one_error_line(r.stderr)
    assert "table_02_paper.csv" in line and "File too large" in line
    assert not list(d.iterdir()), "a partial table or a temp file was left"


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_is_one_line_exit_130_and_stops_the_workers(tmp_path, workers):
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "10", "--steps", "2000", "--seeds", "0", "--runs-dir", str(runs),
                             "--workers", str(workers)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    seen = []
    while not any("training" in s for s in seen):
        seen.append(proc.stderr.readline())
        assert seen[-1] or proc.poll() is None, "".join(seen)
    time.sleep(3)  # the workers are training now
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == ["reproduce_table: interrupted"] and "Traceback" not in err, err
    deadline, left = time.time() + 10, ["?"]
    while left and time.time() < deadline:  # multiprocessing's resource tracker leaves when its pipe closes
        time.sleep(0.2)
        left = subprocess.run(["pgrep", "-a", "-s", str(proc.pid)], capture_output=True, text=True).stdout.splitlines()
    assert not left, f"processes of the interrupted run still running: {left}"
