"""NER CSV folders (written by ``data_processing/write_csv_ner.py``) -> batches of int32 feature dicts.

The whole folder is parsed once into padded numpy int32 arrays, so a batch is a single fancy-index
per feature (hundreds of thousands of examples per second) instead of per-example tokenizing and
collating. Besides the five model inputs (:data:`MODEL_INPUT_KEYS`) every batch carries
:data:`METADATA_KEYS`, which tie each position back to a word of the raw file for evaluation.
CSVs written by Cerebras' own script (``tokens,labels`` only) are read too: the word index is then
derived from the ``X`` labels and every example counts as its own sentence. With ``context_tokens``
each example is framed by its document's neighbouring pieces as the folder is read
(:mod:`modelzoo.data.document_context`, the ``document_index`` column), before any packing.

With ``packing`` on, the examples are packed once, when the folder is read (the histogram strategy
takes milliseconds; which examples share a row is drawn from ``shuffle_seed``), and a row is a
pack: ``input_ids``, ``attention_mask`` (sequence index 1..k, 0 for padding), ``token_type_ids``,
``position_ids`` (restarting at 0 per sequence), ``labels``, ``loss_mask`` and ``word_index`` of
shape ``[max_sequence_length]``, and ``sentence_index`` of shape ``[max_sequences_per_pack]`` (-1 for
an empty slot): the sentence of a token is ``sentence_index[attention_mask - 1]``. Batching,
shuffling and sharding (:mod:`modelzoo.data.batching`) then work on packs exactly as on examples.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
from torch.utils.data import Dataset

from modelzoo.common.errors import DataFileError
from modelzoo.data.csv_layout import (
    DOCUMENT_COLUMN,
    LABEL_VOCAB_FILE,
    META_FILE,
    NO_WORD,
    check_task,
    read_meta,
)
from modelzoo.data.document_context import add_document_context
from modelzoo.data.labels import CLS_LABEL, CONTINUATION_LABEL, FRAME_LABELS, PAD_LABEL, SEP_LABEL
from modelzoo.data.packed_rows import pack_token_examples
from modelzoo.data.packing import Algorithm, PackingStats, assign_sequences, plan_packing
from modelzoo.data.params import InputParams
from modelzoo.data.text_files import read_utf8_text
from modelzoo.data.vocab import CLS_TOKEN, PAD_TOKEN, SEP_TOKEN, read_label_vocab, read_vocab

MODEL_INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "labels", "loss_mask")
PACKED_MODEL_INPUT_KEYS = (*MODEL_INPUT_KEYS, "position_ids")
TOKEN_KEYS = ("input_ids", "token_type_ids", "labels", "loss_mask", "word_index")
METADATA_KEYS = ("sentence_index", "word_index")


class NerCsvDataset(Dataset):
    """A split folder held as padded (or packed) int32 arrays; index it with an int or an array of indices.

    ``dataset[i]`` gives one row (arrays of shape ``[max_sequence_length]``), ``dataset[array]``
    a whole batch (``[len(array), max_sequence_length]``); ``sentence_index`` is one int per example
    (``[max_sequences_per_pack]`` per pack) and ``word_index`` is -1 on [CLS], [SEP] and padding.
    ``example_features`` always holds the unpacked examples (evaluation reads the gold words there).
    """

    def __init__(
        self,
        data_dir: Union[str, Path],
        vocab_file: Union[str, Path, None],
        max_sequence_length: int = 128,
        label_vocab_file: Union[str, Path, None] = None,
        include_special_labels_in_loss: bool = False,
        max_sequences_per_pack: Optional[int] = None,
        packing_algorithm: Algorithm = "lpfhp",
        seed: int = 0,
        context_tokens: int = 0,
    ):
        """``max_sequences_per_pack`` None: one example per row; otherwise rows are packs, drawn from ``seed``.
        ``context_tokens``: frame each example with up to that many pieces of its document on each side
        (:mod:`modelzoo.data.document_context`)."""
        self.data_dir = Path(data_dir)
        if vocab_file is None:
            raise DataFileError(self.data_dir, None, "vocab_file is needed to turn the CSV's word pieces into ids")
        self.max_sequence_length = max_sequence_length
        shards = read_meta(self.data_dir)
        check_task(self.data_dir, shards[0][0], "tokens")
        self.vocab = read_vocab(vocab_file)
        self.label_vocab_file = Path(label_vocab_file or self.data_dir / LABEL_VOCAB_FILE)
        self.label2id = read_label_vocab(self.label_vocab_file)
        self.id2label = {index: label for label, index in self.label2id.items()}
        rows = _CsvRows(self.vocab, self.label2id, max_sequence_length)
        for path, expected_count, meta_line in shards:
            count = rows.read_file(path)
            if count != expected_count:
                raise DataFileError(
                    self.data_dir / META_FILE, meta_line, f"says {expected_count} examples in {path.name}, found {count}"
                )
        if context_tokens:
            rows.add_context(self.data_dir, context_tokens)
        self.example_features = rows.to_features(include_special_labels_in_loss)
        self.lengths = np.asarray(rows.lengths, dtype=np.int64)
        self.features = self.example_features
        self.packing_stats: Optional[PackingStats] = None
        if max_sequences_per_pack is not None:
            strategy, self.packing_stats = plan_packing(
                self.lengths, max_sequence_length, max_sequences_per_pack, packing_algorithm
            )
            packs = assign_sequences(self.lengths, strategy, max_sequences_per_pack, seed)
            self.features = pack_token_examples(self._examples(), packs, max_sequence_length, self.vocab[PAD_TOKEN])

    @classmethod
    def from_params(cls, params: InputParams) -> NerCsvDataset:
        return cls(
            params.data_dir,
            params.vocab_file,
            params.max_sequence_length,
            params.label_vocab_file,
            params.include_special_labels_in_loss,
            params.max_sequences_per_pack if params.packing else None,
            params.packing_algorithm,
            params.shuffle_seed,
            params.context_tokens,
        )

    def _examples(self) -> List[Dict[str, Union[np.ndarray, int]]]:
        """Each example unpadded, as :func:`modelzoo.data.packed_rows.pack_token_examples` takes them."""
        features = self.example_features
        return [
            {**{name: features[name][row, :length] for name in TOKEN_KEYS}, "sentence_index": features["sentence_index"][row]}
            for row, length in enumerate(self.lengths)
        ]

    def __len__(self) -> int:
        return len(self.features["input_ids"])

    def __getitem__(self, index: Union[int, np.ndarray]) -> Dict[str, np.ndarray]:
        return {name: values[index] for name, values in self.features.items()}

    def word_labels(self) -> List[List[str]]:
        """The gold label of every raw word, sentence by sentence: the label at each word's first piece.

        Fails if some word of a sentence is covered by no example or by two, since evaluation
        would then silently score a different set of words than the raw file holds.
        """
        labels, word_index = self.example_features["labels"], self.example_features["word_index"]
        first_piece = (word_index != NO_WORD) & (labels != self.label2id[CONTINUATION_LABEL])
        example_of_piece, _ = np.nonzero(first_piece)
        sentence_of_piece = self.example_features["sentence_index"][example_of_piece]
        word_of_piece = word_index[first_piece]
        label_of_piece = labels[first_piece]
        order = np.lexsort((word_of_piece, sentence_of_piece))
        sentence_of_piece, word_of_piece, label_of_piece = (
            sentence_of_piece[order],
            word_of_piece[order],
            label_of_piece[order],
        )
        num_sentences = int(sentence_of_piece.max()) + 1 if len(sentence_of_piece) else 0
        starts = np.searchsorted(sentence_of_piece, np.arange(num_sentences + 1))
        result = []
        for sentence in range(num_sentences):
            words = word_of_piece[starts[sentence] : starts[sentence + 1]]
            if len(words) == 0 or not np.array_equal(words, np.arange(len(words))):
                raise DataFileError(
                    self.data_dir, None, f"sentence {sentence}: examples do not cover each of its words exactly once"
                )
            result.append([self.id2label[int(i)] for i in label_of_piece[starts[sentence] : starts[sentence + 1]]])
        return result


class _CsvRows:
    """Accumulates parsed CSV rows as flat id lists; the one place that knows the CSV columns."""

    def __init__(self, vocab: Dict[str, int], label2id: Dict[str, int], max_sequence_length: int):
        self.vocab = vocab
        self.label2id = label2id
        self.max_sequence_length = max_sequence_length
        # Flat per-position ids, lists while rows are read (numpy arrays once framed with context).
        self.token_ids: Union[List[int], np.ndarray] = []
        self.label_ids: Union[List[int], np.ndarray] = []
        self.word_index: Union[List[int], np.ndarray] = []
        self.lengths: List[int] = []
        self.sentence_index: List[int] = []
        self.document_index: List[int] = []
        self.without_documents: Optional[Path] = None  # the first shard without the document column
        self.is_context: Optional[np.ndarray] = None  # flat, True at document-context positions

    def read_file(self, path: Path) -> int:
        """Parse one CSV shard, appending its examples; returns how many it held."""
        first_example = len(self.lengths)
        reader = csv.reader(io.StringIO(read_utf8_text(path, f"CSV file listed in {META_FILE}"), newline=""))
        header = next(reader, None)
        if header is None or "tokens" not in header or "labels" not in header:
            raise DataFileError(path, 1, f"expected a header with 'tokens' and 'labels', got {header}")
        column = {name: header.index(name) for name in header}
        has_word_index = "word_index" in column and "sentence_index" in column
        if DOCUMENT_COLUMN not in column and self.without_documents is None:
            self.without_documents = path
        for row in reader:
            self._add_row(path, reader.line_num, row, column, has_word_index)
        return len(self.lengths) - first_example

    def _add_row(self, path: Path, line: int, row: List[str], column: Dict[str, int], has_word_index: bool) -> None:
        if len(row) != len(column):
            raise DataFileError(path, line, f"expected {len(column)} columns, found {len(row)}")
        tokens = row[column["tokens"]].split(" ")
        labels = row[column["labels"]].split(" ")
        if len(tokens) > self.max_sequence_length:
            raise DataFileError(
                path,
                line,
                f"example has {len(tokens)} tokens but max_sequence_length is {self.max_sequence_length}: "
                "the folder was written with a larger --max_seq_length; rewrite it or raise max_sequence_length",
            )
        if len(labels) != len(tokens):
            raise DataFileError(path, line, f"{len(tokens)} tokens but {len(labels)} labels")
        try:
            token_ids = [self.vocab[token] for token in tokens]
        except KeyError as error:
            raise DataFileError(path, line, f"token {error.args[0]!r} is not in the vocab file (another vocab?)") from None
        try:
            label_ids = [self.label2id[label] for label in labels]
        except KeyError as error:
            raise DataFileError(path, line, f"label {error.args[0]!r} is not in the label vocab") from None
        if has_word_index:
            try:
                word_index = [int(index) for index in row[column["word_index"]].split(" ")]
                sentence_index = int(row[column["sentence_index"]])
            except ValueError:
                raise DataFileError(path, line, "sentence_index and word_index must be integers") from None
            if len(word_index) != len(tokens):
                raise DataFileError(path, line, f"{len(tokens)} tokens but {len(word_index)} word indices")
        else:
            word_index = _word_index_from_labels(labels)
            sentence_index = len(self.lengths)
        if DOCUMENT_COLUMN in column:
            try:
                self.document_index.append(int(row[column[DOCUMENT_COLUMN]]))
            except ValueError:
                raise DataFileError(path, line, f"{DOCUMENT_COLUMN} must be an integer") from None
        self.token_ids.extend(token_ids)
        self.label_ids.extend(label_ids)
        self.word_index.extend(word_index)
        self.lengths.append(len(tokens))
        self.sentence_index.append(sentence_index)

    def add_context(self, data_dir: Path, context_tokens: int) -> None:
        """Frame every example with its document's neighbouring pieces (no label, no loss, no word)."""
        if self.without_documents is not None:
            raise DataFileError(
                self.without_documents, 1, f"context_tokens needs the {DOCUMENT_COLUMN} column, which this CSV lacks "
                "(written before it, or by Cerebras' script): write the folder again with write_csv_ner.py",
            )
        lengths = np.asarray(self.lengths, dtype=np.int64)
        token_ids = np.asarray(self.token_ids, dtype=np.int32)
        first, last = np.cumsum(lengths) - lengths, np.cumsum(lengths) - 1
        if not (np.all(token_ids[first] == self.vocab[CLS_TOKEN]) and np.all(token_ids[last] == self.vocab[SEP_TOKEN])):
            raise DataFileError(data_dir, None, "context_tokens needs every example framed by [CLS] ... [SEP]")
        columns = {
            "token_ids": token_ids,
            "label_ids": np.asarray(self.label_ids, dtype=np.int32),
            "word_index": np.asarray(self.word_index, dtype=np.int32),
        }
        framed, new_lengths, self.is_context = add_document_context(
            columns, lengths, np.asarray(self.document_index), context_tokens, self.max_sequence_length,
            {"label_ids": self.label2id[PAD_LABEL], "word_index": NO_WORD},
        )
        self.token_ids, self.label_ids, self.word_index = framed["token_ids"], framed["label_ids"], framed["word_index"]
        self.lengths = new_lengths.tolist()

    def to_features(self, include_special_labels_in_loss: bool) -> Dict[str, np.ndarray]:
        """Scatter the flat id lists into ``[examples, max_sequence_length]`` int32 arrays."""
        lengths = np.asarray(self.lengths, dtype=np.int32)
        shape = (len(lengths), self.max_sequence_length)
        is_real = np.arange(self.max_sequence_length, dtype=np.int32)[None, :] < lengths[:, None]

        def padded(flat: List[int], pad_value: int) -> np.ndarray:
            values = np.full(shape, pad_value, dtype=np.int32)
            values[is_real] = np.asarray(flat, dtype=np.int32)
            return values

        labels = padded(self.label_ids, self.label2id[PAD_LABEL])
        attention_mask = is_real.astype(np.int32)
        if include_special_labels_in_loss:
            loss_mask = attention_mask.copy()
        else:
            special_ids = [self.label2id[label] for label in FRAME_LABELS]
            loss_mask = (is_real & ~np.isin(labels, special_ids)).astype(np.int32)
        if self.is_context is not None:
            loss_mask[is_real] &= ~self.is_context
        return {
            "input_ids": padded(self.token_ids, self.vocab[PAD_TOKEN]),
            "attention_mask": attention_mask,
            "token_type_ids": np.zeros(shape, dtype=np.int32),
            "labels": labels,
            "loss_mask": loss_mask,
            "sentence_index": np.asarray(self.sentence_index, dtype=np.int32),
            "word_index": padded(self.word_index, NO_WORD),
        }


def _word_index_from_labels(labels: List[str]) -> List[int]:
    """Word indices for a CSV without that column: a new word starts at every label but X/[CLS]/[SEP]."""
    word_index = []
    current = NO_WORD
    for label in labels:
        if label in (CLS_LABEL, SEP_LABEL):
            word_index.append(NO_WORD)
            continue
        if label != CONTINUATION_LABEL:
            current += 1
        word_index.append(current)
    return word_index
