"""A new head is one registration: this module adds a token classifier trained with a focal loss, and the
existing machinery (run.py train_and_eval, eval, predict, the Hugging Face export) drives it unchanged.

No other module names it; the last test checks that no module outside modelzoo/heads compares a
head's name at all.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import transformers

from modelzoo.bert import BertConfig, BertForTokenClassification
from modelzoo.cli.main import main
from modelzoo.data.labels import IGNORE_LABEL
from modelzoo.heads import head_names, register_head, unregister_head
from modelzoo.heads.token_classification import TOKEN_CLASSIFICATION
from modelzoo.tools.convert_checkpoint import convert
from tests.export_runs import ner_params, write_params
from tests.run_fixtures import REPO_ROOT

FOCUSING = 2.0


class FocalBertForTokenClassification(BertForTokenClassification):
    """The token classifier with the focal loss (Lin et al. 2017): confident positions count less."""

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
        log_probabilities = F.log_softmax(logits.flatten(0, -2).float(), dim=-1)
        labels = labels.flatten().long()
        counted = (loss_mask.flatten() != 0) & (labels != IGNORE_LABEL)
        picked = log_probabilities.gather(1, labels.clamp(min=0)[:, None]).squeeze(1)
        focal = -((1 - picked.exp()) ** FOCUSING) * picked
        return (focal * counted).sum() / counted.sum().clamp(min=1)


FOCAL = dataclasses.replace(
    TOKEN_CLASSIFICATION, name="focal_token_classification", model_class=FocalBertForTokenClassification,
    converter_name="bert-focal-token-classification", description="token classifier trained with a focal loss",
    cerebras_processors=(),
)


@pytest.fixture(autouse=True, scope="module")
def focal_head_registered():
    """Registered for this module's tests only: other modules see the built-in heads alone."""
    register_head(FOCAL)
    yield
    unregister_head(FOCAL.name)


def _run(*args: str) -> int:
    return main(["CPU", *args])


def test_a_registered_head_trains_evaluates_predicts_and_exports(ner_csv, tmp_path, capsys):
    params = ner_params(ner_csv, tmp_path / "run")
    params["model"]["head"] = FOCAL.name
    params_file = write_params(tmp_path / "params.yaml", params)
    assert _run("--mode", "train_and_eval", "--params", str(params_file)) == 0
    trained = capsys.readouterr().out
    assert "evaluation at step 40" in trained and "overall (micro)" in trained

    assert _run("--mode", "eval", "--model_dir", str(tmp_path / "run"), "--checkpoint_path", "best") == 0
    assert "overall (micro)" in capsys.readouterr().out
    source = tmp_path / "in.txt"
    source.write_text("Aspirin reduced the fever in Paris .\n", encoding="utf-8")
    assert _run("--mode", "predict", "--model_dir", str(tmp_path / "run"), "--input", str(source)) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["words"][0] == "Aspirin" and len(record["tags"]) == len(record["words"])

    report = convert(tmp_path / "run" / "checkpoint_40.mdl", "modelzoo", "hf", tmp_path / "hf")
    assert any(line.startswith("wrote hf") for line in report)
    exported = transformers.AutoModelForTokenClassification.from_pretrained(tmp_path / "hf")
    assert type(exported).__name__ == FOCAL.hf_architecture
    pipeline = transformers.pipeline("token-classification", model=str(tmp_path / "hf"), aggregation_strategy="first")
    assert isinstance(pipeline("Aspirin reduced the fever in Paris ."), list)


def test_the_focal_loss_is_the_one_trained():
    model = FocalBertForTokenClassification(_tiny_config()).eval()
    ids = torch.randint(1, 100, (2, 6), generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 5, (2, 6), generator=torch.Generator().manual_seed(1))
    focal = model(input_ids=ids, labels=labels).loss
    cross_entropy = BertForTokenClassification.loss(model, model(input_ids=ids).logits, labels, torch.ones_like(labels))
    assert focal < cross_entropy  # (1 - p)^2 < 1 scales every term down


def _tiny_config() -> BertConfig:
    return BertConfig.from_dict({"vocab_size": 100, "hidden_size": 16, "num_hidden_layers": 1, "num_heads": 2,
                                 "filter_size": 32, "num_classes": 5})


def test_no_module_outside_the_registry_compares_a_head_name():
    """A head's name may appear in modelzoo/ only inside modelzoo/heads (and as BertConfig's default)."""
    names = "|".join(re.escape(name) for name in head_names())
    found = []
    for path in sorted((REPO_ROOT / "modelzoo").rglob("*.py")):
        if Path("modelzoo", "heads") in path.relative_to(REPO_ROOT).parents:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if re.search(rf"['\"]({names})['\"]", line) and "param(" not in line:
                found.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert found == []
