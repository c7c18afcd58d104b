"""Convert BERT checkpoints between Hugging Face, this project and Cerebras model-zoo 1.8-2.1 naming.

    python -m modelzoo.tools.convert_checkpoint convert SRC --src-fmt hf --tgt-fmt modelzoo \\
        --output-dir DIR [--num-labels N] [--model bert-sequence-classification] [--drop-unmatched-keys]
    python -m modelzoo.tools.convert_checkpoint list
    python -m modelzoo.tools.convert_checkpoint diff A B

Every key is accounted for: the source is mapped to canonical names, compared with the keys and
shapes the target model has, and any missing, unexpected or mis-shaped tensor stops the
conversion by name (unexpected ones may be dropped on purpose with --drop-unmatched-keys). A base
BertModel becomes a token classifier with a freshly initialised head when --num-labels is given, or
a (packed) sequence classifier, which keeps the pretrained pooler, with --model bert-sequence-classification.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from modelzoo.bert import BertConfig, BertModel
from modelzoo.bert.model import init_weights
from modelzoo.checkpoint.files import (
    MODEL_FILE,
    load_mdl,
    read_checkpoint,
    require_empty_output_dir,
    write_checkpoint,
)
from modelzoo.checkpoint.hf_export import (
    LABEL_VOCAB_FLAG,
    VOCAB_FLAG,
    ModelFiles,
    export_hf,
    find_model_files,
)
from modelzoo.checkpoint.model_card import is_training_checkpoint
from modelzoo.checkpoint.model_dir import VOCAB_FILE
from modelzoo.checkpoint.naming import CS_FORMATS, FORMATS, KeyMappingError, from_canonical, to_canonical
from modelzoo.checkpoint.onnx_export import INT8_ONNX_FILE, ONNX_FILE, ONNX_FORMAT, export_onnx
from modelzoo.common.errors import UserError
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE
from modelzoo.heads import head_names, head_spec
from modelzoo.heads.spec import head_of_converter_name

FORMAT_DOCS = {
    "hf": "Hugging Face folder: config.json + model.safetensors (or pytorch_model.bin)",
    "modelzoo": f"this project: {MODEL_FILE} (+ params.yaml with the model: section); run.py loads it",
    **{
        fmt: f"Cerebras model zoo {fmt[3:]}: {MODEL_FILE} (keys with or without 'model.') + params.yaml as Cerebras writes it"
        + (" (position table renamed .embed)" if fmt == "cs-2.1" else "")
        for fmt in CS_FORMATS
    },
    ONNX_FORMAT: f"target only: {ONNX_FILE} (float32, ONNX Runtime's BERT fusions) and {INT8_ONNX_FILE} + labels, "
    "tokenizer and model card",
}
BASE_MODEL_DOC = "BertModel (encoder, optional pooler): what pretrained checkpoints hold"


class ConversionError(UserError):
    """A conversion that cannot go ahead: missing, unexpected or mis-shaped tensors, by name."""


def expected_shapes(config: BertConfig, with_classifier: bool, with_pooler: bool) -> Dict[str, torch.Size]:
    """Canonical key -> shape of the model the target describes, built on the meta device (no memory):
    the head's model, or a bare encoder (``with_pooler``: keeping the source's pooler)."""
    with torch.device("meta"):
        model = head_spec(config.head).model_class(config) if with_classifier else _BaseModel(config, with_pooler)
    canonical, _ = to_canonical(model.state_dict(), "modelzoo")
    return {key: tensor.shape for key, tensor in canonical.items()}


class _BaseModel(torch.nn.Module):
    """A BertModel under the ``bert.`` prefix, so its keys line up with the classifiers'."""

    def __init__(self, config: BertConfig, with_pooler: bool) -> None:
        super().__init__()
        self.bert = BertModel(config, add_pooling_layer=with_pooler)


