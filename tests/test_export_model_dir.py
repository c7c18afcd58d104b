"""A model_dir holds what its model needs: with the CSV folders and the base weights deleted, predict,
eval (given a data folder) and export still work from --model_dir alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from modelzoo.bert import BertConfig, BertForTokenClassification
from modelzoo.cli.main import main as run_main
from modelzoo.tools.convert_checkpoint import main as convert_main
from tests.export_runs import base_weights, ner_params, train, write_params


@pytest.fixture(scope="module")
def orphaned_run(ner_csv, tmp_path_factory) -> Path:
    """A run trained from base weights on copied CSV folders, both deleted afterwards."""
    tmp_path = tmp_path_factory.mktemp("orphaned_run")
    data = tmp_path / "csv"
    for split in ("train", "test"):
        shutil.copytree(ner_csv[split], data / split)
    params = ner_params({"train": data / "train", "test": data / "test"}, tmp_path / "run",
                        vocab=tmp_path / "base" / "vocab.txt", max_steps=20, eval_frequency=None)
    base = base_weights(tmp_path / "base", BertForTokenClassification(BertConfig.from_dict(params["model"])))
    train(write_params(tmp_path / "params.yaml", params), "--checkpoint_path", str(base), "--load_checkpoint_states", "model")
    shutil.rmtree(data)
    shutil.rmtree(tmp_path / "base")
    return tmp_path / "run"


def test_model_dir_holds_the_label_vocab_and_the_wordpiece_vocab(orphaned_run, ner_csv):
    assert (orphaned_run / "label2id.json").read_text() == (ner_csv["train"] / "label2id.json").read_text()
    assert (orphaned_run / "vocab.txt").read_text() == Path(ner_csv["vocab"]).read_text()


def test_predict_and_export_from_the_model_dir_alone(orphaned_run, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("Kofi Annan would visit Lisbon .\n", encoding="utf-8")
    assert run_main(["CPU", "--mode", "predict", "--model_dir", str(orphaned_run), "--input", str(tmp_path / "in.txt"),
                     "--output", str(tmp_path / "out.jsonl")]) == 0
    record = json.loads((tmp_path / "out.jsonl").read_text())
    assert record["words"] == ["Kofi", "Annan", "would", "visit", "Lisbon", "."] and len(record["tags"]) == 6
    code = convert_main(["convert", str(orphaned_run / "checkpoint_20.mdl"), "--src-fmt", "modelzoo", "--tgt-fmt", "hf",
                         "--output-dir", str(tmp_path / "hf")])
    assert code == 0 and "README.md" in capsys.readouterr().out
    assert (tmp_path / "hf" / "vocab.txt").read_text() == (orphaned_run / "vocab.txt").read_text()
    assert str(orphaned_run.parent / "base" / "model.mdl") in (tmp_path / "hf" / "README.md").read_text()  # base weights


def params_trained_with(model_dir: Path, path: Path) -> Path:
    """The run's params as in the file it was trained with (the start checkpoint came from the command line)."""
    params = yaml.safe_load((model_dir / "train_and_eval" / "params.yaml").read_text())
    params["runconfig"].update(checkpoint_path=None, load_checkpoint_states=None)
    return write_params(path, params)


def test_eval_given_a_data_folder_takes_the_vocab_from_the_model_dir(orphaned_run, ner_csv, tmp_path):
    params_file = params_trained_with(orphaned_run, tmp_path / "eval.yaml")
    params = yaml.safe_load(params_file.read_text())
    params["eval_input"]["data_dir"] = str(ner_csv["test"])  # the vocab_file still names the deleted base folder
    assert run_main(["CPU", "--mode", "eval", "--params", str(write_params(params_file, params))]) == 0
    assert (orphaned_run / "eval" / "metrics_step_20.json").is_file()


@pytest.mark.parametrize("with_params", [True, False])
def test_model_dir_without_a_checkpoint_is_one_error_line(orphaned_run, tmp_path, capsys, with_params):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "in.txt").write_text("Kofi Annan\n", encoding="utf-8")
    params = ["--params", str(params_trained_with(orphaned_run, tmp_path / "p.yaml"))] if with_params else []
    code = run_main(["CPU", "--mode", "predict", *params, "--model_dir", str(empty), "--input", str(tmp_path / "in.txt")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert ("no checkpoint in" in err) if with_params else ("--params" in err)
