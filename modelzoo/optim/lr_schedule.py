"""Learning rate as a number or a list of piecewise schedules, the Cerebras model zoo way.

The YAML ``optimizer.learning_rate`` is either a number (constant) or a list of phases run one after
the other, e.g. a linear warm-up then a linear decay::

    learning_rate:
      - {scheduler: Linear, initial_learning_rate: 0.0, end_learning_rate: 5.0e-5, total_iters: 100}
      - {scheduler: Linear, initial_learning_rate: 5.0e-5, end_learning_rate: 0.0, total_iters: 900}

Schedulers: ``Linear``, ``Constant``, ``Cosine`` (case-insensitive; Cerebras' ``LinearLR``,
``ConstantLR``, ``CosineDecay`` and ``CosineDecayLR`` are accepted too). A phase's length is
``total_iters``; Cerebras configs also write it ``steps`` or ``decay_steps``, which are accepted as
aliases. Every phase but the last needs a length; the phases must span the run exactly
(:func:`check_schedule_covers`), or the last one leaves its length out and runs to the end. Step ``s`` is the number of optimizer steps already taken, so the first update uses
the value at ``s = 0`` and a phase starts exactly at its initial rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from modelzoo.common.errors import ParamsError
from modelzoo.common.schema import nearest_key, unknown_key_message

# Accepted spellings (lower-cased) -> our scheduler name.
SCHEDULER_NAMES = {
    "linear": "Linear",
    "linearlr": "Linear",
    "constant": "Constant",
    "constantlr": "Constant",
    "cosine": "Cosine",
    "cosinedecay": "Cosine",
    "cosinedecaylr": "Cosine",
}
LENGTH_ALIASES = ("total_iters", "steps", "decay_steps")
# Keys each scheduler requires, besides ``scheduler`` and a length.
REQUIRED_KEYS = {
    "Linear": ("initial_learning_rate", "end_learning_rate"),
    "Cosine": ("initial_learning_rate", "end_learning_rate"),
    "Constant": ("learning_rate",),
}


@dataclass(frozen=True)
class Phase:
    """One piece of the schedule: the rate moves from ``initial`` to ``end`` over ``total_iters`` steps."""

    scheduler: str
    initial: float
    end: float
    total_iters: Optional[int]

    def value(self, step: int) -> float:
        """The rate ``step`` steps into this phase (held at ``end`` once the phase is over)."""
        if self.total_iters is None or self.scheduler == "Constant":
            return self.initial
        progress = min(step, self.total_iters) / self.total_iters
        if self.scheduler == "Linear":
            return self.initial + (self.end - self.initial) * progress
        return self.end + (self.initial - self.end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def parse_learning_rate(value: Any, where: str = "optimizer.learning_rate") -> Tuple[Phase, ...]:
    """Validate the YAML value and return its phases; problems raise ParamsError naming ``where``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (Phase("Constant", float(value), float(value), None),)
    if not isinstance(value, list) or not value:
        raise ParamsError(f"{where}: expected a number or a non-empty list of schedules, got {value!r}")
    phases = tuple(_parse_phase(entry, f"{where}[{i}]") for i, entry in enumerate(value))
    for i, phase in enumerate(phases[:-1]):
        if phase.total_iters is None:
            raise ParamsError(f"{where}[{i}]: every schedule but the last needs 'total_iters' (its length in steps)")
    return phases


def check_schedule_covers(phases: Tuple[Phase, ...], total_steps: int, length_name: str) -> None:
    """Raise ParamsError unless the phases span exactly the run's ``total_steps`` optimizer steps.

    A schedule shorter than the run would hold its last rate (often 0) for the rest; a longer one
    would stop before its decay. A last phase without ``total_iters`` runs to the end, whatever the
    length, so only the phases before it must fit. ``length_name`` says where the length comes
    from (``runconfig.max_steps``...), for the message.
    """
    lengths = [phase.total_iters for phase in phases]
    if lengths[-1] is None:
        fixed = sum(lengths[:-1])
        if fixed > total_steps:
            raise ParamsError(
                f"optimizer.learning_rate: the phases before the last take {fixed} steps but {length_name} is "
                f"{total_steps}; shorten them so the schedule fits the run"
            )
        return
    if sum(lengths) != total_steps:
        raise ParamsError(
            f"optimizer.learning_rate: the phases' total_iters sum to {sum(lengths)} but {length_name} is "
            f"{total_steps}; make them sum to {total_steps}, or leave total_iters out of the last phase to run it "
            "to the end"
        )