def convert(
    source: Path,
    src_fmt: str,
    tgt_fmt: str,
    output_dir: Path,
    num_labels: Optional[int] = None,
    drop_unmatched_keys: bool = False,
    seed: int = 0,
    model: Optional[str] = None,
    label_vocab: Optional[Path] = None,
    vocab_file: Optional[Path] = None,
    command: str = "",
) -> List[str]:
    """Convert ``source`` and write ``output_dir``; returns the report lines (what was dropped or made).

    ``model`` (a head's ``converter_name``) picks the classifier head; None keeps the source's
    ``model.head`` (token classification for Hugging Face folders). A classifier goes to ``hf`` or
    ``onnx`` with its labels, tokenizer and model card (:mod:`modelzoo.checkpoint.hf_export`) when it
    is a training checkpoint or its label vocab is at hand (``label_vocab``, else beside ``source``).
    """
    require_empty_output_dir(Path(output_dir))  # before the source is read: a wrong place fails at once
    state_dict, config = read_checkpoint(source, src_fmt)
    try:
        canonical, dropped = to_canonical(state_dict, src_fmt, drop_unmatched_keys)
    except KeyMappingError as error:
        raise ConversionError(f"{source}: {error}; pass --drop-unmatched-keys to drop them") from error
    report = [f"read {len(state_dict)} tensors from {source} ({src_fmt})"]
    report += [f"dropped unmatched key {key}" for key in dropped]

    with_classifier = "classifier.weight" in canonical or num_labels is not None
    if num_labels is not None:
        config = dataclasses.replace(config, num_classes=num_labels)
        if "classifier.weight" in canonical and canonical["classifier.weight"].shape[0] != num_labels:
            raise ConversionError(
                f"{source}: classifier has {canonical['classifier.weight'].shape[0]} labels, --num-labels says {num_labels}"
            )
        if "classifier.weight" not in canonical:
            canonical.update(_fresh_classifier(config, seed))
            report.append(f"initialised a fresh classifier with {num_labels} labels (seed {seed})")
    if model is not None:
        if not with_classifier:
            raise ConversionError(f"{source}: has no classifier; give --num-labels to make a {model}")
        config = dataclasses.replace(config, head=head_of_converter_name(model).name)

    # A classifier's model class says whether it keeps the pretrained pooler; a bare encoder keeps what it has.
    expected = expected_shapes(config, with_classifier, "bert.pooler.dense.weight" in canonical)
    missing = sorted(set(expected) - set(canonical))
    unexpected = sorted(set(canonical) - set(expected))
    if missing:
        raise ConversionError(f"{source}: missing key(s): {', '.join(missing)}")
    if unexpected and not drop_unmatched_keys:
        raise ConversionError(
            f"{source}: unexpected key(s) for the target model: {', '.join(unexpected)}; "
            "pass --drop-unmatched-keys to drop them"
        )
    report += [f"dropped unmatched key {key}" for key in unexpected]
    for key in unexpected:
        del canonical[key]
    wrong = [f"{k} {tuple(canonical[k].shape)} (expected {tuple(s)})" for k, s in expected.items() if canonical[k].shape != s]
    if wrong:
        raise ConversionError(f"{source}: wrong shape: {'; '.join(wrong)}")

    files = find_model_files(Path(source), label_vocab, vocab_file)
    shipped = with_classifier and (files.label_vocab is not None or is_training_checkpoint(Path(source)))
    if tgt_fmt == ONNX_FORMAT:
        written = export_onnx(from_canonical(canonical, "hf"), config, Path(source), output_dir, files, command)
    elif tgt_fmt == "hf" and shipped:
        written = export_hf(from_canonical(canonical, "hf"), config, Path(source), output_dir, files, command)
    else:
        write_checkpoint(from_canonical(canonical, tgt_fmt), config, tgt_fmt, output_dir, Path(source),
                         add_files=lambda folder: carry_model_files(files, folder))
        written = sorted(path.name for path in output_dir.iterdir())
    report.append(f"wrote {tgt_fmt} to {output_dir}: {', '.join(written)}")
    if tgt_fmt == "hf" and with_classifier and not shipped:
        report.append(
            f"no {LABEL_VOCAB_FILE} beside {source}: config.json names no labels (transformers calls them LABEL_0.."
            f"LABEL_{config.num_classes - 1}); {LABEL_VOCAB_FLAG} FILE adds them, with the tokenizer and a model card"
        )
    return report


def carry_model_files(files: ModelFiles, folder: Path) -> None:
    """The label vocab and WordPiece vocab travel with the weights, so the next conversion finds them beside them."""
    for found, name in ((files.label_vocab, LABEL_VOCAB_FILE), (files.vocab, VOCAB_FILE)):
        if found is not None:
            shutil.copyfile(found, folder / name)


