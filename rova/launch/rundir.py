"""The run directory: everything a run writes, starting with the resolved config and its provenance.

A run dir is used by one launch at a time, and only with the settings it was made with. Before anything is
written, spawned or submitted, the launcher claims each run dir (`claim_run_dir`):
  - a folder that exists, holds files and is not a rova run dir (no resolved.yaml) is refused;
  - a run dir whose SLURM job (slurm_job.json) is still queued or running is refused (squeue; where there is
    no squeue this is not checked);
  - the run dir's lock (`run.lock`) is taken, or the launch is refused naming its holder;
  - a relaunch must give the settings resolved.yaml records for every key that shapes the stage's results
    (rova.config.fingerprint: the rule, and `run.extend=true` to let a training run's stage.max_steps grow).
Then `write_run_dir` writes resolved.yaml (this launch's config: what the workers read), meta.json (once, by
the launch that made the dir; never overwritten) and appends one line to launches.jsonl (time, host, pid,
command, overrides, git state, stage, fingerprint, and what run.extend grew): the record of every launch that
wrote into the dir. A run dir the launch made that holds nothing but `PREAMBLE` files when the launch ends
(it failed before the stage wrote anything: a data error, a failed submission) is removed again.

The lock (fcntl.flock on run.lock, holder's host / pid / start / SLURM job recorded in the file):
  - Who holds it: the launcher, for the run's lifetime (in-process runs and local workers alike: the workers it
    starts never take it, and its descriptor is close-on-exec). With cluster=slurm the launcher holds it while it
    checks, writes and submits, then releases it: the queued job is the holder through slurm_job.json until it
    starts, and each SLURM task (rova.launch.slurm.SlurmRun) takes it on its node while its workers run; the
    shard tasks of one run dir (eval.shards, cot.shards) share it (LOCK_SH), a launch needs it alone.
  - Stale-safe: the kernel drops an flock when its process dies, SIGKILL included (processes it forked, such
    as dataloader workers, hold it until they exit too). On a shared filesystem that supports flock across
    nodes (NFSv4, Lustre mounted with `flock`, GPFS, BeeGFS) a dead node's lock is dropped by the server when
    its lease runs out (NFSv4: about 90 s). A requeued task (SLURM keeps the job id) that finds the lock held
    by its own job's earlier instance waits up to REQUEUE_WAIT_S for that, then runs without it, saying so:
    SLURM has ended that instance, so nothing else writes there. Any other holder is waited for as long, then
    the task fails naming it. A filesystem without flock (ENOLCK, EOPNOTSUPP; NFS mounted `nolock` locks per
    node only) runs unlocked with a warning.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Callable, Optional

from omegaconf import DictConfig, OmegaConf

from rova.errors import ConfigError, RovaError
from rova.utils.io import append_jsonl, atomic_write_json, atomic_write_text
from rova.utils.locking import LockHeld, read_holder, try_lock, unlock

RESOLVED = "resolved.yaml"
META = "meta.json"
LAUNCHES = "launches.jsonl"
LOCK = "run.lock"
SLURM_JOB = "slurm_job.json"
DEEPSPEED_HOSTFILE = "deepspeed_hostfile"  # a multi-node ZeRO run's node list (rova.launch.workers)
# What a launch writes before the stage has done anything: a run dir it made holding only these is removed.
PREAMBLE = frozenset({RESOLVED, META, LAUNCHES, LOCK, "train.log", "data_report.json", "wandb", "wandb_id.txt",
                      "slurm", "PREEMPT", DEEPSPEED_HOSTFILE})
REQUEUE_WAIT_S = 120.0
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


class RunDirBusy(RovaError):
    """Another launch (or SLURM job) is using the run dir."""


def git_state(repo: Path) -> dict:
    def run(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=5)
            return out.stdout.strip() if out.returncode == 0 else ""
        except (OSError, subprocess.TimeoutExpired):
            return ""

    return {"git_sha": run("rev-parse", "HEAD") or None, "git_dirty": bool(run("status", "--porcelain"))}


def new_run_dir(output_root: Path, stage: str, now: dt.datetime, tag: str | None = None) -> Path:
    """`<root>/<stage>/<date>/<time>[_<tag>]/`; never reuses an existing dir."""
    base = output_root / stage / now.strftime("%Y-%m-%d") / (now.strftime("%H-%M-%S") + (f"_{tag}" if tag else ""))
    candidate, n = base, 1
    while candidate.exists():
        candidate = base.with_name(f"{base.name}_{n}")
        n += 1
    return candidate


# ------------------------------------------------------------------------------------------------ the lock
def slurm_job_label() -> Optional[str]:
    """This process's SLURM job as requeue keeps it: `<array job>_<task>` for an array task, else the job id."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID") or None


