"""The process group of a run: one process, or one per device under ``torchrun`` (env:// rendezvous).

CPU runs use the gloo backend, GPU runs NCCL; the same code path serves both, so CI tests the
distributed logic with ``torchrun --nproc_per_node 2 run.py CPU``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, writes TensorBoard and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def all_reduce_sum(self, value: torch.Tensor) -> torch.Tensor:
        """Sum of ``value`` over ranks (a copy; ``value`` itself is unchanged)."""
        total = value.clone()
        if self.distributed:
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    def gather_objects(self, value: object) -> List[object]:
        """Every rank's ``value`` on every rank, in rank order."""
        if not self.distributed:
            return [value]
        gathered: List[object] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def say(self, line: str) -> None:
        """Print ``line`` once for the whole run (from rank 0)."""
        if self.is_main:
            print(line, flush=True)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def init_distributed(backend: str) -> DistContext:
    """Join the process group ``torchrun`` describes in the environment, or run alone without one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistContext()
    context = DistContext(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://")
    return context


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
