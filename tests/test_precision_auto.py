"""``runconfig.precision: auto`` (bfloat16 where the device multiplies it natively) and the CPU's bfloat16 attention."""

from __future__ import annotations

import pytest
import torch

from modelzoo.backends.cpu import cpu_backend
from modelzoo.cli.main import main
from modelzoo.common import device as device_module
from modelzoo.common.device import DeviceSetup
from modelzoo.heads import build_task
from modelzoo.params.params import load_params
from tests.run_fixtures import tiny_params, write_params

CPU = torch.device("cpu")


@pytest.mark.parametrize("native, expected", [(True, "bfloat16"), (False, "float32")])
def test_auto_is_bfloat16_only_where_the_device_computes_it(monkeypatch, native, expected):
    monkeypatch.setattr(device_module, "native_bfloat16", lambda device: native)
    setup = DeviceSetup(CPU, "auto")
    assert setup.precision == expected
    assert setup.autocast_dtype == (torch.bfloat16 if native else None)


def test_explicit_precisions_are_kept_whatever_the_device(monkeypatch):
    monkeypatch.setattr(device_module, "native_bfloat16", lambda device: False)
    assert DeviceSetup(CPU, "bfloat16").precision == "bfloat16"
    assert DeviceSetup(CPU, "float32").precision == "float32"


@pytest.mark.parametrize("precision, kernel", [("bfloat16", "matmul"), ("float32", "sdpa")])
def test_cpu_attention_is_matmul_in_bfloat16_and_sdpa_in_float32(ner_csv, tmp_path, precision, kernel):
    params_file = write_params(tmp_path / "p.yaml", tiny_params(ner_csv, tmp_path / "run", runconfig={"precision": precision}))
    params = load_params(params_file)
    backend = cpu_backend(params)
    backend.start()
    try:
        model = build_task(params).build_model()
        backend.prepare(model)
    finally:
        backend.stop()
    assert model.bert.attention_kernel == kernel


def test_run_py_says_what_auto_became_and_trains(ner_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(device_module, "native_bfloat16", lambda device: True)
    params = tiny_params(ner_csv, tmp_path / "run", runconfig={"precision": "auto", "max_steps": 4})
    assert main(["CPU", "--mode", "train", "--params", str(write_params(tmp_path / "p.yaml", params))]) == 0
    out = capsys.readouterr().out
    assert "runconfig.precision auto: bfloat16 on cpu" in out
    assert (tmp_path / "run" / "checkpoint_4.mdl").is_file()
