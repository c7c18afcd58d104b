"""Token classification (NER): BERT + a linear layer over every position, tags read at each word's first piece."""

from __future__ import annotations

from typing import Any, Dict

from modelzoo.bert.config import BertConfig
from modelzoo.bert.heads import BertForTokenClassification
from modelzoo.data.labels import NON_ENTITY_LABELS
from modelzoo.data.vocab import read_label_vocab
from modelzoo.heads.spec import HeadSpec, register_head
from modelzoo.heads.token_classification.predictor import EntityPredictor
from modelzoo.heads.token_classification.task import TokenClassificationTask


def cerebras_section(config: BertConfig) -> Dict[str, Any]:
    """The classifier keys of Cerebras' ``BertForTokenClassification`` model section."""
    return {
        "encoder_output_dropout_rate": config.classifier_dropout, "num_classes": config.num_classes,
        "loss_weight": 1.0, "include_padding_in_loss": False,
    }


TOKEN_CLASSIFICATION = register_head(
    HeadSpec(
        name="token_classification",
        model_class=BertForTokenClassification,
        task_class=TokenClassificationTask,
        predictor_class=EntityPredictor,
        read_label_vocab=read_label_vocab,
        best_metric="f1",
        hf_architecture="BertForTokenClassification",
        pipeline_task="token-classification",
        pipeline_arguments='aggregation_strategy="first"',
        special_labels=NON_ENTITY_LABELS,
        onnx=True,
        converter_name="bert-token-classification",
        description="BertForTokenClassification (encoder + dropout + linear per token)",
        cerebras_processors=("BertTokenClassifierDataProcessor",),
        cerebras_section=cerebras_section,
        cerebras_markers=(),
    )
)
