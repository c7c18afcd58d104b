"""The best checkpoint of train_and_eval and early stopping: real training, a scripted eval metric.

The metric is scripted (the torch back-end's ``evaluate`` replaced) so that the tests choose where it rises and
falls; the steps, checkpoints, rotation and restarts around it are the real loop's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from modelzoo.backends import torch_backend
from modelzoo.checkpoint.best import BEST_CHECKPOINT_FILE, BEST_RECORD_FILE, BestCheckpoint, BestRule
from modelzoo.checkpoint.files import load_mdl
from modelzoo.cli.main import main as run_main
from modelzoo.common.errors import ParamsError
from tests.export_runs import ner_params, write_params

# F1 by step: rises to step 15, falls, recovers a little, never beats step 15.
SCRIPTED_F1 = {5: 0.20, 10: 0.50, 15: 0.80, 20: 0.60, 25: 0.70, 30: 0.40}


@pytest.fixture()
def scripted_metric(monkeypatch):
    evaluated = []

    def evaluate(model, task, setup, context, model_dir, step, eval_steps=None):
        evaluated.append(step)
        return {"f1": SCRIPTED_F1[step], "loss": 1.0 - SCRIPTED_F1[step], "step": step}

    monkeypatch.setattr(torch_backend, "evaluate", evaluate)
    return evaluated


def run(ner_csv, model_dir: Path, **runconfig) -> int:
    settings = {"max_steps": 30, "eval_frequency": 5, "save_checkpoints_steps": 5, "keep_checkpoint_max": None,
                **runconfig}
    params = write_params(model_dir.parent / f"{model_dir.name}.yaml", ner_params(ner_csv, model_dir, **settings))
    return run_main(["CPU", "--mode", "train_and_eval", "--params", str(params)])


def record(model_dir: Path) -> dict:
    return json.loads((model_dir / BEST_RECORD_FILE).read_text())


def test_metric_rising_then_falling_keeps_the_best_steps_checkpoint_bit_identical(ner_csv, tmp_path, scripted_metric):
    model_dir = tmp_path / "all"
    assert run(ner_csv, model_dir) == 0
    assert scripted_metric == [5, 10, 15, 20, 25, 30]
    best = record(model_dir)
    assert best["best"]["step"] == 15 and best["best"]["value"] == 0.80
    assert best["best"]["figures"]["loss"] == pytest.approx(0.2)
    assert (model_dir / BEST_CHECKPOINT_FILE).read_bytes() == (model_dir / "checkpoint_15.mdl").read_bytes()
    # keep_checkpoint_max rotates checkpoint_15 away; the best stays, the weights of step 15
    rotated = tmp_path / "rotated"
    assert run(ner_csv, rotated, keep_checkpoint_max=1) == 0
    assert sorted(path.name for path in rotated.glob("checkpoint_*.mdl")) == ["checkpoint_30.mdl"]
    kept, reference = load_mdl(rotated / BEST_CHECKPOINT_FILE), load_mdl(model_dir / "checkpoint_15.mdl")
    assert kept["step"] == 15 and all(torch.equal(kept["model"][k], reference["model"][k]) for k in reference["model"])


def test_early_stopping_stops_after_patience_evaluations_without_a_new_best(ner_csv, tmp_path, scripted_metric, capsys):
    model_dir = tmp_path / "run"
    assert run(ner_csv, model_dir, early_stopping_patience=2) == 0
    # best at 15; 20 and 25 bring no new best: training ends at step 25, not at max_steps 30
    assert scripted_metric == [5, 10, 15, 20, 25]
    assert {path.name for path in model_dir.glob("checkpoint_*.mdl")} == {f"checkpoint_{s}.mdl" for s in (5, 10, 15, 20, 25)}
    assert record(model_dir)["evaluations_since_best"] == 2 and "early stopping at step 25" in capsys.readouterr().out


def test_resumed_run_keeps_the_best_and_the_patience_count(ner_csv, tmp_path, scripted_metric):
    model_dir = tmp_path / "run"
    assert run(ner_csv, model_dir, max_steps=20, early_stopping_patience=2) == 0
    first = (model_dir / BEST_CHECKPOINT_FILE).read_bytes()
    assert record(model_dir)["evaluations_since_best"] == 1
    assert run(ner_csv, model_dir, max_steps=30, early_stopping_patience=2) == 0  # resumes from step 20
    assert scripted_metric == [5, 10, 15, 20, 25]  # one more evaluation: the count went on from 1
    assert record(model_dir)["best"]["step"] == 15 and (model_dir / BEST_CHECKPOINT_FILE).read_bytes() == first
    assert [entry["step"] for entry in record(model_dir)["history"]] == [5, 10, 15, 20, 25]
    assert run(ner_csv, model_dir, max_steps=30, early_stopping_patience=2) == 0  # already stopped: no training
    assert scripted_metric == [5, 10, 15, 20, 25] and not (model_dir / "checkpoint_30.mdl").exists()


def test_eval_and_predict_pick_the_best_by_name(ner_csv, tmp_path, scripted_metric, capsys):
    model_dir = tmp_path / "run"
    assert run(ner_csv, model_dir, max_steps=20) == 0
    capsys.readouterr()
    (tmp_path / "in.txt").write_text("Kofi Annan would visit Lisbon .\n", encoding="utf-8")
    assert run_main(["CPU", "--mode", "predict", "--model_dir", str(model_dir), "--checkpoint_path", "best",
                     "--input", str(tmp_path / "in.txt"), "--output", str(tmp_path / "out.jsonl")]) == 0
    assert f"from {model_dir / BEST_CHECKPOINT_FILE}" in capsys.readouterr().err
    params = model_dir / "train_and_eval" / "params.yaml"
    assert run_main(["CPU", "--mode", "eval", "--params", str(params), "--checkpoint_path", "best"]) == 0
    assert scripted_metric[-1] == 15  # evaluated as the step it was saved at
    empty = tmp_path / "empty"
    empty.mkdir()
    code = run_main(["CPU", "--mode", "eval", "--params", str(params), "--model_dir", str(empty), "--checkpoint_path", "best"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no best checkpoint" in err


def test_lower_is_better_for_loss_and_a_changed_metric_is_refused(tmp_path):
    (tmp_path / "checkpoint_1.mdl").write_bytes(b"one")
    (tmp_path / "checkpoint_2.mdl").write_bytes(b"two")
    rule = BestRule.resolve("loss", None, None, "token_classification")
    tracker = BestCheckpoint(tmp_path, rule)
    assert tracker.add(1, {"loss": 0.5}, save=lambda: None) and not tracker.add(2, {"loss": 0.7}, save=lambda: None)
    assert (tmp_path / BEST_CHECKPOINT_FILE).read_bytes() == b"one"
    with pytest.raises(ParamsError, match="tracks loss"):
        BestCheckpoint(tmp_path, BestRule.resolve(None, None, None, "token_classification"))
    with pytest.raises(ParamsError, match="not an eval figure"):
        tracker.add(3, {"f1": 0.3}, save=lambda: None)
    assert BestRule.resolve(None, None, None, "sequence_classification") == BestRule("accuracy", True)
