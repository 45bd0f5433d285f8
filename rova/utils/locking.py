"""Cross-process file locks: `file_lock` waits (one worker builds shared assets, tiny model or demo data, while
others wait); `held_lock` does not (a run dir is used by one launch at a time, rova.launch.rundir)."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: str | os.PathLike):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# The holder's record fills the first HOLDER_BYTES of the lock file, written in one pwrite at offset 0 and padded,
# so holders sharing the lock (LOCK_SH) overwrite each other whole and a reader never sees a torn mix.
HOLDER_BYTES = 512


class LockHeld(Exception):
    """The lock is held by another open file (another process, or another handle in this one)."""

    def __init__(self, path: Path, holder: dict | None):
        self.path = path
        self.holder = holder
        super().__init__(f"{path} is locked by {holder or 'an unknown holder'}")


def read_holder(path: str | os.PathLike) -> dict | None:
    """The record the lock's last holder wrote (None when absent or unreadable)."""
    import json

    try:
        with open(path, "rb") as handle:
            text = handle.read(HOLDER_BYTES).decode("utf-8", "replace").strip()
        value = json.loads(text) if text else None
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def try_lock(path: str | os.PathLike, holder: dict, *, shared: bool = False) -> int:
    """Take an flock on `path` (created if absent) without waiting and record `holder` in it; returns the
    descriptor to pass to `unlock`.

    Raises LockHeld (with the holder's record) when another open file holds it (exclusively, or at all for an
    exclusive request). The kernel drops the lock when the holding process dies, even by SIGKILL, so a stale
    lock never blocks; the file stays (deleting it would let two holders lock two different files). The
    descriptor is close-on-exec: processes this one starts do not hold it, processes it forks do until they exit.
    An OSError other than contention (a filesystem without flock) is raised as it is.
    """
    import json

    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(path, read_holder(path)) from None
        record = json.dumps(holder, default=str, ensure_ascii=True)[: HOLDER_BYTES - 1].ljust(HOLDER_BYTES - 1)
        os.pwrite(fd, (record + "\n").encode("ascii"), 0)
        os.ftruncate(fd, HOLDER_BYTES)
    except BaseException:
        os.close(fd)
        raise
    return fd


def unlock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def held_lock(path: str | os.PathLike, holder: dict, *, shared: bool = False):
    """try_lock ... unlock as a context manager."""
    fd = try_lock(path, holder, shared=shared)
    try:
        yield
    finally:
        unlock(fd)
