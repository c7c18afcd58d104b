"""Training-step throughput: ours as the trainer runs it against Hugging Face's as its Trainer runs it.

Ours is one call of the trainer's own step component (the back-end's ``TorchStep``, after its
``prepare``, built from the quick-start params with the model's shape and HF's dropout swapped in,
so that both draw the same dropout masks): whatever the trainer does by default (eager or compiled,
skipping padding, fused AdamW, gradient clipping, the host sync of the loss, matmul attention in
bfloat16 on CPU) is what is timed. HF
is ``BertForTokenClassification`` with its default sdpa attention, stepped as ``Trainer`` does by
default: forward under the autocast accelerate would apply, backward, clipping at
``max_grad_norm``, and the optimizer ``Trainer.create_optimizer`` picks. In bfloat16 HF is also
timed with eager attention (on a CPU torch's SDPA backward in bfloat16 can be the slower) and the
ratio is taken over the faster of the two. HF is also timed through ``torch.compile``, so a lead
that only compilation would give is visible, and so is ours (``runconfig.compile: true``), so that
compiled is compared with compiled.

Every side holds the same weights and steps at the same learning rate (``--learning_rate``); a
first untimed step checks that it changes every parameter (a step at rate 0 would time an update
that does nothing). Ours gets the batch padded to ``--seq-len``, as its data pipeline pads; HF the
same rows cut to the longest, as ``DataCollatorForTokenClassification`` pads; throughput counts the
real tokens. Ours and HF eager are timed in turn, so that machine drift hits them alike; then ours,
ours compiled and HF compiled, in a second round that a time limit on compilation can cut without
losing the first (``--json`` is written after each round). The host (CPU model and flags, torch,
threads) is printed and recorded: bfloat16 on a CPU without AVX512-BF16 or AMX is emulated through
float32, and its figures say nothing about a CPU that has them.

MFU counts the model FLOPs of the real tokens only (6 x non-embedding parameters per token, plus
attention's 12 x layers x hidden x row length), over ``--peak_tflops`` (the CUDA default is the
dense bfloat16 peak of an H100/H200).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/model_step.py   # MiniLM 32x128 and BERT-base 8x128, CPU
    python benchmarks/model_step.py --device cuda --dtype bfloat16 --json out.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import torch
import transformers
from host import describe, host_description

from modelzoo.backends.targets import make_backend
from modelzoo.backends.torch_step import TorchStep
from modelzoo.checkpoint.files import read_checkpoint
from modelzoo.common.atomic import write_json_atomic
from modelzoo.common.device import native_bfloat16
from modelzoo.heads import Task, build_task
from modelzoo.params.params import Params, load_params
from modelzoo.tools.convert_checkpoint import convert
from modelzoo.tools.quickstart import DEFAULT_CONFIG

NUM_LABELS = 13  # the quick start's CoNLL-2003 label vocabulary
CONFIGS = {  # name -> (HF config, batch size)
    "minilm-l6": (dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536), 32),
    "bert-base": (dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072), 8),
    "tiny": (dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64), 4),  # smoke runs
}
CUDA_PEAK_TFLOPS = 989.0  # H100/H200 dense bfloat16
LEARNING_RATE = 1e-4  # the HF recipe's rate in time_to_f1.py


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def hf_model(hf_kwargs: dict, device: str, attention: str = "sdpa") -> transformers.BertForTokenClassification:
    torch.manual_seed(0)  # every copy holds the same weights
    config = transformers.BertConfig(**hf_kwargs, num_labels=NUM_LABELS, attn_implementation=attention)
    return transformers.BertForTokenClassification(config).to(device).train()


def our_model(hf: torch.nn.Module, hf_kwargs: dict, dtype: str, device: str,
              compiled: bool = False) -> tuple[Params, Task, torch.nn.Module]:
    """The quick-start params with ``hf``'s shape (and ``runconfig.compile: compiled``), their task, and our
    model holding ``hf``'s weights."""
    shape = {"hidden_size": "hidden_size", "num_hidden_layers": "num_hidden_layers",
             "num_attention_heads": "num_heads", "intermediate_size": "filter_size"}
    overrides = {f"model.{ours}": hf_kwargs[theirs] for theirs, ours in shape.items()}
    overrides["model.dropout_rate"] = hf.config.hidden_dropout_prob
    overrides["model.attention_dropout_rate"] = hf.config.attention_probs_dropout_prob
    overrides.update({"model.num_classes": NUM_LABELS, "runconfig.precision": dtype, "runconfig.compile": compiled,
                      "train_input.packing": False, "eval_input.packing": False})
    params = load_params(DEFAULT_CONFIG, overrides)
    task = build_task(params)
    model = task.build_model()
    with tempfile.TemporaryDirectory() as workdir:
        hf.save_pretrained(Path(workdir) / "hf")
        convert(Path(workdir) / "hf", "hf", "modelzoo", Path(workdir) / "ours")
        state_dict, _ = read_checkpoint(Path(workdir) / "ours", "modelzoo")
    model.load_state_dict(state_dict)
    return params, task, model.to(device)


