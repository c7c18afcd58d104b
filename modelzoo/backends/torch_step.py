"""Optimizer steps on a torch device (CPU or CUDA): accumulation, AMP and DDP, one process or many.

Each optimizer step takes ``gradient_accumulation_steps`` batches per rank and weights every
batch's mean loss by its share of the loss positions of the whole global batch. The update is then
the one a single process would make on the global batch: accumulation and data parallelism change
the speed, not the result.
"""

from __future__ import annotations

import contextlib
import math
from typing import Dict, Iterator, List

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from modelzoo.common.device import DeviceSetup
from modelzoo.common.distributed import DistContext
from modelzoo.common.errors import ParamsError
from modelzoo.heads.task import Task, count_loss_positions, count_real_tokens
from modelzoo.loop.trainer import StepResult
from modelzoo.optim.optimizer import build_optimizer
from modelzoo.params.params import Params

MicroBatches = List[Dict[str, torch.Tensor]]


class TorchStep:
    """The :class:`~modelzoo.loop.trainer.TrainStep` of the CPU and GPU back-ends."""

    steps_per_call = 1

    def __init__(self, params: Params, task: Task, model: nn.Module, setup: DeviceSetup, context: DistContext) -> None:
        self.params, self.task, self.setup, self.context = params, task, setup, context
        self.accumulation = params.runconfig.gradient_accumulation_steps
        self.batches_per_call = self.accumulation
        self.model = model.to(setup.device)
        self.optimizer = build_optimizer(self.model, params.optimizer, setup.fused_optimizer)
        self.scaler = setup.grad_scaler()
        wrapped = self.model
        self.ddp = None
        if context.distributed:
            wrapped = self.ddp = DistributedDataParallel(self.model, device_ids=setup.ddp_device_ids)
        compile_step = params.runconfig.compile
        self.forward_model = torch.compile(wrapped) if compile_step else wrapped
        # Eager runs skip the padding where the device gains from it (DeviceSetup.skip_padding);
        # torch.compile needs the static shapes of the padded batch.
        self.skip_padding = setup.skip_padding and not compile_step

    def steps_per_epoch(self) -> int:
        if self.context.distributed and not self.params.train_input.drop_last:
            raise ParamsError("train_input.drop_last must be true with several processes (every rank must take the same steps)")
        batches = len(self.task.dataloader("train_input", self.context, 0))
        if batches < self.accumulation:
            raise ParamsError(
                f"train_input has {batches} batches per rank, fewer than "
                f"runconfig.gradient_accumulation_steps ({self.accumulation})"
            )
        return batches // self.accumulation

    def epoch_calls(self, epoch: int, skip: int) -> Iterator[MicroBatches]:
        """Lists of ``gradient_accumulation_steps`` batches of one epoch, from batch ``skip`` on."""
        pending: MicroBatches = []
        for index, batch in enumerate(self.task.dataloader("train_input", self.context, epoch)):
            if index < skip:
                continue
            pending.append(batch)
            if len(pending) == self.accumulation:
                yield pending
                pending = []

    def call(self, micro_batches: MicroBatches, learning_rate: float) -> StepResult:
        """One optimizer step at ``learning_rate`` (the trainer's schedule gives it; a caller without one,
        a benchmark, gets the rate it asks for too)."""
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        keys = self.task.model_input_keys
        device = self.setup.device
        counts = torch.stack([count_loss_positions(batch) for batch in micro_batches]).double()
        global_count = self.context.all_reduce_sum(counts.sum().to(device)).clamp(min=1.0)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.model.train()
        for index, batch in enumerate(micro_batches):
            last = index == len(micro_batches) - 1
            sync = contextlib.nullcontext() if last or self.ddp is None else self.ddp.no_sync()
            with sync:
                with self.setup.autocast():
                    output = self.forward_model(**self.setup.to_device(batch, keys), skip_padding=self.skip_padding)
                weight = counts[index].to(device) / global_count
                # DDP averages gradients over ranks; scale by world_size so they sum instead.
                scaled = output.loss * (weight * self.context.world_size).to(output.loss.dtype)
                self.scaler.scale(scaled).backward()
            loss_sum += output.loss.detach().double() * weight
        loss = self.context.all_reduce_sum(loss_sum).item()
        if not math.isfinite(loss):
            self.optimizer.zero_grad(set_to_none=True)  # the loop stops; the weights stay as they were
            return StepResult(loss, math.nan, 0, 0)
        self.scaler.unscale_(self.optimizer)
        max_norm = self.params.optimizer.max_gradient_norm
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm if max_norm else math.inf)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        samples = sum(self.task.count_sequences(batch) for batch in micro_batches)
        tokens = int(sum(count_real_tokens(batch) for batch in micro_batches))
        totals = self.context.all_reduce_sum(torch.tensor([samples, tokens], device=device))
        return StepResult(loss, float(grad_norm), int(totals[0]), int(totals[1]))

    def sync_to_host(self) -> None:
        """Nothing to copy: the model trains in place on the host side of torch."""

    def release(self) -> None:
        """Nothing to free: evaluation shares the device."""
