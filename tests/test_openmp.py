"""Prediction's OpenMP threads wait passively: set for ``--mode predict`` only, before torch loads OpenMP,
never over the user's own setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelzoo.common import openmp


@pytest.mark.parametrize(("argv", "passive"), [
    (["CPU", "--mode", "predict", "--input", "-"], True),
    (["CPU", "--mode=predict"], True),
    (["CPU", "--mode", "train", "--input", "predict"], False),
    (["CPU", "--mode", "eval"], False),
])
def test_prediction_alone_asks_openmp_to_wait_passively(monkeypatch, argv, passive):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delitem(sys.modules, "torch")  # as in run.py, before torch is imported
    openmp.wait_passively_when_predicting(argv)
    assert os.environ.get("OMP_WAIT_POLICY") == ("PASSIVE" if passive else None)


def test_a_policy_the_user_set_is_kept_and_none_is_set_once_torch_is_loaded(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with monkeypatch.context() as before_torch:
        before_torch.delitem(sys.modules, "torch")
        openmp.wait_passively()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    openmp.wait_passively()  # torch is loaded in this process: too late for OpenMP to read it
    assert "OMP_WAIT_POLICY" not in os.environ


def test_run_py_sets_the_policy_before_torch_loads_openmp():
    """The variable must be in the environment when torch is imported, which run.py does right after."""
    probe = ("import sys; sys.argv = ['run.py', 'CPU', '--mode', 'predict']; import runpy, os; "
             "runpy.run_path('run.py', run_name='probe'); print(os.environ.get('OMP_WAIT_POLICY'))")
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == "PASSIVE"
