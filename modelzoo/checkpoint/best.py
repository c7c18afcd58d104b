"""The best checkpoint of a train_and_eval run by one eval metric, and early stopping on that metric.

``keep_checkpoint_max`` keeps the newest checkpoints, and the newest is rarely the best once a run
overfits. So after each evaluation the checkpoint of the evaluated step is copied, byte for byte,
to ``best_checkpoint.mdl`` when the metric improved: a name that rotation and "the newest
checkpoint" never match. ``best_checkpoint.json`` records the metric, the best step with its
figures, and every evaluation so far. Keeping the whole history rather than a counter is what
makes a resumed run continue with the same best and the same patience: evaluations after the step
a run resumes from are dropped and, restarts being exact, repeated with the same figures.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

from modelzoo.checkpoint.training import checkpoint_file, checkpoint_step
from modelzoo.common.atomic import atomic_file, write_json_atomic
from modelzoo.common.errors import CheckpointError, ParamsError
from modelzoo.heads import head_spec

BEST_NAME = "best"
BEST_CHECKPOINT_FILE = "best_checkpoint.mdl"
BEST_RECORD_FILE = "best_checkpoint.json"
LOWER_IS_BETTER = frozenset({"loss"})


@dataclass(frozen=True)
class BestRule:
    """Which eval figure decides, in which direction, and after how many evaluations without gain to stop."""

    metric: str
    higher_is_better: bool
    patience: Optional[int] = None

    @classmethod
    def resolve(cls, metric: Optional[str], higher_is_better: Optional[bool], patience: Optional[int], head: str) -> BestRule:
        """The rule from the runconfig keys; None picks the head's metric and the metric's direction."""
        metric = metric or head_spec(head).best_metric
        return cls(metric, metric not in LOWER_IS_BETTER if higher_is_better is None else higher_is_better, patience)


def resolve_checkpoint_name(checkpoint_path: Optional[str], model_dir: Path) -> Optional[str]:
    """``best`` names the best checkpoint of ``model_dir``; any other value is returned unchanged."""
    if checkpoint_path != BEST_NAME:
        return checkpoint_path
    path = Path(model_dir) / BEST_CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no best checkpoint in {model_dir} (train_and_eval with runconfig.eval_frequency keeps one)"
        )
    return str(path)


def evaluated_step(path: Path) -> int:
    """The training step of a checkpoint file: from its name, or from the record for the best checkpoint."""
    path = Path(path)
    record = path.parent / BEST_RECORD_FILE
    if path.name == BEST_CHECKPOINT_FILE and record.is_file():
        return json.loads(record.read_text(encoding="utf-8"))["best"]["step"]
    return checkpoint_step(path)


class BestCheckpoint:
    """Tracks the evaluations of one model_dir; every rank reads the record, only the ``writer`` changes files."""

    def __init__(self, model_dir: Path, rule: BestRule, writer: bool = True) -> None:
        self.model_dir = Path(model_dir)
        self.rule = rule
        self.writer = writer
        self.record_file = self.model_dir / BEST_RECORD_FILE
        self.history: List[dict] = []
        self.best: Optional[dict] = None
        if self.record_file.is_file():
            record = json.loads(self.record_file.read_text(encoding="utf-8"))
            if (record["metric"], record["higher_is_better"]) != (rule.metric, rule.higher_is_better):
                raise ParamsError(
                    f"runconfig.best_checkpoint_metric: {self.record_file} tracks {record['metric']} "
                    f"({'higher' if record['higher_is_better'] else 'lower'} is better); this run asks for "
                    f"{rule.metric} ({'higher' if rule.higher_is_better else 'lower'} is better)"
                )
            self.history, self.best = record["history"], record["best"]

    @classmethod
    def for_run(
        cls, model_dir: Path, runconfig, head: str, step: int, writer: bool
    ) -> Optional[BestCheckpoint]:
        """The tracker of a train_and_eval run at ``step`` (its start or the step it resumed from);
        None without periodic evaluation (``runconfig.eval_frequency``)."""
        if runconfig.eval_frequency is None:
            return None
        rule = BestRule.resolve(
            runconfig.best_checkpoint_metric, runconfig.best_checkpoint_higher_is_better,
            runconfig.early_stopping_patience, head,
        )
        tracker = cls(model_dir, rule, writer)
        tracker.resume_after(step)
        return tracker

    def stop_after(
        self, step: int, results: Optional[dict], save: Callable[[], Optional[Path]], context
    ) -> bool:
        """Record an evaluation (``results`` on the writer rank) and say, on every rank of ``context``
        (a DistContext), whether early stopping ends training here."""
        stop = False
        if self.writer:
            self.add(step, results, save)
            stop = self.should_stop()
            if stop:
                print(f"early stopping at step {step}: {self.rule.patience} evaluations without a new best; "
                      f"{self.describe()}", flush=True)
        return any(context.gather_objects(stop))

    def resume_after(self, step: int) -> None:
        """Forget evaluations after ``step``, the step a run resumes from: the resumed run repeats them."""
        self.history = [entry for entry in self.history if entry["step"] <= step]
        self.best = self._best_of(self.history, self.best)

    def evaluations_since_best(self) -> int:
        if self.best is None:
            return len(self.history)
        return sum(entry["step"] > self.best["step"] for entry in self.history)

    def should_stop(self) -> bool:
        return self.rule.patience is not None and self.evaluations_since_best() >= self.rule.patience

    def add(self, step: int, results: dict, save: Callable[[], Optional[Path]]) -> bool:
        """Record the evaluation of ``step``; on a gain copy that step's checkpoint (``save()`` writes it
        when the periodic saves did not). Returns whether it gained."""
        figures = {key: value for key, value in results.items() if isinstance(value, (int, float))}
        if self.rule.metric not in figures:
            raise ParamsError(
                f"runconfig.best_checkpoint_metric: {self.rule.metric!r} is not an eval figure "
                f"(this task reports {', '.join(sorted(figures))})"
            )
        self.resume_after(step - 1)
        self.history.append({"step": step, "value": float(figures[self.rule.metric])})
        gained = self._better(self.history[-1]["value"], None if self.best is None else self.best["value"])
        if gained:
            source = checkpoint_file(self.model_dir, step)
            if not source.is_file():
                source = save()
            with atomic_file(self.model_dir / BEST_CHECKPOINT_FILE, "wb") as stream, source.open("rb") as original:
                shutil.copyfileobj(original, stream)
            self.best = {"step": step, "value": self.history[-1]["value"], "source": source.name, "figures": figures}
        write_json_atomic(self.record_file, {
            "metric": self.rule.metric,
            "higher_is_better": self.rule.higher_is_better,
            "checkpoint": BEST_CHECKPOINT_FILE,
            "best": self.best,
            "evaluations_since_best": self.evaluations_since_best(),
            "early_stopping_patience": self.rule.patience,
            "history": self.history,
        })
        return gained

    def describe(self) -> str:
        best = self.best
        where = f"{best['value']:.4f} at step {best['step']}" if best else "none yet"
        return f"best {self.rule.metric} {where} ({self.model_dir / BEST_CHECKPOINT_FILE})"

    def _better(self, value: float, best: Optional[float]) -> bool:
        if best is None:
            return True
        return value > best if self.rule.higher_is_better else value < best

    def _best_of(self, history: List[dict], recorded: Optional[dict]) -> Optional[dict]:
        """The recorded best if it survives in ``history``; else the first best entry (the file then
        holds a later step, which the resumed run overwrites when it reaches that entry again)."""
        if recorded is not None and any(entry["step"] == recorded["step"] for entry in history):
            return recorded
        best = None
        for entry in history:
            if best is None or self._better(entry["value"], best["value"]):
                best = {"step": entry["step"], "value": entry["value"]}
        return best
