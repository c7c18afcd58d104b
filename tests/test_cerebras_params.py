"""Cerebras model zoo configs run as they are: mapped keys, keys with no effect, Cerebras' defaults, bad input.

The fixture is Cerebras' own token-classifier config ``bert_base_ner_bc5cdr_chem.yaml`` of release
1.9.1 (Cerebras/modelzoo, tag Release_1.9.1, commit 70a5b0317694df4fcb5d762a332a0096364d3883, path
modelzoo/transformers/pytorch/bert/fine_tuning/token_classifier/configs/) key for key and value for
value, without its comments. Only what a test machine needs is changed, each marked ``# test:``: the
data paths (the synthetic CSVs), the sizes (a tiny model, small batches, a few steps) and
num_classes (the labels of the synthetic data).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from modelzoo.common.errors import ParamsError
from modelzoo.params.cerebras import CEREBRAS_KEYS
from modelzoo.params.params import load_params, save_params
from modelzoo.params.reference import reference_markdown
from tests.run_fixtures import run_py

BC5CDR_CHEM_1_9 = """\
train_input:
    data_processor: "BertTokenClassifierDataProcessor"
    data_dir: "{train}"
    vocab_file: "{vocab}"
    label_vocab_file: "{train}/label2id.json"
    max_sequence_length: 48  # test: 128
    batch_size: 8  # test: 4096
    shuffle: True
    num_workers: 1

eval_input:
    data_processor: "BertTokenClassifierDataProcessor"
    data_dir: "{eval}"
    vocab_file: "{vocab}"
    label_vocab_file: "{train}/label2id.json"
    max_sequence_length: 48  # test: 128
    batch_size: 12
    shuffle: False
    num_workers: 1

model:
    vocab_size: {vocab_size}  # test: 30522
    hidden_size: 32  # test: 768
    num_hidden_layers: 2  # test: 12
    num_heads: 2  # test: 12
    filter_size: 64  # test: 3072
    encoder_nonlinearity: "gelu"
    pooler_nonlinearity: "tanh"
    max_position_embeddings: 512
    encoder_output_dropout_rate: 0.1
    num_classes: {num_classes}  # test: 7
    mixed_precision: True
    compute_eval_metrics: False
    include_padding_in_loss: True

optimizer:
    optimizer_type: "Adam"
    epsilon: 1.e-6
    max_gradient_norm: 1.0
    disable_lr_steps_reset: True
    learning_rate:
        - scheduler: "Linear"
          steps: 2  # test: 1508
          initial_learning_rate: 0.0
          end_learning_rate: 0.00001
        - scheduler: "Linear"
          steps: 6  # test: 15080
          initial_learning_rate: 0.00001
          end_learning_rate: 0
    loss_scaling_factor: "dynamic"

runconfig:
    max_steps: 6  # test: 15080
    log_steps: 2  # test: 100
    checkpoint_steps: 3  # test: 1000
    seed: 1
    show_debug_metrics: False
    save_losses: True
    model_dir: "{model_dir}"
    eval_steps: 2  # test: 759
    use_cs_grad_accum: True
