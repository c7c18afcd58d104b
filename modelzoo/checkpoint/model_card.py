"""The ``README.md`` of an exported folder: what the model is, where it came from, how well it did, how to use it.

Every fact comes from the checkpoint's own record (the resolved params travel inside each training
checkpoint, the eval JSON sits in its model_dir), so the card describes the run that made these
weights rather than whatever params file is at hand when exporting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import yaml

from modelzoo.checkpoint.files import load_mdl
from modelzoo.checkpoint.model_dir import eval_figures_file
from modelzoo.common.iteration import zip_strict
from modelzoo.heads import head_spec


@dataclass(frozen=True)
class CardFacts:
    """What the card says, gathered before any file is written."""

    source: Path
    head: str
    fmt: str
    command: str
    labels: List[str]
    exported_names: List[str]
    step: Optional[int] = None
    params: Optional[dict] = None
    eval_file: Optional[Path] = None
    eval_figures: Optional[dict] = None


def is_training_checkpoint(source: Path) -> bool:
    """A run.py checkpoint (it records its params) rather than converted weights."""
    return source.is_file() and source.suffix == ".mdl" and "params" in load_mdl(source)


def gather_facts(source: Path, head: str, fmt: str, command: str, labels: List[str], exported_names: List[str]) -> CardFacts:
    """The facts of ``source``: a training checkpoint has its step and params; its model_dir has the eval JSON."""
    step = params = eval_file = eval_figures = None
    if Path(source).is_file():
        contents = load_mdl(Path(source))
        step, params = contents.get("step"), contents.get("params")
        candidate = eval_figures_file(Path(source).parent, step)
        if step is not None and candidate.is_file():
            eval_file, eval_figures = candidate, json.loads(candidate.read_text(encoding="utf-8"))
    return CardFacts(Path(source), head, fmt, command, labels, exported_names, step, params, eval_file, eval_figures)


def render_card(facts: CardFacts) -> str:
    """The model card as Markdown (a YAML front matter for the Hugging Face hub, then the sections)."""
    task = head_spec(facts.head).pipeline_task
    front = {"library_name": "transformers" if facts.fmt == "hf" else "onnx", "pipeline_tag": task, "tags": ["bert", task]}
    params = facts.params or {}
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", ""]
    step = f", step {facts.step}" if facts.step is not None else ""
    lines += [f"# BERT {task.replace('-', ' ')}", "", f"Exported from `{facts.source}`{step} by:", "",
              "```bash", facts.command, "```", ""]
    lines += ["## Use", "", *_usage(facts), "", *_context_note(params)]
    run = params.get("runconfig", {})
    lines += ["## Base weights", "", f"`{run['checkpoint_path']}`" if run.get("checkpoint_path") else
              "not recorded (the checkpoint holds no params, or training started from fresh weights)", ""]
    lines += ["## Data", ""]
    for section in ("train_input", "eval_input"):
        if section in params:
            lines.append(f"- {section}: `{params[section].get('data_dir')}` (vocab `{params[section].get('vocab_file')}`)")
    lines += ["" if params else "not recorded", "## Labels", "", "| id | project label | config.json id2label |",
              "|---|---|---|"]
    pairs = enumerate(zip_strict(facts.labels, facts.exported_names))
    lines += [f"| {index} | `{label}` | `{name}` |" for index, (label, name) in pairs]
    if head_spec(facts.head).special_labels & set(facts.labels):
        lines += ["", "The special labels of the CSV format are real outputs of the classifier; they are named `O` "
                  "so that a word whose first piece predicts one reads as outside, as in the project's predict. "
                  "`label2id.json` keeps the project's names."]
    lines += ["", "## Evaluation", "", *_eval_table(facts), "", "## Training params", ""]
    lines += ["```yaml", yaml.safe_dump(params, sort_keys=False).strip(), "```"] if params else ["not recorded"]
    return "\n".join(lines) + "\n"


def _usage(facts: CardFacts) -> List[str]:
    if facts.fmt == "hf":
        spec = head_spec(facts.head)
        arguments = f", {spec.pipeline_arguments}" if spec.pipeline_arguments else ""
        return ["```python", "from transformers import pipeline", "",
                f'model = pipeline("{spec.pipeline_task}", model="THIS_FOLDER"{arguments})',
                'print(model("Angela Merkel met Emmanuel Macron in Paris."))', "```"]
    return ["```bash", "python run.py CPU --mode predict --engine onnxruntime --params PARAMS "
            "--checkpoint_path THIS_FOLDER/model.onnx --input sentences.txt", "```", "",
            "Inputs `input_ids`, `attention_mask`, `token_type_ids` (int64, `[batch, sequence]`), output `logits`."]


def _context_note(params: dict) -> List[str]:
    """What a model trained with document context (train_input.context_tokens) gets where it is served."""
    context = (params.get("train_input") or {}).get("context_tokens") or 0
    if not context:
        return []
    return [f"Trained with document context: each sentence read with up to {context} word pieces of its "
            "document's neighbouring sentences on each side (FLERT). A `transformers` pipeline tags each text "
            "alone, without that context, so it may tag less well than the evaluation below; the project's `run.py --mode "
            "predict --input_format documents` gives each sentence its neighbours as in training, and tags long "
            "lines in windows that overlap by the context size (docs/CONTEXT.md).", ""]


def _eval_table(facts: CardFacts) -> List[str]:
    figures = facts.eval_figures
    if figures is None:
        return ["No eval JSON for this step in the checkpoint's model_dir."]
    lines = [f"From `{facts.eval_file}`:", ""]
    scores = figures.get("scores")
    if scores:
        lines += ["| entity type | precision | recall | f1 | support |", "|---|---|---|---|---|"]
        rows = [*scores["per_type"].items(), ("overall (micro)", scores["overall"])]
        lines += [f"| {name} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | {s['support']} |" for name, s in rows]
        lines.append("")
    plain = {key: value for key, value in figures.items() if isinstance(value, (int, float)) and key != "step"}
    lines += ["| figure | value |", "|---|---|", *(f"| {key} | {value:.4f} |" if isinstance(value, float)
                                                   else f"| {key} | {value} |" for key, value in plain.items())]
    return lines
