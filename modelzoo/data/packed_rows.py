"""Packed model rows: the sequences :func:`modelzoo.data.packing.assign_sequences` dealt into packs, laid out
as the heads read them.

Token classification keeps every sequence whole, [CLS] in place, one after the other
(:func:`pack_token_examples`); the packed sequence classifier moves every [CLS] to the row's last
slots, where its pooler reads them (:func:`pack_classification_examples`). Both mark the tokens of
a pack's j-th sequence with attention-mask value j (0 for padding), from which the model builds its
block-diagonal attention, and restart position ids at every sequence.
"""

from __future__ import annotations

from typing import Dict, Mapping, Sequence, Union

import numpy as np

from modelzoo.data.csv_layout import NO_WORD
from modelzoo.data.labels import IGNORE_LABEL


def pack_classification_examples(
    examples: Sequence[Mapping[str, Union[np.ndarray, int]]],
    pack_indices: np.ndarray,
    max_sequence_length: int,
    pad_id: int,
) -> Dict[str, np.ndarray]:
    """Packed sequence-classification features (the Graphcore packed-BERT layout), int32.

    ``examples[i]`` holds ``input_ids`` and ``token_type_ids`` (unpadded, starting with [CLS]) and a
    scalar ``labels``; ``pack_indices`` comes from :func:`assign_sequences`. With
    ``S = pack_indices.shape[1]`` (max sequences per pack), sequence j (1-based) of a pack gets:

    * its tokens after [CLS] concatenated after those of sequences 1..j-1 from position 0 of the row,
      position ids 1, 2, ... (as if [CLS] still stood before them), attention mask j;
    * its [CLS] moved to row position ``max_sequence_length - S + j - 1`` with position id 0, token
      type as in the example, attention mask j; the pooler reads the last S positions;
    * ``labels[j - 1]`` its label. Empty slots: [CLS] slot of ``pad_id`` and mask 0 (padding),
      label ``IGNORE_LABEL``.

    Returns ``input_ids``, ``attention_mask``, ``token_type_ids``, ``position_ids`` of shape
    ``[num_packs, max_sequence_length]`` and ``labels`` of shape ``[num_packs, S]``. The bodies of a
    pack must fit in the first ``max_sequence_length - S`` positions (plan with lengths - 1 and
    capacity ``max_sequence_length - S``); ValueError otherwise.
    """
    num_packs, slots = pack_indices.shape
    body_room = max_sequence_length - slots
    shape = (num_packs, max_sequence_length)
    features = {name: np.zeros(shape, dtype=np.int32) for name in ("attention_mask", "token_type_ids", "position_ids")}
    features["input_ids"] = np.full(shape, pad_id, dtype=np.int32)
    features["labels"] = np.full((num_packs, slots), IGNORE_LABEL, dtype=np.int32)
    for row, members in enumerate(pack_indices):
        start = 0
        for slot, index in enumerate(members[members >= 0]):
            example = examples[index]
            input_ids, token_type_ids = example["input_ids"], example["token_type_ids"]
            end = start + len(input_ids) - 1
            if end > body_room:
                raise ValueError(
                    f"pack {row} needs {end} body positions but only {body_room} are left before its {slots} [CLS] slots"
                )
            cls_position = body_room + slot
            features["input_ids"][row, start:end] = input_ids[1:]
            features["input_ids"][row, cls_position] = input_ids[0]
            features["token_type_ids"][row, start:end] = token_type_ids[1:]
            features["token_type_ids"][row, cls_position] = token_type_ids[0]
            features["position_ids"][row, start:end] = np.arange(1, end - start + 1)
            features["attention_mask"][row, start:end] = slot + 1
            features["attention_mask"][row, cls_position] = slot + 1
            features["labels"][row, slot] = example["labels"]
            start = end
    return features


def pack_token_examples(
    examples: Sequence[Mapping[str, Union[np.ndarray, int]]],
    pack_indices: np.ndarray,
    max_sequence_length: int,
    pad_id: int,
) -> Dict[str, np.ndarray]:
    """Packed token-classification features, int32: sequences concatenated, [CLS] kept in place.

    ``examples[i]`` holds unpadded int arrays ``input_ids``, ``labels``, ``loss_mask``,
    ``word_index`` (and optionally ``token_type_ids``; zeros otherwise) plus a scalar
    ``sentence_index``; ``pack_indices`` comes from :func:`assign_sequences`. Every per-token feature
    travels with its tokens; ``position_ids`` restart at 0 per sequence; ``attention_mask`` is j for
    every token of the pack's j-th sequence, 0 for padding; padding holds ``pad_id`` (the vocab's
    [PAD]), label and loss mask 0 (so padding never counts) and word index -1. ``sentence_index`` has shape
    ``[num_packs, max_sequences_per_pack]`` (-1 for an empty slot), so evaluation maps every
    prediction back to its sentence. ValueError if a pack is longer than ``max_sequence_length``.
    """
    num_packs, slots = pack_indices.shape
    shape = (num_packs, max_sequence_length)
    pad_values = {"input_ids": pad_id, "labels": 0, "loss_mask": 0, "word_index": NO_WORD, "token_type_ids": 0}
    features = {name: np.full(shape, pad, dtype=np.int32) for name, pad in pad_values.items()}
    features["attention_mask"] = np.zeros(shape, dtype=np.int32)
    features["position_ids"] = np.zeros(shape, dtype=np.int32)
    features["sentence_index"] = np.full((num_packs, slots), -1, dtype=np.int32)
    carried = [name for name in pad_values if name != "token_type_ids"]
    for row, members in enumerate(pack_indices):
        start = 0
        for slot, index in enumerate(members[members >= 0]):
            example = examples[index]
            end = start + len(example["input_ids"])
            if end > max_sequence_length:
                raise ValueError(f"pack {row} needs {end} positions, more than max_sequence_length {max_sequence_length}")
            for name in carried:
                features[name][row, start:end] = example[name]
            if "token_type_ids" in example:
                features["token_type_ids"][row, start:end] = example["token_type_ids"]
            features["position_ids"][row, start:end] = np.arange(end - start)
            features["attention_mask"][row, start:end] = slot + 1
            features["sentence_index"][row, slot] = example["sentence_index"]
            start = end
    return features
