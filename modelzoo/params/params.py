"""The params file: one YAML with sections ``train_input``, ``eval_input``, ``model``, ``optimizer``,
``runconfig`` and optionally ``ipu``, each a dataclass declared once (``modelzoo.common.schema``).

Errors are :class:`ParamsError` with one line that says where (``FILE:LINE:COLUMN``, from the YAML
node marks) and what: an unknown key with the nearest valid one, a wrong type with the expected
one. YAML 1.1 reads ``1e-5`` (no dot) as a string; the loader here reads it as a float, as YAML 1.2
and every reader of a learning rate expect.

Reading the YAML with the position of every key is :mod:`modelzoo.params.yaml_marks`; the reference
page of every key (docs/PARAMS.md) is :mod:`modelzoo.params.reference`.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Any, Dict, Literal, Optional, Set, Tuple, Union

import yaml

from modelzoo.bert.config import RETIRED_KEYS, BertConfig
from modelzoo.common.atomic import write_text_atomic
from modelzoo.common.schema import (
    ParamsError,
    build,
    param,
    to_dict,
    unknown_key_message,
)
from modelzoo.data.params import InputParams
from modelzoo.heads import head_spec
from modelzoo.optim.lr_schedule import check_schedule_covers
from modelzoo.optim.params import OptimizerParams
from modelzoo.params.cerebras import CerebrasReport, misplaced_key_message, translate
from modelzoo.params.ipu import IPUParams
from modelzoo.params.yaml_marks import KeyPath, locate, read_yaml
from modelzoo.params.yaml_marks import mark_text as _at


@dataclasses.dataclass
class RunConfig:
    """The ``runconfig:`` section: how long to train, when to log, save and evaluate, and how."""

    max_steps: Optional[int] = param(None, "optimizer steps to train; give this or num_epochs")
    num_epochs: Optional[int] = param(None, "passes over train_input to train; give this or max_steps")
    log_steps: int = param(50, "log the training loss and learning rate every this many steps")
    save_checkpoints_steps: int = param(1000, "save a checkpoint every this many steps (0: only at the end)")
    keep_checkpoint_max: Optional[int] = param(5, "newest checkpoints kept in model_dir; null: keep all")
    eval_frequency: Optional[int] = param(None, "in train_and_eval, evaluate every this many steps; null: at the end")
    eval_steps: Optional[int] = param(None, "batches per evaluation; null: the whole eval_input")
    best_checkpoint_metric: Optional[str] = param(
        None,
        "eval figure (f1, accuracy, loss...) by which train_and_eval with eval_frequency keeps "
        "model_dir/best_checkpoint.mdl; null: f1 for NER, accuracy for classification",
    )
    best_checkpoint_higher_is_better: Optional[bool] = param(
        None, "direction of best_checkpoint_metric; null: lower is better for loss, higher for the rest"
    )
    early_stopping_patience: Optional[int] = param(
        None, "stop train_and_eval after this many evaluations without a new best; null: never stop early"
    )
    seed: int = param(1, "seed of the weights' initialisation, dropout and shuffling")
    precision: Literal["float32", "bfloat16", "float16", "auto"] = param(
        "float32", "compute dtype: float32, bfloat16 autocast, float16 autocast with loss scaling, or auto: "
        "bfloat16 where the device computes it natively (CUDA with bfloat16, a CPU with AVX512-BF16 or AMX), "
        "else float32 (on IPU: float32)"
    )
    gradient_accumulation_steps: int = param(1, "batches whose gradients are summed per optimizer step")
    compile: bool = param(False, "run the model through torch.compile")
    model_dir: str = param("./model_dir", "where checkpoints, logs and the resolved params go (--model_dir)")
    checkpoint_path: Optional[str] = param(None, "checkpoint to start from (--checkpoint_path); null: fresh weights")
    load_checkpoint_states: Optional[str] = param(
        None, "what to restore from checkpoint_path: 'model' (weights only) or null (everything saved)"
    )

    def __post_init__(self) -> None:
        if self.max_steps is not None and self.num_epochs is not None:
            raise ParamsError("runconfig: give max_steps or num_epochs, not both")
        at_least = {
            "max_steps": 1,
            "num_epochs": 1,
            "log_steps": 1,
            "save_checkpoints_steps": 0,
            "keep_checkpoint_max": 1,
            "eval_frequency": 1,
            "eval_steps": 1,
            "gradient_accumulation_steps": 1,
            "early_stopping_patience": 1,
        }
        for name, minimum in at_least.items():
            value = getattr(self, name)
            if value is not None and value < minimum:
                raise ParamsError(f"runconfig.{name}: must be at least {minimum}, got {value}")
        if self.early_stopping_patience is not None and self.eval_frequency is None:
            raise ParamsError("runconfig.early_stopping_patience needs runconfig.eval_frequency (evaluations to count)")


SECTIONS: Dict[str, type] = {
    "train_input": InputParams,
    "eval_input": InputParams,
    "model": BertConfig,
    "optimizer": OptimizerParams,
    "runconfig": RunConfig,
    "ipu": IPUParams,
}
OPTIONAL_SECTIONS = ("train_input", "eval_input", "ipu")
# The sections each run.py mode reads; they must be in the file.
MODE_SECTIONS = {
    "train": ("train_input",),
    "eval": ("eval_input",),
    "train_and_eval": ("train_input", "eval_input"),
    "predict": ("eval_input",),
    "serve": ("eval_input",),
}


@dataclasses.dataclass
class Params:
    """All sections of one params file, validated; absent optional sections are None."""

    model: BertConfig
    optimizer: OptimizerParams
    runconfig: RunConfig
    train_input: Optional[InputParams] = None
    eval_input: Optional[InputParams] = None
    ipu: Optional[IPUParams] = None
    cerebras: Optional[CerebrasReport] = None  # what a Cerebras config's keys became; None for a file of ours

    def __post_init__(self) -> None:
        head_spec(self.model.head)  # a head no module registered is an error naming the registered ones

    def check_mode(self, mode: str) -> None:
        """Raise ParamsError if a section ``mode`` reads is absent, or training has no length."""
        for section in MODE_SECTIONS[mode]:
            if getattr(self, section) is None:
                raise ParamsError(f"--mode {mode} needs a '{section}' section in the params file")
        if mode.startswith("train") and self.runconfig.max_steps is None and self.runconfig.num_epochs is None:
            raise ParamsError(f"--mode {mode}: set runconfig.max_steps or runconfig.num_epochs")
        for section in MODE_SECTIONS[mode]:
            data = getattr(self, section)
            if data.max_sequence_length > self.model.max_position_embeddings:
                raise ParamsError(
                    f"{section}.max_sequence_length ({data.max_sequence_length}) is above "
                    f"model.max_position_embeddings ({self.model.max_position_embeddings}): the model has no "
                    "position beyond that"
                )
        # Cerebras' own configs end runs inside a phase (bc5cdr-chem: phases of 1508 + 15080 steps in a
        # 15080-step run), and a Cerebras config means here what it meant there.
        if mode.startswith("train") and self.runconfig.max_steps is not None and self.cerebras is None:
            check_schedule_covers(self.optimizer.schedule, self.runconfig.max_steps, "runconfig.max_steps")

    def to_dict(self) -> Dict[str, Dict[str, Any]]:
        """Plain mappings of the present sections, in the file's usual order."""
        return {name: to_dict(getattr(self, name)) for name in SECTIONS if getattr(self, name) is not None}


