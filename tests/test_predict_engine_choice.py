"""``--engine``: auto keeps the faster of the torch and the fused oneDNN model, and says so; where only one
engine applies it takes that one without measuring."""

from __future__ import annotations

import itertools

import pytest
import torch

from modelzoo.bert import BertConfig, BertForTokenClassification
from modelzoo.common.device import DeviceSetup
from modelzoo.common.errors import ParamsError
from modelzoo.predict import engine_choice
from modelzoo.predict.engine_choice import (
    SAMPLE_LENGTH,
    SAMPLE_ROWS,
    TIMED_ROUNDS,
    checkpoint_engine,
    choose_torch_engine,
    time_forward,
)
from modelzoo.predict.fused_cpu import FusedBertLayer

CONFIG = dict(vocab_size=120, hidden_size=64, num_hidden_layers=2, num_heads=4, filter_size=256, num_classes=7)
CPU_FLOAT32 = DeviceSetup(torch.device("cpu"), "float32")


def model() -> BertForTokenClassification:
    torch.manual_seed(0)
    return BertForTokenClassification(BertConfig(**CONFIG)).eval()


def is_fused(tagging_model: torch.nn.Module) -> bool:
    return all(isinstance(layer, FusedBertLayer) for layer in tagging_model.bert.encoder.layer)


@pytest.mark.parametrize("faster", ["torch", "onednn"])
def test_auto_keeps_the_faster_model_and_logs_both_times(monkeypatch, faster):
    slower = "onednn" if faster == "torch" else "torch"
    monkeypatch.setattr(engine_choice, "time_forward", lambda models, vocab_size: {faster: 0.010, slower: 0.025})
    chosen, line = choose_torch_engine(model(), "auto", CPU_FLOAT32, quantized=False)
    assert is_fused(chosen) == (faster == "onednn")
    assert line.startswith(f"engine auto: {faster}, 2.50x {slower}'s speed on this host")
    assert f"{faster} 10.0 ms, {slower} 25.0 ms" in line


def test_the_measurement_times_each_model_alternately_on_the_same_new_shapes():
    """A clock that ticks once per forward, by 1 for one model and 3 for the other: the medians show it,
    and every round gives both models the same inputs, one row more than the round before."""
    ticks, calls = itertools.count(), []

    class Recorder(torch.nn.Module):
        def __init__(self, name: str, cost: int) -> None:
            super().__init__()
            self.name, self.cost = name, cost

        def forward(self, skip_padding: bool, **inputs: torch.Tensor) -> None:
            calls.append((self.name, inputs["input_ids"].clone(), skip_padding))
            for _ in range(self.cost - 1):
                next(ticks)

    seconds = time_forward({"cheap": Recorder("cheap", 1), "dear": Recorder("dear", 3)}, 120, clock=lambda: next(ticks))
    assert seconds == {"cheap": 1, "dear": 3}
    assert [name for name, _, _ in calls] == ["cheap", "dear"] * (1 + TIMED_ROUNDS)
    for round_, ((_, cheap_ids, skip), (_, dear_ids, _)) in enumerate(zip(calls[::2], calls[1::2])):
        assert skip and torch.equal(cheap_ids, dear_ids) and cheap_ids.shape == (SAMPLE_ROWS + round_, SAMPLE_LENGTH)


def test_auto_really_measures_both_models_and_tags_as_the_eager_model():
    eager = model()
    chosen, line = choose_torch_engine(model(), "auto", CPU_FLOAT32, quantized=False)
    assert line.startswith("engine auto: ") and " ms, " in line
    ids = torch.randint(1, CONFIG["vocab_size"], (3, 11), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.allclose(chosen(ids).logits, eager(ids).logits, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("device", "precision", "quantized", "reason"), [
    ("cpu", "float32", True, "--quantize int8 has its own fused kernels"),
    ("cpu", "bfloat16", False, "float32; runconfig.precision is bfloat16"),
    ("meta", "float32", False, "for CPU"),
])
def test_where_the_fused_layers_do_not_apply_auto_takes_torch_without_measuring(monkeypatch, device, precision,
                                                                                  quantized, reason):
    monkeypatch.setattr(engine_choice, "time_forward", lambda *args: pytest.fail("measured"))
    eager = model()
    chosen, line = choose_torch_engine(eager, "auto", DeviceSetup(torch.device(device), precision), quantized)
    assert chosen is eager and line.startswith("engine auto: torch (") and reason in line
    with pytest.raises(ParamsError, match=f"--engine onednn: .*{reason[:20]}.*use --engine torch"):
        choose_torch_engine(model(), "onednn", DeviceSetup(torch.device(device), precision), quantized)


def test_the_named_engines_are_taken_as_named(monkeypatch):
    monkeypatch.setattr(engine_choice, "time_forward", lambda *args: pytest.fail("measured"))
    eager = model()
    assert choose_torch_engine(eager, "torch", CPU_FLOAT32, False)[0] is eager and not is_fused(eager)
    assert is_fused(choose_torch_engine(model(), "onednn", CPU_FLOAT32, False)[0])


def test_auto_reads_an_onnx_export_with_onnxruntime_and_a_checkpoint_with_torch(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "model.onnx").write_bytes(b"")
    assert checkpoint_engine("auto", export) == checkpoint_engine("auto", export / "model.onnx") == "onnxruntime"
    assert checkpoint_engine("auto", tmp_path / "checkpoint_40.mdl") == "auto"
    assert checkpoint_engine("auto", tmp_path) == "auto"  # a folder without model.onnx
    assert checkpoint_engine("torch", export) == "torch"  # a named engine stays: it reports what it cannot read
