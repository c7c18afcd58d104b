"""The report of benchmarks/gpu_check.sh, from what its steps left in its work folder.

Each step's record (``steps/NAME.json``: exit code, seconds, limit, or why it was skipped) and log
(``steps/NAME.log``), the JSON results of the preflight, gpu_parity.py and model_step.py
(``results/``) and the fine-tune's eval metrics become three small files in the report folder,
rewritten after every step so that a run cut short still reports what it did:

  table.txt    one row per check with its figures and its step's state
  report.json  the same with every step's record and full results
  logs.txt     every step's log (progress bars reduced to their last state)

Only the table is printed (not with ``--quiet``). Exits 1 when a step failed, timed out or was
skipped, a parity check failed, or the fine-tune's loss did not fall.

    python benchmarks/gpu_summary.py WORK --report DIR [--quiet]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import List, Optional, Tuple

LOSS_LINE = re.compile(r"step (\d+): loss ([^,\s]+),.*?([\d.]+) real tokens/s")
RUN_OPTIONS = re.compile(r"precision: (\w+), compile: (\w+)")  # of the fine-tune's params, as gpu_check.sh writes them
AUTO_PRECISION = re.compile(r"runconfig.precision auto: (\w+)")  # what run.py says "auto" became
TIMED_OUT = (124, 137)  # timeout's own code, and 128 + SIGKILL after --kill-after
LOG_TAIL_BYTES = 256 * 1024  # of each step's log in logs.txt: the report must come back whole
Row = Tuple[str, str, bool]  # check, figures, passed


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def read_records(work: Path) -> List[dict]:
    records = [read_json(path) for path in (work / "steps").glob("*.json")]
    return sorted(records, key=lambda record: record["index"])


def read_log(work: Path, name: str) -> str:
    """A step's log with each carriage-return-redrawn line (tqdm's bars) reduced to what it showed last."""
    path = work / "steps" / f"{name}.log"
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace")
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def step_state(record: dict) -> str:
    code, seconds = record["exit_code"], record["seconds"]
    if code is None:
        return f"skipped: {record['note']}"
    if code == 0:
        return f"ok ({seconds} s)"
    if code in TIMED_OUT:
        return f"step TIMED OUT at its {record['limit_s']} s limit"
    return f"step FAILED (exit {code}) after {seconds} s"


def preflight_rows(work: Path) -> List[Row]:
    report = read_json(work / "results" / "preflight.json")
    if report is None:
        return []
    return [(f"preflight {check['check']}", check["detail"], check["ok"]) for check in report["checks"]]


def parity_rows(work: Path) -> List[Row]:
    parity = read_json(work / "results" / "parity.json")
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


# model_step.py's SIDES, in its order (not imported: that module loads torch and transformers, and
# this summary runs after every step of the check).
STEP_SIDES = ("ours", "hf", "hf_eager", "hf_compiled", "ours_compiled")


def model_step_rows(work: Path, name: str) -> List[Row]:
    rows = []
    for result in read_json(work / "results" / f"{name}.json") or []:
        sides = [side for side in STEP_SIDES if f"{side}_tokens_per_s" in result]
        figures = ", ".join(f"{side} {result[f'{side}_tokens_per_s']:,.0f}" for side in sides) + " tokens/s"
        figures += f"; ours/{result.get('hf_fastest', 'hf')} {result['ratio_ours_over_hf']:.2f}x"
        if "ratio_ours_over_hf_compiled" in result:
            figures += (f", ours/HF compiled {result['ratio_ours_over_hf_compiled']:.2f}x, ours compiled/HF compiled"
                        f" {result['ratio_ours_compiled_over_hf_compiled']:.2f}x")
        if "ours_mfu" in result:
            figures += "; MFU " + ", ".join(f"{side} {result[f'{side}_mfu']:.1%}" for side in sides)
        rows.append((f"train step {result['model']} {result['batch']} {result['dtype']}", figures, True))
    return rows


def finetune_rows(work: Path) -> List[Row]:
    log = read_log(work, "finetune")
    logged = [(int(step), float(loss), float(rate)) for step, loss, rate in LOSS_LINE.findall(log)]
    metrics = sorted((work / "finetune" / "eval").glob("metrics_step_*.json"), key=lambda p: int(p.stem.split("_")[-1]))
    f1 = read_json(metrics[-1])["f1"] if metrics else None
    check = "fine-tune (run.py)"
    if len(logged) < 2:
        return [(check, "fewer than two losses logged", False)]
    (first_step, first_loss, _), (last_step, last_loss, last_rate) = logged[0], logged[-1]
    params = work / "finetune.yaml"
    how = RUN_OPTIONS.search(params.read_text(encoding="utf-8")) if params.is_file() else None
    precision, compiled = how.groups() if how else ("?", "?")
    chosen = AUTO_PRECISION.search(log)
    if chosen:
        precision += f" ({chosen.group(1)})"
    figures = (f"packed {precision}, compile {compiled}; loss {first_loss:.3f} "
               f"(step {first_step}) -> {last_loss:.3f} (step {last_step}); eval entity F1 "
               f"{'missing' if f1 is None else f'{f1:.3f}'}; {last_rate:,.0f} real tokens/s")
    return [(check, figures, last_loss < first_loss and f1 is not None)]


def torchrun_rows(work: Path) -> List[Row]:
    steps = [int(step) for step, _, _ in LOSS_LINE.findall(read_log(work, "torchrun"))]
    return [("torchrun --nproc_per_node 1 run.py", f"trained to step {steps[-1] if steps else 0}", bool(steps))]


def last_line_row(work: Path, name: str) -> List[Row]:
    """A step without figures of its own (data, weights): its last line says what it wrote."""
    lines = [line for line in read_log(work, name).splitlines() if line.strip()]
    return [(name, lines[-1].strip() if lines else "", True)]


def step_rows(work: Path, name: str) -> List[Row]:
    if name == "preflight":
        return preflight_rows(work)
    if name == "parity":
        return parity_rows(work)
    if name.startswith("model_step"):
        return model_step_rows(work, name)
    if name == "finetune":
        return finetune_rows(work)
    if name == "torchrun":
        return torchrun_rows(work)
    return last_line_row(work, name)


def step_results(work: Path, name: str):
    """The step's own JSON result (preflight, parity, model_step), for report.json."""
    return read_json(work / "results" / f"{name}.json")


