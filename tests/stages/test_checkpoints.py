"""Resuming after a kill or a full disk: which checkpoint counts, what the logs hold, and the error a person sees.

One uninterrupted stage=memory run of 2 steps (a checkpoint at each) is built once; each test copies its run dir,
leaves in it what a kill (or a full disk) would leave, and launches the same run again with run.dir: one step.
"""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from tests.support.runs import launch, only_run_dir

MARKER = "checkpoint_complete.json"  # rova.training.checkpoints.COMPLETE_MARKER, written last in a checkpoint
# Every sample fails (threshold 0.99) and every generation batch replays from memory once it holds an entry, so
# the batch of step 2 depends on the memory that step 1 left.
COMMON = ("stage=memory", "data.demo_num_clips=8", "logger=none", "stage.max_steps=2", "stage.save_steps=1",
          "memory.fail_threshold=0.99", "memory.replay_frac=1.0")


@pytest.fixture(scope="module")
def straight(tmp_path_factory, cache_dir) -> Path:
    """The uninterrupted run: checkpoint-1, checkpoint-2, model/ after step 2."""
    tmp = tmp_path_factory.mktemp("straight")
    proc = launch(tmp, cache_dir, *COMMON)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return only_run_dir(tmp / "outputs")


def killed_copy(straight: Path, tmp_path: Path) -> Path:
    """The run dir as a kill during step 2's checkpoint leaves it: no model/, no summary.json."""
    run_dir = tmp_path / "killed"
    shutil.copytree(straight, run_dir)
    shutil.rmtree(run_dir / "model")
    (run_dir / "summary.json").unlink()
    return run_dir


def relaunch(tmp_path: Path, cache_dir: Path, run_dir: Path, *extra: str):
    return launch(tmp_path, cache_dir, *COMMON, f"run.dir={run_dir}", *extra)


