"""benchmarks/ort_profile.py: kernel time summed per op type from an ONNX Runtime trace, and the
multiplies' share with the Attention node's projections estimated at the MatMul nodes' rate; the run
calls' seconds beside them."""

from __future__ import annotations

import json

import pytest

from benchmarks.ort_profile import multiply_share, op_seconds


def event(op: str, microseconds: int, name_suffix: str = "_kernel_time", cat: str = "Node") -> dict:
    return {"cat": cat, "name": f"node_{op}{name_suffix}", "dur": microseconds, "args": {"op_name": op}}


def test_only_node_kernel_times_are_summed_per_op(tmp_path):
    trace = tmp_path / "profile.json"
    trace.write_text(json.dumps([
        event("MatMul", 300), event("MatMul", 600), event("Attention", 500),
        event("MatMul", 9999, name_suffix="_fence_before"), {"cat": "Session", "name": "model_run", "dur": 1500},
        {"cat": "Session", "name": "model_run", "dur": 100}, {"cat": "Session", "name": "session_initialization", "dur": 10**6},
    ]))
    per_op, run_seconds = op_seconds(str(trace))
    assert per_op == pytest.approx({"MatMul": 900e-6, "Attention": 500e-6}) and run_seconds == pytest.approx(1600e-6)


def test_the_projections_inside_attention_count_as_multiplies_at_matmuls_rate():
    shares = multiply_share({"MatMul": 9.0, "Attention": 5.0, "SkipLayerNormalization": 2.0}, 16.0)
    assert shares["matmul_nodes"] == pytest.approx(9 / 16)
    assert shares["attention_projections"] == pytest.approx(3 / 16)  # 3 products a token at 1 s each
    assert shares["multiplies"] == pytest.approx(12 / 16)


def test_the_estimate_never_exceeds_the_attention_nodes_own_time():
    assert multiply_share({"MatMul": 9.0, "Attention": 1.0}, 10.0)["attention_projections"] == pytest.approx(1 / 10)
