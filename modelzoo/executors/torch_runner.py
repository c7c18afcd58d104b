"""Runs a mode (train, eval, train_and_eval) on a torch device: the body of the CPU and GPU executors.

Order matters for "no lost work": params are validated and the checkpoint to evaluate is located
before anything is written; a restart picks up the newest checkpoint in model_dir by itself.
"""

from __future__ import annotations

from pathlib import Path

import torch

from modelzoo.run.checkpoint import checkpoint_step, latest_checkpoint, load_model_weights
from modelzoo.run.distributed import init_distributed, shutdown_distributed
from modelzoo.run.evaluation import evaluate
from modelzoo.run.params import Params, save_params
from modelzoo.run.tasks import build_task
from modelzoo.run.trainer import DeviceSetup, Trainer
from modelzoo.tools.checkpoint_files import CheckpointError


def run_on_torch_device(params: Params, mode: str, device: torch.device, backend: str, strict_loading: bool) -> None:
    run = params.runconfig
    model_dir = Path(run.model_dir)
    if mode == "eval":
        checkpoint = Path(run.checkpoint_path) if run.checkpoint_path else latest_checkpoint(model_dir)
        if checkpoint is None:
            raise CheckpointError(f"--mode eval: no checkpoint in {model_dir} and no --checkpoint_path given")
    context = init_distributed(backend)
    if device.type == "cuda":
        device = torch.device("cuda", context.local_rank)
        torch.cuda.set_device(device)
    try:
        torch.manual_seed(run.seed)
        task = build_task(params)
        model = task.build_model()
        setup = DeviceSetup(device, run.precision)
        if context.is_main:
            save_params(params, model_dir / mode / "params.yaml")
        if mode == "eval":
            for line in load_model_weights(model, checkpoint, strict_loading):
                say(context, line)
            step = checkpoint_step(checkpoint)
            evaluate(model.to(device), task, setup, context, model_dir, step, run.eval_steps)
            return
        trainer = Trainer(params, task, model, setup, context, model_dir)
        try:
            resumed = trainer.resume_from_latest()
            if resumed is not None:
                say(context, f"resumed from {resumed} (step {trainer.step})")
            elif run.checkpoint_path:
                start_from(trainer, Path(run.checkpoint_path), run.load_checkpoint_states, strict_loading, context)
            on_step = None
            if mode == "train_and_eval" and run.eval_frequency:
                def on_step(step: int) -> None:
                    if step % run.eval_frequency == 0:
                        evaluate(trainer.model, task, setup, context, model_dir, step, run.eval_steps)
            trainer.train(on_step)
            if mode == "train_and_eval" and not (run.eval_frequency and trainer.step % run.eval_frequency == 0):
                evaluate(trainer.model, task, setup, context, model_dir, trainer.step, run.eval_steps)
        finally:
            trainer.close()
    finally:
        shutdown_distributed()


def start_from(trainer: Trainer, path: Path, states: str | None, strict: bool, context) -> None:
    """Fine-tuning start: weights only ('model'), or the whole training state of a run.py checkpoint."""
    if states == "model":
        for line in load_model_weights(trainer.model, path, strict):
            say(context, line)
    else:
        trainer.load_state(path)
        say(context, f"restored the full training state of {path} (step {trainer.step})")




def say(context, line: str) -> None:
    if context.is_main:
        print(line, flush=True)
