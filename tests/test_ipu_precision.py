"""One params file for GPU and IPU: ``precision: bfloat16`` runs in float16 on IPUs (STAND-IN poptorch).

configs/bert_base_ner.yaml is written for bfloat16 GPUs and carries an ``ipu:`` section; IPUs have
no bfloat16, so ``run.py IPU`` takes half precision to mean their float16 and says so.
"""

from __future__ import annotations

import sys

import torch

from modelzoo.cli.main import main
from tests.poptorch_standin import StandinPoptorch, skip_without_cpu_float16_kernels
from tests.run_fixtures import model_tensors, tiny_params, write_params


def test_bfloat16_params_train_a_float16_model_on_ipu(ner_csv, tmp_path, monkeypatch, capsys):
    params = tiny_params(ner_csv, tmp_path / "run", optimizer={"learning_rate": 1.0e-4},
                         runconfig={"max_steps": 4, "save_checkpoints_steps": 0, "precision": "bfloat16"})
    params["ipu"] = {"loss_scaling": 64.0}
    monkeypatch.setitem(sys.modules, "poptorch", StandinPoptorch())
    params_file = write_params(tmp_path / "p.yaml", params)
    with skip_without_cpu_float16_kernels():
        assert main(["IPU", "--mode", "train", "--params", str(params_file)]) == 0
    assert "IPUs have no bfloat16, so the model runs in float16" in capsys.readouterr().out
    weights = model_tensors(tmp_path / "run" / "checkpoint_4.mdl")
    assert {tensor.dtype for tensor in weights.values() if tensor.is_floating_point()} == {torch.float16}
