"""The ``train_input`` / ``eval_input`` YAML sections, declared once (see ``modelzoo.common.schema``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from modelzoo.common.errors import ParamsError
from modelzoo.common.schema import param
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE


@dataclass
class InputParams:
    """Where a split's CSV folder is and how it is batched; built with ``schema.build(InputParams, d, name)``."""

    data_dir: str = param(required=True, doc="split folder written by write_csv_ner.py (holds meta.dat)")
    vocab_file: Optional[str] = param(None, "WordPiece vocab.txt that maps the CSV's pieces to ids (needed)")
    label_vocab_file: Optional[str] = param(None, "label -> id JSON; null means data_dir/label2id.json")
    max_sequence_length: int = param(128, "tokens per example after padding; must hold the folder's longest")
    batch_size: int = param(32, "rows per batch (per rank with several ranks); a packed row holds several sequences")
    shuffle: bool = param(True, "reshuffle the examples every epoch (set false to keep file order)")
    shuffle_seed: int = param(0, "seed of the shuffle; epoch e uses (shuffle_seed, e)")
    num_workers: int = param(0, "data-loader worker processes (0: load in the main process)")
    drop_last: bool = param(False, "drop a last batch smaller than batch_size (and balance ranks exactly)")
    include_special_labels_in_loss: bool = param(
        False, "loss_mask also 1 on [CLS], [SEP] and X positions (default: first word pieces only)"
    )

    context_tokens: int = param(
        0, "document context: up to this many word pieces of the neighbouring sentences of the same document on "
        "each side of every example (no label, no loss, never scored), within max_sequence_length (docs/CONTEXT.md)"
    )

    packing: bool = param(False, "pack several sequences into each row (histogram packing, drawn once from shuffle_seed)")
    max_sequences_per_pack: int = param(
        6, "most sequences in one packed row (sequence classification: must equal model.max_sequences_per_pack)"
    )
    packing_algorithm: Literal["spfhp", "lpfhp"] = param(
        "lpfhp", "longest-pack-first (lpfhp, the denser packing on our data) or shortest-pack-first (spfhp)"
    )

    def __post_init__(self) -> None:
        minimums = {
            "max_sequence_length": 3, "batch_size": 1, "shuffle_seed": 0, "num_workers": 0, "max_sequences_per_pack": 1,
            "context_tokens": 0,
        }
        for key, minimum in minimums.items():
            value = getattr(self, key)
            if value < minimum:
                raise ParamsError(f"{key}: must be at least {minimum}, got {value}")
        if self.max_sequences_per_pack >= self.max_sequence_length:
            raise ParamsError(
                f"max_sequences_per_pack: must be below max_sequence_length ({self.max_sequence_length}), "
                f"got {self.max_sequences_per_pack}"
            )

    def label_vocab_path(self) -> Path:
        """The label vocab this section reads: ``label_vocab_file``, else ``label2id.json`` in ``data_dir``."""
        return Path(self.label_vocab_file) if self.label_vocab_file else Path(self.data_dir) / LABEL_VOCAB_FILE
