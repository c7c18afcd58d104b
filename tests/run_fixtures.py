"""Shared pieces of the run.py tests: a tiny model's params file and ways to run run.py.

The data is the ``ner_csv`` fixture of conftest.py (the in-repo sentences written by the project's
own CSV writer); the model is small enough (hidden 32, 2 layers) that a few dozen CPU steps take
about a second, so the tests exercise the real loop, not a mock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import torch
import yaml

from modelzoo.cli.main import main
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE

REPO_ROOT = Path(__file__).resolve().parents[1]
EVAL_SENTENCES = 40  # tests/data/ner/test.tsv
MAX_SEQUENCE_LENGTH = 48


def tiny_params(ner_csv: Dict[str, Path], model_dir: Path, **sections: dict) -> dict:
    """A params mapping for a tiny model on ``ner_csv``; ``sections`` update single keys per section."""
    batching = {"vocab_file": str(ner_csv["vocab"]), "max_sequence_length": MAX_SEQUENCE_LENGTH}
    params = {
        "train_input": {"data_dir": str(ner_csv["train"]), **batching, "batch_size": 8, "shuffle_seed": 3, "drop_last": True},
        "eval_input": {"data_dir": str(ner_csv["test"]), **batching, "batch_size": 16, "shuffle": False},
        "model": {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_heads": 2,
            "filter_size": 64,
            "num_classes": len(json.loads((ner_csv["train"] / LABEL_VOCAB_FILE).read_text(encoding="utf-8"))),
            "vocab_size": len(ner_csv["vocab"].read_text(encoding="utf-8").splitlines()),
            "dropout_rate": 0.1,
            "attention_dropout_rate": 0.1,
        },
        "optimizer": {"optimizer_type": "adamw", "learning_rate": 3.0e-3, "max_gradient_norm": 1.0},
        "runconfig": {
            "max_steps": 30,
            "log_steps": 5,
            "save_checkpoints_steps": 10,
            "keep_checkpoint_max": None,
            "seed": 7,
            "model_dir": str(model_dir),
        },
    }
    for section, values in sections.items():
        params[section].update(values)
    return params


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


def subprocess_env() -> Dict[str, str]:
    """One torch thread per process (CI runs beside other jobs), and output line by line as it happens."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run_py(*args: str, launcher: Tuple[str, ...] = (sys.executable,), timeout: float = 300):
    """``run.py ARGS`` in a fresh process, through ``launcher`` (e.g. torchrun)."""
    return subprocess.run(
        [*launcher, str(REPO_ROOT / "run.py"), *args],
        cwd=REPO_ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def model_tensors(checkpoint: Path) -> Dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]


def predict(params_file, capsys, *args: str) -> Tuple[int, str, List[str]]:
    """Exit code, stdout and the ``error:`` lines of an in-process ``run.py CPU --mode predict``."""
    capsys.readouterr()
    rc = main(["CPU", "--mode", "predict", "--params", str(params_file), *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return rc, captured.out, [line for line in captured.err.splitlines() if line.startswith("error:")]
