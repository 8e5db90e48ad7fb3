"""Run a training config in N local processes (torch.multiprocessing spawn, gloo on CPU).

The same thing torchrun does, for tests and quick CPU checks: each process gets RANK / WORLD_SIZE /
LOCAL_RANK / MASTER_ADDR / MASTER_PORT and calls `train(config)`; rank 0's history and final metrics
are returned.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, config, overrides, result_path: str, threads: int) -> None:
    import torch

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(threads)
    from arface_repro.train.loop import train  # the trainer (torch): imported in the spawned worker only

    res = train(config, overrides)
    if rank == 0:
        Path(result_path).write_text(json.dumps({"history": res.history, "metrics": res.metrics,
                                                 "process_group": res.process_group}))


def run_spawned(config, world_size: int, overrides=(), threads: int = 1) -> dict:
    """Train `config` in `world_size` spawned processes; returns rank 0's {'history', 'metrics', 'process_group'}."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        mp.spawn(_worker, args=(world_size, free_port(), config, list(overrides), out, threads), nprocs=world_size, join=True)
        return json.loads(Path(out).read_text())
