"""Sentences -> WordPiece examples framed by ``[CLS]``/``[SEP]``, first piece labelled, later pieces ``X``.

A sentence that does not fit ``max_seq_length`` becomes several examples, cut between words, and every
example records the raw sentence and the words it covers, so no word is ever dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from data_processing.ner_raw import Sentence
from modelzoo.data.errors import DataFileError
from modelzoo.data.vocab import CLS_LABEL, CONTINUATION_LABEL, SEP_LABEL, read_vocab

CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
UNK_TOKEN = "[UNK]"
# Positions of an example that belong to no word ([CLS], [SEP]) carry this word index.
NO_WORD = -1


@dataclass(slots=True)
class Example:
    """One model input: pieces and labels aligned, ``word_index[i]`` = word of the sentence piece i belongs to."""

    tokens: list[str]
    labels: list[str]
    sentence_index: int
    word_index: list[int]


class WordPieceTokenizer:
    """The fast BERT tokenizer of ``transformers``, run once on each distinct word (a cache keeps the rest).

    Tokenizing each distinct word once gives the same pieces as tokenizing the pre-split sentence
    (BERT pre-tokenizes every word on its own) and is what keeps conversion to a second or two.
    """

    def __init__(self, vocab_file: str | Path, do_lower_case: bool):
        from transformers import BertTokenizerFast  # imported here: it takes ~2 s and only writing needs it

        vocab = read_vocab(vocab_file)
        # `vocab=` and not `vocab_file=`: in transformers 5 the latter silently builds a 5-token vocab.
        self.tokenizer = BertTokenizerFast(vocab=str(vocab_file), do_lower_case=do_lower_case)
        if self.tokenizer.vocab_size != len(vocab):
            raise RuntimeError(
                f"{vocab_file}: the tokenizer holds {self.tokenizer.vocab_size} tokens but the file {len(vocab)}"
            )
        self.pieces_of_word: dict[str, list[str]] = {}

    def pieces_of_sentences(self, sentences: list[list[str]]) -> list[list[list[str]]]:
        """The WordPiece pieces of each word of each sentence; a word that normalizes to nothing
        (e.g. U+200B) is ``[UNK]``. The new words go to the Rust tokenizer as one pre-split
        sequence, and ``word_ids`` says which word each piece came from: one call, where a batch of
        one-word texts spent most of its time building a Python encoding per word (4x slower)."""
        new_words = list({word: None for words in sentences for word in words if word not in self.pieces_of_word})
        if new_words:
            encoding = self.tokenizer.backend_tokenizer.encode(new_words, is_pretokenized=True, add_special_tokens=False)
            pieces: list[list[str]] = [[] for _ in new_words]
            for token, word in zip(encoding.tokens, encoding.word_ids, strict=True):
                pieces[word].append(token)
            for word, word_pieces in zip(new_words, pieces, strict=True):
                self.pieces_of_word[word] = word_pieces or [UNK_TOKEN]
        return [[self.pieces_of_word[word] for word in words] for words in sentences]


def sentence_examples(
    sentence: Sentence,
    sentence_index: int,
    word_pieces: list[list[str]],
    max_seq_length: int,
    path: Path,
) -> list[Example]:
    """The examples of one sentence, greedily filled with whole words up to ``max_seq_length`` tokens.

    The sentence's labels go into the CSV as they are (entity types already stripped if asked).
    A word with more pieces than one example can hold is an error, never a truncation.
    """
    capacity = max_seq_length - 2
    examples: list[Example] = []
    tokens, piece_labels, word_index = [CLS_TOKEN], [CLS_LABEL], [NO_WORD]
    for index, (pieces, label) in enumerate(zip(word_pieces, sentence.labels, strict=True)):
        if len(pieces) > capacity:
            raise DataFileError(
                path,
                sentence.line_of(index),
                f"word {sentence.words[index]!r} has {len(pieces)} word pieces but an example of "
                f"max_seq_length {max_seq_length} holds at most {capacity}",
            )
        if len(tokens) - 1 + len(pieces) > capacity:
            examples.append(_close(tokens, piece_labels, word_index, sentence_index))
            tokens, piece_labels, word_index = [CLS_TOKEN], [CLS_LABEL], [NO_WORD]
        tokens.extend(pieces)
        piece_labels.append(label)
        piece_labels.extend([CONTINUATION_LABEL] * (len(pieces) - 1))
        word_index.extend([index] * len(pieces))
    examples.append(_close(tokens, piece_labels, word_index, sentence_index))
    return examples


def _close(tokens: list[str], labels: list[str], word_index: list[int], sentence_index: int) -> Example:
    return Example(tokens + [SEP_TOKEN], labels + [SEP_LABEL], sentence_index, word_index + [NO_WORD])
