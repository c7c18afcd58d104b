"""Issue 13's fault injection: runs killed with SIGKILL at random moments, resumed, and compared with
runs never stopped; train_and_eval killed as an evaluation ends and between the best checkpoint and its
record (issue 30, exact moments: tests/kill_points.py); a second trainer against a live one; the NER
CSV writer killed midway.

Each test starts real ``run.py`` / ``write_csv_ner.py`` processes, so they are slow-marked:
``python -m pytest -m slow tests/test_fault_injection.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from modelzoo.checkpoint.best import BEST_CHECKPOINT_FILE, BEST_RECORD_FILE
from modelzoo.checkpoint.lock import LOCK_FILE, WriterLock
from modelzoo.checkpoint.training import latest_checkpoint, list_checkpoints
from modelzoo.common.atomic import is_temporary
from tests.run_fixtures import REPO_ROOT, model_tensors, run_py, subprocess_env, tiny_params, write_params

pytestmark = pytest.mark.slow

KILLS = 12
MAX_STEPS = 120  # more than 12 killed runs get through on a fast host (they reached 40 on this one)
TEST_DATA = REPO_ROOT / "tests" / "data"
TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")


def start(*command: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *command], cwd=REPO_ROOT, env=subprocess_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def results(model_dir: Path) -> dict[str, str]:
    """A digest of every file a run leaves (TensorBoard event files aside: one per process).

    A checkpoint's digest is that of its contents: every tensor's dtype, shape and bytes and every
    other value. Not of the file's bytes: ``torch.save`` writes a fresh serialization id into each
    file, and pickle's memo depends on which equal strings happen to be one object.
    """
    return {
        str(path.relative_to(model_dir)): content_digest(path)
        for path in sorted(model_dir.rglob("*"))
        if path.is_file() and "tfevents" not in path.name
    }


def content_digest(path: Path) -> str:
    digest = hashlib.sha256()
    if path.suffix != ".mdl":
        digest.update(path.read_bytes())
        return digest.hexdigest()

    def add(value) -> None:
        if isinstance(value, torch.Tensor):
            digest.update(f"tensor {value.dtype} {tuple(value.shape)}".encode())
            digest.update(value.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            for key in value:
                digest.update(repr(key).encode())
                add(value[key])
        elif isinstance(value, (list, tuple)):
            digest.update(f"{type(value).__name__} {len(value)}".encode())
            for item in value:
                add(item)
        else:
            digest.update(repr(value).encode())

    add(torch.load(path, map_location="cpu", weights_only=True))
    return digest.hexdigest()


def stray_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if is_temporary(path) or path.name == LOCK_FILE]


def progress(model_dir: Path) -> int:
    latest = latest_checkpoint(model_dir)
    return int(latest.stem.removeprefix("checkpoint_")) if latest else -1


def kill_when(process: subprocess.Popen, moment) -> bool:
    """SIGKILL ``process`` as soon as ``moment()`` is true; False if it ended first."""
    while process.poll() is None:
        if moment():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.0005)
    return False


def partial_checkpoints(model_dir: Path) -> set[str]:
    return {path.name for path in model_dir.glob(".checkpoint_*") if is_temporary(path)}


def writing_a_checkpoint(model_dir: Path, left_before: set[str]):
    """The moment a checkpoint write is under way (a temporary file other than those a killed run left)."""
    return lambda: bool(partial_checkpoints(model_dir) - left_before)


def after_progress(model_dir: Path, step: int, delay: float):
    """The moment ``delay`` seconds after model_dir's newest checkpoint is past ``step``."""
    seen: list[float] = []

    def moment() -> bool:
        if not seen and progress(model_dir) > step:
            seen.append(time.perf_counter())
        return bool(seen) and time.perf_counter() - seen[0] >= delay

    return moment


