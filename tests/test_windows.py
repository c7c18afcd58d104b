"""The sentence-window rule, over random sentences and row lengths (hypothesis), and its two users."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from data_processing.write_csv_ner import convert, format_summary
from modelzoo.bert import BertConfig, BertForTokenClassification
from modelzoo.common.device import DeviceSetup
from modelzoo.data.ner_dataset import NerCsvDataset
from modelzoo.data.vocab import read_vocab
from modelzoo.data.windows import count_split_words, sentence_windows
from modelzoo.heads.token_classification.tagger import WordTagger

sentences = st.lists(st.integers(min_value=1, max_value=40), max_size=60)
capacities = st.integers(min_value=1, max_value=32)


@given(sentences, capacities)
def test_every_word_is_labelled_exactly_once(piece_counts, capacity):
    spans = [span for window in sentence_windows(piece_counts, capacity) for span in window]
    labelled = [span.word for span in spans if span.holds_first_piece]
    assert labelled == list(range(len(piece_counts)))


@given(sentences, capacities)
def test_every_piece_is_kept_once_and_in_order(piece_counts, capacity):
    spans = [span for window in sentence_windows(piece_counts, capacity) for span in window]
    pieces = [(span.word, piece) for span in spans for piece in range(span.start, span.stop)]
    assert pieces == [(word, piece) for word, count in enumerate(piece_counts) for piece in range(count)]


@given(sentences, capacities)
def test_no_window_is_over_the_limit_or_empty(piece_counts, capacity):
    for window in sentence_windows(piece_counts, capacity):
        assert 0 < sum(span.stop - span.start for span in window) <= capacity


@given(sentences, capacities)
def test_a_word_that_fits_is_never_split(piece_counts, capacity):
    spans = [span for window in sentence_windows(piece_counts, capacity) for span in window]
    split = {span.word for span in spans if not span.holds_first_piece}
    assert split == {word for word, count in enumerate(piece_counts) if count > capacity}
    assert count_split_words(piece_counts, capacity) == len(split)


def test_a_long_word_continues_in_the_next_windows_and_later_words_fill_the_last():
    windows = sentence_windows([1, 9, 1], 4)
    assert [[(s.word, s.start, s.stop) for s in window] for window in windows] == [
        [(0, 0, 1)],
        [(1, 0, 4)],
        [(1, 4, 8)],
        [(1, 8, 9), (2, 0, 1)],
    ]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="capacity"):
        sentence_windows([1], 0)
    with pytest.raises(ValueError, match="at least one"):
        list(sentence_windows([1, 0], 4))


LONG_WORD = "http://www.example.com/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t"  # 62 pieces in the tiny vocab
MAX_SEQUENCE_LENGTH = 32


def test_the_csv_writer_keeps_a_word_longer_than_a_row(tmp_path, tiny_vocab):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train.tsv").write_text(f"see\tO\n{LONG_WORD}\tB-MISC\nnow\tO\n\nthe\tO\nrain\tO\n", encoding="utf-8")
    summary = convert(raw, tiny_vocab, tmp_path / "csv", do_lower_case=True, max_seq_length=MAX_SEQUENCE_LENGTH)
    assert [split.split_words for split in summary.splits] == [1]
    assert "words longer than one example (split over several, first piece labelled): train 1" in format_summary(summary)
    dataset = NerCsvDataset(tmp_path / "csv" / "train", tiny_vocab, MAX_SEQUENCE_LENGTH)
    assert dataset.word_labels() == [["O", "B-MISC", "O"], ["O", "O"]]
    assert int(dataset.lengths.max()) <= MAX_SEQUENCE_LENGTH
    assert len(dataset) == 5  # "see" | 30 pieces | 30 pieces | 2 pieces, "now" | the second sentence


class _RowRecorder(nn.Module):
    """The real model, noting the length of every row it is given."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.row_lengths = model, []

    def forward(self, input_ids, attention_mask, **kwargs):
        self.row_lengths += attention_mask.sum(-1).tolist()
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)


def test_predict_splits_a_long_word_by_the_same_rule_and_tags_it_once(tiny_vocab):
    labels = ["[PAD]", "B-MISC", "O", "X", "[CLS]", "[SEP]"]
    config = BertConfig.from_dict(
        {"vocab_size": len(read_vocab(tiny_vocab)), "hidden_size": 16, "num_hidden_layers": 1, "num_heads": 2,
         "filter_size": 32, "num_classes": len(labels), "max_position_embeddings": MAX_SEQUENCE_LENGTH}
    )
    torch.manual_seed(0)
    model = _RowRecorder(BertForTokenClassification(config))
    tagger = WordTagger(model, str(tiny_vocab), labels, MAX_SEQUENCE_LENGTH, 4, DeviceSetup(torch.device("cpu")))
    tags, _ = tagger.tag([["see", LONG_WORD, "now"], ["the", "rain"]])
    assert [len(sentence) for sentence in tags] == [3, 2]
    assert all(tag in ("B-MISC", "O") for sentence in tags for tag in sentence)
    count = {word: len(tagger._ids_of_word[word]) for word in ("see", LONG_WORD, "now", "the", "rain")}
    expected = [count["see"], 30, 30, count[LONG_WORD] - 60 + count["now"], count["the"] + count["rain"]]
    assert sorted(model.row_lengths) == sorted(2 + length for length in expected)  # [CLS] and [SEP] each
