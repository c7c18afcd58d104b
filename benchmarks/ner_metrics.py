"""Seconds to score entity-level NER metrics: ours vs seqeval's strict IOB2 classification report.

Real sentences (BC5CDR-chem devel + test by default) as gold; the "predictions" are the gold tags
with a fraction of words replaced by random labels, so both valid and invalid IOB2 transitions
occur, as in an early-training model's output. Two of our paths are timed: ``score_tags`` (tag
strings, seqeval's input) and ``evaluate_examples`` (the evaluation loop's path,
``first_piece_words`` then ``score_words``, on label ids of padded 128-piece examples, 1-3 pieces
per word, long sentences split). Prints one JSON line:
seconds for each, the ratio, and the largest difference between our scores and seqeval's (must be 0).

    python benchmarks/ner_metrics.py [--data_dir ../shared/data/bc5cdr-chem] [--sentences 9000]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from modelzoo.metrics import evaluate_examples, score_tags

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bc5cdr-chem"


def read_blurb_tags(path: Path) -> list[list[str]]:
    """The label column of a BLURB ``word<TAB>label`` file, one list per sentence."""
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            current.append(line.rsplit("\t", 1)[1])
        elif current:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def corrupt(sentences: list[list[str]], rate: float, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    labels = sorted({tag for s in sentences for tag in s})
    return [[rng.choice(labels) if rng.random() < rate else tag for tag in s] for s in sentences]


def as_examples(gold, pred, max_pieces: int, seed: int):
    """Padded example arrays as the data pipeline gives them: [CLS] pieces... [SEP], X after first pieces."""
    rng = random.Random(seed)
    id_to_label = ["[PAD]", *sorted({tag for s in gold + pred for tag in s}), "X", "[CLS]", "[SEP]"]
    label_id = {label: i for i, label in enumerate(id_to_label)}
    rows = []  # (sentence, [(word, gold id, pred id)] per piece)
    for sentence, (gold_tags, pred_tags) in enumerate(zip(gold, pred, strict=True)):
        pieces = []
        for word, (g, p) in enumerate(zip(gold_tags, pred_tags, strict=True)):
            n = rng.randint(1, 3)
            if len(pieces) + n > max_pieces - 2:
                rows.append((sentence, pieces))
                pieces = []
            pieces += [(word, label_id[g], label_id[p])] + [(word, label_id["X"], rng.randrange(len(id_to_label)))] * (n - 1)
        rows.append((sentence, pieces))
    word_index = np.full((len(rows), max_pieces), -1)
    labels = np.zeros((len(rows), max_pieces), dtype=np.int64)
    predictions = np.zeros_like(labels)
    for row, (_, pieces) in enumerate(rows):
        words, gold_ids, pred_ids = zip(*pieces, strict=True)
        end = len(pieces) + 1
        word_index[row, 1:end] = words
        labels[row, 1:end], predictions[row, 1:end] = gold_ids, pred_ids
        labels[row, 0], labels[row, end] = label_id["[CLS]"], label_id["[SEP]"]
    sentence_index = np.array([sentence for sentence, _ in rows])
    return predictions, word_index, sentence_index, labels, id_to_label


def best_of(repeats: int, fn):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sentences", type=int, default=9000)
    parser.add_argument("--noise", type=float, default=0.1, help="fraction of predicted words given a random label")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    gold = [s for split in ("devel.tsv", "test.tsv") for s in read_blurb_tags(args.data_dir / split)][: args.sentences]
    pred = corrupt(gold, args.noise, seed=0)
    ours_s, ours = best_of(args.repeats, lambda: score_tags(gold, pred))
    examples = as_examples(gold, pred, max_pieces=128, seed=0)
    ids_s, from_ids = best_of(args.repeats, lambda: evaluate_examples(*examples))
    assert from_ids.overall == ours.overall, "the id path and the tag path disagree"
    seqeval_s, ref = best_of(
        args.repeats,
        lambda: classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0),
    )
    pairs = [(ours.overall, ref["micro avg"])] + [(ours.per_type[k], ref[k]) for k in ours.per_type]
    max_diff = max(
        abs(getattr(o, field) - r[key])
        for o, r in pairs
        for field, key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score"))
    )
    print(json.dumps({
        "sentences": len(gold),
        "words": sum(map(len, gold)),
        "examples": len(examples[0]),
        "ours_tags_s": round(ours_s, 4),
        "ours_ids_s": round(ids_s, 4),
        "seqeval_strict_s": round(seqeval_s, 4),
        "speedup_tags": round(seqeval_s / ours_s, 1),
        "speedup_ids": round(seqeval_s / ids_s, 1),
        "entity_f1": round(ours.overall.f1, 6),
        "max_abs_diff_vs_seqeval": max_diff,
    }))


if __name__ == "__main__":
    main()
