"""The ``optimizer:`` section of the params file, declared beside the optimizers it configures."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Tuple, Union

from modelzoo.common.errors import ParamsError
from modelzoo.common.schema import nearest_key, param
from modelzoo.optim.lr_schedule import Phase, parse_learning_rate

OPTIMIZER_TYPES = ("adamw", "adam", "sgd")


@dataclasses.dataclass
class OptimizerParams:
    """The ``optimizer:`` section: which optimizer, its hyper-parameters and the learning-rate schedule."""

    optimizer_type: str = param("adamw", "adamw, adam or sgd (case-insensitive: Cerebras' AdamW reads too)")
    learning_rate: Union[float, List[Dict[str, Any]]] = param(
        5.0e-5, "a number, or a list of schedules run in turn (see 'Learning-rate schedules' below)"
    )
    weight_decay: float = param(0.01, "decay of weights; biases and LayerNorm parameters never decay")
    betas: List[float] = param([0.9, 0.999], "Adam/AdamW moment decay rates [beta1, beta2]")
    eps: float = param(1.0e-6, "Adam/AdamW epsilon (BERT's 1e-6; Cerebras configs spell it epsilon)")
    momentum: float = param(0.0, "SGD momentum")
    max_gradient_norm: Optional[float] = param(
        None, "clip the global gradient norm to this; null: no clipping"
    )

    def __post_init__(self) -> None:
        kind = self.optimizer_type.lower()
        if kind not in OPTIMIZER_TYPES:
            suggestion = nearest_key(kind, OPTIMIZER_TYPES)
            hint = f"did you mean '{suggestion}'?" if suggestion else f"one of {', '.join(OPTIMIZER_TYPES)}"
            raise ParamsError(f"optimizer.optimizer_type: unknown optimizer {self.optimizer_type!r} ({hint})")
        self.optimizer_type = kind
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ParamsError(f"optimizer.betas: expected [beta1, beta2], each in [0, 1), got {self.betas}")
        for name in ("weight_decay", "momentum"):
            if getattr(self, name) < 0:
                raise ParamsError(f"optimizer.{name}: must be >= 0, got {getattr(self, name)}")
        if self.eps <= 0:
            raise ParamsError(f"optimizer.eps: must be > 0, got {self.eps}")
        if self.max_gradient_norm is not None and self.max_gradient_norm <= 0:
            raise ParamsError(f"optimizer.max_gradient_norm: must be > 0 or null, got {self.max_gradient_norm}")
        parse_learning_rate(self.learning_rate)

    @property
    def schedule(self) -> Tuple[Phase, ...]:
        """The learning-rate phases (a constant rate is one Constant phase)."""
        return parse_learning_rate(self.learning_rate)
