"""The one summary table of benchmarks/gpu_check.sh, from what its steps left in its output folder.

Each step's exit code and seconds come from ``status.tsv``; the figures from the JSON files of
gpu_parity.py and model_step.py and from the logs of the fine-tune and the torchrun launch. Exits
1 when a step failed, a parity check failed, or the fine-tune's loss did not fall.

    python benchmarks/gpu_summary.py OUT
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

LOSS_LINE = re.compile(r"step (\d+): loss ([^,\s]+),.*?([\d.]+) real tokens/s")
TIMED_OUT = (124, 137)


def read_status(out: Path) -> dict[str, tuple[int, int]]:
    """Step name -> (exit code, seconds)."""
    rows = [line.split("\t") for line in (out / "status.tsv").read_text().splitlines() if line]
    return {name: (int(code), int(seconds)) for name, code, seconds in rows}


def read_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def step_status(status: dict, name: str, out: Path) -> str:
    if name not in status:
        return "not run"
    code, seconds = status[name]
    if code == 0:
        return f"ok ({seconds} s)"
    what = "timed out" if code in TIMED_OUT else f"FAILED (exit {code})"
    return f"{what} after {seconds} s: see {out / (name + '.log')}"


def parity_rows(out: Path) -> list[tuple[str, str, bool]]:
    parity = read_json(out / "parity.json")
    if parity is None:
        return []
    return [
        (
            f"parity {row['model']} {row['batch']}{' skip padding' if row['skip_padding'] else ''}",
            f"float32 max |diff| {row['float32_max_abs_diff']:.1e} (<= {row['float32_tolerance']:.0e}); bfloat16 "
            f"{row['bfloat16_max_abs_diff']:.1e} (<= {row['bfloat16_tolerance']:.1e}, 2x HF's own + 1e-3)",
            row["passed"],
        )
        for row in parity["checks"]
    ]


def model_step_rows(out: Path) -> list[tuple[str, str, bool]]:
    rows = []
    for result in read_json(out / "model_step.json") or []:
        sides = [side for side in ("ours", "hf", "hf_compiled") if f"{side}_tokens_per_s" in result]
        figures = ", ".join(f"{side} {result[f'{side}_tokens_per_s']:,.0f}" for side in sides) + " tokens/s"
        figures += f"; ours/HF {result['ratio_ours_over_hf']:.2f}x"
        if "ratio_ours_over_hf_compiled" in result:
            figures += f", ours/HF compiled {result['ratio_ours_over_hf_compiled']:.2f}x"
        if "ours_mfu" in result:
            figures += "; MFU " + ", ".join(f"{side} {result[f'{side}_mfu']:.1%}" for side in sides)
        rows.append((f"train step {result['model']} {result['batch']} {result['dtype']}", figures, True))
    return rows


def finetune_row(out: Path) -> tuple[str, str, bool] | None:
    log = out / "finetune.log"
    if not log.is_file():
        return None
    logged = [(int(step), float(loss), float(rate)) for step, loss, rate in LOSS_LINE.findall(log.read_text())]
    metrics = sorted((out / "finetune" / "eval").glob("metrics_step_*.json"), key=lambda p: int(p.stem.split("_")[-1]))
    f1 = json.loads(metrics[-1].read_text())["f1"] if metrics else None
    if len(logged) < 2:
        return ("fine-tune, packed bfloat16 (run.py)", "fewer than two losses logged", False)
    (first_step, first_loss, _), (last_step, last_loss, last_rate) = logged[0], logged[-1]
    falls = last_loss < first_loss
    figures = (f"loss {first_loss:.3f} (step {first_step}) -> {last_loss:.3f} (step {last_step}); eval entity F1 "
               f"{'missing' if f1 is None else f'{f1:.3f}'}; {last_rate:,.0f} real tokens/s")
    return ("fine-tune, packed bfloat16 (run.py)", figures, falls and f1 is not None)


def torchrun_row(out: Path) -> tuple[str, str, bool] | None:
    log = out / "torchrun.log"
    if not log.is_file():
        return None
    steps = [int(step) for step, _, _ in LOSS_LINE.findall(log.read_text())]
    return ("torchrun --nproc_per_node 1 run.py", f"trained to step {steps[-1] if steps else 0}", bool(steps))


def main(out: Path) -> int:
    status = read_status(out)
    parity = read_json(out / "parity.json")
    device = parity["device_name"] if parity else "unknown device"
    sections = [
        ("parity", parity_rows(out)),
        ("model_step", model_step_rows(out)),
        ("finetune", [row for row in [finetune_row(out)] if row]),
        ("torchrun", [row for row in [torchrun_row(out)] if row]),
    ]
    table = []
    all_ok = all(code == 0 for code, _ in status.values())
    for step, rows in sections:
        state = step_status(status, step, out)
        if not rows:
            table.append((step, "no result", state))
        for check, figures, passed in rows:
            all_ok &= passed
            table.append((check, figures, state if passed else f"CHECK FAILED; {state}"))
    width = max(len(check) for check, _, _ in table)
    print(f"\n=== GPU check on {device}: {out} ({sum(seconds for _, seconds in status.values())} s) ===")
    for check, figures, state in table:
        print(f"{check:<{width}}  {figures}  [{state}]")
    print("all checks passed" if all_ok else "SOME CHECKS FAILED")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
