"""Our token classifier against Hugging Face's on one device: same weights, same padded batch, eval mode.

float32 logits must agree within 1e-4. In bfloat16 (autocast, as training and evaluation run it)
neither model is exact, so ours is held to HF's own rounding: its largest difference from the
float32 reference may be at most twice HF's bfloat16 one, plus 1e-3. Ours is run both as the
trainer runs it (skipping the padding) and over every position; only real tokens are compared.
Prints one line per check and writes them as JSON; exits 1 when a check fails, 2 without CUDA.

    python benchmarks/gpu_parity.py --device cuda [--models minilm-l6 bert-base] [--json parity.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from model_step import CONFIGS, hf_model, make_batch, our_model

FLOAT32_TOLERANCE = 1e-4


@torch.inference_mode()
def logits(model: torch.nn.Module, batch: dict, device: str, dtype: torch.dtype | None, **options) -> torch.Tensor:
    inputs = {key: batch[key] for key in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.autocast(device_type=device, dtype=dtype or torch.float32, enabled=dtype is not None):
        out = model(**inputs, **options).logits
    return out.float()[batch["attention_mask"].bool()]  # real tokens only


def check(name: str, seq_len: int, device: str) -> list[dict]:
    hf_kwargs, batch_size = CONFIGS[name]
    hf = hf_model(hf_kwargs, device).eval()
    with torch.no_grad():  # HF initialises LayerNorm to 1/0; perturb so that a mapping mistake shows
        for parameter_name, parameter in hf.named_parameters():
            if "LayerNorm" in parameter_name:
                parameter.add_(0.1 * torch.randn_like(parameter))
    ours = our_model(hf, hf_kwargs, "float32", device)[2].eval()
    batch = make_batch(batch_size, seq_len, device)
    reference = logits(hf, batch, device, None)
    hf_bf16_error = (logits(hf, batch, device, torch.bfloat16) - reference).abs().max().item()
    rows = []
    for skip_padding in (True, False):
        float32_error = (logits(ours, batch, device, None, skip_padding=skip_padding) - reference).abs().max().item()
        bf16_error = (logits(ours, batch, device, torch.bfloat16, skip_padding=skip_padding) - reference).abs().max().item()
        bf16_tolerance = 2 * hf_bf16_error + 1e-3
        rows.append({
            "model": name, "device": device, "torch": torch.__version__, "batch": f"{batch_size}x{seq_len}", "skip_padding": skip_padding,
            "float32_max_abs_diff": float32_error, "float32_tolerance": FLOAT32_TOLERANCE,
            "bfloat16_max_abs_diff": bf16_error, "hf_bfloat16_max_abs_diff": hf_bf16_error,
            "bfloat16_tolerance": bf16_tolerance,
            "passed": float32_error <= FLOAT32_TOLERANCE and bf16_error <= bf16_tolerance,
        })
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["minilm-l6", "bert-base"], choices=list(CONFIGS))
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    parser.add_argument("--json", type=Path, help="also write the checks here")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"error: torch {torch.__version__} sees no CUDA device", file=sys.stderr)
        return 2
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"torch {torch.__version__} on {device_name}")
    rows = [row for name in args.models for row in check(name, args.seq_len, args.device)]
    for row in rows:
        print(
            f"{row['model']:10s} {row['device']} skip_padding={row['skip_padding']!s:5s}: float32 max |diff| "
            f"{row['float32_max_abs_diff']:.2e} (<= {FLOAT32_TOLERANCE:.0e}), bfloat16 {row['bfloat16_max_abs_diff']:.2e} "
            f"(<= {row['bfloat16_tolerance']:.2e}; HF's own {row['hf_bfloat16_max_abs_diff']:.2e}): "
            f"{'ok' if row['passed'] else 'FAILED'}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device_name": device_name, "checks": rows}, indent=2) + "\n")
    return 0 if all(row["passed"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
