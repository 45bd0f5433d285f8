"""A real SLURM cluster on this machine for the slow tests, driven by ``scripts/local_slurm.sh``: one node
(``local_slurm``), or two nodes, each its own slurmd (``make_local_slurm_fixture(state_dir=TWO_NODES_DIR,
knobs=TWO_NODES)``, tests/launch/test_slurm_multinode.py).

Use it in two ways:

* ``with local_slurm_cluster() as cluster: ...`` -- installs (if needed) and starts the cluster, sets
  ``SLURM_CONF`` in ``os.environ`` for the duration, and stops the daemons on exit *only if this call
  started them* (a cluster that was already up, e.g. one started by hand or by CI, is left running).
* the session-scoped pytest fixture ``local_slurm`` (or ``make_local_slurm_fixture(...)`` for another
  name/scope). ``tests/conftest.py`` can expose it to every test module with
  ``from tests.support.local_slurm import local_slurm  # noqa: F401``.

When the cluster cannot be had on this machine (not Linux, no bash, neither root nor passwordless
``sudo`` to install/start it, no ``apt-get``, the package install failed), the fixture calls
``pytest.skip`` with the script's exact reason -- except in CI (``CI=true``), where it fails loudly,
because CI is supposed to provide SLURM.
A cluster that installed fine but does not come up is a real failure and always fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "local_slurm.sh"
DEFAULT_STATE_DIR = "/tmp/rova-slurm"
PARTITION = "debug"

# Exit codes of scripts/local_slurm.sh that mean "cannot have SLURM here" (skip) rather than "broken".
_UNAVAILABLE_CODES = {3: "needs root", 4: "no apt-get/dpkg"}

_FINISHED_STATES = {
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
    "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED",
}

INSTALL_TIMEOUT_S = 900
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 120
STATUS_TIMEOUT_S = 60


class LocalSlurmUnavailable(RuntimeError):
    """This machine cannot run the local cluster (the fixture skips, or fails in CI)."""


class LocalSlurmError(RuntimeError):
    """The cluster should work here but does not (always a test failure)."""


@dataclasses.dataclass(frozen=True)
class LocalSlurm:
    """Handle on a running local cluster."""

    conf: Path
    state_dir: Path
    started_here: bool
    partition: str = PARTITION

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    def env(self, **extra: str) -> dict[str, str]:
        """os.environ plus SLURM_CONF (and extra), for subprocesses."""
        return {**os.environ, "SLURM_CONF": str(self.conf), **extra}

    def run(self, *argv: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a SLURM client command (sbatch, squeue, scontrol, ...) against this cluster."""
        return subprocess.run(
            list(argv), env=self.env(), capture_output=True, text=True, timeout=timeout, check=check
        )

    def sbatch(self, *args: str, timeout: float = 30) -> str:
        """Submit with ``sbatch --parsable``; return the job id."""
        out = self.run("sbatch", "--parsable", *args, timeout=timeout).stdout.strip()
        return out.split(";", 1)[0]

    def queued(self, job_id: str | None = None) -> list[str]:
        """``squeue`` lines (``JOBID STATE REASON``) of job_id's (or all) tasks not yet finished."""
        argv = ["squeue", "-h", "-o", "%i %T %r"]
        if job_id is not None:
            argv += ["-j", job_id]
        res = self.run(*argv, check=False)
        if res.returncode != 0:
            # squeue -j on a job that already left the controller's memory exits 1: nothing queued.
            return []
        lines = [line.split() for line in res.stdout.splitlines() if line.strip()]
        return [" ".join(f) for f in lines if len(f) < 2 or f[1] not in _FINISHED_STATES]

    def wait_until_gone(self, job_id: str, timeout: float = 120, poll_s: float = 0.5) -> None:
        """Wait until no task of job_id is pending/running; raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.queued(job_id):
                return
            time.sleep(poll_s)
        raise TimeoutError(f"job {job_id} still queued after {timeout}s:\n{self.diagnostics()}")

    def diagnostics(self, lines: int = 30) -> str:
        """sinfo + squeue + log tails, for assertion messages."""
        parts = []
        for argv in (["sinfo", "-N", "-o", "%N %P %T %c %m %E"], ["squeue", "-o", "%i %T %r %M"]):
            try:
                res = self.run(*argv, check=False, timeout=15)
                parts.append(f"$ {' '.join(argv)}\n{res.stdout}{res.stderr}")
            except (OSError, subprocess.SubprocessError) as exc:  # pragma: no cover - diagnostics only
                parts.append(f"$ {' '.join(argv)}\n<{exc}>")
        for path in [self.log_dir / "slurmctld.log", *sorted(self.log_dir.glob("slurmd*.log"))]:
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- tail of {path} ---\n" + "\n".join(tail))
        return "\n".join(parts)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _can_sudo() -> bool:
    """Passwordless sudo is available (e.g. GitHub-hosted runners), so a non-root user can still
    install/start/stop the cluster."""
    if shutil.which("sudo") is None:
        return False
    try:
        return subprocess.run(["sudo", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _script(action: str, state_dir: Path, timeout: float, knobs: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(knobs or {}), "ROVA_SLURM_DIR": str(state_dir)}
    argv = ["bash", str(SCRIPT), action]
    if action != "status" and os.geteuid() != 0 and _can_sudo():
        # sudo resets the environment: pass the knobs explicitly.
        knobs = [f"{k}={v}" for k, v in env.items() if k.startswith("ROVA_SLURM_") or k == "CI"]
        argv = ["sudo", "-n", "env", *knobs, *argv]
    try:
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        raise LocalSlurmError(
            f"`{SCRIPT.name} {action}` did not finish in {timeout}s:\n{(err or '')[-3000:]}"
        ) from exc


def _reason(res: subprocess.CompletedProcess[str]) -> str:
    """The script's ERROR line(s), or the tail of its stderr."""
    lines = res.stderr.strip().splitlines()
    errors = [ln.split("ERROR:", 1)[1].strip() for ln in lines if "ERROR:" in ln]
    return "; ".join(errors) if errors else "\n".join(lines[-15:]) or f"exit code {res.returncode}"


