"""Prediction's text side: words with offsets, windows that never cut a word, spans, JSON lines and CoNLL."""

from __future__ import annotations

import json
import random

import pytest

from data_processing.ner_raw import read_split_file
from modelzoo.data.windows import word_windows
from modelzoo.predict.records import make_prediction, to_conll_block, to_json_line
from modelzoo.predict.spans import Span, entity_spans
from modelzoo.predict.tokenize_raw import is_uncased_vocab, split_words


@pytest.mark.parametrize(
    "line",
    ["Zoë visited São Paulo (U.S.) on 5-6 May—ok.", "  two  spaces\tand a tab ", "東京 and Ünïcödé, «quotes»!"],
)
@pytest.mark.parametrize("pretokenized", [False, True])
def test_word_offsets_point_at_the_words_in_the_original_line(line, pretokenized):
    words = split_words(line, pretokenized)
    assert words
    assert all(line[word.start : word.end] == word.text for word in words)
    assert all(a.end <= b.start for a, b in zip(words, words[1:], strict=False))  # in order, never overlapping


def test_bert_split_separates_punctuation_and_pretokenized_keeps_fields():
    line = "Peter (U.S.) won."
    assert [w.text for w in split_words(line)] == ["Peter", "(", "U", ".", "S", ".", ")", "won", "."]
    assert [w.text for w in split_words(line, pretokenized=True)] == ["Peter", "(U.S.)", "won."]


def test_uncased_vocab_is_recognised_by_its_tokens():
    assert is_uncased_vocab({"[PAD]": 0, "[UNK]": 1, "the": 2, "##ing": 3})
    assert not is_uncased_vocab({"[PAD]": 0, "[UNK]": 1, "The": 2, "the": 3})


def test_windows_cover_every_word_once_in_order_within_capacity():
    generator = random.Random(0)
    for _ in range(200):
        counts = [generator.randint(1, 9) for _ in range(generator.randint(0, 60))]
        capacity = generator.randint(1, 20)
        windows = word_windows(counts, capacity)
        covered = [index for start, stop in windows for index in range(start, stop)]
        assert covered == list(range(len(counts)))
        assert all(stop > start for start, stop in windows)
        for start, stop in windows:
            assert stop - start == 1 or sum(counts[start:stop]) <= capacity


def test_a_word_longer_than_a_window_gets_a_window_of_its_own():
    assert word_windows([2, 50, 3, 3], capacity=6) == [(0, 1), (1, 2), (2, 4)]


def test_spans_merge_b_and_i_and_a_stray_i_starts_an_entity():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-ORG", "B-ORG", "I-PER", "O"]
    assert entity_spans(tags) == [
        Span("PER", 0, 2), Span("LOC", 3, 5), Span("ORG", 5, 6), Span("ORG", 6, 7), Span("PER", 7, 8)
    ]


def test_untyped_tags_are_one_entity_type():
    assert entity_spans(["B", "I", "O", "B", "B", "I"]) == [Span("ENTITY", 0, 2), Span("ENTITY", 3, 4), Span("ENTITY", 4, 6)]
    assert entity_spans(["O", "O"]) == []
    assert entity_spans(["I-MISC"]) == [Span("MISC", 0, 1)]


def _prediction():
    line = "Angela  Merkel visited Paris."
    words = split_words(line)
    return line, make_prediction(3, line, words, ["B-PER", "I-PER", "O", "B-LOC", "O"])


def test_entities_carry_character_offsets_into_the_line():
    line, prediction = _prediction()
    assert [(e.type, e.text, e.start, e.end) for e in prediction.entities] == [
        ("PER", "Angela  Merkel", 0, 14), ("LOC", "Paris", 23, 28)
    ]
    assert all(line[e.start : e.end] == e.text for e in prediction.entities)


def test_json_line_holds_words_tags_and_entities():
    _, prediction = _prediction()
    text = to_json_line(prediction)
    assert "\n" not in text
    record = json.loads(text)
    assert record["line"] == 3
    assert record["words"] == ["Angela", "Merkel", "visited", "Paris", "."]
    assert record["tags"] == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    assert record["word_offsets"][1] == [8, 14]
    assert record["entities"][1] == {"type": "LOC", "text": "Paris", "start": 23, "end": 28, "start_word": 3, "end_word": 4}


def test_conll_columns_read_back_with_the_csv_writers_reader(tmp_path):
    _, prediction = _prediction()
    path = tmp_path / "test.tsv"
    path.write_text(to_conll_block(prediction) * 2, encoding="utf-8")
    sentences, file_format = read_split_file(path)
    assert file_format == "blurb"
    assert len(sentences) == 2
    assert sentences[0].words == ["Angela", "Merkel", "visited", "Paris", "."]
    assert sentences[0].labels == ["B-PER", "I-PER", "O", "B-LOC", "O"]
