"""SlurmRun.checkpoint, the preemption path, without a cluster: submitit calls it from the signal handler while
the task is blocked in `wait()` on its workers (rova.launch.slurm); and waiting on a job of several tasks."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time

from rova.launch.slurm import PREEMPT_FLAG, SlurmRun, child_exited

# A worker as rova.worker behaves under preemption: it stops once the PREEMPT flag appears.
WORKER = "import pathlib, sys, time\nflag = pathlib.Path(sys.argv[1])\nwhile not flag.exists(): time.sleep(0.02)\n"


def test_checkpoint_from_the_signal_handler_returns_once_the_workers_stop(tmp_path, caplog):
    """It waited out the whole grace period (105 s of SLURM's 120) on every preemption: `poll()` inside the
    handler cannot take the lock the interrupted `wait()` holds, so it always said "still running"."""
    run = SlurmRun(str(tmp_path), signal_delay_s=25)  # waits at most 10 s for the workers
    run._child = subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / PREEMPT_FLAG)])
    seen = {}

    def preempted(signum, frame):  # what submitit's USR2 handler does
        start = time.monotonic()
        seen["submission"] = run.checkpoint()
        seen["waited"] = time.monotonic() - start

    previous = signal.signal(signal.SIGALRM, preempted)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with caplog.at_level(logging.WARNING, logger="rova.launch.slurm"):
            code = run._child.wait()  # where SlurmRun._run is when the signal arrives
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert code == 0, "the exit status is left for wait()"
    assert "did not stop" not in caplog.text
    assert seen["waited"] < 10, seen  # returned when the worker stopped, not at the deadline
    fresh = seen["submission"].function
    assert isinstance(fresh, SlurmRun) and fresh.run_dir == run.run_dir and fresh is not run


def test_a_worker_that_ignores_the_flag_is_named_when_the_wait_ends(tmp_path, caplog, monkeypatch):
    import rova.launch.slurm as slurm

    monkeypatch.setattr(slurm, "MIN_STOP_WAIT_S", 1)
    run = SlurmRun(str(tmp_path), signal_delay_s=0)  # the floor, 1 s here
    run._child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with caplog.at_level(logging.WARNING, logger="rova.launch.slurm"):
            run.checkpoint()
        assert "did not stop within 1 s" in caplog.text and str(tmp_path) in caplog.text
        assert not child_exited(run._child)
    finally:
        run._child.kill()
        run._child.wait()
    assert child_exited(run._child)


def test_waiting_on_a_multi_node_job_reads_every_tasks_result(tmp_path):
    """A job of cluster.nodes=2 has one task per node, and submitit's `job.result()` refuses such a job ("You
    should use `results()` if your job has subtasks"): `cluster.wait=true` reported every finished multi-node run
    as FAILED. A real submitit job of two tasks (submitit's local executor: one task per process)."""
    import submitit

    from rova.launch.slurm import wait_for

    executor = submitit.LocalExecutor(folder=str(tmp_path / "jobs"))
    executor.update_parameters(tasks_per_node=2, timeout_min=2)
    job = executor.submit(abs, -3)
    assert wait_for([job], [tmp_path], poll_s=0.2) == 0
    assert job.results() == [3, 3]
