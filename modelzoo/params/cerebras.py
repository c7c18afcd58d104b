"""Cerebras model zoo configs read as they are: each of their keys mapped to ours, or accepted as meaningless here.

A Cerebras BERT fine-tuning YAML (its token classifier or sequence classifier, releases 1.8 to 2.1)
spells some keys its own way (``epsilon``, ``checkpoint_steps``, ``mixed_precision``, a learning-rate
phase's ``steps``), picks the task with ``data_processor``, and carries keys that configure a
Cerebras system and mean nothing on CPU, GPU or IPU (``use_cs_grad_accum``, ``save_losses``...).
:func:`translate` rewrites the first kind into this project's keys before the schema validates the
file, drops the second kind (named once in a warning), and fills in the defaults Cerebras applies
where they differ from ours when the file is a whole Cerebras config (it has a ``data_processor``),
so that the run means what the same file meant there. A key that neither project knows is left in
place, for the schema to report as the typo it is.

The table (:data:`CEREBRAS_KEYS`) is also the "Cerebras keys" part of docs/PARAMS.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from modelzoo.bert.config import CEREBRAS_CONFIG_NAMES, CEREBRAS_LAYER_NORM_EPSILON
from modelzoo.common.errors import ParamsError
from modelzoo.heads.spec import cerebras_processor_names, head_of_cerebras_processor

logger = logging.getLogger(__name__)

INPUT_SECTIONS = ("train_input", "eval_input")

# The other BERT processors of Cerebras' model zoo, by what they train.
OTHER_PROCESSORS = {
    "BertCSVDataProcessor": "BERT pretraining",
    "BertCSVDynamicMaskDataProcessor": "BERT pretraining",
    "BertSumCSVDataProcessor": "extractive summarization",
    "BertQADataProcessor": "question answering",
}

Converter = Callable[[Any, str], Dict[str, Any]]


@dataclass(frozen=True)
class CerebrasKey:
    """One Cerebras key: what it becomes here (``convert``) or, without one, why it means nothing here.

    ``convert(value, where)`` returns ``{"section.key": value}`` of ours (empty when the key names
    what this project does anyway) and raises ParamsError for a value it cannot honour; ``target``
    says the same in words, for the log and the reference table. A key with no effect may still
    have values that would change the model in a way this project cannot follow: only ``allowed``
    ones (when given) pass.
    """

    sections: Tuple[str, ...]
    key: str
    target: str
    why: str
    convert: Optional[Converter] = None
    allowed: Optional[Tuple[Any, ...]] = None

    @property
    def no_effect(self) -> bool:
        return self.convert is None


def _to(dotted: str, transform: Callable[[Any], Any] = lambda value: value) -> Converter:
    return lambda value, where: {dotted: transform(value)}


def _task(value: Any, where: str) -> Dict[str, Any]:
    spec = head_of_cerebras_processor(value)
    if spec is not None:
        return {"model.head": spec.name}
    kind = f" ({OTHER_PROCESSORS[value]})" if value in OTHER_PROCESSORS else ""
    raise ParamsError(
        f"{where}: {value}{kind} is not a model this zoo has; supported: "
        + ", ".join(f"{name} ({head_of_cerebras_processor(name).name})" for name in cerebras_processor_names())
    )


def _precision(value: Any, where: str) -> Dict[str, Any]:
    if not isinstance(value, bool):
        raise ParamsError(f"{where}: expected true or false, got {value!r}")
    return {"runconfig.precision": "bfloat16" if value else "float32"}


def _loss_scaling(value: Any, where: str) -> Dict[str, Any]:
    if value == "dynamic" or (isinstance(value, (int, float)) and not isinstance(value, bool) and value == 1):
        return {}
    raise ParamsError(f"{where}: {value!r} is not supported here (only 'dynamic', or 1.0 for none)")


def _padding_in_loss(value: Any, where: str) -> Dict[str, Any]:
    if not isinstance(value, bool):
        raise ParamsError(f"{where}: expected true or false, got {value!r}")
    return {f"{section}.include_special_labels_in_loss": True for section in INPUT_SECTIONS}


_LOSS_POSITIONS = (
    "Cerebras' loss covers every non-padding position ([CLS], [SEP] and X included), as this key does; "
    "with true Cerebras also counts the padding, which never counts here"
)

CEREBRAS_KEYS: Tuple[CerebrasKey, ...] = (
    CerebrasKey(INPUT_SECTIONS, "data_processor", "model.head",
                "the processor names the task: " + "; ".join(
                    f"{processor} -> {head_of_cerebras_processor(processor).name}" for processor in cerebras_processor_names()
                ), _task),
    CerebrasKey(INPUT_SECTIONS, "do_lower", "no effect here",
                "the CSVs hold word pieces lower-cased when written (--do_lower_case of the writers)"),
    CerebrasKey(INPUT_SECTIONS, "shuffle_buffer", "no effect here", "the whole split is shuffled every epoch"),
    CerebrasKey(INPUT_SECTIONS, "prefetch_factor", "no effect here", "batches are one array index; nothing to prefetch"),
    CerebrasKey(INPUT_SECTIONS, "persistent_workers", "no effect here", "a split is parsed once, not per epoch"),
    CerebrasKey(("model",), "mixed_precision", "runconfig.precision",
                "true -> bfloat16, false -> float32: Cerebras computes in float16 unless use_bfloat16; here "
                "float16 needs a GPU and loss scaling, bfloat16 runs on every target", _precision),
    CerebrasKey(("model",), "use_bfloat16", "no effect here", "mixed_precision: true already means bfloat16 here"),
    CerebrasKey(("model",), "include_padding_in_loss", "train_input/eval_input.include_special_labels_in_loss: true",
                _LOSS_POSITIONS, _padding_in_loss),
    CerebrasKey(("model",), "loss_weight", "no effect here",
                "a constant factor on the loss; the loss here is the mean over its positions"),
    CerebrasKey(("model",), "num_labels", f"model.{CEREBRAS_CONFIG_NAMES['num_labels']}",
                "the sequence classifier's name for the number of classes", _to(f"model.{CEREBRAS_CONFIG_NAMES['num_labels']}")),
    CerebrasKey(("model",), "task_dropout", f"model.{CEREBRAS_CONFIG_NAMES['task_dropout']}",
                "the sequence classifier's dropout before its classifier", _to(f"model.{CEREBRAS_CONFIG_NAMES['task_dropout']}")),
    CerebrasKey(("model",), "problem_type", "no effect here (single_label_classification only)",
                "the sequence classifier is trained with cross-entropy over one label",
                allowed=("single_label_classification",)),
    CerebrasKey(("model",), "pooler_nonlinearity", "no effect here (tanh only)",
                "the pooler is always tanh (the token classifier has none)", allowed=("tanh",)),
    CerebrasKey(("model",), "mlm_nonlinearity", "no effect here", "there is no masked-LM head"),
    CerebrasKey(("model",), "position_embedding_type", "no effect here (learned only)",
                "positions are always a learned table", allowed=("learned",)),
    CerebrasKey(("model",), "share_embedding_weights", "no effect here", "ties a masked-LM decoder; there is none"),
    CerebrasKey(("model",), "enable_vts", "no effect here", "variable tensor shape is a Cerebras compiler option"),
    CerebrasKey(("model",), "compute_eval_metrics", "no effect here", "evaluation always scores (seqeval or accuracy)"),
    CerebrasKey(("optimizer",), "optimizer_type", "optimizer.optimizer_type",
                "same key; any case ('Adam' reads as adam)", lambda value, where: {}),
    CerebrasKey(("optimizer",), "epsilon", "optimizer.eps", "Cerebras 1.8/1.9 name of Adam's epsilon", _to("optimizer.eps")),
    CerebrasKey(("optimizer",), "weight_decay_rate", "optimizer.weight_decay", "Cerebras 1.8/1.9 name",
                _to("optimizer.weight_decay")),
    CerebrasKey(("optimizer",), "loss_scaling_factor", "runconfig.precision float16's loss scaling",
                "'dynamic' is what float16 always does here; bfloat16 and float32 need no scaling "
                "(Cerebras too sets it to 1.0 with bfloat16)", _loss_scaling),
    CerebrasKey(("optimizer",), "disable_lr_steps_reset", "no effect here",
                "a Cerebras-system scheduler option; each phase here counts its steps from its own start, "
                "as Cerebras' schedules do off a CS system"),
    CerebrasKey(("optimizer",), "log_summaries", "no effect here", "TensorBoard always gets the loss and rate"),
    CerebrasKey(("runconfig",), "checkpoint_steps", "runconfig.save_checkpoints_steps", "same meaning",
                _to("runconfig.save_checkpoints_steps")),
    CerebrasKey(("runconfig",), "eval_steps", "runconfig.eval_steps", "same key: batches per evaluation",
                lambda value, where: {}),
    CerebrasKey(("runconfig",), "show_debug_metrics", "no effect here", "Cerebras-system debug output"),
    CerebrasKey(("runconfig",), "save_losses", "no effect here", "the loss is logged every log_steps"),
    CerebrasKey(("runconfig",), "use_cs_grad_accum", "no effect here",
                "CS gradient accumulation; here it is runconfig.gradient_accumulation_steps"),
    CerebrasKey(("runconfig",), "save_initial_checkpoint", "no effect here",
                "checkpoints are written every save_checkpoints_steps and at the end"),
)
_BY_SECTION_KEY = {(section, entry.key): entry for entry in CEREBRAS_KEYS for section in entry.sections}
# Keys both projects spell the same: named in the log only when the file is a Cerebras one.
_SHARED = {("optimizer", "optimizer_type"), ("runconfig", "eval_steps")}

# Where Cerebras' default differs from ours and the file leaves the key out (the fine-tuning
# models' own defaults: token_classifier/model.py, */utils.py set_defaults, PyTorchBaseModel).
CEREBRAS_DEFAULTS = {
    "model.dropout_rate": 0.0,
    "model.attention_dropout_rate": 0.0,
    "model.layer_norm_epsilon": CEREBRAS_LAYER_NORM_EPSILON,
    "optimizer.weight_decay": 0.0,
}


@dataclass
class CerebrasReport:
    """What :func:`translate` did, for the log and for the params file written to model_dir."""

    mapped: List[str] = field(default_factory=list)
    defaults: List[str] = field(default_factory=list)
    no_effect: List[str] = field(default_factory=list)

    def lines(self) -> List[str]:
        lines = ["Cerebras config keys read as this project's:", *(f"  {line}" for line in self.mapped)]
        if self.defaults:
            lines += ["Cerebras defaults for keys the file leaves out:", *(f"  {line}" for line in self.defaults)]
        if self.no_effect:
            lines.append(f"Cerebras keys with no effect here: {', '.join(self.no_effect)}")
        return lines


Marks = Dict[Tuple[Any, ...], Any]


def translate(raw: Dict[str, Any], marks: Marks, at: Callable[[Any], str]) -> Optional[CerebrasReport]:
    """Rewrite the Cerebras keys of ``raw`` (the file's sections) into ours, in place.

    ``marks`` (key path -> YAML mark) gains the new keys at the place of the Cerebras key they came
    from, so a later error points at the line the user wrote; ``at(mark)`` formats a place. A file
    with no Cerebras-only key is left alone (None). One with a ``data_processor`` is a whole
    Cerebras config, so Cerebras' defaults (:data:`CEREBRAS_DEFAULTS`) fill the keys it leaves out.
    """
    found = [
        (section, key)
        for section, values in raw.items()
        if isinstance(values, dict)
        for key in values
        if (section, key) in _BY_SECTION_KEY
    ]
    if all(place in _SHARED for place in found):
        return None
    report = CerebrasReport()
    assigned: Dict[str, Tuple[Any, str]] = {}
    for section, key in found:
        entry, name = _BY_SECTION_KEY[(section, key)], f"{section}.{key}"
        value = raw[section][key] if (section, key) in _SHARED else raw[section].pop(key)
        where = f"{at(marks[(section, key)])}: {name}"
        if entry.no_effect:
            if entry.allowed is not None and value not in entry.allowed:
                allowed = ", ".join(map(repr, entry.allowed))
                raise ParamsError(f"{where}: {value!r} is not supported here (only {allowed})")
            report.no_effect.append(name)
            continue
        targets = entry.convert(value, where)
        applied = [f"{dotted}: {v}" for dotted, v in targets.items() if _assign(raw, marks, dotted, v, (section, key), assigned, where)]
        shown = ", ".join(applied) or entry.target
        report.mapped.append(f"{name}: {value} -> {shown}")
    for index in _phases_with_steps(raw):
        phase_marks = ("optimizer", "learning_rate", index)
        phase = raw["optimizer"]["learning_rate"][index]
        phase["total_iters"] = phase.pop("steps")
        marks[(*phase_marks, "total_iters")] = marks[(*phase_marks, "steps")]
        report.mapped.append(f"optimizer.learning_rate[{index}].steps: {phase['total_iters']} -> total_iters")
    processor = next((marks[place] for place in found if place[1] == "data_processor"), None)
    for dotted, value in CEREBRAS_DEFAULTS.items() if processor is not None else ():
        section, key = dotted.split(".")
        if key not in (raw.get(section) or {}):
            _set(raw, marks, dotted, value, processor)
            report.defaults.append(f"{dotted}: {value}")
    logger.warning("\n".join(report.lines()))
    return report


def _assign(raw, marks, dotted, value, source, assigned, where) -> bool:
    """Set our ``section.key`` (False: not set, its input section is absent); the same key from two
    places (or written as ours too) must agree."""
    section, key = dotted.split(".")
    if section in INPUT_SECTIONS and section not in raw:
        return False  # an input section the file does not have stays absent (modes check for it)
    values = raw.get(section) or {}
    if dotted in assigned:
        previous, previous_name = assigned[dotted]
        if previous != value:
            raise ParamsError(f"{where} means {dotted}: {value}, but {previous_name} means {previous}")
        return True
    if key in values and values[key] != value:
        raise ParamsError(f"{where} means {dotted}: {value}, but the file sets {dotted}: {values[key]}")
    _set(raw, marks, dotted, value, marks[source])
    assigned[dotted] = (value, ".".join(source))
    return True


def _set(raw: Dict[str, Any], marks: Marks, dotted: str, value: Any, mark: Any) -> None:
    """Write our key, creating its section if needed; both get ``mark`` as their place in the file."""
    section, key = dotted.split(".")
    if raw.get(section) is None:
        raw[section] = {}
    if not isinstance(raw[section], dict):
        return  # a section that is not a mapping: building it reports that
    raw[section][key] = value
    marks.setdefault((section,), mark)
    marks.setdefault((section, key), mark)


def _phases_with_steps(raw: Dict[str, Any]) -> List[int]:
    """Learning-rate phases giving their length as ``steps`` alone (with two spellings the schedule reports it)."""
    optimizer = raw.get("optimizer")
    phases = optimizer.get("learning_rate") if isinstance(optimizer, dict) else None
    if not isinstance(phases, list):
        return []
    return [
        index
        for index, phase in enumerate(phases)
        if isinstance(phase, dict) and "steps" in phase and not {"total_iters", "decay_steps"} & set(phase)
    ]


def misplaced_key_message(section: str, key: str) -> Optional[str]:
    """For a key unknown in ``section`` that Cerebras has elsewhere: where it belongs (never another key)."""
    homes = sorted({home for entry in CEREBRAS_KEYS if entry.key == key for home in entry.sections})
    if not homes or section in homes:
        return None
    return f"{section}: '{key}' is a Cerebras key of {' / '.join(homes)}, not of {section}"


def reference_markdown() -> str:
    """The Cerebras key table of docs/PARAMS.md."""
    rows = [
        "## Cerebras model zoo keys",
        "",
        "A Cerebras BERT token- or sequence-classifier config (releases 1.8 to 2.1) runs as it is. Its keys",
        "that have an equivalent here become ours; the others are accepted and named once in a warning",
        "(\"Cerebras keys with no effect here: ...\"); the resolved params written to model_dir list what each",
        "became. In a whole Cerebras config (one with a `data_processor`), a key the file leaves out takes",
        "Cerebras' default where it differs from ours: "
        + ", ".join(f"`{k}: {v}`" for k, v in CEREBRAS_DEFAULTS.items()) + ".",
        "",
        "| Cerebras key | here | why |",
        "|---|---|---|",
    ]
    for entry in CEREBRAS_KEYS:
        where = "/".join(entry.sections)
        rows.append(f"| `{where}.{entry.key}` | {entry.target} | {entry.why} |")
    rows.append("| `optimizer.learning_rate[i].steps` | `total_iters` | Cerebras 1.8/1.9 name of a phase's length |")
    return "\n".join(rows) + "\n"