# --- reading -----------------------------------------------------------------------------------


def _check_known_key(section: str, key: Any, where: str) -> None:
    """Unknown keys are caught before the schema builds the section, so the message can say where."""
    valid = [f.name for f in dataclasses.fields(SECTIONS[section])]
    if key not in valid:
        message = misplaced_key_message(section, str(key)) or unknown_key_message(section, str(key), valid)
        raise ParamsError(f"{where}: {message}")


def _apply_overrides(raw: Dict[str, Any], overrides: Dict[str, Any]) -> Set[Tuple[str, str]]:
    """Set ``{"runconfig.max_steps": 10}`` entries (None means "not given"); returns the keys set."""
    applied = set()
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        if section not in SECTIONS:
            raise ParamsError(f"command line: {unknown_key_message('params', section, SECTIONS)}")
        _check_known_key(section, key, "command line")
        if raw.get(section) is None:
            raw[section] = {}
        if isinstance(raw[section], dict):  # otherwise building the section reports the bad section
            raw[section][key] = value
            applied.add((section, key))
    return applied


def _drop_retired_keys(raw: Dict[str, Any], marks: Dict[KeyPath, yaml.Mark]) -> None:
    """Older files' ``model:`` keys that no longer mean anything: dropped, with a note naming where."""
    model = raw.get("model")
    for key, why in RETIRED_KEYS.items():
        if isinstance(model, dict) and key in model:
            del model[key]
            print(f"{_at(marks[('model', key)])}: model.{key} is no longer a key, ignored: {why}", file=sys.stderr)


def load_params(path: Union[str, Path], overrides: Optional[Dict[str, Any]] = None) -> Params:
    """Read, override and validate a params file.

    ``overrides`` maps ``"section.key"`` to a value (e.g. ``{"runconfig.max_steps": 100}`` from
    ``--max_steps``); None values are skipped, so argparse defaults can be passed as they are. The
    overridden values are validated like the file's own.
    """
    path = Path(path)
    raw, marks = read_yaml(path)
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections ({', '.join(SECTIONS)}), got {type(raw).__name__}")
    report = translate(raw, marks, _at)
    _drop_retired_keys(raw, marks)
    for section, values in raw.items():
        where = _at(marks[(section,)])
        if section not in SECTIONS:
            raise ParamsError(f"{where}: {unknown_key_message('params', str(section), SECTIONS)}")
        if isinstance(values, dict):
            for key in values:
                _check_known_key(section, key, _at(marks[(section, key)]))
    overridden = _apply_overrides(raw, overrides or {})
    built = {}
    for section, cls in SECTIONS.items():
        if section not in raw and section in OPTIONAL_SECTIONS:
            continue
        try:
            built[section] = build(cls, raw.get(section), section)
            if section == "model":
                head_spec(built[section].head)
        except ParamsError as error:
            message = str(error) if re.match(rf"{section}\b", str(error)) else f"{section}.{error}"
            raise ParamsError(f"{locate(message, section, marks, overridden, path)}: {message}") from None
    return Params(**built, cerebras=report)


# --- writing -----------------------------------------------------------------------------------


def save_params(params: Params, path: Union[str, Path]) -> Path:
    """Write the resolved params (every key, defaults included) to ``path`` atomically.

    The file appears complete or not at all, so a crash never leaves a half-written params.yaml
    beside a checkpoint.
    """
    header = "".join(f"# {line}\n" for line in params.cerebras.lines()) if params.cerebras else ""
    body = yaml.safe_dump(params.to_dict(), sort_keys=False, default_flow_style=False)
    return write_text_atomic(path, header + body)
