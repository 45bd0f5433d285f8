"""The media probe cache: each file is probed once per (size, mtime, settings); parallel probing agrees."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from rova.data.probe_cache import cached_verdicts
from rova.data.records import load_records
from rova.config.data import FrameSamplingConfig
from rova.data.video import media_key, media_verdicts

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
    assert sequential[(str(target), "video")][0] is not None
    assert sum(reason is None for reason, _, _ in sequential.values()) == 3
    # 8 sampled frames of 3 s at 8 fps -> 6 frames at most; tokens = frame pairs x (h/28) x (w/28)
    assert all(tokens > 0 for reason, tokens, _ in sequential.values() if reason is None)


def test_cache_is_reused_and_invalidated_by_a_changed_file(demo_file, tmp_path):
    records, target = broken_copy(demo_file, tmp_path)
    cache = tmp_path / "cache" / "media_probe.json"
    first = cached_verdicts(records, CFG, "decord", cache, workers=1)
    assert first[(str(target), "video")][0] is not None
    stamp = cache.stat().st_mtime_ns
    again = cached_verdicts(records, CFG, "decord", cache, workers=1)
    assert again == first and cache.stat().st_mtime_ns == stamp, "nothing changed, so nothing is probed or written"
    shutil.copyfile(records[0].media_path, target)  # the file is repaired: new size and mtime
    repaired = cached_verdicts(records, CFG, "decord", cache, workers=1)
    assert repaired[(str(target), "video")][0] is None
    other_settings = cached_verdicts(records, FrameSamplingConfig(1.0, 2, 4, 3136, 6272, 50176), "decord", cache, 1)
    assert all(reason is None for reason, _, _ in other_settings.values())
    assert len(__import__("json").loads(cache.read_text())) == 4 + 1 + 4  # one entry per (file state, settings)


@pytest.mark.parametrize("family_name", ["qwen2_5_vl", "qwen3_vl"])
def test_max_prompt_length_drops_and_counts_long_prompts(demo_file, tiny_model_dir, tiny_qwen3_model_dir, tmp_path,
                                                         family_name):
    from transformers import AutoProcessor

    from rova.models.families import get_family

    family = get_family(family_name)
    model_dir = tiny_model_dir if family_name == "qwen2_5_vl" else tiny_qwen3_model_dir
    f = family.frame_factor

    from rova.errors import DataError
    from rova.config.compose import load_typed
    from rova.training.dataset import load_training_data, prompt_length

    processor = AutoProcessor.from_pretrained(model_dir)
    data_cfg = load_typed([f"data.train_file={demo_file}", "data.build_demo=false"]).data
    everything = load_training_data(data_cfg, f, tmp_path, processor=processor)
    records = load_records(demo_file)
    verdicts = cached_verdicts(records, data_cfg.frame_sampling(f), "decord", tmp_path / "media_probe.json", 1)
    lengths = sorted(prompt_length(processor, r, verdicts[media_key(r)], family) for r in records)
    limit = lengths[len(lengths) // 2]
    limited = load_training_data(data_cfg, f, tmp_path, processor=processor, max_prompt_length=limit, family=family)
    expected = sum(n <= limit for n in lengths)
    assert len(limited.dataset) == expected and limited.too_long == len(records) - expected
    assert len(everything.dataset) == len(records)
    # The count includes the expanded video tokens: it matches what the processor really produces.
    from rova.data.video import read_clip
    from rova.inference.prompts import render_prompt
    from rova.data.prompts import build_messages

    for record in records[:3]:  # the count is exact (Qwen3-VL: visual tokens plus every time label)
        clip = read_clip(record.media_path, data_cfg.frame_sampling(f))
        encoded = family.encode(processor, render_prompt(processor, build_messages(record)), clip.frames, clip.timing)
        assert prompt_length(processor, record, verdicts[media_key(record)], family) == len(encoded.input_ids)
    with pytest.raises(DataError):
        load_training_data(data_cfg, f, tmp_path, processor=processor, max_prompt_length=5, family=family)


def test_the_media_type_is_part_of_the_verdict(demo_file, tmp_path):
    """Issue 22: an image-typed record on an .mp4 probed as a video was reported kept (the cache keyed on the path
    alone), then died at step 1. Each (path, data_type) is probed for what it claims to be."""
    from rova.data.video import split_by_verdict

    video = load_records(demo_file)[0]
    as_image = dataclasses.replace(video, problem_id="img", sample_id="img", data_type="image")
    cache = tmp_path / "media_probe.json"
    kept, skipped = split_by_verdict([video], cached_verdicts([video], CFG, "decord", cache, workers=1))
    assert kept == [video]
    # Later, or in the same file: the same .mp4 under data_type image. PIL cannot read it: skipped, with why.
    for records in ([as_image], [video, as_image]):
        kept, skipped = split_by_verdict(records, cached_verdicts(records, CFG, "decord", cache, workers=1))
        assert [r.sample_id for r, _ in skipped] == ["img"], skipped
        assert "cannot decode image" in skipped[0][1]
        assert kept == records[:-1]
