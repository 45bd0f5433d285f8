"""SLURM through submitit (directly, not hydra-submitit-launcher).

Why submitit directly: the launcher composes and validates EVERY sweep point before anything is submitted,
creates each run dir itself, and submits a `-m` sweep as ONE job array. hydra-submitit-launcher composes
inside each job (after submission), so a bad value in one sweep point is found only once that job runs.

Each job runs `SlurmRun(run_dir)`: one task per node starts that node's workers (torchrun / DeepSpeed) with
the rendezvous on the first node. On the timeout/preemption signal, submitit calls `checkpoint()`: we ask
the workers to save and stop (a flag file they poll every step), wait for them, and requeue; the requeued
job resumes from the newest checkpoint in the same run dir with the same wandb run id.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import time
from pathlib import Path

from rova.config.schema import RootConfig
from rova.utils.io import atomic_write_json

log = logging.getLogger(__name__)

PREEMPT_FLAG = "PREEMPT"
# The least time checkpoint() gives the workers to save and stop (else the signal delay less 15 s).
MIN_STOP_WAIT_S = 10
REPO = Path(__file__).resolve().parents[2]


class SlurmRun:
    """The picklable callable a SLURM task runs: the workers of one run dir on this node."""

    def __init__(self, run_dir: str, signal_delay_s: int = 120, eval_shard: int | None = None):
        self.run_dir = str(run_dir)
        self.signal_delay_s = signal_delay_s
        self.eval_shard = eval_shard  # the array index of one of eval.shards tasks sharing one run dir
        self._child: subprocess.Popen | None = None

    def __call__(self) -> dict:
        from rova.launch.rundir import task_lock

        run_dir = Path(self.run_dir)
        # The job's first node holds the run dir while the workers run (shard tasks of one run dir share it); a
        # requeued task is not refused by its own earlier instance (rova.launch.rundir: the lock, requeue).
        first = os.environ.get("SLURM_NODEID", "0") == "0"
        lock = task_lock(run_dir, shared=self.eval_shard is not None) if first else None
        try:
            return self._run(run_dir)
        finally:
            if lock is not None:
                lock.release()

    def _run(self, run_dir: Path) -> dict:
        from rova.config.compose import from_resolved_file
        from rova.launch.rundir import RESOLVED
        from rova.launch.workers import worker_command
        from rova.utils.deepspeed_shm import remove_run_segments

        (run_dir / PREEMPT_FLAG).unlink(missing_ok=True)
        _, cfg = from_resolved_file(run_dir / RESOLVED)
        from rova.stages.assets import prepare_assets

        prepare_assets(cfg)  # before the workers exist (file-locked, so nodes sharing a filesystem build once)
        nnodes = int(os.environ.get("SLURM_JOB_NUM_NODES", "1"))
        node_rank = int(os.environ.get("SLURM_NODEID", "0"))
        master = first_node() if nnodes > 1 else "127.0.0.1"
        port = cfg.distributed.master_port or 20000 + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000
        cmd = worker_command(cfg, run_dir, nnodes=nnodes, node_rank=node_rank, master_addr=master, master_port=port)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        if self.eval_shard is not None:
            env["ROVA_EVAL_SHARD"] = str(self.eval_shard)
        self._child = subprocess.Popen(cmd, env=env, cwd=REPO)
        try:
            code = self._child.wait()
        finally:
            remove_run_segments(master, port)  # DeepSpeed's /dev/shm segments a rank left (rova.utils.deepspeed_shm)
        if code != 0:
            raise RuntimeError(f"workers exited with {code}; see {run_dir}/train.log and the SLURM log")
        summary = run_dir / "summary.json"
        return json.loads(summary.read_text()) if summary.exists() else {"run_dir": self.run_dir}

    def checkpoint(self):
        """submitit's checkpoint contract: save, stop, and requeue this same callable."""
        import submitit

        flag = Path(self.run_dir) / PREEMPT_FLAG
        flag.write_text(str(time.time()))
        wait_s = max(MIN_STOP_WAIT_S, self.signal_delay_s - 15)
        deadline = time.monotonic() + wait_s
        while self._child is not None and not child_exited(self._child) and time.monotonic() < deadline:
            time.sleep(0.5)
        if self._child is not None and not child_exited(self._child):
            log.warning("the workers of %s did not stop within %d s of the preemption signal; requeueing anyway",
                        self.run_dir, wait_s)
        fresh = SlurmRun(self.run_dir, self.signal_delay_s, self.eval_shard)
        return submitit.helpers.DelayedSubmission(fresh)


def child_exited(child: subprocess.Popen) -> bool:
    """Whether the child has exited, without reaping it.

    submitit calls `checkpoint` from a signal handler while `_run` is blocked in `child.wait()`, which holds the
    Popen's wait lock: `child.poll()` then always answers None, and the preempted job sat out the whole grace
    period (105 s of the default 120) before requeueing. waitid with WNOWAIT looks without taking the lock and
    leaves the exit status for `wait()`.
    """
    if child.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # already reaped by wait()
        return True


def first_node() -> str:
    """The address of the job's first node, where the workers rendezvous: its NodeAddr, the address SLURM itself
    reaches it at. A NodeName need not resolve (NodeName=gpu1 NodeAddr=10.0.0.5; several slurmd on one host);
    the name when SLURM does not tell the address."""
    nodelist = os.environ.get("SLURM_JOB_NODELIST", "127.0.0.1")
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True)
    name = out.stdout.split()[0] if out.returncode == 0 and out.stdout.strip() else nodelist
    node = subprocess.run(["scontrol", "-o", "show", "node", name], capture_output=True, text=True)
    addr = re.search(r"(?:^|\s)NodeAddr=(\S+)", node.stdout) if node.returncode == 0 else None
    return addr.group(1) if addr else name


