"""Parameter names of BERT in three families of formats (Hugging Face, ours, Cerebras' releases),
mapped through one canonical form.

The canonical form is Hugging Face's ``BertForTokenClassification`` naming (``bert.`` prefix,
``LayerNorm.weight/bias``, separate query/key/value). Each format is a table from canonical
module paths to its own; a key that matches no row of the table is *unexpected*, so the tables
double as the list of what a BERT checkpoint may hold. ``modelzoo`` fuses query/key/value into one
``qkv`` projection: those three rows carry a part index, and the converter joins or splits them
along the output dimension in q, k, v order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch

from modelzoo.common.errors import UserError
from modelzoo.common.iteration import zip_strict
from modelzoo.common.strings import remove_prefix

# Cerebras model zoo releases: 1.8, 1.9 and 2.0 name every tensor alike; 2.1 moved the position
# table under ``.embed`` (Converter_Bert_CS20_CS21 of its checkpoint converters).
CS_FORMATS = ("cs-1.8", "cs-1.9", "cs-2.0", "cs-2.1")
FORMATS = ("hf", "modelzoo", *CS_FORMATS)
MODEL_PREFIX = "model."
QKV_PARTS = ("query", "key", "value")

# canonical module path (without "bert.") -> format path; {n} is the encoder layer index.
_ENCODER_ROWS = {
    "modelzoo": {
        "embeddings.word_embeddings": "embeddings.word_embeddings",
        "embeddings.position_embeddings": "embeddings.position_embeddings",
        "embeddings.token_type_embeddings": "embeddings.token_type_embeddings",
        "embeddings.LayerNorm": "embeddings.layer_norm",
        "encoder.layer.{n}.attention.self.query": "encoder.layer.{n}.attention.qkv",
        "encoder.layer.{n}.attention.self.key": "encoder.layer.{n}.attention.qkv",
        "encoder.layer.{n}.attention.self.value": "encoder.layer.{n}.attention.qkv",
        "encoder.layer.{n}.attention.output.dense": "encoder.layer.{n}.attention.output",
        "encoder.layer.{n}.attention.output.LayerNorm": "encoder.layer.{n}.attention_norm",
        "encoder.layer.{n}.intermediate.dense": "encoder.layer.{n}.intermediate",
        "encoder.layer.{n}.output.dense": "encoder.layer.{n}.output",
        "encoder.layer.{n}.output.LayerNorm": "encoder.layer.{n}.output_norm",
        "pooler.dense": "pooler.dense",
    },
    "cs-1.9": {
        "embeddings.word_embeddings": "embedding_layer.word_embeddings",
        "embeddings.position_embeddings": "embedding_layer.position_embeddings",
        "embeddings.token_type_embeddings": "embedding_layer.segment_embeddings",
        "embeddings.LayerNorm": "embed_ln_f",
        "encoder.layer.{n}.attention.self.query": "transformer_encoder.layers.{n}.self_attn.proj_q_dense_layer",
        "encoder.layer.{n}.attention.self.key": "transformer_encoder.layers.{n}.self_attn.proj_k_dense_layer",
        "encoder.layer.{n}.attention.self.value": "transformer_encoder.layers.{n}.self_attn.proj_v_dense_layer",
        "encoder.layer.{n}.attention.output.dense": "transformer_encoder.layers.{n}.self_attn.proj_output_dense_layer",
        "encoder.layer.{n}.attention.output.LayerNorm": "transformer_encoder.layers.{n}.norm1",
        "encoder.layer.{n}.intermediate.dense": "transformer_encoder.layers.{n}.ffn.ffn.0.linear_layer",
        "encoder.layer.{n}.output.dense": "transformer_encoder.layers.{n}.ffn.ffn.1.linear_layer",
        "encoder.layer.{n}.output.LayerNorm": "transformer_encoder.layers.{n}.norm2",
        "pooler.dense": "pooler.pooler.ffn.0.linear_layer",
    },
}
_ENCODER_ROWS["hf"] = {path: path for path in _ENCODER_ROWS["modelzoo"]}
_ENCODER_ROWS.update({fmt: _ENCODER_ROWS["cs-1.9"] for fmt in ("cs-1.8", "cs-2.0")})
_ENCODER_ROWS["cs-2.1"] = {
    **_ENCODER_ROWS["cs-1.9"],
    "embeddings.position_embeddings": "embedding_layer.position_embeddings.embed",
}


@dataclass(frozen=True)
class _Row:
    pattern: re.Pattern  # matches a module path in the source naming
    template: str  # the module path in the target naming, with {n}
    qkv_part: Optional[int]  # 0/1/2 when the row is one third of a fused qkv (modelzoo side)


def _to_regex(template: str) -> re.Pattern:
    return re.compile("^" + re.escape(template).replace(r"\{n\}", r"(?P<n>\d+)") + "$")


def _rows(fmt: str, to_canonical: bool) -> List[_Row]:
    rows = []
    for canonical, native in _ENCODER_ROWS[fmt].items():
        part = None
        if fmt == "modelzoo" and canonical.rsplit(".", 1)[-1] in QKV_PARTS:
            part = QKV_PARTS.index(canonical.rsplit(".", 1)[-1])
        source, target = (native, canonical) if to_canonical else (canonical, native)
        rows.append(_Row(_to_regex("bert." + source), "bert." + target, part))
    rows.append(_Row(_to_regex("classifier"), "classifier", None))
    return rows


class KeyMappingError(UserError):
    """Keys that no table row matches; carries them by name."""

    def __init__(self, unexpected: List[str], fmt: str) -> None:
        self.unexpected = unexpected
        super().__init__(f"{len(unexpected)} unexpected key(s) for format {fmt}: {', '.join(unexpected)}")


class MixedPrefixError(UserError):
    """A Cerebras state dict with some keys under ``model.`` and some not."""


def strip_model_prefix(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Cerebras keys without the ``model.`` prefix that its deprecated PyTorchBaseModel put on every key.

    Cerebras' own converters read either form (1.8 to 2.1), so this does too. Some keys with it and
    some without means two state dicts were merged, which no Cerebras run writes: refused, not guessed.
    """
    prefixed = [key for key in state_dict if key.startswith(MODEL_PREFIX)]
    if not prefixed:
        return state_dict
    plain = [key for key in state_dict if not key.startswith(MODEL_PREFIX)]
    if plain:
        raise MixedPrefixError(
            f"keys with and without the '{MODEL_PREFIX}' prefix ({prefixed[0]}, {plain[0]}); "
            "a Cerebras checkpoint has one kind"
        )
    return {remove_prefix(key, MODEL_PREFIX): tensor for key, tensor in state_dict.items()}


