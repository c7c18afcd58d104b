"""The model side of prediction: words -> WordPiece rows -> one tag per word, batched for speed.

Rows are built as the CSV writer builds them for training (``[CLS]``, pieces, ``[SEP]``, cut by the
shared window rule of ``modelzoo.data.windows``), and a word's tag is the prediction at
its first piece; a special label predicted there (``X``, ``[CLS]``...) reads as ``O``, as in
evaluation. A model trained with document context (``eval_input.context_tokens``) gets each row
framed with its neighbours' pieces by the training rule, and a line longer than a row is tagged in
windows that overlap by the context size (:mod:`modelzoo.heads.token_classification.context_rows`).
Rows are sorted by length and cut into batches padded only to their own longest row
(about 10 % padding on CoNLL-2003), and where the device runs that faster (``skip_padding``, the
CPU) the model skips the padding, float and int8 alike: int8's entity F1 measured the same whether
its per-batch activation scale saw the padding or not (docs/MEASURED.md), and the padding's work is
saved. A batch holds as many rows as fit in the tokens of one ``eval_input`` batch
(``batch_size x max_sequence_length``): many short sentences or a few long ones.
Each tag comes with its softmax probability at that first piece (computed in float32 whatever the
autocast precision). WordPiece ids are cached per distinct word, up to ``WORD_CACHE_SIZE`` words, so
that a stream of any length keeps bounded memory.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from modelzoo.common.device import DeviceSetup
from modelzoo.common.iteration import zip_strict
from modelzoo.data.labels import LabelVocab
from modelzoo.data.vocab import CLS_TOKEN, PAD_TOKEN, SEP_TOKEN, read_vocab
from modelzoo.data.windows import sentence_windows
from modelzoo.data.wordpiece import WordPieceTokenizer
from modelzoo.heads.token_classification.context_rows import core_capacity, frame_rows

WORD_CACHE_SIZE = 200_000


@dataclass
class _Row:
    """One model row: the ids, and which words of which sentence its first pieces label."""

    sentence: int
    first_word: int
    ids: List[int]
    first_pieces: List[int]


class WordTagger:
    """Tags pre-split words with a token classifier; ``tag`` takes any number of sentences."""

    def __init__(
        self,
        model: nn.Module,
        vocab_file: str,
        id_to_label: List[str],
        max_sequence_length: int,
        batch_size: int,
        setup: DeviceSetup,
        skip_padding: bool = True,
        context_tokens: int = 0,
    ) -> None:
        self.model = model.to(setup.device).eval()
        self.skip_padding = skip_padding
        self.vocab = read_vocab(vocab_file)
        self.pieces = WordPieceTokenizer(vocab_file)
        self.tag_of_id = LabelVocab.from_labels(id_to_label).word_tags()
        self.capacity = max_sequence_length - 2
        self.max_sequence_length = max_sequence_length
        self.context_tokens = context_tokens  # eval_input.context_tokens: the context the model was trained with
        self.core_capacity = core_capacity(self.capacity, context_tokens) if context_tokens else self.capacity
        self.token_budget = batch_size * max_sequence_length
        self.setup = setup
        self._ids_of_word: Dict[str, List[int]] = {}

    def tag(
        self, sentences: List[List[str]], documents: Optional[List[int]] = None
    ) -> Tuple[List[List[str]], List[array]]:
        """One IOB2 tag per word of every sentence, and each tag's probability, as float32 (4 bytes a
        word, not a Python float's 32: a long line has millions); an empty sentence gets none.

        With ``context_tokens``, rows are framed with their document's neighbouring pieces
        (:mod:`modelzoo.heads.token_classification.context_rows`): ``documents`` numbers each
        sentence's document (consecutive sentences of one document share it); without it every
        sentence is a document of its own (a long one still gets its overlapping windows).
        """
        self._learn_words(sentences)
        rows = [row for index, words in enumerate(sentences) for row in self._rows(index, words)]
        if self.context_tokens and rows:
            numbers = [row.sentence if documents is None else documents[row.sentence] for row in rows]
            framed = frame_rows([row.ids for row in rows], [row.first_pieces for row in rows], numbers,
                                self.context_tokens, self.max_sequence_length)
            rows = [_Row(row.sentence, row.first_word, ids, first) for row, ids, first in zip_strict(rows, *framed)]
        tags: List[List[str]] = [[""] * len(words) for words in sentences]
        scores = [np.zeros(len(words), np.float32) for words in sentences]
        rows.sort(key=lambda row: len(row.ids))
        for batch in self._batches(rows):
            label_ids, probabilities = self._predict(batch)
            for row, predicted, probability in zip_strict(batch, label_ids, probabilities):
                words = slice(row.first_word, row.first_word + len(row.first_pieces))
                tags[row.sentence][words] = self.tag_of_id[predicted[row.first_pieces]].tolist()
                scores[row.sentence][words] = probability[row.first_pieces]
        return tags, [array("f", sentence_scores.tobytes()) for sentence_scores in scores]

    def _batches(self, rows: List[_Row]):
        """Consecutive runs of the length-sorted ``rows`` whose padded size fits the token budget."""
        start = 0
        while start < len(rows):
            stop = start + 1
            while stop < len(rows) and (stop + 1 - start) * len(rows[stop].ids) <= self.token_budget:
                stop += 1
            yield rows[start:stop]
            start = stop

    def _learn_words(self, sentences: List[List[str]]) -> None:
        """WordPiece ids of every word not seen before, all in one tokenizer call: a call per
        sentence spent most of its time in call overhead (a tenth of prediction time on CoNLL-2003)."""
        new_words = list(dict.fromkeys(w for words in sentences for w in words if w not in self._ids_of_word))
        if len(self._ids_of_word) + len(new_words) > WORD_CACHE_SIZE:
            self._ids_of_word.clear()
            new_words = list(dict.fromkeys(w for words in sentences for w in words))
        if new_words:
            (pieces_of_words,) = self.pieces.pieces_of_sentences([new_words])
            for word, pieces in zip_strict(new_words, pieces_of_words):
                self._ids_of_word[word] = [self.vocab[piece] for piece in pieces]

    def _rows(self, sentence: int, words: List[str]) -> List[_Row]:
        """The sentence's rows as training cut it, or, when it needs several rows and the model reads
        context, its cores (the context around each core is added by :meth:`tag`)."""
        ids_of_words = [self._ids_of_word[word] for word in words]
        counts = [len(ids) for ids in ids_of_words]
        rows = []
        for window in sentence_windows(counts, self.capacity if sum(counts) <= self.capacity else self.core_capacity):
            ids, first_pieces = [self.vocab[CLS_TOKEN]], []
            for span in window:
                if span.holds_first_piece:
                    first_pieces.append(len(ids))
                ids.extend(ids_of_words[span.word][span.start : span.stop])
            ids.append(self.vocab[SEP_TOKEN])
            labelled = [span.word for span in window if span.holds_first_piece]
            rows.append(_Row(sentence, labelled[0] if labelled else window[0].word, ids, first_pieces))
        return rows

    @torch.inference_mode()
    def _predict(self, batch: List[_Row]) -> Tuple[np.ndarray, np.ndarray]:
        """Argmax label ids and their probabilities, ``[rows, longest]`` each, of one batch padded to its longest row."""
        longest = max(len(row.ids) for row in batch)
        input_ids = np.full((len(batch), longest), self.vocab[PAD_TOKEN], dtype=np.int32)
        attention_mask = np.zeros((len(batch), longest), dtype=np.int32)
        for index, row in enumerate(batch):
            input_ids[index, : len(row.ids)] = row.ids
            attention_mask[index, : len(row.ids)] = 1
        device = self.setup.device
        inputs = {
            "input_ids": torch.from_numpy(input_ids).to(device),
            "attention_mask": torch.from_numpy(attention_mask).to(device),
            "token_type_ids": torch.zeros((len(batch), longest), dtype=torch.int32, device=device),
        }
        with self.setup.autocast():
            logits = self.model(**inputs, skip_padding=self.skip_padding).logits
        probabilities, label_ids = logits.float().softmax(-1).max(-1)
        return label_ids.cpu().numpy(), probabilities.cpu().numpy()
