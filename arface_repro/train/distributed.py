"""torch.distributed setup: torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_*; gloo on CPU, NCCL on GPU.

A process started by a launcher (RANK, WORLD_SIZE and MASTER_ADDR in the environment) joins a process group
even when WORLD_SIZE is 1, so `torchrun --nproc_per_node 1` runs the same DDP code path (NCCL on one GPU)
as N processes. A plain `python` / `arface train` run has no group. On CUDA each process takes the GPU of its
LOCAL_RANK before the group is made, so NCCL binds its communicator to that device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from arface_repro.utils import launcher_env


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False
    enabled: bool = False  # in a process group (DDP wrapping, collectives); False for a plain single process
    backend: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """True when a launcher (torchrun, `train.spawn`) set the rendezvous variables."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR"))


def setup(device_kind: str) -> DistInfo:
    """Join the process group when launched by torchrun (or spawn with env set); NCCL on CUDA, gloo on CPU."""
    world = launcher_env.world_size()
    if world <= 1 and not launched():
        return DistInfo()
    rank, local = launcher_env.rank(), launcher_env.local_rank()
    backend = "nccl" if device_kind == "cuda" else "gloo"
    here = False
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend, rank=rank, world_size=world)
        here = True
    return DistInfo(rank, world, local, here, True, dist.get_backend())


def collective_device(info: DistInfo, device: torch.device) -> torch.device:
    """Where a tensor must be for a collective of this group: NCCL reduces CUDA tensors only."""
    return device if info.backend == "nccl" else torch.device("cpu")


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(info: DistInfo) -> None:
    """Wait for every rank. Called at the end of a normal run (rank 0 may still be evaluating): a rank
    that leaves the group early can abort gloo's threads ("terminate called without an active exception")."""
    if info.enabled and dist.is_initialized():
        if info.backend == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def teardown(info: DistInfo) -> None:
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()
