"""NER scores: entity-level P/R/F1 (seqeval strict IOB2) and the Cerebras token-level macro F1.

What is computed, exactly:

* Entity level, over the words of the raw sentences (each word labelled by its first piece;
  a special label predicted there reads as O). Entities follow seqeval's strict IOB2 rule (see
  :mod:`modelzoo.metrics.entities`). Per type: precision = correct / predicted, recall = correct /
  gold, F1 = 2PR / (P + R), each 0 when its denominator is 0 (seqeval's ``zero_division`` default).
  ``overall`` is the micro average over types (seqeval's ``f1_score``); ``support`` counts gold
  entities. Types listed are those with at least one gold or predicted entity, sorted by name.
* Token level, "Cerebras style": over the same word positions, for every B/I label of the
  vocabulary (``B``, ``I``, or every ``B-*``/``I-*``), per-label precision, recall and F1 as above
  from that label's one-vs-rest counts; the macro F1 is their unweighted mean, labels absent from
  both gold and prediction included with F1 0. (Cerebras' FBetaScoreMetric averages over the same
  labels but counts every position, continuation pieces included; scoring words keeps it
  comparable between tokenizers.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from modelzoo.common.iteration import zip_strict
from modelzoo.data.labels import LabelVocab
from modelzoo.metrics.entities import count_entities
from modelzoo.metrics.words import WordLabels, first_piece_words, flatten_examples


@dataclass(frozen=True)
class Score:
    """Precision, recall and F1 of one entity type (or of all), with the counts they come from."""

    precision: float
    recall: float
    f1: float
    support: int
    predicted: int
    correct: int

    @classmethod
    def from_counts(cls, correct: int, predicted: int, support: int) -> Score:
        precision = correct / predicted if predicted else 0.0
        recall = correct / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(precision, recall, f1, int(support), int(predicted), int(correct))


@dataclass(frozen=True)
class NERScores:
    """Everything one evaluation reports; ``to_dict`` is JSON-serialisable."""

    overall: Score
    per_type: Dict[str, Score]
    token_macro_f1: float
    token_f1_per_label: Dict[str, float]
    num_sentences: int
    num_words: int

    def to_dict(self) -> dict:
        return asdict(self)

    def format_table(self) -> str:
        """A printable table: one row per entity type, the micro average, then the token macro F1."""
        rows = [(name, score) for name, score in self.per_type.items()] + [("overall (micro)", self.overall)]
        width = max(len("entity type"), *(len(name) for name, _ in rows))
        lines = [f"{'entity type':<{width}}  precision  recall      f1  support"]
        lines += [
            f"{name:<{width}}  {s.precision:9.4f}  {s.recall:6.4f}  {s.f1:6.4f}  {s.support:7d}" for name, s in rows
        ]
        lines.append(
            f"token macro F1 over {len(self.token_f1_per_label)} B/I labels: {self.token_macro_f1:.4f}"
            f"  ({self.num_sentences} sentences, {self.num_words} words)"
        )
        return "\n".join(lines)


def score_words(words: WordLabels, id_to_label: Sequence[str]) -> NERScores:
    """Scores of word-level label ids (see :func:`first_piece_words`)."""
    vocab = LabelVocab.from_labels(id_to_label)
    special_gold = np.flatnonzero(vocab.special[words.gold])
    if len(special_gold):
        raise ValueError(
            f"gold label {vocab.labels[words.gold[special_gold[0]]]!r} at a word's first piece: "
            "the word index disagrees with the labels"
        )
    counts = count_entities(words.gold, words.pred, words.sentence_starts, vocab)
    per_type = {
        vocab.types[t]: Score.from_counts(counts.correct[t], counts.predicted[t], counts.gold[t])
        for t in np.argsort(vocab.types)
        if counts.gold[t] or counts.predicted[t]
    }
    overall = Score.from_counts(counts.correct.sum(), counts.predicted.sum(), counts.gold.sum())
    token_f1 = _token_f1_per_label(words.gold, words.pred, vocab)
    return NERScores(
        overall=overall,
        per_type=per_type,
        token_macro_f1=float(np.mean(list(token_f1.values()))) if token_f1 else 0.0,
        token_f1_per_label=token_f1,
        num_sentences=len(words.sentence_ids),
        num_words=len(words.gold),
    )


def _token_f1_per_label(gold: np.ndarray, pred: np.ndarray, vocab: LabelVocab) -> Dict[str, float]:
    """One-vs-rest F1 of every B/I label over word positions."""
    num_labels = len(vocab.labels)
    gold_count = np.bincount(gold, minlength=num_labels)
    pred_count = np.bincount(pred, minlength=num_labels)
    correct = np.bincount(gold[gold == pred], minlength=num_labels)
    return {
        vocab.labels[i]: Score.from_counts(correct[i], pred_count[i], gold_count[i]).f1
        for i in vocab.entity_label_ids()
    }


def evaluate_examples(
    predictions: np.ndarray,
    word_index: np.ndarray,
    sentence_index: np.ndarray,
    labels: np.ndarray,
    id_to_label: Sequence[str],
    words_per_sentence: Optional[Sequence[int]] = None,
) -> NERScores:
    """Scores of padded examples: predicted ids, word index and gold ids ``[n, seq]``, sentence index ``[n]``."""
    flat = flatten_examples(word_index, sentence_index, labels, predictions)
    return score_words(first_piece_words(*flat, words_per_sentence=words_per_sentence), id_to_label)


def word_tags(
    predictions: np.ndarray,
    word_index: np.ndarray,
    sentence_index: np.ndarray,
    labels: np.ndarray,
    id_to_label: Sequence[str],
) -> Tuple[List[List[str]], List[List[str]]]:
    """Per sentence (in sentence-index order), the gold and predicted tags of every word.

    Each word takes the prediction at its first piece; a special label predicted there becomes O,
    so the lists are valid input for seqeval.
    """
    words = first_piece_words(*flatten_examples(word_index, sentence_index, labels, predictions))
    tag_by_id = LabelVocab.from_labels(id_to_label).word_tags()
    return words.tags(tag_by_id, words.gold), words.tags(tag_by_id, words.pred)


def score_tags(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> NERScores:
    """Scores of tag-string sentences (seqeval's input); the token macro F1 averages the B/I labels seen."""
    if len(gold_tags) != len(pred_tags) or any(
        len(g) != len(p) for g, p in zip_strict(gold_tags, pred_tags)
    ):
        raise ValueError("gold and predicted tags must have the same sentences and sentence lengths")
    id_to_label = sorted({tag for sentence in (*gold_tags, *pred_tags) for tag in sentence})
    label_to_id = {label: i for i, label in enumerate(id_to_label)}
    lengths = np.array([len(sentence) for sentence in gold_tags], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])

    def encode(sentences: Sequence[Sequence[str]]) -> np.ndarray:
        return np.fromiter((label_to_id[tag] for s in sentences for tag in s), dtype=np.int64, count=offsets[-1])

    non_empty = lengths > 0
    words = WordLabels(
        sentence_ids=np.flatnonzero(non_empty),
        offsets=np.append(offsets[:-1][non_empty], offsets[-1]),
        gold=encode(gold_tags),
        pred=encode(pred_tags),
    )
    return score_words(words, id_to_label)
