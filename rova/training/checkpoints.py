"""Which checkpoints count, and a full disk while one is written.

A checkpoint is complete only when its marker (`checkpoint_complete.json`) is there and parses: it is written
last, after the weights, optimizer, RNG states, trainer_state.json and rova's own side files (memory.json), and
lists every file of the checkpoint with its size. A kill or a full disk at any moment before it leaves a
checkpoint that resume skips, with a warning naming it, taking the newest complete one instead (transformers
writes trainer_state.json before rova's side files, and a full disk can leave it cut short, so that file alone
says nothing). Old checkpoints are rotated away (stage.save_total_limit) only once the new one is complete.

A full disk (ENOSPC) while a checkpoint is written becomes `DiskFullError`: one line naming the path, the full
device and the last complete checkpoint to resume from. torch reports it as a RuntimeError that never says so
("unexpected pos 13120 vs 13012", "file write failed"), so after such an error the device is probed.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path

from rova.errors import DiskFullError
from rova.utils.io import atomic_write_json

log = logging.getLogger(__name__)

COMPLETE_MARKER = "checkpoint_complete.json"
PREFIX = "checkpoint-"


def checkpoint_step(path: Path) -> int | None:
    """N of a `checkpoint-N` directory name (None for anything else)."""
    name = Path(path).name
    if not name.startswith(PREFIX) or not name[len(PREFIX):].isdigit():
        return None
    return int(name[len(PREFIX):])


def checkpoint_files(checkpoint: Path) -> dict[str, int]:
    """Every file under `checkpoint` (relative path -> size), the marker and temp files left out."""
    files = {}
    for path in sorted(Path(checkpoint).rglob("*")):
        relative = path.relative_to(checkpoint).as_posix()
        if path.is_file() and relative != COMPLETE_MARKER and not path.name.endswith(".tmp"):
            files[relative] = path.stat().st_size
    return files


def mark_complete(checkpoint: Path, step: int) -> Path:
    """Write the marker that makes `checkpoint` count: call it after every other file of it is written."""
    content = {"global_step": step, "files": checkpoint_files(checkpoint)}
    return atomic_write_json(Path(checkpoint) / COMPLETE_MARKER, content)


def unmark(checkpoint: Path) -> None:
    """Drop the marker before `checkpoint` is (re)written: until marked again it does not count."""
    (Path(checkpoint) / COMPLETE_MARKER).unlink(missing_ok=True)


def incomplete_reason(checkpoint: Path) -> str | None:
    """None when `checkpoint` is complete, else what is wrong with it (for the warning)."""
    marker = Path(checkpoint) / COMPLETE_MARKER
    try:
        content = json.loads(marker.read_text())
        step, files = content["global_step"], content["files"]
    except FileNotFoundError:
        return f"no {COMPLETE_MARKER} (its save was interrupted)"
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return f"{COMPLETE_MARKER} does not parse ({exc.__class__.__name__})"
    if step != checkpoint_step(checkpoint):
        return f"{COMPLETE_MARKER} is of step {step}"
    for relative, size in files.items():
        path = Path(checkpoint) / relative
        if not path.is_file():
            return f"{relative} is missing"
        if path.stat().st_size != size:
            return f"{relative} has {path.stat().st_size} bytes, {size} were written"
    return None


def latest_complete_checkpoint(checkpoints: Path, warn: bool = True) -> Path | None:
    """The newest complete `checkpoint-N` of `checkpoints` (None if there is none); each incomplete one newer
    than it is skipped with a warning naming it (when `warn`)."""
    checkpoints = Path(checkpoints)
    if not checkpoints.is_dir():
        return None
    found = sorted((p for p in checkpoints.iterdir() if p.is_dir() and checkpoint_step(p) is not None),
                   key=checkpoint_step, reverse=True)
    for checkpoint in found:
        reason = incomplete_reason(checkpoint)
        if reason is None:
            return checkpoint
        if warn:
            log.warning("skipping the incomplete checkpoint %s: %s", checkpoint, reason)
    return None


def is_disk_full(exc: BaseException, path: Path) -> bool:
    """Whether `exc`, raised while writing under `path`, comes from a full device: an OSError says so by its
    errno; anything else (torch's RuntimeError, safetensors' error) is checked by probing the device."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return disk_is_full(path)


def disk_is_full(path: Path, probe_bytes: int = 1 << 20) -> bool:
    """Probe the device of `path` (or its nearest existing parent): can 1 MiB more be written and synced?"""
    directory = Path(path)
    while not directory.is_dir() and directory != directory.parent:
        directory = directory.parent
    probe = directory / f".rova-space-probe-{os.getpid()}.tmp"
    try:
        with open(probe, "wb") as handle:
            handle.write(b"\0" * probe_bytes)
            handle.flush()
            os.fsync(handle.fileno())
        return False
    except OSError as exc:
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    finally:
        try:
            probe.unlink()
        except OSError:
            pass


def disk_full_error(path: Path, checkpoints: Path | None, what: str = "writing") -> DiskFullError:
    """The one-line error for a full device met at `path`, naming the last complete checkpoint of `checkpoints`."""
    last = latest_complete_checkpoint(checkpoints, warn=False) if checkpoints is not None else None
    if last is not None:
        resume = f"the last complete checkpoint is {last}: free space, then launch again with the same run.dir"
    else:
        resume = "there is no complete checkpoint yet: free space and launch again"
    return DiskFullError(f"{path}: no space left on device while {what}; {resume}")


class CompleteCheckpoints:
    """Trainer mixin (list it before the transformers / TRL trainer class): every checkpoint ends with its marker.

    `_save_checkpoint_side_files(checkpoint)` is the hook for a subclass's own files (memory.json); they are
    written before the marker. Rotation (save_total_limit) waits for the marker, so a kill mid-save never leaves
    fewer complete checkpoints than before it.
    """

    def _save_checkpoint_side_files(self, checkpoint: Path) -> None:
        """Write the subclass's own files into `checkpoint` (main process first; every process calls it)."""

    # Override: the marker last, rotation after it, a full disk as one line.
    def _save_checkpoint(self, model, trial):
        from transformers.trainer_utils import rotate_checkpoints

        output_dir = Path(self._get_output_dir(trial=trial))
        checkpoint = output_dir / f"{PREFIX}{self.state.global_step}"
        limit = self.args.save_total_limit
        try:
            if self.args.should_save:
                unmark(checkpoint)
            self.args.save_total_limit = None  # transformers rotates inside its save, before rova's files
            try:
                super()._save_checkpoint(model, trial)
            finally:
                self.args.save_total_limit = limit
            self._save_checkpoint_side_files(checkpoint)
            self.accelerator.wait_for_everyone()  # every rank's shards and RNG state are on disk
            if self.args.should_save:
                mark_complete(checkpoint, self.state.global_step)
        except Exception as exc:
            if not is_disk_full(exc, checkpoint):
                raise
            where = getattr(exc, "filename", None) or checkpoint
            raise disk_full_error(Path(where), output_dir, f"saving {checkpoint.name}") from exc
        if self.args.should_save:
            rotate_checkpoints(output_dir=str(output_dir), save_total_limit=limit,
                               best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)
