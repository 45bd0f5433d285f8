"""A run dir is never corrupted, relabelled or shared (issue 22, defects 1, 2 and 9c).

A relaunch with settings that shape the results differently is refused before anything runs, naming the first
key with its old and new value; the provenance is appended to, never overwritten; a folder that is not a rova run
dir is refused; a run dir in use is refused naming its holder, and a killed holder blocks nothing; a launch that
fails before the stage wrote anything leaves no run dir behind. Most cases prepare the first run dir the way the
launcher does (rova.launch.dispatch.prepare_run_dirs) instead of running a stage: the refusals happen before any
stage would run, so the tests stay in the fast tier.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.runs import REPO, launch

EVAL = ("stage=eval", "benchmark.demo_num_clips=2", "eval.max_new_tokens=4", "logger=none")


def _typed(tmp_path: Path, cache_dir: Path, *overrides: str):
    from rova.config.compose import compose, validate_typed
    from rova.config.paths import absolutize

    base = [f"run.cache_dir={cache_dir}", f"run.output_root={tmp_path / 'outputs'}"]
    typed = validate_typed(compose([*base, *overrides]))
    return absolutize(typed, tmp_path)


def _prepare(tmp_path: Path, cache_dir: Path, run_dir: Path, *overrides: str) -> Path:
    """The run dir a launch with `overrides` writes before its stage starts (resolved.yaml, provenance)."""
    from rova.launch.dispatch import prepare_run_dirs

    overrides = (*overrides, f"run.dir={run_dir}")
    (made,) = prepare_run_dirs([list(overrides)], [_typed(tmp_path, cache_dir, *overrides)], now=dt.datetime.now(),
                               multirun=False)
    return made


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file() and p.name != "run.lock"}


def _error_line(proc) -> str:
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr[-3000:] + proc.stdout[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory, cache_dir) -> Path:
    tmp = tmp_path_factory.mktemp("evalrun")
    proc = launch(tmp, cache_dir, *EVAL, f"run.dir={tmp / 'D'}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp / "D"


def test_a_finished_eval_relaunched_with_another_model_is_refused_and_left_as_it_was(eval_run, tmp_path, cache_dir):
    before = _snapshot(eval_run)
    other = tmp_path / "B"
    proc = launch(tmp_path, cache_dir, *EVAL, f"model.path={other}", f"run.dir={eval_run}")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    line = _error_line(proc)
    assert line.startswith("config error: model.path: ") and str(other) in line and "tiny-qwen2_5_vl" in line, line
    assert _snapshot(eval_run) == before, "a refused relaunch changed the run dir"
    results = json.loads((eval_run / "results.json").read_text())
    assert results["config"]["model"] != str(other)


def test_a_relaunch_that_changes_only_free_keys_runs_and_appends_its_record(eval_run, tmp_path, cache_dir):
    meta = (eval_run / "meta.json").read_bytes()
    launches = (eval_run / "launches.jsonl").read_text().splitlines()
    proc = launch(tmp_path, cache_dir, *EVAL, "eval.batch_size=1", f"run.dir={eval_run}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (eval_run / "meta.json").read_bytes() == meta, "meta.json is the first launch's record, never rewritten"
    again = (eval_run / "launches.jsonl").read_text().splitlines()
    assert again[: len(launches)] == launches and len(again) == len(launches) + 1
    last = json.loads(again[-1])
    assert "eval.batch_size=1" in last["overrides"] and last["fingerprint"] == json.loads(launches[0])["fingerprint"]
    assert {"time", "host", "pid", "git_sha", "command"} <= set(last)


@pytest.mark.parametrize(("first", "relaunch", "key", "old", "new"), [
    (EVAL, ("eval.seed=7",), "eval.seed", "0", "7"),
    (("stage=cot", "cot.min_score=0"), ("cot.min_score=1.0",), "cot.min_score", "0.0", "1.0"),
    (("stage=tgrpo",), ("stage.max_steps=8", "stage.learning_rate=5e-4"), "stage.max_steps", "4", "8"),
    (("stage=tgrpo",), ("stage.max_steps=8", "stage.learning_rate=5e-4", "run.extend=true"),
     "stage.learning_rate", "1e-05", "0.0005"),
], ids=["eval-seed", "cot-min-score", "tgrpo-steps-and-lr", "tgrpo-extend-still-checks-lr"])
def test_a_relaunch_with_other_settings_is_refused_naming_the_first_key(tmp_path, cache_dir, first, relaunch, key,
                                                                        old, new):
    run_dir = _prepare(tmp_path, cache_dir, tmp_path / "D", *first)
    before = _snapshot(run_dir)
    proc = launch(tmp_path, cache_dir, *first, *relaunch, f"run.dir={run_dir}")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    line = _error_line(proc)
    assert line.startswith(f"config error: {key}: ") and f"{key}={old}" in line and f"gives {new}" in line, line
    assert _snapshot(run_dir) == before


def test_run_extend_lets_max_steps_grow_and_records_it(tmp_path, cache_dir):
    from rova.errors import ConfigError

    run_dir = _prepare(tmp_path, cache_dir, tmp_path / "D", "stage=grpo", "stage.max_steps=2")
    _prepare(tmp_path, cache_dir, run_dir, "stage=grpo", "stage.max_steps=3", "run.extend=true")
    records = [json.loads(line) for line in (run_dir / "launches.jsonl").read_text().splitlines()]
    assert [r.get("extended") for r in records] == [None, {"stage.max_steps": [2, 3]}]
    assert "max_steps: 3" in (run_dir / "resolved.yaml").read_text()
    with pytest.raises(ConfigError) as err:  # it only grows
        _prepare(tmp_path, cache_dir, run_dir, "stage=grpo", "stage.max_steps=2", "run.extend=true")
    assert err.value.key == "stage.max_steps"


def test_a_folder_that_is_not_a_run_dir_is_refused_and_left_alone(tmp_path, cache_dir):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "meta.json").write_text('{"mine": true}\n')
    proc = launch(tmp_path, cache_dir, *EVAL, f"run.dir={folder}")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "not a rova run dir" in _error_line(proc)
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "notes.txt"]
    assert (folder / "meta.json").read_text() == '{"mine": true}\n'


def test_a_sweep_whose_runs_would_share_one_run_dir_is_refused(tmp_path, cache_dir):
    shared = tmp_path / "shared"
    proc = launch(tmp_path, cache_dir, "-m", *EVAL, "eval.seed=1,2", f"run.dir={shared}")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert _error_line(proc).startswith("config error: run.dir: ")
    assert not shared.exists()


def test_a_data_error_leaves_no_run_dir_behind(tmp_path, cache_dir):
    bad = tmp_path / "empty.json"
    bad.write_text("")
    proc = launch(tmp_path, cache_dir, "stage=cot", "logger=none", f"data.train_file={bad}", "data.build_demo=false")
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "annotation file is empty" in proc.stderr
    left = [p for p in (tmp_path / "outputs").rglob("*") if p.is_file()] if (tmp_path / "outputs").exists() else []
    assert not left, left


HOLD = """
import sys, time
from pathlib import Path
from rova.launch.rundir import RunDirLock
lock = RunDirLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(600)
"""


def _holder(run_dir: Path, **env) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    line = proc.stdout.readline()
    if line.strip() != "held":
        proc.kill()
        pytest.fail(f"the holder did not take the lock: {line!r} {proc.stderr.read()[-2000:]}")
    return proc


def test_a_second_launch_into_a_run_dir_in_use_is_refused_naming_the_holder_and_a_killed_holder_blocks_nothing(
        tmp_path, cache_dir):
    from rova.launch.rundir import RunDirLock

    run_dir = _prepare(tmp_path, cache_dir, tmp_path / "D", *EVAL)
    before = _snapshot(run_dir)
    holder = _holder(run_dir)
    try:
        proc = launch(tmp_path, cache_dir, *EVAL, f"run.dir={run_dir}")
        assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
        line = _error_line(proc)
        assert "in use by" in line and f"pid {holder.pid} " in line, line
        assert _snapshot(run_dir) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RunDirLock(run_dir):  # the kernel dropped the killed holder's lock
        pass


def test_a_requeued_slurm_task_is_not_refused_by_its_own_earlier_instance(tmp_path, monkeypatch):
    from rova.launch.rundir import RunDirBusy, task_lock

    run_dir = tmp_path / "D"
    run_dir.mkdir()
    # The earlier instance of job 123, on a node whose lock the filesystem has not dropped yet.
    holder = _holder(run_dir, SLURM_JOB_ID="123")
    try:
        monkeypatch.setenv("SLURM_JOB_ID", "123")
        assert task_lock(run_dir, shared=False, wait_s=0) is None  # runs without the lock
        monkeypatch.setenv("SLURM_JOB_ID", "456")
        with pytest.raises(RunDirBusy, match="SLURM job 123"):  # another job's holder is not ignored
            task_lock(run_dir, shared=False, wait_s=0)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock = task_lock(run_dir, shared=False, wait_s=0)
    assert lock is not None
    lock.release()
