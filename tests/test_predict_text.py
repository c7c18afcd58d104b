"""Prediction's text side: words with offsets, spans, JSON lines and CoNLL (windows: test_windows.py)."""

from __future__ import annotations

import json

import hypothesis
import pytest

from data_processing.ner_raw import read_split_file
from modelzoo.data import raw_words
from modelzoo.data.raw_words import Word, split_words
from modelzoo.data.vocab import is_uncased_vocab
from modelzoo.heads.token_classification import records
from modelzoo.heads.token_classification.records import (
    drop_unsure_entities,
    make_prediction,
    to_conll_block,
    to_json_line,
)
from modelzoo.heads.token_classification.spans import Span, entity_spans


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


def test_spans_merge_b_and_i_and_a_stray_i_starts_an_entity():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-ORG", "B-ORG", "I-PER", "O"]
    assert entity_spans(tags) == [
        Span("PER", 0, 2), Span("LOC", 3, 5), Span("ORG", 5, 6), Span("ORG", 6, 7), Span("PER", 7, 8)
    ]


def test_untyped_tags_are_one_entity_type():
    assert entity_spans(["B", "I", "O", "B", "B", "I"]) == [Span("ENTITY", 0, 2), Span("ENTITY", 3, 4), Span("ENTITY", 4, 6)]
    assert entity_spans(["O", "O"]) == []
    assert entity_spans(["I-MISC"]) == [Span("MISC", 0, 1)]


SCORES = [0.98, 0.91, 0.99, 0.42, 0.97]  # a confident PER (0.98, 0.91) and an unconfident LOC (0.42)


def _prediction():
    line = "Angela  Merkel visited Paris."
    words = split_words(line)
    return line, make_prediction(3, line, words, ["B-PER", "I-PER", "O", "B-LOC", "O"], SCORES)


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
    assert record["word_scores"] == SCORES
    assert record["entities"][1] == {
        "type": "LOC", "text": "Paris", "start": 23, "end": 28, "start_word": 3, "end_word": 4, "score": 0.42
    }


def test_an_entity_scores_its_least_sure_word():
    _, prediction = _prediction()
    assert [(entity.text, entity.score) for entity in prediction.entities] == [("Angela  Merkel", 0.91), ("Paris", 0.42)]


def test_unsure_entities_are_dropped_and_their_words_read_o():
    _, prediction = _prediction()
    kept = drop_unsure_entities(prediction, 0.5)
    assert [entity.text for entity in kept.entities] == ["Angela  Merkel"]
    assert kept.tags == ["B-PER", "I-PER", "O", "O", "O"]
    assert kept.word_scores == SCORES
    assert drop_unsure_entities(prediction, 0.42) == prediction  # the threshold itself is kept
    assert drop_unsure_entities(prediction, 0.95).entities == []


def test_the_threshold_compares_scores_as_written():
    """A threshold copied from an output keeps the entities that show it, whatever digits were rounded away."""
    line = "Paris"
    prediction = make_prediction(1, line, split_words(line), ["B-LOC"], [0.21468])
    assert json.loads(to_json_line(prediction))["entities"][0]["score"] == 0.2147
    assert drop_unsure_entities(prediction, 0.2147) == prediction
    assert drop_unsure_entities(prediction, 0.2148).entities == []


def test_scores_are_written_with_four_decimals():
    line = "Paris"
    record = json.loads(to_json_line(make_prediction(1, line, split_words(line), ["B-LOC"], [0.123456789])))
    assert record["word_scores"] == [0.1235] and record["entities"][0]["score"] == 0.1235


def test_conll_columns_read_back_with_the_csv_writers_reader(tmp_path):
    _, prediction = _prediction()
    path = tmp_path / "test.tsv"
    path.write_text(to_conll_block(prediction) * 2, encoding="utf-8")
    sentences, file_format = read_split_file(path)
    assert file_format == "blurb"
    assert len(sentences) == 2
    assert sentences[0].words == ["Angela", "Merkel", "visited", "Paris", "."]
    assert sentences[0].labels == ["B-PER", "I-PER", "O", "B-LOC", "O"]


def test_conll_scores_are_a_third_column():
    _, prediction = _prediction()
    rows = to_conll_block(prediction, with_scores=True).splitlines()
    assert rows[:2] == ["Angela\tB-PER\t0.98", "Merkel\tI-PER\t0.91"]
    assert rows[-1] == ""


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(
    line=hypothesis.strategies.text(alphabet="ab c.,-\u200b\té", max_size=200),
    segment=hypothesis.strategies.integers(min_value=1, max_value=20),
)
def test_a_long_line_split_a_segment_at_a_time_gives_the_whole_line_split(line, segment):
    """Segments are cut at spaces (or run on to the next one), so no word is cut and every offset holds."""
    whole = split_words(line)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(raw_words, "SEGMENT_CHARS", segment)
        assert split_words(line) == whole
    assert all(line[word.start:word.end] == word.text for word in whole)


def test_a_lines_words_index_slice_and_share_their_texts():
    words = split_words("the cat saw the dog")
    assert len(words) == 5 and words[-1] == Word("dog", 16, 19)
    assert list(words[1:3]) == [Word("cat", 4, 7), Word("saw", 8, 11)]
    texts = words.texts()
    assert texts == ["the", "cat", "saw", "the", "dog"] and texts[0] is texts[3]


@hypothesis.settings(max_examples=50, deadline=None)
@hypothesis.given(
    tags=hypothesis.strategies.lists(hypothesis.strategies.sampled_from(["O", "B-PER", "I-PER", "B-LOC"]), max_size=40),
    words_a_slice=hypothesis.strategies.integers(min_value=1, max_value=7),
)
def test_a_record_written_a_slice_of_words_at_a_time_is_the_whole_record_json_writes(tags, words_a_slice):
    line = " ".join(f"w{i}é" for i in range(len(tags)))
    words = split_words(line)
    scores = [(i * 0.137) % 1 for i in range(len(tags))]
    prediction = make_prediction(3, line, words, tags, scores)
    whole = {
        "line": 3, "text": line, "words": [w.text for w in words], "word_offsets": [[w.start, w.end] for w in words],
        "tags": tags, "word_scores": [round(score, 4) for score in scores],
        "entities": [{"type": e.type, "text": e.text, "start": e.start, "end": e.end, "start_word": e.start_word,
                      "end_word": e.end_word, "score": round(e.score, 4)} for e in prediction.entities],
    }
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(records, "WORDS_A_SLICE", words_a_slice)
        assert to_json_line(prediction) == json.dumps(whole, ensure_ascii=False)
