"""The YAML ``model:`` section: BERT hyper-parameters under their Cerebras model-zoo names.

Cerebras names are used (``num_heads``, ``filter_size``, ``dropout_rate``...) so that a Cerebras
BERT config's ``model:`` section reads unchanged; ``modelzoo.tools.convert_checkpoint`` maps them to
and from Hugging Face's ``config.json`` names (table in ``HF_CONFIG_NAMES``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Literal, Optional, Union

from modelzoo.common.errors import ParamsError
from modelzoo.common.schema import build, param

Nonlinearity = Literal["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"]
# Keys older params files hold that no longer shape the model: dropped when a section is read.
RETIRED_KEYS = {"use_pooler": "the head builds the pooler it needs (modelzoo/heads)"}

# Hugging Face config.json key -> our key, where the two differ.
HF_CONFIG_NAMES = {
    "num_attention_heads": "num_heads",
    "intermediate_size": "filter_size",
    "hidden_act": "encoder_nonlinearity",
    "hidden_dropout_prob": "dropout_rate",
    "attention_probs_dropout_prob": "attention_dropout_rate",
    "layer_norm_eps": "layer_norm_epsilon",
    "classifier_dropout": "encoder_output_dropout_rate",
    "num_labels": "num_classes",
}
# Keys spelled the same in both.
HF_SHARED_NAMES = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
    "pad_token_id",
)
# Cerebras model zoo model: key -> our key, where the two differ (its sequence classifier's names;
# its token classifier uses ours), and the LayerNorm epsilon its fine-tuning models take when a
# config leaves it out (set_defaults of token_classifier/utils.py and classifier/utils.py).
CEREBRAS_CONFIG_NAMES = {"num_labels": "num_classes", "task_dropout": "encoder_output_dropout_rate"}
CEREBRAS_LAYER_NORM_EPSILON = 1.0e-5


@dataclass
class BertConfig:
    """Shape and regularisation of the encoder and its heads (defaults: BERT-base uncased)."""

    vocab_size: int = param(30522, "WordPiece vocabulary size (rows of the word embedding)")
    hidden_size: int = param(768, "width of every encoder layer")
    num_hidden_layers: int = param(12, "number of encoder layers")
    num_heads: int = param(12, "attention heads per layer; must divide hidden_size")
    filter_size: int = param(3072, "inner width of the feed-forward block")
    encoder_nonlinearity: Nonlinearity = param("gelu", "feed-forward activation (gelu is the exact erf form)")
    dropout_rate: float = param(0.1, "dropout after embeddings, attention output and feed-forward")
    attention_dropout_rate: float = param(0.1, "dropout on the attention probabilities")
    max_position_embeddings: int = param(512, "longest sequence the position table covers")
    type_vocab_size: int = param(2, "number of token types (segments)")
    layer_norm_epsilon: float = param(1e-12, "epsilon of every LayerNorm")
    initializer_range: float = param(0.02, "std of the normal init of weights trained from scratch")
    pad_token_id: int = param(0, "id of [PAD]; its word-embedding row starts at zero")
    encoder_output_dropout_rate: Optional[float] = param(
        None, "dropout before the classifier; null means dropout_rate (Hugging Face's rule)"
    )
    num_classes: int = param(7, "labels of the classifier (7 = [PAD] B I O X [CLS] [SEP])")
    max_sequences_per_pack: int = param(
        1, "[CLS] slots at the end of every row of the sequence classifier (= its input's max_sequences_per_pack)"
    )
    head: str = param("token_classification", "the task head, one of the registered heads (modelzoo/heads)")
    class_weights: Union[None, Literal["auto"], List[float]] = param(
        None, "token classifier: weight of each label id in the training loss (num_classes numbers), or auto: "
        "from the train split's label frequencies (docs/TRAINING.md); null: every label weighs 1"
    )

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ParamsError(
                f"model.hidden_size ({self.hidden_size}) must be divisible by model.num_heads ({self.num_heads})"
            )
        for name in ("dropout_rate", "attention_dropout_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ParamsError(f"model.{name} must be in [0, 1), got {getattr(self, name)}")
        positive = (
            "vocab_size", "hidden_size", "num_hidden_layers", "num_heads", "filter_size", "num_classes",
            "max_sequences_per_pack",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ParamsError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if isinstance(self.class_weights, list):
            weights = self.class_weights
            if len(weights) != self.num_classes or not all(0.0 <= weight < float("inf") for weight in weights):
                raise ParamsError(
                    f"model.class_weights: expected {self.num_classes} (num_classes) finite weights >= 0, got {weights}"
                )

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def classifier_dropout(self) -> float:
        rate = self.encoder_output_dropout_rate
        return self.dropout_rate if rate is None else rate

    @classmethod
    def from_dict(cls, values: Optional[Dict[str, Any]]) -> BertConfig:
        """Build from a YAML ``model:`` mapping; unknown keys, bad types and bad shapes raise ParamsError.
        Retired keys (:data:`RETIRED_KEYS`) of older files are dropped."""
        kept = {key: value for key, value in (values or {}).items() if key not in RETIRED_KEYS}
        return build(cls, kept, "model")
