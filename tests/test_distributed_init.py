"""How a run joins its process group: a CUDA rank binds NCCL to its device where torch can, and a
torchrun launch of one process joins a group of one (on one GPU the only NCCL start-up there is).

The gloo run of two ranks (tests/test_run_ddp.py) stays the proof that training over a group is
right; NCCL itself needs GPUs and runs in benchmarks/gpu_check.sh's torchrun step.
"""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist

from modelzoo.common.distributed import device_binding, init_distributed, shutdown_distributed

TORCH_2_3 = tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 3)


@pytest.mark.skipif(not TORCH_2_3, reason="init_process_group has device_id from torch 2.3")
def test_a_cuda_rank_binds_the_group_to_its_own_device():
    second = torch.device("cuda", 1)  # a device object needs no GPU
    assert device_binding(second) == {"device_id": second}


def test_cpu_ranks_and_a_run_without_a_device_bind_nothing():
    assert device_binding(torch.device("cpu")) == {}
    assert device_binding(None) == {}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_torchrun_launch_of_one_process_joins_a_group_of_one(monkeypatch):
    for name, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(free_port()), "TORCHELASTIC_RUN_ID": "test"}.items():
        monkeypatch.setenv(name, value)
    context = init_distributed("gloo", torch.device("cpu"))
    try:
        assert dist.is_initialized() and dist.get_world_size() == 1
        assert (context.rank, context.world_size, context.distributed) == (0, 1, False)
        total = torch.ones(3)
        dist.all_reduce(total)
        assert total.tolist() == [1.0, 1.0, 1.0]
    finally:
        shutdown_distributed()
    assert not dist.is_initialized()


def test_a_plain_process_runs_alone_without_a_group(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    context = init_distributed("gloo", torch.device("cpu"))
    assert not dist.is_initialized()
    assert (context.rank, context.world_size, context.is_main) == (0, 1, True)
