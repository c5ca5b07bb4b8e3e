"""Process group for multi-process training under torchrun (NCCL on CUDA, gloo on CPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from synthhist.device import resolve_device


@dataclass
class Dist:
    """This process's place in the job."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes files."""
        return self.rank == 0


def init_distributed() -> Dist:
    """Join torchrun's process group when launched by it (WORLD_SIZE > 1), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(0, 1, resolve_device(None))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return Dist(rank, world, device)


def shutdown() -> None:
    """Leave the process group (no-op for single-process runs)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(t: torch.Tensor, d: Dist) -> torch.Tensor:
    """Average a tensor over processes in place."""
    if d.world_size > 1:
        dist.all_reduce(t)
        t /= d.world_size
    return t


def broadcast_module(module: torch.nn.Module, d: Dist) -> None:
    """Copy rank 0's parameters and buffers to all processes."""
    if d.world_size > 1:
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def agree(flag: bool, d: Dist) -> bool:
    """True on every process iff it is true on any (e.g. 'stop now')."""
    if d.world_size == 1:
        return flag
    t = torch.tensor([float(flag)], device=d.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def same_on_all(modules: dict[str, torch.nn.Module], d: Dist) -> list[str]:
    """Names of modules whose parameters differ from rank 0's on any process (reference consistency check)."""
    if d.world_size == 1:
        return []
    bad = []
    for name, m in modules.items():
        flat = torch.cat([p.detach().flatten() for p in m.parameters()])
        ref = flat.clone()
        dist.broadcast(ref, src=0)
        differs = torch.tensor([float(not torch.equal(ref, flat))], device=d.device)
        dist.all_reduce(differs, op=dist.ReduceOp.MAX)
        if differs.item():
            bad.append(name)
    return bad
