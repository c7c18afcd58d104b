"""Tiny trained runs on the synthetic in-repo data (tests/data), shared by the export and best-checkpoint tests.

The classifier run writes its own CSV with room for every dev sentence (conftest's folder truncates
some), so that the Hugging Face pipeline, which sees the whole sentence, reads what evaluation read.

A run is built once per test session (cached here, under pytest's base temporary folder) and only
read by the tests that share it; a test that deletes files trains its own.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from data_processing.write_csv_classifier import convert as write_classifier_csv
from modelzoo.bert import BertConfig, PackedBertForSequenceClassification
from modelzoo.cli.main import main

DATA = Path(__file__).resolve().parent / "data"
VOCAB = DATA / "vocab.txt"
MAX_SEQUENCE_LENGTH = 48
TINY_MODEL = {"vocab_size": 169, "hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2, "filter_size": 64,
              "max_position_embeddings": 64}
_BUILT: dict[str, Path] = {}


def raw_sentences(split_file: Path) -> list[str]:
    """The sentences of a word<TAB>label file as raw text lines (words joined by spaces)."""
    blocks = split_file.read_text(encoding="utf-8").split("\n\n")
    return [" ".join(line.split("\t")[0] for line in block.splitlines()) for block in blocks if block.strip()]


def ner_params(ner_csv: dict[str, Path], model_dir: Path, vocab: Path = VOCAB, **runconfig) -> dict:
    """A tiny token classifier on the conftest ``ner_csv`` folders (12 labels, typed LOC/MISC/ORG/PER)."""
    inputs = {"vocab_file": str(vocab), "max_sequence_length": MAX_SEQUENCE_LENGTH}
    return {
        "train_input": {"data_dir": str(ner_csv["train"]), **inputs, "batch_size": 16, "shuffle_seed": 3},
        "eval_input": {"data_dir": str(ner_csv["test"]), **inputs, "batch_size": 16, "shuffle": False},
        "model": {**TINY_MODEL, "num_classes": 12},
        "optimizer": {"optimizer_type": "adamw", "learning_rate": 5.0e-3},
        "runconfig": {"max_steps": 40, "log_steps": 20, "save_checkpoints_steps": 20, "eval_frequency": 20,
                      "seed": 7, "model_dir": str(model_dir), **runconfig},
    }


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


def base_weights(folder: Path, model: torch.nn.Module) -> Path:
    """Fresh weights as convert_checkpoint writes a base model: model.mdl, params.yaml and the vocab beside them."""
    folder.mkdir(parents=True)
    torch.save({"model": model.state_dict()}, folder / "model.mdl")
    write_params(folder / "params.yaml", {"model": dataclasses.asdict(model.config)})
    shutil.copyfile(VOCAB, folder / "vocab.txt")
    return folder / "model.mdl"


def train(params_file: Path, *args: str) -> None:
    assert main(["CPU", "--mode", "train_and_eval", "--params", str(params_file), *args]) == 0


def tiny_ner_run(ner_csv: dict[str, Path], factory: pytest.TempPathFactory) -> Path:
    """The model_dir of a 40-step train_and_eval run (dev entity F1 well above chance), built once."""
    if "ner" not in _BUILT:
        root = factory.mktemp("tiny_ner_run")
        train(write_params(root / "params.yaml", ner_params(ner_csv, root / "run")))
        _BUILT["ner"] = root / "run"
    return _BUILT["ner"]


def tiny_classifier_run(factory: pytest.TempPathFactory) -> Path:
    """The model_dir of a 20-step packed SST-2-style run, built once; dev sentences are never truncated."""
    if "classifier" not in _BUILT:
        root = factory.mktemp("tiny_classifier_run")
        write_classifier_csv(
            DATA / "classifier", VOCAB, root / "csv", do_lower_case=True, max_seq_length=57, labels=None,
            examples_per_shard=1000,
        )
        inputs = {"max_sequence_length": 64, "batch_size": 8, "packing": True, "max_sequences_per_pack": 8}
        params = {
            "train_input": {"data_dir": str(root / "csv" / "train"), **inputs, "shuffle_seed": 1},
            "eval_input": {"data_dir": str(root / "csv" / "dev"), **inputs, "shuffle": False},
            "model": {**TINY_MODEL, "num_classes": 2, "head": "sequence_classification", "max_sequences_per_pack": 8},
            "optimizer": {"optimizer_type": "adamw", "learning_rate": 3.0e-3},
            "runconfig": {"max_steps": 20, "log_steps": 10, "save_checkpoints_steps": 10, "eval_frequency": 10,
                          "seed": 7, "model_dir": str(root / "run")},
        }
        base = base_weights(root / "base", PackedBertForSequenceClassification(BertConfig.from_dict(params["model"])))
        train(write_params(root / "params.yaml", params), "--checkpoint_path", str(base), "--load_checkpoint_states", "model")
        _BUILT["classifier"] = root / "run"
    return _BUILT["classifier"]


def export_checkpoint(run: Path, fmt: str, folder: Path) -> Path:
    """``convert_checkpoint convert RUN/checkpoint_40.mdl --tgt-fmt FMT`` into ``folder``, which must succeed."""
    from modelzoo.tools.convert_checkpoint import main as convert_main

    argv = ["convert", str(run / "checkpoint_40.mdl"), "--src-fmt", "modelzoo", "--tgt-fmt", fmt, "--output-dir", str(folder)]
    assert convert_main(argv) == 0
    return folder
