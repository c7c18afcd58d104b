"""What prediction returns per input line, and its JSON-lines and CoNLL-column renderings."""

from __future__ import annotations

import json
from dataclasses import dataclass

from modelzoo.predict.spans import entity_spans
from modelzoo.predict.tokenize_raw import Word


@dataclass(frozen=True, slots=True)
class Entity:
    """``text == line[start:end]`` and the entity covers ``words[start_word:end_word]``."""

    type: str
    text: str
    start: int
    end: int
    start_word: int
    end_word: int


@dataclass(frozen=True, slots=True)
class Prediction:
    """One input line (1-based ``line``): its words, one tag per word and the merged entities."""

    line: int
    text: str
    words: list[Word]
    tags: list[str]
    entities: list[Entity]


def make_prediction(line: int, text: str, words: list[Word], tags: list[str]) -> Prediction:
    """Merge ``tags`` into entities whose character offsets point into ``text``."""
    entities = []
    for span in entity_spans(tags):
        start, end = words[span.start].start, words[span.stop - 1].end
        entities.append(Entity(span.type, text[start:end], start, end, span.start, span.stop))
    return Prediction(line, text, words, tags, entities)


def to_json_line(prediction: Prediction) -> str:
    """One JSON object on one line (non-ASCII kept readable)."""
    record = {
        "line": prediction.line,
        "text": prediction.text,
        "words": [word.text for word in prediction.words],
        "word_offsets": [[word.start, word.end] for word in prediction.words],
        "tags": prediction.tags,
        "entities": [
            {
                "type": entity.type,
                "text": entity.text,
                "start": entity.start,
                "end": entity.end,
                "start_word": entity.start_word,
                "end_word": entity.end_word,
            }
            for entity in prediction.entities
        ],
    }
    return json.dumps(record, ensure_ascii=False)


def to_conll_block(prediction: Prediction) -> str:
    """``word<TAB>tag`` a line and a blank line after the sentence: the BLURB TSV layout, which
    ``write_csv_ner.py`` reads back (words never hold whitespace, so the columns stay unambiguous)."""
    return "".join(f"{word.text}\t{tag}\n" for word, tag in zip(prediction.words, prediction.tags, strict=True)) + "\n"


RENDERERS = {"jsonl": lambda prediction: to_json_line(prediction) + "\n", "conll": to_conll_block}
