"""The training loop shared by the CPU and GPU executors (one process or many under torchrun).

Each optimizer step takes ``gradient_accumulation_steps`` batches per rank and weights every
batch's mean loss by its share of the loss positions of the whole global batch. The update is then
the one a single process would make on the global batch: accumulation and data parallelism change
the speed, not the result.

Restarts are exact: a checkpoint records the data position (epoch, batches consumed) and every
RNG state, and the data order depends only on (shuffle_seed, epoch), so a resumed run produces the
same losses step for step as one that was never stopped.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
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
from modelzoo.common.errors import CheckpointError, ParamsError, UserError
from modelzoo.loop.device import DeviceSetup
from modelzoo.loop.distributed import DistContext
from modelzoo.loop.tasks import Task, count_loss_positions, count_real_tokens
from modelzoo.optim.optimizer import build_lr_scheduler, build_optimizer
from modelzoo.params.params import Params


class NonFiniteLossError(UserError):
    """The loss became NaN or inf; training stopped without saving over the last good checkpoint."""

    exit_code = 1


class TrainingInterrupted(RuntimeError):
    """Ctrl-C or SIGTERM: a checkpoint was saved at the step reached."""

    def __init__(self, signal_number: int, step: int, path: Path | None) -> None:
        self.exit_code = 128 + signal_number
        where = f"checkpoint saved to {path}" if path else "no checkpoint (not rank 0)"
        super().__init__(f"interrupted by {signal.Signals(signal_number).name} at step {step}; {where}")


class SignalFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps (handlers restored on exit)."""

    def __init__(self) -> None:
        self.received: int | None = None
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


