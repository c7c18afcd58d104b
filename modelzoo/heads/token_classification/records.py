"""What token classification predicts per input line, and its JSON-lines and CoNLL-column renderings.

Confidence: a word's score is the softmax probability of its tag at its first piece (where the tag
is read). An entity's score is the *lowest* score of its words: an entity is right (exact match)
only if every one of its tags is, so it can be no surer than its least sure word; the mean would
let three confident words hide a fourth the model doubts, and the product would mark long entities
down for their length alone. Scores are written rounded (:func:`modelzoo.heads.prediction.rounded`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Iterator, List, Sequence

from modelzoo.common.iteration import zip_strict
from modelzoo.data.labels import OUTSIDE_LABEL
from modelzoo.data.raw_words import LineWords
from modelzoo.heads.prediction import rounded
from modelzoo.heads.token_classification.spans import entity_spans


@dataclass(frozen=True)
class Entity:
    """``text == line[start:end]``, the entity covers ``words[start_word:end_word]``; ``score`` in [0, 1]."""

    type: str
    text: str
    start: int
    end: int
    start_word: int
    end_word: int
    score: float


@dataclass(frozen=True)
class Prediction:
    """One input line (1-based ``line``): its words, one tag and its probability per word, the entities."""

    line: int
    text: str
    words: LineWords
    tags: List[str]
    word_scores: Sequence[float]  # float32 array('f') from prediction
    entities: List[Entity]


def make_prediction(
    line: int, text: str, words: LineWords, tags: List[str], word_scores: Sequence[float]
) -> Prediction:
    """Merge ``tags`` into entities whose character offsets point into ``text``, each scored by its least sure word."""
    entities = []
    for span in entity_spans(tags):
        start, end = words[span.start].start, words[span.stop - 1].end
        score = min(word_scores[span.start : span.stop])
        entities.append(Entity(span.type, text[start:end], start, end, span.start, span.stop, score))
    return Prediction(line, text, words, tags, word_scores, entities)


def drop_unsure_entities(prediction: Prediction, min_score: float) -> Prediction:
    """``prediction`` without the entities scored below ``min_score``; their words' tags become ``O``
    (so JSON, CoNLL and the page agree on what is an entity), their word scores stay the model's.
    Scores are compared as written (rounded), so a threshold read off an output keeps the entities showing it."""
    kept = [entity for entity in prediction.entities if rounded(entity.score) >= min_score]
    if len(kept) == len(prediction.entities):
        return prediction
    tags = [OUTSIDE_LABEL] * len(prediction.tags)
    for entity in kept:
        tags[entity.start_word : entity.end_word] = prediction.tags[entity.start_word : entity.end_word]
    return replace(prediction, tags=tags, entities=kept)


def to_json_line(prediction: Prediction) -> str:
    """One JSON object on one line (non-ASCII kept readable); ``line`` first, which ``--resume`` reads."""
    return "".join(json_line_parts(prediction))


WORDS_A_SLICE = 1 << 14


def json_line_parts(prediction: Prediction) -> Iterator[str]:
    """:func:`to_json_line`'s text in consecutive parts. A line of up to :data:`WORDS_A_SLICE` words
    (nearly every line) is one ``json.dumps`` of its record; a longer one has its per-word lists
    encoded a slice of that many words a part, so a line of millions of words is written without
    its record ever being one string, or a small Python list or float per word."""
    text, starts, ends = prediction.text, prediction.words.starts, prediction.words.ends
    tags, scores = prediction.tags, prediction.word_scores
    columns: Dict[str, Callable[[slice], List[Any]]] = {  # read straight from the offset arrays: no Word a word
        "words": lambda part: [text[start:end] for start, end in zip(starts[part], ends[part])],
        "word_offsets": lambda part: [[start, end] for start, end in zip(starts[part], ends[part])],
        "tags": lambda part: tags[part],
        "word_scores": lambda part: [rounded(score) for score in scores[part]],
    }
    entities = [
        {
            "type": entity.type,
            "text": entity.text,
            "start": entity.start,
            "end": entity.end,
            "start_word": entity.start_word,
            "end_word": entity.end_word,
            "score": rounded(entity.score),
        }
        for entity in prediction.entities
    ]
    if len(tags) <= WORDS_A_SLICE:
        whole = {key: items_of(slice(None)) for key, items_of in columns.items()}
        yield _json({"line": prediction.line, "text": text, **whole, "entities": entities})
        return
    yield f'{{"line": {_json(prediction.line)}, "text": {_json(text)}'
    for key, items_of in columns.items():
        yield f', "{key}": ['
        for start in range(0, len(tags), WORDS_A_SLICE):
            yield (", " if start else "") + _json(items_of(slice(start, start + WORDS_A_SLICE)))[1:-1]
        yield "]"
    yield f', "entities": {_json(entities)}}}'


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def to_conll_block(prediction: Prediction, with_scores: bool = False) -> str:
    """``word<TAB>tag`` a line and a blank line after the sentence: the BLURB TSV layout, which
    ``write_csv_ner.py`` reads back (words never hold whitespace, so the columns stay unambiguous).
    ``with_scores`` adds each tag's probability as a third column (which that reader does not take)."""
    if with_scores:
        rows = (
            f"{word.text}\t{tag}\t{rounded(score)}\n"
            for word, tag, score in zip_strict(prediction.words, prediction.tags, prediction.word_scores)
        )
    else:
        rows = (f"{word.text}\t{tag}\n" for word, tag in zip_strict(prediction.words, prediction.tags))
    return "".join(rows) + "\n"
