"""The quick start fits the config's learning-rate schedule to any ``--max_steps`` it offers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from modelzoo.optim.lr_schedule import check_schedule_covers, learning_rate_at, parse_learning_rate
from modelzoo.tools.quickstart import squeezed_schedule

phase_lists = st.lists(st.integers(1, 1000), min_size=1, max_size=5).map(
    lambda lengths: [
        {"scheduler": "Linear", "initial_learning_rate": 0.0, "end_learning_rate": 1.0, "total_iters": length}
        for length in lengths
    ]
)


@given(phase_lists, st.integers(1, 5000))
def test_the_squeezed_phases_sum_to_the_steps_each_with_one_step_at_least(phases, max_steps):
    squeezed = squeezed_schedule(phases, max_steps)
    assert sum(phase["total_iters"] for phase in squeezed) == max_steps
    assert all(phase["total_iters"] >= 1 for phase in squeezed)
    check_schedule_covers(parse_learning_rate(squeezed), max_steps, "runconfig.max_steps")  # what run.py checks
    assert squeezed[-1]["end_learning_rate"] == phases[-1]["end_learning_rate"]


def test_one_step_of_warmup_then_decay_runs_at_the_peak_rate():
    phases = [
        {"scheduler": "Linear", "initial_learning_rate": 0.0, "end_learning_rate": 2e-4, "total_iters": 58},
        {"scheduler": "Linear", "initial_learning_rate": 2e-4, "end_learning_rate": 0.0, "total_iters": 522},
    ]
    squeezed = squeezed_schedule(phases, 1)
    assert [phase["total_iters"] for phase in squeezed] == [1]
    assert learning_rate_at(parse_learning_rate(squeezed), 0) == 2e-4
    assert [phase["total_iters"] for phase in squeezed_schedule(phases, 580)] == [58, 522]