def _fresh_classifier(config: BertConfig, seed: int) -> Dict[str, torch.Tensor]:
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    head = torch.nn.Linear(config.hidden_size, config.num_classes)
    init_weights(head, config)
    torch.random.set_rng_state(generator_state)
    return {"classifier.weight": head.weight.detach(), "classifier.bias": head.bias.detach()}


def detect_format(path: Path) -> str:
    """Guess the format of a checkpoint folder or .mdl file from its files and key names."""
    if path.is_dir() and (path / "config.json").is_file():
        return "hf"
    model_file = path if path.is_file() else path / MODEL_FILE
    keys = load_mdl(model_file).get("model", {})
    if any(".position_embeddings.embed." in key for key in keys):
        return "cs-2.1"
    return "cs-1.9" if any("transformer_encoder" in key for key in keys) else "modelzoo"


def diff(path_a: Path, path_b: Path) -> Tuple[List[str], bool]:
    """Per-tensor comparison in canonical names: report lines and whether the two are identical."""
    canonical = []
    for path in (path_a, path_b):
        state_dict, _ = read_checkpoint(path, detect_format(path))
        canonical.append(to_canonical(state_dict, detect_format(path), drop_unmatched=True)[0])
    a, b = canonical
    lines, identical = [], True
    for key in sorted(set(a) | set(b)):
        if key not in b or key not in a:
            lines.append(f"{key}: only in {path_a if key in a else path_b}")
            identical = False
        elif a[key].shape != b[key].shape:
            lines.append(f"{key}: shape {tuple(a[key].shape)} vs {tuple(b[key].shape)}")
            identical = False
        elif not torch.equal(a[key], b[key]):
            max_diff = (a[key].double() - b[key].double()).abs().max().item()
            lines.append(f"{key}: max |diff| {max_diff:.3e}")
            identical = False
    lines.append(f"{len(set(a) | set(b))} tensors compared: {'identical' if identical else 'different'}")
    return lines, identical


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m modelzoo.tools.convert_checkpoint", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    convert_cmd = commands.add_parser("convert", help="convert weights and config to another format")
    convert_cmd.add_argument("source", type=Path, help="checkpoint folder (or .mdl file for modelzoo/cs-*)")
    convert_cmd.add_argument("--src-fmt", choices=FORMATS, required=True, help="format of SOURCE")
    convert_cmd.add_argument("--tgt-fmt", choices=(*FORMATS, ONNX_FORMAT), required=True, help="format to write")
    convert_cmd.add_argument("--output-dir", type=Path, required=True, help="folder to create (must not hold files)")
    convert_cmd.add_argument("--num-labels", type=int, help="make a token classifier with this many labels")
    convert_cmd.add_argument(
        "--drop-unmatched-keys", action="store_true", help="drop source tensors the target model has no place for"
    )
    convert_cmd.add_argument("--seed", type=int, default=0, help="seed of a freshly initialised classifier")
    convert_cmd.add_argument(
        "--model", choices=[head_spec(name).converter_name for name in head_names()],
        help="classifier to write (default: the source's, else the default model.head's)",
    )
    convert_cmd.add_argument(LABEL_VOCAB_FLAG, type=Path, help="label2id.json of the classifier (default: beside SOURCE)")
    convert_cmd.add_argument(VOCAB_FLAG, type=Path, help="WordPiece vocab.txt of the model (default: beside SOURCE)")
    commands.add_parser("list", help="list the formats and models")
    diff_cmd = commands.add_parser("diff", help="compare two checkpoints tensor by tensor (exit 1 if different)")
    diff_cmd.add_argument("a", type=Path)
    diff_cmd.add_argument("b", type=Path)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            print("formats:")
            print("\n".join(f"  {name:10s} {doc}" for name, doc in FORMAT_DOCS.items()))
            print("models:")
            models = {"bert": BASE_MODEL_DOC, **{head_spec(n).converter_name: head_spec(n).description for n in head_names()}}
            print("\n".join(f"  {name:26s} {doc}" for name, doc in models.items()))
            return 0
        if args.command == "diff":
            lines, identical = diff(args.a, args.b)
            print("\n".join(lines))
            return 0 if identical else 1
        report = convert(
            args.source, args.src_fmt, args.tgt_fmt, args.output_dir, args.num_labels, args.drop_unmatched_keys, args.seed,
            args.model, args.label_vocab, args.vocab_file, f"python -m modelzoo.tools.convert_checkpoint {shlex.join(argv)}",
        )
        print("\n".join(report))
        return 0
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
