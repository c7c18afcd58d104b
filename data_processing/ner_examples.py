"""Sentences -> WordPiece examples framed by ``[CLS]``/``[SEP]``, first piece labelled, later pieces ``X``.

A sentence that does not fit ``max_seq_length`` becomes several examples (the window rule of
``modelzoo.data.windows``), and every example records the raw sentence and the words it covers, so
no word is ever dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

from data_processing.ner_raw import Sentence
from modelzoo.data.csv_layout import NO_WORD
from modelzoo.data.labels import CLS_LABEL, CONTINUATION_LABEL, SEP_LABEL
from modelzoo.data.vocab import CLS_TOKEN, SEP_TOKEN
from modelzoo.data.windows import sentence_windows


@dataclass
class Example:
    """One model input: pieces and labels aligned, ``word_index[i]`` = word of the sentence piece i belongs to."""

    tokens: List[str]
    labels: List[str]
    sentence_index: int
    word_index: List[int]
    document_index: int = 0


def sentence_examples(
    sentence: Sentence, sentence_index: int, word_pieces: List[List[str]], max_seq_length: int
) -> List[Example]:
    """The examples of one sentence, cut by the shared window rule (``modelzoo.data.windows``).

    The sentence's labels go into the CSV as they are (entity types already stripped if asked). The
    pieces of a word that continues from the previous example carry the word index NO_WORD there:
    a word is labelled, and scored, once, at its first piece, whatever order the examples are read
    in later (packing reorders them).
    """
    examples = []
    for window in sentence_windows([len(pieces) for pieces in word_pieces], max_seq_length - 2):
        tokens, labels, word_index = [CLS_TOKEN], [CLS_LABEL], [NO_WORD]
        for span in window:
            count = span.stop - span.start
            tokens.extend(word_pieces[span.word][span.start : span.stop])
            if span.holds_first_piece:
                labels.extend([sentence.labels[span.word]] + [CONTINUATION_LABEL] * (count - 1))
                word_index.extend([span.word] * count)
            else:
                labels.extend([CONTINUATION_LABEL] * count)
                word_index.extend([NO_WORD] * count)
        examples.append(
            Example(tokens + [SEP_TOKEN], labels + [SEP_LABEL], sentence_index, word_index + [NO_WORD], sentence.document)
        )
    return examples
