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
from typing import List

from tokenizers.pre_tokenizers import BertPreTokenizer

_PRE_TOKENIZER = BertPreTokenizer()
_FIELD = re.compile(r"\S+")


@dataclass(frozen=True)
class Word:
    """A word and where it sits in its line: ``line[start:end] == text``."""

    text: str
    start: int
    end: int


def split_words(line: str, pretokenized: bool = False) -> List[Word]:
    """The words of ``line`` with character offsets (BERT's split, or whitespace fields if pre-split)."""
    if pretokenized:
        spans = ((match.start(), match.end()) for match in _FIELD.finditer(line))
    else:
        spans = (offsets for _, offsets in _PRE_TOKENIZER.pre_tokenize_str(line))
    words = []
    for start, end in spans:
        while start < end and unicodedata.category(line[start]) == "Cf":
            start += 1
        while end > start and unicodedata.category(line[end - 1]) == "Cf":
            end -= 1
        if start < end:
            words.append(Word(line[start:end], start, end))
    return words

