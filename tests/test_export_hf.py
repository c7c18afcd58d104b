"""Export to Hugging Face: the pipeline loads the folder as is and finds our predict's spans; and back, bit-exact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from modelzoo.checkpoint.files import load_mdl, read_checkpoint
from modelzoo.cli.main import main as run_main
from modelzoo.tools.convert_checkpoint import main as convert_main
from tests.export_runs import DATA, export_checkpoint, raw_sentences, tiny_classifier_run

ENTITY_TYPES = {"LOC", "MISC", "ORG", "PER"}


def convert(capsys, *argv) -> tuple[int, str, str]:
    code = convert_main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def ner_export(ner_run, tmp_path_factory) -> Path:
    return export_checkpoint(ner_run, "hf", tmp_path_factory.mktemp("ner_export") / "hf")


def spans_of_our_predict(model_dir: Path, sentences: list[str], tmp_path: Path) -> list[set[tuple[str, int, int]]]:
    (tmp_path / "dev.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    output = tmp_path / "ours.jsonl"
    assert run_main(["CPU", "--mode", "predict", "--model_dir", str(model_dir), "--checkpoint_path",
                     str(model_dir / "checkpoint_40.mdl"), "--input", str(tmp_path / "dev.txt"), "--output", str(output)]) == 0
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    return [{(e["type"], e["start"], e["end"]) for e in record["entities"]} for record in records]


def agreement(ours: list[set], theirs: list[set]) -> tuple[float, int]:
    same = sum(len(a & b) for a, b in zip(ours, theirs, strict=True))
    either = sum(len(a | b) for a, b in zip(ours, theirs, strict=True))
    return same / max(either, 1), either


def test_pipeline_on_the_exported_folder_finds_our_spans_with_the_project_labels(ner_run, ner_export, tmp_path):
    from transformers import pipeline

    sentences = raw_sentences(DATA / "ner" / "test.tsv")
    ours = spans_of_our_predict(ner_run, sentences, tmp_path)
    tagger = pipeline("token-classification", model=str(ner_export), aggregation_strategy="first")
    found = [tagger(sentence) for sentence in sentences]
    theirs = [{(e["entity_group"], e["start"], e["end"]) for e in entities} for entities in found]
    share, entities = agreement(ours, theirs)
    assert entities >= 40  # a trained model: the test compares real entities, not two empty lists
    assert share >= 0.999
    assert {e["entity_group"] for entities in found for e in entities} <= ENTITY_TYPES


def test_folder_holds_labels_tokenizer_and_card(ner_run, ner_export):
    names = {path.name for path in ner_export.iterdir()}
    assert {"config.json", "model.safetensors", "label2id.json", "vocab.txt", "tokenizer.json",
            "tokenizer_config.json", "special_tokens_map.json", "README.md"} <= names
    config = json.loads((ner_export / "config.json").read_text())
    project = json.loads((ner_run / "label2id.json").read_text())
    assert json.loads((ner_export / "label2id.json").read_text()) == project
    for label, index in project.items():  # the special labels read as O, the others keep their names
        assert config["id2label"][str(index)] == ("O" if label in {"[PAD]", "X", "[CLS]", "[SEP]"} else label)
    assert config["label2id"]["O"] == project["O"] and config["architectures"] == ["BertForTokenClassification"]
    tokenizer_config = json.loads((ner_export / "tokenizer_config.json").read_text())
    assert tokenizer_config["do_lower_case"] is True and tokenizer_config["model_max_length"] == 64
    card = (ner_export / "README.md").read_text()
    figures = json.loads((ner_run / "eval" / "metrics_step_40.json").read_text())
    assert f"| overall (micro) | {figures['scores']['overall']['precision']:.4f}" in card
    assert "--tgt-fmt hf" in card and "learning_rate: 0.005" in card and "`B-PER` | `B-PER`" in card


def test_export_then_back_is_bit_exact(ner_run, ner_export, tmp_path, capsys):
    code, out, _ = convert(capsys, "convert", ner_export, "--src-fmt", "hf", "--tgt-fmt", "modelzoo", "--output-dir",
                           tmp_path / "back")
    assert code == 0 and "label2id.json" in out
    back, config = read_checkpoint(tmp_path / "back", "modelzoo")
    original = load_mdl(ner_run / "checkpoint_40.mdl")["model"]
    assert set(back) == set(original) and all(torch.equal(back[key], original[key]) for key in original)
    assert config.num_classes == 12
    assert (tmp_path / "back" / "label2id.json").read_text() == (ner_run / "label2id.json").read_text()


def test_sequence_classifier_export_gives_our_eval_labels(tmp_path_factory, tmp_path, capsys):
    from transformers import pipeline

    run = tiny_classifier_run(tmp_path_factory)
    code, _, _ = convert(capsys, "convert", run / "checkpoint_20.mdl", "--src-fmt", "modelzoo", "--tgt-fmt", "hf",
                         "--output-dir", tmp_path / "hf")
    assert code == 0
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and config["id2label"] == {"0": "0", "1": "1"}
    rows = [line.rsplit("\t", 1) for line in (DATA / "classifier" / "dev.tsv").read_text().splitlines()[1:] if line]
    predicted = [result["label"] for result in pipeline("text-classification", model=str(tmp_path / "hf"))(
        [sentence for sentence, _ in rows])]
    ours = json.loads((run / "eval" / "metrics_step_20.json").read_text())
    assert sum(label == gold for label, (_, gold) in zip(predicted, rows, strict=True)) == ours["correct"]
    assert len(set(predicted)) == 2  # both classes predicted: the comparison can fail
    # and back: the HF sequence classifier becomes our packed classifier, bit-exact
    code, _, _ = convert(capsys, "convert", tmp_path / "hf", "--src-fmt", "hf", "--tgt-fmt", "modelzoo", "--output-dir",
                         tmp_path / "back")
    back, back_config = read_checkpoint(tmp_path / "back", "modelzoo")
    original = load_mdl(run / "checkpoint_20.mdl")["model"]
    assert code == 0 and back_config.head == "sequence_classification"
    assert set(back) == set(original) and all(torch.equal(back[key], original[key]) for key in original)
    assert set(load_file(tmp_path / "hf" / "model.safetensors")) >= {"bert.pooler.dense.weight", "classifier.weight"}


def test_label_vocab_of_another_size_is_one_error_and_no_folder(ner_run, tmp_path, capsys):
    labels = tmp_path / "label2id.json"
    project = json.loads((ner_run / "label2id.json").read_text())
    labels.write_text(json.dumps({**project, "B-EXTRA": len(project)}))
    code, _, err = convert(capsys, "convert", ner_run / "checkpoint_40.mdl", "--src-fmt", "modelzoo", "--tgt-fmt", "hf",
                           "--output-dir", tmp_path / "out", "--label-vocab", labels)
    assert code == 2 and err.count("\n") == 1 and "13 labels but the classifier has 12 outputs" in err
    assert not (tmp_path / "out").exists() and not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_output_folder_with_files_is_one_error_and_untouched(ner_run, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    code, _, err = convert(capsys, "convert", ner_run / "checkpoint_40.mdl", "--src-fmt", "modelzoo", "--tgt-fmt", "hf",
                           "--output-dir", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and "exists and is not empty" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_checkpoint_without_a_label_vocab_in_reach_names_the_flag(ner_run, tmp_path, capsys):
    shutil.copyfile(ner_run / "checkpoint_40.mdl", tmp_path / "checkpoint_40.mdl")
    code, _, err = convert(capsys, "convert", tmp_path / "checkpoint_40.mdl", "--src-fmt", "modelzoo", "--tgt-fmt", "hf",
                           "--output-dir", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and "--label-vocab" in err
    assert not (tmp_path / "out").exists()
    code, out, _ = convert(capsys, "convert", tmp_path / "checkpoint_40.mdl", "--src-fmt", "modelzoo", "--tgt-fmt", "hf",
                           "--output-dir", tmp_path / "out", "--label-vocab", ner_run / "label2id.json",
                           "--vocab-file", ner_run / "vocab.txt")
    assert code == 0 and "README.md" in out


def test_a_run_converted_to_cs21_then_to_hf_keeps_its_labels_and_says_when_it_cannot(ner_run, ner_export, tmp_path, capsys):
    code, out, _ = convert(capsys, "convert", ner_run / "checkpoint_40.mdl", "--src-fmt", "modelzoo", "--tgt-fmt", "cs-2.1",
                           "--output-dir", tmp_path / "cs")
    assert code == 0 and {"label2id.json", "vocab.txt"} <= {path.name for path in (tmp_path / "cs").iterdir()}
    code, out, _ = convert(capsys, "convert", tmp_path / "cs", "--src-fmt", "cs-2.1", "--tgt-fmt", "hf",
                           "--output-dir", tmp_path / "hf")
    assert code == 0 and "no label2id.json" not in out
    exported = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert exported["id2label"] == json.loads((ner_export / "config.json").read_text())["id2label"]
    assert {"tokenizer.json", "README.md"} <= {path.name for path in (tmp_path / "hf").iterdir()}
    (tmp_path / "cs" / "label2id.json").unlink()
    code, out, _ = convert(capsys, "convert", tmp_path / "cs", "--src-fmt", "cs-2.1", "--tgt-fmt", "hf",
                           "--output-dir", tmp_path / "bare")
    assert code == 0 and f"no label2id.json beside {tmp_path / 'cs'}: config.json names no labels" in out
