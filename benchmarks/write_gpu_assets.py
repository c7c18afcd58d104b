"""The files benchmarks/gpu_check.sh needs on the GPU machine, in one git-ignored folder that travels.

The GPU machine gets this checkout plus at most 64 MiB of named git-ignored paths; it reaches no
registry and no ../shared. This writes, into gpu_assets/ (ignored by .gitignore; the device call
names it in ``carry``):

  ner/{train,devel,test}.tsv  BC5CDR-chem (../shared/data/bc5cdr-chem): the fine-tune's data
  model/                      MiniLM-L6 in Hugging Face layout: config.json, vocab.txt, and
                              model.safetensors with every floating tensor stored in bfloat16. The
                              float32 file does not fit (90.9 MB); the fine-tune starts from these
                              weights upcast to float32, i.e. MiniLM with each weight rounded to
                              bfloat16's 8 significant bits (the parity and speed steps use random
                              weights of their own and do not read them)
  manifest.json               every file's size and SHA-256: the check's preflight verifies them

then prints how much the device call would send in all (the files git tracks, untracked files it
does not ignore, shared/ and this folder), and fails above 64 MiB. ``--tiny`` writes the same
layout from the repository alone, for the dry run in CI: tests/data's NER sentences and vocab and
a random 2-layer BERT.

    python benchmarks/write_gpu_assets.py                        # gpu_assets/ from the real data and weights
    python benchmarks/write_gpu_assets.py --tiny --out DIR       # the dry run's stand-in
    python benchmarks/write_gpu_assets.py --verify [--out DIR]   # check a folder, print what would travel
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import torch
from gpu_manifest import REAL_ASSETS, summary, verify, write_manifest
from safetensors.torch import load_file, save_file

from modelzoo.common.atomic import atomic_folder
from modelzoo.common.errors import UserError
from modelzoo.tools.quickstart import QuickstartError, minilm_folder

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "gpu_assets"
DEFAULT_NER = REPO_ROOT.parent / "shared" / "data" / "bc5cdr-chem"
TEST_DATA = REPO_ROOT / "tests" / "data"
CARRY_LIMIT = 64 * 2**20  # bytes a device call may send: the working tree and its carried paths together
NER_FILES = ("train.tsv", "devel.tsv", "test.tsv")
MODEL_FILES = ("config.json", "vocab.txt")  # copied as they are; model.safetensors is rewritten
WEIGHTS = "model.safetensors"
TINY_SHAPE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  max_position_embeddings=128)


class AssetsError(UserError):
    """A source missing, an assets folder incomplete, or more than a device call can carry."""


def save_bfloat16(tensors: Dict[str, torch.Tensor], path: Path) -> None:
    """Floating tensors in bfloat16 (half float32's bytes), integer buffers as they are."""
    stored = {key: (value.to(torch.bfloat16) if value.is_floating_point() else value).contiguous()
              for key, value in tensors.items()}
    save_file(stored, str(path), metadata={"format": "pt"})
    path.chmod(0o644)  # safetensors leaves its file private; the copy that travels is an ordinary file


def copy_files(source: Path, names: Iterable[str], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not (source / name).is_file():
            raise AssetsError(f"{source / name}: not found")
        shutil.copyfile(source / name, target / name)


def write_real(folder: Path, ner: Path) -> Dict[str, str]:
    """BC5CDR-chem and MiniLM (bfloat16-stored) into ``folder``; the manifest's description."""
    try:
        minilm = minilm_folder()
    except QuickstartError as error:
        raise AssetsError(str(error)) from None
    copy_files(ner, NER_FILES, folder / "ner")
    copy_files(minilm, MODEL_FILES, folder / "model")
    save_bfloat16(load_file(str(minilm / WEIGHTS)), folder / "model" / WEIGHTS)
    return {"kind": REAL_ASSETS, "ner": str(ner), "model": str(minilm), "stored_dtype": "bfloat16"}


def write_tiny(folder: Path) -> Dict[str, str]:
    """tests/data's NER sentences and vocab, and a random BERT of ``TINY_SHAPE`` in the same layout."""
    import transformers  # only here: it takes seconds to import, and the real assets do not need it

    copy_files(TEST_DATA / "ner", NER_FILES, folder / "ner")
    copy_files(TEST_DATA, ["vocab.txt"], folder / "model")
    vocab_size = len((TEST_DATA / "vocab.txt").read_text(encoding="utf-8").splitlines())
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=vocab_size, **TINY_SHAPE)
    config.to_json_file(str(folder / "model" / "config.json"))
    save_bfloat16(transformers.BertModel(config).state_dict(), folder / "model" / WEIGHTS)
    return {"kind": "tiny", "ner": str(TEST_DATA / "ner"), "model": f"random BERT {TINY_SHAPE}", "stored_dtype": "bfloat16"}


def build(out: Path, tiny: bool, ner: Path) -> None:
    """Write the assets folder whole: a failure leaves no half-written one."""
    if out.exists():
        shutil.rmtree(out)
    with atomic_folder(out) as staging:
        write_manifest(staging, write_tiny(staging) if tiny else write_real(staging, ner))


def travelling_files(root: Path, carried: Iterable[Path]) -> List[Path]:
    """What a device call sends from ``root``: tracked files, untracked files git does not ignore, the
    folder shared/, and the ``carried`` paths; links stay links there, so their targets are left out."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, capture_output=True, check=True,
    ).stdout.decode("utf-8").split("\0")
    files = {root / name for name in listed if name}
    for folder in [root / "shared", *carried]:
        if folder.is_dir():
            files.update(folder.rglob("*"))
    return sorted(path for path in files if path.is_file() and not path.is_symlink())


def travel_bytes(root: Path, carried: Iterable[Path]) -> int:
    return sum(path.stat().st_size for path in travelling_files(root, carried))


def report_travel(out: Path) -> None:
    total = travel_bytes(REPO_ROOT, [out])
    print(f"a device call carrying {out.name}/ sends {total / 2**20:.1f} MiB of {CARRY_LIMIT / 2**20:.0f} MiB")
    if total > CARRY_LIMIT:
        raise AssetsError(f"{total / 2**20:.1f} MiB would travel, over the {CARRY_LIMIT // 2**20} MiB a device call carries")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the folder to write (default: gpu_assets/)")
    parser.add_argument("--ner", type=Path, default=DEFAULT_NER, help="BC5CDR-chem's folder (train/devel/test.tsv)")
    parser.add_argument("--tiny", action="store_true", help="the dry run's stand-in, from tests/data")
    parser.add_argument("--verify", action="store_true", help="only check --out and print what would travel")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    try:
        if not args.verify:
            build(out, args.tiny, args.ner)
        problems = verify(out)
        if problems:
            raise AssetsError("; ".join(problems))
        print(f"{summary(out)}, verified")
        report_travel(out)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
