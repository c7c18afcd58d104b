"""``--engine``: which forward pass tags the text, and ``auto`` (the default), which picks it per host.

The engines that read a trained checkpoint (``checkpoint_N.mdl``) are the torch model as trained
(``torch``) and the same model with its encoder layers in fused oneDNN kernels (``onednn``,
:mod:`modelzoo.predict.fused_cpu`); ``onnxruntime`` reads an ONNX export instead
(:mod:`modelzoo.predict.onnx_engine`). ``torch`` and ``onednn`` give the same predictions (float32,
equal to rounding), but which is faster depends on the CPU and its libraries: oneDNN's kernels are
chosen by instruction set (AMX, AVX-512, AVX2) and MKL's, behind ``torch``, are tuned per vendor, and
no table of CPUs would stay right. So ``auto`` measures: both run a few batches shaped like
prediction's (rows of ``SAMPLE_LENGTH`` tokens, a new row count each round, as a stream brings new
shapes), alternately, and the faster by median is kept; the log line names it, with both times.
Where only one engine applies (an ONNX export: ONNX Runtime; ``--quantize int8``, autocast in another
precision, or a GPU: torch), ``auto`` takes it without measuring and says why.
"""

from __future__ import annotations

import copy
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, Tuple

import torch
from torch import nn

from modelzoo.checkpoint.onnx_export import ONNX_FILE
from modelzoo.common.device import DeviceSetup
from modelzoo.common.errors import ParamsError
from modelzoo.predict.fused_cpu import fuse_float32, onednn_float32_available

ENGINES = ("auto", "torch", "onednn", "onnxruntime")
SAMPLE_ROWS, SAMPLE_LENGTH = 16, 32  # a quarter of the default token budget: start-up stays short
TIMED_ROUNDS = 3  # after one untimed round (first calls build kernels and fill caches)


def is_onnx_export(checkpoint: Path) -> bool:
    """An ``.onnx`` file, or a folder that ``convert_checkpoint --tgt-fmt onnx`` wrote."""
    checkpoint = Path(checkpoint)
    return checkpoint.suffix == ".onnx" or (checkpoint.is_dir() and (checkpoint / ONNX_FILE).is_file())


def checkpoint_engine(engine: str, checkpoint: Path) -> str:
    """``engine``, with ``auto`` resolved to ``onnxruntime`` for an ONNX export (the only engine that reads one)."""
    if engine == "auto" and is_onnx_export(checkpoint):
        return "onnxruntime"
    return engine


def choose_torch_engine(model: nn.Module, engine: str, setup: DeviceSetup, quantized: bool) -> Tuple[nn.Module, str]:
    """The model to tag with for ``--engine`` torch, onednn or auto, and a log line saying which and why."""
    if engine == "torch":
        return model, "engine torch: the model as trained (eager)"
    reason = _why_not_fused(setup, quantized)
    if engine == "onednn":
        if reason:
            raise ParamsError(f"--engine onednn: {reason}; use --engine torch")
        return fuse_float32(model, setup.device), "engine onednn: encoder layers in fused oneDNN kernels"
    if reason:
        return model, f"engine auto: torch ({reason})"
    fused = fuse_float32(copy.deepcopy(model), setup.device)
    seconds = time_forward({"torch": model, "onednn": fused}, model.config.vocab_size)
    chosen, other = sorted(seconds, key=seconds.__getitem__)
    times = ", ".join(f"{name} {1000 * seconds[name]:.1f} ms" for name in (chosen, other))
    line = (f"engine auto: {chosen}, {seconds[other] / seconds[chosen]:.2f}x {other}'s speed on this host "
            f"(median of {TIMED_ROUNDS} alternated start-up batches of {SAMPLE_ROWS}+ rows of {SAMPLE_LENGTH} "
            f"tokens: {times})")
    return (fused if chosen == "onednn" else model), line


def _why_not_fused(setup: DeviceSetup, quantized: bool) -> str:
    """Why only the torch model applies here, or "" when the fused layers do too."""
    if quantized:
        return "--quantize int8 has its own fused kernels"
    if not setup.is_cpu:
        return "the fused oneDNN layers are for CPU"
    if setup.precision != "float32":
        return f"the fused oneDNN layers are float32; runconfig.precision is {setup.precision}"
    if not onednn_float32_available():
        return "this torch build has no oneDNN linear (mkldnn::_linear_pointwise)"
    return ""


@torch.inference_mode()
def time_forward(models: Dict[str, nn.Module], vocab_size: int, clock: Callable[[], float] = time.perf_counter) -> Dict[str, float]:
    """Median seconds of one forward of each model (as the tagger calls it) on the same batches, alternated."""
    generator = torch.Generator().manual_seed(0)
    seconds: Dict[str, list] = {name: [] for name in models}
    for round_ in range(1 + TIMED_ROUNDS):
        shape = (SAMPLE_ROWS + round_, SAMPLE_LENGTH)
        inputs = {
            "input_ids": torch.randint(1, vocab_size, shape, generator=generator, dtype=torch.int32),
            "attention_mask": torch.ones(shape, dtype=torch.int32),
            "token_type_ids": torch.zeros(shape, dtype=torch.int32),
        }
        for name, model in models.items():
            started = clock()
            model(**inputs, skip_padding=True)
            if round_:
                seconds[name].append(clock() - started)
    return {name: statistics.median(times) for name, times in seconds.items()}
