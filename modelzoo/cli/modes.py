"""The training and evaluation modes, written once for every back-end.

Order matters for "no lost work": the back-end is set up (CUDA or poptorch found, the ``ipu:``
section checked) and the checkpoint to evaluate is located before anything is written; a restart
picks up the newest checkpoint in model_dir by itself.
"""

from __future__ import annotations

from pathlib import Path

from modelzoo.backends.targets import make_backend
from modelzoo.checkpoint.best import BestCheckpoint, evaluated_step
from modelzoo.checkpoint.lock import take_model_dir
from modelzoo.checkpoint.model_dir import copy_model_files
from modelzoo.checkpoint.training import (
    checkpoint_to_evaluate,
    latest_checkpoint,
    load_model_weights,
    saved_params,
    seed_rngs,
)
from modelzoo.common.distributed import DistContext
from modelzoo.heads import build_task
from modelzoo.loop.trainer import Trainer, crossed
from modelzoo.params.compare import check_resume_params
from modelzoo.params.params import Params, save_params


def run_mode(params: Params, mode: str, target: str, strict_loading: bool, allow_changed_params: bool = False) -> None:
    """Run ``mode`` (train, eval or train_and_eval) on ``target`` (CPU, GPU or IPU)."""
    backend = make_backend(target, params, mode)
    checkpoint = checkpoint_to_evaluate(params.runconfig, "--mode eval") if mode == "eval" else None
    context = backend.start()
    writer_lock = None
    try:
        run = params.runconfig
        if mode != "eval":  # one writer per model_dir; its resume must continue the same run
            writer_lock = take_model_dir(Path(run.model_dir), context, run.keep_checkpoint_max)
            resumed = latest_checkpoint(Path(run.model_dir))
            saved = saved_params(resumed) if resumed is not None else None
            for line in check_resume_params(resumed, saved, params.to_dict(), allow_changed_params):
                context.say(line)
        seed_rngs(run.seed)
        task = build_task(params)
        model = task.build_model()
        backend.prepare(model)
        if context.is_main:
            save_params(params, Path(run.model_dir) / mode / "params.yaml")
            if mode != "eval":
                copy_model_files(Path(run.model_dir), params.train_input, run.checkpoint_path)
            backend.announce()
        evaluator = backend.evaluator(task, model, context) if mode != "train" else None
        try:
            if mode == "eval":
                for line in load_model_weights(model, checkpoint, strict_loading):
                    context.say(line)
                evaluator.evaluate(Path(run.model_dir), evaluated_step(checkpoint), run.eval_steps)
            else:
                train(params, mode, Trainer(params, backend.train_step(task, model, context), context, run.model_dir),
                      evaluator, context, strict_loading)
        finally:
            if evaluator is not None:
                evaluator.close()
    finally:
        if writer_lock is not None:
            writer_lock.release()
        backend.stop()


def train(params: Params, mode: str, trainer: Trainer, evaluator, context: DistContext, strict_loading: bool) -> None:
    """Resume from model_dir or start from a checkpoint, train, and evaluate as train_and_eval asks."""
    run = params.runconfig
    evaluated_at = best = None

    def evaluate(step: int) -> bool:
        """Evaluate and keep the best checkpoint; True when early stopping ends training."""
        nonlocal evaluated_at
        trainer.train_step.release()  # one program on the device at a time (IPU)
        results = evaluator.evaluate(trainer.model_dir, step, run.eval_steps)
        evaluated_at = step
        return best is not None and best.stop_after(step, results, trainer.save, context)

    try:
        resumed = trainer.resume_from_latest()
        if resumed is not None:
            context.say(f"resumed from {resumed} (step {trainer.step})")
        elif run.checkpoint_path:
            trainer.start_from(Path(run.checkpoint_path), run.load_checkpoint_states, strict_loading)
        if mode == "train_and_eval":
            best = BestCheckpoint.for_run(trainer.model_dir, run, params.model.head, trainer.step, context.is_main)
        on_step = None
        if mode == "train_and_eval" and run.eval_frequency:

            def on_step(step: int) -> bool:
                return crossed(run.eval_frequency, step, trainer.train_step.steps_per_call) and evaluate(step)

        stopped = evaluated = False
        if best is not None:  # only the writer reads the record: its answers hold on every rank
            stopped, evaluated = context.gather_objects((best.should_stop(), best.has_evaluated(trainer.step)))[0]
        if evaluated:
            evaluated_at = trainer.step
        elif not stopped and on_step is not None and resumed is not None and trainer.step > 0:
            stopped = on_step(trainer.step)  # a run killed while evaluating this step: that evaluation is still due
        if stopped:
            evaluated_at = trainer.step  # stopped early: nothing left to train or evaluate
        else:
            trainer.train(on_step)
        if mode == "train_and_eval" and evaluated_at != trainer.step:
            evaluate(trainer.step)
    finally:
        trainer.close()
