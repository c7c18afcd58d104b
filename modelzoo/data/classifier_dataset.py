"""Reader for the classifier CSV folders of ``data_processing/write_csv_classifier.py``.

The folder is parsed once into int32 arrays, one row per model input row:

* unpacked: ``input_ids``, ``attention_mask`` (1 real, 0 pad), ``token_type_ids`` of shape
  ``[max_sequence_length]`` and a scalar ``labels`` per row;
* packed (``PackingParams.packing``): ``input_ids``, ``attention_mask`` (sequence index 1..k, 0 for
  padding), ``token_type_ids``, ``position_ids`` of shape ``[max_sequence_length]`` and ``labels`` of
  shape ``[max_sequences_per_pack]`` (-100 for empty slots) per row, in the layout of
  :func:`modelzoo.data.packing.pack_classification_examples`.

Packing happens here rather than offline: the strategy for a whole data set takes milliseconds, and
keeping the CSV unpacked lets one file serve any ``max_sequence_length`` and pack size. Which
sequences share a pack is drawn once, from ``shuffle_seed``; the order of the packs is reshuffled
every epoch like that of plain examples.

Batching, shuffling and sharding are those of the NER reader (``ShardedBatchSampler``): the order of
an epoch depends only on ``(shuffle_seed, epoch)``, ranks get disjoint contiguous shares of it, and
data-loader workers serve whole batches in turn.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Literal

import numpy as np
from torch.utils.data import DataLoader, Dataset

from modelzoo.common.schema import ParamsError, param
from modelzoo.data.errors import DataFileError
from modelzoo.data.ner_dataset import LABEL_VOCAB_FILE, ShardedBatchSampler, numpy_to_torch, read_meta
from modelzoo.data.packing import (
    PackingStats,
    assign_sequences,
    pack_classification_examples,
    plan_classification_packing,
)
from modelzoo.data.params import InputParams
from modelzoo.data.text_files import read_utf8_text

CSV_COLUMNS = ["input_ids", "token_type_ids", "labels"]


@dataclasses.dataclass
class PackingParams:
    """The packing keys of a ``train_input`` / ``eval_input`` section (to join ``InputParams``)."""

    packing: bool = param(False, "pack several sequences into each row (histogram packing)")
    max_sequences_per_pack: int = param(
        6, "most sequences in one packed row; classification reserves the row's last this-many positions for their [CLS]"
    )
    packing_algorithm: Literal["spfhp", "lpfhp"] = param(
        "spfhp", "histogram packing: shortest-pack-first (spfhp) or longest-pack-first (lpfhp)"
    )

    def __post_init__(self) -> None:
        if self.max_sequences_per_pack < 1:
            raise ParamsError(f"max_sequences_per_pack: must be at least 1, got {self.max_sequences_per_pack}")


def read_classifier_csv(folder: Path, max_sequence_length: int) -> tuple[list[dict], dict[str, int]]:
    """Examples (``input_ids``, ``token_type_ids`` int32 arrays, ``labels`` int) and the label2id map.

    Checks what would otherwise fail deep inside training and says where (DataFileError,
    ``FILE:LINE: problem``): the shards of ``meta.dat`` have the expected header and row count, and
    every example fits in ``max_sequence_length`` with a label id of ``label2id.json``.
    """
    label2id = json.loads(read_utf8_text(folder / LABEL_VOCAB_FILE, "label vocab file"))
    label_ids = set(label2id.values())
    examples = []
    for shard, expected_count, meta_line in read_meta(folder):
        with open(shard, encoding="utf-8", newline="") as handle:
            rows = csv.reader(handle)
            if next(rows, None) != CSV_COLUMNS:
                raise DataFileError(shard, 1, f"header must be {','.join(CSV_COLUMNS)}")
            count = 0
            for line_number, row in enumerate(rows, start=2):
                examples.append(_parse_row(shard, line_number, row, max_sequence_length, label_ids))
                count += 1
        if count != expected_count:
            raise DataFileError(folder / "meta.dat", meta_line, f"says {expected_count} examples in {shard.name}, found {count}")
    return examples, label2id


def _parse_row(shard: Path, line_number: int, row: list[str], max_sequence_length: int, label_ids: set[int]) -> dict:
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


class ClassifierDataset(Dataset):
    """A split folder held as padded or packed int32 arrays; index it with an int or an array of indices."""

    def __init__(
        self, data_dir: str | Path, max_sequence_length: int, packing: PackingParams | None = None, seed: int = 0
    ):
        """``seed`` draws which sequences share a pack (packing only)."""
        self.examples, self.label2id = read_classifier_csv(Path(data_dir), max_sequence_length)
        self.max_sequence_length = max_sequence_length
        self.lengths = np.array([len(example["input_ids"]) for example in self.examples], dtype=np.int64)
        self.packing_stats: PackingStats | None = None
        if packing is not None and packing.packing:
            slots = packing.max_sequences_per_pack
            strategy, self.packing_stats = plan_classification_packing(
                self.lengths, max_sequence_length, slots, packing.packing_algorithm
            )
            packs = assign_sequences(self.lengths - 1, strategy, slots, seed)
            self.features = pack_classification_examples(self.examples, packs, max_sequence_length)
        else:
            self.features = self._padded()

    @classmethod
    def from_params(cls, params: InputParams, packing: PackingParams) -> ClassifierDataset:
        return cls(params.data_dir, params.max_sequence_length, packing, params.shuffle_seed)

    def _padded(self) -> dict[str, np.ndarray]:
        shape = (len(self.examples), self.max_sequence_length)
        features = {name: np.zeros(shape, dtype=np.int32) for name in ("input_ids", "attention_mask", "token_type_ids")}
        for row, example in enumerate(self.examples):
            length = len(example["input_ids"])
            features["input_ids"][row, :length] = example["input_ids"]
            features["token_type_ids"][row, :length] = example["token_type_ids"]
            features["attention_mask"][row, :length] = 1
        features["labels"] = np.array([example["labels"] for example in self.examples], dtype=np.int32)
        return features

    def __len__(self) -> int:
        return len(self.features["input_ids"])

    def __getitem__(self, index: int | np.ndarray) -> dict[str, np.ndarray]:
        return {name: values[index] for name, values in self.features.items()}


def build_classifier_dataloader(
    params: InputParams,
    packing: PackingParams,
    rank: int = 0,
    world_size: int = 1,
    epoch: int = 0,
    *,
    pin_memory: bool = False,
    dataset: ClassifierDataset | None = None,
) -> DataLoader:
    """The batches of ``params.data_dir`` for one rank (rows are packs when packing); as the NER reader's.

    Keep the loader and call ``loader.sampler.set_epoch(e)`` to reshuffle, or pass ``dataset`` to reuse
    one already parsed.
    """
    if dataset is None:
        dataset = ClassifierDataset.from_params(params, packing)
    sampler = ShardedBatchSampler(
        len(dataset), params.batch_size, shuffle=params.shuffle, seed=params.shuffle_seed,
        rank=rank, world_size=world_size, drop_last=params.drop_last, epoch=epoch,
    )
    return DataLoader(
        dataset, batch_size=None, sampler=sampler, num_workers=params.num_workers,
        collate_fn=numpy_to_torch, pin_memory=pin_memory,
    )
