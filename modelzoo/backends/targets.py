"""The back-end table: one entry per ``run.py`` target (CPU, GPU, IPU), the one place targets are listed.

An entry says how the target trains and evaluates (its back-end, built before anything is read or
written, so a missing CUDA device or poptorch fails first) and on which device it predicts and
serves (the IPU does neither: its checkpoints are the same files, predicted on CPU or GPU). The
command line's choices, ``make_backend`` and predict's device all come from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

import torch

from modelzoo.backends.cpu import cpu_backend
from modelzoo.backends.gpu import gpu_backend, require_cuda
from modelzoo.backends.ipu_options import require_poptorch
from modelzoo.common.errors import ParamsError
from modelzoo.params.params import Params


def _ipu_backend(params: Params, mode: str) -> Any:
    from modelzoo.backends.ipu import IpuBackend  # the only import of the poptorch back-end

    return IpuBackend(params, mode)


@dataclass(frozen=True)
class Target:
    """``preflight()`` fails at once where the target cannot run (no CUDA device, no poptorch), before any
    file is read; ``backend(params, mode)`` runs train / eval / train_and_eval; ``predict_device()`` is
    where predict and serve run (None: the target does not predict)."""

    name: str
    help: str
    preflight: Callable[[], Any]
    backend: Callable[[Params, str], Any]
    predict_device: Optional[Callable[[], torch.device]]


TARGETS: Dict[str, Target] = {
    target.name: target
    for target in (
        Target("CPU", "torch on the CPU (several processes under torchrun use gloo)", lambda: None,
               lambda params, mode: cpu_backend(params), lambda: torch.device("cpu")),
        Target("GPU", "torch on CUDA GPUs, one per process (torchrun for many, NCCL)", require_cuda,
               lambda params, mode: gpu_backend(params), require_cuda),
        Target("IPU", "Graphcore IPUs through poptorch (train, eval, train_and_eval)", require_poptorch,
               _ipu_backend, None),
    )
}


def make_backend(target: str, params: Params, mode: str) -> Any:
    return TARGETS[target].backend(params, mode)


def predict_device(target: str, mode: str) -> torch.device:
    """The device ``--mode predict`` or ``serve`` runs on, or one error line for a target that does not predict."""
    device = TARGETS[target].predict_device
    if device is None:
        predicting = [name for name, entry in TARGETS.items() if entry.predict_device is not None]
        raise ParamsError(
            f"run.py {target} --mode {mode}: run it on {' or '.join(predicting)} (checkpoints are the same .mdl files)"
        )
    return device()