def holder_record(role: str) -> dict:
    return {"role": role, "host": socket.gethostname(), "pid": os.getpid(),
            "since": dt.datetime.now().isoformat(timespec="seconds"), "slurm_job": slurm_job_label(),
            "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200]}


def describe_holder(holder: Optional[dict]) -> str:
    if not holder:
        return "another process (it left no record)"
    words = f"{holder.get('role', 'a launch')}: pid {holder.get('pid')} on {holder.get('host')}"
    if holder.get("slurm_job"):
        words += f" (SLURM job {holder['slurm_job']})"
    return words + f" since {holder.get('since')}"


class RunDirLock:
    """The run dir's lock, taken without waiting (acquire raises RunDirBusy naming the holder)."""

    def __init__(self, run_dir: Path, role: str = "launch", *, shared: bool = False):
        self.run_dir, self.role, self.shared = Path(run_dir), role, shared
        self._fd: Optional[int] = None

    def acquire(self) -> "RunDirLock":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._fd = try_lock(self.run_dir / LOCK, holder_record(self.role), shared=self.shared)
        except LockHeld as exc:
            raise RunDirBusy(f"run dir {self.run_dir} is in use by {describe_holder(exc.holder)}; wait for it to "
                             "end (or stop it), or use another run.dir") from None
        except OSError as exc:
            if exc.errno not in _NO_FLOCK:
                raise
            print(f"[rova] warning: {self.run_dir} is on a filesystem without file locks ({exc.strerror}): "
                  "running without the run dir lock", file=sys.stderr, flush=True)
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            unlock(fd)

    def __enter__(self) -> "RunDirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def task_lock(run_dir: Path, *, shared: bool, wait_s: float = REQUEUE_WAIT_S, poll_s: float = 5.0,
              sleep: Callable[[float], None] = time.sleep) -> Optional[RunDirLock]:
    """The lock a SLURM task holds while its workers run (the module docstring: requeue and stale locks).

    Returns the held lock, or None when an earlier instance of this same job still holds it after wait_s (the
    task then runs without it). Raises RunDirBusy when another holder keeps it past wait_s."""
    deadline = time.monotonic() + wait_s
    while True:
        lock = RunDirLock(run_dir, "SLURM task", shared=shared)
        try:
            return lock.acquire()
        except RunDirBusy as exc:
            if time.monotonic() < deadline:
                sleep(poll_s)
                continue
            holder = read_holder(Path(run_dir) / LOCK) or {}
            job = slurm_job_label()
            if job and holder.get("slurm_job") == job:
                print(f"[rova] warning: {run_dir} is still locked by an earlier instance of this job "
                      f"({describe_holder(holder)}); SLURM requeued it, so it is gone: running without the lock",
                      file=sys.stderr, flush=True)
                return None
            raise exc


# ------------------------------------------------------------------------------------- claiming a run dir
def _entries(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.iterdir() if p.name != LOCK] if run_dir.is_dir() else []


def check_run_dir(run_dir: Path, cfg=None, *, key_prefix: str = "", extend: Optional[bool] = None) -> dict:
    """The checks that need no lock: a non-empty folder that is not a rova run dir is refused, and an existing
    run dir's settings must match `cfg`'s (rova.config.fingerprint; ConfigError naming the first key that
    differs). Returns what run.extend grows ({key: [old, new]}); `extend` overrides cfg.run.extend."""
    from rova.config.fingerprint import check_relaunch

    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{key_prefix}run.dir", f"{run_dir} is a file, not a folder")
    if not _entries(run_dir):
        return {}
    if not (run_dir / RESOLVED).exists():
        raise ConfigError(f"{key_prefix}run.dir", f"{run_dir} holds files but is not a rova run dir (no {RESOLVED}); "
                          "pick a new or empty folder")
    if cfg is None:
        return {}
    old = OmegaConf.to_container(OmegaConf.load(run_dir / RESOLVED), resolve=False)
    new = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
    return check_relaunch(old, new, extend=cfg.run.extend if extend is None else extend, where=str(run_dir),
                          key_prefix=key_prefix)


