"""The training loop in process: loss falls, exact restarts, checkpoints, logging, NaN and write failures."""

from __future__ import annotations

import hashlib
import os
import random
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from modelzoo.backends.torch_step import TorchStep
from modelzoo.checkpoint.training import (
    list_checkpoints,
    load_training_state,
    restore_rng_states,
    rng_states,
    save_checkpoint,
)
from modelzoo.cli.main import main
from modelzoo.common.device import DeviceSetup
from modelzoo.common.distributed import DistContext
from modelzoo.heads import build_task
from modelzoo.loop.trainer import Trainer, TrainingInterrupted
from modelzoo.params.params import load_params
from tests.run_fixtures import model_tensors, tiny_params, write_params


def make_trainer(tmp_path: Path, params: dict, name: str = "params.yaml") -> Trainer:
    """What torch_runner does before training, in a fresh state: seed, build the task and model, wrap."""
    loaded = load_params(write_params(tmp_path / name, params))
    torch.manual_seed(loaded.runconfig.seed)
    task = build_task(loaded)
    setup = DeviceSetup(torch.device("cpu"), loaded.runconfig.precision)
    step = TorchStep(loaded, task, task.build_model(), setup, DistContext())
    return Trainer(loaded, step, DistContext(), Path(loaded.runconfig.model_dir))


def train(tmp_path: Path, params: dict, on_step=None) -> tuple[list[float], Trainer]:
    trainer = make_trainer(tmp_path, params)
    try:
        trainer.resume_from_latest()
        return trainer.train(on_step), trainer
    finally:
        trainer.close()


