"""benchmarks/encoder_matmuls.py: torch's and ONNX Runtime's float32 linear agree, and the table prints a ratio per shape."""

from __future__ import annotations

import re

from benchmarks.encoder_matmuls import main


def test_tiny_shapes_print_a_ratio_per_multiply(capsys):
    assert main(["--rows", "8", "--hidden", "16", "--repeats", "1", "--threads", "1"]) == 0
    table = capsys.readouterr().out
    assert len(re.findall(r"^(query|intermediate|output)\b.* x\d+\.\d\d$", table, flags=re.MULTILINE)) == 3
    assert "geometric mean torch/ORT" in table
