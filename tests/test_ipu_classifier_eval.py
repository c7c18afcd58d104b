"""IPU evaluation of the sequence classifier, with a STAND-IN for poptorch (tests/poptorch_standin.py).

poptorch runs whole combined batches, so the evaluator repeats examples to fill the last one; the
repeats must count nowhere. Here the dev split (48 sentences) does not fill whole combined batches
of 10, and the IPU evaluation of a CPU-trained checkpoint must report exactly the CPU's figures.
"""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from modelzoo.cli.main import main
from tests.poptorch_standin import StandinPoptorch

TINY_CLASSIFIER = {
    "hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2, "filter_size": 64, "num_classes": 2,
    "head": "sequence_classification", "max_sequences_per_pack": 1,
}


def write_params(path, classifier_csv, model_dir):
    section = {"vocab_file": str(classifier_csv["vocab"]), "max_sequence_length": 32}
    vocab_size = len(classifier_csv["vocab"].read_text(encoding="utf-8").splitlines())
    params = {
        "train_input": {**section, "data_dir": str(classifier_csv["train"]), "batch_size": 8, "drop_last": True},
        "eval_input": {**section, "data_dir": str(classifier_csv["dev"]), "batch_size": 5, "shuffle": False},
        "model": {**TINY_CLASSIFIER, "vocab_size": vocab_size},
        "optimizer": {"learning_rate": 3.0e-3},
        "runconfig": {"max_steps": 8, "save_checkpoints_steps": 0, "model_dir": str(model_dir)},
        "ipu": {"device_iterations": 2},
    }
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return path


def test_ipu_classifier_eval_counts_each_dev_sentence_once(classifier_csv, tmp_path, monkeypatch):
    params = write_params(tmp_path / "params.yaml", classifier_csv, tmp_path / "run")
    assert main(["CPU", "--mode", "train", "--params", str(params)]) == 0
    assert main(["CPU", "--mode", "eval", "--params", str(params)]) == 0
    on_cpu = json.loads((tmp_path / "run" / "eval" / "metrics_step_8.json").read_text())

    monkeypatch.setitem(sys.modules, "poptorch", StandinPoptorch())
    ipu_dir = tmp_path / "ipu"
    checkpoint = tmp_path / "run" / "checkpoint_8.mdl"
    argv = ["IPU", "--mode", "eval", "--params", str(params), "--model_dir", str(ipu_dir), "--checkpoint_path", str(checkpoint)]
    assert main(argv) == 0
    on_ipu = json.loads((ipu_dir / "eval" / "metrics_step_8.json").read_text())

    dev_sentences = len((classifier_csv["raw"] / "dev.tsv").read_text(encoding="utf-8").splitlines()) - 1
    assert dev_sentences % 10 != 0  # the last combined batch is filled with repeats
    assert on_ipu["num_sequences"] == on_cpu["num_sequences"] == dev_sentences
    assert on_ipu["correct"] == on_cpu["correct"]
    assert on_ipu["loss"] == pytest.approx(on_cpu["loss"], rel=1e-5)
