"""``--mode predict --output_format doccano|labelstudio``: what the tools import, and the round trip back in.

The round trip is the point: predictions exported for Label Studio (or doccano) and read back by
``write_csv_ner.py --format labelstudio --use_predictions`` (or ``--format jsonl``) give exactly
the entities predict found, word for word, so a corrected export trains on what was shown.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_processing.write_csv_ner import main as write_csv
from modelzoo.cli.main import main as run_main
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE
from modelzoo.data.ner_dataset import NerCsvDataset
from modelzoo.data.raw_words import split_words
from modelzoo.heads.token_classification.annotation_formats import (
    LabelStudioList,
    doccano_json_line,
    labelstudio_task,
)
from modelzoo.heads.token_classification.records import make_prediction
from modelzoo.heads.token_classification.spans import entity_spans
from modelzoo.predict.resume import run_file
from tests.export_runs import DATA, VOCAB, raw_sentences


def test_doccano_line_and_labelstudio_task_hold_the_entities_offsets_and_scores():
    text = "Kofi Annan visited Accra ."
    prediction = make_prediction(7, text, split_words(text), ["B-PER", "I-PER", "O", "B-LOC", "O"],
                                 [0.9, 0.81234, 0.99, 0.7, 0.95])
    assert json.loads(doccano_json_line(prediction)) == {"line": 7, "text": text, "label": [[0, 10, "PER"], [19, 24, "LOC"]]}
    task = labelstudio_task(prediction, "ner", "body")
    assert task["data"] == {"text": text, "line": 7}
    (annotation,) = task["predictions"]
    assert annotation["score"] == 0.7  # the least sure word: the task to review first sorts first
    assert annotation["result"] == [
        {"id": "line7-0", "from_name": "ner", "to_name": "body", "type": "labels",
         "value": {"start": 0, "end": 10, "text": "Kofi Annan", "labels": ["PER"]}, "score": 0.8123},
        {"id": "line7-1", "from_name": "ner", "to_name": "body", "type": "labels",
         "value": {"start": 19, "end": 24, "text": "Accra", "labels": ["LOC"]}, "score": 0.7},
    ]
    tasks = LabelStudioList()
    streamed = tasks.render(prediction) + tasks.render(prediction) + tasks.closing()
    assert json.loads(streamed) == [labelstudio_task(prediction)] * 2
    assert LabelStudioList().closing() == ""


@pytest.fixture(scope="module")
def predicted(ner_run, tmp_path_factory):
    """The tiny model's predictions on the test split's sentences as jsonl, labelstudio and doccano files."""
    root = tmp_path_factory.mktemp("annotation_formats")
    source = root / "input.txt"
    source.write_text("".join(line + "\n" for line in raw_sentences(DATA / "ner" / "test.tsv")), encoding="utf-8")
    outputs = {}
    for output_format, name in (("jsonl", "jsonl/test.jsonl"), ("labelstudio", "labelstudio/test.json"),
                                ("doccano", "doccano/test.jsonl")):
        outputs[output_format] = root / name
        outputs[output_format].parent.mkdir()
        code = run_main(["CPU", "--mode", "predict", "--model_dir", str(ner_run), "--input", str(source),
                         "--output", str(outputs[output_format]), "--output_format", output_format])
        assert code == 0
    return outputs


def predicted_entities(jsonl_output: Path) -> list:
    records = [json.loads(line) for line in jsonl_output.read_text(encoding="utf-8").splitlines()]
    return [[(e["type"], e["start_word"], e["end_word"]) for e in record["entities"]] for record in records]


@pytest.mark.parametrize(("output_format", "read_as"), [("labelstudio", ["--format", "labelstudio", "--use_predictions"]),
                                                         ("doccano", ["--format", "jsonl"])])
def test_exported_predictions_read_back_give_the_predicted_entities_exactly(
    predicted, ner_run, tmp_path, output_format, read_as
):
    expected = predicted_entities(predicted["jsonl"])
    assert sum(map(len, expected)) > 10  # the tiny model finds entities: the comparison is not between empty lists
    code = write_csv(["--data_dir", str(predicted[output_format].parent), "--vocab_file", str(VOCAB), "--output_dir",
                      str(tmp_path / "csv"), "--do_lower_case", "--label_vocab_file", str(ner_run / LABEL_VOCAB_FILE),
                      *read_as])
    assert code == 0
    read_back = NerCsvDataset(tmp_path / "csv" / "test", VOCAB, 48).word_labels()
    assert [[(span.type, span.start, span.stop) for span in entity_spans(tags)] for tags in read_back] == expected


def test_labelstudio_output_is_one_json_list_with_the_names_given(predicted, ner_run, tmp_path):
    tasks = json.loads(predicted["labelstudio"].read_text(encoding="utf-8"))
    assert len(tasks) == len(raw_sentences(DATA / "ner" / "test.tsv"))
    results = [result for task in tasks for result in task["predictions"][0]["result"]]
    assert {(r["from_name"], r["to_name"]) for r in results} == {("label", "text")}
    assert all(0 <= r["score"] <= 1 for r in results)
    output = tmp_path / "named.json"
    source = predicted["jsonl"].parent.parent / "input.txt"
    assert run_main(["CPU", "--mode", "predict", "--model_dir", str(ner_run), "--input", str(source), "--output",
                     str(output), "--output_format", "labelstudio", "--ls_from_name", "ner", "--ls_to_name", "body"]) == 0
    named = [r for task in json.loads(output.read_text()) for r in task["predictions"][0]["result"]]
    assert named and {(r["from_name"], r["to_name"]) for r in named} == {("ner", "body")}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--output_format", "labelstudio", "--resume"], "--resume: --output_format labelstudio is one JSON list"),
        (["--ls_from_name", "ner"], "--ls_from_name, --ls_to_name: only for --output_format labelstudio"),
    ],
)
def test_options_that_cannot_work_are_one_error_line(ner_run, tmp_path, capsys, args, expected):
    output = tmp_path / "out.json"
    code = run_main(["CPU", "--mode", "predict", "--model_dir", str(ner_run), "--input", str(DATA / "ner" / "test.tsv"),
                     "--output", str(output), *args])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"error: {expected}")
    assert not output.exists()


def test_doccano_output_resumes_like_jsonl(predicted, ner_run, tmp_path):
    complete = predicted["doccano"].read_text(encoding="utf-8")
    lines = complete.splitlines(keepends=True)
    partial = tmp_path / "test.jsonl"
    partial.write_text("".join(lines[:5]) + lines[5][:10], encoding="utf-8")  # killed in the middle of a record
    run_file(partial).write_bytes(run_file(predicted["doccano"]).read_bytes())  # what made it: the same run
    source = tmp_path / "input.txt"
    source.write_text("".join(line + "\n" for line in raw_sentences(DATA / "ner" / "test.tsv")), encoding="utf-8")
    assert run_main(["CPU", "--mode", "predict", "--model_dir", str(ner_run), "--input", str(source), "--output",
                     str(partial), "--output_format", "doccano", "--resume"]) == 0
    assert partial.read_text(encoding="utf-8") == complete
