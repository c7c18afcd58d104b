"""The head registry: one :class:`HeadSpec` per head, and the only place a head's name is looked at.

A head is everything that differs between tasks: the model class, what it trains and scores on (its
:class:`~modelzoo.heads.task.Task`: reader, collator, collector), the eval figure its best
checkpoint is judged by, how it leaves the zoo (Hugging Face architecture and pipeline task, ONNX
or not), how it tags raw text (its predictor) and what Cerebras calls it. Everything else (the loop,
the back-ends, checkpoints, export, predict, serve) asks the spec of ``model.head`` and never
compares the name. A new head is one ``register_head(HeadSpec(...))``, in its own module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple, Type

from torch import nn

from modelzoo.bert.config import BertConfig
from modelzoo.common.errors import ParamsError


@dataclass(frozen=True)
class HeadSpec:
    """One head: ``name`` is the ``model.head`` value that selects it.

    - ``model_class(config)``: the module; ``task_class(params)``: its :class:`~modelzoo.heads.task.Task`;
      ``predictor_class``: a :class:`~modelzoo.heads.prediction.LinePredictor` (raw lines -> records).
    - ``read_label_vocab(path)``: the head's ``label2id.json`` reader, with the checks its labels need.
    - ``best_metric``: the eval figure ``best_checkpoint.mdl`` follows unless
      ``runconfig.best_checkpoint_metric`` names another.
    - ``hf_architecture``, ``pipeline_task``, ``pipeline_arguments``: the Hugging Face class its
      exported ``config.json`` names, the ``transformers.pipeline`` task of its model card and that
      call's extra arguments; ``special_labels``: labels the export names ``O`` (see
      :mod:`modelzoo.checkpoint.hf_export`).
    - ``onnx``: whether ``--tgt-fmt onnx`` and ``--engine onnxruntime`` serve it.
    - ``converter_name``, ``description``: its ``convert_checkpoint --model`` choice and help.
    - ``cerebras_processors``: the ``data_processor`` names of Cerebras configs that train it;
      ``cerebras_section(config)``: the classifier keys of the ``model:`` section Cerebras' own
      converter writes for it; ``cerebras_markers``: keys that mark such a section as this head's
      (none: the head of a section that no other head's markers claim).
    """

    name: str
    model_class: Type[nn.Module]
    task_class: Type[Any]
    predictor_class: Type[Any]
    read_label_vocab: Callable[[Path], Dict[str, int]]
    best_metric: str
    hf_architecture: str
    pipeline_task: str
    pipeline_arguments: str
    special_labels: FrozenSet[str]
    onnx: bool
    converter_name: str
    description: str
    cerebras_processors: Tuple[str, ...]
    cerebras_section: Callable[[BertConfig], Dict[str, Any]]
    cerebras_markers: Tuple[str, ...]


_HEADS: Dict[str, HeadSpec] = {}


def register_head(spec: HeadSpec) -> HeadSpec:
    """Make ``spec`` the head ``model.head: <spec.name>`` selects; a name is registered once."""
    if spec.name in _HEADS and _HEADS[spec.name] is not spec:
        raise ValueError(f"a head named {spec.name!r} is registered already")
    _HEADS[spec.name] = spec
    return spec


def unregister_head(name: str) -> None:
    """Forget the head ``name`` (a plug-in's tests register a head and take it back)."""
    del _HEADS[name]


def head_names() -> List[str]:
    return list(_HEADS)


def head_spec(name: str) -> HeadSpec:
    """The spec of ``model.head: name``; an unknown name is a ParamsError listing the registered ones."""
    if name not in _HEADS:
        raise ParamsError(f"model.head: unknown head {name!r}; registered heads: {', '.join(_HEADS)}")
    return _HEADS[name]


def head_of_hf_architectures(architectures: List[str]) -> Optional[HeadSpec]:
    """The head whose Hugging Face class a ``config.json``'s ``architectures`` names (None: a bare encoder)."""
    return next((spec for spec in _HEADS.values() if spec.hf_architecture in architectures), None)


def head_of_converter_name(name: str) -> HeadSpec:
    return next(spec for spec in _HEADS.values() if spec.converter_name == name)


def head_of_cerebras_processor(processor: str) -> Optional[HeadSpec]:
    return next((spec for spec in _HEADS.values() if processor in spec.cerebras_processors), None)


def head_of_cerebras_section(section: Dict[str, Any]) -> HeadSpec:
    """The head a Cerebras ``model:`` section describes: the one whose marker keys it holds, else the
    head without markers."""
    marked = [spec for spec in _HEADS.values() if any(key in section for key in spec.cerebras_markers)]
    unmarked = [spec for spec in _HEADS.values() if not spec.cerebras_markers]
    return (marked or unmarked)[0]


def cerebras_processor_names() -> List[str]:
    return [processor for spec in _HEADS.values() for processor in spec.cerebras_processors]
