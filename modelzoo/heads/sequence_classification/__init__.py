"""Packed sequence classification: BERT + the tanh pooler over each packed sequence's [CLS] + a linear layer."""

from __future__ import annotations

from typing import Any, Dict

from modelzoo.bert.config import BertConfig
from modelzoo.bert.heads import PackedBertForSequenceClassification
from modelzoo.data.vocab import read_classifier_label_vocab
from modelzoo.heads.sequence_classification.predictor import LabelPredictor
from modelzoo.heads.sequence_classification.task import SequenceClassificationTask
from modelzoo.heads.spec import HeadSpec, register_head


def cerebras_section(config: BertConfig) -> Dict[str, Any]:
    """The classifier keys of Cerebras' ``BertForSequenceClassification`` model section."""
    return {"task_dropout": config.classifier_dropout, "num_labels": config.num_classes,
            "problem_type": "single_label_classification"}


SEQUENCE_CLASSIFICATION = register_head(
    HeadSpec(
        name="sequence_classification",
        model_class=PackedBertForSequenceClassification,
        task_class=SequenceClassificationTask,
        predictor_class=LabelPredictor,
        read_label_vocab=read_classifier_label_vocab,
        best_metric="accuracy",
        hf_architecture="BertForSequenceClassification",
        pipeline_task="text-classification",
        pipeline_arguments="",
        special_labels=frozenset(),
        onnx=False,
        converter_name="bert-sequence-classification",
        description="PackedBertForSequenceClassification (encoder + pooler + linear per [CLS])",
        cerebras_processors=("SST2DataProcessor", "MNLIDataProcessor"),
        cerebras_section=cerebras_section,
        cerebras_markers=("num_labels", "problem_type"),
    )
)