def test_tiny_model_loss_falls_and_is_logged(ner_csv, tmp_path, capsys):
    model_dir = tmp_path / "run"
    losses, trainer = train(tmp_path, tiny_params(ner_csv, model_dir))
    assert len(losses) == 30 and trainer.step == 30
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5, losses
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert [line.split(":")[0] for line in printed] == [f"step {s}" for s in range(5, 31, 5)]
    for field in ("loss", "lr", "grad norm", "samples/s", "real tokens/s"):
        assert field in printed[-1]
    events = EventAccumulator(str(model_dir / "train"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss", "learning_rate", "grad_norm", "samples_per_second", "real_tokens_per_second"} <= tags
    assert [event.step for event in events.Scalars("loss")] == list(range(5, 31, 5))
    assert events.Scalars("loss")[-1].value == pytest.approx(losses[-1])


@pytest.mark.parametrize(("accumulation", "stop_at"), [(1, 13), (1, 17), (2, 9)])
def test_restart_from_checkpoint_gives_bit_identical_losses(ner_csv, tmp_path, accumulation, stop_at):
    """Dropout and shuffling are on, and the runs cross epochs: RNG and data position must both be restored."""
    steps = {"max_steps": 30 if accumulation == 1 else 16}
    run = {**steps, "gradient_accumulation_steps": accumulation}
    straight, _ = train(tmp_path, tiny_params(ner_csv, tmp_path / "straight", runconfig=run))

    stopped = tmp_path / "stopped"
    first, _ = train(tmp_path, tiny_params(ner_csv, stopped, runconfig={**run, "max_steps": stop_at}))
    assert list_checkpoints(stopped)[-1][0] == stop_at
    rest, resumed = train(tmp_path, tiny_params(ner_csv, stopped, runconfig=run))
    assert resumed.step == steps["max_steps"]
    assert first + rest == straight


def test_interrupt_saves_the_step_reached_and_the_run_resumes_exactly(ner_csv, tmp_path):
    """SIGINT mid-run (the flag is checked between steps) saves a checkpoint; resuming matches a straight run."""
    straight, _ = train(tmp_path, tiny_params(ner_csv, tmp_path / "straight", runconfig={"max_steps": 12}))
    model_dir = tmp_path / "interrupted"
    params = tiny_params(ner_csv, model_dir, runconfig={"max_steps": 12})
    trainer = make_trainer(tmp_path, params)

    def interrupt(step: int) -> None:
        if step == 4:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as stop:
        trainer.train(interrupt)
    trainer.close()
    assert stop.value.exit_code == 128 + signal.SIGINT
    assert "SIGINT at step 5" in str(stop.value)
    assert [step for step, _ in list_checkpoints(model_dir)] == [5]
    assert torch.load(model_dir / "checkpoint_5.mdl", weights_only=False)["step"] == 5
    rest, _ = train(tmp_path, params)
    assert len(rest) == 7
    assert rest == straight[5:]


def test_checkpoint_contents_and_keep_checkpoint_max(ner_csv, tmp_path):
    model_dir = tmp_path / "run"
    params = tiny_params(ner_csv, model_dir, runconfig={"max_steps": 20, "save_checkpoints_steps": 5, "keep_checkpoint_max": 2})
    train(tmp_path, params)
    assert [step for step, _ in list_checkpoints(model_dir)] == [15, 20]
    state = torch.load(model_dir / "checkpoint_20.mdl", weights_only=True)  # eval and fine-tuning read it so
    assert {"model", "optimizer", "scheduler", "scaler", "step", "epoch", "batches_done", "rng", "params"} <= set(state)
    assert state["step"] == 20 and state["params"]["runconfig"]["keep_checkpoint_max"] == 2
    assert {"python", "numpy", "torch"} <= set(state["rng"])
    assert not [path for path in model_dir.iterdir() if path.name.startswith(".")]


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    path = tmp_path / "checkpoint_1.mdl"
    save_checkpoint({"rng": rng_states()}, path)

    def draws():
        return random.random(), np.random.standard_normal(3).tolist(), torch.rand(3).tolist()

    before = draws()
    restore_rng_states(load_training_state(path)["rng"])
    assert draws() == before


def test_gradient_accumulation_equals_the_whole_batch(ner_csv, tmp_path):
    """Two batches of 4 accumulated make the same update as one batch of 8 (loss weighted by positions)."""
    no_dropout = {"dropout_rate": 0.0, "attention_dropout_rate": 0.0}
    whole = tiny_params(ner_csv, tmp_path / "whole", model=no_dropout, runconfig={"max_steps": 6})
    halves = tiny_params(
        ner_csv,
        tmp_path / "halves",
        model=no_dropout,
        train_input={"batch_size": 4},
        runconfig={"max_steps": 6, "gradient_accumulation_steps": 2},
    )
    whole_losses, _ = train(tmp_path, whole)
    halves_losses, _ = train(tmp_path, halves)
    assert halves_losses == pytest.approx(whole_losses, abs=1e-5)
    a, b = model_tensors(tmp_path / "whole" / "checkpoint_6.mdl"), model_tensors(tmp_path / "halves" / "checkpoint_6.mdl")
    assert max((a[key] - b[key]).abs().max().item() for key in a) < 1e-5


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(ner_csv, tmp_path, monkeypatch, capsys):
    import modelzoo.bert.heads as heads

    calls = {"count": 0}
    real_loss = heads.masked_cross_entropy

    def loss_turning_nan(*args, **kwargs):
        calls["count"] += 1
        loss = real_loss(*args, **kwargs)
        return loss * float("nan") if calls["count"] == 12 else loss

    monkeypatch.setattr(heads, "masked_cross_entropy", loss_turning_nan)
    model_dir = tmp_path / "run"
    params = tiny_params(ner_csv, model_dir, runconfig={"max_steps": 20, "save_checkpoints_steps": 5})
    rc = main(["CPU", "--mode", "train", "--params", str(write_params(tmp_path / "p.yaml", params))])
    assert rc == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "at step 12" in errors[0] and "checkpoint_10.mdl" in errors[0], errors
    assert [step for step, _ in list_checkpoints(model_dir)] == [5, 10]
    assert torch.load(model_dir / "checkpoint_10.mdl", weights_only=False)["step"] == 10


def test_failed_checkpoint_write_leaves_the_previous_one_intact(ner_csv, tmp_path, monkeypatch, capsys):
    import modelzoo.checkpoint.training as checkpoint

    model_dir = tmp_path / "run"
    params_file = write_params(tmp_path / "p.yaml", tiny_params(ner_csv, model_dir))
    assert main(["CPU", "--mode", "train", "--params", str(params_file), "--max_steps", "10"]) == 0
    previous = model_dir / "checkpoint_10.mdl"
    digest = hashlib.sha256(previous.read_bytes()).hexdigest()
    real_save = torch.save

    def save_then_fail(obj, stream, *args, **kwargs):
        stream.write(b"partial checkpoint bytes")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", save_then_fail)
    capsys.readouterr()
    rc = main(["CPU", "--mode", "train", "--params", str(params_file), "--max_steps", "20"])
    monkeypatch.setattr(checkpoint.torch, "save", real_save)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert rc != 0
    assert len(errors) == 1 and "checkpoint_20.mdl" in errors[0] and "no space left on device" in errors[0], errors
    # no partial file: the old checkpoint and the model files training copies into model_dir, nothing else
    assert sorted(path.name for path in model_dir.iterdir() if path.is_file()) == [
        "checkpoint_10.mdl", "label2id.json", "vocab.txt"]
    assert hashlib.sha256(previous.read_bytes()).hexdigest() == digest
    assert torch.load(previous, weights_only=False)["step"] == 10


@pytest.mark.parametrize("max_norm", [None, 0.01])
def test_the_step_clips_the_global_gradient_norm(ner_csv, tmp_path, max_norm):
    """With plain SGD (lr 1) the update is the gradient itself: its norm is the clipped norm."""
    params = tiny_params(
        ner_csv, tmp_path / "run",
        optimizer={"optimizer_type": "sgd", "learning_rate": 1.0, "weight_decay": 0.0, "max_gradient_norm": max_norm},
        model={"dropout_rate": 0.0, "attention_dropout_rate": 0.0},
    )
    trainer = make_trainer(tmp_path, params)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    result = trainer.train_step.call(next(trainer._calls()), 1.0)
    change = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(trainer.model.parameters(), before, strict=True)))
    trainer.close()
    assert result.grad_norm > 0.01  # the norm before clipping is reported
    expected = result.grad_norm if max_norm is None else max_norm
    assert float(change) == pytest.approx(expected, rel=1e-4)
