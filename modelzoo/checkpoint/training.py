"""Training checkpoints: ``model_dir/checkpoint_{step}.mdl``, written atomically, newest found on restart.

A checkpoint holds everything a bit-identical restart needs: model, optimizer, LR scheduler, loss
scaler, step, data position and every RNG state, plus the resolved params. It is written to a
temporary file in the same folder and renamed over the final name only once complete, so a crash
or a full disk mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from modelzoo.checkpoint.files import load_mdl
from modelzoo.common.atomic import atomic_file, is_temporary
from modelzoo.common.errors import CheckpointError

_CHECKPOINT_NAME = re.compile(r"^checkpoint_(\d+)\.mdl$")


def checkpoint_file(model_dir: Path, step: int) -> Path:
    return Path(model_dir) / f"checkpoint_{step}.mdl"


def checkpoint_step(path: Path) -> int:
    """The step in a ``checkpoint_{step}.mdl`` name; 0 for any other file (e.g. a converted model.mdl)."""
    match = _CHECKPOINT_NAME.match(Path(path).name)
    return int(match.group(1)) if match else 0


def list_checkpoints(model_dir: Path) -> List[Tuple[int, Path]]:
    """``(step, path)`` of every checkpoint in ``model_dir``, oldest first."""
    found = []
    if Path(model_dir).is_dir():
        for path in Path(model_dir).iterdir():
            match = _CHECKPOINT_NAME.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(model_dir: Path) -> Optional[Path]:
    checkpoints = list_checkpoints(model_dir)
    return checkpoints[-1][1] if checkpoints else None


def checkpoint_to_evaluate(run, what: str) -> Path:
    """``runconfig.checkpoint_path`` if given, else the newest checkpoint of ``runconfig.model_dir``.

    The one rule for every reader of a trained model (eval on each back-end, predict); ``what`` names
    the reader in the error when there is nothing to read.
    """
    if run.checkpoint_path:
        return Path(run.checkpoint_path)
    checkpoint = latest_checkpoint(Path(run.model_dir))
    if checkpoint is None:
        raise CheckpointError(f"{what}: no checkpoint in {run.model_dir} and no --checkpoint_path given")
    return checkpoint


def save_checkpoint(state: Dict[str, Any], path: Path, keep_checkpoint_max: Optional[int] = None) -> None:
    """Write ``state`` to ``path`` atomically, then delete the oldest checkpoints beyond ``keep_checkpoint_max``."""
    try:
        with atomic_file(path, "wb") as stream:
            torch.save(state, stream)
    except OSError as error:
        # A full disk or a lost mount: one error line, not a traceback; nothing older was touched.
        raise CheckpointError(f"{path}: could not write the checkpoint ({error}); earlier checkpoints are intact") from error
    rotate_checkpoints(path.parent, keep_checkpoint_max)


def rotate_checkpoints(model_dir: Path, keep_checkpoint_max: Optional[int]) -> None:
    """Delete the oldest checkpoints beyond ``keep_checkpoint_max`` (None: keep all)."""
    if keep_checkpoint_max is not None:
        for _, old in list_checkpoints(model_dir)[:-keep_checkpoint_max]:
            old.unlink()


def remove_partial_checkpoints(model_dir: Path) -> List[Path]:
    """Delete what a write killed midway left in model_dir (``.checkpoint_N.mdl.tmp-*``, any ``.mdl``, and the
    best checkpoint's record, ``.best_checkpoint.json.tmp-*``); returns them.

    Only the writer of model_dir may call this (it holds the lock), since a live writer's file
    looks the same; the files at model_dir's top level are the writer's alone (eval writes under
    eval/). Such files are never loaded: only complete names are.
    """
    removed = []
    if Path(model_dir).is_dir():
        for path in Path(model_dir).iterdir():
            if is_temporary(path) and (".mdl.tmp-" in path.name or ".json.tmp-" in path.name) and path.is_file():
                path.unlink()
                removed.append(path)
    return removed


def seed_rngs(seed: int) -> None:
    """Seed every RNG a checkpoint records (Python, numpy, torch), so that two runs of one config, or a
    run and its resumed copy, write the same checkpoint bytes and not only the same tensors."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_states() -> Dict[str, Any]:
    """Every RNG state as tensors and plain values, so a checkpoint loads with ``weights_only=True``.

    numpy's key array is stored as a tensor: a pickled ndarray would make every run.py checkpoint
    unreadable to the weights-only loader that ``--mode eval`` and ``--checkpoint_path`` use.
    """
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    numpy_state = (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached_gaussian)
    states = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: Dict[str, Any]) -> None:
    random.setstate(states["python"])
    kind, keys, position, has_gauss, cached_gaussian = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def saved_params(path: Path) -> Optional[Dict[str, Any]]:
    """The resolved params a training checkpoint was saved with (None if it has none), tensors left on disk."""
    return load_mdl(Path(path), mmap=True).get("params")


def load_training_state(path: Path) -> Dict[str, Any]:
    """A full training checkpoint (with optimizer, RNG...), read weights-only like any other .mdl file."""
    return load_mdl(Path(path))


def load_model_weights(model: nn.Module, path: Path, strict: bool = True) -> List[str]:
    """Load the ``model`` entry of a .mdl file into ``model``; returns report lines on missing/unexpected keys.

    Strict (the default) refuses any missing or unexpected key by name; a shape mismatch is always
    an error naming the tensor and both shapes (another model size was given).
    """
    # Mapped, not read: a training checkpoint is mostly optimizer state (Adam's two moments), which
    # this never touches, so only the weights' pages are read (copied into ``model`` below).
    weights = load_mdl(Path(path), mmap=True).get("model")
    if weights is None:
        raise CheckpointError(f"{path}: no 'model' entry")
    expected = model.state_dict()
    wrong = [
        f"{key} {tuple(tensor.shape)} in checkpoint vs {tuple(expected[key].shape)} in model"
        for key, tensor in weights.items()
        if key in expected and tensor.shape != expected[key].shape
    ]
    if wrong:
        raise CheckpointError(f"{path}: checkpoint is for another model shape: {'; '.join(wrong[:3])}")
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if strict and (missing or unexpected):
        raise CheckpointError(
            f"{path}: missing keys [{', '.join(missing)}], unexpected keys [{', '.join(unexpected)}] "
            "(--disable_strict_checkpoint_loading to load anyway)"
        )
    model.load_state_dict(weights, strict=False)
    report = [f"loaded {len(weights) - len(unexpected)} tensors from {path}"]
    report += [f"missing key (kept its fresh value): {key}" for key in missing]
    report += [f"unexpected key (ignored): {key}" for key in unexpected]
    return report
