"""Slow tier: the demo recipe end to end (tiny steps), its relaunch, and the recipe on the local SLURM."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.runs import launch

pytestmark = pytest.mark.slow

# The demo recipe, small: 2 SFT steps, 1 T-GRPO step, 4 benchmark items, one corruption cell.
SMALL = ["experiment=demo_recipe", "sft:stage.max_steps=2", "tgrpo:stage.max_steps=1", "benchmark.max_items=4",
         "eval.corruptions=[fog]", "eval.severities=[5]", "eval.max_new_tokens=16", "data.demo_num_clips=8"]
STEPS = ("sft", "tgrpo", "eval_base", "eval_sft", "eval_trained")
DONE = {"sft": "summary.json", "tgrpo": "summary.json", "eval_base": "results.json", "eval_sft": "results.json",
        "eval_trained": "results.json"}


def parent_of(root: Path) -> Path:
    (recipe,) = list(root.rglob("recipe.json"))
    return recipe.parent


def test_demo_recipe_runs_every_step_and_a_relaunch_skips_finished_ones(tmp_path, cache_dir):
    proc = launch(tmp_path, cache_dir, *SMALL, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    parent = parent_of(tmp_path / "outputs")
    for step in STEPS:
        assert (parent / step / DONE[step]).exists(), step
    tgrpo = (parent / "tgrpo" / "resolved.yaml").read_text()
    assert f"path: {parent / 'sft' / 'model'}" in tgrpo  # T-GRPO started from the SFT model
    results = json.loads((parent / "eval_trained" / "results.json").read_text())
    assert results["config"]["model"] == str(parent / "tgrpo" / "model")
    report = (parent / "report.md").read_text()
    for step in STEPS:
        assert f"| {step} |" in report
    assert "| eval_trained |" in report.split("baseline: eval_base")[1]
    assert (parent / "compare.md").exists() and (parent / "deltas.json").exists()
    assert proc.stdout.strip().splitlines()[-1] == f"[rova] recipe report: {parent / 'report.md'}"

    # Relaunch into the same parent: nothing runs again; then only the step whose output is gone.
    stamps = {step: (parent / step / DONE[step]).stat().st_mtime_ns for step in STEPS}
    again = launch(tmp_path, cache_dir, *SMALL, f"run.dir={parent}", timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert again.stdout.count("finished, skipped") == len(STEPS)
    assert "recipe step" not in again.stdout
    (parent / "eval_trained" / "results.json").unlink()
    third = launch(tmp_path, cache_dir, *SMALL, f"run.dir={parent}", timeout=900)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert [line.split()[3] for line in third.stdout.splitlines() if line.startswith("[rova] recipe step")] == [
        "eval_trained"]
    for step in STEPS[:-1]:
        assert (parent / step / DONE[step]).stat().st_mtime_ns == stamps[step], step
    launches = json.loads((parent / "recipe.json").read_text())["launches"]
    assert [entry["skipped"] for entry in launches] == [[], list(STEPS), list(STEPS[:-1])]


def test_recipe_on_slurm_is_one_job_per_step_chained_by_afterok(tmp_path, cache_dir, local_slurm):
    proc = launch(tmp_path, cache_dir, *SMALL, "cluster=slurm", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    parent = parent_of(tmp_path / "outputs")
    jobs = {step: json.loads((parent / step / "slurm_job.json").read_text())["job_id"] for step in STEPS}
    assert len(set(jobs.values())) == len(STEPS)
    queue = subprocess.run(["squeue", "-h", "-o", "%i %E"], capture_output=True, text=True).stdout
    deps = dict(line.split(" ", 1) if " " in line else (line, "") for line in queue.strip().splitlines())
    # Submitted at once: the steps that read another step wait on it (until it has run).
    for step, reads in {"tgrpo": "sft", "eval_sft": "sft", "eval_trained": "tgrpo"}.items():
        if jobs[step] in deps and jobs[reads] in deps:
            assert f"afterok:{jobs[reads]}" in deps[jobs[step]], (step, deps)
    assert jobs["tgrpo"] in deps, "T-GRPO ran before it was seen waiting; it must wait for SFT"
    deadline = time.monotonic() + 1500
    while not (parent / "report.md").exists():
        assert time.monotonic() < deadline, "the recipe's report job did not run"
        time.sleep(2)
    for step in STEPS:
        assert (parent / step / DONE[step]).exists(), step
    assert "| eval_trained |" in (parent / "report.md").read_text()