def write_atomic(path: Path, text: str) -> None:
    """The report folder is read back while steps still run: never a half-written file there."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def build_report(work: Path) -> Tuple[dict, List[Tuple[str, str, str]]]:
    records = read_records(work)
    preflight = read_json(work / "results" / "preflight.json") or {}
    table, steps, all_passed = [], [], bool(records)
    for record in records:
        name, state = record["step"], step_state(record)
        ok = record["exit_code"] == 0
        rows = step_rows(work, name) if record["exit_code"] is not None else []
        all_passed &= ok and all(passed for _, _, passed in rows)
        for check, figures, passed in rows or [(name, "no result", False)]:
            # A check that failed is marked; so is a step that exited 0 without any result.
            failed = not passed and (ok or bool(rows))
            table.append((check, figures, f"CHECK FAILED; {state}" if failed else state))
        steps.append({**record, "rows": [dict(zip(("check", "figures", "passed"), row)) for row in rows],
                      "result": step_results(work, name)})
    report = {
        "device_name": preflight.get("device_name", "unknown device"),
        "torch": preflight.get("torch"),
        "seconds": sum(record["seconds"] for record in records),
        "steps": steps,
        "all_passed": all_passed,
    }
    return report, table


def format_table(report: dict, table: List[Tuple[str, str, str]], work: Path) -> str:
    width = max((len(check) for check, _, _ in table), default=0)
    lines = [f"=== GPU check on {report['device_name']}, torch {report['torch']}: {work} ({report['seconds']} s) ==="]
    lines += [f"{check:<{width}}  {figures}  [{state}]" for check, figures, state in table]
    lines.append("all checks passed" if report["all_passed"] else "SOME CHECKS FAILED")
    return "\n".join(lines) + "\n"


def format_logs(work: Path, report: dict) -> str:
    parts = []
    for step in report["steps"]:
        log = read_log(work, step["step"]).encode("utf-8")[-LOG_TAIL_BYTES:].decode("utf-8", errors="replace")
        parts.append(f"===== {step['step']}: exit {step['exit_code']}, {step['seconds']} s of {step['limit_s']} s =====\n{log}")
    return "\n".join(parts)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("work", type=Path, help="gpu_check.sh's work folder")
    parser.add_argument("--report", type=Path, required=True, help="where table.txt, report.json and logs.txt go")
    parser.add_argument("--quiet", action="store_true", help="write the files only (between steps)")
    args = parser.parse_args(argv)
    report, table = build_report(args.work)
    text = format_table(report, table, args.work)
    args.report.mkdir(parents=True, exist_ok=True)
    write_atomic(args.report / "table.txt", text)
    write_atomic(args.report / "report.json", json.dumps(report, indent=2) + "\n")
    write_atomic(args.report / "logs.txt", format_logs(args.work, report))
    if not args.quiet:
        print("\n" + text, end="")
    return 0 if report["all_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
