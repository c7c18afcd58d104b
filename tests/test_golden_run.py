"""The same tiny run gives the same loss at every step as before the layer redesign.

tests/data/golden_losses.json was recorded with the code before the redesign and re-recorded once,
when the dropout masks of skip_padding's per-sequence attention changed (its ``recorded_with`` says
which commits, and what was checked): a behaviour change anywhere in data, model, optimizer or loop
moves at least one of these 30 losses.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from modelzoo.backends.torch_step import TorchStep
from modelzoo.loop.device import DeviceSetup
from modelzoo.loop.distributed import DistContext
from modelzoo.loop.tasks import build_task
from modelzoo.loop.trainer import Trainer
from modelzoo.params.params import load_params
from tests.conftest import TEST_DATA
from tests.run_fixtures import tiny_params, write_params


def test_tiny_run_repeats_the_recorded_losses(ner_csv, tmp_path):
    golden = json.loads((TEST_DATA / "golden_losses.json").read_text(encoding="utf-8"))["losses"]
    params = load_params(write_params(tmp_path / "params.yaml", tiny_params(ner_csv, tmp_path / "run")))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the recording's thread count: matmul sums in the same order
    try:
        torch.manual_seed(params.runconfig.seed)
        task = build_task(params)
        step = TorchStep(params, task, task.build_model(), DeviceSetup(torch.device("cpu")), DistContext())
        trainer = Trainer(params, step, DistContext(), Path(tmp_path / "run"))
        try:
            losses = trainer.train()
        finally:
            trainer.close()
    finally:
        torch.set_num_threads(threads)
    assert losses == golden