def _preflight() -> None:
    if not sys.platform.startswith("linux"):
        raise LocalSlurmUnavailable(f"the local SLURM cluster needs Linux (this is {sys.platform})")
    if shutil.which("bash") is None:
        raise LocalSlurmUnavailable("bash not found")
    if not SCRIPT.is_file():
        raise LocalSlurmError(f"{SCRIPT} is missing")


@contextlib.contextmanager
def local_slurm_cluster(
    state_dir: str | os.PathLike[str] | None = None, install: bool = True, knobs: dict[str, str] | None = None
) -> Iterator[LocalSlurm]:
    """Install + start the local cluster (if not already up), export SLURM_CONF, yield a LocalSlurm.

    knobs: scripts/local_slurm.sh's ROVA_SLURM_* settings for this cluster (e.g. TWO_NODES), over os.environ's.

    Raises LocalSlurmUnavailable when this machine cannot run it, LocalSlurmError when it should but
    does not come up. Stops the daemons at exit only if this call started them.
    """
    _preflight()
    state = Path(state_dir or os.environ.get("ROVA_SLURM_DIR") or DEFAULT_STATE_DIR)
    conf = state / "slurm.conf"

    already_up = _script("status", state, STATUS_TIMEOUT_S, knobs).returncode == 0
    started_here = False
    if not already_up:
        if install:
            res = _script("install", state, INSTALL_TIMEOUT_S, knobs)
            if res.returncode != 0:
                # Any install failure (no root, no apt, no package mirror) means "cannot have it here".
                raise LocalSlurmUnavailable(f"cannot install SLURM: {_reason(res)}")
        res = _script("start", state, START_TIMEOUT_S, knobs)
        if res.returncode in _UNAVAILABLE_CODES:
            why = _UNAVAILABLE_CODES[res.returncode]
            raise LocalSlurmUnavailable(f"cannot start SLURM ({why}): {_reason(res)}")
        if res.returncode == 2:
            raise LocalSlurmUnavailable(f"SLURM not installed: {_reason(res)}")
        if res.returncode != 0:
            raise LocalSlurmError(
                f"`{SCRIPT.name} start` failed (exit {res.returncode}):\n{res.stderr[-4000:]}"
            )
        started_here = True

    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    try:
        yield LocalSlurm(conf=conf, state_dir=state, started_here=started_here)
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        if started_here:
            res = _script("stop", state, STOP_TIMEOUT_S, knobs)
            if res.returncode != 0:  # pragma: no cover - best effort, but visible
                print(f"warning: `{SCRIPT.name} stop` failed: {res.stderr[-2000:]}", file=sys.stderr)


def _unavailable(reason: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"local SLURM cluster unavailable in CI (CI=true requires it): {reason}", pytrace=False)
    pytest.skip(f"local SLURM cluster unavailable: {reason}")


def make_local_slurm_fixture(name: str = "local_slurm", scope: str = "session",
                             state_dir: str | None = None, knobs: dict[str, str] | None = None):
    """Build a pytest fixture (default: session-scoped ``local_slurm``) yielding a LocalSlurm."""

    @pytest.fixture(scope=scope, name=name)
    def _local_slurm_fixture() -> Iterator[LocalSlurm]:
        with contextlib.ExitStack() as stack:
            try:
                cluster = stack.enter_context(local_slurm_cluster(state_dir, knobs=knobs))
            except LocalSlurmUnavailable as exc:
                _unavailable(str(exc))
            yield cluster

    return _local_slurm_fixture


local_slurm = make_local_slurm_fixture()

# A second cluster of two compute nodes, n1 and n2, each its own slurmd on this machine (SLURM's multiple-slurmd
# mode), with its own state dir and ports, so that it runs beside the single-node one.
TWO_NODES_DIR = "/tmp/rova-slurm-2nodes"
TWO_NODES = {"ROVA_SLURM_NODES": "2", "ROVA_SLURM_CTLD_PORT": "6827", "ROVA_SLURM_SLURMD_PORT": "6828"}

__all__ = [
    "TWO_NODES",
    "TWO_NODES_DIR",
    "LocalSlurm",
    "LocalSlurmError",
    "LocalSlurmUnavailable",
    "in_ci",
    "local_slurm",
    "local_slurm_cluster",
    "make_local_slurm_fixture",
]
