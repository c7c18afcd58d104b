"""Raw lines -> words with character offsets into the line, the way BERT splits words.

Words come from the ``tokenizers`` BERT pre-tokenizer (whitespace, then every punctuation mark a
word of its own) run on the line as written, so each word's offsets point into the user's text;
the normalisation (lower-casing, accents) happens later, per word, inside WordPiece. With
``--pretokenized`` the words are the whitespace-separated fields, as in CoNLL-2003.

Invisible format characters (Unicode category Cf: direction marks and overrides, zero-width
spaces and joiners) at a word's edges are not part of it: WordPiece's normalisation removes them
anyway, so they change no piece, and a word's offsets then cover what a reader sees, as the
offsets of Hugging Face's token-classification pipeline do. A "word" of nothing else is no word.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterator, List, Tuple

from tokenizers.pre_tokenizers import BertPreTokenizer

_PRE_TOKENIZER = BertPreTokenizer()
_FIELD = re.compile(r"\S+")
# A long line is pre-tokenized this many characters at a time, cut at a space (which always ends a
# word), so the tokenizer's own list of (word, offsets) pairs never holds a whole long line's words.
SEGMENT_CHARS = 1 << 16


@dataclass(frozen=True)
class Word:
    """A word and where it sits in its line: ``line[start:end] == text``."""

    __slots__ = ("text", "start", "end")  # a long line holds millions: no per-word __dict__
    text: str
    start: int
    end: int


def split_words(line: str, pretokenized: bool = False) -> List[Word]:
    """The words of ``line`` with character offsets (BERT's split, or whitespace fields if pre-split)."""
    if pretokenized:
        spans = ((match.start(), match.end()) for match in _FIELD.finditer(line))
    else:
        spans = _bert_word_spans(line)
    words = []
    for start, end in spans:
        while start < end and unicodedata.category(line[start]) == "Cf":
            start += 1
        while end > start and unicodedata.category(line[end - 1]) == "Cf":
            end -= 1
        if start < end:
            words.append(Word(line[start:end], start, end))
    return words



def _bert_word_spans(line: str) -> Iterator[Tuple[int, int]]:
    """BERT's pre-tokenizer's word offsets in ``line``, a segment of at most SEGMENT_CHARS at a time."""
    position = 0
    while position < len(line):
        end = len(line)
        if end - position > SEGMENT_CHARS:
            end = line.rfind(" ", position, position + SEGMENT_CHARS) + 1 or line.find(" ", position) + 1 or end
        for _, (start, stop) in _PRE_TOKENIZER.pre_tokenize_str(line[position:end]):
            yield position + start, position + stop
        position = end
