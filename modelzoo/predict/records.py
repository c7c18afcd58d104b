"""What prediction returns per input line, and its JSON-lines and CoNLL-column renderings.

Confidence: a word's score is the softmax probability of its tag at its first piece (where the tag
is read). An entity's score is the *lowest* score of its words: an entity is right (exact match)
only if every one of its tags is, so it can be no surer than its least sure word; the mean would
let three confident words hide a fourth the model doubts, and the product would mark long entities
down for their length alone. Scores are written with ``SCORE_DECIMALS`` decimals: more is noise
(the last bits vary with how sentences share a batch), and fewer digits keep a continued run's
output equal to an uninterrupted one (see :mod:`modelzoo.predict.resume`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Dict, List

from modelzoo.common.iteration import zip_strict
from modelzoo.data.raw_words import Word
from modelzoo.predict.spans import entity_spans

SCORE_DECIMALS = 4
OUTSIDE_TAG = "O"


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
    words: List[Word]
    tags: List[str]
    word_scores: List[float]
    entities: List[Entity]


@dataclass(frozen=True)
class Classification:
    """One input line of the sequence classifier: its label, that label's probability, every label's."""

    line: int
    text: str
    label: str
    score: float
    scores: Dict[str, float]


def make_prediction(line: int, text: str, words: List[Word], tags: List[str], word_scores: List[float]) -> Prediction:
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
    kept = [entity for entity in prediction.entities if rounded_score(entity.score) >= min_score]
    if len(kept) == len(prediction.entities):
        return prediction
    tags = [OUTSIDE_TAG] * len(prediction.tags)
    for entity in kept:
        tags[entity.start_word : entity.end_word] = prediction.tags[entity.start_word : entity.end_word]
    return replace(prediction, tags=tags, entities=kept)


def rounded_score(score: float) -> float:
    """A probability as every output writes it (``SCORE_DECIMALS`` decimals)."""
    return round(float(score), SCORE_DECIMALS)


def to_json_line(prediction: Prediction) -> str:
    """One JSON object on one line (non-ASCII kept readable); ``line`` first, which ``--resume`` reads."""
    record = {
        "line": prediction.line,
        "text": prediction.text,
        "words": [word.text for word in prediction.words],
        "word_offsets": [[word.start, word.end] for word in prediction.words],
        "tags": prediction.tags,
        "word_scores": [rounded_score(score) for score in prediction.word_scores],
        "entities": [
            {
                "type": entity.type,
                "text": entity.text,
                "start": entity.start,
                "end": entity.end,
                "start_word": entity.start_word,
                "end_word": entity.end_word,
                "score": rounded_score(entity.score),
            }
            for entity in prediction.entities
        ],
    }
    return json.dumps(record, ensure_ascii=False)


def classification_json_line(classification: Classification) -> str:
    record = {
        "line": classification.line,
        "text": classification.text,
        "label": classification.label,
        "score": rounded_score(classification.score),
        "scores": {label: rounded_score(score) for label, score in classification.scores.items()},
    }
    return json.dumps(record, ensure_ascii=False)


def to_conll_block(prediction: Prediction, with_scores: bool = False) -> str:
    """``word<TAB>tag`` a line and a blank line after the sentence: the BLURB TSV layout, which
    ``write_csv_ner.py`` reads back (words never hold whitespace, so the columns stay unambiguous).
    ``with_scores`` adds each tag's probability as a third column (which that reader does not take)."""
    if with_scores:
        rows = (
            f"{word.text}\t{tag}\t{rounded_score(score)}\n"
            for word, tag, score in zip_strict(prediction.words, prediction.tags, prediction.word_scores)
        )
    else:
        rows = (f"{word.text}\t{tag}\n" for word, tag in zip_strict(prediction.words, prediction.tags))
    return "".join(rows) + "\n"
