"""benchmarks/encoder_matmuls.py: our and ONNX Runtime's float32 linear agree (the script asserts it),
and the table prints a ratio per shape for our float32 and int8 multiplies."""

from __future__ import annotations

import re

import pytest

from benchmarks.encoder_matmuls import main
from modelzoo.predict.int8 import onednn_int8_available


@pytest.mark.parametrize("ours", ["torch", "int8"])  # inductor: a C++ compile a shape, for a slow test
def test_tiny_shapes_print_a_ratio_per_multiply(capsys, ours):
    if ours == "int8" and not onednn_int8_available():
        pytest.skip("this torch build has no oneDNN int8 kernels")
    assert main(["--ours", ours, "--rows", "8", "--hidden", "16", "--repeats", "1", "--threads", "1"]) == 0
    table = capsys.readouterr().out
    assert len(re.findall(r"^(query|intermediate|output)\b.* x\d+\.\d\d$", table, flags=re.MULTILINE)) == 3
    assert f"threads, ours: {ours};" in table and "geometric mean ours/ORT" in table
