"""Sentence (or sentence-pair) classification data -> classifier CSV folders.

Usage::

    python data_processing/write_csv_classifier.py --data_dir RAW --vocab_file VOCAB \
        --output_dir CSV [--do_lower_case] [--max_seq_length 128] [--labels 0,1] [--format {tsv,csv,jsonl,hf}]

Input (``data_processing/classifier_raw.py``): the train, dev and test splits of RAW (those
present; train required unless ``--labels`` is given) as GLUE-style TSV (a header line naming the
columns, one example per line, no quoting, CRLF accepted), CSV, JSON lines or a Hugging Face
dataset. Text columns: ``sentence`` (single sentences, SST-2), ``sentence1`` + ``sentence2``
(pairs: RTE, MRPC-style files), ``text``, or ``--text_column`` (``--text_pair_column``); the label
is ``--label_column`` (``label``); other columns (such as ``index``) are ignored.

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
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from data_processing.classifier_raw import (
    FORMATS,
    ClassifierColumns,
    RawSplit,
    find_classifier_splits,
    read_split,
)
from data_processing.output_folder import check_output_dir, publishing
from modelzoo.common.errors import DataFileError, UserError
from modelzoo.common.iteration import zip_strict
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE, META_FILE
from modelzoo.data.wordpiece import bert_tokenizer

TEXT_COLUMN_SETS = (("sentence1", "sentence2"), ("sentence",))
CSV_COLUMNS = ("input_ids", "token_type_ids", "labels")


def encode(
    raw: RawSplit, tokenizer: Any, max_seq_length: int
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
    labels: Optional[List[str]], examples_per_shard: int, overwrite: bool = False, file_format: Optional[str] = None,
    columns: Optional[ClassifierColumns] = None,
) -> Dict[str, int]:
    """Read, check and write every split present; returns examples written per split.

    The label set is ``labels`` if given, else the sorted labels of the train split (without either,
    refused). Raises DataFileError before anything changes at ``output_dir``.
    """
    sources = find_classifier_splits(data_dir, file_format)
    present = [source.name for source in sources]
    if "train" not in present and labels is None:
        raise DataFileError(
            data_dir, None, "no train split: the train split defines the label set; give --labels to convert the others alone"
        )
    tokenizer = bert_tokenizer(vocab_file, do_lower_case)
    raw_splits = {source.name: read_split(source, columns or ClassifierColumns()) for source in sources}
    label_list = labels if labels is not None else sorted(set(raw_splits["train"].labels))
    label2id = {label: index for index, label in enumerate(label_list)}
    for source in sources:
        raw = raw_splits[source.name]
        for label, place in zip_strict(raw.labels, raw.places):
            if label not in label2id:
                raise DataFileError(source.path, place, f"label {label!r} not in the label set {label_list}")
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
    parser.add_argument("--data_dir", type=Path, required=True,
                        help="folder with the train / dev / test splits (.tsv, .csv, .jsonl, .parquet, or a saved DatasetDict)")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="tsv (GLUE, unquoted), csv, jsonl (one object a line), hf (datasets: a saved DatasetDict, or "
                        "parquet/json/csv files); detected from the folder and the suffixes if not given")
    parser.add_argument("--text_column", help="the text column (default: sentence1 + sentence2, sentence or text, the "
                        "first present)")
    parser.add_argument("--text_pair_column", help="the second text of a pair (with --text_column)")
    parser.add_argument("--label_column", default="label", help="the label column: names, or integers (named by a "
                        "ClassLabel feature where the dataset has one)")
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
    if args.text_pair_column and not args.text_column:
        print("error: --text_pair_column needs --text_column (the first text of the pair)", file=sys.stderr)
        return 2
    if args.max_seq_length < 3 or args.examples_per_shard < 1:
        print("error: --max_seq_length must be at least 3 and --examples_per_shard at least 1", file=sys.stderr)
        return 2
    try:
        convert(
            args.data_dir, args.vocab_file, args.output_dir, do_lower_case=args.do_lower_case,
            max_seq_length=args.max_seq_length, labels=args.labels,
            examples_per_shard=args.examples_per_shard, overwrite=args.overwrite, file_format=args.format,
            columns=ClassifierColumns(args.text_column, args.text_pair_column, args.label_column),
        )
    except UserError as error:  # bad input, or an output place that cannot be written
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
