"""The hand-written model on its own: config validation, masks, packed rows, the loss mask."""

from __future__ import annotations

import pytest
import torch

from modelzoo.bert import BertConfig, BertForTokenClassification
from modelzoo.bert.model import RealTokens, block_diagonal_attention_mask
from modelzoo.common.errors import ParamsError
from tests.hf_reference import padded_batch

SMALL = dict(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_heads=4, filter_size=64, num_classes=5)


def small_model(**overrides) -> BertForTokenClassification:
    torch.manual_seed(0)
    return BertForTokenClassification(BertConfig(**{**SMALL, **overrides})).eval()


def test_config_rejects_hidden_size_not_divisible_by_heads():
    with pytest.raises(ParamsError, match=r"hidden_size \(30\) must be divisible by model.num_heads \(4\)"):
        BertConfig.from_dict({**SMALL, "hidden_size": 30})


def test_config_rejects_unknown_nonlinearity():
    with pytest.raises(ParamsError, match="model.encoder_nonlinearity: expected 'gelu'"):
        BertConfig.from_dict({**SMALL, "encoder_nonlinearity": "swish"})


def test_config_names_the_nearest_key_for_a_misspelling():
    with pytest.raises(ParamsError, match="unknown key 'num_head' \\(did you mean 'num_heads'\\?\\)"):
        BertConfig.from_dict({"num_head": 12})


def test_block_diagonal_mask_keeps_sequences_apart_and_padding_rows_non_empty():
    mask = block_diagonal_attention_mask(torch.tensor([[1, 1, 2, 2, 2, 0]]))[0, 0]
    assert mask[0].tolist() == [True, True, False, False, False, False]
    assert mask[3].tolist() == [False, False, True, True, True, False]
    assert mask[5].tolist() == [False, False, False, False, False, True]


@torch.no_grad()
def test_packed_row_gives_each_sequence_its_logits_alone():
    model = small_model()
    generator = torch.Generator().manual_seed(1)
    lengths, row_length = [5, 9, 1, 4], 24
    sequences = [torch.randint(1, 50, (n,), generator=generator, dtype=torch.int32) for n in lengths]
    packed_ids = torch.zeros(1, row_length, dtype=torch.int32)
    sequence_index = torch.zeros_like(packed_ids)
    position_ids = torch.zeros_like(packed_ids)
    token_type_ids = torch.zeros_like(packed_ids)
    start = 0
    for index, tokens in enumerate(sequences, start=1):
        span = slice(start, start + len(tokens))
        packed_ids[0, span], sequence_index[0, span] = tokens, index
        position_ids[0, span] = torch.arange(len(tokens))
        token_type_ids[0, span] = (torch.arange(len(tokens)) >= len(tokens) // 2).int()
        start += len(tokens)
    packed = model(
        input_ids=packed_ids, attention_mask=sequence_index, token_type_ids=token_type_ids, position_ids=position_ids
    ).logits
    start = 0
    for tokens in sequences:
        span = slice(start, start + len(tokens))
        alone = model(input_ids=tokens[None], token_type_ids=token_type_ids[:, span]).logits[0]
        assert (packed[0, span] - alone).abs().max().item() <= 1e-5
        start += len(tokens)


def test_loss_counts_only_masked_positions():
    model = small_model()
    input_ids = torch.randint(1, 50, (2, 8), dtype=torch.int32)
    labels = torch.randint(0, 5, (2, 8), dtype=torch.int32)
    loss_mask = torch.zeros_like(labels)
    loss_mask[0, 1:4] = 1
    output = model(input_ids=input_ids, labels=labels, loss_mask=loss_mask)
    expected = torch.nn.functional.cross_entropy(output.logits[0, 1:4], labels[0, 1:4].long())
    assert torch.allclose(output.loss, expected, atol=1e-6)
    changed = labels.clone()
    changed[1] = (changed[1] + 1) % 5  # labels outside the mask must not matter
    assert torch.equal(model(input_ids=input_ids, labels=changed, loss_mask=loss_mask).loss, output.loss)


def test_real_tokens_attend_per_sequence_in_blocks_of_one_length():
    """Rows sorted by length: the blocks are views of the tokens as they come (no reordering); packed
    rows: the sequences are gathered by length, and each token's output goes back to its place."""
    sorted_rows = RealTokens(torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]))
    assert (sorted_rows.order, sorted_rows.blocks) == (None, [(2, 3), (1, 5)])
    packed = RealTokens(torch.tensor([[1, 1, 1, 2, 2], [1, 1, 2, 2, 0]]))
    assert packed.blocks == [(3, 2), (1, 3)]
    tokens = torch.arange(9.0)[:, None]  # token i holds i
    seen = []

    def attend(block: torch.Tensor) -> torch.Tensor:
        seen.append(block[..., 0].tolist())
        return block * 10

    assert packed.per_sequence(tokens, attend)[:, 0].tolist() == [10.0 * i for i in range(9)]
    assert seen == [[[3.0, 4.0], [5.0, 6.0], [7.0, 8.0]], [[0.0, 1.0, 2.0]]]


