"""The ``train_input`` / ``eval_input`` YAML sections, declared once (see ``modelzoo.common.schema``)."""

from __future__ import annotations

from dataclasses import dataclass

from modelzoo.common.schema import ParamsError, param


@dataclass
class InputParams:
    """Where a split's CSV folder is and how it is batched; built with ``schema.build(InputParams, d, name)``."""

    data_dir: str = param(required=True, doc="split folder written by write_csv_ner.py (holds meta.dat)")
    vocab_file: str | None = param(None, "WordPiece vocab.txt that maps the CSV's pieces to ids (needed)")
    label_vocab_file: str | None = param(None, "label -> id JSON; null means data_dir/label2id.json")
    max_sequence_length: int = param(128, "tokens per example after padding; must hold the folder's longest")
    batch_size: int = param(32, "examples per batch (per rank with several ranks)")
    shuffle: bool = param(True, "reshuffle the examples every epoch (set false to keep file order)")
    shuffle_seed: int = param(0, "seed of the shuffle; epoch e uses (shuffle_seed, e)")
    num_workers: int = param(0, "data-loader worker processes (0: load in the main process)")
    drop_last: bool = param(False, "drop a last batch smaller than batch_size (and balance ranks exactly)")
    include_special_labels_in_loss: bool = param(
        False, "loss_mask also 1 on [CLS], [SEP] and X positions (default: first word pieces only)"
    )

    def __post_init__(self) -> None:
        minimums = {"max_sequence_length": 3, "batch_size": 1, "shuffle_seed": 0, "num_workers": 0}
        for key, minimum in minimums.items():
            value = getattr(self, key)
            if value < minimum:
                raise ParamsError(f"{key}: must be at least {minimum}, got {value}")
