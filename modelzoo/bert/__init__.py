"""Hand-written BERT: ``from modelzoo.bert import BertConfig, BertModel, BertForTokenClassification``."""

from modelzoo.bert.config import BertConfig
from modelzoo.bert.heads import BertForTokenClassification, ModelOutput, PackedBertForSequenceClassification
from modelzoo.bert.model import BertModel

__all__ = [
    "BertConfig",
    "BertModel",
    "BertForTokenClassification",
    "PackedBertForSequenceClassification",
    "ModelOutput",
]
