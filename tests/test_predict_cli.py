"""``run.py CPU --mode predict`` end to end with a tiny trained checkpoint.

The strongest check: tagging the eval split's raw words gives, word for word, the tags the model
predicts on the CSV rows evaluation reads, so predict and evaluate see the same pieces and windows.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from data_processing.ner_raw import read_split_file
from modelzoo.bert import BertForTokenClassification
from modelzoo.cli.main import main
from modelzoo.data.labels import LabelVocab
from modelzoo.data.ner_dataset import NerCsvDataset
from modelzoo.params.params import load_params
from modelzoo.predict import runner
from modelzoo.predict.int8 import quantize_int8
from tests.run_fixtures import (
    MAX_SEQUENCE_LENGTH,
    REPO_ROOT,
    model_tensors,
    subprocess_env,
    tiny_params,
    write_params,
)
from tests.test_predict_int8 import int8_linears


@pytest.fixture(scope="module")
def trained(ner_csv, tmp_path_factory):
    """``(params file, model_dir)`` of the tiny model trained 20 steps (newest checkpoint in model_dir)."""
    root = tmp_path_factory.mktemp("predict")
    params = tiny_params(ner_csv, root / "run", runconfig={"max_steps": 20, "save_checkpoints_steps": 0})
    params_file = write_params(root / "params.yaml", params)
    assert main(["CPU", "--mode", "train", "--params", str(params_file)]) == 0
    return params_file, root / "run"


def predict(params_file, capsys, *args: str) -> tuple[int, str, list[str]]:
    """Exit code, stdout and the ``error:`` lines of an in-process ``run.py CPU --mode predict``."""
    capsys.readouterr()
    rc = main(["CPU", "--mode", "predict", "--params", str(params_file), *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return rc, captured.out, [line for line in captured.err.splitlines() if line.startswith("error:")]


def expected_tags(params_file, checkpoint) -> list[list[str]]:
    """The model's tag at every word's first piece, on the CSV rows evaluation reads."""
    params = load_params(params_file)
    dataset = NerCsvDataset.from_params(params.eval_input)
    model = BertForTokenClassification(params.model).eval()
    model.load_state_dict(model_tensors(checkpoint))
    features = dataset.example_features
    with torch.inference_mode():
        predicted = model(
            input_ids=torch.from_numpy(features["input_ids"]), attention_mask=torch.from_numpy(features["attention_mask"])
        ).logits.argmax(-1).numpy()
    tag_of_id = LabelVocab.from_labels([dataset.id2label[i] for i in range(len(dataset.id2label))]).word_tags()
    tags: dict[int, dict[int, str]] = {}
    for row, sentence in enumerate(features["sentence_index"]):
        word_index = features["word_index"][row]
        first = (word_index >= 0) & (word_index != np.concatenate([[-1], word_index[:-1]]))
        for position in np.flatnonzero(first):
            tags.setdefault(int(sentence), {})[int(word_index[position])] = tag_of_id[predicted[row, position]]
    return [[words[i] for i in range(len(words))] for _, words in sorted(tags.items())]


def test_predicted_tags_equal_the_models_tags_on_the_eval_rows(trained, ner_csv, tmp_path, capsys):
    params_file, model_dir = trained
    sentences, _ = read_split_file(ner_csv["raw"] / "test.tsv")
    source = tmp_path / "words.txt"
    source.write_text("".join(" ".join(s.words) + "\n" for s in sentences), encoding="utf-8")
    output = tmp_path / "out.jsonl"
    rc, stdout, errors = predict(params_file, capsys, "--input", str(source), "--pretokenized", "--output", str(output))
    assert (rc, errors, stdout) == (0, [], "")
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [r["words"] for r in records] == [s.words for s in sentences]
    checkpoint = sorted(model_dir.glob("checkpoint_*.mdl"))[-1]
    assert [r["tags"] for r in records] == expected_tags(params_file, checkpoint)


def test_quantize_int8_reaches_the_model_and_keeps_the_words(trained, ner_csv, tmp_path, capsys, monkeypatch):
    """The plumbing of ``--quantize int8`` (what int8 does to a model is tests/test_predict_int8.py)."""
    quantized_layers = []

    def recording_quantize_int8(model, device):
        quantized = quantize_int8(model, device)
        quantized_layers.append((device.type, len(int8_linears(quantized))))
        return quantized

    monkeypatch.setattr(runner, "quantize_int8", recording_quantize_int8)
    params_file, _ = trained
    sentences, _ = read_split_file(ner_csv["raw"] / "test.tsv")
    source = tmp_path / "words.txt"
    source.write_text("".join(" ".join(s.words) + "\n" for s in sentences), encoding="utf-8")
    records = {}
    for precision, extra in (("float", []), ("int8", ["--quantize", "int8"])):
        rc, stdout, errors = predict(params_file, capsys, "--input", str(source), "--pretokenized", *extra)
        assert (rc, errors) == (0, [])
        records[precision] = [json.loads(line) for line in stdout.splitlines()]
    assert quantized_layers == [("cpu", 2 * 4)]  # once, for the int8 run: 2 layers of 4 linears
    assert [r["words"] for r in records["int8"]] == [r["words"] for r in records["float"]] == [s.words for s in sentences]


def test_long_input_is_windowed_and_every_word_tagged(trained, tmp_path, capsys):
    params_file, _ = trained
    words = [f"word{i % 37}" for i in range(5 * MAX_SEQUENCE_LENGTH)]  # several windows of 48 tokens
    source = tmp_path / "long.txt"
    source.write_text(" ".join(words) + "\n", encoding="utf-8")
    rc, stdout, _ = predict(params_file, capsys, "--input", str(source))
    assert rc == 0
    (record,) = [json.loads(line) for line in stdout.splitlines()]
    assert len(record["tags"]) == len(record["words"]) == len(words)
    assert all(tag == "O" or tag[0] in "BI" for tag in record["tags"])


def test_stdin_conll_output_and_blank_lines(trained, tmp_path):
    params_file, _ = trained
    text = "Aspirin reduced the fever.\n\n   \nNaloxone reversed the clonidine effect in rats.\n"
    command = ["CPU", "--mode", "predict", "--params", str(params_file), "--input", "-", "--output_format", "conll",
               "--output_html", str(tmp_path / "page.html")]
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "run.py"), *command], input=text, capture_output=True, text=True,
        cwd=REPO_ROOT, env=subprocess_env(), timeout=300,
    )
    assert result.returncode == 0, result.stderr
    blocks = result.stdout.strip("\n").split("\n\n")
    assert [[row.split("\t")[0] for row in block.splitlines()] for block in blocks] == [
        ["Aspirin", "reduced", "the", "fever", "."],
        ["Naloxone", "reversed", "the", "clonidine", "effect", "in", "rats", "."],
    ]
    assert (tmp_path / "page.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_predict_needs_no_csv_folder_only_the_vocabularies(ner_csv, trained, tmp_path, capsys):
    params_file, model_dir = trained
    params = load_params(params_file).to_dict()
    params["eval_input"]["data_dir"] = str(tmp_path / "absent")
    params["eval_input"]["label_vocab_file"] = str(ner_csv["test"] / "label2id.json")
    params["runconfig"]["model_dir"] = str(model_dir)
    del params["train_input"]
    source = tmp_path / "in.txt"
    source.write_text("Cocaine and haloperidol.\n", encoding="utf-8")
    rc, stdout, errors = predict(write_params(tmp_path / "p.yaml", params), capsys, "--input", str(source))
    assert (rc, errors) == (0, [])
    assert json.loads(stdout)["words"] == ["Cocaine", "and", "haloperidol", "."]


@pytest.mark.parametrize("problem", ["missing file", "empty input", "no checkpoint", "no --input", "input in train mode"])
def test_bad_prediction_requests_are_one_error_line(trained, tmp_path, capsys, problem):
    params_file, _ = trained
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    args = {
        "missing file": ["--input", str(tmp_path / "nope.txt")],
        "empty input": ["--input", str(empty)],
        "no checkpoint": ["--input", str(empty.with_name("x.txt")), "--model_dir", str(tmp_path / "fresh")],
        "no --input": [],
        "input in train mode": ["--input", str(empty)],
    }[problem]
    if problem == "no checkpoint":
        empty.with_name("x.txt").write_text("Some words.\n", encoding="utf-8")
    capsys.readouterr()
    mode = "train" if problem == "input in train mode" else "predict"
    rc = main(["CPU", "--mode", mode, "--params", str(params_file), *args])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert rc == 2
    assert len(errors) == 1, captured.err
    assert "Traceback" not in captured.err
    expected = {"missing file": "not found", "empty input": "no words", "no checkpoint": "no checkpoint",
                "no --input": "--input", "input in train mode": "only for --mode predict"}[problem]
    assert expected in errors[0]