def our_step(hf: torch.nn.Module, hf_kwargs: dict, device: str, dtype: str, compiled: bool = False) -> TorchStep:
    """The back-end's step component over our model holding ``hf``'s weights (through the converter)."""
    params, task, model = our_model(hf, hf_kwargs, dtype, device, compiled)
    backend = make_backend("GPU" if device == "cuda" else "CPU", params, "train")
    context = backend.start()
    backend.prepare(model)
    return backend.train_step(task, model, context)


def hf_step(model: torch.nn.Module, batch: dict, device: str, dtype: str, compiled: bool, learning_rate: float):
    """One optimizer step as ``Trainer`` takes it by default (no accumulation, one process)."""
    with tempfile.TemporaryDirectory() as output_dir:  # Trainer creates it; nothing is written there
        args = transformers.TrainingArguments(output_dir=output_dir, report_to=[], use_cpu=device == "cpu",
                                              learning_rate=learning_rate)
        optimizer = transformers.Trainer(model=model, args=args).create_optimizer()
    forward = torch.compile(model) if compiled else model
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=dtype == "bfloat16")
    inputs = {key: batch[key] for key in ("input_ids", "attention_mask", "token_type_ids", "labels")}

    def step() -> None:
        with autocast:
            loss = forward(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def make_batch(batch_size: int, seq_len: int, device: str) -> dict[str, torch.Tensor]:
    """Rows of random real length (a quarter of seq_len up to all of it), padded: a padded NER batch."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(max(seq_len // 4, 2), seq_len + 1, (batch_size,), generator=generator)
    attention_mask = (torch.arange(seq_len)[None] < lengths[:, None]).long()
    input_ids = torch.randint(1000, 30000, (batch_size, seq_len), generator=generator) * attention_mask
    labels = torch.randint(0, NUM_LABELS, (batch_size, seq_len), generator=generator)
    batch = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": torch.zeros_like(input_ids),
        "labels": torch.where(attention_mask.bool(), labels, -100),
        "sentence_index": torch.arange(batch_size),
    }
    return {key: value.to(device) for key, value in batch.items()}


def trimmed(batch: dict) -> dict:
    """The rows cut to the longest, as HF's collator pads a batch (``padding=True``)."""
    longest = int(batch["attention_mask"].sum(dim=1).max())
    return {key: value[:, :longest].contiguous() if value.dim() == 2 else value for key, value in batch.items()}


def changed_parameters(models: Dict[str, torch.nn.Module], steps: Dict[str, Callable[[], object]]) -> Dict[str, str]:
    """One step of each side; ``"changed/all"`` of its parameter tensors. Raises unless every one changed."""
    counts = {}
    for side, step in steps.items():
        before = [p.detach().clone() for p in models[side].parameters()]
        step()
        changed = sum(not torch.equal(b, p.detach()) for b, p in zip(before, models[side].parameters()))
        counts[side] = f"{changed}/{len(before)}"
        if changed != len(before):
            raise SystemExit(f"error: one step of {side} changed {counts[side]} of its parameter tensors; "
                             "every one must change (a rate of 0?)")
    return counts


def real_token_flops(model: torch.nn.Module, batch: dict) -> float:
    """Training FLOPs of the batch's real tokens: 6N per token plus attention over each row's length."""
    config = model.config
    non_embedding = sum(p.numel() for name, p in model.named_parameters() if ".embeddings." not in name)
    lengths = batch["attention_mask"].sum(dim=1).double()
    attention = 12 * config.num_hidden_layers * config.hidden_size * (lengths**2).sum()
    return float(6 * non_embedding * lengths.sum() + attention)


def time_alternately(steps: Dict[str, Callable[[], object]], warmup: int, repeats: int, device: str) -> Dict[str, float]:
    """Median seconds of each step, the steps taken in turn so that machine drift hits them alike."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    seconds: Dict[str, List[float]] = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            seconds[key].append(time.perf_counter() - start)
    return {key: statistics.median(times) for key, times in seconds.items()}


def run(name: str, seq_len: int, batch_size: int | None, repeats: int, warmup: int, device: str, dtype: str,
        peak_tflops: float | None, hf_compiled: bool = True, learning_rate: float = LEARNING_RATE) -> Iterator[dict]:
    """The row of ``name``: ours against HF eager (in bfloat16 with sdpa and with eager attention, the
    ratio over the faster), yielded as soon as they are timed; then, with ``hf_compiled``, the row again
    with HF through ``torch.compile`` (timed in turn with ours once more, its ratio from that round).
    A caller that saves each row as it comes keeps the eager figures when compilation runs out of time."""
    hf_kwargs, default_batch = CONFIGS[name]
    batch_size = batch_size or default_batch
    theirs = hf_model(hf_kwargs, device)
    ours = our_step(theirs, hf_kwargs, device, dtype)
    batch = make_batch(batch_size, seq_len, device)
    hf_batch = trimmed(batch)
    flops = real_token_flops(theirs, batch)
    real_tokens = int(batch["attention_mask"].sum())
    result = {"model": name, "batch": f"{batch_size}x{seq_len}",
              "hf_batch": "x".join(map(str, hf_batch["input_ids"].shape)),
              "device": device, "dtype": dtype, "learning_rate": learning_rate,
              "bfloat16_native": native_bfloat16(torch.device(device)), "host": host_description()}

    def record(side: str, median: float) -> None:
        result[f"{side}_tokens_per_s"] = real_tokens / median
        if peak_tflops:
            result[f"{side}_mfu"] = flops / median / (peak_tflops * 1e12)

    def ours_step() -> None:
        ours.call([batch], learning_rate)

    models = {"ours": ours.model, "hf": theirs}
    steps = {"ours": ours_step, "hf": hf_step(theirs, hf_batch, device, dtype, False, learning_rate)}
    if dtype == "bfloat16":
        models["hf_eager"] = hf_model(hf_kwargs, device, "eager")
        steps["hf_eager"] = hf_step(models["hf_eager"], hf_batch, device, dtype, False, learning_rate)
    result["parameters_changed"] = changed_parameters(models, steps)
    medians = time_alternately(steps, warmup, repeats, device)
    for side, median in medians.items():
        record(side, median)
    fastest_hf = min((side for side in medians if side != "ours"), key=medians.__getitem__)
    result["hf_fastest"] = fastest_hf
    result["ratio_ours_over_hf"] = medians[fastest_hf] / medians["ours"]
    yield dict(result)
    if hf_compiled:  # copies with their own weights and optimizers, so that the steps do not interleave
        fresh = hf_model(hf_kwargs, device)
        compiled_ours = our_step(fresh, hf_kwargs, device, dtype, compiled=True)  # runconfig.compile: true
        compiled = hf_step(fresh, hf_batch, device, dtype, True, learning_rate)
        medians = time_alternately({"ours": ours_step, "hf_compiled": compiled,
                                    "ours_compiled": lambda: compiled_ours.call([batch], learning_rate)},
                                   warmup, repeats, device)
        record("hf_compiled", medians["hf_compiled"])
        record("ours_compiled", medians["ours_compiled"])
        result["ours_in_compiled_round_tokens_per_s"] = real_tokens / medians["ours"]  # the drift between rounds
        result["ratio_ours_over_hf_compiled"] = medians["hf_compiled"] / medians["ours"]
        result["ratio_ours_compiled_over_hf_compiled"] = medians["hf_compiled"] / medians["ours_compiled"]
        yield dict(result)


SIDES = ("ours", "hf", "hf_eager", "hf_compiled", "ours_compiled")


def format_result(result: dict) -> str:
    sides = [key for key in SIDES if f"{key}_tokens_per_s" in result]
    line = f"{result['model']:10s} {result['batch']:7s} {result['device']} {result['dtype']}: " + ", ".join(
        f"{side} {result[f'{side}_tokens_per_s']:.0f}" for side in sides
    )
    line += (f" real tokens/s (HF batch {result['hf_batch']}); ratio {result['ratio_ours_over_hf']:.3f}"
             f" over {result['hf_fastest']}")
    if "ratio_ours_over_hf_compiled" in result:
        line += (f" (over HF compiled {result['ratio_ours_over_hf_compiled']:.3f}, ours"
                 f" {result['ours_in_compiled_round_tokens_per_s']:.0f} in that round; compiled over compiled"
                 f" {result['ratio_ours_compiled_over_hf_compiled']:.3f})")
    if "ours_mfu" in result:
        line += "; MFU " + ", ".join(f"{side} {result[f'{side}_mfu']:.1%}" for side in sides)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["minilm-l6", "bert-base"], choices=list(CONFIGS))
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch_size", type=int, help="rows a batch (default: 32 for MiniLM, 8 for BERT-base)")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per model (alternating)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation happens here)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--learning_rate", type=float, default=LEARNING_RATE, help="every side's step rate")
    parser.add_argument("--peak_tflops", type=float, help=f"for MFU (default on cuda: {CUDA_PEAK_TFLOPS:.0f})")
    parser.add_argument("--skip_hf_compiled", action="store_true", help="leave HF with torch.compile out (dry runs)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    peak = args.peak_tflops or (CUDA_PEAK_TFLOPS if args.device == "cuda" else None)
    print(f"host: {describe(host_description())}; transformers {transformers.__version__}")
    if args.dtype == "bfloat16" and not native_bfloat16(torch.device(args.device)):
        print("bfloat16 is emulated on this device (no AVX512-BF16 or AMX): "
              "its figures are no guide to a CPU that has them")
    results: List[dict] = []
    for name in args.models:
        results.append({})
        for row in run(name, args.seq_len, args.batch_size, args.repeats, args.warmup, args.device, args.dtype, peak,
                       not args.skip_hf_compiled, args.learning_rate):
            results[-1] = row
            print(format_result(row), flush=True)
            if args.json:  # after every row: a time limit that stops the script keeps what was measured
                write_json_atomic(args.json, results)


if __name__ == "__main__":
    main()