def test_skip_padding_keeps_the_matmul_attention_kernel(monkeypatch):
    """bfloat16 training on a CPU picks matmul attention for its speed; skipping padding must not swap it back."""
    model = small_model()
    batch = padded_batch(SMALL["vocab_size"], [5, 2, 7], 8)
    with torch.no_grad():
        sdpa_logits = model(**batch, skip_padding=True).logits
        model.bert.use_attention_kernel("matmul")

        def no_sdpa(*args, **kwargs):
            raise AssertionError("SDPA ran under attention_kernel='matmul'")

        monkeypatch.setattr("modelzoo.bert.model.F.scaled_dot_product_attention", no_sdpa)
        matmul_logits = model(**batch, skip_padding=True).logits
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(matmul_logits[real], sdpa_logits[real], rtol=0, atol=1e-5)


def test_skip_padding_handles_an_empty_row_and_an_all_padding_batch():
    model = small_model()
    batch = padded_batch(SMALL["vocab_size"], [4, 0, 6], 8)
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        padded, skipped = (model(**batch, skip_padding=skip).logits for skip in (False, True))
        torch.testing.assert_close(skipped[real], padded[real], rtol=0, atol=1e-5)
        empty = {name: torch.zeros_like(value) for name, value in batch.items()}
        sequence_output = model.bert(empty["input_ids"], empty["attention_mask"], skip_padding=True)
    assert sequence_output.shape == (3, 8, SMALL["hidden_size"]) and sequence_output.abs().max() == 0


def test_without_labels_only_logits_come_back():
    output = small_model()(input_ids=torch.ones(1, 4, dtype=torch.int32))
    assert output.loss is None and output.logits.shape == (1, 4, 5)


def test_skip_padding_gives_the_same_logits_loss_and_gradients_and_zeros_at_padding():
    model = small_model(dropout_rate=0.0, attention_dropout_rate=0.0).train()
    batch = padded_batch(SMALL["vocab_size"], [11, 3, 7, 1], 12)
    batch["labels"] = torch.randint(0, SMALL["num_classes"], (4, 12), generator=torch.Generator().manual_seed(3))
    real = batch["attention_mask"].bool()
    results = {}
    for skip in (False, True):
        model.zero_grad()
        output = model(**batch, skip_padding=skip)
        output.loss.backward()
        results[skip] = output, {name: p.grad.clone() for name, p in model.named_parameters()}
    (padded, padded_grads), (skipped, skipped_grads) = results[False], results[True]
    torch.testing.assert_close(skipped.logits[real], padded.logits[real], rtol=0, atol=1e-5)
    torch.testing.assert_close(skipped.loss, padded.loss, rtol=1e-5, atol=0)
    for name, grad in padded_grads.items():
        assert (skipped_grads[name] - grad).abs().max() <= 1e-5 * grad.abs().max().clamp(min=1e-12), name
    with torch.no_grad():
        sequence_output = model.bert(batch["input_ids"], batch["attention_mask"], skip_padding=True)
    assert sequence_output[~real].abs().max() == 0 and sequence_output[real].abs().min() > 0
