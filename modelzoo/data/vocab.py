"""WordPiece and label vocabularies, read the same way by the CSV writer and the CSV reader.

The label vocabulary follows the Cerebras layout so that their checkpoints and ours agree on ids:
``[PAD]`` is 0, the data's labels follow, and ``X`` / ``[CLS]`` / ``[SEP]`` close the list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Set, Union

from modelzoo.common.errors import DataFileError
from modelzoo.data.labels import FRAME_LABELS, PAD_LABEL
from modelzoo.data.text_files import read_utf8_text

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
# The tokens every example needs: padding, unknown pieces and the [CLS]/[SEP] frame.
REQUIRED_VOCAB_TOKENS = (PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN)


def read_vocab(vocab_file: Union[str, Path]) -> Dict[str, int]:
    """Token -> id from a ``vocab.txt`` (one token a line, id = 0-based line number).

    Trailing whitespace is dropped and a repeated token keeps its last id, exactly as the
    ``tokenizers`` WordPiece loader does, so reader ids match the writer's tokenizer.
    """
    path = Path(vocab_file)
    text = read_utf8_text(path, "vocab file")
    vocab = {token.rstrip(): index for index, token in enumerate(text.split("\n")) if token.rstrip()}
    missing = [token for token in REQUIRED_VOCAB_TOKENS if token not in vocab]
    if missing:
        raise DataFileError(path, None, f"not a BERT WordPiece vocab: it lacks {', '.join(missing)}")
    return vocab


def read_classifier_label_vocab(label_vocab_file: Union[str, Path]) -> Dict[str, int]:
    """Label -> id from a sequence classifier's ``label2id.json``: any labels, ids 0..n-1 each used once."""
    path = Path(label_vocab_file)
    try:
        label2id = json.loads(read_utf8_text(path, "label vocab file"))
    except json.JSONDecodeError as error:
        raise DataFileError(path, error.lineno, f"not valid JSON: {error.msg}") from error
    if not isinstance(label2id, dict) or not all(
        isinstance(label, str) and isinstance(index, int) and not isinstance(index, bool)
        for label, index in label2id.items()
    ):
        raise DataFileError(path, None, "expected a JSON object mapping label (string) to id (integer)")
    if sorted(label2id.values()) != list(range(len(label2id))):
        raise DataFileError(path, None, f"ids must be 0..{len(label2id) - 1}, each used once")
    return label2id


def read_label_vocab(label_vocab_file: Union[str, Path]) -> Dict[str, int]:
    """Label -> id from an NER ``label2id.json``: dense ids, ``[PAD]`` = 0 and the special labels."""
    path = Path(label_vocab_file)
    label2id = read_classifier_label_vocab(path)
    if label2id.get(PAD_LABEL) != 0:
        raise DataFileError(path, None, f"'{PAD_LABEL}' must have id 0")
    missing = [label for label in FRAME_LABELS if label not in label2id]
    if missing:
        raise DataFileError(path, None, f"lacks the special label(s) {', '.join(missing)}")
    return label2id


def check_label_count(label_vocab_file: Union[str, Path], label2id: Dict[str, int], num_classes: int) -> None:
    """A classifier whose width differs from its label vocab would train or tag wrongly: stop before."""
    if len(label2id) != num_classes:
        raise DataFileError(
            Path(label_vocab_file), None, f"has {len(label2id)} labels but the classifier has {num_classes} "
            "outputs (model.num_classes)"
        )


def labels_by_id(label2id: Dict[str, int]) -> List[str]:
    """The label of every id, in id order."""
    return sorted(label2id, key=label2id.__getitem__)


def build_label_vocab(data_labels: Union[Set[str], List[str]]) -> Dict[str, int]:
    """``[PAD]``, the sorted data labels, ``X``, ``[CLS]``, ``[SEP]`` -> ids 0..n-1."""
    ordered = [PAD_LABEL, *sorted(set(data_labels)), *FRAME_LABELS]
    return {label: index for index, label in enumerate(ordered)}


def is_uncased_vocab(vocab: Dict[str, int]) -> bool:
    """True when no token outside ``[...]`` has an upper-case letter: such a vocab wants lower-cased input.

    The params file does not say how the CSV was written; the vocab does (BERT's uncased vocabs hold
    no capitals, the cased ones thousands), and prediction must piece words as training did.
    """
    return not any(token[:1] != "[" and token != token.lower() for token in vocab)
