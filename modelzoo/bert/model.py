"""A hand-written BERT encoder: embeddings, post-LN self-attention layers, optional tanh pooler.

Written out rather than imported so that every step is visible and can be changed for a device
(packed masks, IPU pipeline stages, fused QKV). Numerically equal to Hugging Face's ``BertModel``
on converted weights; the one layout difference is that query, key and value share one fused
``qkv`` projection (one matrix multiply instead of three), which the checkpoint converter splits
and joins. Attention has two kernels of the same arithmetic (:meth:`BertModel.use_attention_kernel`):
``scaled_dot_product_attention`` for CPU and GPU, and explicit matmul / softmax / matmul for the
IPU, whose poptorch has no SDPA. The tanh pooler is built only for a head that pools
(``add_pooling_layer``, as in Hugging Face), and that head applies it to the positions it reads.
"""

from __future__ import annotations

from typing import Callable, Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.bert.config import BertConfig

_ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


AttentionKernel = Literal["sdpa", "matmul"]
ATTENTION_KERNELS = ("sdpa", "matmul")


def block_diagonal_attention_mask(sequence_index: torch.Tensor) -> torch.Tensor:
    """``[batch, seq]`` sequence-index mask -> boolean ``[batch, 1, seq, seq]`` "may attend" mask.

    ``sequence_index`` holds 1..k for the tokens of the k sequences packed in a row and 0 for
    padding; a plain 0/1 padding mask is the special case k = 1, so both go through this one path.
    A token attends to the tokens of its own sequence. Padding attends to padding: its output is
    never used, and it keeps every row of the mask non-empty (an empty row is NaN in softmax).
    """
    same_sequence = sequence_index[:, :, None] == sequence_index[:, None, :]
    return same_sequence[:, None]