def test_training_killed_at_random_moments_resumes_to_the_same_checkpoint(ner_csv, tmp_path):
    model_dir = tmp_path / "run"
    params = tiny_params(
        ner_csv, model_dir,
        model={"hidden_size": 128, "filter_size": 256},  # a checkpoint big enough to be caught mid-write
        runconfig={"max_steps": MAX_STEPS, "save_checkpoints_steps": 1, "keep_checkpoint_max": 2, "log_steps": 10},
    )
    params_file = write_params(tmp_path / "p.yaml", params)
    command = ("run.py", "CPU", "--mode", "train", "--params", str(params_file))
    assert start(*command).wait() == 0
    reference = results(model_dir)
    model_dir.rename(tmp_path / "reference")  # the killed runs use the same path, so params and bytes agree

    rng = random.Random(13)
    kills = during_writes = 0
    for attempt in range(KILLS):
        left_before = partial_checkpoints(model_dir)
        process = start(*command)
        if attempt % 2:  # inside a checkpoint write: a temporary checkpoint file is open
            moment = writing_a_checkpoint(model_dir, left_before)
        else:  # a random moment once this attempt has trained a step or more
            moment = after_progress(model_dir, progress(model_dir), rng.uniform(0.0, 0.4))
        killed = kill_when(process, moment)
        kills += killed
        during_writes += killed and writing_a_checkpoint(model_dir, left_before)()
        if not killed:
            break
    assert kills >= 10, f"only {kills} runs were killed before the run ended"
    assert during_writes >= 1, "no kill landed inside a checkpoint write"
    assert progress(model_dir) < MAX_STEPS

    final = start(*command)
    assert final.wait() == 0, final.stderr.read()
    assert results(model_dir) == reference  # the final checkpoints bit for bit, and the same files beside them
    assert [step for step, _ in list_checkpoints(model_dir)] == [MAX_STEPS - 1, MAX_STEPS]
    assert stray_files(model_dir) == []


def best_pair(model_dir: Path) -> tuple[dict, bool, str]:
    """The best checkpoint's record (without the file's SHA-256, which names bytes that differ from
    run to run), whether that SHA-256 is the file's, and the file's content digest."""
    record = json.loads((model_dir / BEST_RECORD_FILE).read_text(encoding="utf-8"))
    best_file = model_dir / BEST_CHECKPOINT_FILE
    recorded_sha256 = record["best"].pop("sha256", None)
    return record, recorded_sha256 == hashlib.sha256(best_file.read_bytes()).hexdigest(), content_digest(best_file)


def test_train_and_eval_killed_as_an_evaluation_ends_and_inside_a_best_update_keeps_the_uninterrupted_best(
    ner_csv, tmp_path
):
    model_dir = tmp_path / "run"
    params = tiny_params(ner_csv, model_dir, runconfig={
        "max_steps": 12, "eval_frequency": 4, "save_checkpoints_steps": 4, "best_checkpoint_metric": "loss",
    })  # the eval loss falls at every evaluation here: each one is a new best
    run_args = ("CPU", "--mode", "train_and_eval", "--params", str(write_params(tmp_path / "p.yaml", params)))
    assert start("run.py", *run_args).wait() == 0
    reference = best_pair(model_dir)
    assert [entry["step"] for entry in reference[0]["history"]] == [4, 8, 12] and reference[0]["best"]["step"] == 12
    model_dir.rename(tmp_path / "reference")

    # killed once the evaluation of step 8 has written its figures, before the best checkpoint was decided
    assert start("-m", "tests.kill_points", "evaluation_end", "8", *run_args).wait() == -signal.SIGKILL
    assert [entry["step"] for entry in best_pair(model_dir)[0]["history"]] == [4]
    # the resumed run evaluates step 8 again and is killed between its new best checkpoint and the record
    assert start("-m", "tests.kill_points", "best_pair", "1", *run_args).wait() == -signal.SIGKILL
    record, matches, _ = best_pair(model_dir)
    assert record["best"]["step"] == 4 and not matches  # the file is step 8's, the record still step 4's
    assert [path.name for path in model_dir.glob(f".{BEST_RECORD_FILE}.tmp-*")] != []

    final = start("run.py", *run_args)
    assert final.wait() == 0, final.stderr.read()
    resumed = best_pair(model_dir)
    assert resumed == reference and resumed[1]  # the record, the best checkpoint's contents, and they agree
    assert stray_files(model_dir) == []


