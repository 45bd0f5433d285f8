"""Remember which media files decode, so a restart (or the other ranks) does not probe 260k videos again.

Entries are keyed by path, size, modification time, backend and the frame-sampling settings: a file that
changes, or a run that samples differently, is probed afresh. One process probes while the others wait
on a file lock, then read the result.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from rova.data.records import VideoQARecord
from rova.config.data import FrameSamplingConfig
from rova.data.video import Verdict, media_verdicts
from rova.utils.io import atomic_write_json
from rova.utils.locking import file_lock


def _key(path: str, backend: str, settings: str) -> str:
    try:
        stat = os.stat(path)
        identity = f"{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        identity = "missing"  # probed (and cached) as missing; a file that appears later gets a new key
    return f"{path}|{identity}|{backend}|{settings}"


def cached_verdicts(
    records: list[VideoQARecord], cfg: FrameSamplingConfig, backend: str, cache_file: Path, workers: int
) -> dict[str, Verdict]:
    # The format version is part of the key: entries of an older format are simply probed again.
    settings = "v3:" + hashlib.sha1(json.dumps(asdict(cfg), sort_keys=True).encode()).hexdigest()[:12]
    cache_file = Path(cache_file)
    with file_lock(cache_file.with_name(cache_file.name + ".lock")):
        try:
            cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
        except ValueError:
            cache = {}
        keys = {r.media_path: _key(r.media_path, backend, settings) for r in records}
        todo = [r for r in records if keys[r.media_path] not in cache]
        if todo:
            fresh = media_verdicts(todo, cfg, backend, workers)
            cache.update({keys[path]: list(verdict) for path, verdict in fresh.items()})
            atomic_write_json(cache_file, cache, indent=None)
    return {path: tuple(cache[key]) for path, key in keys.items()}
