"""model.class_weights: an explicit list or auto from the train split; the training loss only, default off.
The sequence classifier refuses it, and document context, rather than ignore them."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modelzoo.bert.config import BertConfig
from modelzoo.bert.heads import BertForTokenClassification, masked_cross_entropy
from modelzoo.cli.main import main
from modelzoo.common.errors import ParamsError
from modelzoo.data.class_weights import frequency_class_weights
from modelzoo.heads import build_task
from modelzoo.params.params import load_params
from tests.poptorch_standin import StandinPoptorch
from tests.run_fixtures import tiny_params, write_params

TINY = {"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 1, "num_heads": 2, "filter_size": 32, "num_classes": 4}


def test_auto_weights_are_inverse_square_root_shares_averaging_one_over_the_loss_positions():
    labels = np.array([0] * 90 + [1] * 9 + [2] * 1 + [3] * 50)
    loss_mask = np.array([1] * 100 + [0] * 50)  # label 3 only where the loss does not count
    weights = frequency_class_weights(labels, loss_mask, 5)
    share = np.array([0.9, 0.09, 0.01])
    assert weights[0] / weights[2] == pytest.approx((share[2] / share[0]) ** 0.5)
    assert weights[1] / weights[2] == pytest.approx((share[2] / share[1]) ** 0.5)
    assert float(np.dot(share, weights[:3])) == pytest.approx(1.0)
    assert weights[3:] == [1.0, 1.0]


def test_weighted_loss_is_the_weighted_sum_over_the_counted_positions():
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 5, 4), torch.randint(0, 4, (2, 5))
    loss_mask = torch.tensor([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]])
    weights = torch.tensor([0.5, 2.0, 1.0, 3.0])
    terms = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none") * weights[labels.flatten()]
    expected = (terms * loss_mask.flatten()).sum() / loss_mask.sum()
    assert torch.allclose(masked_cross_entropy(logits, labels, loss_mask, weights), expected, atol=1e-6)
    assert not torch.allclose(masked_cross_entropy(logits, labels, loss_mask), expected, atol=1e-3)


def test_the_weights_shape_the_training_loss_only_and_are_not_saved():
    torch.manual_seed(0)
    config = BertConfig(**TINY, class_weights=[0.1, 5.0, 1.0, 1.0], dropout_rate=0.0, attention_dropout_rate=0.0)
    model = BertForTokenClassification(config)
    ids, labels = torch.randint(1, 50, (2, 6)), torch.tensor([[0, 1, 1, 2, 3, 1], [1, 1, 0, 0, 2, 3]])
    training = model.train()(input_ids=ids, labels=labels)
    evaluation = model.eval()(input_ids=ids, labels=labels)
    plain = masked_cross_entropy(evaluation.logits, labels, torch.ones_like(labels))
    weighted = masked_cross_entropy(evaluation.logits, labels, torch.ones_like(labels), torch.tensor(config.class_weights))
    assert torch.allclose(evaluation.loss, plain) and torch.allclose(training.loss, weighted)
    assert "class_weights" not in model.state_dict()


def test_default_is_off_and_bad_lists_are_refused():
    assert BertConfig(**TINY).class_weights is None
    assert BertConfig.from_dict({**TINY, "class_weights": "auto"}).class_weights == "auto"
    for bad in ([1.0, 1.0], [1.0, -1.0, 1.0, 1.0], "balanced"):
        with pytest.raises(ParamsError, match="class_weights"):
            BertConfig.from_dict({**TINY, "class_weights": bad})


def test_auto_takes_the_train_splits_frequencies_and_trains(ner_csv, tmp_path, capsys):
    params = tiny_params(ner_csv, tmp_path / "run", runconfig={"max_steps": 2, "log_steps": 1, "save_checkpoints_steps": 0})
    params["model"]["class_weights"] = "auto"
    path = write_params(tmp_path / "params.yaml", params)
    task = build_task(load_params(path))
    model = task.build_model()
    features = task.dataset("train_input").example_features
    expected = frequency_class_weights(features["labels"], features["loss_mask"], params["model"]["num_classes"])
    assert torch.allclose(model.class_weights, torch.tensor(expected))
    o_label = task.dataset("train_input").label2id["O"]
    assert model.class_weights[o_label] == model.class_weights.min()  # the commonest label weighs least
    capsys.readouterr()
    assert main(["CPU", "--mode", "train", "--params", str(path)]) == 0
    assert "model.class_weights auto: " in capsys.readouterr().out


@pytest.mark.parametrize("option", ["model.class_weights", "train_input.context_tokens"])
def test_the_sequence_classifier_refuses_the_token_classifiers_options(option, classifier_csv, ner_csv, tmp_path, capsys):
    params = tiny_params(ner_csv, tmp_path / "run", runconfig={"max_steps": 1})
    params["model"].update(num_classes=2, head="sequence_classification")
    params["train_input"]["data_dir"] = str(classifier_csv["train"])
    params["eval_input"]["data_dir"] = str(classifier_csv["dev"])
    section, key = option.split(".")
    params[section][key] = [1.0, 2.0] if key == "class_weights" else 8
    assert main(["CPU", "--mode", "train", "--params", str(write_params(tmp_path / "p.yaml", params))]) == 2
    assert option in capsys.readouterr().err


def test_auto_weights_train_through_the_ipu_standin(ner_csv, tmp_path, monkeypatch, capsys):
    """The weighted loss keeps to poptorch's documented operations (the stand-in fails any other); no IPU result."""
    monkeypatch.setitem(sys.modules, "poptorch", StandinPoptorch())
    params = tiny_params(ner_csv, tmp_path / "run", runconfig={"max_steps": 2, "log_steps": 1, "save_checkpoints_steps": 0})
    params["model"]["class_weights"] = "auto"
    params["ipu"] = {"layers_per_ipu": [1, 1], "gradient_accumulation": 2}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["IPU", "--mode", "train", "--params", str(write_params(tmp_path / "p.yaml", params))]) == 0
    finally:
        torch.set_num_threads(threads)
    assert "model.class_weights auto: " in capsys.readouterr().out
