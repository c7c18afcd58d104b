"""The best checkpoint of a train_and_eval run by one eval metric, and early stopping on that metric.

``keep_checkpoint_max`` keeps the newest checkpoints, and the newest is rarely the best once a run
overfits. So after each evaluation the checkpoint of the evaluated step is copied, byte for byte,
to ``best_checkpoint.mdl`` when the metric improved: a name that rotation and "the newest
checkpoint" never match. ``best_checkpoint.json`` records the metric, the best step with its
figures, and every evaluation so far. Keeping the whole history rather than a counter is what
makes a resumed run continue with the same best and the same patience: evaluations after the step
a run resumes from are dropped and, restarts being exact, repeated with the same figures.

The two files cannot change in one step, so the record names the file it describes by its
SHA-256, and the writer checks that pair when a run starts. A kill between the copy and the record
leaves a file the record does not describe: the record is rebuilt from the file's own step and
that step's ``eval/metrics_step_N.json``. A missing file is copied again from the checkpoint the
record names when that is still the same bytes; anything else is refused, naming what to do. A
non-finite figure (a NaN F1) is never the best: it is logged, and recorded as null.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

from modelzoo.checkpoint.files import load_mdl
from modelzoo.checkpoint.model_dir import eval_figures_file
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
    """The training step of a checkpoint file: the one the best checkpoint holds (a copy of another
    step's checkpoint, whatever its record says), else the one in its name."""
    path = Path(path)
    step = recorded_step(path) if path.name == BEST_CHECKPOINT_FILE else None
    return checkpoint_step(path) if step is None else step


def recorded_step(path: Path) -> Optional[int]:
    """The training step a run.py checkpoint records (None for other .mdl files)."""
    step = load_mdl(path, mmap=True).get("step")
    return step if isinstance(step, int) else None


def _figures(results: dict) -> dict:
    """The numbers of an evaluation's results (or of their JSON), a non-finite one as None (JSON's null)."""
    return {
        key: value if value is None or math.isfinite(value) else None
        for key, value in results.items()
        if value is None or isinstance(value, (int, float))
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_with_sha256(source: Path, target: Path) -> str:
    """Copy ``source`` to ``target`` atomically; the SHA-256 of the bytes copied (one read of the source)."""
    digest = hashlib.sha256()
    with atomic_file(target, "wb") as stream, source.open("rb") as original:
        for block in iter(lambda: original.read(1 << 20), b""):
            digest.update(block)
            stream.write(block)
    return digest.hexdigest()


class BestCheckpoint:
    """Tracks the evaluations of one model_dir. Only the ``writer`` rank reads and changes the files;
    the other ranks follow its decisions (``stop_after``, and what ``train`` shares when a run starts)."""

    def __init__(self, model_dir: Path, rule: BestRule, writer: bool = True) -> None:
        self.model_dir = Path(model_dir)
        self.rule = rule
        self.writer = writer
        self.record_file = self.model_dir / BEST_RECORD_FILE
        self.best_file = self.model_dir / BEST_CHECKPOINT_FILE
        self.history: List[dict] = []
        self.best: Optional[dict] = None
        if writer and self.record_file.is_file():
            record = json.loads(self.record_file.read_text(encoding="utf-8"))
            if (record["metric"], record["higher_is_better"]) != (rule.metric, rule.higher_is_better):
                raise ParamsError(
                    f"runconfig.best_checkpoint_metric: {self.record_file} tracks {record['metric']} "
                    f"({'higher' if record['higher_is_better'] else 'lower'} is better); this run asks for "
                    f"{rule.metric} ({'higher' if rule.higher_is_better else 'lower'} is better)"
                )
            self.history, self.best = record["history"], record["best"]
        if writer:
            self._check_best_file()

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
        """Forget evaluations after ``step``, the step a run resumes from: the resumed run repeats them.

        The best stays what the file holds, even from a later step: a repeated evaluation of that step
        has the same figures, so it does not count as a gain, as it did not the first time round.
        """
        self.history = [entry for entry in self.history if entry["step"] <= step]

    def has_evaluated(self, step: int) -> bool:
        return any(entry["step"] == step for entry in self.history)

    def evaluations_since_best(self) -> int:
        if self.best is None:
            return len(self.history)
        return sum(entry["step"] > self.best["step"] for entry in self.history)

    def should_stop(self) -> bool:
        return self.rule.patience is not None and self.evaluations_since_best() >= self.rule.patience

    def add(self, step: int, results: dict, save: Callable[[], Optional[Path]]) -> bool:
        """Record the evaluation of ``step``; on a gain copy that step's checkpoint (``save()`` writes it
        when the periodic saves did not). Returns whether it gained."""
        figures = _figures(results)
        if self.rule.metric not in figures:
            raise ParamsError(
                f"runconfig.best_checkpoint_metric: {self.rule.metric!r} is not an eval figure "
                f"(this task reports {', '.join(sorted(figures))})"
            )
        value = None if figures[self.rule.metric] is None else float(figures[self.rule.metric])
        self.resume_after(step - 1)
        self.history.append({"step": step, "value": value})
        gained = value is not None and self._better(value)
        if value is None:
            print(f"evaluation at step {step}: {self.rule.metric} is {results[self.rule.metric]}, never the best; "
                  f"{self.describe()}", flush=True)
        if gained:
            source = checkpoint_file(self.model_dir, step)
            if not source.is_file():
                source = save()
            sha256 = _copy_with_sha256(source, self.best_file)
            self.best = {"step": step, "value": value, "source": source.name, "figures": figures, "sha256": sha256}
        self._write_record()
        return gained

    def describe(self) -> str:
        best = self.best
        where = f"{best['value']:.4f} at step {best['step']}" if best else "none yet"
        return f"best {self.rule.metric} {where} ({self.best_file})"

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best["value"] if self.rule.higher_is_better else value < self.best["value"]

    def _write_record(self) -> None:
        write_json_atomic(self.record_file, {
            "metric": self.rule.metric,
            "higher_is_better": self.rule.higher_is_better,
            "checkpoint": BEST_CHECKPOINT_FILE,
            "best": self.best,
            "evaluations_since_best": self.evaluations_since_best(),
            "early_stopping_patience": self.rule.patience,
            "history": self.history,
        })

    # --- the pair of files, checked when a run starts ------------------------------------------------
    def _check_best_file(self) -> None:
        """Make the record describe ``best_checkpoint.mdl`` again, or refuse; one line says which."""
        if not self.best_file.is_file():
            if self.best is not None:
                self._copy_again()
            return
        sha256 = _sha256(self.best_file)
        if self.best is not None and self.best.get("sha256") == sha256:
            return
        if not self.record_file.is_file():
            reason = f"there was no {BEST_RECORD_FILE}"
        elif self.best is not None and "sha256" not in self.best:
            reason = f"{BEST_RECORD_FILE} was written before records named their file"
        else:
            reason = f"{BEST_RECORD_FILE} described another file (a run stopped between writing the two)"
        self._rebuild_record(sha256, reason)

    def _copy_again(self) -> None:
        """The record's best file is gone: copy it again from its checkpoint if that is still the same bytes."""
        source = self.model_dir / self.best["source"] if "source" in self.best else None
        if source is None or not source.is_file() or _sha256(source) != self.best.get("sha256"):
            raise CheckpointError(
                f"{self.best_file}: missing, and {self.record_file} names it the best checkpoint (step "
                f"{self.best['step']}); put it back, or move {BEST_RECORD_FILE} away to start the best over"
            )
        _copy_with_sha256(source, self.best_file)
        print(f"copied {source} to {self.best_file} again: {BEST_RECORD_FILE} names it the best checkpoint, "
              f"and the file was missing", flush=True)

    def _rebuild_record(self, sha256: str, reason: str) -> None:
        """Describe the file as it is: its own step, that step's eval figures, the history so far."""
        step = recorded_step(self.best_file)
        if step is None:
            raise CheckpointError(
                f"{self.best_file}: records no training step, and {reason}; move it away to start the best over"
            )
        figures_file = eval_figures_file(self.model_dir, step)
        figures = _figures(json.loads(figures_file.read_text(encoding="utf-8"))) if figures_file.is_file() else {}
        value = figures.get(self.rule.metric)
        if value is None:
            raise CheckpointError(
                f"{self.best_file}: step {step}, but {reason} and {figures_file} holds no finite "
                f"{self.rule.metric} to rebuild it from; move {BEST_CHECKPOINT_FILE} away to start the best over"
            )
        entry = {"step": step, "value": float(value)}
        self.history = sorted([*(e for e in self.history if e["step"] != step), entry], key=lambda e: e["step"])
        self.best = {**entry, "source": checkpoint_file(self.model_dir, step).name, "figures": figures, "sha256": sha256}
        self._write_record()
        print(f"rebuilt {self.record_file}: {reason}; it now names {BEST_CHECKPOINT_FILE} (step {step}, "
              f"{self.rule.metric} {entry['value']:.4f} from {figures_file}) the best", flush=True)
