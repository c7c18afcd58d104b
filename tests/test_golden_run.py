"""The same tiny run gives the same loss at every step as before the layer redesign, on any x86 host.

tests/data/golden_losses.json was recorded with the code before the redesign and re-recorded once,
when the dropout masks of skip_padding's per-sequence attention changed (its ``recorded_with`` says
which commits, and what was checked): a behaviour change anywhere in data, model, optimizer or loop
moves at least one of these 30 losses.

The comparison is relative, within ``TOLERANCE``. The same code sums in a different order on
another CPU (AVX2, AVX-512 and AMX kernels block their reductions differently) or thread count,
which moves the losses in their last bits; a real change moves them by orders of magnitude more.
docs/MEASURED.md ("Golden losses") has both, measured; ``test_a_changed_run_fails_the_comparison``
keeps three of the smallest changes a user could make (the learning rate by 1 %, the seed by one,
the init range by 1 %) more than 100x outside the tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import pytest
import torch

from modelzoo.backends.torch_step import TorchStep
from modelzoo.common.device import DeviceSetup
from modelzoo.common.distributed import DistContext
from modelzoo.heads import build_task
from modelzoo.loop.trainer import Trainer
from modelzoo.params.params import load_params
from tests.conftest import TEST_DATA
from tests.run_fixtures import tiny_params, write_params

TOLERANCE = 1e-5  # relative, per step


def _golden() -> List[float]:
    return json.loads((TEST_DATA / "golden_losses.json").read_text(encoding="utf-8"))["losses"]


def _losses(ner_csv, run_dir: Path, threads: int, **sections: dict) -> List[float]:
    params = load_params(write_params(run_dir.with_suffix(".yaml"), tiny_params(ner_csv, run_dir, **sections)))
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(params.runconfig.seed)
        task = build_task(params)
        step = TorchStep(params, task, task.build_model(), DeviceSetup(torch.device("cpu")), DistContext())
        trainer = Trainer(params, step, DistContext(), run_dir)
        try:
            return trainer.train()
        finally:
            trainer.close()
    finally:
        torch.set_num_threads(saved_threads)


def _largest_relative_difference(losses: List[float], golden: List[float]) -> float:
    assert len(losses) == len(golden)
    return max(abs(loss - want) / abs(want) for loss, want in zip(losses, golden))


@pytest.mark.parametrize("threads", [1, 2])
def test_tiny_run_repeats_the_recorded_losses(ner_csv, tmp_path, threads):
    assert _largest_relative_difference(_losses(ner_csv, tmp_path / "run", threads), _golden()) <= TOLERANCE


CHANGES = {
    "learning rate +1 %": {"optimizer": {"learning_rate": 3.03e-3}},
    "seed + 1": {"runconfig": {"seed": 8}},
    "init range +1 %": {"model": {"initializer_range": 0.0202}},
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_changed_run_fails_the_comparison(ner_csv, tmp_path, change):
    losses = _losses(ner_csv, tmp_path / "run", 1, **CHANGES[change])
    assert _largest_relative_difference(losses, _golden()) > 100 * TOLERANCE
