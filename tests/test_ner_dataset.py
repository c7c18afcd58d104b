"""The NER CSV reader: int32 feature dicts, loss mask, seeded shuffling, rank/worker sharding, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from data_processing.write_csv_ner import convert
from modelzoo.common.errors import DataFileError, ParamsError
from modelzoo.common.schema import build
from modelzoo.data.batching import ShardedBatchSampler, build_loader
from modelzoo.data.ner_dataset import (
    METADATA_KEYS,
    MODEL_INPUT_KEYS,
    NerCsvDataset,
)
from modelzoo.data.params import InputParams

TRAIN = (
    "Selegiline\tB-Chemical\n-\tO\ninduced\tO\nhypotension\tO\n\n"
    "Naloxone\tB-Chemical\nreverses\tO\nthe\tO\neffects\tO\n\n"
    + "".join(f"w{i}\tO\n\n" for i in range(23))
    + "".join(f"long{i}\tO\n" for i in range(30))
)


def read_and_load(section, **loader_args):
    return build_loader(NerCsvDataset.from_params(section), section, **loader_args)


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory, vocab_file) -> Path:
    """A small train folder (26 sentences, the last one split in several examples at max length 16)."""
    root = tmp_path_factory.mktemp("ner")
    (root / "raw").mkdir()
    (root / "raw/train.tsv").write_text(TRAIN)
    convert(root / "raw", vocab_file, root / "csv", do_lower_case=True, max_seq_length=16, num_output_files=2)
    return root / "csv/train"


def params(csv_dir, vocab_file, **overrides) -> InputParams:
    values = {"data_dir": str(csv_dir), "vocab_file": str(vocab_file), "max_sequence_length": 16}
    return build(InputParams, {**values, **overrides}, "train_input")


def test_input_params_defaults_and_unknown_key():
    section = build(InputParams, {"data_dir": "d"}, "eval_input")
    assert (section.max_sequence_length, section.batch_size, section.num_workers) == (128, 32, 0)
    assert section.label_vocab_file is None and section.include_special_labels_in_loss is False
    with pytest.raises(ParamsError, match="did you mean 'batch_size'"):
        build(InputParams, {"data_dir": "d", "batchsize": 8}, "eval_input")
    with pytest.raises(ParamsError, match="missing required key 'data_dir'"):
        build(InputParams, {}, "eval_input")
    with pytest.raises(ParamsError, match="batch_size: must be at least 1"):
        build(InputParams, {"data_dir": "d", "batch_size": 0}, "eval_input")


def test_features_are_int32_padded_and_aligned(csv_dir, vocab_file, model_folder):
    from transformers import BertTokenizerFast

    dataset = NerCsvDataset.from_params(params(csv_dir, vocab_file))
    example = dataset[0]
    assert set(example) == set(MODEL_INPUT_KEYS) | set(METADATA_KEYS)
    assert all(values.dtype == np.int32 for values in example.values())
    assert example["input_ids"].shape == (16,) and example["sentence_index"].shape == ()
    reference = BertTokenizerFast.from_pretrained(model_folder)
    words = ["Selegiline", "-", "induced", "hypotension"]
    expected_ids = reference(words, is_split_into_words=True)["input_ids"]
    length = len(expected_ids)
    assert example["input_ids"][:length].tolist() == expected_ids
    assert example["input_ids"][length:].tolist() == [0] * (16 - length)
    assert example["attention_mask"].tolist() == [1] * length + [0] * (16 - length)
    assert not example["token_type_ids"].any()
    label2id = dataset.label2id
    expected_labels = ["[CLS]", "B-Chemical", "X", "X", "X", "O", "O", "O", "X", "X", "X", "X", "[SEP]"]
    assert example["labels"].tolist() == [label2id[label] for label in expected_labels] + [0] * 3
    assert example["loss_mask"].tolist() == [0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0] + [0] * 3
    assert example["word_index"].tolist() == [-1, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3, -1] + [-1] * 3


def test_loss_mask_can_include_special_labels(csv_dir, vocab_file):
    dataset = NerCsvDataset.from_params(params(csv_dir, vocab_file, include_special_labels_in_loss=True))
    assert np.array_equal(dataset[0]["loss_mask"], dataset[0]["attention_mask"])


def test_label_vocab_file_defaults_to_data_dir_and_can_be_given(csv_dir, vocab_file, tmp_path):
    default = NerCsvDataset.from_params(params(csv_dir, vocab_file))
    assert default.label2id == json.loads((csv_dir / "label2id.json").read_text())
    labels = ["[PAD]", "B-Chemical", "B-Gene", "O", "X", "[CLS]", "[SEP]"]
    (tmp_path / "labels.json").write_text(json.dumps({label: index for index, label in enumerate(labels)}))
    given = NerCsvDataset.from_params(params(csv_dir, vocab_file, label_vocab_file=str(tmp_path / "labels.json")))
    assert given[0]["labels"][:6].tolist() == [5, 1, 4, 4, 4, 3]
    (tmp_path / "bad.json").write_text(json.dumps({"O": 0, "[PAD]": 1}))
    with pytest.raises(DataFileError, match=r"bad\.json: '\[PAD\]' must have id 0"):
        NerCsvDataset.from_params(params(csv_dir, vocab_file, label_vocab_file=str(tmp_path / "bad.json")))


def test_long_sentence_examples_cover_each_word_once(csv_dir, vocab_file):
    dataset = NerCsvDataset.from_params(params(csv_dir, vocab_file))
    sentences = dataset.word_labels()
    assert len(sentences) == 26
    assert len(dataset) > 26  # the 30-word sentence needs several examples of 16 tokens
    assert sentences[0] == ["B-Chemical", "O", "O", "O"] and sentences[-1] == ["O"] * 30


def test_shuffle_is_seeded_per_epoch(csv_dir, vocab_file):
    def order(**overrides):
        loader = read_and_load(params(csv_dir, vocab_file, batch_size=4, **overrides))
        return torch.cat([batch["sentence_index"] for batch in loader]).tolist()

    file_order = order(shuffle=False)
    assert file_order == sorted(file_order)
    first = order(shuffle=True, shuffle_seed=3)
    assert first == order(shuffle=True, shuffle_seed=3)
    assert first != file_order and sorted(first) == file_order
    assert first != order(shuffle=True, shuffle_seed=4)
    loader = read_and_load(params(csv_dir, vocab_file, batch_size=4, shuffle=True, shuffle_seed=3), epoch=1)
    assert torch.cat([b["sentence_index"] for b in loader]).tolist() != first


@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_get_disjoint_shares(csv_dir, vocab_file, drop_last):
    section = params(csv_dir, vocab_file, batch_size=2, shuffle=True, drop_last=drop_last)
    dataset = NerCsvDataset.from_params(section)
    world_size = 3
    shares, batch_counts = [], []
    for rank in range(world_size):
        loader = build_loader(dataset, section, rank=rank, world_size=world_size)
        batches = list(loader)
        assert len(batches) == len(loader)
        batch_counts.append(len(batches))
        shares.append(loader.sampler.rank_indices().tolist())
        assert all(len(batch["input_ids"]) == 2 for batch in batches) or not drop_last
    served = [i for share in shares for i in share]
    assert len(served) == len(set(served))
    if drop_last:
        assert len(set(batch_counts)) == 1 and len(set(map(len, shares))) == 1
    else:
        assert sorted(served) == list(range(len(dataset)))


def test_sampler_rejects_a_rank_outside_the_world():
    with pytest.raises(ValueError, match="rank must be in"):
        ShardedBatchSampler(10, 2, shuffle=False, rank=2, world_size=2)


def test_workers_serve_every_batch_once(csv_dir, vocab_file):
    single = list(read_and_load(params(csv_dir, vocab_file, batch_size=4, shuffle=False)))
    workers = list(read_and_load(params(csv_dir, vocab_file, batch_size=4, shuffle=False, num_workers=2)))
    assert len(workers) == len(single)
    for one, other in zip(single, workers, strict=True):
        assert all(torch.equal(one[key], other[key]) for key in one)


def test_folder_written_longer_than_yaml_max_is_one_clear_error(csv_dir, vocab_file):
    with pytest.raises(DataFileError) as error:
        NerCsvDataset.from_params(params(csv_dir, vocab_file, max_sequence_length=8))
    assert error.value.path.endswith("train-1.csv") and error.value.line == 2
    assert "example has 13 tokens but max_sequence_length is 8" in str(error.value)


def test_meta_count_mismatch_and_foreign_token_are_errors(csv_dir, vocab_file, tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    for path in csv_dir.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    meta = (folder / "meta.dat").read_text().splitlines()
    (folder / "meta.dat").write_text(f"{meta[0].split()[0]} 999\n{meta[1]}\n")
    with pytest.raises(DataFileError, match=r"meta\.dat:1: says 999 examples in train-1\.csv"):
        NerCsvDataset(folder, vocab_file, 16)
    (folder / "meta.dat").write_text("\n".join(meta) + "\n")
    shard = folder / "train-2.csv"
    shard.write_text(shard.read_text().replace("[CLS] long", "[CLS] notavocabtoken", 1))
    with pytest.raises(DataFileError, match=r"train-2\.csv:\d+: token 'notavocabtoken' is not in the vocab"):
        NerCsvDataset(folder, vocab_file, 16)


def test_missing_vocab_or_meta_is_an_error(csv_dir, vocab_file, tmp_path):
    with pytest.raises(DataFileError, match="vocab_file is needed"):
        NerCsvDataset(csv_dir, None, 16)
    with pytest.raises(DataFileError, match="vocab file not found"):
        NerCsvDataset(csv_dir, tmp_path / "vocab.txt", 16)
    with pytest.raises(DataFileError, match=r"meta\.dat: not found"):
        NerCsvDataset(tmp_path, vocab_file, 16)


def test_cerebras_csv_without_word_index_is_read(tmp_path, vocab_file, csv_dir):
    (tmp_path / "label2id.json").write_text((csv_dir / "label2id.json").read_text())
    (tmp_path / "meta.dat").write_text("a.csv 1\n")
    (tmp_path / "a.csv").write_text("tokens,labels\n[CLS] na ##lo ##xon ##e reverse ##s [SEP],[CLS] B-Chemical X X X O X [SEP]\n")
    example = NerCsvDataset(tmp_path, vocab_file, 10)[0]
    assert example["word_index"].tolist() == [-1, 0, 0, 0, 0, 1, 1, -1, -1, -1]
    assert example["loss_mask"].tolist() == [0, 1, 0, 0, 0, 1, 0, 0, 0, 0]


def test_bc5cdr_train_round_trips_every_word_label(shared_data, tmp_path, vocab_file):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train.tsv").symlink_to(shared_data / "bc5cdr-chem/train.tsv")
    convert(raw, vocab_file, tmp_path / "csv", do_lower_case=True)
    dataset = NerCsvDataset(tmp_path / "csv/train", vocab_file, 128)
    raw_labels = [block.split("\n") for block in (raw / "train.tsv").read_text().strip("\n").split("\n\n")]
    assert dataset.word_labels() == [[line.split("\t")[1] for line in block] for block in raw_labels]
    batch = next(iter(read_and_load(params(tmp_path / "csv/train", vocab_file, max_sequence_length=128))))
    assert batch["input_ids"].shape == (32, 128) and batch["input_ids"].dtype == torch.int32


def test_word_labels_refuses_a_sentence_with_a_missing_word(tmp_path, vocab_file, csv_dir):
    (tmp_path / "label2id.json").write_text((csv_dir / "label2id.json").read_text())
    (tmp_path / "meta.dat").write_text("a.csv 1\n")
    (tmp_path / "a.csv").write_text("tokens,labels,sentence_index,word_index\n[CLS] a b [SEP],[CLS] O O [SEP],0,-1 1 2 -1\n")
    with pytest.raises(DataFileError, match="sentence 0: examples do not cover each of its words exactly once"):
        NerCsvDataset(tmp_path, vocab_file, 8).word_labels()


def test_drop_last_ranks_split_each_global_batch_like_one_process():
    """Step k on 2 ranks (batch 2 each) sees exactly the examples of step k of 1 process with batch 4."""
    alone = list(ShardedBatchSampler(23, 4, shuffle=True, seed=5, drop_last=True, epoch=1))
    ranks = [list(ShardedBatchSampler(23, 2, shuffle=True, seed=5, rank=r, world_size=2, drop_last=True, epoch=1)) for r in range(2)]
    assert len(alone) == len(ranks[0]) == len(ranks[1]) == 5
    for step, batch in enumerate(alone):
        assert np.array_equal(np.concatenate([ranks[0][step], ranks[1][step]]), batch)
