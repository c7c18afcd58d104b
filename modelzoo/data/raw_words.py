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
from array import array
from dataclasses import dataclass
from typing import Iterator, List, Sequence, Tuple, Union, overload

from tokenizers.pre_tokenizers import BertPreTokenizer

_PRE_TOKENIZER = BertPreTokenizer()
_FIELD = re.compile(r"\S+")
# A long line is pre-tokenized this many characters at a time, cut at a space (which always ends a
# word), so the tokenizer's own list of (word, offsets) pairs never holds a whole long line's words.
SEGMENT_CHARS = 1 << 16


@dataclass(frozen=True)
class Word:
    """A word and where it sits in its line: ``line[start:end] == text``."""

    __slots__ = ("text", "start", "end")
    text: str
    start: int
    end: int


class LineWords(Sequence[Word]):
    """The words of one line, held as two offset arrays into it (16 bytes a word): a line of millions
    of words is never held as millions of objects. Indexing makes the :class:`Word`; a slice is a
    ``LineWords`` over the same line."""

    __slots__ = ("line", "starts", "ends")

    def __init__(self, line: str, starts: array, ends: array) -> None:
        self.line, self.starts, self.ends = line, starts, ends

    def __len__(self) -> int:
        return len(self.starts)

    @overload
    def __getitem__(self, index: int) -> Word: ...

    @overload
    def __getitem__(self, index: slice) -> LineWords: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[Word, LineWords]:
        if isinstance(index, slice):
            return LineWords(self.line, self.starts[index], self.ends[index])
        start, end = self.starts[index], self.ends[index]
        return Word(self.line[start:end], start, end)

    def __iter__(self) -> Iterator[Word]:
        line = self.line
        return (Word(line[start:end], start, end) for start, end in zip(self.starts, self.ends))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LineWords):
            return NotImplemented
        return list(self) == list(other)

    def __repr__(self) -> str:
        return f"LineWords({list(self)!r})"

    def texts(self) -> List[str]:
        """The words' texts; equal words share one string (a long line repeats its words)."""
        line, shared = self.line, {}
        return [shared.setdefault(text, text) for text in (line[a:b] for a, b in zip(self.starts, self.ends))]


def split_words(line: str, pretokenized: bool = False) -> LineWords:
    """The words of ``line`` with character offsets (BERT's split, or whitespace fields if pre-split)."""
    if pretokenized:
        spans = ((match.start(), match.end()) for match in _FIELD.finditer(line))
    else:
        spans = _bert_word_spans(line)
    starts, ends = array("q"), array("q")
    for start, end in spans:
        while start < end and unicodedata.category(line[start]) == "Cf":
            start += 1
        while end > start and unicodedata.category(line[end - 1]) == "Cf":
            end -= 1
        if start < end:
            starts.append(start)
            ends.append(end)
    return LineWords(line, starts, ends)


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
