"""GPU executor: one CUDA device per process (torchrun for many, NCCL), AMP, optional torch.compile."""

from __future__ import annotations

import torch

from modelzoo.executors.torch_runner import run_on_torch_device
from modelzoo.run.params import Params


class CudaUnavailableError(RuntimeError):
    pass


def require_cuda() -> torch.device:
    """The CUDA device, or one clear error before anything is read or written (every GPU mode)."""
    if not torch.cuda.is_available():
        raise CudaUnavailableError(
            f"run.py GPU: no CUDA device is available (torch {torch.__version__}, "
            f"CUDA build: {torch.version.cuda or 'no'}); use run.py CPU, or see PYTHON-SETUP.md"
        )
    return torch.device("cuda")


def run(params: Params, mode: str, strict_loading: bool = True) -> None:
    run_on_torch_device(params, mode, require_cuda(), "nccl", strict_loading)
