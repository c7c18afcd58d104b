"""Optimizers (weight-decay groups) and the piecewise learning-rate schedule."""

import io
import math

import pytest
import torch
from torch import nn

from modelzoo.common.errors import ParamsError
from modelzoo.optim.lr_schedule import PiecewiseLR, learning_rate_at, parse_learning_rate
from modelzoo.optim.optimizer import build_lr_scheduler, build_optimizer, parameter_groups
from modelzoo.params.params import OptimizerParams

WARMUP_THEN_DECAY = [
    {"scheduler": "Linear", "initial_learning_rate": 0.0, "end_learning_rate": 5e-5, "total_iters": 100},
    {"scheduler": "Linear", "initial_learning_rate": 5e-5, "end_learning_rate": 0.0, "total_iters": 900},
]


class TinyEncoder(nn.Module):
    """Names chosen to defeat string matching: a LayerNorm called ``norm1`` (Cerebras' name), a
    plain weight called ``layer_norm_scale``, a tied embedding and a frozen parameter."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 4)
        self.norm1 = nn.LayerNorm(4)
        self.dense = nn.Linear(4, 4)
        self.layer_norm_scale = nn.Parameter(torch.ones(4))
        self.decoder = nn.Linear(4, 10, bias=False)
        self.decoder.weight = self.embedding.weight
        self.frozen = nn.Parameter(torch.zeros(2), requires_grad=False)


def test_biases_and_layernorm_parameters_get_no_weight_decay():
    model = TinyEncoder()
    decay, no_decay = parameter_groups(model, weight_decay=0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    ids = lambda group: {id(p) for p in group["params"]}  # noqa: E731
    assert ids(decay) == {id(model.embedding.weight), id(model.dense.weight), id(model.layer_norm_scale)}
    assert ids(no_decay) == {id(model.norm1.weight), id(model.norm1.bias), id(model.dense.bias)}
    assert len(decay["params"]) == 3, "the tied decoder weight is listed once"


@pytest.mark.parametrize(
    ("kind", "expected_class"), [("AdamW", torch.optim.AdamW), ("adam", torch.optim.Adam), ("SGD", torch.optim.SGD)]
)
def test_build_optimizer_types_and_settings(kind, expected_class):
    params = OptimizerParams(optimizer_type=kind, learning_rate=3e-4, betas=[0.8, 0.9], eps=1e-7, momentum=0.5)
    optimizer = build_optimizer(TinyEncoder(), params)
    assert type(optimizer) is expected_class
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]
    group = optimizer.param_groups[0]
    assert group["lr"] == 3e-4
    if expected_class is torch.optim.SGD:
        assert group["momentum"] == 0.5
    else:
        assert group["betas"] == (0.8, 0.9) and group["eps"] == 1e-7


def test_unknown_optimizer_type_names_the_nearest():
    with pytest.raises(ParamsError, match="unknown optimizer 'adamv' \\(did you mean 'adam'"):
        OptimizerParams(optimizer_type="adamv")


def lr_sequence(scheduler: PiecewiseLR, steps: int) -> list[float]:
    """The rate used by each of the next ``steps`` updates, stepping optimizer then scheduler."""
    rates = []
    for _ in range(steps):
        rates.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return rates


def make_scheduler(learning_rate) -> PiecewiseLR:
    model = nn.Linear(2, 2)
    params = OptimizerParams(learning_rate=learning_rate)
    return build_lr_scheduler(build_optimizer(model, params), params)


def test_warmup_then_decay_values_at_the_boundaries():
    rates = lr_sequence(make_scheduler(WARMUP_THEN_DECAY), 1002)
    assert rates[0] == 0.0
    assert rates[1] == pytest.approx(5e-7)
    assert rates[99] == pytest.approx(4.95e-5)
    assert rates[100] == pytest.approx(5e-5)  # the decay starts exactly at its initial rate
    assert rates[550] == pytest.approx(2.5e-5)
    assert rates[999] == pytest.approx(5e-5 / 900)
    assert rates[1000] == 0.0 and rates[1001] == 0.0  # held at the last end rate


def test_cosine_and_constant_phases():
    phases = parse_learning_rate([
        {"scheduler": "CosineDecay", "initial_learning_rate": 1.0, "end_learning_rate": 0.2, "decay_steps": 10},
        {"scheduler": "constant", "learning_rate": 0.1},
    ])
    assert learning_rate_at(phases, 0) == 1.0
    assert learning_rate_at(phases, 5) == pytest.approx(0.6)
    assert learning_rate_at(phases, 9) == pytest.approx(0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * 0.9)))
    assert learning_rate_at(phases, 10) == 0.1 and learning_rate_at(phases, 10_000) == 0.1


def test_a_number_is_a_constant_rate():
    assert lr_sequence(make_scheduler(2e-5), 3) == [2e-5, 2e-5, 2e-5]


def test_cerebras_steps_alias_means_total_iters():
    with_steps = [{**phase, "steps": phase["total_iters"]} for phase in WARMUP_THEN_DECAY]
    for phase in with_steps:
        del phase["total_iters"]
    assert parse_learning_rate(with_steps) == parse_learning_rate(WARMUP_THEN_DECAY)


def test_resume_from_state_dicts_continues_the_same_sequence():
    uninterrupted = lr_sequence(make_scheduler(WARMUP_THEN_DECAY), 300)

    first = make_scheduler(WARMUP_THEN_DECAY)
    head = lr_sequence(first, 120)
    buffer = io.BytesIO()
    torch.save({"optimizer": first.optimizer.state_dict(), "scheduler": first.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    resumed = make_scheduler(WARMUP_THEN_DECAY)
    resumed.optimizer.load_state_dict(saved["optimizer"])
    resumed.load_state_dict(saved["scheduler"])
    assert head + lr_sequence(resumed, 180) == uninterrupted

    # The scheduler state alone also sets the optimizer's rate for the restored step.
    scheduler_only = make_scheduler(WARMUP_THEN_DECAY)
    scheduler_only.load_state_dict(saved["scheduler"])
    assert lr_sequence(scheduler_only, 180) == uninterrupted[120:]


@pytest.mark.parametrize(
    ("learning_rate", "message"),
    [
        ([{"scheduler": "Linaer"}], r"learning_rate\[0\]\.scheduler: unknown scheduler 'Linaer' \(did you mean 'Linear'"),
        ([{"initial_learning_rate": 0.1}], r"learning_rate\[0\]: missing key 'scheduler'"),
        (
            [{"scheduler": "Linear", "initial_learning_rate": 0.1, "total_iters": 5}],
            r"learning_rate\[0\]: the Linear scheduler needs 'end_learning_rate'",
        ),
        (
            [{"scheduler": "Linear", "initial_learning_rate": 0.1, "end_learning_rte": 0.0, "total_iters": 5}],
            r"learning_rate\[0\]: unknown key 'end_learning_rte' \(did you mean 'end_learning_rate'",
        ),
        (
            [{"scheduler": "Constant", "learning_rate": 0.1}, {"scheduler": "Constant", "learning_rate": 0.2}],
            r"learning_rate\[0\]: every schedule but the last needs 'total_iters'",
        ),
        (
            [{"scheduler": "Constant", "learning_rate": 0.1, "steps": 3, "total_iters": 3}],
            r"total_iters and steps are the same key",
        ),
        ([{"scheduler": "Cosine", "initial_learning_rate": 0.1, "end_learning_rate": 0.0, "total_iters": 0}],
         r"total_iters: expected a whole number of steps >= 1"),
        ([], r"expected a number or a non-empty list"),
    ],
)
def test_schedule_errors_name_the_entry_and_the_fix(learning_rate, message):
    with pytest.raises(ParamsError, match=message):
        OptimizerParams(learning_rate=learning_rate)
