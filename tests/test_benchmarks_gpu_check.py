"""benchmarks/gpu_check.sh and its assets: what travels fits, every step's command runs on CPU at tiny
sizes (the wiring), a timeout or a failure is one step's row, and the report stays small.

The full rehearsal (a fresh Python 3.12 environment of the GPU image's packages, the checkout copied
as it would travel) needs the registry and minutes: it is the ``slow`` test at the end.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import torch

from tests.run_fixtures import REPO_ROOT, subprocess_env

pytest.importorskip("accelerate", reason="model_step.py asks transformers.Trainer for HF's default optimizer")

DRY_RUN_STEPS = ["preflight", "parity", "model_step_tiny", "data", "weights", "finetune", "torchrun"]
REPORT_FILES = {"table.txt", "report.json", "logs.txt"}
CARRY_LIMIT_MIB = 64


def build_assets(out: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "benchmarks/write_gpu_assets.py", "--out", str(out), *options],
        cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def tiny_assets(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gpu_assets") / "tiny"
    result = build_assets(out, "--tiny")
    assert result.returncode == 0, result.stderr
    return out


def gpu_check(tmp_path: Path, assets: Path, *options: str) -> subprocess.CompletedProcess:
    env = {**subprocess_env(), "GPU_ASSETS": str(assets), "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--dry-run", "--out", str(tmp_path / "report"), "--work",
         str(tmp_path / "work"), *options],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900,
    )


def records(work: Path) -> Dict[str, dict]:
    found = [json.loads(path.read_text()) for path in (work / "steps").glob("*.json")]
    return {record["step"]: record for record in sorted(found, key=lambda record: record["index"])}


def table_rows(report: Path) -> Dict[str, str]:
    return {line.split("  ")[0]: line for line in (report / "table.txt").read_text().splitlines()[1:]}


def test_dry_run_runs_every_step_on_cpu_and_passes(tmp_path, tiny_assets):
    result = gpu_check(tmp_path, tiny_assets)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    work, report = tmp_path / "work", tmp_path / "report"
    steps = records(work)
    assert list(steps) == DRY_RUN_STEPS
    assert all(record["exit_code"] == 0 and record["seconds"] <= record["limit_s"] for record in steps.values())

    parity = json.loads((work / "results" / "parity.json").read_text())["checks"]
    assert len(parity) == 2 and all(row["passed"] and row["float32_max_abs_diff"] <= 1e-4 for row in parity)
    (step,) = json.loads((work / "results" / "model_step_tiny.json").read_text())
    assert step["dtype"] == "bfloat16" and step["ours_tokens_per_s"] > 0 and step["hf_tokens_per_s"] > 0
    metrics = json.loads((work / "finetune" / "eval" / "metrics_step_8.json").read_text())
    assert 0.0 <= metrics["f1"] <= 1.0
    assert (work / "torchrun" / "checkpoint_2.mdl").is_file()

    # What comes back from the device: three small files, no checkpoints or CSVs.
    assert {path.name for path in report.iterdir()} == REPORT_FILES
    assert sum(path.stat().st_size for path in report.iterdir()) < 2**20
    summary = json.loads((report / "report.json").read_text())
    assert summary["all_passed"] and [step["step"] for step in summary["steps"]] == DRY_RUN_STEPS
    assert all(f"===== {name}: exit 0" in (report / "logs.txt").read_text() for name in DRY_RUN_STEPS)
    rows = table_rows(report)
    for check in ("preflight device", "preflight assets", "parity tiny 4x32 skip padding", "train step tiny 4x32 bfloat16",
                  "data", "weights", "fine-tune (run.py)", "torchrun --nproc_per_node 1 run.py"):
        assert rows[check].endswith(" s)]"), rows[check]  # "[ok (N s)]"
    assert "all checks passed" in result.stdout.split("=== GPU check on CPU")[1]


def test_a_timeout_is_one_steps_row_and_the_next_step_runs(tmp_path, tiny_assets):
    """parity killed at 1 s; data still runs; the fine-tune, lacking the weights step, is skipped."""
    result = gpu_check(tmp_path, tiny_assets, "--steps", "parity,data,finetune", "--limit", "parity=1")
    assert result.returncode == 1, result.stdout[-4000:] + result.stderr[-2000:]
    steps = records(tmp_path / "work")
    assert list(steps) == ["preflight", "parity", "data", "finetune"]
    assert steps["parity"]["exit_code"] == 124 and steps["parity"]["limit_s"] == 1
    assert steps["data"]["exit_code"] == 0
    assert steps["finetune"]["exit_code"] is None and "weights/model.mdl" in steps["finetune"]["note"]
    rows = table_rows(tmp_path / "report")
    assert "TIMED OUT at its 1 s limit" in rows["parity"]
    assert rows["data"].endswith(" s)]")
    assert "skipped: needs" in rows["finetune"]
    assert "SOME CHECKS FAILED" in result.stdout


def test_a_failed_preflight_stops_the_run_and_says_why(tmp_path):
    result = gpu_check(tmp_path, tmp_path / "no_assets")
    assert result.returncode == 2
    assert list(records(tmp_path / "work")) == ["preflight"]
    rows = table_rows(tmp_path / "report")
    assert "manifest.json: not found" in rows["preflight assets"]
    assert rows["preflight assets"].endswith("[CHECK FAILED; step FAILED (exit 1) after " + rows["preflight assets"].split("after ")[-1])
    assert "torch " in rows["preflight packages"] and "CHECK FAILED" not in rows["preflight packages"]
    assert "nothing else was started" in result.stderr


def write_step(work: Path, index: int, name: str, exit_code, seconds: int, limit: int, log: str = "") -> None:
    (work / "steps").mkdir(parents=True, exist_ok=True)
    record = {"step": name, "index": index, "exit_code": exit_code, "seconds": seconds, "limit_s": limit, "note": ""}
    (work / "steps" / f"{name}.json").write_text(json.dumps(record))
    (work / "steps" / f"{name}.log").write_text(log)


def test_the_table_reports_a_timeout_and_a_loss_that_did_not_fall(tmp_path):
    log = (
        "train:  50%|#####     | 1/2\rstep 10: loss 0.5000, lr 1e-4, grad norm 1.0, 9.0 samples/s, 900 real tokens/s\n"
        "step 20: loss 0.6000, lr 1e-4, grad norm 1.0, 9.0 samples/s, 950 real tokens/s\n"
    )
    write_step(tmp_path, 1, "finetune", 0, 12, 150, log)
    write_step(tmp_path, 2, "torchrun", 124, 45, 45)
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu_summary.py", str(tmp_path), "--report", str(tmp_path / "report")],
        cwd=REPO_ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 1
    rows = table_rows(tmp_path / "report")
    assert "CHECK FAILED" in rows["fine-tune (run.py)"]  # 0.5 -> 0.6 does not fall
    assert "950 real tokens/s" in rows["fine-tune (run.py)"]
    assert "TIMED OUT at its 45 s limit" in rows["torchrun --nproc_per_node 1 run.py"]
    assert "SOME CHECKS FAILED" in result.stdout
    logs = (tmp_path / "report" / "logs.txt").read_text()
    assert "\r" not in logs and "\nstep 10: loss 0.5000" in logs  # the progress bar's redraw dropped


def carried_mib(stdout: str) -> float:
    found = re.search(r"sends ([\d.]+) MiB of 64 MiB", stdout)
    assert found, stdout
    return float(found.group(1))


def test_the_real_assets_fit_a_device_call_and_hold_minilm(tmp_path, model_folder, shared_data):
    """bfloat16 storage rounds each weight (relative 2**-9 at most); a wrong or missing tensor would
    change MiniLM's output by its whole size, not by that rounding."""
    transformers = pytest.importorskip("transformers")
    out = tmp_path / "gpu_assets"
    result = build_assets(out, "--ner", str(shared_data / "bc5cdr-chem"))
    assert result.returncode == 0, result.stderr
    assert carried_mib(result.stdout) < CARRY_LIMIT_MIB
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) == {"ner/train.tsv", "ner/devel.tsv", "ner/test.tsv", "model/config.json",
                                      "model/vocab.txt", "model/model.safetensors"}
    assert sum(entry["bytes"] for entry in manifest["files"].values()) < 50 * 2**20

    ids = torch.randint(1000, 30000, (2, 24), generator=torch.Generator().manual_seed(0))
    outputs: List[torch.Tensor] = []
    for folder in (model_folder, out / "model"):
        model = transformers.BertModel.from_pretrained(str(folder), dtype=torch.float32).eval()
        with torch.no_grad():
            outputs.append(model(input_ids=ids).last_hidden_state)
    relative = ((outputs[1] - outputs[0]).norm() / outputs[0].norm()).item()
    assert 0.0 < relative < 0.02, relative


def test_a_tampered_asset_fails_verification(tmp_path, tiny_assets):
    copy = tmp_path / "assets"
    shutil.copytree(tiny_assets, copy)
    with (copy / "ner" / "train.tsv").open("a") as stream:
        stream.write("extra\tO\n")
    result = build_assets(copy, "--verify")
    assert result.returncode == 2
    assert "train.tsv: differs from manifest.json" in result.stderr


@pytest.mark.slow
def test_the_rehearsal_in_a_fresh_environment_of_the_gpu_image_passes(tmp_path, model_folder, shared_data):
    """Downloads the image's packages once (about 2.6 GB) and takes minutes."""
    assets = tmp_path / "gpu_assets"
    assert build_assets(assets, "--ner", str(shared_data / "bc5cdr-chem")).returncode == 0
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu_rehearsal.py", "--assets", str(assets)],
        cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=3000,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert carried_mib(result.stdout) < CARRY_LIMIT_MIB
    assert "python 3.12" in result.stdout and "torch 2.11.0" in result.stdout
    assert "all checks passed" in result.stdout
