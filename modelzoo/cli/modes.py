"""Runs a mode (train, eval, train_and_eval) on a torch device: the body of the CPU and GPU executors.

Order matters for "no lost work": params are validated and the checkpoint to evaluate is located
before anything is written; a restart picks up the newest checkpoint in model_dir by itself.
"""

from __future__ import annotations

from pathlib import Path

import torch

from modelzoo.backends import cpu, gpu
from modelzoo.checkpoint.training import checkpoint_step, latest_checkpoint, load_model_weights
from modelzoo.common.errors import CheckpointError
from modelzoo.loop.device import DeviceSetup
from modelzoo.loop.distributed import init_distributed, shutdown_distributed
from modelzoo.loop.evaluation import evaluate
from modelzoo.loop.tasks import build_task
from modelzoo.loop.trainer import Trainer
from modelzoo.params.params import Params, save_params


def run_mode(params: Params, mode: str, target: str, strict_loading: bool) -> None:
    """Run a training or evaluation ``mode`` on ``target`` (CPU, GPU or IPU)."""
    if target == "IPU":
        from modelzoo.backends import ipu

        ipu.run(params, mode, strict_loading)
    elif target == "GPU":
        run_on_torch_device(params, mode, gpu.require_cuda(), gpu.DISTRIBUTED_BACKEND, strict_loading)
    else:
        run_on_torch_device(params, mode, cpu.cpu_device(params), cpu.DISTRIBUTED_BACKEND, strict_loading)


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
                context.say(line)
            step = checkpoint_step(checkpoint)
            evaluate(model.to(device), task, setup, context, model_dir, step, run.eval_steps)
            return
        trainer = Trainer(params, task, model, setup, context, model_dir)
        try:
            resumed = trainer.resume_from_latest()
            if resumed is not None:
                context.say(f"resumed from {resumed} (step {trainer.step})")
            elif run.checkpoint_path:
                trainer.start_from(Path(run.checkpoint_path), run.load_checkpoint_states, strict_loading)
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
