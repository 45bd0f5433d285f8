"""The media probe cache: each file is probed once per (size, mtime, settings); parallel probing agrees."""

from __future__ import annotations

import shutil
from pathlib import Path

from rova.data.probe_cache import cached_verdicts
from rova.data.records import load_records
from rova.data.sampling import FrameSamplingConfig
from rova.data.video import media_verdicts

CFG = FrameSamplingConfig(2.0, 4, 8, 3136, 6272, 50176)


def broken_copy(demo_file: Path, tmp_path: Path) -> tuple[list, Path]:
    records = load_records(demo_file)[:4]
    target = tmp_path / "broken.mp4"
    data = Path(records[0].media_path).read_bytes()
    target.write_bytes(data[: len(data) // 3])  # truncated
    records[1].media_path = str(target)
    return records, target


def test_parallel_probing_agrees_with_sequential(demo_file, tmp_path):
    records, target = broken_copy(demo_file, tmp_path)
    sequential = media_verdicts(records, CFG, "decord", workers=1)
    parallel = media_verdicts(records, CFG, "decord", workers=2)
    assert sequential == parallel
    assert sequential[str(target)] is not None
    assert sum(v is None for v in sequential.values()) == 3


def test_cache_is_reused_and_invalidated_by_a_changed_file(demo_file, tmp_path):
    records, target = broken_copy(demo_file, tmp_path)
    cache = tmp_path / "cache" / "media_probe.json"
    first = cached_verdicts(records, CFG, "decord", cache, workers=1)
    assert first[str(target)] is not None
    stamp = cache.stat().st_mtime_ns
    again = cached_verdicts(records, CFG, "decord", cache, workers=1)
    assert again == first and cache.stat().st_mtime_ns == stamp, "nothing changed, so nothing is probed or written"
    shutil.copyfile(records[0].media_path, target)  # the file is repaired: new size and mtime
    repaired = cached_verdicts(records, CFG, "decord", cache, workers=1)
    assert repaired[str(target)] is None
    other_settings = cached_verdicts(records, FrameSamplingConfig(1.0, 2, 4, 3136, 6272, 50176), "decord", cache, 1)
    assert all(v is None for v in other_settings.values())
    assert len(__import__("json").loads(cache.read_text())) == 4 + 1 + 4  # one entry per (file state, settings)
