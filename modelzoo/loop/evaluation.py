"""Evaluation: run the model over ``eval_input`` on every rank, score on rank 0, report three ways.

The report is a printed table, JSON in ``model_dir/eval/`` and TensorBoard scalars in
``model_dir/eval``. Scoring maps every prediction back to a word of the raw file (see
``modelzoo.metrics``), so the figures are over the raw file's words, not over word pieces.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Dict, Iterable, Iterator, Optional, Tuple

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from modelzoo.checkpoint.model_dir import eval_figures_file
from modelzoo.common.atomic import write_json_atomic
from modelzoo.common.device import DeviceSetup
from modelzoo.common.distributed import DistContext
from modelzoo.heads.task import Task, count_loss_positions

_CPU = torch.device("cpu")


@torch.inference_mode()
def evaluate(
    model: nn.Module, task: Task, setup: DeviceSetup, context: DistContext, model_dir: Path, step: int, eval_steps: Optional[int] = None
) -> Optional[dict]:
    """Scores of ``model`` on eval_input (on rank 0; None on other ranks).

    The model skips the padding where the device gains from it (``DeviceSetup.skip_padding``):
    evaluation runs eagerly (the trainer's unwrapped, uncompiled model), and unpacked eval rows are
    padded to max_sequence_length, so most of a padded batch would otherwise be work on padding.
    """
    loader = task.dataloader("eval_input", context)
    model.eval()

    def outputs() -> Iterator[Tuple[Dict[str, torch.Tensor], torch.Tensor, torch.Tensor]]:
        for batch in loader:
            with setup.autocast():
                output = model(**setup.to_device(batch, task.model_input_keys), skip_padding=setup.skip_padding)
            yield batch, output.logits, output.loss

    return score_outputs(outputs(), task, context, model_dir, step, eval_steps, setup.device)


def score_outputs(
    outputs: Iterable[Tuple[Dict[str, torch.Tensor], torch.Tensor, torch.Tensor]],
    task: Task,
    context: DistContext,
    model_dir: Path,
    step: int,
    eval_steps: Optional[int] = None,
    device: torch.device = _CPU,
) -> Optional[dict]:
    """Score ``(batch, logits, mean loss)`` of each eval_input batch, however an executor ran them.

    Shared by the torch and IPU executors so that both report the same figures the same way: the
    loss is averaged over loss positions across batches, predictions go through the task's
    collector. Only the first ``eval_steps`` batches are drawn from ``outputs`` (none beyond, so a
    lazy producer runs no extra forward pass).
    """
    collector = task.collector(complete=eval_steps is None)
    loss_sum = torch.zeros((), dtype=torch.float64)
    positions = torch.zeros((), dtype=torch.float64)
    batches = tqdm(islice(outputs, eval_steps), desc="eval", unit="batch", disable=not context.is_main, leave=False)
    for batch, logits, loss in batches:
        count = count_loss_positions(batch).double()
        loss_sum += loss.double().cpu() * count
        positions += count
        collector.add(batch, logits)
    totals = context.all_reduce_sum(torch.stack([loss_sum, positions]).to(device)).cpu()
    results = collector.finish(context)
    if results is None:
        return None
    results["loss"] = float(totals[0] / totals[1].clamp(min=1.0))
    results["step"] = step
    report(results, Path(model_dir), step)
    return results


def report(results: dict, model_dir: Path, step: int) -> None:
    """Print the table, write ``model_dir/eval/metrics_step_{step}.json`` and the TensorBoard scalars."""
    print(f"evaluation at step {step}: loss {results['loss']:.4f}\n{results['table']}", flush=True)
    eval_dir = model_dir / "eval"
    eval_dir.mkdir(parents=True, exist_ok=True)
    payload = {key: value for key, value in results.items() if key not in ("scores", "table")}
    if "scores" in results:
        payload["scores"] = results["scores"].to_dict()
    write_json_atomic(eval_figures_file(model_dir, step), payload)
    with SummaryWriter(str(eval_dir)) as writer:
        for name, value in payload.items():
            if isinstance(value, float):
                writer.add_scalar(name, value, step)

