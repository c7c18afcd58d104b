"""GLUE-style TSV (SST-2 ``sentence<TAB>label``, or sentence pairs) -> classifier CSV folders.

Usage::

    python data_processing/write_csv_classifier.py --data_dir RAW --vocab_file VOCAB \
        --output_dir CSV [--do_lower_case] [--max_seq_length 128] [--labels 0,1]

Input: ``RAW/{train,dev,test}.tsv`` (those present; train required unless ``--labels`` is given), a header line naming the
columns, one example per line. Text columns: ``sentence`` (single sentences, SST-2) or
``sentence1`` + ``sentence2`` (pairs: RTE, MRPC-style files); ``label`` is required; other columns
(such as ``index``) are ignored. CRLF line ends are accepted. No quoting: GLUE TSVs do not quote.

Output, per split, ``CSV/<split>/``:

* ``<split>-<n>.csv`` shards with header ``input_ids,token_type_ids,labels``: the WordPiece ids
  ``[CLS] a [SEP] (b [SEP])`` and token types as space-joined ints, and the label id. Ids rather
  than word pieces because the reader then parses numbers only (no vocabulary lookup, no tokenizer
  at training time); unpadded, so the reader can pad to, or pack into, any
  ``max_sequence_length`` up to the one written here. The attention mask is not stored: it is all
  ones before padding.
* ``meta.dat``: ``filename count`` per shard.
* ``label2id.json``: label string -> id, the same for every split (same file name as the NER CSVs).

Examples longer than ``--max_seq_length`` are truncated longest-first (one example cannot be split
into two without changing its label); their number is printed per split.

Bad input stops the run with one line ``FILE:LINE: problem`` on stderr and exit code 2 (the
``DataFileError`` of the NER pipeline): a line with the wrong number of columns, an empty file or
one without examples, a label outside the label set, bytes that are not UTF-8, a missing or
unusable vocab file. Everything is checked first, then written to a temporary folder beside
``--output_dir``, which becomes the complete new one in one rename only on success, so a failed or
killed run leaves ``--output_dir`` as it was. A split folder that already holds files is replaced only
with ``--overwrite``, and then only what a writer wrote there; nothing else in ``--output_dir`` is touched.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from transformers import BertTokenizerFast

from data_processing.output_folder import check_output_dir, publishing
from modelzoo.common.errors import DataFileError, UserError
from modelzoo.common.iteration import zip_strict
from modelzoo.common.strings import remove_suffix
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE, META_FILE
from modelzoo.data.text_files import read_utf8_text
from modelzoo.data.vocab import read_vocab

SPLITS = ("train", "dev", "test")
TEXT_COLUMN_SETS = (("sentence1", "sentence2"), ("sentence",))
CSV_COLUMNS = ("input_ids", "token_type_ids", "labels")


@dataclass
class RawSplit:
    """The examples of one TSV file: texts (one or two per example), labels, and their line numbers."""

    texts: List[Tuple[str, ...]]
    labels: List[str]
    line_numbers: List[int]


def read_tsv(path: Path) -> RawSplit:
    """Parse one GLUE-style TSV, checking every line; raises DataFileError on the first problem."""
    lines = read_utf8_text(path, "TSV file").split("\n")
    if lines[-1] == "":
        lines.pop()
    lines = [remove_suffix(line, "\r") for line in lines]
    if not any(line.strip() for line in lines):
        raise DataFileError(path, 1, "empty file (expected a header line such as 'sentence<TAB>label')")
    header = lines[0].split("\t")
    text_columns = next((cols for cols in TEXT_COLUMN_SETS if set(cols) <= set(header)), None)
    if text_columns is None or "label" not in header:
        raise DataFileError(
            path, 1, f"header {header} must name 'label' and 'sentence' (or 'sentence1' and 'sentence2')"
        )
    text_positions = [header.index(column) for column in text_columns]
    label_position = header.index("label")
    raw = RawSplit(texts=[], labels=[], line_numbers=[])
    for line_number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            raise DataFileError(path, line_number, "blank line (one example per line, no blank lines)")
        fields = line.split("\t")
        if len(fields) != len(header):
            raise DataFileError(
                path,
                line_number,
                f"expected {len(header)} tab-separated columns ({', '.join(header)}), found {len(fields)}",
            )
        texts = tuple(fields[position].strip() for position in text_positions)
        if not all(texts):
            raise DataFileError(path, line_number, f"empty text in column(s) {', '.join(text_columns)}")
        raw.texts.append(texts)
        raw.labels.append(fields[label_position].strip())
        raw.line_numbers.append(line_number)
    if not raw.texts:
        raise DataFileError(path, 1, "no examples after the header line")
    return raw


def load_tokenizer(vocab_file: Path, do_lower_case: bool) -> BertTokenizerFast:
    """A WordPiece tokenizer for ``vocab_file``, checked (by ``read_vocab``) to hold BERT's special tokens.

    Both ``vocab=`` and ``vocab_file=``: transformers 5.x reads the first (the second alone silently builds
    a 5-token vocabulary), transformers 4.x (the IPU environment's, requirements-ipu.txt) the second.
    """
    read_vocab(vocab_file)
    return BertTokenizerFast(vocab=str(vocab_file), vocab_file=str(vocab_file), do_lower_case=do_lower_case)


def encode(
    raw: RawSplit, tokenizer: BertTokenizerFast, max_seq_length: int
) -> Tuple[List[List[int]], List[List[int]], int]:
    """WordPiece ids and token types per example, and how many examples had to be truncated."""
    encoded = tokenizer(*zip_strict(*raw.texts))
    input_ids, token_type_ids = encoded["input_ids"], encoded["token_type_ids"]
    too_long = [index for index, ids in enumerate(input_ids) if len(ids) > max_seq_length]
    if too_long:
        shortened = tokenizer(*zip_strict(*(raw.texts[index] for index in too_long)),
                              truncation="longest_first", max_length=max_seq_length)
        for position, index in enumerate(too_long):
            input_ids[index] = shortened["input_ids"][position]
            token_type_ids[index] = shortened["token_type_ids"][position]
    return input_ids, token_type_ids, len(too_long)


def write_split(
    folder: Path, split: str, input_ids: List[List[int]], token_type_ids: List[List[int]],
    label_ids: List[int], examples_per_shard: int,
) -> None:
    """The CSV shards and ``meta.dat`` of one split."""
    folder.mkdir()
    meta_lines = []
    for shard, start in enumerate(range(0, len(label_ids), examples_per_shard)):
        name = f"{split}-{shard}.csv"
        stop = start + examples_per_shard
        with open(folder / name, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for ids, types, label in zip_strict(input_ids[start:stop], token_type_ids[start:stop], label_ids[start:stop]):
                writer.writerow((" ".join(map(str, ids)), " ".join(map(str, types)), label))
        meta_lines.append(f"{name} {len(label_ids[start:stop])}\n")
    (folder / META_FILE).write_text("".join(meta_lines), encoding="utf-8")


def convert(
    data_dir: Path, vocab_file: Path, output_dir: Path, *, do_lower_case: bool, max_seq_length: int,
    labels: Optional[List[str]], examples_per_shard: int, overwrite: bool = False,
) -> Dict[str, int]:
    """Read, check and write every split present; returns examples written per split.

    The label set is ``labels`` if given, else the sorted labels of the train split (without either,
    refused). Raises DataFileError before anything changes at ``output_dir``.
    """
    if not data_dir.is_dir():
        raise DataFileError(data_dir, None, "data directory not found")
    present = [split for split in SPLITS if (data_dir / f"{split}.tsv").is_file()]
    if not present:
        raise DataFileError(data_dir, None, f"no {', '.join(s + '.tsv' for s in SPLITS)} found")
    if "train" not in present and labels is None:
        raise DataFileError(
            data_dir, None, "no train.tsv: the train split defines the label set; give --labels to convert the others alone"
        )
    tokenizer = load_tokenizer(vocab_file, do_lower_case)
    raw_splits = {split: read_tsv(data_dir / f"{split}.tsv") for split in present}
    label_list = labels if labels is not None else sorted(set(raw_splits["train"].labels))
    label2id = {label: index for index, label in enumerate(label_list)}
    for split, raw in raw_splits.items():
        for label, line_number in zip_strict(raw.labels, raw.line_numbers):
            if label not in label2id:
                raise DataFileError(data_dir / f"{split}.tsv", line_number, f"label {label!r} not in the label set {label_list}")
    check_output_dir(output_dir, present, overwrite)

    written = {}
    with publishing(output_dir, present) as staging:
        for split, raw in raw_splits.items():
            input_ids, token_type_ids, truncated = encode(raw, tokenizer, max_seq_length)
            label_ids = [label2id[label] for label in raw.labels]
            write_split(staging / split, split, input_ids, token_type_ids, label_ids, examples_per_shard)
            (staging / split / LABEL_VOCAB_FILE).write_text(json.dumps(label2id, indent=2) + "\n", encoding="utf-8")
            written[split] = len(label_ids)
            print(f"{split}: {len(label_ids)} examples, {truncated} truncated to {max_seq_length} tokens")
    return written


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", type=Path, required=True, help="folder with train.tsv / dev.tsv / test.tsv")
    parser.add_argument("--vocab_file", type=Path, required=True, help="BERT WordPiece vocab.txt")
    parser.add_argument("--output_dir", type=Path, required=True, help="gets one sub-folder per split")
    parser.add_argument("--do_lower_case", action="store_true", help="lower-case before WordPiece (uncased vocab)")
    parser.add_argument("--max_seq_length", type=int, default=128, help="longer examples are truncated longest-first")
    parser.add_argument("--labels", type=lambda text: text.split(","), default=None,
                        help="comma-separated label set in id order (default: sorted labels of the train split)")
    parser.add_argument("--examples_per_shard", type=int, default=50_000, help="examples per CSV file")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace what a writer wrote in split folders that already hold files (once the new ones "
                        "are complete; other files stay)")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.max_seq_length < 3 or args.examples_per_shard < 1:
        print("error: --max_seq_length must be at least 3 and --examples_per_shard at least 1", file=sys.stderr)
        return 2
    try:
        convert(
            args.data_dir, args.vocab_file, args.output_dir, do_lower_case=args.do_lower_case,
            max_seq_length=args.max_seq_length, labels=args.labels,
            examples_per_shard=args.examples_per_shard, overwrite=args.overwrite,
        )
    except UserError as error:  # bad input, or an output place that cannot be written
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
