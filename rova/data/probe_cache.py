"""Remember which media files decode, so a restart (or the other ranks) does not probe 260k videos again.

Entries are keyed by path, the record's data_type (an .mp4 is probed as a video, and fails as an image), size,
modification time, backend and the frame-sampling settings: a file that changes, or a run that samples or reads it
differently, is probed afresh. One process probes while the others wait
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
from rova.data.video import MediaKey, Verdict, media_key, media_verdicts
from rova.utils.io import atomic_write_json
from rova.utils.locking import file_lock


def _key(path: str, data_type: str, backend: str, settings: str) -> str:
    try:
        stat = os.stat(path)
        identity = f"{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        identity = "missing"  # probed (and cached) as missing; a file that appears later gets a new key
    return f"{path}|{data_type}|{identity}|{backend}|{settings}"


def cached_verdicts(
    records: list[VideoQARecord], cfg: FrameSamplingConfig, backend: str, cache_file: Path, workers: int
) -> dict[MediaKey, Verdict]:
    """The verdict of every record's media (rova.data.video.probe_media), keyed by media_key; probed only when
    the cache holds none for the file's current state and these settings."""
    # The format version is part of the key: entries of an older format are simply probed again.
    settings = "v4:" + hashlib.sha1(json.dumps(asdict(cfg), sort_keys=True).encode()).hexdigest()[:12]
    cache_file = Path(cache_file)
    with file_lock(cache_file.with_name(cache_file.name + ".lock")):
        try:
            cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
        except ValueError:
            cache = {}
        keys = {media_key(r): _key(r.media_path, r.data_type, backend, settings) for r in records}
        todo = [r for r in records if keys[media_key(r)] not in cache]
        if todo:
            fresh = media_verdicts(todo, cfg, backend, workers)
            cache.update({keys[media]: list(verdict) for media, verdict in fresh.items()})
            atomic_write_json(cache_file, cache, indent=None)
    return {media: tuple(cache[key]) for media, key in keys.items()}
