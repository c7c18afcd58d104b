"""The best checkpoint of train_and_eval and early stopping: real training, a scripted eval metric.

The metric is scripted (the torch back-end's ``evaluate`` replaced, reporting as evaluation does) so that the
tests choose where it rises and falls; the steps, checkpoints, rotation and restarts around it are the real loop's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

import pytest
import torch

from modelzoo.backends import torch_backend
from modelzoo.checkpoint.best import BEST_CHECKPOINT_FILE, BEST_RECORD_FILE, BestCheckpoint, BestRule
from modelzoo.checkpoint.files import load_mdl
from modelzoo.cli.main import main as run_main
from modelzoo.common.distributed import DistContext
from modelzoo.common.errors import ParamsError
from modelzoo.loop.evaluation import report
from tests.export_runs import ner_params, write_params

# F1 by step: rises to step 15, falls, recovers a little, never beats step 15.
SCRIPTED_F1 = {5: 0.20, 10: 0.50, 15: 0.80, 20: 0.60, 25: 0.70, 30: 0.40}


class Evaluations(list):
    """The steps evaluated, in order; ``crash_at``: a step whose evaluation crashes once it has reported."""

    crash_at: Optional[int] = None


class EvaluationCrash(RuntimeError):
    pass


@pytest.fixture()
def scripted_metric(monkeypatch):
    evaluated = Evaluations()

    def evaluate(model, task, setup, context, model_dir, step, eval_steps=None):
        evaluated.append(step)
        results = {"f1": SCRIPTED_F1[step], "loss": 1.0 - SCRIPTED_F1[step], "step": step}
        report({**results, "table": ""}, Path(model_dir), step)
        if step == evaluated.crash_at:
            evaluated.crash_at = None
            raise EvaluationCrash(f"the evaluation of step {step} crashed after its report")
        return results

    monkeypatch.setattr(torch_backend, "evaluate", evaluate)
    return evaluated


def run(ner_csv, model_dir: Path, **runconfig) -> int:
    settings = {"max_steps": 30, "eval_frequency": 5, "save_checkpoints_steps": 5, "keep_checkpoint_max": None,
                **runconfig}
    params = write_params(model_dir.parent / f"{model_dir.name}.yaml", ner_params(ner_csv, model_dir, **settings))
    return run_main(["CPU", "--mode", "train_and_eval", "--params", str(params)])


def error_lines(capsys) -> list:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error:")]


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


def test_a_non_finite_metric_is_never_the_best_is_logged_and_recorded_as_null(tmp_path, capsys):
    for step in (1, 2, 3):
        (tmp_path / f"checkpoint_{step}.mdl").write_bytes(f"weights of step {step}".encode())
    tracker = BestCheckpoint(tmp_path, BestRule("f1", True, patience=2))
    evaluations = {1: (float("nan"), float("nan")), 2: (0.5, 1.0), 3: (0.8, float("inf"))}
    stops = [tracker.stop_after(step, {"f1": f1, "loss": loss}, lambda: None, DistContext())
             for step, (f1, loss) in evaluations.items()]
    assert stops == [False, False, False]  # 0.5 and 0.8 are gains: no patience spent
    assert "evaluation at step 1: f1 is nan, never the best" in capsys.readouterr().out

    def not_json(constant: str):
        raise AssertionError(f"{BEST_RECORD_FILE} holds {constant}, which is not JSON")

    saved = json.loads((tmp_path / BEST_RECORD_FILE).read_text(), parse_constant=not_json)
    assert [entry["value"] for entry in saved["history"]] == [None, 0.5, 0.8]
    assert saved["best"]["step"] == 3 and saved["best"]["figures"] == {"f1": 0.8, "loss": None}
    assert (tmp_path / BEST_CHECKPOINT_FILE).read_bytes() == b"weights of step 3"
    report({"f1": float("nan"), "loss": float("inf"), "step": 1, "table": ""}, tmp_path, 1)  # the eval report too
    metrics = json.loads((tmp_path / "eval" / "metrics_step_1.json").read_text(), parse_constant=not_json)
    assert metrics == {"f1": None, "loss": None, "step": 1}


def test_a_crash_during_an_evaluation_repeats_it_on_resume_and_eval_names_the_best_by_its_own_step(
    ner_csv, tmp_path, scripted_metric
):
    model_dir = tmp_path / "run"
    scripted_metric.crash_at = 10
    with pytest.raises(EvaluationCrash):
        run(ner_csv, model_dir)
    record_of_step_5 = (model_dir / BEST_RECORD_FILE).read_text()
    assert run(ner_csv, model_dir) == 0  # resumes from checkpoint_10, whose evaluation never completed
    assert scripted_metric == [5, 10, 10, 15, 20, 25, 30]
    assert [entry["step"] for entry in record(model_dir)["history"]] == [5, 10, 15, 20, 25, 30]
    assert record(model_dir)["best"]["step"] == 15
    # a record older than the file (a run stopped between the two): eval goes by the file's own step
    (model_dir / BEST_RECORD_FILE).write_text(record_of_step_5)
    params = model_dir / "train_and_eval" / "params.yaml"
    assert run_main(["CPU", "--mode", "eval", "--params", str(params), "--checkpoint_path", "best"]) == 0
    assert scripted_metric[-1] == 15
    assert json.loads((model_dir / "eval" / "metrics_step_5.json").read_text())["f1"] == SCRIPTED_F1[5]


def test_a_best_checkpoint_without_its_record_or_a_record_without_its_file(ner_csv, tmp_path, scripted_metric, capsys):
    model_dir = tmp_path / "run"
    assert run(ner_csv, model_dir, max_steps=20) == 0
    best_bytes = (model_dir / "checkpoint_15.mdl").read_bytes()
    (model_dir / BEST_RECORD_FILE).unlink()
    capsys.readouterr()
    assert run(ner_csv, model_dir) == 0  # 25 (0.70) is worse than the file's step 15 (0.80)
    assert record(model_dir)["best"]["step"] == 15 and (model_dir / BEST_CHECKPOINT_FILE).read_bytes() == best_bytes
    assert f"rebuilt {model_dir / BEST_RECORD_FILE}: there was no {BEST_RECORD_FILE}" in capsys.readouterr().out
    assert [entry["step"] for entry in record(model_dir)["history"]] == [15, 20, 25, 30]

    (model_dir / BEST_CHECKPOINT_FILE).unlink()
    assert run(ner_csv, model_dir) == 0  # the record's best is still checkpoint_15.mdl, byte for byte
    assert f"copied {model_dir / 'checkpoint_15.mdl'} to {model_dir / BEST_CHECKPOINT_FILE} again" in capsys.readouterr().out
    assert (model_dir / BEST_CHECKPOINT_FILE).read_bytes() == best_bytes

    (model_dir / BEST_CHECKPOINT_FILE).unlink()
    (model_dir / "checkpoint_15.mdl").unlink()
    assert run(ner_csv, model_dir) == 2
    errors = error_lines(capsys)
    assert len(errors) == 1 and f"{model_dir / BEST_CHECKPOINT_FILE}: missing, and" in errors[0]

    shutil.copyfile(model_dir / "checkpoint_20.mdl", model_dir / BEST_CHECKPOINT_FILE)
    (model_dir / BEST_RECORD_FILE).unlink()
    (model_dir / "eval" / "metrics_step_20.json").unlink()
    assert run(ner_csv, model_dir) == 2
    errors = error_lines(capsys)
    assert len(errors) == 1 and "step 20, but there was no best_checkpoint.json and" in errors[0]
