"""The manifest of a gpu_assets folder: every file's size and SHA-256, written here and verified there.

It imports nothing from the project, so that the GPU check's preflight can verify the assets even
when the project itself does not import.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Dict, List

MANIFEST = "manifest.json"
REAL_ASSETS = "minilm-bc5cdr"  # the kind write_gpu_assets.py writes from the real data and weights


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, description: Dict[str, str]) -> None:
    """``description`` (what the folder holds, from where) and every file's size and SHA-256."""
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    listed = {path.relative_to(folder).as_posix(): {"bytes": path.stat().st_size, "sha256": sha256(path)} for path in files}
    (folder / MANIFEST).write_text(json.dumps({**description, "files": listed}, indent=2) + "\n", encoding="utf-8")


def read_manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))


def verify(folder: Path) -> List[str]:
    """What is wrong with an assets folder (files missing, resized or changed); empty when it is complete."""
    if not (folder / MANIFEST).is_file():
        return [f"{folder / MANIFEST}: not found (write the folder with: python benchmarks/write_gpu_assets.py)"]
    problems = []
    for name, expected in read_manifest(folder)["files"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size != expected["bytes"] or sha256(path) != expected["sha256"]:
            problems.append(f"{path}: differs from {MANIFEST} (size or SHA-256)")
    return problems


def summary(folder: Path) -> str:
    manifest = read_manifest(folder)
    size = sum(entry["bytes"] for entry in manifest["files"].values())
    return f"{folder}: {manifest['kind']}, {len(manifest['files'])} files, {size / 2**20:.1f} MiB"
