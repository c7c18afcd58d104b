"""Issue 13, the training side: one writer per model_dir, checked resumes, params that cannot run,
partial and foreign checkpoint files, and output places that cannot be written."""

from __future__ import annotations

import errno
import io
import os
import pickle
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from modelzoo.checkpoint.best import BEST_CHECKPOINT_FILE, BEST_RECORD_FILE, BestCheckpoint, BestRule
from modelzoo.checkpoint.lock import LOCK_FILE, ModelDirLockedError, WriterLock, take_model_dir
from modelzoo.checkpoint.training import list_checkpoints
from modelzoo.cli.main import main
from modelzoo.common.atomic import is_temporary
from modelzoo.common.errors import DiskFullError, ParamsError
from modelzoo.params.compare import compare_params
from modelzoo.params.params import load_params
from tests.run_fixtures import tiny_params, write_params

WARMUP_THEN_DECAY = [
    {"scheduler": "Linear", "initial_learning_rate": 0.0, "end_learning_rate": 1.0e-3, "total_iters": 5},
    {"scheduler": "Linear", "initial_learning_rate": 1.0e-3, "end_learning_rate": 0.0, "total_iters": 10},
]


def run_main(argv: list[str], capsys) -> tuple[int, list[str], str]:
    capsys.readouterr()
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, [line for line in captured.err.splitlines() if line.startswith("error:")], captured.out


def train_argv(params_file: Path, *extra: str) -> list[str]:
    return ["CPU", "--mode", "train", "--params", str(params_file), *extra]


@pytest.fixture
def trained(ner_csv, tmp_path):
    """A model_dir after 4 steps (checkpoints 2 and 4) and its params file."""
    model_dir = tmp_path / "run"
    params = tiny_params(ner_csv, model_dir, runconfig={"max_steps": 4, "save_checkpoints_steps": 2})
    params_file = write_params(tmp_path / "p.yaml", params)
    assert main(train_argv(params_file)) == 0
    return {"model_dir": model_dir, "params": params, "params_file": params_file}


# --- 1. one writer per model_dir ----------------------------------------------------------------


def test_a_second_trainer_is_refused_at_once_naming_the_holder(ner_csv, tmp_path, capsys):
    model_dir = tmp_path / "run"
    params_file = write_params(tmp_path / "p.yaml", tiny_params(ner_csv, model_dir, runconfig={"max_steps": 2}))
    holder = WriterLock(model_dir).acquire()
    try:
        rc, errors, _ = run_main(train_argv(params_file), capsys)
        assert rc == 2 and len(errors) == 1, errors
        assert f"PID {os.getpid()} on host {socket.gethostname()}, started " in errors[0]
        assert [path.name for path in model_dir.iterdir()] == [LOCK_FILE]  # the refused run wrote nothing
    finally:
        holder.release()
    assert main(train_argv(params_file)) == 0
    assert not (model_dir / LOCK_FILE).exists()  # a finished run leaves no lock file behind


def test_evaluation_reads_the_newest_checkpoint_beside_a_trainer(trained, capsys):
    holder = WriterLock(trained["model_dir"]).acquire()
    try:
        rc, errors, _ = run_main(["CPU", "--mode", "eval", "--params", str(trained["params_file"])], capsys)
    finally:
        holder.release()
    assert rc == 0 and errors == []
    assert (trained["model_dir"] / "eval" / "metrics_step_4.json").is_file()


class _Rank:
    """The part of DistContext the lock uses, for one rank of a run whose main rank says ``main_says``."""

    def __init__(self, is_main: bool, main_says=None) -> None:
        self.is_main, self.main_says, self.lines = is_main, main_says, []

    def gather_objects(self, value):
        return [value if self.is_main else self.main_says, None]

    def say(self, line: str) -> None:
        self.lines.append(line)


def test_every_rank_raises_the_main_ranks_refusal(tmp_path):
    holder = WriterLock(tmp_path).acquire()
    try:
        with pytest.raises(ModelDirLockedError) as main_refusal:
            take_model_dir(tmp_path, _Rank(is_main=True), None)
    finally:
        holder.release()
    refusal = (ModelDirLockedError, str(main_refusal.value))
    with pytest.raises(ModelDirLockedError) as other_refusal:
        take_model_dir(tmp_path, _Rank(is_main=False, main_says=refusal), None)
    assert str(other_refusal.value) == str(main_refusal.value)
    assert take_model_dir(tmp_path, _Rank(is_main=False), None) is None  # no refusal: the other ranks go on


