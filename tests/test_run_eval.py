"""``run.py --mode eval``: the reported scores agree with seqeval on the model's real predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2
from sklearn.metrics import f1_score
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from modelzoo.checkpoint.training import load_model_weights
from modelzoo.cli.main import main
from modelzoo.common.distributed import DistContext
from modelzoo.heads import build_task
from modelzoo.metrics import word_tags
from modelzoo.params.params import load_params
from tests.run_fixtures import EVAL_SENTENCES, tiny_params, write_params


@torch.inference_mode()
def predicted_word_tags(params_file, checkpoint) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted tags of every eval word, recomputed here from the checkpoint."""
    params = load_params(params_file)
    task = build_task(params)
    model = task.build_model()
    load_model_weights(model, checkpoint)
    model.eval()
    parts = {"predictions": [], "word_index": [], "sentence_index": [], "labels": []}
    for batch in task.dataloader("eval_input", DistContext()):
        logits = model(**{key: batch[key] for key in task.model_input_keys}).logits
        parts["predictions"].append(logits.argmax(-1).numpy())
        for key in ("word_index", "sentence_index", "labels"):
            parts[key].append(batch[key].numpy())
    merged = {key: np.concatenate(arrays) for key, arrays in parts.items()}
    dataset = task.dataset("eval_input")
    id_to_label = [dataset.id2label[i] for i in range(len(dataset.id2label))]
    return word_tags(
        merged["predictions"], merged["word_index"], merged["sentence_index"], merged["labels"], id_to_label
    )


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # seqeval's averages over empty type lists
def test_eval_scores_match_seqeval_over_every_raw_word(ner_csv, tmp_path, capsys):
    model_dir = tmp_path / "run"
    params = tiny_params(
        ner_csv,
        model_dir,
        optimizer={"learning_rate": 1.0e-2},
        runconfig={"max_steps": 60, "save_checkpoints_steps": 0},
    )
    params_file = write_params(tmp_path / "p.yaml", params)
    assert main(["CPU", "--mode", "train", "--params", str(params_file)]) == 0
    capsys.readouterr()
    assert main(["CPU", "--mode", "eval", "--params", str(params_file)]) == 0
    printed = capsys.readouterr().out
    assert (model_dir / "eval" / "params.yaml").is_file() and (model_dir / "train" / "params.yaml").is_file()

    report = json.loads((model_dir / "eval" / "metrics_step_60.json").read_text())
    scores = report["scores"]
    raw_lines = (ner_csv["raw"] / "test.tsv").read_text().splitlines()
    assert scores["num_words"] == sum(1 for line in raw_lines if line.strip())
    assert scores["num_sentences"] == EVAL_SENTENCES
    assert "overall (micro)" in printed and all(kind in printed for kind in ("PER", "LOC", "ORG", "MISC"))

    gold, pred = predicted_word_tags(params_file, model_dir / "checkpoint_60.mdl")
    assert sum(tag.startswith("B-") for sentence in pred for tag in sentence) > 0, "the model predicts no entity"
    expected = classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    types = ("LOC", "MISC", "ORG", "PER")
    pairs = [(scores["per_type"][kind], expected[kind]) for kind in types] + [(scores["overall"], expected["micro avg"])]
    for ours, theirs in pairs:
        assert ours["precision"] == pytest.approx(theirs["precision"], abs=1e-12)
        assert ours["recall"] == pytest.approx(theirs["recall"], abs=1e-12)
        assert ours["f1"] == pytest.approx(theirs["f1-score"], abs=1e-12)
        assert ours["support"] == theirs["support"]
    assert set(scores["per_type"]) == set(types)
    flat_gold = [tag for sentence in gold for tag in sentence]
    flat_pred = [tag for sentence in pred for tag in sentence]
    token_f1 = f1_score(flat_gold, flat_pred, labels=["B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER"], average="macro", zero_division=0)
    assert scores["token_macro_f1"] == pytest.approx(token_f1, abs=1e-12)

    events = EventAccumulator(str(model_dir / "eval"))
    events.Reload()
    assert events.Scalars("f1")[-1].value == pytest.approx(scores["overall"]["f1"], abs=1e-6)
    assert events.Scalars("f1")[-1].step == 60
