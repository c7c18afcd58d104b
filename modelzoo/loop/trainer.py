"""The one training loop of every back-end: progress, logging, checkpoints, signals and NaN stops.

What differs between back-ends is only how optimizer steps run, so that is a component, a
:class:`TrainStep`: on torch (CPU and GPU) forward, backward and optimizer step with accumulation,
AMP and DDP (``modelzoo.backends.torch_step``); on poptorch (IPU) one host call of
``device_iterations`` steps (``modelzoo.backends.ipu``). Everything else is written once, here.

Restarts are exact: a checkpoint records the data position (epoch, batches consumed) and every
RNG state, and the data order depends only on (shuffle_seed, epoch), so a resumed run produces the
same losses step for step as one that was never stopped. A checkpoint has the same layout on every
back-end, so a run moves between them either way.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Protocol, Tuple

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from modelzoo.checkpoint.training import (
    checkpoint_file,
    latest_checkpoint,
    load_model_weights,
    load_training_state,
    restore_rng_states,
    rng_states,
    save_checkpoint,
)
from modelzoo.common.distributed import DistContext
from modelzoo.common.errors import CheckpointError, UserError
from modelzoo.optim.lr_schedule import check_schedule_covers
from modelzoo.optim.optimizer import build_lr_scheduler
from modelzoo.params.params import Params


class NonFiniteLossError(UserError):
    """The loss became NaN or inf; training stopped without saving over the last good checkpoint."""

    exit_code = 1


class TrainingInterrupted(RuntimeError):
    """Ctrl-C or SIGTERM: a checkpoint was saved at the step reached."""

    def __init__(self, signal_number: int, step: int, path: Optional[Path]) -> None:
        self.exit_code = 128 + signal_number
        where = f"checkpoint saved to {path}" if path else "no checkpoint (not rank 0)"
        super().__init__(f"interrupted by {signal.Signals(signal_number).name} at step {step}; {where}")


class SignalFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps (handlers restored on exit)."""

    def __init__(self) -> None:
        self.received: Optional[int] = None
        self._previous = {}

    def __enter__(self) -> SignalFlag:
        for number in (signal.SIGINT, signal.SIGTERM):
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame) -> None:
        self.received = number

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


@dataclass(frozen=True)
class StepResult:
    """What one call of a :class:`TrainStep` reports: the global batch's loss and what it processed."""

    loss: float
    grad_norm: float  # nan where the device does not hand it back (poptorch)
    samples: int
    real_tokens: int