class Trainer:
    def __init__(
        self, params: Params, task: Task, model: nn.Module, setup: DeviceSetup, context: DistContext, model_dir: Path
    ) -> None:
        self.params, self.task, self.setup, self.context = params, task, setup, context
        self.run = params.runconfig
        self.model_dir = Path(model_dir)
        self.model = model.to(setup.device)
        self.optimizer = build_optimizer(self.model, params.optimizer)
        self.scheduler = build_lr_scheduler(self.optimizer, params.optimizer)
        self.scaler = setup.grad_scaler()
        self.step, self.epoch, self.batches_done = 0, 0, 0
        wrapped = self.model
        if context.distributed:
            device_ids = [setup.device.index] if setup.device.type == "cuda" else None
            wrapped = DistributedDataParallel(self.model, device_ids=device_ids)
        self.forward_model = torch.compile(wrapped) if self.run.compile else wrapped
        # Eager runs skip the padding (BertModel's skip_padding: a padded batch computes only its
        # real tokens); torch.compile needs the static shapes of the padded batch.
        self.skip_padding = not self.run.compile
        self.ddp = wrapped if context.distributed else None
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

    def resume_from_latest(self) -> Path | None:
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

    def start_from(self, path: Path, states: str | None, strict: bool) -> None:
        """Fine-tuning start: weights only ('model'), or the whole training state of a run.py checkpoint."""
        if states == "model":
            for line in load_model_weights(self.model, path, strict):
                self.context.say(line)
        else:
            self.load_state(path)
            self.context.say(f"restored the full training state of {path} (step {self.step})")

    def save(self) -> Path | None:
        if not self.context.is_main:
            return None
        path = checkpoint_file(self.model_dir, self.step)
        save_checkpoint(self.state(), path, self.run.keep_checkpoint_max)
        return path

    # --- the loop ----------------------------------------------------------------------------
    def total_steps(self, batches_per_epoch: int) -> int:
        if self.run.max_steps is not None:
            return self.run.max_steps
        return self.run.num_epochs * (batches_per_epoch // self.run.gradient_accumulation_steps)

    def _global_batches(self):
        """Yield lists of ``gradient_accumulation_steps`` batches, epoch after epoch, from the saved position."""
        accumulation = self.run.gradient_accumulation_steps
        while True:
            loader = self.task.dataloader("train_input", self.context, self.epoch)
            pending = []
            for index, batch in enumerate(loader):
                if index < self.batches_done:
                    continue
                pending.append(batch)
                if len(pending) == accumulation:
                    yield pending
                    pending = []
            self.epoch, self.batches_done = self.epoch + 1, 0

    def train(self, on_step=None) -> list[float]:
        """Train to the configured length; returns the loss of every step run here.

        ``on_step(step)`` is called after each optimizer step (train_and_eval evaluates from it).
        """
        if self.context.distributed and not self.params.train_input.drop_last:
            raise ParamsError("train_input.drop_last must be true with several processes (every rank must take the same steps)")
        batches_per_epoch = len(self.task.dataloader("train_input", self.context, self.epoch))
        if batches_per_epoch < self.run.gradient_accumulation_steps:
            raise ParamsError(
                f"train_input has {batches_per_epoch} batches per rank, fewer than "
                f"runconfig.gradient_accumulation_steps ({self.run.gradient_accumulation_steps})"
            )
        total = self.total_steps(batches_per_epoch)
        losses: list[float] = []
        meter = Throughput()
        progress = tqdm(total=total, initial=self.step, desc="train", unit="step", disable=not self.context.is_main)
        # The bar is closed however the loop ends, so an error message starts on a line of its own.
        with SignalFlag() as signals, progress:
            batches = self._global_batches()
            while self.step < total:
                loss, grad_norm, samples, tokens = self._optimizer_step(next(batches))
                self.step += 1
                self.batches_done += self.run.gradient_accumulation_steps
                losses.append(loss)
                meter.add(samples, tokens)
                progress.update(1)
                if self.step % self.run.log_steps == 0 or self.step == total:
                    self._log(loss, grad_norm, meter, progress)
                if self.run.save_checkpoints_steps and self.step % self.run.save_checkpoints_steps == 0:
                    self.save()
                if signals.received is not None:
                    raise TrainingInterrupted(signals.received, self.step, self.save())
                if on_step is not None:
                    on_step(self.step)
        if latest_checkpoint(self.model_dir) != checkpoint_file(self.model_dir, self.step):
            self.save()
        self.context.barrier()
        return losses

    def _optimizer_step(self, micro_batches: list[dict[str, torch.Tensor]]) -> tuple[float, float, int, int]:
        keys = self.task.model_input_keys
        counts = torch.stack([count_loss_positions(batch) for batch in micro_batches]).double()
        global_count = self.context.all_reduce_sum(counts.sum().to(self.setup.device)).clamp(min=1.0)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.setup.device)
        self.model.train()
        for index, batch in enumerate(micro_batches):
            last = index == len(micro_batches) - 1
            sync = contextlib.nullcontext() if last or self.ddp is None else self.ddp.no_sync()
            with sync:
                with self.setup.autocast():
                    output = self.forward_model(**self.setup.to_device(batch, keys), skip_padding=self.skip_padding)
                weight = counts[index].to(self.setup.device) / global_count
                # DDP averages gradients over ranks; scale by world_size so they sum instead.
                scaled = output.loss * (weight * self.context.world_size).to(output.loss.dtype)
                self.scaler.scale(scaled).backward()
            loss_sum += output.loss.detach().double() * weight
        loss = self.context.all_reduce_sum(loss_sum).item()
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"loss is {loss} at step {self.step + 1}; stopped. The last good checkpoint in "
                f"{self.model_dir} is {latest_checkpoint(self.model_dir) or 'none'}"
            )
        self.scaler.unscale_(self.optimizer)
        max_norm = self.params.optimizer.max_gradient_norm
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm if max_norm else math.inf)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        samples = sum(self.task.count_sequences(batch) for batch in micro_batches)
        tokens = int(sum(count_real_tokens(batch) for batch in micro_batches))
        totals = self.context.all_reduce_sum(torch.tensor([samples, tokens], device=self.setup.device))
        return loss, float(grad_norm), int(totals[0]), int(totals[1])

    def _log(self, loss: float, grad_norm: float, meter: Throughput, progress: tqdm) -> None:
        if not self.context.is_main:
            return
        samples_per_s, tokens_per_s = meter.rates()
        lr = self.scheduler.get_last_lr()[0]
        progress.write(
            f"step {self.step}: loss {loss:.4f}, lr {lr:.3e}, grad norm {grad_norm:.3f}, "
            f"{samples_per_s:.1f} samples/s, {tokens_per_s:.0f} real tokens/s"
        )
        for name, value in (
            ("loss", loss),
            ("learning_rate", lr),
            ("grad_norm", grad_norm),
            ("samples_per_second", samples_per_s),
            ("real_tokens_per_second", tokens_per_s),
        ):
            self.writer.add_scalar(name, value, self.step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Throughput:
    """Samples and real tokens per second since the last report."""

    def __init__(self) -> None:
        self.start, self.samples, self.tokens = time.perf_counter(), 0, 0

    def add(self, samples: int, tokens: int) -> None:
        self.samples += samples
        self.tokens += tokens

    def rates(self) -> tuple[float, float]:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rates = self.samples / elapsed, self.tokens / elapsed
        self.start, self.samples, self.tokens = time.perf_counter(), 0, 0
        return rates
