"""IPU executor: ``run.py IPU --mode {train,eval,train_and_eval}`` through poptorch.

Written against poptorch's documented API (``trainingModel``, ``inferenceModel``, ``DataLoader``,
``Options``, ``BeginBlock``, ``optim``, ``identity_loss``, ``setOptimizer``, ``copyWeightsToHost``,
``attachToDevice`` / ``detachFromDevice``) and exercised with a recording stand-in for poptorch
(tests/poptorch_standin.py); it has not been run on IPU hardware.

What stays the same as on CPU and GPU, on purpose: the params, the data order (the same
``(shuffle_seed, epoch)`` permutation, so step k sees the same examples), the checkpoint file and
its dict layout (it is the torch executor's :class:`Trainer` state, so a checkpoint moves between
executors either way), the log lines and the evaluation report. What differs because poptorch works
that way: one host call runs ``device_iterations`` optimizer steps, so the learning rate is set per
host call (``setOptimizer`` whenever the schedule moves it) and logging, saving and evaluating happen
when a call crosses the configured step; the micro batches of a step are averaged by poptorch
(each micro batch's mean loss counts equally, where CPU and GPU weight them by loss positions); and
the gradient norm is not read back from the IPU (logged as nan).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Sampler
from tqdm import tqdm

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
from modelzoo.checkpoint.training import (
    checkpoint_file,
    checkpoint_step,
    latest_checkpoint,
    load_model_weights,
)
from modelzoo.common.errors import CheckpointError, ParamsError
from modelzoo.data.ner_dataset import ShardedBatchSampler
from modelzoo.loop.device import DeviceSetup
from modelzoo.loop.distributed import DistContext
from modelzoo.loop.evaluation import score_outputs
from modelzoo.loop.tasks import Task, build_task, count_loss_positions, count_real_tokens
from modelzoo.loop.trainer import (
    NonFiniteLossError,
    SignalFlag,
    Throughput,
    Trainer,
    TrainingInterrupted,
)
from modelzoo.optim.optimizer import build_lr_scheduler, parameter_groups
from modelzoo.params.params import Params, save_params

# One host process drives every replica: poptorch replicates on the device, not with torch.distributed.
_SINGLE_PROCESS = DistContext()
# Marks the examples the eval loader repeats to fill its last combined batch (see _FilledToMultiple).
_REAL_EXAMPLE = "ipu_real_example"


def run(params: Params, mode: str, strict_loading: bool = True) -> None:
    """Run ``mode`` on IPUs. Every check that can fail runs before anything is written to model_dir."""
    poptorch = require_poptorch()
    ipu = _checked_ipu_params(params, mode)
    train_plan = eval_plan = None
    if mode != "eval":
        train_plan = batch_plan(params.train_input.batch_size, ipu, training=True, key="train_input.batch_size")
    if mode != "train":
        eval_plan = batch_plan(params.eval_input.batch_size, ipu, training=False, key="eval_input.batch_size")
    run_config = params.runconfig
    model_dir = Path(run_config.model_dir)
    checkpoint = None
    if mode == "eval":
        checkpoint = Path(run_config.checkpoint_path) if run_config.checkpoint_path else latest_checkpoint(model_dir)
        if checkpoint is None:
            raise CheckpointError(f"--mode eval: no checkpoint in {model_dir} and no --checkpoint_path given")

    torch.manual_seed(run_config.seed)
    task = build_task(params)
    model = task.build_model()
    if run_config.precision == "float16":
        model.half()
    placement = layer_placement(params.model.num_hidden_layers, ipu.layers_per_ipu, ipu.ipus_per_replica)
    recompute = poptorch.recomputationCheckpoint if ipu.recompute_checkpoint_every_layer else None
    blocks = apply_pipeline_plan(model, placement, ipu.ipus_per_replica, poptorch.BeginBlock, recompute)
    save_params(params, model_dir / mode / "params.yaml")
    print(f"IPU pipeline stages (block, IPU): {blocks}", flush=True)

    evaluator = IpuEvaluator(poptorch, task, model, ipu, eval_plan, params) if eval_plan else None
    try:
        if mode == "eval":
            for line in load_model_weights(model, checkpoint, strict_loading):
                print(line, flush=True)
            evaluator.evaluate(model_dir, checkpoint_step(checkpoint), run_config.eval_steps)
            return
        _train(params, mode, task, model, poptorch, ipu, train_plan, evaluator, strict_loading)
    finally:
        if evaluator is not None:
            evaluator.close()


def _checked_ipu_params(params: Params, mode: str) -> IPUParams:
    """The effective ``ipu:`` section, and the runconfig keys that mean something else on an IPU."""
    ipu = resolve_ipu_params(params.ipu or IPUParams(), params.model.num_hidden_layers)
    run_config = params.runconfig
    if run_config.gradient_accumulation_steps != 1:
        raise ParamsError(
            f"runconfig.gradient_accumulation_steps: {run_config.gradient_accumulation_steps} is for CPU and "
            "GPU; on IPUs poptorch accumulates on the device: set ipu.gradient_accumulation instead"
        )
    if run_config.precision == "bfloat16":
        raise ParamsError("runconfig.precision: IPUs compute in float32 or float16, not bfloat16")
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
    if run_config.precision == "float16" and not ipu.enable_half_partials:
        # A float16 model with float32 partials gains little memory; match what half precision means on IPU.
        ipu = dataclasses.replace(ipu, enable_half_partials=True)
    return ipu


def _train(params, mode, task, model, poptorch, ipu, train_plan, evaluator, strict_loading) -> None:
    """Train (and evaluate), as the torch executor does: resume from model_dir, or start from a checkpoint."""
    run_config = params.runconfig
    model_dir = Path(run_config.model_dir)
    trainer = IpuTrainer(params, task, model, poptorch, ipu, train_plan, model_dir)
    evaluated_at = None

    def evaluate(step: int) -> None:
        nonlocal evaluated_at
        trainer.detach()  # one executable on the IPUs at a time; detaching copies the weights to the host
        evaluator.evaluate(model_dir, step, run_config.eval_steps)
        evaluated_at = step

    try:
        resumed = trainer.resume_from_latest()
        if resumed is not None:
            _SINGLE_PROCESS.say(f"resumed from {resumed} (step {trainer.step})")
        elif run_config.checkpoint_path:
            trainer.start_from(Path(run_config.checkpoint_path), run_config.load_checkpoint_states, strict_loading)
        on_step = None
        if mode == "train_and_eval" and run_config.eval_frequency:

            def on_step(step: int) -> None:
                if _crossed(run_config.eval_frequency, step, ipu.device_iterations):
                    evaluate(step)

        trainer.train(on_step)
        if mode == "train_and_eval" and evaluated_at != trainer.step:
            evaluate(trainer.step)
    finally:
        trainer.close()


def _crossed(every: int | None, step: int, steps_per_call: int) -> bool:
    """Whether the host call that ended at ``step`` passed a multiple of ``every``."""
    return bool(every) and step // every > (step - steps_per_call) // every


# --- training ----------------------------------------------------------------------------------


class _TrainingStep(nn.Module):
    """What poptorch compiles for training: the model on positional inputs, returning its loss.

    poptorch passes tensors positionally and back-propagates from the loss the forward returns; the
    head's masked mean is a custom loss, so it is marked with ``poptorch.identity_loss`` (already a
    scalar: reduction "none").
    """

    def __init__(self, model: nn.Module, keys: tuple[str, ...], poptorch: ModuleType) -> None:
        super().__init__()
        self.model = model
        self.keys = keys
        self._identity_loss = poptorch.identity_loss

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self._identity_loss(self.model(**dict(zip(self.keys, inputs, strict=True))).loss, reduction="none")


class _InferenceStep(nn.Module):
    """What poptorch compiles for evaluation: logits and the mean loss of each micro batch."""

    def __init__(self, model: nn.Module, keys: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.keys = keys

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        output = self.model(**dict(zip(self.keys, inputs, strict=True)))
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


def build_ipu_optimizer(model: nn.Module, params: Params, poptorch: ModuleType) -> torch.optim.Optimizer:
    """The ``optimizer:`` section as a poptorch optimizer (same parameter groups as on CPU/GPU).

    Adam moments are kept in float32 whatever the weights' dtype, as Graphcore's BERT recipes do, so
    that a float16 model does not lose small updates in its optimizer state.
    """
    section = params.optimizer
    groups = parameter_groups(model, section.weight_decay)
    rate = section.schedule[0].initial
    if section.optimizer_type == "sgd":
        return poptorch.optim.SGD(groups, lr=rate, momentum=section.momentum)
    optimizer_class = poptorch.optim.AdamW if section.optimizer_type == "adamw" else poptorch.optim.Adam
    extra = {"max_grad_norm": section.max_gradient_norm} if section.max_gradient_norm is not None else {}
    return optimizer_class(
        groups,
        lr=rate,
        betas=tuple(section.betas),
        eps=section.eps,
        first_order_momentum_accum_type=torch.float32,
        second_order_momentum_accum_type=torch.float32,
        **extra,
    )


class IpuTrainer(Trainer):
    """The torch :class:`Trainer`'s state, checkpoints and logging, with the steps run by poptorch.

    ``state()``, ``load_state()``, ``resume_from_latest()`` and the log line are the parent's, so
    an IPU checkpoint has exactly the CPU/GPU layout; only the optimizer (a poptorch one) and the
    loop differ. The loss scaler stays a disabled torch one: poptorch scales on the device.
    """

    def __init__(self, params, task: Task, model: nn.Module, poptorch: ModuleType, ipu: IPUParams, plan: BatchPlan, model_dir):
        super().__init__(params, task, model, DeviceSetup(torch.device("cpu")), _SINGLE_PROCESS, model_dir)
        self.poptorch, self.ipu, self.plan = poptorch, ipu, plan
        self.optimizer = build_ipu_optimizer(self.model, params, poptorch)
        self.scheduler = build_lr_scheduler(self.optimizer, params.optimizer)
        self.options = build_poptorch_options(ipu, poptorch, training=True)
        self.dataset = task.dataset("train_input")
        self.training_model = None
        self.device_rate: float | None = None

    def _loader(self):
        """poptorch's loader for the rest of the current epoch: combined batches of the epoch's order."""
        section = self.params.train_input
        skip = self.batches_done * self.plan.global_batch_size
        return self.poptorch.DataLoader(
            self.options,
            self.dataset,
            batch_size=self.plan.micro_batch_size,
            shuffle=False,
            drop_last=True,
            num_workers=section.num_workers,
            sampler=_EpochOrder(len(self.dataset), section, self.epoch, skip),
        )

    def _combined_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield from self._loader()
            self.epoch, self.batches_done = self.epoch + 1, 0

    def train(self, on_step=None) -> list[float]:
        """Train to the configured length; each host call is ``device_iterations`` optimizer steps."""
        per_call = self.plan.device_iterations
        calls_per_epoch = len(self.dataset) // self.plan.combined_batch_size
        if calls_per_epoch == 0:
            raise ValueError(
                f"train_input has {len(self.dataset)} examples, fewer than one host call takes "
                f"({self.plan.combined_batch_size} = train_input.batch_size x ipu.device_iterations)"
            )
        total = self.total_steps(calls_per_epoch * per_call)  # whole host calls: max_steps was checked
        keys = self.task.model_input_keys
        losses: list[float] = []
        meter = Throughput()
        progress = tqdm(total=total, initial=self.step, desc="train", unit="step")
        self.model.train()
        with SignalFlag() as signals:
            batches = self._combined_batches()
            while self.step < total:
                batch = next(batches)
                self._set_device_rate()
                loss = self._call(*[batch[key] for key in keys])
                self.step += per_call
                self.batches_done += per_call
                for _ in range(per_call):
                    self.scheduler.step()
                losses.append(loss)
                meter.add(self.task.count_sequences(batch), int(count_real_tokens(batch)))
                progress.update(per_call)
                if _crossed(self.run.log_steps, self.step, per_call) or self.step == total:
                    self._log(loss, math.nan, meter, progress)
                if _crossed(self.run.save_checkpoints_steps, self.step, per_call):
                    self.save()
                if signals.received is not None:
                    progress.close()
                    raise TrainingInterrupted(signals.received, self.step, self.save())
                if on_step is not None:
                    on_step(self.step)
        progress.close()
        if latest_checkpoint(self.model_dir) != checkpoint_file(self.model_dir, self.step):
            self.save()
        return losses

    def _call(self, *inputs: torch.Tensor) -> float:
        """One host call; compiles on the first, re-attaches after an evaluation had the IPUs."""
        if self.training_model is None:
            wrapped = _TrainingStep(self.model, self.task.model_input_keys, self.poptorch)
            self.training_model = self.poptorch.trainingModel(wrapped, self.options, self.optimizer)
        elif self.training_model.isCompiled() and not self.training_model.isAttachedToDevice():
            self.training_model.attachToDevice()
        loss = float(self.training_model(*inputs).float().mean())
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"loss is {loss} at step {self.step + self.plan.device_iterations}; stopped. The last good "
                f"checkpoint in {self.model_dir} is {latest_checkpoint(self.model_dir) or 'none'}"
            )
        return loss

    def _set_device_rate(self) -> None:
        """The IPU keeps the rate it was compiled or last set with: hand it the schedule's when it moves."""
        rate = self.scheduler.get_last_lr()[0]
        if self.training_model is not None and rate != self.device_rate:
            self.training_model.setOptimizer(self.optimizer)
        self.device_rate = rate

    def save(self) -> Path | None:
        """The parent's checkpoint, after the trained weights are read back from the IPU."""
        if self.training_model is not None and self.training_model.isAttachedToDevice():
            self.training_model.copyWeightsToHost()
        return super().save()

    def detach(self) -> None:
        """Free the IPUs (poptorch copies the weights and optimizer state to the host first)."""
        if self.training_model is not None and self.training_model.isAttachedToDevice():
            self.training_model.detachFromDevice()

    def close(self) -> None:
        self.detach()
        super().close()


