"""Raw lines -> words with character offsets into the line, the way BERT splits words.

Words come from the ``tokenizers`` BERT pre-tokenizer (whitespace, then every punctuation mark a
word of its own) run on the line as written, so each word's offsets point into the user's text;
the normalisation (lower-casing, accents) happens later, per word, inside WordPiece. With
``--pretokenized`` the words are the whitespace-separated fields, as in CoNLL-2003.
"""

from __future__ import annotations

import re
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
        return [Word(match.group(), match.start(), match.end()) for match in _FIELD.finditer(line)]
    return [Word(text, start, end) for text, (start, end) in _PRE_TOKENIZER.pre_tokenize_str(line)]