def steps_of(path: Path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


def train_steps(run_dir: Path) -> list[int]:
    return [m["step"] for m in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
            if "loss" in m and "train_loss" not in m]


def assert_same_as_straight(run_dir: Path, straight: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 2 and summary["resumed_from"].endswith("checkpoint-1"), summary
    assert json.loads((run_dir / "memory.json").read_text()) == json.loads((straight / "memory.json").read_text())
    expected, got = load_file(str(straight / "model" / "model.safetensors")), load_file(
        str(run_dir / "model" / "model.safetensors"))
    assert [k for k in expected if not (expected[k] == got[k]).all()] == [], "weights differ from the straight run"


# --------------------------------------------------------------------------------------- defect 3: complete checkpoints
def test_a_checkpoint_killed_before_memory_json_is_skipped_with_a_warning(straight, tmp_path, cache_dir):
    """Killed after trainer_state.json, before memory.json: the relaunch resumes from checkpoint-1 (4 of 4
    relaunches failed "checkpoint-2 has no memory.json")."""
    run_dir = killed_copy(straight, tmp_path)
    half = run_dir / "checkpoints" / "checkpoint-2"
    (half / "memory.json").unlink()
    (half / MARKER).unlink(missing_ok=True)
    proc = relaunch(tmp_path, cache_dir, run_dir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    warned = [line for line in (proc.stdout + proc.stderr).splitlines() if str(half) in line and "incomplete" in line]
    assert warned, (proc.stdout + proc.stderr)[-3000:]
    assert_same_as_straight(run_dir, straight)


def test_a_truncated_trainer_state_is_skipped_not_a_traceback(straight, tmp_path, cache_dir):
    """A disk that filled while trainer_state.json was written leaves it cut short: every relaunch crashed with a
    JSONDecodeError traceback."""
    run_dir = killed_copy(straight, tmp_path)
    half = run_dir / "checkpoints" / "checkpoint-2"
    state = (half / "trainer_state.json").read_bytes()
    (half / "trainer_state.json").write_bytes(state[: len(state) // 2])
    (half / MARKER).unlink(missing_ok=True)
    proc = relaunch(tmp_path, cache_dir, run_dir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and f"{half}" in proc.stdout + proc.stderr
    assert_same_as_straight(run_dir, straight)


# ------------------------------------------------------------------------------------ defect 8: logs and exact resume
def test_resumed_logs_hold_each_step_once(straight, tmp_path, cache_dir):
    """Killed before checkpoint-2 was written: the relaunch trains step 2 again; rollouts.jsonl and metrics.jsonl
    are cut back to checkpoint-1 first (rollouts.jsonl was never cut: a repeated step)."""
    run_dir = killed_copy(straight, tmp_path)
    shutil.rmtree(run_dir / "checkpoints" / "checkpoint-2")
    proc = relaunch(tmp_path, cache_dir, run_dir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert train_steps(run_dir) == [1, 2]
    # a rollout's "step" is the global step it was generated at: 0 for the first training step
    assert steps_of(run_dir / "rollouts.jsonl") == steps_of(straight / "rollouts.jsonl") == [0, 1]


def test_a_run_killed_before_its_first_checkpoint_starts_its_logs_afresh(straight, tmp_path, cache_dir):
    """No checkpoint to resume: the relaunch starts from step 0, so the old lines go (metrics.jsonl read [1, 1, 2])."""
    run_dir = killed_copy(straight, tmp_path)
    shutil.rmtree(run_dir / "checkpoints")
    proc = relaunch(tmp_path, cache_dir, run_dir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert train_steps(run_dir) == [1, 2]
    assert steps_of(run_dir / "rollouts.jsonl") == [0, 1]


def test_memory_resumed_from_checkpoint_1_trains_the_same_step_2(straight, tmp_path, cache_dir):
    """The step-2 batch, the memory and the weights equal the uninterrupted run's (the resumed run chose step 2's
    replays from the memory after step 1; the uninterrupted run from the memory before it)."""
    run_dir = killed_copy(straight, tmp_path)
    shutil.rmtree(run_dir / "checkpoints" / "checkpoint-2")
    proc = relaunch(tmp_path, cache_dir, run_dir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    def batches(path):
        return [(r["step"], r["sample_id"], r["replayed"]) for r in map(json.loads, path.read_text().splitlines())]

    assert batches(run_dir / "rollouts.jsonl")[-1] == batches(straight / "rollouts.jsonl")[-1]
    assert_same_as_straight(run_dir, straight)


# ------------------------------------------------------------------------------------------------- defect 4: full disk
@pytest.mark.parametrize("failure", ["oserror", "torch", "log"])
def test_a_full_disk_is_one_line_naming_the_path_and_the_last_checkpoint(straight, tmp_path, cache_dir, monkeypatch,
                                                                         failure):
    """Step 2 meets a full disk (simulated) in its checkpoint (torch.save: an OSError, or torch's RuntimeError that
    never says "disk") or in a log line: one line naming the path, the full device and checkpoint-1; exit 1 (was
    a traceback, e.g. torch's "unexpected pos 13120 vs 13012"). On a real full disk: tests/stages/test_disk_full.py."""
    import os

    import torch

    import rova.training.trainer as trainer_module

    run_dir = killed_copy(straight, tmp_path)
    shutil.rmtree(run_dir / "checkpoints" / "checkpoint-2")
    real_save, real_fsync, real_append = torch.save, os.fsync, trainer_module.append_jsonl
    full = []

    def full_disk_save(obj, f, *args, **kwargs):
        if "checkpoint-2" in str(f):
            full.append(str(f))
            if failure == "oserror":
                raise OSError(errno.ENOSPC, "No space left on device", str(f))
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 13120 vs 13012")
        return real_save(obj, f, *args, **kwargs)

    def full_disk_append(path, obj):
        if obj["step"] == 1:  # the rollout of step 2
            full.append(str(path))
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_append(path, obj)

    def fsync(fd):  # once the disk is full, nothing more reaches it (rova probes the disk after torch's error)
        if full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    if failure == "log":
        monkeypatch.setattr(trainer_module, "append_jsonl", full_disk_append)
    else:
        monkeypatch.setattr(torch, "save", full_disk_save)
    monkeypatch.setattr(os, "fsync", fsync)
    proc = relaunch(tmp_path, cache_dir, run_dir)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    line = errors[0]
    where = run_dir / ("rollouts.jsonl" if failure == "log" else "checkpoints/checkpoint-2")
    assert "no space left on device" in line.lower() and str(where) in line, line
    assert f"the last complete checkpoint is {run_dir / 'checkpoints' / 'checkpoint-1'}:" in line, line
