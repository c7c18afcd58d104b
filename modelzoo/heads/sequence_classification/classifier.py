"""The sequence classifier's side of prediction: lines (or sentence pairs) -> a label and its probability.

Lines are encoded as ``write_csv_classifier.py`` encodes the CSV (``[CLS] a [SEP] (b [SEP])``,
the same WordPiece vocab, truncated longest-first when too long) and laid out in rows exactly as
evaluation lays out the CSV (:func:`modelzoo.data.classifier_dataset.classifier_packs`): packed up
to ``model.max_sequences_per_pack`` sequences a row when ``eval_input.packing`` is on, one a row
otherwise, every [CLS] in the row's last slots where the pooler reads it. So predict and evaluate
give a sequence the same label. Rows are batched ``eval_input.batch_size`` at a time and the model
skips their padding where the device runs that faster (``skip_padding``).
"""

from __future__ import annotations

from typing import Dict, List, Tuple, Union

import numpy as np
import torch
from torch import nn

from modelzoo.common.device import DeviceSetup
from modelzoo.common.iteration import zip_strict
from modelzoo.data.classifier_dataset import classifier_packs
from modelzoo.data.packed_rows import pack_classification_examples
from modelzoo.data.params import InputParams
from modelzoo.data.vocab import PAD_TOKEN
from modelzoo.data.wordpiece import bert_tokenizer

Text = Union[str, Tuple[str, str]]


class SentenceClassifier:
    """Classifies single sentences or ``(first, second)`` pairs with a packed sequence classifier."""

    def __init__(
        self, model: nn.Module, vocab_file: str, id_to_label: List[str], inputs: InputParams, slots: int,
        setup: DeviceSetup, skip_padding: bool = True,
    ) -> None:
        self.model = model.to(setup.device).eval()
        self.skip_padding = skip_padding
        self.tokenizer = bert_tokenizer(vocab_file)
        self.pad_id = self.tokenizer.vocab[PAD_TOKEN]
        self.id_to_label = id_to_label
        self.inputs = inputs
        self.slots = slots
        self.longest = inputs.max_sequence_length - slots + 1  # a body and the row's [CLS] slots fill the row
        self.setup = setup

    def classify(self, texts: List[Text]) -> List[np.ndarray]:
        """The probability of every label (float32, in label-id order) for each text."""
        if not texts:
            return []
        examples = self._encode(texts)
        lengths = np.array([len(example["input_ids"]) for example in examples], dtype=np.int64)
        inputs = self.inputs
        packs, _ = classifier_packs(
            lengths, inputs.max_sequence_length, self.slots, inputs.packing, inputs.packing_algorithm, inputs.shuffle_seed
        )
        features = pack_classification_examples(examples, packs, inputs.max_sequence_length, self.pad_id)
        probabilities = np.zeros((len(texts), len(self.id_to_label)), dtype=np.float32)
        for start in range(0, len(packs), inputs.batch_size):
            rows = slice(start, start + inputs.batch_size)
            slots = packs[rows].flatten()
            batch_probabilities = self._predict({name: values[rows] for name, values in features.items()})
            probabilities[slots[slots >= 0]] = batch_probabilities[slots >= 0]
        return list(probabilities)

    def _encode(self, texts: List[Text]) -> List[dict]:
        pairs = isinstance(texts[0], tuple)
        columns = list(zip_strict(*texts)) if pairs else [texts]
        encoded = self.tokenizer(*columns, truncation="longest_first", max_length=self.longest)
        return [  # the packer wants a label per example; prediction has none, and the logits ignore it
            {"input_ids": np.array(ids, dtype=np.int32), "token_type_ids": np.array(types, dtype=np.int32), "labels": 0}
            for ids, types in zip_strict(encoded["input_ids"], encoded["token_type_ids"])
        ]

    @torch.inference_mode()
    def _predict(self, features: Dict[str, np.ndarray]) -> np.ndarray:
        """Label probabilities ``[rows x slots, labels]`` of one batch of packed rows."""
        device = self.setup.device
        inputs = {
            name: torch.from_numpy(features[name]).to(device)
            for name in ("input_ids", "attention_mask", "token_type_ids", "position_ids")
        }
        with self.setup.autocast():
            logits = self.model(**inputs, skip_padding=self.skip_padding).logits
        return logits.float().softmax(-1).cpu().numpy()
