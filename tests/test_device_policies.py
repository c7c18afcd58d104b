"""What differs between a CPU and a CUDA GPU is decided once, by ``DeviceSetup``, and the loop follows it.

On a GPU, training and evaluation run the padded or packed rows through one SDPA call with the
block-diagonal mask (static shapes, no host synchronisation); on a CPU they skip the padding. The
GPU's choice is exercised here on the CPU by giving a CPU setup the GPU's policy: the step then runs
the padded path, and its losses equal the CPU path's.
"""

from __future__ import annotations

from typing import List

import pytest
import torch

from modelzoo.backends.torch_step import TorchStep
from modelzoo.common.device import DeviceSetup
from modelzoo.common.distributed import DistContext
from modelzoo.heads import build_task
from modelzoo.params.params import load_params
from tests.run_fixtures import tiny_params, write_params


def test_each_device_gets_its_policies():
    cpu, gpu = DeviceSetup(torch.device("cpu")), DeviceSetup(torch.device("cuda", 1))
    assert (cpu.skip_padding, gpu.skip_padding) == (True, False)
    assert (cpu.attention_kernel, gpu.attention_kernel) == ("sdpa", "sdpa")
    assert DeviceSetup(torch.device("cpu"), "bfloat16").attention_kernel == "matmul"
    assert DeviceSetup(torch.device("cuda"), "bfloat16").attention_kernel == "sdpa"
    assert (cpu.ddp_device_ids, gpu.ddp_device_ids) == (None, [1])
    assert cpu.fused_optimizer and gpu.fused_optimizer


class _GpuPolicyOnCpu(DeviceSetup):
    """A CPU setup that decides as a CUDA one does."""

    @property
    def skip_padding(self) -> bool:
        return DeviceSetup(torch.device("cuda")).skip_padding


def _losses(ner_csv, tmp_path, setup: DeviceSetup, seen: List[bool]) -> List[float]:
    tmp_path.mkdir()
    sections = {"model": {"dropout_rate": 0.0, "attention_dropout_rate": 0.0}, "runconfig": {"max_steps": 4}}
    params = load_params(write_params(tmp_path / "p.yaml", tiny_params(ner_csv, tmp_path / "run", **sections)))
    torch.manual_seed(params.runconfig.seed)
    task = build_task(params)
    model = task.build_model()
    model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["skip_padding"]), with_kwargs=True)
    step = TorchStep(params, task, model, setup, DistContext())
    calls = step.epoch_calls(0, 0)
    return [step.call(next(calls), 1e-3).loss for _ in range(4)]


def test_the_gpu_path_is_the_padded_one_and_trains_as_the_cpu_path(ner_csv, tmp_path):
    on_cpu, on_gpu = [], []
    cpu_losses = _losses(ner_csv, tmp_path / "cpu", DeviceSetup(torch.device("cpu")), on_cpu)
    gpu_losses = _losses(ner_csv, tmp_path / "gpu", _GpuPolicyOnCpu(torch.device("cpu")), on_gpu)
    assert set(on_cpu) == {True} and set(on_gpu) == {False}
    assert gpu_losses == pytest.approx(cpu_losses, rel=1e-5)