def _split_key(key: str) -> Tuple[str, str]:
    module, _, tensor = key.rpartition(".")
    return module, tensor


def normalise_hf_keys(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Hugging Face keys -> canonical: add the ``bert.`` prefix a bare BertModel lacks, rename the
    old TF-era ``gamma``/``beta`` LayerNorm tensors, and drop the ``position_ids`` buffer (it is
    always ``arange``, derived rather than learned; a checkpoint where it is not is refused)."""
    normalised = {}
    for key, tensor in state_dict.items():
        if key.endswith("embeddings.position_ids"):
            if not torch.equal(tensor.flatten(), torch.arange(tensor.numel(), dtype=tensor.dtype)):
                raise ValueError(f"{key} is not 0..n-1; this converter supports absolute positions only")
            continue
        if not key.startswith(("bert.", "classifier.", "cls.")):
            key = "bert." + key
        module, tensor_name = _split_key(key)
        if module.endswith("LayerNorm"):
            tensor_name = {"gamma": "weight", "beta": "bias"}.get(tensor_name, tensor_name)
        normalised[f"{module}.{tensor_name}"] = tensor
    return normalised


def to_canonical(state_dict: Dict[str, torch.Tensor], fmt: str, drop_unmatched: bool = False):
    """A state dict in ``fmt`` naming -> canonical naming. Returns ``(state_dict, dropped_keys)``."""
    if fmt == "hf":
        state_dict = normalise_hf_keys(state_dict)
    rows = _rows(fmt, to_canonical=True)
    canonical, unexpected = {}, []
    for key, tensor in state_dict.items():
        module, tensor_name = _split_key(key)
        row, match = _match(rows, module)
        if row is None:
            unexpected.append(key)
            continue
        if row.qkv_part is None:
            canonical[_fill(row.template, match) + "." + tensor_name] = tensor
            continue
        part_rows = sorted((r for r in rows if r.pattern == row.pattern), key=lambda r: r.qkv_part)
        for part_row, part in zip_strict(part_rows, tensor.chunk(3, dim=0)):
            canonical[_fill(part_row.template, match) + "." + tensor_name] = part.clone()
    if unexpected and not drop_unmatched:
        raise KeyMappingError(unexpected, fmt)
    return canonical, unexpected


def from_canonical(state_dict: Dict[str, torch.Tensor], fmt: str) -> Dict[str, torch.Tensor]:
    """Canonical naming -> ``fmt`` naming (fusing q/k/v for ``modelzoo``). Keys must be canonical."""
    rows = _rows(fmt, to_canonical=False)
    native, qkv_parts = {}, {}
    for key, tensor in state_dict.items():
        module, tensor_name = _split_key(key)
        row, match = _match(rows, module)
        if row is None:
            raise KeyMappingError([key], "canonical")
        target = _fill(row.template, match) + "." + tensor_name
        if row.qkv_part is None:
            native[target] = tensor
        else:
            qkv_parts.setdefault(target, [None] * 3)[row.qkv_part] = tensor
    for target, parts in qkv_parts.items():
        if any(part is None for part in parts):
            missing = [QKV_PARTS[i] for i, part in enumerate(parts) if part is None]
            raise ValueError(f"cannot fuse {target}: missing {', '.join(missing)}")
        native[target] = torch.cat(parts, dim=0)
    if fmt == "hf" and not any(key.startswith("classifier.") for key in native):
        native = {remove_prefix(key, "bert."): tensor for key, tensor in native.items()}
    return native


def _match(rows: List[_Row], module: str):
    for row in rows:
        match = row.pattern.match(module)
        if match:
            return row, match
    return None, None


def _fill(template: str, match: re.Match) -> str:
    return template.replace("{n}", match.group("n")) if "{n}" in template else template
