"""Optimizers from the ``optimizer:`` section, with no weight decay on biases and LayerNorm weights.

Which parameters decay is decided by what they are, not by their names: a parameter owned directly
by an ``nn.LayerNorm`` module, or registered under the name ``bias``, is excluded. String matching
on full names (``"LayerNorm" in name``) silently breaks when modules are renamed, as they are
between the Hugging Face and Cerebras checkpoint layouts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List

import torch
from torch import nn

from modelzoo.optim.lr_schedule import PiecewiseLR

_TORCH_VERSION = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])

if TYPE_CHECKING:
    from modelzoo.optim.params import OptimizerParams

NO_DECAY_MODULES = (nn.LayerNorm,)


def parameter_groups(model: nn.Module, weight_decay: float) -> List[dict]:
    """Two groups of the trainable parameters: ``weight_decay`` for weights, 0.0 for biases and norms.

    Both groups are always present (possibly empty), so the optimizer's state-dict layout does not
    depend on the model; a parameter shared by several modules is listed once.
    """
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if not parameter.requires_grad or id(parameter) in seen:
                continue
            seen.add(id(parameter))
            exempt = isinstance(module, NO_DECAY_MODULES) or name == "bias"
            (no_decay if exempt else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, params: OptimizerParams, fused: bool = False) -> torch.optim.Optimizer:
    """AdamW, Adam or SGD over :func:`parameter_groups`; the rate is set by :func:`build_lr_scheduler`.

    For Adam, ``weight_decay`` is the classic L2 term added to the gradient; AdamW decouples it.
    ``fused``: one kernel per step instead of a loop of small ops, where the device has it (see
    ``DeviceSetup.fused_optimizer``; the speed-up is in docs/MEASURED.md).
    """
    groups = parameter_groups(model, params.weight_decay)
    rate = params.schedule[0].initial
    # torch before 2.4 (2.0 is poptorch 3.3/3.4's, whose environment evaluates on CPU) fuses neither on CPU nor SGD.
    fused_kwargs = {"fused": fused} if _TORCH_VERSION >= (2, 4) else {}
    if params.optimizer_type == "sgd":
        return torch.optim.SGD(groups, lr=rate, momentum=params.momentum, **fused_kwargs)
    optimizer_class = torch.optim.AdamW if params.optimizer_type == "adamw" else torch.optim.Adam
    return optimizer_class(groups, lr=rate, betas=tuple(params.betas), eps=params.eps, **fused_kwargs)


def build_lr_scheduler(optimizer: torch.optim.Optimizer, params: OptimizerParams) -> PiecewiseLR:
    """The learning-rate schedule of ``params``; call its ``step()`` after every optimizer step."""
    return PiecewiseLR(optimizer, params.schedule)
