"""Slow tier: launch.py against a real local SLURM (scripts/local_slurm.sh): single run, one job array for a
-m sweep, and a requeued job that resumes from its checkpoint."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from rova.training.checkpoints import COMPLETE_MARKER

from tests.support.runs import launch

pytestmark = pytest.mark.slow


def run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("resolved.yaml"))


def test_single_slurm_run(tmp_path, cache_dir, local_slurm):
    proc = launch(tmp_path, cache_dir, "cluster=slurm", "cluster.wait=true", "logger=none",
                  "data.demo_num_clips=8", "stage.max_steps=2", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "outputs")
    assert json.loads((run_dir / "summary.json").read_text())["global_step"] == 2
    assert "submitted" in proc.stdout


def test_multirun_sweep_is_one_job_array(tmp_path, cache_dir, local_slurm):
    proc = launch(tmp_path, cache_dir, "-m", "cluster=slurm", "cluster.wait=true", "cluster.array_parallelism=3",
                  "logger=none", "data.demo_num_clips=8", "stage.max_steps=2", "stage=tgrpo", "corruption=weather",
                  "corruption.p_weather=0.1,0.25,0.5", timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    dirs = run_dirs(tmp_path / "outputs")
    assert len(dirs) == 3
    job_ids = [json.loads((d / "slurm_job.json").read_text())["job_id"] for d in dirs]
    array_ids = {j.split("_")[0] for j in job_ids}
    assert len(array_ids) == 1, f"expected one array job, got {job_ids}"
    assert sorted(j.split("_")[1] for j in job_ids) == ["0", "1", "2"]
    weights = sorted(float(next(line.split(":")[1] for line in (d / "resolved.yaml").read_text().splitlines()
                                if line.strip().startswith("p_weather"))) for d in dirs)
    assert weights == [0.1, 0.25, 0.5]
    for d in dirs:
        assert json.loads((d / "summary.json").read_text())["global_step"] == 2


def test_requeued_job_resumes_from_its_checkpoint(tmp_path, cache_dir, local_slurm):
    proc = launch(tmp_path, cache_dir, "cluster=slurm", "logger=wandb", "data.demo_num_clips=8",
                  "stage.max_steps=10", "stage.save_steps=2", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "outputs")
    job_id = json.loads((run_dir / "slurm_job.json").read_text())["job_id"]
    deadline = time.monotonic() + 600
    while not (run_dir / "checkpoints" / "checkpoint-2" / COMPLETE_MARKER).exists():
        assert time.monotonic() < deadline, "no checkpoint before the deadline"
        time.sleep(0.5)
    assert not (run_dir / "summary.json").exists()
    wandb_id = (run_dir / "wandb_id.txt").read_text().strip()
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    deadline = time.monotonic() + 900
    while not (run_dir / "summary.json").exists():
        assert time.monotonic() < deadline, "the requeued job did not finish"
        time.sleep(1)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed_from"] is not None and summary["global_step"] == 10
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(line) and "train_loss" not in json.loads(line)]
    assert steps == list(range(1, 11)), steps
    assert (run_dir / "wandb_id.txt").read_text().strip() == wandb_id


def test_preemption_signal_checkpoints_and_requeues(tmp_path, cache_dir, local_slurm):
    # save_steps is past the end: the only checkpoint is the one the preemption signal asks for.
    proc = launch(tmp_path, cache_dir, "cluster=slurm", "logger=none", "data.demo_num_clips=8",
                  "stage.max_steps=12", "stage.save_steps=100", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "outputs")
    job_id = json.loads((run_dir / "slurm_job.json").read_text())["job_id"]
    deadline = time.monotonic() + 600
    while not any(json.loads(line).get("step", 0) >= 2 for line in _lines(run_dir / "metrics.jsonl")):
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.5)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)  # what SLURM sends before a timeout
    deadline = time.monotonic() + 900
    while not (run_dir / "summary.json").exists():
        assert time.monotonic() < deadline, "the preempted job did not requeue and finish"
        time.sleep(1)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed_from"] is not None, "the requeued job did not resume from the preemption checkpoint"
    assert summary["global_step"] == 12
    steps = [json.loads(line)["step"] for line in _lines(run_dir / "metrics.jsonl")
             if "loss" in json.loads(line) and "train_loss" not in json.loads(line)]
    assert steps == list(range(1, 13)), steps


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_eval_shards_are_one_job_array_merged_into_one_result(tmp_path, cache_dir, local_slurm):
    """stage=eval with eval.shards=2: one array of 2 tasks on one run dir; the last shard merges."""
    proc = launch(tmp_path, cache_dir, "stage=eval", "cluster=slurm", "cluster.wait=true", "eval.shards=2",
                  "benchmark.demo_num_clips=5", "eval.max_new_tokens=16", "eval.corruptions=[fog]",
                  "eval.severities=[2]", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "outputs")
    job = json.loads((run_dir / "slurm_job.json").read_text())
    assert len(job["job_ids"]) == 2 and len({j.split("_")[0] for j in job["job_ids"]}) == 1
    shards = sorted(run_dir.glob("predictions.shard*-of-2.jsonl"))
    items = [json.loads(line) for path in shards for line in path.read_text().splitlines()]
    assert len(shards) == 2 and len(items) == 5 * 2
    assert len({(p["cell"], p["item_id"]) for p in items}) == len(items)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["clean"]["n"] == 5 and results["grid"]["fog"]["2"]["n"] == 5
