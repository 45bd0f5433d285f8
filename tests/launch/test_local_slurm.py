"""Real-SLURM tests: an sbatch job array and a submitit map_array on the local single-node cluster.

Run with ``uv run pytest -m slow tests/launch/test_local_slurm.py -q``. The ``local_slurm`` fixture installs
and starts the cluster (scripts/local_slurm.sh) or skips -- and fails under CI=true -- when it cannot.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.local_slurm import LocalSlurm, local_slurm  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slow]

JOB_DEADLINE_S = 180  # each test's own bound on waiting for jobs; pytest-timeout is the outer guard


def _wait_for(predicate, timeout: float, poll_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()


@pytest.mark.timeout(300)
def test_sbatch_array_of_four_tasks_all_land(local_slurm: LocalSlurm, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "task.sh"
    # Each task records when it started and ended; the file is written atomically (tmp + mv).
    script.write_text(
        "#!/bin/bash\n"
        "set -euo pipefail\n"
        "start=$(date +%s.%N)\n"
        "sleep 4\n"
        f'f="{out}/task_${{SLURM_ARRAY_TASK_ID}}.txt"\n'
        'echo "$SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID $start $(date +%s.%N)" > "$f.tmp"\n'
        'mv "$f.tmp" "$f"\n'
    )
    job_id = local_slurm.sbatch(
        "--array=0-3",
        "--job-name=rova-array-test",
        f"--partition={local_slurm.partition}",
        "--cpus-per-task=1",
        "--time=5",
        f"--output={tmp_path}/%A_%a.log",
        str(script),
    )
    assert job_id.isdigit(), job_id

    expected = [out / f"task_{i}.txt" for i in range(4)]
    landed = _wait_for(lambda: all(p.exists() for p in expected), JOB_DEADLINE_S)
    logs = "\n".join(f"{p.name}: {p.read_text()}" for p in sorted(tmp_path.glob("*.log")))
    assert landed, (
        f"array {job_id}: only {sorted(p.name for p in out.iterdir())} landed in {JOB_DEADLINE_S}s\n"
        f"{logs}\n{local_slurm.diagnostics()}"
    )
    local_slurm.wait_until_gone(job_id, timeout=60)

    rows = [p.read_text().split() for p in expected]
    assert [r[0] for r in rows] == [job_id] * 4
    assert [int(r[1]) for r in rows] == [0, 1, 2, 3]
    # The node advertises >= 4 CPUs (see slurm.conf), so the 4 one-CPU tasks must overlap in time,
    # even on a 2-core machine: at least 3 of them ran at once.
    spans = [(float(r[2]), float(r[3])) for r in rows]
    most_concurrent = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert most_concurrent >= 3, f"array tasks did not run in parallel: {spans}"


@pytest.mark.timeout(300)
def test_submitit_map_array_results_come_back(local_slurm: LocalSlurm, tmp_path: Path) -> None:  # noqa: F811
    submitit = pytest.importorskip("submitit")

    def square(x: int) -> dict:
        # Defined inside the test so cloudpickle ships it by value (the test module is not
        # importable from the job's python process).
        return {
            "x": x,
            "square": x * x,
            "array_job": os.environ.get("SLURM_ARRAY_JOB_ID"),
            "task": os.environ.get("SLURM_ARRAY_TASK_ID"),
        }

    executor = submitit.AutoExecutor(folder=tmp_path / "submitit" / "%j")
    assert executor.cluster == "slurm", "srun not on PATH? submitit did not pick the slurm executor"
    executor.update_parameters(
        name="rova-submitit-test",
        timeout_min=5,
        slurm_partition=local_slurm.partition,
        cpus_per_task=1,
        mem_gb=1,
        slurm_array_parallelism=2,
    )
    inputs = [2, 3, 4]
    jobs = executor.map_array(square, inputs)
    assert len(jobs) == 3
    array_ids = {j.job_id.split("_")[0] for j in jobs}
    assert len(array_ids) == 1, f"map_array should submit ONE job array, got {[j.job_id for j in jobs]}"
    submissions = sorted((tmp_path / "submitit").rglob("*_submission.sh"))
    assert submissions, f"no submission script under {tmp_path / 'submitit'}"
    sbatch_script = submissions[0].read_text()
    assert "#SBATCH --array=0-2%2" in sbatch_script, sbatch_script  # slurm_array_parallelism=2

    # Without accounting storage sacct fails, submitit logs "Bypassing sacct error" and reports state
    # UNKNOWN; job.done() still turns True once the result pickle lands. Bound the wait ourselves:
    # job.result() alone would block forever if a task died without a pickle.
    finished = _wait_for(lambda: all(j.done() for j in jobs), JOB_DEADLINE_S, poll_s=1)
    if not finished:
        details = "\n".join(f"{j.job_id}: stdout={j.stdout()!r} stderr={j.stderr()!r}" for j in jobs)
        pytest.fail(f"submitit jobs not done in {JOB_DEADLINE_S}s:\n{details}\n{local_slurm.diagnostics()}")

    results = [j.result() for j in jobs]
    assert [r["square"] for r in results] == [4, 9, 16]
    assert [r["x"] for r in results] == inputs
    assert {r["array_job"] for r in results} == array_ids
    assert sorted(r["task"] for r in results) == ["0", "1", "2"]
    local_slurm.wait_until_gone(next(iter(array_ids)), timeout=60)
