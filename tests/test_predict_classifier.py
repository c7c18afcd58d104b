"""``--mode predict`` with ``model.head: sequence_classification``: a label per line, as evaluation gives it.

The strongest check: predicting the dev sentences' raw text gives each sentence the label the model
gives it on the packed CSV rows evaluation reads, so the accuracy is evaluation's, to the last digit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from modelzoo.bert import PackedBertForSequenceClassification
from modelzoo.cli.main import main
from modelzoo.data.classifier_dataset import ClassifierDataset
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE
from modelzoo.params.params import load_params
from tests.run_fixtures import model_tensors, predict, write_params

SLOTS = 4
MAX_SEQUENCE_LENGTH = 48


@pytest.fixture(scope="module")
def classifier_run(classifier_csv, tmp_path_factory):
    """``(params file, model_dir, dev sentences, their gold labels)`` of a tiny packed classifier
    trained and evaluated on the synthetic sentiment sentences."""
    root = tmp_path_factory.mktemp("predict_classifier")
    vocab = classifier_csv["vocab"]
    section = {"vocab_file": str(vocab), "max_sequence_length": MAX_SEQUENCE_LENGTH, "packing": True,
               "max_sequences_per_pack": SLOTS}
    params = {
        "train_input": {**section, "data_dir": str(classifier_csv["train"]), "batch_size": 8, "drop_last": True},
        "eval_input": {**section, "data_dir": str(classifier_csv["dev"]), "batch_size": 4, "shuffle": False},
        "model": {"hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2, "filter_size": 64, "num_classes": 2,
                  "vocab_size": len(vocab.read_text(encoding="utf-8").splitlines()), "head": "sequence_classification",
                  "max_sequences_per_pack": SLOTS},
        "optimizer": {"learning_rate": 1.0e-3},
        "runconfig": {"max_steps": 80, "log_steps": 40, "save_checkpoints_steps": 0, "seed": 5,
                      "model_dir": str(root / "run")},
    }
    params_file = write_params(root / "params.yaml", params)
    assert main(["CPU", "--mode", "train_and_eval", "--params", str(params_file)]) == 0
    rows = (classifier_csv["raw"] / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    sentences, labels = zip(*(row.split("\t") for row in rows), strict=True)
    return params_file, root / "run", list(sentences), list(labels)


def evaluation_labels(params_file, checkpoint) -> list[int]:
    """The model's label id for every dev sequence on the packed rows evaluation reads."""
    params = load_params(params_file)
    dataset = ClassifierDataset.from_params(params.eval_input, 0, SLOTS)
    model = PackedBertForSequenceClassification(params.model).eval()
    model.load_state_dict(model_tensors(checkpoint))
    features = {name: torch.from_numpy(dataset.features[name])
                for name in ("input_ids", "attention_mask", "token_type_ids", "position_ids")}
    with torch.inference_mode():
        predicted = model(**features).logits.argmax(-1).numpy()
    sequence = dataset.features["sequence_index"].flatten()
    labels = np.full(len(dataset.examples), -1)
    labels[sequence[sequence >= 0]] = predicted[sequence >= 0]
    return labels.tolist()


def test_predicted_labels_are_evaluations_and_so_is_the_accuracy(classifier_run, tmp_path, capsys):
    params_file, model_dir, sentences, gold = classifier_run
    source = tmp_path / "dev.txt"
    source.write_text("".join(sentence + "\n" for sentence in sentences), encoding="utf-8")
    page = tmp_path / "page.html"
    rc, stdout, errors = predict(params_file, capsys, "--input", str(source), "--output_html", str(page))
    assert (rc, errors) == (0, [])
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [record["line"] for record in records] == list(range(1, len(sentences) + 1))
    assert [record["text"] for record in records] == sentences
    for record in records:
        assert set(record["scores"]) == {"0", "1"}
        assert record["score"] == max(record["scores"].values())
        assert record["scores"][record["label"]] == record["score"]
        assert sum(record["scores"].values()) == pytest.approx(1.0, abs=1e-3)
    checkpoint = sorted(model_dir.glob("checkpoint_*.mdl"))[-1]
    label2id = json.loads((Path(load_params(params_file).eval_input.data_dir) / LABEL_VOCAB_FILE).read_text())
    assert [label2id[record["label"]] for record in records] == evaluation_labels(params_file, checkpoint)
    accuracy = json.loads(next((model_dir / "eval").glob("metrics_step_*.json")).read_text())["accuracy"]
    assert sum(record["label"] == label for record, label in zip(records, gold, strict=True)) / len(gold) == accuracy
    assert len({record["label"] for record in records}) == 2  # the tiny model tells the two apart
    html = page.read_text(encoding="utf-8")
    assert html.count('<tr class="classified">') == len(sentences)


def test_pairs_need_a_tab_on_every_line(classifier_run, tmp_path, capsys):
    params_file, *_ = classifier_run
    source = tmp_path / "pairs.txt"
    source.write_text("a warm story\tthe acting was great\nno tab on this line\n", encoding="utf-8")
    rc, _, errors = predict(params_file, capsys, "--input", str(source), "--pairs")
    assert rc == 2 and len(errors) == 1
    assert f"{source}:2: --pairs" in errors[0]


def test_a_pair_gets_one_label(classifier_run, tmp_path, capsys):
    params_file, *_ = classifier_run
    source = tmp_path / "pairs.txt"
    source.write_text("a warm story\tthe acting was great\n\ndull\tbadly acted\n", encoding="utf-8")
    rc, stdout, errors = predict(params_file, capsys, "--input", str(source), "--pairs")
    assert (rc, errors) == (0, [])
    assert [json.loads(line)["line"] for line in stdout.splitlines()] == [1, 3]


@pytest.mark.parametrize(
    "option", [["--pretokenized"], ["--output_format", "conll"], ["--min_entity_score", "0.5"],
               ["--output_format", "conll", "--conll_scores"]],
)
def test_token_options_are_refused_for_a_sequence_classifier(classifier_run, tmp_path, capsys, option):
    params_file, *_ = classifier_run
    source = tmp_path / "in.txt"
    source.write_text("a warm story\n", encoding="utf-8")
    rc, stdout, errors = predict(params_file, capsys, "--input", str(source), *option)
    assert (rc, stdout, len(errors)) == (2, "", 1)
    assert option[0] in errors[0] and "only for a token classifier" in errors[0]