def test_a_killed_holder_frees_the_model_dir(tmp_path):
    code = f"from modelzoo.checkpoint.lock import WriterLock; import time; lock = WriterLock({str(tmp_path)!r}).acquire(); "
    code += "print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ModelDirLockedError, match=f"PID {holder.pid} "):
            WriterLock(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    WriterLock(tmp_path).acquire().release()


# --- 2. a resume with changed params ---------------------------------------------------------------


def test_a_resume_that_changes_the_run_is_refused_with_the_diff(trained, tmp_path, capsys):
    changed = dict(trained["params"])
    changed["train_input"] = {**changed["train_input"], "batch_size": 4, "shuffle_seed": 7}
    changed["optimizer"] = {**changed["optimizer"], "learning_rate": 1.0e-3}
    changed["runconfig"] = {**changed["runconfig"], "max_steps": 6}
    params_file = write_params(tmp_path / "changed.yaml", changed)
    rc, errors, _ = run_main(train_argv(params_file), capsys)
    assert rc == 2 and len(errors) == 1, errors
    for diff in ("train_input.batch_size: 8 -> 4", "train_input.shuffle_seed: 3 -> 7", "optimizer.learning_rate: 0.003 -> 0.001"):
        assert diff in errors[0]
    assert "--allow_changed_params" in errors[0] and "max_steps" not in errors[0]
    assert [step for step, _ in list_checkpoints(trained["model_dir"])] == [2, 4]
    rc, errors, out = run_main(train_argv(params_file, "--allow_changed_params"), capsys)
    assert rc == 0 and errors == []
    assert "(allowed by --allow_changed_params): train_input.batch_size: 8 -> 4" in out
    assert [step for step, _ in list_checkpoints(trained["model_dir"])][-1] == 6


def test_a_harmless_change_is_listed_and_the_run_resumes(trained, tmp_path, capsys):
    changed = dict(trained["params"])
    changed["runconfig"] = {**changed["runconfig"], "max_steps": 6, "log_steps": 1, "keep_checkpoint_max": 3}
    rc, errors, out = run_main(train_argv(write_params(tmp_path / "longer.yaml", changed)), capsys)
    assert rc == 0 and errors == []
    assert "(harmless): runconfig.max_steps: 4 -> 6; runconfig.log_steps: 5 -> 1; runconfig.keep_checkpoint_max" in out
    assert "resumed from" in out


def test_keys_not_named_harmless_count_as_changing_the_run():
    saved = {"runconfig": {"eval_steps": 1, "precision": "float32"}, "model": {"hidden_size": 32}}
    new = {"runconfig": {"eval_steps": 2, "precision": "bfloat16", "new_key": 1}, "model": {"hidden_size": 32}}
    changes = compare_params(saved, new)
    assert changes.harmless == ["runconfig.eval_steps: 1 -> 2"]
    assert changes.meaningful == ["runconfig.precision: 'float32' -> 'bfloat16'", "runconfig.new_key: None -> 1"]


# --- 3. and 5. params that cannot run as written ------------------------------------------------


def test_a_row_longer_than_the_position_table_is_one_line_naming_both_keys(ner_csv, tmp_path):
    params = tiny_params(ner_csv, tmp_path / "run", model={"max_position_embeddings": 32})
    loaded = load_params(write_params(tmp_path / "p.yaml", params))
    for mode, section in (("train", "train_input"), ("eval", "eval_input"), ("predict", "eval_input")):
        with pytest.raises(ParamsError) as refusal:
            loaded.check_mode(mode)
        assert str(refusal.value).startswith(f"{section}.max_sequence_length (48) is above model.max_position_embeddings (32)")


@pytest.mark.parametrize(
    ("max_steps", "schedule", "message"),
    [
        (20, WARMUP_THEN_DECAY, "the phases' total_iters sum to 15 but runconfig.max_steps is 20"),
        (12, WARMUP_THEN_DECAY, "the phases' total_iters sum to 15 but runconfig.max_steps is 12"),
        (4, [WARMUP_THEN_DECAY[0], {"scheduler": "Constant", "learning_rate": 1.0e-3}],
         "the phases before the last take 5 steps but runconfig.max_steps is 4"),
    ],
)
def test_a_schedule_that_does_not_span_the_run_is_refused(ner_csv, tmp_path, max_steps, schedule, message):
    params = tiny_params(ner_csv, tmp_path / "run", optimizer={"learning_rate": schedule}, runconfig={"max_steps": max_steps})
    with pytest.raises(ParamsError, match=message):
        load_params(write_params(tmp_path / "p.yaml", params)).check_mode("train")


def test_a_schedule_spanning_the_run_or_open_at_the_end_is_accepted(ner_csv, tmp_path):
    open_end = [WARMUP_THEN_DECAY[0], {"scheduler": "Constant", "learning_rate": 1.0e-3}]
    for max_steps, schedule in ((15, WARMUP_THEN_DECAY), (5, open_end), (40, open_end)):
        params = tiny_params(ner_csv, tmp_path / "run", optimizer={"learning_rate": schedule}, runconfig={"max_steps": max_steps})
        load_params(write_params(tmp_path / "p.yaml", params)).check_mode("train")


def test_an_epoch_run_checks_the_schedule_against_its_steps(ner_csv, tmp_path, capsys):
    params = tiny_params(
        ner_csv, tmp_path / "run", optimizer={"learning_rate": WARMUP_THEN_DECAY}, runconfig={"max_steps": None, "num_epochs": 2}
    )
    rc, errors, _ = run_main(train_argv(write_params(tmp_path / "p.yaml", params)), capsys)
    assert rc == 2 and len(errors) == 1
    assert "the phases' total_iters sum to 15 but the run (2 epochs of " in errors[0]


# --- 7. partial, foreign and unwritable -------------------------------------------------------------


def test_a_partial_checkpoint_is_removed_at_the_next_start_and_never_loaded(trained, capsys):
    partial = trained["model_dir"] / ".checkpoint_9.mdl.tmp-k1ll3d"  # a newer step than any complete one
    partial.write_bytes(b"PK\x03\x04 half a checkpoint")
    rc, errors, out = run_main(train_argv(trained["params_file"], "--max_steps", "6"), capsys)
    assert rc == 0 and errors == []
    assert f"removed {partial}" in out and "resumed from" in out and "checkpoint_4.mdl (step 4)" in out
    assert not partial.exists()


def test_a_file_that_is_not_a_safe_checkpoint_says_so(trained, tmp_path, capsys):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    model_dir = trained["model_dir"]
    torch.save({"model": Payload()}, tmp_path / "torch_payload.mdl")
    cases = (
        ("checkpoint_7.mdl", (tmp_path / "torch_payload.mdl").read_bytes(), "Python objects besides tensors"),
        ("checkpoint_8.mdl", pickle.dumps(Payload()), "not a file written by torch.save"),
        ("checkpoint_9.mdl", os.urandom(3000), "not a file written by torch.save"),
    )
    for name, content, reason in cases:
        (model_dir / name).write_bytes(content)
        rc, errors, _ = run_main(["CPU", "--mode", "eval", "--params", str(trained["params_file"])], capsys)
        assert rc == 2 and len(errors) == 1, errors
        assert f"{model_dir / name}: not a checkpoint this project can load safely" in errors[0] and reason in errors[0]
        assert "weights_only" not in errors[0]
    assert not marker.exists()


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a read-only place (/sys)")
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_a_model_dir_that_cannot_be_written_is_one_line(trained, tmp_path, capsys, mode):
    (tmp_path / "a_file").write_text("")
    for model_dir, reason in ((Path("/sys/model_dir"), "not writable ("), (tmp_path / "a_file" / "run", "is a file")):
        extra = ["--checkpoint_path", str(trained["model_dir"] / "checkpoint_4.mdl")] if mode == "eval" else []
        argv = ["CPU", "--mode", mode, "--params", str(trained["params_file"]), "--model_dir", str(model_dir), *extra]
        rc, errors, _ = run_main(argv, capsys)
        assert rc == 2 and len(errors) == 1, errors
        assert str(model_dir) in errors[0] and reason in errors[0]


class _DiskWithRoom(io.FileIO):
    """A file on a disk that has ``room`` bytes left: a write beyond them fails as a full disk does."""

    room = 0

    def write(self, data) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def fill_the_disk(monkeypatch, room: int) -> None:
    """Binary files written from now on (checkpoints, the best checkpoint's copy) find ``room`` bytes free."""
    real_fdopen = os.fdopen

    def fdopen(descriptor, mode="r", *args, **kwargs):
        if mode != "wb":
            return real_fdopen(descriptor, mode, *args, **kwargs)
        disk = _DiskWithRoom(descriptor, "wb")
        disk.room = room
        return io.BufferedWriter(disk)

    monkeypatch.setattr(os, "fdopen", fdopen)


def test_a_full_disk_during_a_checkpoint_save_is_one_line_and_leaves_no_partial_file(ner_csv, tmp_path, capsys, monkeypatch):
    model_dir = tmp_path / "run"
    params_file = write_params(tmp_path / "p.yaml", tiny_params(ner_csv, model_dir, runconfig={"max_steps": 2}))
    fill_the_disk(monkeypatch, room=4096)  # torch.save's zip writer reports the failed write as a RuntimeError
    rc, errors, _ = run_main(train_argv(params_file), capsys)
    assert rc == 2 and len(errors) == 1, errors
    assert errors[0].startswith(f"error: {model_dir / 'checkpoint_2.mdl'}: no space left on device (")
    assert list_checkpoints(model_dir) == [] and [path for path in model_dir.iterdir() if is_temporary(path)] == []


def test_a_full_disk_during_the_best_checkpoints_copy_keeps_the_previous_pair(tmp_path, monkeypatch):
    for step in (1, 2):
        (tmp_path / f"checkpoint_{step}.mdl").write_bytes(bytes(1000 * step))
    tracker = BestCheckpoint(tmp_path, BestRule("f1", True))
    tracker.add(1, {"f1": 0.5}, save=lambda: None)
    pair = ((tmp_path / BEST_CHECKPOINT_FILE).read_bytes(), (tmp_path / BEST_RECORD_FILE).read_text())
    fill_the_disk(monkeypatch, room=1500)
    with pytest.raises(DiskFullError) as refusal:
        tracker.add(2, {"f1": 0.8}, save=lambda: None)
    assert str(refusal.value).startswith(f"{tmp_path / BEST_CHECKPOINT_FILE}: no space left on device (")
    assert ((tmp_path / BEST_CHECKPOINT_FILE).read_bytes(), (tmp_path / BEST_RECORD_FILE).read_text()) == pair
    assert [path for path in tmp_path.iterdir() if is_temporary(path)] == []