def test_a_second_trainer_is_refused_at_once_and_the_first_run_is_untouched(ner_csv, tmp_path):
    # long enough (seconds) for a second run.py to start while the first one trains
    params = tiny_params(ner_csv, tmp_path / "alone", runconfig={"max_steps": 600, "save_checkpoints_steps": 50})
    assert run_py("CPU", "--mode", "train", "--params", str(write_params(tmp_path / "alone.yaml", params))).returncode == 0

    model_dir = tmp_path / "run"
    params["runconfig"]["model_dir"] = str(model_dir)
    first = start("run.py", "CPU", "--mode", "train", "--params", str(write_params(tmp_path / "first.yaml", params)))
    while progress(model_dir) < 50 and first.poll() is None:  # its first checkpoint
        time.sleep(0.01)
    assert first.poll() is None, "the first run ended before the second could start"
    written = {path.name: path.read_bytes() for _, path in list_checkpoints(model_dir)}
    second = run_py("CPU", "--mode", "train", "--params", str(write_params(tmp_path / "first.yaml", params)), "--seed", "2")
    still_running = first.poll() is None
    assert first.wait() == 0, first.stderr.read()
    assert still_running, "the second trainer was not refused while the first one ran"
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert second.returncode == 2 and len(errors) == 1, second.stderr
    assert f"another training run is writing here (PID {first.pid} on host " in errors[0]
    for name, content in written.items():
        assert (model_dir / name).read_bytes() == content
    alone, mixed = model_tensors(tmp_path / "alone" / "checkpoint_600.mdl"), model_tensors(model_dir / "checkpoint_600.mdl")
    assert all(torch.equal(alone[key], mixed[key]) for key in alone)
    assert stray_files(model_dir) == []


def test_ranks_agree_to_stop_on_a_locked_model_dir(ner_csv, tmp_path):
    model_dir = tmp_path / "run"
    params_file = write_params(tmp_path / "p.yaml", tiny_params(ner_csv, model_dir, runconfig={"max_steps": 4}))
    holder = WriterLock(model_dir).acquire()
    try:
        result = run_py("CPU", "--mode", "train", "--params", str(params_file), launcher=TORCHRUN, timeout=120)
    finally:
        holder.release()
    assert result.returncode != 0
    assert result.stderr.count(f"another training run is writing here (PID {os.getpid()} ") == 2  # both ranks
    assert list(model_dir.iterdir()) == []


def test_the_csv_writer_killed_midway_leaves_the_old_folder_or_the_complete_new_one(tiny_vocab, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("train.tsv", "devel.tsv", "test.tsv"):  # enough sentences for the writing to take a while
        (raw / name).write_text((TEST_DATA / "ner" / name).read_text(encoding="utf-8") * 40, encoding="utf-8")
    script = str(REPO_ROOT / "data_processing" / "write_csv_ner.py")
    out = tmp_path / "out"

    def convert(data_dir: Path, target: Path) -> subprocess.Popen:
        return start(script, "--data_dir", str(data_dir), "--vocab_file", str(tiny_vocab), "--output_dir", str(target),
                     "--do_lower_case", "--overwrite", "--num_output_files", "4")

    assert convert(TEST_DATA / "ner", out).wait() == 0
    old = results(out)
    began = time.perf_counter()
    assert convert(raw, tmp_path / "new").wait() == 0
    seconds = time.perf_counter() - began
    new = results(tmp_path / "new")
    assert old != new

    rng = random.Random(7)
    states, kills = [], 0
    for attempt in range(KILLS + 2):
        left_before = set(tmp_path.glob(".out.tmp-*"))  # staging folders of the conversions killed so far
        process = convert(raw, out)
        if attempt % 2:  # while the new output folder is assembled and swapped in
            assembling = lambda left=left_before: any(p.parent not in left for p in tmp_path.glob(".out.tmp-*/.assembled"))  # noqa: E731
            kills += kill_when(process, assembling)
        else:
            deadline = time.perf_counter() + rng.uniform(0.2, 1.2) * seconds
            kills += kill_when(process, lambda deadline=deadline: time.perf_counter() >= deadline)
        state = results(out)
        assert state in (old, new), "the output folder mixes the old conversion and the new one"
        states.append("new" if state == new else "old")
    assert kills >= 10, f"only {kills} conversions were killed"
    assert convert(raw, out).wait() == 0
    assert results(out) == new
    for staging in tmp_path.glob(".out.tmp-*"):  # a killed writer's staging folder never holds the output
        shutil.rmtree(staging)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["new", "out", "raw"]
    print(f"states after each kill: {states}")
