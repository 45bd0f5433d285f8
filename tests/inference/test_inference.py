"""rova.inference: the one end-of-sequence cut, shard files and the probe pool shared by training, eval and cot."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rova.data.probe_pool import probe_all
from rova.inference.eos import cut_at_eos
from rova.inference.sharding import shard_file, shard_of

tokens = st.lists(st.integers(min_value=0, max_value=9), max_size=30)
eos_sets = st.sets(st.integers(min_value=0, max_value=9), max_size=3)


@given(tokens, eos_sets)
def test_cut_ends_at_the_first_eos_or_keeps_everything(row, eos):
    cut = cut_at_eos(row, eos)
    assert row[: len(cut)] == cut  # a prefix
    if any(t in eos for t in row):
        first = next(i for i, t in enumerate(row) if t in eos)
        assert len(cut) == first + 1 and cut[-1] in eos  # EOS kept, nothing after it
        assert not any(t in eos for t in cut[:-1])
    else:
        assert cut == row  # a truncated completion stays whole


@given(tokens, eos_sets)
def test_cut_matches_the_loop_it_replaced(row, eos):
    """The three copies of this loop (HF eval, vLLM eval, trainer rollout) that cut_at_eos replaced."""
    old = next((i for i, tok in enumerate(row) if tok in eos), None)
    assert cut_at_eos(row, eos) == (row[: old + 1] if old is not None else row)
    assert cut_at_eos(row, list(eos)) == cut_at_eos(row, set(eos))  # a list of ids or a set


@given(tokens, eos_sets, tokens)
def test_cut_ignores_what_follows_the_end(row, eos, tail):
    cut = cut_at_eos(row, eos)
    if cut and cut[-1] in eos:
        assert cut_at_eos(cut + tail, eos) == cut  # padding or a stop token's tail never leaks in


def test_shard_files_and_indices(tmp_path):
    assert shard_file(tmp_path, "predictions.jsonl", 0, 1) == tmp_path / "predictions.jsonl"
    assert shard_file(tmp_path, "predictions.jsonl", 1, 4) == tmp_path / "predictions.shard1-of-4.jsonl"
    assert shard_file(tmp_path, "cot_predictions.jsonl", 3, 4).name == "cot_predictions.shard3-of-4.jsonl"
    # 2 array tasks x 3 processes: every (task, rank) its own shard of 6
    assert sorted(shard_of(rank, 3, task, 2) for task in range(2) for rank in range(3)) == [(i, 6) for i in range(6)]


def _square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("workers", [1, 2])
def test_probe_pool_keeps_job_order(workers):
    jobs = list(range(7))
    assert probe_all(_square, jobs, workers) == [x * x for x in jobs]
    assert probe_all(_square, [], workers) == []


def test_blank_video_control_keeps_shape_and_timing_and_removes_every_pixel(tmp_path):
    from rova.config.data import FrameSamplingConfig
    from rova.data.shapes import build_shapes_dataset
    from rova.data.records import load_records
    from rova.inference.clips import BLANK_LEVEL, read_view

    record = load_records(build_shapes_dataset(tmp_path, 1, "val"))[0]
    sampling = FrameSamplingConfig(fps=4.0, min_frames=16, max_frames=16, min_pixels=3136, max_pixels=4096,
                                   total_pixels=65536)
    real = read_view(record.media_path, "video", sampling, "pyav")
    blanked = read_view(record.media_path, "video", sampling, "pyav", blank_video=True)
    assert blanked.frames.shape == real.frames.shape and blanked.timing == real.timing
    assert real.frames.std() > 10 and (blanked.frames == BLANK_LEVEL).all()


def test_remove_none_values_is_trls():
    """render_prompt strips Arrow's None keys with its own copy of TRL's helper (TRL costs seconds to import)."""
    from trl.trainer.utils import remove_none_values as trl_remove

    from rova.inference.prompts import remove_none_values

    examples = [
        [{"role": "user", "content": [{"type": "video", "text": None, "video": "a.mp4"},
                                      {"type": "text", "text": "Q?", "video": None}]}],
        {"a": {"aa": None, "ab": 1}, "b": "s", "c": [None, {"d": None}, [1, None]], "e": None},
        [],
        {},
    ]
    for example in examples:
        assert remove_none_values(example) == trl_remove(example)
    with pytest.raises(TypeError):
        remove_none_values("text")


def test_prediction_store_writes_a_batch_with_one_fsync_and_refuses_duplicates(tmp_path, monkeypatch):
    import json
    import os

    from rova.inference.predictions import PredictionStore

    fsyncs = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd)))
    path = tmp_path / "predictions.jsonl"
    store = PredictionStore(path)
    batch = [{"cell": "clean", "item_id": f"b/{i}", "score": i / 4} for i in range(4)]
    store.extend(batch)
    assert len(fsyncs) == 1
    store.append({"cell": "fog@1", "item_id": "b/0", "score": 0.0})
    store.extend([])
    assert len(fsyncs) == 2
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == [*batch, {"cell": "fog@1", "item_id": "b/0", "score": 0.0}]
    with pytest.raises(ValueError, match="already scored"):
        store.extend([{"cell": "clean", "item_id": "b/9"}, {"cell": "clean", "item_id": "b/1"}])
    with pytest.raises(ValueError, match="twice"):
        store.extend([{"cell": "clean", "item_id": "b/9"}, {"cell": "clean", "item_id": "b/9"}])
    assert len(path.read_text().splitlines()) == 5  # a refused batch writes nothing
    # A kill inside a batch's write leaves a prefix of its lines; the next load keeps the whole ones.
    path.write_text(path.read_text() + json.dumps({"cell": "clean", "item_id": "b/7"}) + "\n" + '{"cell": "cl')
    again = PredictionStore(path)
    assert again.done("clean", "b/7") and len(again.records) == 6 and path.read_text().endswith("\n")