class TrainStep(Protocol):
    """A back-end's optimizer steps: the part of training that torch and poptorch do differently."""

    model: nn.Module  # the host copy that checkpoints are written from
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler  # enabled only for float16 on torch; poptorch scales on the device
    steps_per_call: int  # optimizer steps one call() runs
    batches_per_call: int  # units of the data position one call() consumes

    def steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch of train_input; raises ParamsError if not even one fits."""

    def epoch_calls(self, epoch: int, skip: int) -> Iterator[Any]:
        """The work of each call() through ``epoch``, the first ``skip`` units of the position left out."""

    def call(self, work: Any, learning_rate: float) -> StepResult:
        """Run ``steps_per_call`` optimizer steps; the weights stay unchanged when the loss is not finite."""

    def sync_to_host(self) -> None:
        """Bring the trained weights and optimizer state into ``model``/``optimizer`` (before a save)."""

    def release(self) -> None:
        """Free the device for another program (evaluation) until the next call()."""


class Trainer:
    def __init__(self, params: Params, step: TrainStep, context: DistContext, model_dir: Path) -> None:
        self.params, self.train_step, self.context = params, step, context
        self.run = params.runconfig
        self.model_dir = Path(model_dir)
        self.model, self.optimizer, self.scaler = step.model, step.optimizer, step.scaler
        self.scheduler = build_lr_scheduler(self.optimizer, params.optimizer)
        self.step, self.epoch, self.batches_done = 0, 0, 0
        self.writer = SummaryWriter(str(self.model_dir / "train")) if context.is_main else None

    # --- state -------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "rng": rng_states(),
            "params": self.params.to_dict(),
        }

    def resume_from_latest(self) -> Optional[Path]:
        """Continue from the newest checkpoint in model_dir, if any (the automatic restart)."""
        path = latest_checkpoint(self.model_dir)
        if path is not None:
            self.load_state(path)
        return path

    def load_state(self, path: Path) -> None:
        """Restore everything a checkpoint holds, so training continues exactly where it stopped."""
        state = load_training_state(path)
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as error:
            raise CheckpointError(f"{path}: checkpoint is for another model shape ({str(error).splitlines()[1].strip()})") from error
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.batches_done = state["step"], state["epoch"], state["batches_done"]
        restore_rng_states(state["rng"])

    def start_from(self, path: Path, states: Optional[str], strict: bool) -> None:
        """Fine-tuning start: weights only ('model'), or the whole training state of a run.py checkpoint."""
        if states == "model":
            for line in load_model_weights(self.model, path, strict):
                self.context.say(line)
        else:
            self.load_state(path)
            self.context.say(f"restored the full training state of {path} (step {self.step})")

    def save(self) -> Optional[Path]:
        self.train_step.sync_to_host()
        if not self.context.is_main:
            return None
        path = checkpoint_file(self.model_dir, self.step)
        save_checkpoint(self.state(), path, self.run.keep_checkpoint_max)
        return path

    # --- the loop ----------------------------------------------------------------------------
    def total_steps(self, steps_per_epoch: int) -> int:
        if self.run.max_steps is not None:
            return self.run.max_steps
        return self.run.num_epochs * steps_per_epoch

    def _calls(self) -> Iterator[Any]:
        """The work of each call, epoch after epoch, from the saved data position."""
        while True:
            yield from self.train_step.epoch_calls(self.epoch, self.batches_done)
            self.epoch, self.batches_done = self.epoch + 1, 0

    def train(self, on_step: Optional[Callable[[int], bool]] = None) -> List[float]:
        """Train to the configured length; returns the loss of every call run here.

        ``on_step(step)`` is called after each call (train_and_eval evaluates from it); a true
        result ends training at that step (early stopping).
        """
        total = self.total_steps(self.train_step.steps_per_epoch())
        if self.run.max_steps is None and self.params.cerebras is None:  # max_steps: checked with the params
            length = f"the run ({self.run.num_epochs} epochs of {self.train_step.steps_per_epoch()} steps)"
            check_schedule_covers(self.params.optimizer.schedule, total, length)
        per_call = self.train_step.steps_per_call
        losses: List[float] = []
        meter = Throughput()
        progress = tqdm(total=total, initial=self.step, desc="train", unit="step", disable=not self.context.is_main)
        # The bar is closed however the loop ends, so an error message starts on a line of its own.
        with SignalFlag() as signals, progress:
            calls = self._calls()
            while self.step < total:
                result = self.train_step.call(next(calls), self.scheduler.get_last_lr()[0])
                if not math.isfinite(result.loss):
                    raise NonFiniteLossError(
                        f"loss is {result.loss} at step {self.step + per_call}; stopped. The last good checkpoint in "
                        f"{self.model_dir} is {latest_checkpoint(self.model_dir) or 'none'}"
                    )
                self.step += per_call
                self.batches_done += self.train_step.batches_per_call
                for _ in range(per_call):
                    self.scheduler.step()
                losses.append(result.loss)
                meter.add(result.samples, result.real_tokens)
                progress.update(per_call)
                if crossed(self.run.log_steps, self.step, per_call) or self.step == total:
                    self._log(result, meter, progress)
                if crossed(self.run.save_checkpoints_steps, self.step, per_call):
                    self.save()
                if signals.received is not None:
                    raise TrainingInterrupted(signals.received, self.step, self.save())
                if on_step is not None and on_step(self.step):
                    break  # early stopping
        if latest_checkpoint(self.model_dir) != checkpoint_file(self.model_dir, self.step):
            self.save()
        self.context.barrier()
        return losses

    def _log(self, result: StepResult, meter: Throughput, progress: tqdm) -> None:
        if not self.context.is_main:
            return
        samples_per_s, tokens_per_s = meter.rates()
        lr = self.scheduler.get_last_lr()[0]
        progress.write(
            f"step {self.step}: loss {result.loss:.4f}, lr {lr:.3e}, grad norm {result.grad_norm:.3f}, "
            f"{samples_per_s:.1f} samples/s, {tokens_per_s:.0f} real tokens/s"
        )
        for name, value in (
            ("loss", result.loss),
            ("learning_rate", lr),
            ("grad_norm", result.grad_norm),
            ("samples_per_second", samples_per_s),
            ("real_tokens_per_second", tokens_per_s),
        ):
            self.writer.add_scalar(name, value, self.step)
        self.writer.flush()

    def close(self) -> None:
        self.train_step.release()
        if self.writer is not None:
            self.writer.close()


def crossed(every: Optional[int], step: int, steps_per_call: int) -> bool:
    """Whether the call that ended at ``step`` passed a multiple of ``every`` (0 or None: never)."""
    return bool(every) and step // every > (step - steps_per_call) // every


class Throughput:
    """Samples and real tokens per second since the last report."""

    def __init__(self) -> None:
        self.start, self.samples, self.tokens = time.perf_counter(), 0, 0

    def add(self, samples: int, tokens: int) -> None:
        self.samples += samples
        self.tokens += tokens

    def rates(self) -> Tuple[float, float]:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rates = self.samples / elapsed, self.tokens / elapsed
        self.start, self.samples, self.tokens = time.perf_counter(), 0, 0
        return rates