def additive_attention_mask(may_attend: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean "may attend" mask -> 0 where a token may attend, a large negative number elsewhere.

    Half the dtype's lowest value: a score plus it still makes exp() exactly 0, so softmax equals
    SDPA's boolean masking, and it leaves room for the score, so float16 does not overflow to -inf.
    """
    return (~may_attend).to(dtype) * (torch.finfo(dtype).min / 2)


def matmul_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, additive_mask: torch.Tensor, scale: float,
    dropout_rate: float, training: bool,
) -> torch.Tensor:
    """softmax(q k^T * scale + mask) v with dropout on the probabilities, in operations poptorch lists
    (``torch.matmul``, ``Softmax``, ``dropout``); no shape depends on the data."""
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale
    probabilities = F.dropout(F.softmax(scores + additive_mask, dim=-1), dropout_rate, training)
    return torch.matmul(probabilities, value)


class RealTokens:
    """Where the real (non-padding) tokens of a ``[batch, seq]`` batch sit and which sequence each
    belongs to, to run the encoder on them alone: every linear, GELU and LayerNorm on ``[tokens,
    hidden]`` instead of ``[batch, seq, hidden]``, and attention on each sequence alone, with neither
    padding nor mask. A sequence is the tokens of one row that share a mask value (one a row for a 0/1
    mask, 1..k for a packed row), so real outputs come out as in the padded, masked batch.

    Attention runs once for each sequence length, on one ``[sequences, length]`` block of all the
    batch's sequences of that length: a few SDPA calls a batch, not one a sequence. The tokens are put
    in block order once a batch; when they already are (one sequence a row, rows sorted by length, as
    prediction batches them) the blocks are views and nothing is copied. Skipping the padding and the
    mask this way does less work than gathering the tokens back into padded rows for every attention.
    The token count and the blocks depend on the data, so this is for eager runs, not poptorch or
    torch.compile.
    """

    def __init__(self, attention_mask: torch.Tensor) -> None:
        self.batch, self.seq = attention_mask.shape
        mask_values = attention_mask.flatten().long()
        self.index = torch.nonzero(mask_values).squeeze(1)
        # one key per (row, mask value); a row holds at most seq sequences, so values are at most seq
        row_and_value = self.index // self.seq * (self.seq + 1) + mask_values[self.index]
        _, sequence, lengths = torch.unique(row_and_value, return_inverse=True, return_counts=True)
        # by (length, sequence); a stable sort keeps each sequence's tokens in position order
        order = torch.argsort(lengths[sequence] * len(lengths) + sequence, stable=True)
        in_order = torch.equal(order, torch.arange(len(order), device=order.device))
        self.order = None if in_order else order
        self.inverse_order = None if in_order else torch.argsort(order)
        block_lengths, block_sizes = torch.unique(lengths, return_counts=True)
        # an all-padding batch: one empty block, so that attention still gives its [0, d'] output
        self.blocks = list(zip(block_sizes.tolist(), block_lengths.tolist())) or [(0, 1)]

    def drop_padding(self, rows: torch.Tensor) -> torch.Tensor:
        """``[batch, seq, ...]`` -> ``[tokens, ...]``."""
        return rows.flatten(0, 1).index_select(0, self.index)

    def pad(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[tokens, d]`` -> ``[batch, seq, d]`` with zeros at the padding."""
        rows = tokens.new_zeros(self.batch * self.seq, tokens.shape[-1]).index_copy_(0, self.index, tokens)
        return rows.view(self.batch, self.seq, -1)

    def per_sequence(
        self, tokens: torch.Tensor, attend: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """``attend`` (``[sequences, length, d]`` -> ``[sequences, length, d']``) on every block of
        ``tokens`` (``[tokens, d]``); the outputs as ``[tokens, d']``, in the tokens' order."""
        if self.order is not None:
            tokens = tokens.index_select(0, self.order)
        outputs, start = [], 0
        for sequences, length in self.blocks:
            block = tokens[start : start + sequences * length].view(sequences, length, tokens.shape[-1])
            outputs.append(attend(block).flatten(0, 1))
            start += sequences * length
        output = torch.cat(outputs) if len(outputs) != 1 else outputs[0]
        return output if self.inverse_order is None else output.index_select(0, self.inverse_order)


class BertEmbeddings(nn.Module):
    """Word + position + token-type embeddings, then LayerNorm and dropout.

    The word embedding has no ``padding_idx``, which poptorch does not support: :func:`init_weights`
    zeroes the [PAD] row instead. The forward is the same either way, and so is training: padding never
    reaches a position the loss counts, so the [PAD] row's gradient is zero without ``padding_idx`` too.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.pad_token_id = config.pad_token_id
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, position_ids: torch.Tensor
    ) -> torch.Tensor:
        embeddings = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(position_ids)
            + self.token_type_embeddings(token_type_ids)
        )
        return self.dropout(self.layer_norm(embeddings))


class BertSelfAttention(nn.Module):
    """Multi-head self-attention. A boolean mask runs ``scaled_dot_product_attention`` (fused kernels
    where possible); an additive float mask (:func:`additive_attention_mask`) runs :func:`matmul_attention`."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_size = config.head_size
        self.scale = config.head_size**-0.5
        self.dropout_rate = config.attention_dropout_rate
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.output = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor],
        real_tokens: Optional[RealTokens] = None,
    ) -> torch.Tensor:
        """``[batch, seq, hidden]`` with its mask, or ``[tokens, hidden]`` with ``real_tokens`` and a
        mask that masks nothing (None for SDPA, an additive 0 for :func:`matmul_attention`)."""
        return self.output(self.context(hidden_states, attention_mask, real_tokens))

    def context(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor],
        real_tokens: Optional[RealTokens] = None,
    ) -> torch.Tensor:
        """The attention's output before its output projection (arguments as :meth:`forward`)."""
        qkv = self.qkv(hidden_states)
        if real_tokens is None:
            return self._attend(qkv, attention_mask)
        return real_tokens.per_sequence(qkv, lambda block: self._attend(block, attention_mask))

    def _attend(self, qkv: torch.Tensor, attention_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """``[batch, seq, 3 * hidden]`` -> ``[batch, seq, hidden]``; a boolean mask or None runs SDPA."""
        batch, seq, _ = qkv.shape
        # [batch, seq, 3, heads, head_size] -> three [batch, heads, seq, head_size]
        query, key, value = qkv.view(batch, seq, 3, self.num_heads, self.head_size).permute(2, 0, 3, 1, 4).unbind(0)
        if attention_mask is None or attention_mask.dtype == torch.bool:
            context = F.scaled_dot_product_attention(
                query, key, value, attn_mask=attention_mask, dropout_p=self.dropout_rate if self.training else 0.0
            )
        else:
            context = matmul_attention(
                query, key, value, attention_mask, self.scale, self.dropout_rate, self.training
            )
        return context.transpose(1, 2).flatten(2)


class BertLayer(nn.Module):
    """One post-LN encoder layer: attention -> dropout -> add & norm -> FFN -> dropout -> add & norm."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertSelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.intermediate = nn.Linear(config.hidden_size, config.filter_size)
        self.activation = _ACTIVATIONS[config.encoder_nonlinearity]
        self.output = nn.Linear(config.filter_size, config.hidden_size)
        self.output_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor],
        real_tokens: Optional[RealTokens] = None,
    ) -> torch.Tensor:
        attended = self.dropout(self.attention(hidden_states, attention_mask, real_tokens))
        hidden_states = self.attention_norm(hidden_states + attended)
        transformed = self.dropout(self.output(self.activation(self.intermediate(hidden_states))))
        return self.output_norm(hidden_states + transformed)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor],
        real_tokens: Optional[RealTokens] = None,
    ) -> torch.Tensor:
        for layer in self.layer:
            hidden_states = layer(hidden_states, attention_mask, real_tokens)
        return hidden_states


class BertPooler(nn.Module):
    """Dense + tanh over selected positions (the [CLS] tokens)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, cls_states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(cls_states))


