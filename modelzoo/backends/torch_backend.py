"""What ``run.py CPU`` and ``run.py GPU`` run on: a torch device, one process or many under torchrun."""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from modelzoo.backends.torch_step import TorchStep
from modelzoo.common.device import DeviceSetup
from modelzoo.common.distributed import DistContext, init_distributed, local_rank, shutdown_distributed
from modelzoo.heads.task import Task
from modelzoo.loop.evaluation import evaluate
from modelzoo.params.params import Params


class TorchBackend:
    """``device_of_rank(local_rank)`` takes the process's device (a GPU back-end makes it current)."""

    def __init__(self, params: Params, device_of_rank: Callable[[int], torch.device], distributed_backend: str) -> None:
        self.params, self.device_of_rank, self.distributed_backend = params, device_of_rank, distributed_backend

    def start(self) -> DistContext:
        """Take this rank's device, then join the process group (if torchrun started the run): NCCL
        binds its communicator to the device that is current when the group starts."""
        self.device = self.device_of_rank(local_rank())
        context = init_distributed(self.distributed_backend, self.device)
        self.setup = DeviceSetup(self.device, self.params.runconfig.precision)
        return context

    def prepare(self, model: nn.Module) -> None:
        """The attention kernel the device runs fastest (``DeviceSetup.attention_kernel``); the step
        component moves the model."""
        model.bert.use_attention_kernel(self.setup.attention_kernel)

    def announce(self) -> None:
        """What ``runconfig.precision: auto`` became on this device."""
        if self.params.runconfig.precision == "auto":
            print(f"runconfig.precision auto: {self.setup.precision} on {self.device.type}", flush=True)

    def train_step(self, task: Task, model: nn.Module, context: DistContext) -> TorchStep:
        return TorchStep(self.params, task, model, self.setup, context)

    def evaluator(self, task: Task, model: nn.Module, context: DistContext) -> TorchEvaluator:
        return TorchEvaluator(task, model, self.setup, context)

    def stop(self) -> None:
        shutdown_distributed()


class TorchEvaluator:
    """Evaluation on the run's device with the model as it stands (the trainer's, during training)."""

    def __init__(self, task: Task, model: nn.Module, setup: DeviceSetup, context: DistContext) -> None:
        self.task, self.model, self.setup, self.context = task, model, setup, context

    def evaluate(self, model_dir, step: int, eval_steps: Optional[int]) -> Optional[dict]:
        return evaluate(self.model.to(self.setup.device), self.task, self.setup, self.context, model_dir, step, eval_steps)

    def close(self) -> None:
        """Nothing to free."""
