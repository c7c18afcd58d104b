"""What a model_dir holds besides its checkpoints, so that a run folder can be moved, served and exported alone.

A trained model is more than its weights: the label vocab says which output is which label, and the
WordPiece vocab says how text becomes ids. Both usually live in folders (the CSV data, the
pretrained weights) that are deleted once training is done, so training copies them into model_dir
when it starts, and eval, predict and export fall back to those copies when a path of the params
file is gone. A model_dir then holds:

- ``checkpoint_N.mdl``: training checkpoints (weights, optimizer, RNG states, the resolved params);
- ``best_checkpoint.mdl`` and ``best_checkpoint.json``: the best one by the chosen eval metric (see
  :mod:`modelzoo.checkpoint.best`);
- ``label2id.json``: the label vocab; ``vocab.txt``: the WordPiece vocab, with ``tokenizer.json``,
  ``tokenizer_config.json`` and ``special_tokens_map.json`` where the vocab's folder had them;
- ``<mode>/params.yaml``: the resolved params of each run; ``train/`` and ``eval/``: TensorBoard
  logs and ``eval/metrics_step_N.json``.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import List, Optional, Union

from modelzoo.common.atomic import atomic_file
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE
from modelzoo.data.params import InputParams

VOCAB_FILE = "vocab.txt"
# Files of a Hugging Face tokenizer folder that travel with its vocab.txt.
TOKENIZER_EXTRA_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def copy_model_files(
    model_dir: Path, section: InputParams, base_checkpoint: Optional[str] = None
) -> List[Path]:
    """Copy the label vocab and the WordPiece vocab (and its tokenizer files) of ``section`` into model_dir.

    The vocab is ``section.vocab_file``, else the ``vocab.txt`` beside the base weights
    (``base_checkpoint``): classifier CSVs hold ids, so their params need no vocab, but the model
    still needs one to read text. Returns the files written. A source that is gone is skipped (a
    resumed run whose data moved keeps the copies it made when it started); each copy is atomic.
    """
    sources = {LABEL_VOCAB_FILE: section.label_vocab_path()}
    vocab = Path(section.vocab_file) if section.vocab_file else None
    if vocab is None and base_checkpoint is not None:
        vocab = Path(base_checkpoint).parent / VOCAB_FILE
    if vocab is not None:
        sources[VOCAB_FILE] = vocab
        sources.update({name: vocab.parent / name for name in TOKENIZER_EXTRA_FILES})
    written = []
    for name, source in sources.items():
        target = Path(model_dir) / name
        if source.is_file() and source.resolve() != target.resolve():
            with atomic_file(target, "wb") as stream, source.open("rb") as original:
                shutil.copyfileobj(original, stream)
            written.append(target)
    return written


def in_reach(original: Union[str, Path, None], model_dir: Path, name: str) -> Optional[str]:
    """``original`` if that file exists, else the model_dir copy called ``name`` if it exists, else ``original``
    (so that an error still names the path the user gave)."""
    if original is not None and Path(original).is_file():
        return str(original)
    copy = Path(model_dir) / name
    return str(copy) if copy.is_file() else (None if original is None else str(original))


def with_model_dir_files(section: InputParams, model_dir: Path) -> InputParams:
    """``section`` with its vocab and label vocab paths pointing at the model_dir copies where the originals are gone."""
    vocab_file = in_reach(section.vocab_file, model_dir, VOCAB_FILE)
    labels = section.label_vocab_path()
    labels_in_reach = in_reach(labels, model_dir, LABEL_VOCAB_FILE)
    label_vocab = section.label_vocab_file if labels_in_reach == str(labels) else labels_in_reach
    return dataclasses.replace(section, vocab_file=vocab_file, label_vocab_file=label_vocab)


def eval_figures_file(model_dir: Path, step: int) -> Path:
    """Where an evaluation of the checkpoint of ``step`` writes its figures."""
    return Path(model_dir) / "eval" / f"metrics_step_{step}.json"


def saved_params_file(model_dir: Path) -> Optional[Path]:
    """The params a training run saved in ``model_dir`` (train_and_eval's, else train's), if any."""
    for mode in ("train_and_eval", "train"):
        path = Path(model_dir) / mode / "params.yaml"
        if path.is_file():
            return path
    return None
