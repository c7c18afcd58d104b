"""Test helpers: a Hugging Face reference model and the same weights in our model, via the converter."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import torch
import transformers

from modelzoo.bert import BertForTokenClassification
from modelzoo.checkpoint.files import read_checkpoint
from modelzoo.tools.convert_checkpoint import convert

SMALL_HF_CONFIG = dict(
    vocab_size=120,
    hidden_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=96,
    max_position_embeddings=64,
    num_labels=7,
)


def small_hf_token_classifier(seed: int = 0) -> transformers.BertForTokenClassification:
    """A randomly initialised HF token classifier (sdpa attention) with non-trivial LayerNorms."""
    torch.manual_seed(seed)
    model = transformers.BertForTokenClassification(transformers.BertConfig(**SMALL_HF_CONFIG))
    with torch.no_grad():  # HF initialises LayerNorm to 1/0; perturb so a mapping mistake shows
        for name, parameter in model.named_parameters():
            if "LayerNorm" in name:
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


def ours_from_hf(hf_model: torch.nn.Module, workdir: Path) -> BertForTokenClassification:
    """Save ``hf_model``, convert it with the project's converter, and load it into our model."""
    hf_dir, ours_dir = workdir / "hf", workdir / "modelzoo"
    hf_model.save_pretrained(hf_dir)
    convert(hf_dir, "hf", "modelzoo", ours_dir)
    state_dict, config = read_checkpoint(ours_dir, "modelzoo")
    model = BertForTokenClassification(config)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def padded_batch(vocab_size: int, lengths: List[int], seq_len: int, seed: int = 0) -> Dict[str, torch.Tensor]:
    """int32 feature dict with rows of the given real lengths, [CLS]=101-like id 2 first, padding 0."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.zeros(len(lengths), seq_len, dtype=torch.int32)
    attention_mask = torch.zeros_like(input_ids)
    token_type_ids = torch.zeros_like(input_ids)
    for row, length in enumerate(lengths):
        input_ids[row, :length] = torch.randint(1, vocab_size, (length,), generator=generator, dtype=torch.int32)
        attention_mask[row, :length] = 1
        token_type_ids[row, length // 2 : length] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
