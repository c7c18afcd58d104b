"""The process group of a run: one process, or one per device under ``torchrun`` (env:// rendezvous).

CPU runs use the gloo backend, GPU runs NCCL; the same code path serves both, so CI tests the
distributed logic with ``torchrun --nproc_per_node 2 run.py CPU``. A GPU rank takes its device
before it joins (the back-end's ``start``), and NCCL is bound to that device when the group starts.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

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


def local_rank() -> int:
    """This process's index on its machine (torchrun's LOCAL_RANK; 0 when run alone): its GPU."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def launched_by_torchrun() -> bool:
    """torchrun sets TORCHELASTIC_RUN_ID in every worker, ``--nproc_per_node 1`` included."""
    return "TORCHELASTIC_RUN_ID" in os.environ


def device_binding(device: Optional[torch.device]) -> Dict[str, torch.device]:
    """``init_process_group``'s ``device_id`` for a CUDA rank, where torch has it (2.3 and newer; torch
    2.0, the IPU environment's, has not).

    With it NCCL creates its communicator at once on that device: a broken NCCL set-up fails at the
    start rather than at the first gradient all-reduce, and ``barrier()`` uses that device instead
    of inferring one.
    """
    if device is None or device.type != "cuda":
        return {}
    if "device_id" not in inspect.signature(dist.init_process_group).parameters:
        return {}
    return {"device_id": device}


def init_distributed(backend: str, device: Optional[torch.device] = None) -> DistContext:
    """Join the process group ``torchrun`` describes in the environment, or run alone without one.

    ``device`` is this rank's device, already made current (``torch.cuda.set_device``) on a GPU.
    Under torchrun a single process joins a group of one too: on a machine with one GPU that is
    the only way the NCCL start-up runs at all (two NCCL ranks cannot share a GPU).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1 and not launched_by_torchrun():
        return DistContext()
    context = DistContext(int(os.environ["RANK"]), world_size, local_rank())
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", **device_binding(device))
    return context


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
