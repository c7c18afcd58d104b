"""The ``model:`` section of a ``cs-*`` checkpoint folder, as Cerebras writes it and as we read it back.

A ``cs-*`` folder's ``params.yaml`` holds exactly what Cerebras' own config converter writes when it
turns a Hugging Face checkpoint into one of its releases (``ConfigConverter_BertFor{Token,Sequence}
Classification_HF_CS18`` / ``_CS21``, ``ConfigConverter_Bert_HF_CS18`` / ``_CS21``), so a Cerebras run
reads it as one of its own: Cerebras keys only, and numbers where Cerebras expects numbers. Our
choices Cerebras has no key for (packing slots, the [PAD] id, the head as we name it) are returned
apart, for a file a Cerebras run never opens. What a Cerebras model cannot be (other than two token
types, an activation it has no name for) is refused rather than written wrongly.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from modelzoo.bert.config import CEREBRAS_CONFIG_NAMES, CEREBRAS_LAYER_NORM_EPSILON, BertConfig
from modelzoo.common.errors import CheckpointError
from modelzoo.heads import head_spec
from modelzoo.heads.spec import head_of_cerebras_section

# Our model keys with no Cerebras counterpart.
OURS_ONLY = ("head", "max_sequences_per_pack", "pad_token_id")
# Our keys Cerebras spells the same (Cerebras' BertModel arguments).
SHARED = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_heads", "filter_size", "encoder_nonlinearity",
    "dropout_rate", "attention_dropout_rate", "max_position_embeddings", "layer_norm_epsilon", "initializer_range",
)
# Activations of ours that Cerebras' ACT2FN knows by the same name.
CEREBRAS_NONLINEARITIES = ("gelu", "gelu_new", "relu")


def to_cerebras(config: BertConfig, with_classifier: bool, fmt: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``(Cerebras model section, our keys Cerebras has no place for)`` for a ``fmt`` folder."""
    if config.type_vocab_size != 2:
        raise CheckpointError(f"{fmt} cannot hold this model: Cerebras' BERT has 2 token types, not {config.type_vocab_size}")
    if config.encoder_nonlinearity not in CEREBRAS_NONLINEARITIES:
        raise CheckpointError(f"{fmt} cannot hold this model: Cerebras has no activation named {config.encoder_nonlinearity!r}")
    ours = asdict(config)
    section = {key: ours[key] for key in SHARED}
    section.update(share_embedding_weights=True, position_embedding_type="learned")
    if with_classifier:
        section.update(head_spec(config.head).cerebras_section(config))
    section.update(pooler_nonlinearity="tanh", mlm_nonlinearity=config.encoder_nonlinearity)
    if with_classifier or fmt != "cs-2.1":  # the 2.1 converter of a bare BERT no longer writes it
        section["enable_vts"] = False
    section["mixed_precision"] = True
    return section, {key: ours[key] for key in OURS_ONLY}


def from_cerebras(section: Dict[str, Any], ours: Optional[Dict[str, Any]], source: Path) -> Dict[str, Any]:
    """A Cerebras model section (plus our side keys, when we wrote the folder) -> BertConfig values.

    Cerebras-only keys (loss_weight, enable_vts...) say nothing about the weights and are left out;
    a position table other than a learned one would be read wrongly and is refused. A section
    without layer_norm_epsilon was trained with Cerebras' default, not ours; written ``1e-5`` (a
    string to YAML 1.1) it is the number Cerebras' ``float()`` makes of it.
    """
    if section.get("position_embedding_type", "learned") != "learned":
        kind = section["position_embedding_type"]
        raise CheckpointError(f"{source}: model.position_embedding_type {kind!r}: only 'learned' is supported")
    values = {key: section[key] for key in (*SHARED, "num_classes", "encoder_output_dropout_rate") if key in section}
    values["layer_norm_epsilon"] = float(values.get("layer_norm_epsilon", CEREBRAS_LAYER_NORM_EPSILON))
    values.update({ours_name: section[name] for name, ours_name in CEREBRAS_CONFIG_NAMES.items() if name in section})
    values["head"] = head_of_cerebras_section(section).name
    values.update(ours or {})
    return values
