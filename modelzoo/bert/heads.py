"""Task heads on top of :class:`BertModel`.

Heads take the feature-dict tensors as keyword arguments and return :class:`ModelOutput`
(logits, and the loss when labels are given). The loss is averaged over the positions the
``loss_mask`` selects, computed with a multiply rather than boolean indexing so that shapes stay
static (no host sync on GPU, compilable by torch.compile and poptorch).
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.bert.config import BertConfig
from modelzoo.bert.model import BertModel, init_weights
from modelzoo.data.labels import IGNORE_LABEL


class ModelOutput(NamedTuple):
    logits: torch.Tensor
    loss: Optional[torch.Tensor] = None


def masked_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor, class_weights: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Mean cross-entropy over the positions where ``loss_mask`` is non-zero (``IGNORE_LABEL`` never counts).

    Computed in float32 whatever the autocast dtype, so that bf16/fp16 runs average the same loss.
    ``class_weights`` (one per label) scale each position's term by its label's weight; the mean is
    still over the positions (not over their weights), so the loop's weighting of batches by their
    loss positions keeps several batches equal to one.
    """
    weight = None if class_weights is None else class_weights.float()
    per_position = F.cross_entropy(
        logits.flatten(0, -2).float(), labels.flatten().long(), weight=weight, reduction="none",
        ignore_index=IGNORE_LABEL,
    )
    weights = (loss_mask.flatten() != 0) & (labels.flatten() != IGNORE_LABEL)
    weights = weights.to(per_position.dtype)
    return (per_position * weights).sum() / weights.sum().clamp(min=1.0)


class _BertWithClassifier(nn.Module):
    """The encoder, then dropout and a linear classifier: what both heads share."""

    add_pooling_layer = False

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=self.add_pooling_layer)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_classes)
        init_weights(self.classifier, config)


class BertForTokenClassification(_BertWithClassifier):
    """BERT + dropout + linear over every position (NER); packed rows use the same head and mask.

    ``loss_mask`` picks the positions the loss counts (the readers set it on first word pieces,
    and on ``[CLS]``/``[SEP]``/``X`` only when the input config asks). Without it, every
    non-padding position whose label is not ``IGNORE_LABEL`` counts. ``skip_padding``: see
    :class:`BertModel`. A subclass changes the loss by overriding :meth:`loss`.

    ``class_weights`` (``model.class_weights``, a list, or set by the task for ``auto``) weigh the
    training loss only: in eval mode the loss is the plain mean, so runs with and without weights
    report comparable evaluation losses. They are not saved with the weights (a training choice).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        weights = config.class_weights if isinstance(config.class_weights, list) else None
        self.register_buffer("class_weights", None if weights is None else torch.tensor(weights), persistent=False)

    def set_class_weights(self, weights: List[float]) -> None:
        """Weigh the training loss per label id (``model.class_weights: auto`` resolved by the task)."""
        self.class_weights = torch.tensor(weights, device=self.classifier.weight.device)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        loss_mask: Optional[torch.Tensor] = None,
        skip_padding: bool = False,
    ) -> ModelOutput:
        sequence_output = self.bert(input_ids, attention_mask, token_type_ids, position_ids, skip_padding)
        logits = self.classifier(self.dropout(sequence_output))
        if labels is None:
            return ModelOutput(logits)
        if loss_mask is None:
            loss_mask = attention_mask if attention_mask is not None else torch.ones_like(labels)
        return ModelOutput(logits, self.loss(logits, labels, loss_mask))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
        return masked_cross_entropy(logits, labels, loss_mask, self.class_weights if self.training else None)


class PackedBertForSequenceClassification(_BertWithClassifier):
    """BERT classifying every sequence of a packed row (SST-2 style), one [CLS] each.

    The packer moves the [CLS] of each of a row's (up to) ``max_sequences_per_pack`` sequences to
    the last ``max_sequences_per_pack`` positions, so the pooler (dense + tanh, built here and only
    here) reads a fixed slice: static shapes, no gather. Logits come out as
    ``[batch * max_sequences_per_pack, num_classes]``; empty slots carry ``IGNORE_LABEL`` and are
    ignored. With ``max_sequences_per_pack`` = 1 and [CLS] at the end this is plain sequence
    classification. ``skip_padding``: see :class:`BertModel` (an empty [CLS] slot is padding: its
    logits are unused).
    """

    add_pooling_layer = True

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        skip_padding: bool = False,
    ) -> ModelOutput:
        sequence_output = self.bert(input_ids, attention_mask, token_type_ids, position_ids, skip_padding)
        cls_states = sequence_output[:, -self.config.max_sequences_per_pack :]
        pooled = self.bert.pooler(cls_states)
        logits = self.classifier(self.dropout(pooled)).flatten(0, 1)
        if labels is None:
            return ModelOutput(logits)
        labels = labels.flatten()
        return ModelOutput(logits, masked_cross_entropy(logits, labels, torch.ones_like(labels)))
