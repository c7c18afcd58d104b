"""Print what histogram packing would do to a CSV split folder, before training with ``packing: true``.

Usage::

    python data_processing/packing.py CSV/train --max_sequence_length 128 --max_sequences_per_pack 6 \
        [--algorithm spfhp lpfhp] [--classifier]

Reads the sequence lengths from the shards listed in ``meta.dat``: the ``input_ids`` column of the
classifier CSVs (``write_csv_classifier.py``) or the ``tokens`` column of the NER CSVs
(``write_csv_ner.py``). ``--classifier`` plans the packed-classifier layout (every [CLS] moved to the
end of the row, see :func:`modelzoo.data.packing.plan_classification_packing`), as the classifier
reader does; otherwise sequences are packed as they are, as for token classification. Prints, per
algorithm, the statistics of :class:`modelzoo.data.packing.PackingStats`.

The packing itself happens in the readers (``modelzoo/data``), which share the algorithms of
:mod:`modelzoo.data.packing`; this tool only reports, so it writes nothing.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

from modelzoo.data.csv_layout import read_meta
from modelzoo.data.packing import ALGORITHMS, plan_classification_packing, plan_packing

LENGTH_COLUMNS = ("input_ids", "tokens")


def read_lengths(folder: Path) -> np.ndarray:
    """Tokens per example over the shards of ``folder/meta.dat`` (space-separated ids or word pieces)."""
    lengths = []
    for shard, _, _ in read_meta(folder):
        with open(shard, encoding="utf-8", newline="") as handle:
            rows = csv.DictReader(handle)
            column = next((name for name in LENGTH_COLUMNS if name in (rows.fieldnames or [])), None)
            if column is None:
                raise ValueError(f"{shard}:1: no {' or '.join(LENGTH_COLUMNS)} column")
            lengths.extend(len(row[column].split()) for row in rows)
    return np.array(lengths, dtype=np.int64)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv_dir", type=Path, help="one split folder with meta.dat and CSV shards")
    parser.add_argument("--max_sequence_length", type=int, default=128)
    parser.add_argument("--max_sequences_per_pack", type=int, default=6)
    parser.add_argument("--algorithm", nargs="+", choices=sorted(ALGORITHMS), default=sorted(ALGORITHMS))
    parser.add_argument("--classifier", action="store_true", help="packed-classifier layout ([CLS] moved to the end)")
    args = parser.parse_args(argv)
    try:
        lengths = read_lengths(args.csv_dir)
        plan = plan_classification_packing if args.classifier else plan_packing
        for algorithm in args.algorithm:
            _, stats = plan(lengths, args.max_sequence_length, args.max_sequences_per_pack, algorithm)
            print(f"== {algorithm.upper()}: {args.csv_dir}, max_sequence_length {args.max_sequence_length}, "
                  f"at most {args.max_sequences_per_pack} sequences per pack")
            print(stats.summary())
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
