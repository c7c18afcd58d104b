"""Entity-level (seqeval strict IOB2) and token-level NER scores over the words of the raw file."""

from modelzoo.metrics.scores import NERScores, Score, evaluate_examples, score_tags, score_words, word_tags
from modelzoo.metrics.words import WordLabels, first_piece_words, flatten_examples

__all__ = [
    "NERScores",
    "Score",
    "WordLabels",
    "evaluate_examples",
    "first_piece_words",
    "flatten_examples",
    "score_tags",
    "score_words",
    "word_tags",
]