def queued_slurm_jobs(run_dir: Path) -> list[str]:
    """The jobs of run_dir's slurm_job.json still queued or running ([] without one, or without squeue)."""
    try:
        record = json.loads((Path(run_dir) / SLURM_JOB).read_text())
    except (OSError, ValueError):
        return []
    ids = [str(j) for j in record.get("job_ids") or [record.get("job_id")] if j]
    if not ids:
        return []
    try:
        out = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(ids)], capture_output=True, text=True,
                             timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return out.stdout.split() if out.returncode == 0 else []


def claim_run_dir(run_dir: Path, cfg, stack: ExitStack, *, key_prefix: str = "", extend: Optional[bool] = None,
                  remove_unused: bool = True) -> dict:
    """Make `run_dir` this launch's until `stack` closes (module docstring): the checks, the lock, and (with
    remove_unused) removing it again at the end if this launch made it and nothing but PREAMBLE is in it.
    `cfg` None: only the folder check and the lock (a recipe's parent dir). Returns check_run_dir's extension."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir, None, key_prefix=key_prefix)  # a foreign folder is refused before anything is created
    queued = queued_slurm_jobs(run_dir)
    if queued:
        raise RunDirBusy(f"run dir {run_dir} is in use by SLURM job {queued[0]} (queued or running); wait for it, "
                         "or scancel it")
    made, fresh = not run_dir.exists(), not _entries(run_dir)
    stack.enter_context(RunDirLock(run_dir, "launch"))
    if remove_unused and fresh:  # only what this launch wrote: an earlier launch's files are never removed
        stack.callback(remove_if_unused, run_dir, made)
    return check_run_dir(run_dir, cfg, key_prefix=key_prefix, extend=extend)


def remove_if_unused(run_dir: Path, made: bool) -> None:
    """Remove what a launch left in `run_dir`, found new or empty, when that is PREAMBLE only (the whole dir
    when the launch made it)."""
    if not run_dir.is_dir():
        return
    entries = list(run_dir.iterdir())
    if any(p.name not in PREAMBLE for p in entries):
        return
    if made:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        for p in entries:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    if entries:
        print(f"[rova] removed {run_dir}: the launch ended before the stage wrote anything", flush=True)


# ------------------------------------------------------------------------------------------- provenance
def write_run_dir(run_dir: Path, resolved: DictConfig, overrides: list[str], repo: Path, *,
                  extended: Optional[dict] = None) -> Path:
    """resolved.yaml (this launch's), meta.json (only if absent) and one launches.jsonl line (module docstring)."""
    from rova.config.fingerprint import fingerprint
    from rova.config.stage import stage_names

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / RESOLVED, OmegaConf.to_yaml(resolved, resolve=True))
    launch = {
        "time": dt.datetime.now().isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "overrides": list(overrides),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        **git_state(repo),
    }
    if not (run_dir / META).exists():
        atomic_write_json(run_dir / META, {**{k: v for k, v in launch.items() if k not in ("time", "pid")},
                                           "created": launch["time"]})
    container = OmegaConf.to_container(resolved, resolve=True)
    launch["stage"] = (container.get("stage") or {}).get("name")
    launch["fingerprint"] = fingerprint(container) if launch["stage"] in stage_names() else None
    if extended:
        launch["extended"] = extended
    append_jsonl(run_dir / LAUNCHES, launch)
    return run_dir


def run_dir_error(exc: OSError, run) -> ConfigError:
    """The one-line error for a run dir that cannot be made (`run`: the run.* config), naming the key to change.

    A name longer than the file system allows (ENAMETOOLONG) is run.tag's when the tag is in it, else
    run.output_root's (or run.dir's when given); anything else (an unwritable or full output root, a file where a
    directory should be) is the root's.
    """
    import errno

    key = "run.dir" if run.dir else "run.output_root"
    path = Path(exc.filename or (run.dir or run.output_root))
    if exc.errno == errno.ENAMETOOLONG:
        limit = _name_max(path)
        name = max(path.parts, key=len)
        if run.tag and run.tag in name:
            key = "run.tag"
        shown = f"{name[:40]}..." if len(name) > 40 else name
        return ConfigError(key, f"the run dir name {shown!r} is {len(name)} characters, too long for the file "
                                f"system (at most {limit}); use a shorter {key}")
    reason = exc.strerror or exc.__class__.__name__
    return ConfigError(key, f"cannot create the run dir {path}: {reason}; choose a writable {key}")


def _name_max(path: Path) -> int:
    """The longest file name the file system of `path` (its nearest existing parent) allows."""
    for parent in (path, *path.parents):
        try:
            if parent.is_dir():
                return os.pathconf(parent, "PC_NAME_MAX")
        except OSError:
            continue
    return 255