def _parse_phase(entry: Any, where: str) -> Phase:
    if not isinstance(entry, dict):
        raise ParamsError(f"{where}: expected a mapping like {{scheduler: Linear, ...}}, got {entry!r}")
    if "scheduler" not in entry:
        raise ParamsError(f"{where}: missing key 'scheduler' (one of {', '.join(REQUIRED_KEYS)})")
    raw_name = entry["scheduler"]
    name = SCHEDULER_NAMES.get(str(raw_name).lower())
    if name is None:
        suggestion = nearest_key(str(raw_name).lower(), SCHEDULER_NAMES)
        hint = f"did you mean '{SCHEDULER_NAMES[suggestion]}'?" if suggestion else f"one of {', '.join(REQUIRED_KEYS)}"
        raise ParamsError(f"{where}.scheduler: unknown scheduler {raw_name!r} ({hint})")
    required = REQUIRED_KEYS[name]
    valid = ("scheduler", *LENGTH_ALIASES, *required)
    for key in entry:
        if key not in valid:
            raise ParamsError(unknown_key_message(where, str(key), valid))
    for key in required:
        if key not in entry:
            raise ParamsError(f"{where}: the {name} scheduler needs '{key}'")
    rates = {}
    for key in required:
        rate = entry[key]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 0:
            raise ParamsError(f"{where}.{key}: expected a number >= 0, got {rate!r}")
        rates[key] = float(rate)
    lengths = [key for key in LENGTH_ALIASES if key in entry]
    if len(lengths) > 1:
        raise ParamsError(f"{where}: {' and '.join(lengths)} are the same key; give one")
    total_iters = entry[lengths[0]] if lengths else None
    if total_iters is not None and (isinstance(total_iters, bool) or not isinstance(total_iters, int) or total_iters < 1):
        raise ParamsError(f"{where}.{lengths[0]}: expected a whole number of steps >= 1, got {total_iters!r}")
    if name == "Constant":
        return Phase(name, rates["learning_rate"], rates["learning_rate"], total_iters)
    if total_iters is None:
        raise ParamsError(f"{where}: the {name} scheduler needs 'total_iters' (its length in steps)")
    return Phase(name, rates["initial_learning_rate"], rates["end_learning_rate"], total_iters)


def learning_rate_at(phases: Tuple[Phase, ...], step: int) -> float:
    """The rate for the update after ``step`` optimizer steps."""
    start = 0
    for phase in phases[:-1]:
        if step < start + phase.total_iters:
            return phase.value(step - start)
        start += phase.total_iters
    return phases[-1].value(step - start)


class PiecewiseLR(LRScheduler):
    """A torch LR scheduler over :func:`learning_rate_at`; every parameter group gets the same rate.

    The rates are absolute (not factors of the optimizer's ``lr``), so a warm-up from 0.0 works. The
    state dict holds only the step count and plain numbers (it loads with ``weights_only=True``);
    the phases come from the params, and loading re-applies the rate of the restored step to the
    optimizer, so a resumed run continues the same sequence.
    """

    def __init__(self, optimizer: Optimizer, phases: Tuple[Phase, ...], last_epoch: int = -1) -> None:
        self.phases = phases
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        return [learning_rate_at(self.phases, self.last_epoch)] * len(self.optimizer.param_groups)

    def state_dict(self) -> Dict[str, Any]:
        return {key: value for key, value in super().state_dict().items() if key != "phases"}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        rate = learning_rate_at(self.phases, self.last_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self._last_lr = [rate] * len(self.optimizer.param_groups)
