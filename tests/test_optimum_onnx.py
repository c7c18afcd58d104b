"""The ONNX folder loads in optimum as it is (slow: optimum-onnx lives in its own venv, see
docs/EXPORT.md; set OPTIMUM_PYTHON to that venv's python)."""

from __future__ import annotations

import os

import pytest

from benchmarks.optimum_parity import compare
from tests.export_runs import DATA, raw_sentences

pytest.importorskip("onnxruntime")


@pytest.mark.slow
def test_optimum_finds_the_entities_predict_finds(ner_run, tmp_path):
    optimum_python = os.environ.get("OPTIMUM_PYTHON")
    if not optimum_python:
        pytest.skip("set OPTIMUM_PYTHON to the python of a venv with optimum-onnx[onnxruntime]==0.1.0")
    lines = raw_sentences(DATA / "ner" / "test.tsv")
    ours, theirs = compare(ner_run, ner_run / "checkpoint_40.mdl", lines, optimum_python, tmp_path)
    assert len(ours) >= 10 and ours == theirs
