"""One split folder of the NER CSV, written as the sentences stream in: rows first, shards at the end.

Rows go to one file as their examples are made, so memory holds one batch of sentences whatever
the input's size; once the split's example count is known, the file becomes ``--num_output_files``
contiguous shards of (nearly) equal size (a rename for one shard, a streamed copy for more).
A row is one line: its fields hold word pieces, labels and numbers, never a line break.
"""

from __future__ import annotations

import csv
import os
from array import array
from pathlib import Path
from typing import List

import numpy as np

from data_processing.ner_examples import Example
from modelzoo.common.iteration import zip_strict
from modelzoo.data.csv_layout import DOCUMENT_COLUMN, META_FILE

CSV_HEADER = ("tokens", "labels", "sentence_index", "word_index", DOCUMENT_COLUMN)
_ROWS_FILE = ".rows.csv"


class SplitRows:
    """The examples of one split, written to ``folder`` as they come; :meth:`finish` shards them."""

    def __init__(self, folder: Path, split: str) -> None:
        self.folder, self.split = folder, split
        folder.mkdir()
        self._handle = open(folder / _ROWS_FILE, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed in finish)
        self._writer = csv.writer(self._handle, lineterminator="\n")
        self.count = 0
        self.lengths = array("H")  # tokens per example, for the summary's percentiles

    def add(self, examples: List[Example]) -> None:
        self._writer.writerows(
            (" ".join(example.tokens), " ".join(example.labels), example.sentence_index,
             " ".join(map(str, example.word_index)), example.document_index)
            for example in examples
        )
        self.count += len(examples)
        self.lengths.extend(len(example.tokens) for example in examples)

    def finish(self, num_output_files: int) -> List[str]:
        """Cut the rows into shards (contiguous runs of examples), write ``meta.dat``; returns the shard names."""
        self._handle.close()
        rows_path = self.folder / _ROWS_FILE
        bounds = np.linspace(0, self.count, min(num_output_files, self.count) + 1).astype(int)
        sizes = [int(stop - start) for start, stop in zip_strict(bounds[:-1], bounds[1:])]
        names = [f"{self.split}-{shard}.csv" for shard in range(1, len(sizes) + 1)]
        header = ",".join(CSV_HEADER) + "\n"
        with open(rows_path, encoding="utf-8", newline="") as rows:
            for name, size in zip_strict(names, sizes):
                with open(self.folder / name, "w", encoding="utf-8", newline="") as shard:
                    shard.write(header)
                    for _ in range(size):
                        shard.write(next(rows))
        os.unlink(rows_path)
        meta = "".join(f"{name} {size}\n" for name, size in zip_strict(names, sizes))
        (self.folder / META_FILE).write_text(meta, encoding="utf-8")
        return names

    def close(self) -> None:
        self._handle.close()
