"""The params file: loading, error messages with FILE:LINE, overrides, saving, the reference page."""

import textwrap
import tracemalloc
from pathlib import Path

import pytest

from modelzoo.common.errors import ParamsError
from modelzoo.params.params import RunConfig, load_params, save_params
from modelzoo.params.reference import reference_markdown
from modelzoo.params.yaml_marks import MAX_ALIAS_VALUES

REPO_ROOT = Path(__file__).resolve().parents[1]

CEREBRAS_STYLE = """\
train_input:
  data_dir: csv/train
  batch_size: 16
eval_input:
  data_dir: csv/dev
  shuffle: false
model:
  num_classes: 7
  layer_norm_epsilon: 1e-12
optimizer:
  optimizer_type: AdamW
  max_gradient_norm: 1.0
  learning_rate:
    - scheduler: Linear
      steps: 100
      initial_learning_rate: 0.0
      end_learning_rate: 1e-5
    - scheduler: Linear
      steps: 900
      initial_learning_rate: 1e-5
      end_learning_rate: 0
runconfig:
  max_steps: 1000
  precision: bfloat16
"""


def write(tmp_path: Path, text: str, name: str = "params.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load_error(path: Path, overrides=None) -> str:
    with pytest.raises(ParamsError) as error:
        load_params(path, overrides)
    return str(error.value)


def test_loads_a_cerebras_style_file(tmp_path):
    params = load_params(write(tmp_path, CEREBRAS_STYLE))
    assert params.train_input.batch_size == 16 and params.eval_input.shuffle is False
    assert params.model.layer_norm_epsilon == 1e-12  # YAML 1.1 would have read the string '1e-12'
    assert params.optimizer.optimizer_type == "adamw"
    assert [phase.total_iters for phase in params.optimizer.schedule] == [100, 900]
    assert params.optimizer.schedule[0].end == 1e-5
    assert params.runconfig.precision == "bfloat16" and params.ipu is None


def test_missing_sections_take_their_defaults(tmp_path):
    params = load_params(write(tmp_path, "runconfig:\n  num_epochs: 2\n"))
    assert params.train_input is None and params.model.hidden_size == 768
    assert params.optimizer.learning_rate == 5e-5
    with pytest.raises(ParamsError, match="--mode train needs a 'train_input' section"):
        params.check_mode("train")


def test_check_mode_needs_a_training_length(tmp_path):
    load_params(write(tmp_path, CEREBRAS_STYLE)).check_mode("train_and_eval")
    params = load_params(write(tmp_path, CEREBRAS_STYLE.replace("  max_steps: 1000\n", "")))
    with pytest.raises(ParamsError, match="set runconfig.max_steps or runconfig.num_epochs"):
        params.check_mode("train")


def test_missing_file_is_named(tmp_path):
    assert load_error(tmp_path / "nope.yaml") == f"params file not found: {tmp_path / 'nope.yaml'}"


def test_syntax_error_gives_file_line_and_column(tmp_path):
    path = write(tmp_path, "model:\n  hidden_size: 768\n  num_heads: [12\nrunconfig: {}\n")
    message = load_error(path)
    assert message.startswith(f"{path}:4:")
    assert "YAML syntax error" in message


def test_unknown_key_gives_its_line_and_the_nearest_valid_key(tmp_path):
    path = write(tmp_path, "model:\n  num_classes: 7\noptimizer:\n  weight_decay: 0.0\n  epslion: 1.e-6\n")
    assert load_error(path) == f"{path}:5:3: optimizer: unknown key 'epslion' (did you mean 'eps'?)"


def test_unknown_section_is_named(tmp_path):
    path = write(tmp_path, "runconfig: {}\nrun_config:\n  max_steps: 3\n")
    assert load_error(path) == f"{path}:2:1: params: unknown key 'run_config' (did you mean 'runconfig'?)"


def test_wrong_type_names_section_key_line_and_expected_type(tmp_path):
    path = write(tmp_path, "runconfig:\n  log_steps: 10\n  max_steps: ten\n")
    assert load_error(path) == f"{path}:3:3: runconfig.max_steps: expected int | null, got 'ten' (str)"


def test_errors_inside_a_schedule_point_at_its_entry(tmp_path):
    path = write(tmp_path, CEREBRAS_STYLE.replace("- scheduler: Linear\n      steps: 900", "- scheduler: Linaer\n      steps: 900"))
    message = load_error(path)
    assert message == (
        f"{path}:18:7: optimizer.learning_rate[1].scheduler: unknown scheduler 'Linaer' (did you mean 'Linear'?)"
    )


def test_cross_field_errors_of_a_section_name_the_section(tmp_path):
    path = write(tmp_path, "train_input:\n  data_dir: x\n  batch_size: 0\n")
    assert load_error(path) == f"{path}:3:3: train_input.batch_size: must be at least 1, got 0"
    path = write(tmp_path, "runconfig:\n  max_steps: 5\n  num_epochs: 1\n")
    assert load_error(path) == f"{path}:1:1: runconfig: give max_steps or num_epochs, not both"


def test_a_key_given_twice_is_an_error(tmp_path):
    path = write(tmp_path, "model:\n  hidden_size: 768\n  hidden_size: 384\n")
    assert load_error(path) == f"{path}:3:3: 'model.hidden_size' is given twice"


MERGED = """\
train_input: &train
  data_dir: csv/train
  batch_size: 16
  shuffle: true
eval_input:
  <<: *train
  data_dir: csv/dev
  shuffle: false
"""


def test_a_merge_key_takes_the_merged_mapping_under_the_keys_written_beside_it(tmp_path):
    params = load_params(write(tmp_path, MERGED))
    assert (params.eval_input.data_dir, params.eval_input.batch_size, params.eval_input.shuffle) == ("csv/dev", 16, False)
    assert (params.train_input.data_dir, params.train_input.shuffle) == ("csv/train", True)
    path = write(tmp_path, MERGED + "  batch_size: 0\n")
    assert load_error(path) == f"{path}:9:3: eval_input.batch_size: must be at least 1, got 0"
    path = write(tmp_path, MERGED + "  data_dir: csv/test\n")
    assert load_error(path) == f"{path}:9:3: 'eval_input.data_dir' is given twice"


def test_nested_aliases_are_refused_before_they_are_expanded(tmp_path):
    """Nine aliases nested eight deep name 9**8 values; the walk stops after MAX_ALIAS_VALUES of them."""
    lines = ["runconfig:", "  max_steps: 3", "  l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"  l{depth}: &l{depth} [{', '.join([f'*l{depth - 1}'] * 9)}]" for depth in range(1, 9)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    tracemalloc.start()
    try:
        message = load_error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message.startswith(f"{path}:") and f"repeat more than {MAX_ALIAS_VALUES} values" in message
    assert peak < 50 * 2**20  # 9**8 values held once each would take gigabytes
    path = write(tmp_path, "runconfig: &run\n  max_steps: 3\n  again: *run\n")
    assert load_error(path) == f"{path}:3:3: a YAML alias under this key names a value that contains it"


def test_overrides_apply_after_loading_and_are_validated(tmp_path):
    path = write(tmp_path, CEREBRAS_STYLE)
    params = load_params(path, {"runconfig.max_steps": 10, "runconfig.model_dir": "out", "runconfig.seed": None})
    assert params.runconfig.max_steps == 10 and params.runconfig.model_dir == "out"
    assert params.runconfig.seed == RunConfig().seed  # None means "not given on the command line"
    assert load_error(path, {"runconfig.max_steps": "x"}) == (
        "command line: runconfig.max_steps: expected int | null, got 'x' (str)"
    )
    assert load_error(path, {"runconfig.max_step": 3}) == (
        "command line: runconfig: unknown key 'max_step' (did you mean 'max_steps'?)"
    )


def test_saved_params_reload_equal_and_leave_no_temp_file(tmp_path):
    params = load_params(write(tmp_path, CEREBRAS_STYLE), {"runconfig.max_steps": 7})
    target = tmp_path / "model_dir" / "train" / "params.yaml"
    target.parent.mkdir(parents=True)
    target.write_text("stale")
    assert save_params(params, target) == target
    assert load_params(target) == params
    assert sorted(p.name for p in target.parent.iterdir()) == ["params.yaml"]


def test_committed_reference_page_is_the_generated_one():
    committed = (REPO_ROOT / "docs" / "PARAMS.md").read_text()
    assert committed == reference_markdown(), "regenerate: python -m modelzoo.params.reference > docs/PARAMS.md"
    assert "`save_checkpoints_steps`" in committed and "int \\| null" in committed
