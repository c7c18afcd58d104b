"""WordPiece: the one place a BERT tokenizer is built from a ``vocab.txt``, and its use on whole words.

The CSV writers, prediction and the exported tokenizer must cut text into the same pieces, or a
model would be scored on one segmentation and serve another; so all of them build their tokenizer
with :func:`bert_tokenizer`, from the same ``vocab.txt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from modelzoo.common.errors import DataFileError
from modelzoo.common.iteration import zip_strict
from modelzoo.data.vocab import UNK_TOKEN, is_uncased_vocab, read_vocab


def bert_tokenizer(vocab_file: Union[str, Path], do_lower_case: Optional[bool] = None) -> Any:
    """``transformers``' fast BERT tokenizer of ``vocab_file``, checked to hold the whole vocab.

    ``do_lower_case`` None: as the vocab says (:func:`~modelzoo.data.vocab.is_uncased_vocab`), which is
    how prediction reads text when the params do not say how the CSV was written.
    """
    from transformers import BertTokenizerFast  # imported here: it takes ~2 s and only its users need it

    vocab = read_vocab(vocab_file)
    if do_lower_case is None:
        do_lower_case = is_uncased_vocab(vocab)
    # Both spellings: transformers 5 reads `vocab=` (its `vocab_file=` alone silently builds a 5-token
    # vocab), transformers 4 (the IPU environment's, see requirements-ipu.txt) reads `vocab_file=`.
    tokenizer = BertTokenizerFast(vocab=str(vocab_file), vocab_file=str(vocab_file), do_lower_case=do_lower_case)
    if tokenizer.vocab_size != len(vocab):
        raise DataFileError(vocab_file, None, f"the tokenizer holds {tokenizer.vocab_size} tokens but the file {len(vocab)}")
    return tokenizer


class WordPieceTokenizer:
    """The fast BERT tokenizer of ``transformers``, run once on each distinct word (a cache keeps the rest).

    Tokenizing each distinct word once gives the same pieces as tokenizing the pre-split sentence
    (BERT pre-tokenizes every word on its own) and is what keeps conversion to a second or two.
    """

    def __init__(self, vocab_file: Union[str, Path], do_lower_case: Optional[bool] = None):
        self.tokenizer = bert_tokenizer(vocab_file, do_lower_case)
        self.pieces_of_word: Dict[str, List[str]] = {}

    def pieces_of_sentences(self, sentences: List[List[str]]) -> List[List[List[str]]]:
        """The WordPiece pieces of each word of each sentence; a word that normalizes to nothing
        (e.g. U+200B) is ``[UNK]``. The new words go to the Rust tokenizer as one pre-split
        sequence, and ``word_ids`` says which word each piece came from: one call, where a batch of
        one-word texts spent most of its time building a Python encoding per word (4x slower)."""
        new_words = list({word: None for words in sentences for word in words if word not in self.pieces_of_word})
        if new_words:
            encoding = self.tokenizer.backend_tokenizer.encode(new_words, is_pretokenized=True, add_special_tokens=False)
            pieces: List[List[str]] = [[] for _ in new_words]
            for token, word in zip_strict(encoding.tokens, encoding.word_ids):
                pieces[word].append(token)
            for word, word_pieces in zip_strict(new_words, pieces):
                self.pieces_of_word[word] = word_pieces or [UNK_TOKEN]
        return [[self.pieces_of_word[word] for word in words] for words in sentences]
