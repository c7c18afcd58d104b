"""What document context costs packing: rows, packing efficiency and tokens per epoch against no context.

Usage (a CSV folder written by ``data_processing/write_csv_ner.py``, which has the document column)::

    python benchmarks/context_packing.py --data_dir CSV/train --vocab_file VOCAB [--contexts 0,16,32,64]
        [--max_sequence_length 128] [--max_sequences_per_pack 16] [--json OUT]

For each context size the split is read as training reads it (``NerCsvDataset`` with packing, LPFHP)
and a row is printed: examples, packed rows, real tokens, packing efficiency (real tokens / slots),
the mean context pieces an example got (both sides), and two ratios against context 0 measured in
the same run: rows (what an epoch of fixed-size batches costs) and real tokens (what the model
computes per epoch). Nothing is timed; the rows ratio is the fine-tuning cost at equal batches.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List

from modelzoo.data.ner_dataset import NerCsvDataset


def measure(data_dir: Path, vocab_file: Path, contexts: List[int], max_sequence_length: int, per_pack: int) -> List[Dict]:
    """A row per context size; ``contexts[0]`` must be 0, the baseline of the ratios."""
    rows: List[Dict] = []
    for context in contexts:
        stats = NerCsvDataset(data_dir, vocab_file, max_sequence_length, max_sequences_per_pack=per_pack,
                              context_tokens=context).packing_stats
        base = rows[0] if rows else {"packed_rows": stats.num_packs, "real_tokens": stats.num_tokens}
        rows.append({
            "context_tokens": context,
            "examples": stats.num_sequences,
            "packed_rows": stats.num_packs,
            "real_tokens": stats.num_tokens,
            "efficiency": stats.num_tokens / (stats.num_packs * max_sequence_length),
            "mean_context_pieces": (stats.num_tokens - base["real_tokens"]) / stats.num_sequences,
            "rows_ratio": stats.num_packs / base["packed_rows"],
            "tokens_ratio": stats.num_tokens / base["real_tokens"],
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", type=Path, required=True, help="a split folder of write_csv_ner.py")
    parser.add_argument("--vocab_file", type=Path, required=True)
    parser.add_argument("--contexts", default="0,16,32,64", help="comma-separated context_tokens; the first is the baseline")
    parser.add_argument("--max_sequence_length", type=int, default=128)
    parser.add_argument("--max_sequences_per_pack", type=int, default=16)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    contexts = [int(value) for value in args.contexts.split(",")]
    if contexts[0] != 0:
        contexts.insert(0, 0)
    rows = measure(args.data_dir, args.vocab_file, contexts, args.max_sequence_length, args.max_sequences_per_pack)
    print(f"{args.data_dir}: L={args.max_sequence_length}, up to {args.max_sequences_per_pack} sequences a row, LPFHP")
    print("context  examples  rows    real tokens  efficiency  context/example  rows x  tokens x")
    for row in rows:
        print(f"{row['context_tokens']:>7}  {row['examples']:>8}  {row['packed_rows']:>6}  {row['real_tokens']:>11}  "
              f"{row['efficiency']:>10.3f}  {row['mean_context_pieces']:>15.1f}  {row['rows_ratio']:>6.2f}  "
              f"{row['tokens_ratio']:>8.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