def executor_parameters(cfg: RootConfig) -> dict:
    c = cfg.cluster
    params = {
        "name": f"rova-{cfg.stage.name}",
        "timeout_min": c.time_min,
        "nodes": c.nodes,
        "tasks_per_node": 1,
        "cpus_per_task": c.cpus_per_task,
        "slurm_array_parallelism": c.array_parallelism,
        "slurm_signal_delay_s": c.signal_delay_s,
        "slurm_setup": list(c.setup),
        "slurm_additional_parameters": dict(c.additional_parameters),
    }
    if c.gpus_per_node:
        params["gpus_per_node"] = c.gpus_per_node
    if c.mem_gb:
        params["mem_gb"] = c.mem_gb
    for key in ("partition", "account", "qos"):
        if getattr(c, key):
            params[f"slurm_{key}"] = getattr(c, key)
    return params


def make_executor(cfg: RootConfig, folder: Path, **overrides):
    """A submitit executor for cfg.cluster, with `overrides` on top of executor_parameters (name, dependency;
    None removes a parameter)."""
    import submitit

    # How often a timed-out/preempted job may requeue itself (a constructor argument in submitit).
    executor = submitit.AutoExecutor(folder=str(folder), cluster="slurm", slurm_max_num_timeout=cfg.cluster.max_requeues)
    params = executor_parameters(cfg)
    extra = overrides.pop("slurm_additional_parameters", {})
    params["slurm_additional_parameters"] = {**params["slurm_additional_parameters"], **extra}
    # An override of None drops the parameter (e.g. no GPUs for the recipe's report job).
    executor.update_parameters(**{k: v for k, v in {**params, **overrides}.items() if v is not None})
    return executor


def run_tasks(cfg: RootConfig, run_dir: Path) -> list[SlurmRun]:
    """The SLURM tasks of one run dir: K when the stage declares a shard key set to K (eval.shards, cot.shards), else one."""
    from rova.config.stage import get_spec

    count = get_spec(cfg.stage.name).shards(cfg)
    shards = count if count > 1 else None
    return [SlurmRun(str(run_dir), cfg.cluster.signal_delay_s, shard) for shard in (range(shards) if shards else [None])]


def submit_tasks(executor, tasks: list, task_dirs: list[Path], folder: Path) -> list:
    """One job, or ONE array job for several tasks; each run dir records its job id(s) in slurm_job.json."""
    jobs = [executor.submit(tasks[0])] if len(tasks) == 1 else executor.submit_array(tasks)
    job_ids: dict[Path, list[str]] = {}
    for job, run_dir in zip(jobs, task_dirs):
        job_ids.setdefault(run_dir, []).append(job.job_id)
        print(f"[rova] submitted {job.job_id} -> {run_dir}", flush=True)
    for run_dir, ids in job_ids.items():
        record = {"job_id": ids[0], "folder": str(folder)}
        if len(ids) > 1:
            record["job_ids"] = ids
        atomic_write_json(run_dir / "slurm_job.json", record)
    return jobs


def submit(typed_jobs: list[RootConfig], run_dirs: list[Path], release=lambda: None) -> int:
    """Submit the runs (one job, or one array for several tasks); then `release` the launcher's run dir locks:
    the job holds the run dirs from here (slurm_job.json; each task locks its run dir on its node)."""
    cfg = typed_jobs[0]
    folder = (run_dirs[0].parent if len(run_dirs) > 1 else run_dirs[0]) / "slurm"
    executor = make_executor(cfg, folder)
    tasks, task_dirs = [], []
    for job_cfg, run_dir in zip(typed_jobs, run_dirs):
        for task in run_tasks(job_cfg, Path(run_dir)):
            tasks.append(task)
            task_dirs.append(Path(run_dir))
    jobs = submit_tasks(executor, tasks, task_dirs, folder)  # a sweep is ONE array job, array_parallelism at a time
    release()
    if not cfg.cluster.wait:
        return 0
    return wait_for(jobs, task_dirs)


def in_queue(job_id: str) -> bool:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%i"], capture_output=True, text=True)
    return out.returncode == 0 and bool(out.stdout.strip())


def wait_for(jobs, run_dirs: list[Path], poll_s: float = 5.0, grace_s: float = 60.0) -> int:
    """Wait until every job has a result, or has left the queue without one (clusters without sacct report
    every state as UNKNOWN, so `job.result()` alone could wait forever on a task that died)."""
    pending = dict(zip([j.job_id for j in jobs], zip(jobs, run_dirs)))
    gone_since: dict[str, float] = {}
    failures = 0
    while pending:
        for job_id, (job, run_dir) in list(pending.items()):
            if job.done():
                try:
                    job.results()  # every task's (one per node); job.result() refuses a multi-node job
                    print(f"[rova] finished {job_id}: {run_dir}", flush=True)
                except Exception as exc:  # report every job, then fail
                    lines = str(exc).strip().splitlines() or ["(no message)"]
                    print(f"[rova] FAILED {job_id}: {run_dir}: {lines[-1]}", flush=True)
                    failures += 1
                del pending[job_id]
            elif not in_queue(job_id):
                gone_since.setdefault(job_id, time.monotonic())
                if time.monotonic() - gone_since[job_id] > grace_s:
                    print(f"[rova] FAILED {job_id}: left the queue without a result; see {run_dir}", flush=True)
                    failures += 1
                    del pending[job_id]
            else:
                gone_since.pop(job_id, None)
        if pending:
            time.sleep(poll_s)
    return 1 if failures else 0
