"""Reader for the classifier CSV folders of ``data_processing/write_csv_classifier.py``.

The folder is parsed once into int32 arrays in the layout of the packed sequence classifier
(:func:`modelzoo.data.packed_rows.pack_classification_examples`), one row per model input row:
``input_ids``, ``attention_mask`` (sequence index 1..k, 0 for padding), ``token_type_ids``,
``position_ids`` of shape ``[max_sequence_length]``; ``labels`` of shape ``[S]`` (-100 for empty
slots); and ``sequence_index`` of shape ``[S]``, the CSV example in each slot (-1 for empty), so
that evaluation can check that every example is scored exactly once. Every row reserves its last
``S`` positions for the [CLS] of its sequences, packed or not: with ``packing`` off a row holds one
sequence (S = 1 is plain sequence classification with [CLS] moved to the end, which changes nothing
but where [CLS] sits: attention does not depend on order, and its position id is still 0).

Packing happens here rather than offline: the strategy for a whole data set takes milliseconds, and
keeping the CSV unpacked lets one file serve any ``max_sequence_length`` and pack size. Which
sequences share a pack is drawn once, from ``shuffle_seed``; the order of the packs is reshuffled
every epoch like that of plain examples.

Batching, shuffling and sharding are every reader's (:mod:`modelzoo.data.batching`): ``batch_size``
counts rows, so a packed batch holds several times as many sequences.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple, Union

import numpy as np
from torch.utils.data import Dataset

from modelzoo.common.errors import DataFileError
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE, META_FILE, check_task, read_meta
from modelzoo.data.packed_rows import pack_classification_examples
from modelzoo.data.packing import Algorithm, PackingStats, assign_sequences, plan_classification_packing
from modelzoo.data.params import InputParams
from modelzoo.data.vocab import read_classifier_label_vocab

CSV_COLUMNS = ["input_ids", "token_type_ids", "labels"]


def read_classifier_csv(folder: Path, max_sequence_length: int) -> Tuple[List[dict], Dict[str, int]]:
    """Examples (``input_ids``, ``token_type_ids`` int32 arrays, ``labels`` int) and the label2id map.

    Checks what would otherwise fail deep inside training and says where (DataFileError,
    ``FILE:LINE: problem``): the shards of ``meta.dat`` have the expected header and row count, and
    every example fits in ``max_sequence_length`` with a label id of ``label2id.json``.
    """
    shards = read_meta(folder)
    check_task(folder, shards[0][0], CSV_COLUMNS[0])
    label2id = read_classifier_label_vocab(folder / LABEL_VOCAB_FILE)
    label_ids = set(label2id.values())
    examples = []
    for shard, expected_count, meta_line in shards:
        with open(shard, encoding="utf-8", newline="") as handle:
            rows = csv.reader(handle)
            if next(rows, None) != CSV_COLUMNS:
                raise DataFileError(shard, 1, f"header must be {','.join(CSV_COLUMNS)}")
            count = 0
            for line_number, row in enumerate(rows, start=2):
                examples.append(_parse_row(shard, line_number, row, max_sequence_length, label_ids))
                count += 1
        if count != expected_count:
            raise DataFileError(folder / META_FILE, meta_line, f"says {expected_count} examples in {shard.name}, found {count}")
    return examples, label2id


def _parse_row(shard: Path, line_number: int, row: List[str], max_sequence_length: int, label_ids: Set[int]) -> dict:
    try:
        input_ids, token_type_ids, label = row
        example = {
            "input_ids": np.array(input_ids.split(), dtype=np.int32),
            "token_type_ids": np.array(token_type_ids.split(), dtype=np.int32),
            "labels": int(label),
        }
    except ValueError as error:
        raise DataFileError(shard, line_number, f"expected {','.join(CSV_COLUMNS)} as integers ({error})") from None
    if len(example["input_ids"]) > max_sequence_length:
        raise DataFileError(
            shard, line_number, f"{len(example['input_ids'])} tokens, more than max_sequence_length "
            f"{max_sequence_length} (rewrite the CSV with --max_seq_length {max_sequence_length})"
        )
    if len(example["token_type_ids"]) != len(example["input_ids"]) or example["labels"] not in label_ids:
        raise DataFileError(shard, line_number, "token_type_ids length or label id does not match")
    return example


def classifier_packs(
    lengths: np.ndarray, max_sequence_length: int, slots: int, packing: bool, algorithm: Algorithm, seed: int
) -> Tuple[np.ndarray, Optional[PackingStats]]:
    """Which examples share each row, ``[rows, slots]`` (-1: empty slot): packed, or one example a row.

    The one layout rule of the sequence classifier, used by evaluation's reader and by predict, so
    both put a sequence in the same kind of row.
    """
    if not packing:
        packs = np.full((len(lengths), slots), -1, dtype=np.int64)
        packs[:, 0] = np.arange(len(lengths))
        return packs, None
    strategy, stats = plan_classification_packing(lengths, max_sequence_length, slots, algorithm)
    return assign_sequences(lengths - 1, strategy, slots, seed), stats


class ClassifierDataset(Dataset):
    """A split folder held as packed-layout int32 arrays; index it with an int or an array of indices."""

    def __init__(
        self,
        data_dir: Union[str, Path],
        max_sequence_length: int,
        pad_id: int,
        max_sequences_per_pack: int = 1,
        packing: bool = False,
        algorithm: Algorithm = "lpfhp",
        seed: int = 0,
    ):
        """Rows of ``max_sequences_per_pack`` [CLS] slots holding one sequence each, or packed (``packing``).

        ``pad_id`` fills the padding: the CSV holds ids, not tokens, so the model's [PAD] id comes from
        its config (``model.pad_token_id``) rather than from a vocab. ``seed`` draws which sequences
        share a pack (packing only).
        """
        self.label_vocab_file = Path(data_dir) / LABEL_VOCAB_FILE
        self.examples, self.label2id = read_classifier_csv(Path(data_dir), max_sequence_length)
        self.max_sequence_length = max_sequence_length
        self.lengths = np.array([len(example["input_ids"]) for example in self.examples], dtype=np.int64)
        slots = max_sequences_per_pack
        longest = max_sequence_length - slots + 1  # its body and the row's [CLS] slots fill the row
        too_long = np.flatnonzero(self.lengths > longest)
        if too_long.size:
            raise DataFileError(
                Path(data_dir), None, f"{too_long.size} examples (the first is number {too_long[0]}) have more than "
                f"{longest} tokens, which is all a row of {max_sequence_length} with {slots} [CLS] slots holds: "
                f"rewrite the CSV with --max_seq_length {longest} or raise max_sequence_length"
            )
        packs, self.packing_stats = classifier_packs(self.lengths, max_sequence_length, slots, packing, algorithm, seed)
        self.features = pack_classification_examples(self.examples, packs, max_sequence_length, pad_id)
        self.features["sequence_index"] = packs.astype(np.int32)

    @classmethod
    def from_params(cls, params: InputParams, pad_id: int, max_sequences_per_pack: int) -> ClassifierDataset:
        """The split of an input section, rows with ``max_sequences_per_pack`` [CLS] slots (the model's)."""
        return cls(
            params.data_dir, params.max_sequence_length, pad_id, max_sequences_per_pack, params.packing,
            params.packing_algorithm, params.shuffle_seed,
        )

    def __len__(self) -> int:
        return len(self.features["input_ids"])

    def __getitem__(self, index: Union[int, np.ndarray]) -> Dict[str, np.ndarray]:
        return {name: values[index] for name, values in self.features.items()}
