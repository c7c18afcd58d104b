"""run.py's command line: overrides, params.yaml, fine-tuning starts, and every bad input as one error line.

In process (``cli.main``) where the code path is the same as ``python run.py``; the signal test
needs a real process.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from modelzoo.checkpoint.training import list_checkpoints
from modelzoo.cli.main import main
from tests.run_fixtures import REPO_ROOT, model_tensors, subprocess_env, tiny_params, write_params


def run_main(argv: list[str], capsys) -> tuple[int, list[str], str]:
    """Exit code, the ``error:`` lines, and stdout of ``run.py ARGV`` run in this process."""
    capsys.readouterr()
    rc = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return rc, [line for line in captured.err.splitlines() if line.startswith("error:")], captured.out


@pytest.mark.parametrize("problem", ["missing", "syntax", "wrong type"])
def test_bad_params_file_is_one_error_line_and_writes_nothing(ner_csv, tmp_path, capsys, problem):
    model_dir = tmp_path / "run"
    text = yaml.safe_dump(tiny_params(ner_csv, model_dir), sort_keys=False)
    line = text.splitlines().index("  max_steps: 30") + 1
    params_file = tmp_path / "p.yaml"
    if problem == "syntax":
        params_file.write_text(text.replace("max_steps: 30", "max_steps: [30"))
        expected = rf"error: {re.escape(str(params_file))}:\d+:\d+: YAML syntax error"
    elif problem == "wrong type":
        params_file.write_text(text.replace("max_steps: 30", "max_steps: thirty"))
        expected = rf"error: {re.escape(str(params_file))}:{line}:3: runconfig\.max_steps.*int"
    else:
        expected = rf"error: params file not found: {re.escape(str(params_file))}"
    rc, errors, _ = run_main(["CPU", "--mode", "train", "--params", str(params_file)], capsys)
    assert rc == 2
    assert len(errors) == 1 and re.match(expected, errors[0]), errors
    assert not model_dir.exists()


@pytest.mark.parametrize(
    ("target", "mode", "expected"),
    [
        ("CPU", "eval", "--mode eval: no checkpoint in"),
        pytest.param(
            "GPU",
            "train",
            "run.py GPU: no CUDA device is available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA"),
        ),
        pytest.param(
            "GPU",
            "predict",
            "run.py GPU: no CUDA device is available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA"),
        ),
    ],
)
def test_run_that_cannot_start_says_why_and_writes_nothing(ner_csv, tmp_path, capsys, target, mode, expected):
    model_dir = tmp_path / "run"
    params_file = write_params(tmp_path / "p.yaml", tiny_params(ner_csv, model_dir))
    extra = ["--input", "-"] if mode == "predict" else []
    rc, errors, _ = run_main([target, "--mode", mode, "--params", str(params_file), *extra], capsys)
    assert rc == 2
    assert len(errors) == 1 and expected in errors[0], errors
    assert not model_dir.exists()


def test_command_line_overrides_the_yaml_and_resolved_params_are_saved(ner_csv, tmp_path, capsys):
    params_file = write_params(tmp_path / "p.yaml", tiny_params(ner_csv, tmp_path / "from_yaml"))
    model_dir = tmp_path / "from_cli"
    argv = ["CPU", "--mode", "train", "--params", str(params_file), "--model_dir", str(model_dir)]
    rc, _, _ = run_main([*argv, "--num_epochs", "1", "--seed", "11"], capsys)
    assert rc == 0
    assert not (tmp_path / "from_yaml").exists()
    saved = yaml.safe_load((model_dir / "train" / "params.yaml").read_text())
    assert saved["runconfig"]["num_epochs"] == 1 and saved["runconfig"]["max_steps"] is None
    assert saved["runconfig"]["seed"] == 11 and saved["runconfig"]["model_dir"] == str(model_dir)
    assert saved["optimizer"]["eps"] == 1.0e-6  # defaults are written out too
    # 120 training sentences (tests/data/ner/train.tsv, none over 48 pieces), batch 8: one epoch is 15 steps.
    assert [step for step, _ in list_checkpoints(model_dir)] == [10, 15]


@pytest.fixture(scope="module")
def trained_checkpoint(ner_csv, tmp_path_factory):
    """A run.py checkpoint of the tiny model after two steps."""
    tmp_path = tmp_path_factory.mktemp("trained")
    params = tiny_params(ner_csv, tmp_path / "run", runconfig={"max_steps": 2})
    assert main(["CPU", "--mode", "train", "--params", str(write_params(tmp_path / "p.yaml", params))]) == 0
    return tmp_path / "run" / "checkpoint_2.mdl"


@pytest.mark.parametrize("how", ["resume", "eval", "fine-tune"])
def test_checkpoint_of_another_model_shape_is_one_error_line(ner_csv, tmp_path, capsys, trained_checkpoint, how):
    model_dir = tmp_path / "run"
    if how != "fine-tune":
        model_dir.mkdir()
        (model_dir / "checkpoint_2.mdl").write_bytes(trained_checkpoint.read_bytes())
    wider = tiny_params(ner_csv, model_dir, model={"hidden_size": 64})
    argv = ["CPU", "--mode", "eval" if how == "eval" else "train", "--params", str(write_params(tmp_path / "p.yaml", wider))]
    if how == "fine-tune":
        argv += ["--checkpoint_path", str(trained_checkpoint), "--load_checkpoint_states", "model"]
    rc, errors, _ = run_main(argv, capsys)
    assert rc == 2
    # a resume compares the saved params first and names the changed key; the others load the tensors
    expected = "model.hidden_size: 32 -> 64" if how == "resume" else "another model shape"
    assert len(errors) == 1 and expected in errors[0] and "32" in errors[0] and "64" in errors[0], errors
    assert [step for step, _ in list_checkpoints(model_dir)] == ([] if how == "fine-tune" else [2])


def test_fine_tuning_start_reports_missing_and_unexpected_keys(ner_csv, tmp_path, capsys, trained_checkpoint):
    """A converted checkpoint (weights only): strict loading refuses key mismatches by name; the flag allows them."""
    weights = model_tensors(trained_checkpoint)
    del weights["classifier.weight"]
    weights["bert.pooler.dense.weight"] = torch.zeros(32, 32)
    pretrained = tmp_path / "model.mdl"
    torch.save({"model": weights}, pretrained)
    model_dir = tmp_path / "run"
    frozen = tiny_params(ner_csv, model_dir, optimizer={"learning_rate": 0.0}, runconfig={"max_steps": 2})
    argv = ["CPU", "--mode", "train", "--params", str(write_params(tmp_path / "p.yaml", frozen))]
    argv += ["--checkpoint_path", str(pretrained), "--load_checkpoint_states", "model"]

    rc, errors, _ = run_main(argv, capsys)
    assert rc == 2
    assert len(errors) == 1, errors
    assert "missing keys [classifier.weight]" in errors[0] and "unexpected keys [bert.pooler.dense.weight]" in errors[0]
    assert "--disable_strict_checkpoint_loading" in errors[0]
    assert list_checkpoints(model_dir) == []

    rc, errors, out = run_main([*argv, "--disable_strict_checkpoint_loading"], capsys)
    assert rc == 0 and not errors
    assert "missing key (kept its fresh value): classifier.weight" in out
    assert "unexpected key (ignored): bert.pooler.dense.weight" in out
    # A fine-tuning start, not a resume: counted from step 0, with the pretrained weights (lr 0 keeps them).
    assert [step for step, _ in list_checkpoints(model_dir)] == [2]
    trained = model_tensors(model_dir / "checkpoint_2.mdl")
    assert all(torch.equal(trained[key], weights[key]) for key in trained if key in weights)


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(ner_csv, tmp_path):
    model_dir = tmp_path / "run"
    long_run = tiny_params(ner_csv, model_dir, runconfig={"max_steps": 100000, "log_steps": 1, "save_checkpoints_steps": 0})
    params_file = write_params(tmp_path / "p.yaml", long_run)
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "run.py"), "CPU", "--mode", "train", "--params", str(params_file)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        deadline = time.monotonic() + 120
        for line in process.stdout:
            if line.startswith("step 3:") or time.monotonic() > deadline:
                break
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    match = re.search(r"interrupted by SIGTERM at step (\d+); checkpoint saved to (\S+)", stderr)
    assert match, stderr
    step = int(match.group(1))
    assert step >= 3
    assert [found for found, _ in list_checkpoints(model_dir)] == [step]
    assert torch.load(model_dir / f"checkpoint_{step}.mdl", weights_only=False)["step"] == step
    assert not [path for path in model_dir.rglob(".*")]
