"""Training-step throughput: our BertForTokenClassification vs Hugging Face's (sdpa), same weights and batch.

One step = forward + backward + AdamW update. The two models are timed alternately in one run
(ours, theirs, ours, ...) so that machine drift hits both alike; the medians and their ratio are
printed, and written as JSON with --json.

    python benchmarks/model_step.py                       # MiniLM 32x128 and BERT-base 8x128, CPU
    python benchmarks/model_step.py --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import transformers

from modelzoo.bert import BertForTokenClassification
from modelzoo.checkpoint.files import read_checkpoint
from modelzoo.tools.convert_checkpoint import convert

CONFIGS = {  # name -> (HF config, batch size)
    "minilm-l6": (dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536), 32),
    "bert-base": (dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072), 8),
}


def build_pair(hf_kwargs: dict, device: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """An HF token classifier and ours holding the same weights (through the converter)."""
    torch.manual_seed(0)
    hf_model = transformers.BertForTokenClassification(
        transformers.BertConfig(**hf_kwargs, num_labels=7, attn_implementation="sdpa")
    )
    with tempfile.TemporaryDirectory() as workdir:
        hf_model.save_pretrained(Path(workdir) / "hf")
        convert(Path(workdir) / "hf", "hf", "modelzoo", Path(workdir) / "ours")
        state_dict, config = read_checkpoint(Path(workdir) / "ours", "modelzoo")
    ours = BertForTokenClassification(config)
    ours.load_state_dict(state_dict)
    return ours.to(device).train(), hf_model.to(device).train()


def make_batch(batch_size: int, seq_len: int, device: str) -> dict[str, torch.Tensor]:
    """Rows of random real length (32..seq_len), padded: what a padded NER batch looks like."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(32, seq_len + 1, (batch_size,), generator=generator)
    positions = torch.arange(seq_len)[None]
    attention_mask = (positions < lengths[:, None]).long()
    input_ids = torch.randint(1000, 30000, (batch_size, seq_len), generator=generator) * attention_mask
    labels = torch.randint(0, 7, (batch_size, seq_len), generator=generator)
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": attention_mask.to(device),
        "token_type_ids": torch.zeros_like(input_ids).to(device),
        "labels": torch.where(attention_mask.bool(), labels, -100).to(device),
    }


def make_step(model: torch.nn.Module, batch: dict, device: str, dtype: torch.dtype):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    autocast = torch.autocast(device_type=device, dtype=dtype, enabled=dtype != torch.float32)

    def step() -> None:
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def time_step(step, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def run(name: str, seq_len: int, repeats: int, warmup: int, device: str, dtype: torch.dtype) -> dict:
    hf_kwargs, batch_size = CONFIGS[name]
    ours, theirs = build_pair(hf_kwargs, device)
    batch = make_batch(batch_size, seq_len, device)
    steps = {"ours": make_step(ours, batch, device, dtype), "hf": make_step(theirs, batch, device, dtype)}
    for _ in range(warmup):
        for step in steps.values():
            step()
    seconds = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            seconds[key].append(time_step(step, device))
    tokens = batch_size * seq_len
    result = {"model": name, "batch": f"{batch_size}x{seq_len}", "device": device, "dtype": str(dtype)}
    for key in steps:
        result[f"{key}_tokens_per_s"] = tokens / statistics.median(seconds[key])
    result["ratio_ours_over_hf"] = result["ours_tokens_per_s"] / result["hf_tokens_per_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per model (alternating)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    dtype = getattr(torch, args.dtype)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, threads {torch.get_num_threads()}")
    results = []
    for name in args.models:
        result = run(name, args.seq_len, args.repeats, args.warmup, args.device, dtype)
        results.append(result)
        print(
            f"{name:10s} {result['batch']:7s} {args.device} {args.dtype}: ours {result['ours_tokens_per_s']:9.0f} tok/s, "
            f"HF {result['hf_tokens_per_s']:9.0f} tok/s, ratio {result['ratio_ours_over_hf']:.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
