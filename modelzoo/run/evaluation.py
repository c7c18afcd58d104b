"""Evaluation: run the model over ``eval_input`` on every rank, score on rank 0, report three ways.

The report is a printed table, JSON in ``model_dir/eval/`` and TensorBoard scalars in
``model_dir/eval``. Scoring maps every prediction back to a word of the raw file (see
``modelzoo.metrics``), so the figures are over the raw file's words, not over word pieces.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from modelzoo.run.distributed import DistContext
from modelzoo.run.tasks import Task, count_loss_positions


@torch.inference_mode()
def evaluate(
    model: nn.Module, task: Task, setup, context: DistContext, model_dir: Path, step: int, eval_steps: int | None = None
) -> dict | None:
    """Scores of ``model`` on eval_input (on rank 0; None on other ranks)."""
    loader = task.dataloader("eval_input", context)
    collector = task.collector(complete=eval_steps is None)
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64)
    positions = torch.zeros((), dtype=torch.float64)
    batches = tqdm(loader, desc="eval", unit="batch", disable=not context.is_main, leave=False)
    for index, batch in enumerate(batches):
        if eval_steps is not None and index >= eval_steps:
            break
        with setup.autocast():
            output = model(**setup.to_device(batch, task.model_input_keys))
        count = count_loss_positions(batch).double()
        loss_sum += output.loss.double().cpu() * count
        positions += count
        collector.add(batch, output.logits)
    totals = context.all_reduce_sum(torch.stack([loss_sum, positions]).to(setup.device)).cpu()
    results = collector.finish(context)
    if results is None:
        return None
    results["loss"] = float(totals[0] / totals[1].clamp(min=1.0))
    results["step"] = step
    _report(results, Path(model_dir), step)
    return results


def _report(results: dict, model_dir: Path, step: int) -> None:
    print(f"evaluation at step {step}: loss {results['loss']:.4f}\n{results['table']}", flush=True)
    eval_dir = model_dir / "eval"
    eval_dir.mkdir(parents=True, exist_ok=True)
    payload = {key: value for key, value in results.items() if key not in ("scores", "table")}
    if "scores" in results:
        payload["scores"] = results["scores"].to_dict()
    _write_json_atomic(eval_dir / f"metrics_step_{step}.json", payload)
    with SummaryWriter(str(eval_dir)) as writer:
        for name, value in payload.items():
            if isinstance(value, float):
                writer.add_scalar(name, value, step)


def _write_json_atomic(path: Path, payload: dict) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    with os.fdopen(handle, "w") as stream:
        json.dump(payload, stream, indent=2)
        stream.write("\n")
    os.replace(temporary, path)