"""
# Every key of the file with an equivalent here, and every key that means nothing here.
MAPPED = (
    "train_input.data_processor", "eval_input.data_processor", "model.mixed_precision",
    "model.include_padding_in_loss", "optimizer.optimizer_type", "optimizer.epsilon",
    "optimizer.loss_scaling_factor", "optimizer.learning_rate[0].steps", "optimizer.learning_rate[1].steps",
    "runconfig.checkpoint_steps", "runconfig.eval_steps",
)
NO_EFFECT = (
    "model.pooler_nonlinearity", "model.compute_eval_metrics", "optimizer.disable_lr_steps_reset",
    "runconfig.show_debug_metrics", "runconfig.save_losses", "runconfig.use_cs_grad_accum",
)


@pytest.fixture()
def cerebras_params(ner_csv, tmp_path) -> Path:
    labels = len(yaml.safe_load((ner_csv["train"] / "label2id.json").read_text()))
    vocab_size = len(ner_csv["vocab"].read_text().splitlines())
    text = BC5CDR_CHEM_1_9.format(
        train=ner_csv["train"], eval=ner_csv["test"], vocab=ner_csv["vocab"], model_dir=tmp_path / "model_dir",
        num_classes=labels, vocab_size=vocab_size,
    )
    path = tmp_path / "bert_base_ner_bc5cdr_chem.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ParamsError) as error:
        load_params(path)
    return str(error.value)


def test_the_cerebras_config_trains_as_it_is_and_the_log_names_every_cerebras_key(cerebras_params, tmp_path):
    result = run_py("CPU", "--mode", "train", "--params", str(cerebras_params))
    assert result.returncode == 0, result.stderr
    log = result.stderr.splitlines()
    mapped = [line.strip() for line in log if " -> " in line]
    for key in MAPPED:
        assert sum(line.startswith(f"{key}:") for line in mapped) == 1, (key, mapped)
    no_effect = [line for line in log if line.startswith("Cerebras keys with no effect here: ")]
    assert len(no_effect) == 1
    assert sorted(no_effect[0].split(": ", 1)[1].split(", ")) == sorted(NO_EFFECT)
    # checkpoint_steps: 3 took effect (a checkpoint at step 3 besides the final one)
    assert (tmp_path / "model_dir" / "checkpoint_3.mdl").is_file()
    assert (tmp_path / "model_dir" / "checkpoint_6.mdl").is_file()


def test_resolved_params_show_what_each_cerebras_key_became(cerebras_params, tmp_path):
    params = load_params(cerebras_params)
    assert params.model.head == "token_classification"
    assert params.optimizer.optimizer_type == "adam" and params.optimizer.eps == 1e-6
    assert [phase.total_iters for phase in params.optimizer.schedule] == [2, 6]
    assert params.runconfig.save_checkpoints_steps == 3 and params.runconfig.eval_steps == 2
    assert params.runconfig.precision == "bfloat16"
    assert params.train_input.include_special_labels_in_loss and params.eval_input.include_special_labels_in_loss
    # Cerebras' own defaults for the keys the file leaves out (its token classifier's, not ours)
    assert params.model.dropout_rate == 0.0 and params.model.attention_dropout_rate == 0.0
    assert params.model.layer_norm_epsilon == 1e-5 and params.optimizer.weight_decay == 0.0
    saved = save_params(params, tmp_path / "resolved.yaml")
    text = saved.read_text()
    comments = [line for line in text.splitlines() if line.startswith("#")]
    for key in (*MAPPED, *NO_EFFECT, "model.dropout_rate", "optimizer.weight_decay"):
        assert any(key in line for line in comments), key
    assert "optimizer.epsilon: 1e-06 -> optimizer.eps: 1e-06" in text
    reloaded = load_params(saved)  # the resolved file is ours alone and reads back the same
    assert reloaded.to_dict() == params.to_dict() and reloaded.cerebras is None


def test_the_sequence_classifier_config_picks_the_packed_sequence_classifier(classifier_csv, tmp_path):
    """Keys of bert_base_classifier_sst2.yaml (1.9.1); note `epsilon: 1e-6`, a string to YAML 1.1."""
    params = load_params(write(tmp_path, f"""\
        train_input:
            data_processor: "SST2DataProcessor"
            data_dir: "{classifier_csv['train']}"
            vocab_file: "{classifier_csv['vocab']}"
            max_sequence_length: 32
            batch_size: 8
            shuffle: True
            shuffle_seed: 1
            num_workers: 8
            do_lower: True
        model:
            mixed_precision: True
            hidden_size: 32
            num_hidden_layers: 2
            num_heads: 2
            filter_size: 64
            encoder_nonlinearity: "gelu"
            pooler_nonlinearity: "tanh"
            dropout_rate: 0.1
            attention_dropout_rate: 0.1
            task_dropout: 0.2
            problem_type: "single_label_classification"
            num_labels: 2
            compute_eval_metrics: False
        optimizer:
            optimizer_type: "AdamW"
            weight_decay_rate: 0.01
            epsilon: 1e-6
            learning_rate:
                - scheduler: "Linear"
                  steps: 20
                  initial_learning_rate: 0.0
                  end_learning_rate: 0.00001
                - scheduler: "Constant"
                  learning_rate: 0.00001
            loss_scaling_factor: "dynamic"
        runconfig:
            max_steps: 200
            save_initial_checkpoint: True
        """))
    model = params.model
    assert model.head == "sequence_classification"
    assert model.num_classes == 2 and model.encoder_output_dropout_rate == 0.2
    assert params.optimizer.weight_decay == 0.01 and params.optimizer.eps == 1e-6


def test_a_file_without_cerebras_keys_keeps_our_defaults(tmp_path):
    params = load_params(write(tmp_path, """\
        optimizer:
          optimizer_type: AdamW
        runconfig:
          max_steps: 10
          eval_steps: 3
        """))
    assert params.cerebras is None
    assert params.model.dropout_rate == 0.1 and params.optimizer.weight_decay == 0.01


def test_a_typo_is_still_an_error_with_its_line(tmp_path):
    message = load_error(write(tmp_path, "optimizer:\n  optimizer_type: Adam\n  epsilonn: 1.0e-6\n"))
    assert message.endswith("optimizer: unknown key 'epsilonn' (did you mean 'eps'?)") and ":3:3:" in message


def test_a_cerebras_key_in_another_section_is_not_offered_a_different_key(tmp_path):
    message = load_error(write(tmp_path, "runconfig:\n  epsilon: 1.0e-6\n"))
    assert "did you mean" not in message
    assert message.endswith("runconfig: 'epsilon' is a Cerebras key of optimizer, not of runconfig")


# A value Cerebras' configs give each key of the table.
SAMPLE_VALUES = {
    "data_processor": "BertTokenClassifierDataProcessor", "do_lower": True, "shuffle_buffer": 1000,
    "prefetch_factor": 10, "persistent_workers": True, "mixed_precision": False, "use_bfloat16": True,
    "include_padding_in_loss": False, "loss_weight": 1.0, "num_labels": 3, "task_dropout": 0.1,
    "problem_type": "single_label_classification", "pooler_nonlinearity": "tanh", "mlm_nonlinearity": "gelu",
    "position_embedding_type": "learned", "share_embedding_weights": True, "enable_vts": False,
    "compute_eval_metrics": True, "optimizer_type": "AdamW", "epsilon": 1.0e-8, "weight_decay_rate": 0.01,
    "loss_scaling_factor": "dynamic", "disable_lr_steps_reset": True, "log_summaries": False,
    "checkpoint_steps": 5, "eval_steps": 3, "show_debug_metrics": False, "save_losses": True,
    "use_cs_grad_accum": True, "save_initial_checkpoint": True,
}


@pytest.mark.parametrize("entry", CEREBRAS_KEYS, ids=lambda entry: f"{entry.sections[0]}.{entry.key}")
def test_every_key_of_the_table_loads_where_cerebras_writes_it(tmp_path, entry):
    """No Cerebras key of the table ever reaches the unknown-key check (and its nearest-key hint)."""
    for section in entry.sections:
        values = {entry.key: SAMPLE_VALUES[entry.key]}
        if section.endswith("_input"):
            values["data_dir"] = "csv"
        path = tmp_path / f"{section}.yaml"
        path.write_text(yaml.safe_dump({section: values}), encoding="utf-8")
        params = load_params(path)
        if params.cerebras is not None:  # None only for the two keys both projects spell alike
            named = [*params.cerebras.mapped, *params.cerebras.no_effect]
            assert any(line.startswith(f"{section}.{entry.key}") for line in named)
        else:
            assert entry.key in ("optimizer_type", "eval_steps")


def test_a_processor_this_zoo_lacks_is_one_line_naming_it_and_the_supported_ones(tmp_path):
    message = load_error(write(tmp_path, """\
        train_input:
          data_processor: BertCSVDataProcessor
          data_dir: csv/train
        """))
    assert "\n" not in message and ":2:3: train_input.data_processor: BertCSVDataProcessor (BERT pretraining)" in message
    assert "supported: " in message and "BertTokenClassifierDataProcessor (token_classification)" in message
    assert "SST2DataProcessor" in message and "MNLIDataProcessor" in message


def test_steps_and_total_iters_in_one_phase_is_one_line(tmp_path):
    message = load_error(write(tmp_path, """\
        model:
          mixed_precision: true
        optimizer:
          learning_rate:
            - {scheduler: Linear, steps: 10, total_iters: 10, initial_learning_rate: 0.0, end_learning_rate: 1.0e-5}
            - {scheduler: Constant, learning_rate: 1.0e-5}
        """))
    assert "\n" not in message and ":5:" in message and "total_iters and steps are the same key; give one" in message


def test_a_cerebras_key_contradicting_ours_is_one_line(tmp_path):
    message = load_error(write(tmp_path, """\
        model:
          mixed_precision: true
        runconfig:
          precision: float32
        """))
    assert "\n" not in message and ":2:3: model.mixed_precision means runconfig.precision: bfloat16" in message
    assert "the file sets runconfig.precision: float32" in message


def test_values_cerebras_accepts_but_this_zoo_cannot_honour_are_refused(tmp_path):
    message = load_error(write(tmp_path, "model:\n  pooler_nonlinearity: relu\n"))
    assert ":2:3: model.pooler_nonlinearity: 'relu' is not supported here (only 'tanh')" in message


def test_the_reference_page_has_the_cerebras_table():
    page = reference_markdown()
    assert "## Cerebras model zoo keys" in page
    for entry in CEREBRAS_KEYS:
        assert f"`{'/'.join(entry.sections)}.{entry.key}`" in page
