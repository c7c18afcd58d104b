"""IPU back-end: ``run.py IPU --mode {train,eval,train_and_eval}`` through poptorch.

Written against poptorch's documented API (``trainingModel``, ``inferenceModel``, ``DataLoader``,
``Options``, ``BeginBlock``, ``optim``, ``identity_loss``, ``setOptimizer``, ``copyWeightsToHost``,
``attachToDevice`` / ``detachFromDevice``) and exercised with a recording stand-in for poptorch
(tests/poptorch_standin.py); it has not been run on IPU hardware.

What stays the same as on CPU and GPU, on purpose: the params, the data order (the same
``(shuffle_seed, epoch)`` permutation, so step k sees the same examples), the checkpoint file and
its dict layout, the log lines and the evaluation report: the loop is the shared
:class:`~modelzoo.loop.trainer.Trainer`, with :class:`PoptorchStep` as its step component. What differs because poptorch works
that way: one host call runs ``device_iterations`` optimizer steps, so the learning rate is set per
host call (``setOptimizer`` whenever the schedule moves it) and logging, saving and evaluating happen
when a call crosses the configured step; the micro batches of a step are averaged by poptorch
(each micro batch's mean loss counts equally, where CPU and GPU weight them by loss positions); and
the gradient norm is not read back from the IPU (logged as nan).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Iterator, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Sampler

from modelzoo.backends.ipu_options import (
    BatchPlan,
    IPUParams,
    apply_pipeline_plan,
    batch_plan,
    build_poptorch_options,
    layer_placement,
    require_poptorch,
    resolve_ipu_params,
)
from modelzoo.common.device import DeviceSetup
from modelzoo.common.distributed import DistContext
from modelzoo.common.errors import ParamsError
from modelzoo.common.iteration import zip_strict
from modelzoo.data.batching import ShardedBatchSampler
from modelzoo.data.labels import IGNORE_LABEL
from modelzoo.heads.task import Task, count_loss_positions, count_real_tokens
from modelzoo.loop.evaluation import score_outputs
from modelzoo.loop.trainer import StepResult
from modelzoo.optim.optimizer import parameter_groups
from modelzoo.params.params import Params

# Half precision on any device: a config written for bfloat16 GPUs runs on IPUs in float16, their half type.
HALF_PRECISIONS = ("float16", "bfloat16")
# One host process drives every replica: poptorch replicates on the device, not with torch.distributed.
_SINGLE_PROCESS = DistContext()
# Marks the examples the eval loader repeats to fill its last combined batch (see _FilledToMultiple).
_REAL_EXAMPLE = "ipu_real_example"


class IpuBackend:
    """What ``run.py IPU`` runs on: poptorch, one host process driving every replica.

    Built before anything is read or written, so a missing SDK or a bad ``ipu:`` section fails first.
    """

    def __init__(self, params: Params, mode: str) -> None:
        self.params = params
        self.poptorch = require_poptorch()
        self.ipu = _checked_ipu_params(params, mode)
        self.train_plan = self.eval_plan = None
        if mode != "eval":
            self.train_plan = batch_plan(params.train_input.batch_size, self.ipu, training=True, key="train_input.batch_size")
        if mode != "train":
            self.eval_plan = batch_plan(params.eval_input.batch_size, self.ipu, training=False, key="eval_input.batch_size")

    def start(self) -> DistContext:
        return _SINGLE_PROCESS

    def prepare(self, model: nn.Module) -> None:
        """Attention in operations poptorch supports (it has no SDPA), float16 weights if asked, and the
        pipeline stages of the ``ipu:`` section."""
        model.bert.use_attention_kernel("matmul")
        if self.params.runconfig.precision in HALF_PRECISIONS:
            model.half()
        ipu, poptorch = self.ipu, self.poptorch
        placement = layer_placement(self.params.model.num_hidden_layers, ipu.layers_per_ipu, ipu.ipus_per_replica)
        recompute = poptorch.recomputationCheckpoint if ipu.recompute_checkpoint_every_layer else None
        self.blocks = apply_pipeline_plan(model, placement, ipu.ipus_per_replica, poptorch.BeginBlock, recompute)

    def announce(self) -> None:
        if self.params.runconfig.precision == "bfloat16":
            print("runconfig.precision bfloat16: IPUs have no bfloat16, so the model runs in float16 "
                  "(float16 partials, ipu.loss_scaling)", flush=True)
        print(f"IPU pipeline stages (block, IPU): {self.blocks}", flush=True)

    def train_step(self, task: Task, model: nn.Module, context: DistContext) -> PoptorchStep:
        return PoptorchStep(self.params, task, model, self.poptorch, self.ipu, self.train_plan)

    def evaluator(self, task: Task, model: nn.Module, context: DistContext) -> IpuEvaluator:
        return IpuEvaluator(self.poptorch, task, model, self.ipu, self.eval_plan, self.params)

    def stop(self) -> None:
        """Nothing to tear down: executables detach when their step or evaluator closes."""


def _checked_ipu_params(params: Params, mode: str) -> IPUParams:
    """The effective ``ipu:`` section, and the runconfig keys that mean something else on an IPU."""
    ipu = resolve_ipu_params(params.ipu or IPUParams(), params.model.num_hidden_layers)
    run_config = params.runconfig
    if run_config.gradient_accumulation_steps != 1:
        raise ParamsError(
            f"runconfig.gradient_accumulation_steps: {run_config.gradient_accumulation_steps} is for CPU and "
            "GPU; on IPUs poptorch accumulates on the device: set ipu.gradient_accumulation instead"
        )
    if run_config.compile:
        raise ParamsError("runconfig.compile: torch.compile is for CPU and GPU; poptorch compiles for the IPU itself")
    if params.optimizer.optimizer_type == "sgd" and params.optimizer.max_gradient_norm is not None:
        raise ParamsError("optimizer.max_gradient_norm: poptorch clips gradients only for adam and adamw")
    steps = run_config.max_steps
    if mode != "eval" and steps is not None and steps % ipu.device_iterations:
        raise ParamsError(
            f"runconfig.max_steps: {steps} is not a multiple of ipu.device_iterations ({ipu.device_iterations}); "
            "one host call runs that many optimizer steps"
        )
    if run_config.precision in HALF_PRECISIONS and not ipu.enable_half_partials:
        # A float16 model with float32 partials gains little memory; match what half precision means on IPU.
        ipu = dataclasses.replace(ipu, enable_half_partials=True)
    return ipu


# --- training ----------------------------------------------------------------------------------


class _TrainingStep(nn.Module):
    """What poptorch compiles for training: the model on positional inputs, returning its loss.

    poptorch passes tensors positionally and back-propagates from the loss the forward returns; the
    head's masked mean is a custom loss, so it is marked with ``poptorch.identity_loss`` (already a
    scalar: reduction "none").
    """

    def __init__(self, model: nn.Module, keys: Tuple[str, ...], poptorch: ModuleType) -> None:
        super().__init__()
        self.model = model
        self.keys = keys
        self._identity_loss = poptorch.identity_loss

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self._identity_loss(self.model(**dict(zip_strict(self.keys, inputs))).loss, reduction="none")


class _InferenceStep(nn.Module):
    """What poptorch compiles for evaluation: logits and the mean loss of each micro batch."""

    def __init__(self, model: nn.Module, keys: Tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.keys = keys

    def forward(self, *inputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        output = self.model(**dict(zip_strict(self.keys, inputs)))
        return output.logits, output.loss


class _EpochOrder(Sampler):
    """One epoch's examples in the CPU/GPU executors' order (one rank), from a resume position on.

    Using :class:`ShardedBatchSampler`'s permutation keeps step k on the same examples as on CPU,
    and lets a checkpoint's ``batches_done`` mean the same on every executor.
    """

    def __init__(self, num_examples: int, input_params, epoch: int, skip: int) -> None:
        order = ShardedBatchSampler(
            num_examples,
            input_params.batch_size,
            shuffle=input_params.shuffle,
            seed=input_params.shuffle_seed,
            drop_last=True,
            epoch=epoch,
        ).rank_indices()
        self.order = order[skip:].tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def build_ipu_optimizer(
    model: nn.Module, params: Params, poptorch: ModuleType, loss_scaling: float
) -> torch.optim.Optimizer:
    """The ``optimizer:`` section as a poptorch optimizer (same parameter groups as on CPU/GPU), with
    the ``ipu:`` section's ``loss_scaling`` (poptorch scales the loss and unscales the gradients).

    Adam moments are kept in float32 whatever the weights' dtype, as Graphcore's BERT recipes do, so
    that a float16 model does not lose small updates in its optimizer state.
    """
    section = params.optimizer
    groups = parameter_groups(model, section.weight_decay)
    rate = section.schedule[0].initial
    if section.optimizer_type == "sgd":
        return poptorch.optim.SGD(groups, lr=rate, momentum=section.momentum, loss_scaling=loss_scaling)
    optimizer_class = poptorch.optim.AdamW if section.optimizer_type == "adamw" else poptorch.optim.Adam
    extra = {"max_grad_norm": section.max_gradient_norm} if section.max_gradient_norm is not None else {}
    return optimizer_class(
        groups,
        lr=rate,
        betas=tuple(section.betas),
        eps=section.eps,
        loss_scaling=loss_scaling,
        first_order_momentum_accum_type=torch.float32,
        second_order_momentum_accum_type=torch.float32,
        **extra,
    )


class PoptorchStep:
    """The :class:`~modelzoo.loop.trainer.TrainStep` of the IPU: each call is one host call of
    ``device_iterations`` optimizer steps through ``poptorch.trainingModel``.

    The optimizer is a poptorch one; the loss scaler stays a disabled torch one (poptorch scales on
    the device), so the checkpoint keeps the CPU/GPU layout.
    """

    def __init__(self, params: Params, task: Task, model: nn.Module, poptorch: ModuleType, ipu: IPUParams, plan: BatchPlan):
        self.params, self.task, self.model, self.poptorch, self.plan = params, task, model, poptorch, plan
        self.steps_per_call = self.batches_per_call = plan.device_iterations
        self.optimizer = build_ipu_optimizer(model, params, poptorch, ipu.loss_scaling)
        self.scaler = DeviceSetup(torch.device("cpu")).grad_scaler()  # float32: a scaler that is off
        self.options = build_poptorch_options(ipu, poptorch, training=True)
        self.dataset = task.dataset("train_input")
        self.training_model = None
        self.device_rate: Optional[float] = None

    def steps_per_epoch(self) -> int:
        calls = len(self.dataset) // self.plan.combined_batch_size
        if calls == 0:
            raise ParamsError(
                f"train_input has {len(self.dataset)} examples, fewer than one host call takes "
                f"({self.plan.combined_batch_size} = train_input.batch_size x ipu.device_iterations)"
            )
        return calls * self.steps_per_call  # whole host calls: max_steps was checked

    def epoch_calls(self, epoch: int, skip: int) -> Iterator[Dict[str, torch.Tensor]]:
        """poptorch's loader for the rest of ``epoch``: combined batches of the epoch's order."""
        section = self.params.train_input
        return iter(
            self.poptorch.DataLoader(
                self.options,
                self.dataset,
                batch_size=self.plan.micro_batch_size,
                shuffle=False,
                drop_last=True,
                num_workers=section.num_workers,
                sampler=_EpochOrder(len(self.dataset), section, epoch, skip * self.plan.global_batch_size),
            )
        )

    def call(self, batch: Dict[str, torch.Tensor], learning_rate: float) -> StepResult:
        """One host call; compiles on the first, re-attaches after an evaluation had the IPUs."""
        self.model.train()
        if self.training_model is not None and learning_rate != self.device_rate:
            # The IPU keeps the rate it was compiled or last set with: hand it the schedule's.
            self.training_model.setOptimizer(self.optimizer)
        self.device_rate = learning_rate
        if self.training_model is None:
            wrapped = _TrainingStep(self.model, self.task.model_input_keys, self.poptorch)
            self.training_model = self.poptorch.trainingModel(wrapped, self.options, self.optimizer)
        elif self.training_model.isCompiled() and not self.training_model.isAttachedToDevice():
            self.training_model.attachToDevice()
        loss = float(self.training_model(*[batch[key] for key in self.task.model_input_keys]).float().mean())
        return StepResult(loss, math.nan, self.task.count_sequences(batch), int(count_real_tokens(batch)))

    def sync_to_host(self) -> None:
        """Read the trained weights back from the IPU."""
        if self.training_model is not None and self.training_model.isAttachedToDevice():
            self.training_model.copyWeightsToHost()

    def release(self) -> None:
        """Free the IPUs (poptorch copies the weights and optimizer state to the host first)."""
        if self.training_model is not None and self.training_model.isAttachedToDevice():
            self.training_model.detachFromDevice()


# --- evaluation --------------------------------------------------------------------------------


class _FilledToMultiple(Dataset):
    """The eval examples, repeated at the end up to a whole number of combined batches.

    poptorch runs fixed-size combined batches and its loader drops an incomplete last one, but every
    raw word must be scored. The repeats carry only ignored labels (-100: no loss position, on
    either head) and ``_REAL_EXAMPLE`` = 0, and are removed again before scoring; repeating real
    examples (rather than all-padding rows) keeps attention free of fully masked rows.
    """

    def __init__(self, dataset, num_examples: int, multiple: int) -> None:
        self.dataset = dataset
        self.num_examples = num_examples
        self.length = -(-num_examples // multiple) * multiple

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Dict[str, Any]:
        example = dict(self.dataset[index % self.num_examples])
        real = index < self.num_examples
        if not real:
            example["labels"] = np.full_like(example["labels"], IGNORE_LABEL)
        example[_REAL_EXAMPLE] = np.int32(real)
        return example


class IpuEvaluator:
    """Evaluation through ``poptorch.inferenceModel``, compiled once and attached only while it runs."""

    def __init__(self, poptorch: ModuleType, task: Task, model: nn.Module, ipu: IPUParams, plan: BatchPlan, params: Params):
        self.poptorch, self.task, self.plan = poptorch, task, plan
        self.options = build_poptorch_options(ipu, poptorch, training=False)
        self.dataset = task.dataset("eval_input")
        self.num_workers = params.eval_input.num_workers
        self.step_module = _InferenceStep(model, task.model_input_keys)
        self.inference_model = None

    def evaluate(self, model_dir: Path, step: int, eval_steps: Optional[int]) -> Optional[dict]:
        """Score eval_input (its first ``eval_steps`` batches) with the host model's current weights."""
        if self.inference_model is None:
            self.step_module.eval()
            self.inference_model = self.poptorch.inferenceModel(self.step_module, self.options)
        elif self.inference_model.isCompiled():
            if not self.inference_model.isAttachedToDevice():
                self.inference_model.attachToDevice()
            self.inference_model.copyWeightsToDevice()  # the weights trained since the last evaluation
        num_examples = len(self.dataset)
        if eval_steps is not None:
            num_examples = min(num_examples, eval_steps * self.plan.global_batch_size)
        loader = self.poptorch.DataLoader(
            self.options,
            _FilledToMultiple(self.dataset, num_examples, self.plan.combined_batch_size),
            batch_size=self.plan.micro_batch_size,
            shuffle=False,
            drop_last=True,
            num_workers=self.num_workers,
        )
        self.step_module.eval()
        try:
            return score_outputs(self._outputs(loader), self.task, _SINGLE_PROCESS, model_dir, step, eval_steps)
        finally:
            self.close()

    def _outputs(self, loader) -> Iterator[Tuple[Dict[str, torch.Tensor], torch.Tensor, torch.Tensor]]:
        """Each eval batch (micro batch x replicas) of each host call, its repeats removed, with its mean loss.

        poptorch returns the outputs of a host call concatenated in input order: logits row for row
        (the packed sequence head's ``max_sequences_per_pack`` logits per row), one mean loss per micro
        batch (iteration-major, then replica).
        """
        keys = self.task.model_input_keys
        micro, replicas = self.plan.micro_batch_size, self.plan.replication_factor
        for combined in loader:
            logits, losses = self.inference_model(*[combined[key] for key in keys])
            losses = losses.reshape(-1).double()
            num_rows = len(combined[keys[0]])
            per_row = logits.reshape(num_rows, -1, logits.shape[-1])
            for start in range(0, num_rows, micro * replicas):
                rows = slice(start, start + micro * replicas)
                real = combined[_REAL_EXAMPLE][rows] != 0
                if not real.any():
                    continue
                batch = _rows(combined, rows)
                counts = torch.stack(
                    [count_loss_positions(_rows(batch, slice(i * micro, (i + 1) * micro))) for i in range(replicas)]
                ).double()
                micro_losses = losses[start // micro : start // micro + replicas]
                loss = (micro_losses * counts).sum() / counts.sum().clamp(min=1.0)
                yield _rows(batch, real), per_row[rows][real].reshape(-1, *logits.shape[1:]), loss

    def close(self) -> None:
        if self.inference_model is not None and self.inference_model.isAttachedToDevice():
            self.inference_model.detachFromDevice()


def _rows(batch: Dict[str, torch.Tensor], rows: Union[slice, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {key: values[rows] for key, values in batch.items()}
