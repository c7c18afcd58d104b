"""benchmarks/model_step.py at a tiny size: every side's step changes every weight, HF gets the batch its
collator would make, and a step that changes nothing is refused rather than timed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.run_fixtures import REPO_ROOT, subprocess_env

pytest.importorskip("accelerate", reason="model_step.py asks transformers.Trainer for HF's default optimizer")

TINY = ["--models", "tiny", "--seq-len", "16", "--repeats", "1", "--warmup", "0", "--skip_hf_compiled"]


def model_step(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/model_step.py", *TINY, *args], cwd=REPO_ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)


def test_bfloat16_times_hf_with_both_attentions_after_checking_every_side_learns(tmp_path):
    result = model_step("--dtype", "bfloat16", "--json", str(tmp_path / "step.json"))
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = json.loads((tmp_path / "step.json").read_text())
    assert row["parameters_changed"]["ours"].split("/")[0] == row["parameters_changed"]["ours"].split("/")[1]
    assert row["parameters_changed"]["hf"] == row["parameters_changed"]["hf_eager"] == "39/39"
    rows, longest = row["hf_batch"].split("x")
    assert rows == "4" and 4 <= int(longest) < 16  # the batch's rows are 4 to 16 tokens long; cut to the longest
    fastest = min(("hf", "hf_eager"), key=lambda side: 1 / row[f"{side}_tokens_per_s"])
    assert row["hf_fastest"] == fastest
    assert row["ratio_ours_over_hf"] == pytest.approx(row["ours_tokens_per_s"] / row[f"{fastest}_tokens_per_s"])
    assert row["host"]["cpu"]["model"] and ("bfloat16 is emulated" in result.stdout) != row["bfloat16_native"]


def test_a_step_that_changes_no_weight_is_not_timed():
    result = model_step("--learning_rate", "0")
    assert result.returncode != 0
    assert "error: one step of ours changed 0/31 of its parameter tensors" in result.stderr
