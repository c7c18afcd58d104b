"""Data parallelism on CPU (gloo, ``torchrun``): two ranks of batch B end where one process of batch 2B does."""

from __future__ import annotations

import sys

from modelzoo.checkpoint.training import list_checkpoints
from modelzoo.cli.main import main
from tests.run_fixtures import model_tensors, run_py, tiny_params, write_params

TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")


def test_two_gloo_ranks_match_one_process_with_the_doubled_batch(ner_csv, tmp_path):
    """Dropout is off: its masks differ between ranks and one process by construction, nothing else may."""
    no_dropout = {"dropout_rate": 0.0, "attention_dropout_rate": 0.0}
    run = {"max_steps": 6, "log_steps": 1, "save_checkpoints_steps": 3}
    ranks_dir, single_dir = tmp_path / "ranks", tmp_path / "single"
    per_rank = tiny_params(ner_csv, ranks_dir, model=no_dropout, train_input={"batch_size": 4}, runconfig=run)
    doubled = tiny_params(ner_csv, single_dir, model=no_dropout, train_input={"batch_size": 8}, runconfig=run)

    result = run_py("CPU", "--mode", "train", "--params", str(write_params(tmp_path / "ranks.yaml", per_rank)), launcher=TORCHRUN)
    assert result.returncode == 0, result.stderr[-3000:]
    assert main(["CPU", "--mode", "train", "--params", str(write_params(tmp_path / "single.yaml", doubled))]) == 0

    # Rank 0 alone logs and writes.
    assert [line.split(":")[0] for line in result.stdout.splitlines() if line.startswith("step ")] == [
        f"step {step}" for step in range(1, 7)
    ]
    assert [step for step, _ in list_checkpoints(ranks_dir)] == [3, 6]
    assert len(list((ranks_dir / "train").glob("events.out.tfevents.*"))) == 1

    ranks, single = model_tensors(ranks_dir / "checkpoint_6.mdl"), model_tensors(single_dir / "checkpoint_6.mdl")
    assert ranks.keys() == single.keys()
    worst = max((ranks[key] - single[key]).abs().max().item() for key in ranks)
    assert worst < 1e-6, worst
    assert any((ranks[key] != model_tensors(ranks_dir / "checkpoint_3.mdl")[key]).any() for key in ranks)