# --- evaluation --------------------------------------------------------------------------------


class _FilledToMultiple(Dataset):
    """The eval examples, repeated at the end up to a whole number of combined batches.

    poptorch runs fixed-size combined batches and its loader drops an incomplete last one, but every
    raw word must be scored. The repeats carry a zero loss mask and ``_REAL_EXAMPLE`` = 0, and are
    removed again before scoring; repeating real examples (rather than all-padding rows) keeps
    attention free of fully masked rows.
    """

    def __init__(self, dataset, num_examples: int, multiple: int) -> None:
        self.dataset = dataset
        self.num_examples = num_examples
        self.length = -(-num_examples // multiple) * multiple

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        example = dict(self.dataset[index % self.num_examples])
        real = index < self.num_examples
        if not real:
            example["loss_mask"] = np.zeros_like(example["loss_mask"])
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

    def evaluate(self, model_dir: Path, step: int, eval_steps: int | None) -> dict | None:
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

    def _outputs(self, loader) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]]:
        """Each eval batch (micro batch x replicas) of each host call, its repeats removed, with its mean loss.

        poptorch returns the outputs of a host call concatenated in input order: logits row for row,
        one mean loss per micro batch (iteration-major, then replica).
        """
        keys = self.task.model_input_keys
        micro, replicas = self.plan.micro_batch_size, self.plan.replication_factor
        for combined in loader:
            logits, losses = self.inference_model(*[combined[key] for key in keys])
            losses = losses.reshape(-1).double()
            for start in range(0, len(logits), micro * replicas):
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
                yield _rows(batch, real), logits[rows][real], loss

    def close(self) -> None:
        if self.inference_model is not None and self.inference_model.isAttachedToDevice():
            self.inference_model.detachFromDevice()


def _rows(batch: dict[str, torch.Tensor], rows: slice | torch.Tensor) -> dict[str, torch.Tensor]:
    return {key: values[rows] for key, values in batch.items()}