class BertModel(nn.Module):
    """The BERT encoder: ``[batch, seq]`` ids -> ``[batch, seq, hidden]`` states.

    ``add_pooling_layer`` builds the tanh pooler (``self.pooler``) for a head that pools; the
    encoder never applies it, since only that head knows which positions hold its [CLS] tokens.
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = False) -> None:
        super().__init__()
        self.config = config
        self.attention_kernel: AttentionKernel = "sdpa"
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.apply(lambda module: init_weights(module, config))

    def use_attention_kernel(self, kernel: AttentionKernel) -> None:
        """Compute attention with ``kernel``: "sdpa" (CPU, GPU) or "matmul" (the IPU, whose poptorch lists
        matmul and softmax but not SDPA; and CPU bfloat16 training, where SDPA's backward is slow).
        Both compute the same attention; the back-end chooses once, before running the model."""
        if kernel not in ATTENTION_KERNELS:
            raise ValueError(f"attention kernel must be one of {ATTENTION_KERNELS}, got {kernel!r}")
        self.attention_kernel = kernel

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        skip_padding: bool = False,
    ) -> torch.Tensor:
        """``attention_mask`` is a 0/1 padding mask or a packed 1..k sequence-index mask.

        Packed rows must pass ``position_ids`` (restarting at each sequence, as the packer writes
        them); without them positions count 0..seq-1, as for one sequence a row. ``skip_padding``
        runs the encoder on the real tokens only (:class:`RealTokens`); the outputs at padding
        positions are then zeros.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        if skip_padding:
            real_tokens = RealTokens(attention_mask)
            inputs = (real_tokens.drop_padding(ids) for ids in (input_ids, token_type_ids, position_ids))
            hidden_states = self.embeddings(*inputs)
            masks_nothing = None if self.attention_kernel == "sdpa" else hidden_states.new_zeros(())
            return real_tokens.pad(self.encoder(hidden_states, masks_nothing, real_tokens))
        hidden_states = self.embeddings(input_ids, token_type_ids, position_ids)
        mask = block_diagonal_attention_mask(attention_mask)
        if self.attention_kernel == "matmul":
            mask = additive_attention_mask(mask, hidden_states.dtype)
        return self.encoder(hidden_states, mask)


@torch.no_grad()
def init_weights(module: nn.Module, config: BertConfig) -> None:
    """BERT's initialisation: N(0, initializer_range) weights, zero biases, unit LayerNorm, zero [PAD] row.

    ``Module.apply`` visits children first, so the [PAD] row is zeroed after its embedding was drawn.
    """
    if isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.normal_(0.0, config.initializer_range)
    if isinstance(module, nn.Linear) and module.bias is not None:
        module.bias.zero_()
    if isinstance(module, BertEmbeddings):
        module.word_embeddings.weight[module.pad_token_id].zero_()
    if isinstance(module, nn.LayerNorm):
        module.weight.fill_(1.0)
        module.bias.zero_()
