"""What changed between the params a checkpoint was trained with and those of the run resuming it.

A resumed run continues the saved one step for step, so a new value of a key that shapes the run
(model, data, batch, seed, schedule, packing, precision) would silently make a run that is neither
the old one nor a fresh one. Such changes are refused unless the user says they are meant; keys
that only say how the run is watched or how long it goes on (logging, evaluation, checkpoints
kept, the total length) may change and are listed. Keys not named as harmless count as
meaning-changing, so a key added to the schema later is safe by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from modelzoo.common.errors import ParamsError

# section.key whose change leaves the trained steps as they are.
HARMLESS_KEYS = frozenset(
    {
        "runconfig.max_steps",
        "runconfig.num_epochs",
        "runconfig.log_steps",
        "runconfig.save_checkpoints_steps",
        "runconfig.keep_checkpoint_max",
        "runconfig.eval_frequency",
        "runconfig.eval_steps",
        "runconfig.model_dir",
        "runconfig.checkpoint_path",
        "runconfig.load_checkpoint_states",
        "runconfig.best_checkpoint_metric",
        "runconfig.best_checkpoint_higher_is_better",
        "runconfig.early_stopping_patience",
        "train_input.num_workers",
    }
)
# Sections that play no part in the training steps.
HARMLESS_SECTIONS = frozenset({"eval_input"})


@dataclass(frozen=True)
class ParamsChanges:
    """The differing keys, each as ``"section.key: old -> new"``, split by whether they change the run."""

    meaningful: List[str]
    harmless: List[str]


def compare_params(saved: Dict[str, Dict[str, Any]], new: Dict[str, Dict[str, Any]]) -> ParamsChanges:
    """Every ``section.key`` whose value differs between two ``Params.to_dict()`` mappings."""
    meaningful, harmless = [], []
    for section in dict.fromkeys([*saved, *new]):
        old_values, new_values = saved.get(section) or {}, new.get(section) or {}
        for key in dict.fromkeys([*old_values, *new_values]):
            old, value = old_values.get(key), new_values.get(key)
            if old == value:
                continue
            line = f"{section}.{key}: {old!r} -> {value!r}"
            is_harmless = section in HARMLESS_SECTIONS or f"{section}.{key}" in HARMLESS_KEYS
            (harmless if is_harmless else meaningful).append(line)
    return ParamsChanges(meaningful, harmless)


def check_resume_params(
    checkpoint: Optional[Path], saved: Optional[Dict[str, Dict[str, Any]]], new: Dict[str, Dict[str, Any]], allow_changed: bool
) -> List[str]:
    """Raise ParamsError on a meaning-changing difference unless ``allow_changed``; returns the log lines.

    No checkpoint to resume, or one without saved params (written elsewhere), has nothing to compare.
    """
    if saved is None:
        return []
    changes = compare_params(saved, new)
    if changes.meaningful and not allow_changed:
        raise ParamsError(
            f"{checkpoint} was trained with other params: {'; '.join(changes.meaningful)} "
            "(resuming would mix two runs; use another --model_dir, or --allow_changed_params to resume anyway)"
        )
    lines = [f"params changed since {checkpoint} (harmless): {'; '.join(changes.harmless)}"] if changes.harmless else []
    if changes.meaningful:
        lines.append(f"params changed since {checkpoint} (allowed by --allow_changed_params): {'; '.join(changes.meaningful)}")
    return lines

