"""benchmarks/gpu_check.sh: its CPU dry run runs every step (the wiring), and its table reports failures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.run_fixtures import REPO_ROOT, subprocess_env

pytest.importorskip("accelerate", reason="model_step.py asks transformers.Trainer for HF's default optimizer")


def test_dry_run_runs_every_step_on_cpu_and_passes(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--dry-run", "--out", str(out)],
        cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    steps = [line.split("\t") for line in (out / "status.tsv").read_text().splitlines()]
    assert [name for name, _, _ in steps] == ["parity", "model_step", "data", "finetune", "torchrun"]
    assert all(code == "0" for _, code, _ in steps)
    parity = json.loads((out / "parity.json").read_text())["checks"]
    assert len(parity) == 2 and all(row["passed"] and row["float32_max_abs_diff"] <= 1e-4 for row in parity)
    (step,) = json.loads((out / "model_step.json").read_text())
    assert step["dtype"] == "bfloat16" and step["ours_tokens_per_s"] > 0 and step["hf_tokens_per_s"] > 0
    metrics = json.loads((out / "finetune" / "eval" / "metrics_step_8.json").read_text())
    assert 0.0 <= metrics["f1"] <= 1.0
    assert (out / "torchrun" / "checkpoint_2.mdl").is_file()
    table = result.stdout.split("=== GPU check on CPU")[1]
    for check in ("parity tiny", "train step tiny", "fine-tune, packed bfloat16", "torchrun --nproc_per_node 1"):
        assert check in table
    assert "all checks passed" in table


def test_the_table_reports_a_failed_step_and_a_loss_that_did_not_fall(tmp_path):
    (tmp_path / "status.tsv").write_text("finetune\t0\t12\ntorchrun\t124\t70\n")
    (tmp_path / "finetune.log").write_text(
        "step 10: loss 0.5000, lr 1e-4, grad norm 1.0, 9.0 samples/s, 900 real tokens/s\n"
        "step 20: loss 0.6000, lr 1e-4, grad norm 1.0, 9.0 samples/s, 950 real tokens/s\n"
    )
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu_summary.py", str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1
    lines = {line.split("  ")[0]: line for line in result.stdout.splitlines()}
    assert "CHECK FAILED" in lines["fine-tune, packed bfloat16 (run.py)"]  # 0.5 -> 0.6 does not fall
    assert "950 real tokens/s" in lines["fine-tune, packed bfloat16 (run.py)"]
    assert "timed out after 70 s" in result.stdout
    assert "SOME CHECKS FAILED" in result.stdout
