"""A classifier checkpoint as a folder that ``transformers`` loads with no other argument, and the way back.

Labels. ``config.json``'s ``id2label`` carries the project's label names (``B-PER``, ``I-ORG``...).
The CSV format's special labels (``[PAD]``, ``X``, ``[CLS]``, ``[SEP]``: the head's
``special_labels``) are real outputs of the token classifier, and our predict reads one predicted
at a word's first piece as ``O``; so ``id2label`` names them ``O``. Every aggregation strategy of the ``token-classification`` pipeline
then treats them as outside, as predict does, and the classifier rows stay bit-identical (dropping
or folding them would change which label wins). ``label2id`` maps each distinct name to its id, and
the project's own vocab travels beside the weights as ``label2id.json``, which the reverse
conversion reads back.

Tokenizer. Built from the model's ``vocab.txt`` by the class that cut the training words
(:func:`~modelzoo.data.wordpiece.bert_tokenizer`), lower-casing as the vocab says, so the
pipeline cuts words into the pieces the model was trained on. ``model_max_length`` is the longest
input the position table holds: the pipeline truncates beyond it, where our predict would cut windows.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import torch

from modelzoo.bert.config import BertConfig
from modelzoo.checkpoint.files import config_to_hf, write_checkpoint
from modelzoo.checkpoint.model_card import CardFacts, gather_facts, render_card
from modelzoo.checkpoint.model_dir import VOCAB_FILE
from modelzoo.common.errors import CheckpointError, DataFileError
from modelzoo.common.iteration import zip_strict
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE
from modelzoo.data.labels import OUTSIDE_LABEL
from modelzoo.data.vocab import CLS_TOKEN, PAD_TOKEN, SEP_TOKEN, UNK_TOKEN, check_label_count, labels_by_id
from modelzoo.data.wordpiece import bert_tokenizer
from modelzoo.heads import head_spec

LABEL_VOCAB_FLAG = "--label-vocab"
VOCAB_FLAG = "--vocab-file"
MASK_TOKEN = "[MASK]"
CARD_FILE = "README.md"


@dataclass(frozen=True)
class ModelFiles:
    """The label vocab and WordPiece vocab that belong to a checkpoint (None: not found)."""

    label_vocab: Optional[Path]
    vocab: Optional[Path]


def find_model_files(
    source: Path, label_vocab: Optional[Path] = None, vocab: Optional[Path] = None
) -> ModelFiles:
    """The flags' files, else those in the checkpoint's folder (a checkpoint_N.mdl's folder is its model_dir)."""
    folder = Path(source) if Path(source).is_dir() else Path(source).parent
    found = []
    for given, name in ((label_vocab, LABEL_VOCAB_FILE), (vocab, VOCAB_FILE)):
        if given is not None and not Path(given).is_file():
            raise DataFileError(given, None, "not found")
        found.append(Path(given) if given is not None else (folder / name if (folder / name).is_file() else None))
    return ModelFiles(*found)


def read_labels(path: Path, config: BertConfig) -> List[str]:
    """Label names by id from the head's ``label2id.json``, checked against the classifier's rows."""
    label2id = head_spec(config.head).read_label_vocab(path)
    check_label_count(path, label2id, config.num_classes)
    return labels_by_id(label2id)


def require_labels(files: ModelFiles, source: Path) -> Path:
    if files.label_vocab is None:
        raise CheckpointError(
            f"{source}: no {LABEL_VOCAB_FILE} beside the checkpoint (its model_dir); give it with {LABEL_VOCAB_FLAG} FILE"
        )
    return files.label_vocab


def require_vocab(files: ModelFiles, source: Path) -> Path:
    if files.vocab is None:
        raise CheckpointError(f"{source}: no {VOCAB_FILE} beside the checkpoint (its model_dir); give it with {VOCAB_FLAG} FILE")
    return files.vocab


def hf_label_names(id_to_label: List[str], head: str) -> dict:
    """``id2label`` / ``label2id`` for ``config.json`` (the head's special labels named ``O``, see the module doc)."""
    special = head_spec(head).special_labels
    names = [OUTSIDE_LABEL if label in special else label for label in id_to_label]
    # Each name's own label first, so "O" maps to the real O rather than to [PAD].
    label2id = {name: index for index, (name, label) in enumerate(zip_strict(names, id_to_label)) if name == label}
    for index, name in enumerate(names):
        label2id.setdefault(name, index)
    return {"id2label": {str(index): name for index, name in enumerate(names)}, "label2id": label2id}


def write_label_vocab(folder: Path, id_to_label: List[str]) -> None:
    """The project's label vocab as ``label2id.json`` (what run.py and the reverse conversion read)."""
    label2id = {label: index for index, label in enumerate(id_to_label)}
    (folder / LABEL_VOCAB_FILE).write_text(json.dumps(label2id, indent=2) + "\n", encoding="utf-8")


def write_tokenizer_files(folder: Path, vocab_file: Path, model_max_length: int) -> None:
    """``vocab.txt``, ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json``."""
    tokenizer = bert_tokenizer(vocab_file)
    do_lower_case = tokenizer.do_lower_case
    tokenizer.model_max_length = model_max_length
    tokenizer.save_pretrained(folder)
    shutil.copyfile(vocab_file, folder / VOCAB_FILE)
    special = {"unk_token": UNK_TOKEN, "sep_token": SEP_TOKEN, "pad_token": PAD_TOKEN, "cls_token": CLS_TOKEN,
               "mask_token": MASK_TOKEN}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")
    config_file = folder / "tokenizer_config.json"
    tokenizer_config = json.loads(config_file.read_text(encoding="utf-8"))
    tokenizer_config.update(do_lower_case=do_lower_case, model_max_length=model_max_length)
    config_file.write_text(json.dumps(tokenizer_config, indent=2) + "\n", encoding="utf-8")





def export_hf(
    state_dict: Dict[str, torch.Tensor], config: BertConfig, source: Path, output_dir: Path, files: ModelFiles, command: str
) -> List[str]:
    """Write the Hugging Face folder of a classifier (``state_dict`` in ``hf`` naming); returns the files written."""
    id_to_label = read_labels(require_labels(files, source), config)
    vocab = require_vocab(files, source)
    names = hf_label_names(id_to_label, config.head)
    facts = gather_facts(source, config.head, "hf", command, id_to_label, list(names["id2label"].values()))

    def add_files(folder: Path) -> None:
        write_hf_config(folder, config, names)
        write_shipped_files(folder, id_to_label, vocab, config, facts)

    write_checkpoint(state_dict, config, "hf", output_dir, add_files=add_files)
    return sorted(path.name for path in output_dir.iterdir())


def write_hf_config(folder: Path, config: BertConfig, names: dict) -> None:
    """The Hugging Face ``config.json`` of the classifier with its label names: what ``transformers`` and
    optimum read to load the folder (an ONNX folder too: optimum infers the task from it)."""
    hf_config = {**config_to_hf(config, with_classifier=True), **names}
    (folder / "config.json").write_text(json.dumps(hf_config, indent=2) + "\n", encoding="utf-8")


def write_shipped_files(folder: Path, id_to_label: List[str], vocab: Path, config: BertConfig, facts: CardFacts) -> None:
    """What travels with exported weights: the label vocab, the tokenizer files and the model card."""
    write_label_vocab(folder, id_to_label)
    write_tokenizer_files(folder, vocab, config.max_position_embeddings)
    (folder / CARD_FILE).write_text(render_card(facts), encoding="utf-8")
