"""``run.py CPU --mode predict`` end to end with a tiny trained checkpoint.

The strongest check: tagging the eval split's raw words gives, word for word, the tags the model
predicts on the CSV rows evaluation reads, so predict and evaluate see the same pieces and windows.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from data_processing.ner_raw import read_split_file
from modelzoo.bert import BertForTokenClassification
from modelzoo.cli.main import main
from modelzoo.data.labels import LabelVocab
from modelzoo.data.ner_dataset import NerCsvDataset
from modelzoo.heads.prediction import PredictOptions
from modelzoo.params.params import load_params
from modelzoo.predict import inference_model
from modelzoo.predict.int8 import quantize_int8
from modelzoo.predict.resume import run_file
from tests.run_fixtures import (
    MAX_SEQUENCE_LENGTH,
    REPO_ROOT,
    model_tensors,
    predict,
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


def expected_tags(params_file, checkpoint) -> tuple[list[list[str]], list[list[float]]]:
    """The model's tag at every word's first piece, on the CSV rows evaluation reads, and its probability."""
    params = load_params(params_file)
    dataset = NerCsvDataset.from_params(params.eval_input)
    model = BertForTokenClassification(params.model).eval()
    model.load_state_dict(model_tensors(checkpoint))
    features = dataset.example_features
    with torch.inference_mode():
        logits = model(
            input_ids=torch.from_numpy(features["input_ids"]), attention_mask=torch.from_numpy(features["attention_mask"])
        ).logits
    probabilities, predicted = (values.numpy() for values in logits.softmax(-1).max(-1))
    tag_of_id = LabelVocab.from_labels([dataset.id2label[i] for i in range(len(dataset.id2label))]).word_tags()
    tags: dict[int, dict[int, tuple[str, float]]] = {}
    for row, sentence in enumerate(features["sentence_index"]):
        word_index = features["word_index"][row]
        first = (word_index >= 0) & (word_index != np.concatenate([[-1], word_index[:-1]]))
        for position in np.flatnonzero(first):
            tag = (tag_of_id[predicted[row, position]], float(probabilities[row, position]))
            tags.setdefault(int(sentence), {})[int(word_index[position])] = tag
    per_sentence = [[words[i] for i in range(len(words))] for _, words in sorted(tags.items())]
    return [[tag for tag, _ in words] for words in per_sentence], [[score for _, score in words] for words in per_sentence]


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
    tags, scores = expected_tags(params_file, checkpoint)
    assert [r["tags"] for r in records] == tags
    assert np.allclose(np.concatenate([r["word_scores"] for r in records]), np.concatenate(scores), atol=1e-4)
    for record in records:
        for entity in record["entities"]:
            assert entity["score"] == min(record["word_scores"][entity["start_word"] : entity["end_word"]])


def test_quantize_int8_reaches_the_model_and_keeps_the_words(trained, ner_csv, tmp_path, capsys, monkeypatch):
    """The plumbing of ``--quantize int8`` (what int8 does to a model is tests/test_predict_int8.py)."""
    quantized_layers = []

    def recording_quantize_int8(model, setup):
        quantized = quantize_int8(model, setup)
        quantized_layers.append((setup.device.type, len(int8_linears(quantized))))
        return quantized

    monkeypatch.setattr(inference_model, "quantize_int8", recording_quantize_int8)
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


def test_int8_computes_in_float32_around_its_kernels_and_float_keeps_its_precision(trained):
    """int8 computes the rest of the model in float32 (the combination whose F1 was measured); the float
    model keeps ``runconfig.precision``, and its engine says why it is torch."""
    params_file, _ = trained
    params = load_params(params_file, {"runconfig.precision": "bfloat16"})
    float_predictor, float_log, _ = inference_model.build_predictor(params, PredictOptions("-"), torch.device("cpu"))
    int8_predictor, int8_log, _ = inference_model.build_predictor(
        params, PredictOptions("-", quantize="int8"), torch.device("cpu")
    )
    assert (float_predictor.tagger.setup.precision, int8_predictor.tagger.setup.precision) == ("bfloat16", "float32")
    assert float_predictor.tagger.skip_padding and int8_predictor.tagger.skip_padding  # the CPU skips it, int8 too
    assert "engine auto: torch (the fused oneDNN layers are float32; runconfig.precision is bfloat16)" in float_log
    assert "engine auto: torch (--quantize int8 has its own fused kernels)" in int8_log


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


PROBLEMS = ["missing file", "directory", "empty input", "no checkpoint", "no --input", "input in train mode",
            "pairs for a tagger", "resume to stdout", "conll scores in jsonl", "score above 1"]


@pytest.mark.parametrize("problem", PROBLEMS)
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
        "directory": ["--input", str(tmp_path)],
        "pairs for a tagger": ["--input", str(empty.with_name("x.txt")), "--pairs"],
        "resume to stdout": ["--input", str(empty.with_name("x.txt")), "--resume"],
        "conll scores in jsonl": ["--input", str(empty.with_name("x.txt")), "--conll_scores"],
        "score above 1": ["--input", str(empty.with_name("x.txt")), "--min_entity_score", "1.5"],
    }[problem]
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
                "no --input": "--input", "input in train mode": "only for --mode predict",
                "directory": "is a directory, not a text file", "pairs for a tagger": "--pairs: only for a sequence classifier",
                "resume to stdout": "--resume: continues an --output", "conll scores in jsonl": "--conll_scores",
                "score above 1": "between 0 and 1"}[problem]
    assert expected in errors[0]


def test_the_threshold_drops_the_entities_scored_below_it(trained, ner_csv, tmp_path, capsys):
    params_file, _ = trained
    sentences, _ = read_split_file(ner_csv["raw"] / "test.tsv")
    source = tmp_path / "words.txt"
    source.write_text("".join(" ".join(s.words) + "\n" for s in sentences), encoding="utf-8")
    _, stdout, _ = predict(params_file, capsys, "--input", str(source), "--pretokenized")
    everything = [json.loads(line) for line in stdout.splitlines()]
    scores = sorted(entity["score"] for record in everything for entity in record["entities"])
    assert len(scores) > 2 and scores[0] < scores[-1]
    threshold = scores[len(scores) // 2]
    rc, stdout, errors = predict(
        params_file, capsys, "--input", str(source), "--pretokenized", "--min_entity_score", str(threshold)
    )
    assert (rc, errors) == (0, [])
    for before, after in zip(everything, map(json.loads, stdout.splitlines()), strict=True):
        assert after["entities"] == [entity for entity in before["entities"] if entity["score"] >= threshold]
        inside = {i for entity in after["entities"] for i in range(entity["start_word"], entity["end_word"])}
        assert [tag for i, tag in enumerate(after["tags"]) if i not in inside] == ["O"] * (len(after["tags"]) - len(inside))


@pytest.mark.parametrize("output_format", ["jsonl", "conll"])
def test_resume_after_a_cut_completes_the_output_as_an_uninterrupted_run(trained, tmp_path, capsys, output_format):
    """A kill can leave the output cut anywhere, even inside a record: ``--resume`` must finish it exactly."""
    params_file, _ = trained
    source = tmp_path / "in.txt"
    lines = [f"Word{i % 13} met word{i % 7} in city{i % 5} ." if i % 9 else "" for i in range(1, 61)]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    base = ["--input", str(source), "--output_format", output_format, "--conll_scores"][: 4 if output_format == "jsonl" else 5]
    base += ["--engine", "torch"]  # one engine in every run: --engine auto's may differ, and its scores in the last digit
    full = tmp_path / "full.out"
    assert predict(params_file, capsys, *base, "--chunk_lines", "8", "--output", str(full))[0] == 0
    expected = full.read_bytes()
    for cut in (0, 1, len(expected) // 3, len(expected) // 2 + 7, len(expected) - 1, len(expected)):
        output = tmp_path / "cut.out"
        output.write_bytes(expected[:cut])
        run_file(output).write_bytes(run_file(full).read_bytes())  # what made the cut file: the same run
        capsys.readouterr()
        rc = main(["CPU", "--mode", "predict", "--params", str(params_file), *base, "--chunk_lines", "8",
                   "--output", str(output), "--resume"])
        err = capsys.readouterr().err
        assert rc == 0, err
        assert output.read_bytes() == expected, cut
        assert f"{len(lines)}/{len(lines)}" in err  # the progress bar, total known for a file


def test_a_line_of_ten_million_characters_is_tagged_in_bounded_memory(trained, tmp_path):
    params_file, _ = trained
    source = tmp_path / "huge.txt"
    line = " ".join(f"word{i % 37}" for i in range(2_000_000))[:10_000_000]
    source.write_text("A short line .\n" + line + "\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    script = (
        "import re, sys; from modelzoo.cli.main import main; "
        f"code = main(['CPU', '--mode', 'predict', '--params', {str(params_file)!r}, '--input', {str(source)!r}, "
        f"'--output', {str(output)!r}]); "
        "print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)); sys.exit(code)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT,
                            env=subprocess_env(), timeout=600)
    assert result.returncode == 0, result.stderr
    short, huge = (json.loads(record) for record in output.read_text(encoding="utf-8").splitlines())
    assert len(huge["words"]) == len(huge["tags"]) == len(huge["word_scores"]) == len(line.split(" "))
    assert huge["text"] == line
    # VmHWM is this process's own peak; ru_maxrss would carry over the peak of the pytest process that spawned it
    peak_bytes = int(result.stdout.split()[-1]) * 1024
    assert peak_bytes < 600e6, peak_bytes  # the bound: offsets as arrays, the record written a slice at a time


def _run_py_predict(params_file, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "run.py"), "CPU", "--mode", "predict", "--params", str(params_file), *args],
        cwd=REPO_ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.slow
def test_kill_9_leaves_whole_records_and_resume_completes_the_file(trained, tmp_path):
    params_file, _ = trained
    source = tmp_path / "in.txt"
    source.write_text("".join(f"Word{i % 13} met word{i % 7} in city{i % 5} on day {i} .\n" for i in range(20_000)),
                      encoding="utf-8")
    common = ["--input", str(source), "--chunk_lines", "100", "--engine", "torch"]  # as in the test above
    full = tmp_path / "full.jsonl"
    assert _run_py_predict(params_file, *common, "--output", str(full)).wait(timeout=600) == 0
    expected = full.read_text(encoding="utf-8")
    output = tmp_path / "killed.jsonl"
    process = _run_py_predict(params_file, *common, "--output", str(output))
    deadline = time.monotonic() + 300
    while (not output.exists() or output.read_text(encoding="utf-8").count("\n") < 300) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0, 0.5))
    process.kill()  # SIGKILL: no handler, no flush, no clean-up runs
    process.wait(timeout=60)
    written = output.read_text(encoding="utf-8")
    whole = written[: written.rfind("\n") + 1]
    assert 0 < len(whole) < len(expected), "the kill must land mid-run"
    assert expected.startswith(whole)
    assert all(json.loads(line)["line"] for line in whole.splitlines())
    resumed = _run_py_predict(params_file, *common, "--output", str(output), "--resume")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    assert output.read_text(encoding="utf-8") == expected


def test_the_page_of_a_big_input_is_capped_and_says_so(trained, tmp_path, capsys):
    params_file, _ = trained
    source = tmp_path / "in.txt"
    source.write_text("".join(f"Word{i} met city{i} .\n" for i in range(7)), encoding="utf-8")
    page = tmp_path / "page.html"
    capsys.readouterr()
    rc = main(["CPU", "--mode", "predict", "--params", str(params_file), "--input", str(source),
               "--output", str(tmp_path / "out.jsonl"), "--output_html", str(page), "--html_max_lines", "3"])
    err = capsys.readouterr().err
    assert rc == 0, err
    html = page.read_text(encoding="utf-8")
    assert html.count('<p class="sentence">') == 3
    assert "shows the first 3 of 7 predicted lines" in html and "shows the first 3 of 7 predicted lines" in err
    assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 7


@pytest.mark.parametrize("link", ["same path", "symlink", "hard link", "page"])
def test_an_output_that_is_the_input_is_refused_before_anything_is_written(trained, tmp_path, capsys, link):
    params_file, _ = trained
    source = tmp_path / "in.txt"
    text = "".join(f"Word{i} met city{i} .\n" for i in range(50))
    source.write_text(text, encoding="utf-8")
    target = tmp_path / "out.txt"
    if link == "symlink":
        target.symlink_to(source)
    elif link == "hard link":
        target.hardlink_to(source)
    flag = "--output_html" if link == "page" else "--output"
    output = str(source) if link in ("same path", "page") else str(target)
    rc, stdout, errors = predict(params_file, capsys, "--input", str(source), flag, output)
    assert (rc, stdout, len(errors)) == (2, "", 1) and "is the input file" in errors[0]
    assert source.read_text(encoding="utf-8") == text


def _write_then_resume(params_file, capsys, tmp_path, source, *changed: str):
    """Predict ``source`` into out.jsonl, keep its first half, then resume it with ``changed`` options."""
    output = tmp_path / "out.jsonl"
    assert predict(params_file, capsys, "--input", str(source), "--output", str(output))[0] == 0
    written = output.read_text(encoding="utf-8")
    output.write_text(written[: len(written) // 2], encoding="utf-8")
    kept = output.read_bytes()
    rc, _, errors = predict(params_file, capsys, *changed, "--output", str(output), "--resume")
    return rc, errors, kept, output


def test_resuming_the_output_of_another_input_is_refused(trained, tmp_path, capsys):
    params_file, _ = trained
    source, other = tmp_path / "in.txt", tmp_path / "other.txt"
    source.write_text("".join(f"Word{i} met city{i} .\n" for i in range(40)), encoding="utf-8")
    other.write_text("".join(f"Other{i} saw town{i} .\n" for i in range(40)), encoding="utf-8")
    rc, errors, kept, output = _write_then_resume(params_file, capsys, tmp_path, source, "--input", str(other))
    assert rc == 2 and len(errors) == 1 and "was not made from input line 1" in errors[0]
    assert output.read_bytes() == kept  # nothing cut, nothing appended


def test_resuming_with_other_options_is_refused(trained, tmp_path, capsys):
    params_file, _ = trained
    source = tmp_path / "in.txt"
    source.write_text("".join(f"Word{i} met city{i} .\n" for i in range(40)), encoding="utf-8")
    changed = ["--input", str(source), "--output_format", "conll"]
    rc, errors, kept, output = _write_then_resume(params_file, capsys, tmp_path, source, *changed)
    assert rc == 2 and len(errors) == 1 and "written by another run (output_format None then, 'conll' now)" in errors[0]
    assert output.read_bytes() == kept


def test_resuming_with_another_checkpoint_is_refused(trained, tmp_path, capsys):
    params_file, model_dir = trained
    source = tmp_path / "in.txt"
    source.write_text("".join(f"Word{i} met city{i} .\n" for i in range(40)), encoding="utf-8")
    (checkpoint,) = Path(model_dir).glob("checkpoint_*.mdl")
    other = tmp_path / "other.mdl"
    contents = torch.load(checkpoint, map_location="cpu", weights_only=True)
    contents["model"]["classifier.bias"] = contents["model"]["classifier.bias"] + 1.0
    torch.save(contents, other)
    output = tmp_path / "out.jsonl"
    common = ["--input", str(source), "--output", str(output)]
    assert predict(params_file, capsys, "--checkpoint_path", str(checkpoint), *common)[0] == 0
    kept = output.read_bytes()
    rc, _, errors = predict(params_file, capsys, "--checkpoint_path", str(other), *common, "--resume")
    assert rc == 2 and len(errors) == 1 and "written by another run (checkpoint" in errors[0]
    assert output.read_bytes() == kept
