"""ReplayMemory (entry view rule, replay rows, replay counting) and the replay sampler / dataset view."""

from __future__ import annotations

import itertools
import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.config.memory import MemoryConfig
from rova.memory import (
    GroupOutcome, MemoryView, ReplayDataset, ReplayItem, ReplayMemory, ReplayRepeatSampler,
)

SPEC = {"family": "weather", "variant": "rain", "severity": 3, "seed": 5, "params": {"angle": 10.0}}
CLEAN = MemoryView.clean()


def make(**overrides) -> ReplayMemory:
    config = dict(fail_threshold=0.0, replay_frac=0.25, recheck_interval=10, max_strikes=2, max_size=100, seed=7)
    config.update(overrides)
    return ReplayMemory(MemoryConfig(**config))


def outcome(sample_id, clean, corrupted=None, seed=None, spec=None, replayed=None) -> GroupOutcome:
    return GroupOutcome(sample_id, clean, corrupted, seed, spec, replayed)


# ------------------------------------------------------------------------------------------------
# Defect 4: an entry records the view that failed; the re-check and the replay use exactly that view.


def test_clean_failure_enters_the_clean_view_with_the_clean_accuracy():
    memory = make(fail_threshold=0.25)
    added = memory.observe(0, [outcome("a", clean=0.25, corrupted=0.0, seed=9, spec=SPEC)])
    assert added == [("a", "clean", None)]  # clean first, even though the corrupted group failed too
    entry = memory.entry(("a", "clean", None))
    assert entry.view == CLEAN and entry.accuracy == 0.25


def test_corrupted_failure_enters_the_corrupted_view_with_its_seed_spec_and_accuracy():
    memory = make(fail_threshold=0.25)
    added = memory.observe(0, [outcome("a", clean=0.75, corrupted=0.125, seed=9, spec=SPEC)])
    assert added == [("a", "corrupted", 9)]
    entry = memory.entry(("a", "corrupted", 9))
    assert entry.view == MemoryView.corrupted(9, SPEC) and entry.view.corruption_spec == SPEC
    assert entry.accuracy == 0.125


def test_no_failure_no_entry_and_nan_never_fails():
    memory = make(fail_threshold=0.25)
    assert memory.observe(0, [
        outcome("pass", clean=0.5, corrupted=0.5, seed=1, spec=SPEC),
        outcome("clean-only", clean=0.5),
        outcome("nan", clean=float("nan"), corrupted=float("nan"), seed=2),
    ]) == []
    assert len(memory) == 0
    with pytest.raises(ValueError, match="no corruption_seed"):
        memory.observe(0, [outcome("x", clean=1.0, corrupted=0.0)])


def test_the_same_sample_can_hold_several_views():
    memory = make()
    memory.observe(0, [outcome("a", 0.0)])
    memory.observe(1, [outcome("a", 1.0, 0.0, seed=3, spec=SPEC), outcome("a", 1.0, 0.0, seed=4)])
    assert memory.keys() == [("a", "clean", None), ("a", "corrupted", 3), ("a", "corrupted", 4)]
    assert memory.observe(2, [outcome("a", 0.0)]) == []  # already there: clock and strikes keep running
    assert memory.entry(("a", "clean", None)).added_step == 0


def test_replay_row_replays_exactly_the_stored_view():
    memory = make()
    memory.observe(0, [outcome("clean-fail", 0.0, 1.0, seed=1, spec=SPEC), outcome("corr-fail", 1.0, 0.0, seed=2, spec=SPEC)])
    # the base row may carry leftovers of another view: the replay row must not keep them
    base = {"sample_id": "clean-fail", "prompt": "p", "corruption_seed": 1, "corruption_record": SPEC}
    row = memory.replay_row(base, ("clean-fail", "clean", None))
    assert row["corruption_seed"] is None and row["corruption_record"] is None
    assert row["replayed"] is True and row["replay_view"] == CLEAN.to_dict()
    assert base["corruption_seed"] == 1  # the dataset row itself is untouched

    row = memory.replay_row({"sample_id": "corr-fail", "prompt": "p"}, ("corr-fail", "corrupted", 2))
    assert row["corruption_seed"] == 2 and row["corruption_record"] == SPEC
    assert MemoryView.from_dict(row["replay_view"]) == MemoryView.corrupted(2, SPEC)
    row["corruption_record"]["params"]["angle"] = -1.0
    assert memory.entry(("corr-fail", "corrupted", 2)).view.corruption_spec == SPEC  # a copy, not the stored spec

    with pytest.raises(ValueError, match="another sample"):
        memory.replay_row({"sample_id": "clean-fail"}, ("corr-fail", "corrupted", 2))
    with pytest.raises(KeyError, match="not in the memory"):
        memory.replay_row({"sample_id": "x"}, ("x", "clean", None))


def test_due_entries_expose_the_view_to_recheck_and_rechecks_apply_to_that_view():
    memory = make(recheck_interval=5)
    memory.observe(0, [outcome("a", 0.0), outcome("b", 1.0, 0.0, seed=2, spec=SPEC)])
    memory.observe(0, [outcome("b", 1.0, 0.0, seed=3)])  # a second corrupted view of b
    assert memory.due(4) == []
    due = memory.due(5)
    assert [(e.key, e.view) for e in due] == [
        (("a", "clean", None), CLEAN), (("b", "corrupted", 2), MemoryView.corrupted(2, SPEC)),
        (("b", "corrupted", 3), MemoryView.corrupted(3)),
    ]
    counts = memory.record_rechecks(5, [(("b", "corrupted", 2), 1.0), (("a", "clean", None), 0.0), (("z", "clean", None), 1.0)])
    assert counts == {"solved": 1, "strike": 1, "evicted": 0, "absent": 1}
    assert memory.keys() == [("a", "clean", None), ("b", "corrupted", 3)]  # only that view of b was solved
    with pytest.raises(ValueError, match="twice"):
        memory.record_rechecks(6, [(("a", "clean", None), 0.0), (("a", "clean", None), 0.0)])


def test_the_replay_row_reproduces_the_corrupted_clip_through_the_clip_source():
    """End to end with the trainer's ClipSource: the replayed corrupted clip is the clip that failed."""
    from rova.config.corruption import CorruptionConfig
    from rova.inference.clips import View
    from rova.training.clips import ClipSource

    corruption = CorruptionConfig(p_weather=1.0)
    source = ClipSource(sampling=None, backend="none", corruption=corruption, seed=123)
    frames = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    source._cache["clip.mp4"] = View(frames, 2.0, False)  # stands in for the decoded clip
    row = {"sample_id": "s", "media_path": "clip.mp4"}
    failed = source.corrupted(row, step=7)
    seed = source.corruption_seed(row, 7)

    memory = make()
    memory.observe(7, [outcome("s", 1.0, 0.0, seed=seed, spec=failed.record)])
    replay = memory.replay_row(row, ("s", "corrupted", seed))
    again = source.corrupted(replay, step=500)  # a later step would draw another corruption for a fresh row
    assert np.array_equal(again.frames, failed.frames)
    assert not np.array_equal(source.corrupted(row, step=500).frames, failed.frames)


# ------------------------------------------------------------------------------------------------
# Defect 5a: selection is pure; a replay counts when its outcome arrives.


def test_replay_counts_when_the_outcome_arrives_not_when_selected():
    memory = make(replay_frac=1.0)
    memory.observe(0, [outcome("a", 0.0), outcome("b", 1.0, 0.0, seed=4, spec=SPEC)])
    before = memory.to_dict()
    for index in range(50):
        memory.replay_keys(index, 4)
    assert memory.to_dict() == before and memory.metrics()["replayed"] == 0

    keys = memory.replay_keys(1, 4)
    rows = [memory.replay_row({"sample_id": key[0]}, key) for key in keys]
    outcomes = [outcome(r["sample_id"], 1.0, 1.0, seed=r["corruption_seed"] or 99, replayed=r["replay_view"]) for r in rows]
    memory.observe(1, outcomes)
    assert memory.metrics()["replayed"] == 2
    assert memory.entry(("a", "clean", None)).replays == 1
    assert memory.entry(("b", "corrupted", 4)).replays == 1


@settings(max_examples=60, deadline=None)
@given(
    failures=st.lists(st.tuples(st.integers(0, 15), st.booleans(), st.integers(0, 3)), max_size=40),
    seed=st.integers(0, 5),
    replay_frac=st.floats(0.0, 1.0),
    batch_size=st.integers(0, 12),
    indices=st.lists(st.integers(0, 10_000), min_size=1, max_size=8),
)
def test_property_selection_is_pure_deterministic_and_one_view_per_sample(failures, seed, replay_frac, batch_size, indices):
    def build():
        memory = make(seed=seed, replay_frac=replay_frac, max_size=20)
        memory.observe(0, [
            outcome(f"s{sid}", 0.0) if clean else outcome(f"s{sid}", 1.0, 0.0, seed=view_seed)
            for sid, clean, view_seed in failures
        ])
        return memory

    rank0, rank1 = build(), build()
    state = json.dumps(rank0.to_dict())
    picks = [rank0.replay_keys(i, batch_size) for i in indices]
    assert json.dumps(rank0.to_dict()) == state  # pure
    assert picks == [rank0.replay_keys(i, batch_size) for i in indices]  # deterministic
    assert picks == [rank1.replay_keys(i, batch_size) for i in reversed(indices)][::-1]  # order of calls is irrelevant
    distinct = len({key[0] for key in rank0.keys()})
    for keys in picks:
        assert all(key in rank0 for key in keys)
        assert len({key[0] for key in keys}) == len(keys) <= min(batch_size, distinct)


def test_outcomes_pickle_and_round_trip_json():
    item = outcome("a", 0.5, 0.0, seed=3, spec=SPEC, replayed=MemoryView.corrupted(3, SPEC))
    assert pickle.loads(pickle.dumps(item)) == item
    assert GroupOutcome.from_dict(json.loads(json.dumps(item.to_dict()))) == item
    assert outcome("a", 1, replayed=CLEAN.to_dict()).replayed == CLEAN  # a row's replay_view dict is accepted
    view = MemoryView.corrupted(3, SPEC)
    assert pickle.loads(pickle.dumps(view)) == view and MemoryView.from_dict(view.to_dict()) == view


# ------------------------------------------------------------------------------------------------
# Sampler and dataset view


def trl_repeat_sampler(n, **kwargs):
    from trl.trainer.utils import RepeatSampler

    return RepeatSampler(list(range(n)), **kwargs)


def prompts_of(items, mini_repeat_count, batch_size, repeat_count):
    """Split a sampler output into generation batches of distinct prompts, checking the repeat layout."""
    batches = []
    block = batch_size * mini_repeat_count * repeat_count
    assert len(items) % block == 0
    for start in range(0, len(items), block):
        chunk = items[start : start + block]
        once = chunk[: batch_size * mini_repeat_count]
        assert chunk == once * repeat_count  # the whole batch is repeated repeat_count times
        prompts = once[::mini_repeat_count]
        assert once == [p for p in prompts for _ in range(mini_repeat_count)]  # each prompt G times in a row
        batches.append(prompts)
    return batches


@pytest.mark.parametrize("n, g, b, r", [(7, 2, 3, 4), (12, 3, 4, 2), (5, 1, 5, 1)])
def test_with_nothing_to_replay_the_sampler_is_trls_repeat_sampler(n, g, b, r):
    ours = ReplayRepeatSampler(list(range(n)), make(), mini_repeat_count=g, batch_size=b, repeat_count=r, seed=42)
    theirs = trl_repeat_sampler(n, mini_repeat_count=g, batch_size=b, repeat_count=r, seed=42)
    for _ in range(3):  # several epochs: the same permutations
        assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)


def test_replays_replace_fresh_prompts_and_never_duplicate_a_sample():
    ids = [f"s{i}" for i in range(8)]
    memory = make(replay_frac=0.5)
    memory.observe(0, [outcome(sid, 0.0) for sid in ids] + [outcome(sid, 1.0, 0.0, seed=1) for sid in ids])
    sampler = ReplayRepeatSampler(ids, memory, mini_repeat_count=2, batch_size=4, repeat_count=1, seed=0)
    batches = prompts_of(list(sampler), 2, 4, 1)
    assert len(batches) == 2
    for batch in batches:
        replays = [item for item in batch if isinstance(item, ReplayItem)]
        assert len(replays) == 2
        samples = [ids[item.index] if isinstance(item, ReplayItem) else ids[item] for item in batch]
        assert len(set(samples)) == len(samples) == 4  # never the same sample twice in one batch
        for item in replays:
            assert ids[item.index] == item.key[0] and memory.entry(item.key).view == item.view


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 14), g=st.integers(1, 3), b=st.integers(1, 6), r=st.integers(1, 3),
    replay_frac=st.floats(0.0, 1.0), seed=st.integers(0, 3),
    failed=st.lists(st.tuples(st.integers(0, 13), st.booleans(), st.integers(0, 2)), max_size=30),
)
def test_property_sampler_keeps_the_repeat_invariant(n, g, b, r, replay_frac, seed, failed):
    ids = [f"s{i}" for i in range(n)]

    def build():
        memory = make(replay_frac=replay_frac, max_size=50)
        memory.observe(0, [
            outcome(f"s{sid}", 0.0) if clean else outcome(f"s{sid}", 1.0, 0.0, seed=s) for sid, clean, s in failed
        ] + [outcome("not-in-dataset", 0.0)])
        return memory

    memory = build()
    state = json.dumps(memory.to_dict())
    rank0 = ReplayRepeatSampler(ids, memory, g, b, r, seed)
    rank1 = ReplayRepeatSampler(ids, build(), g, b, r, seed)
    items = list(rank0)
    assert items == list(rank1)  # the same order on every rank
    assert len(items) == len(rank0)
    assert json.dumps(memory.to_dict()) == state  # iterating changes nothing
    for batch in prompts_of(items, g, b, r):
        samples = [ids[item.index] if isinstance(item, ReplayItem) else ids[item] for item in batch]
        assert len(set(samples)) == len(samples) == b
        assert "not-in-dataset" not in samples


def test_the_generation_index_is_the_samplers_own_and_follows_set_epoch():
    ids = [f"s{i}" for i in range(6)]
    memory = make(replay_frac=0.5)
    memory.observe(0, [outcome(sid, 0.0) for sid in ids])
    seen = []
    original = memory.replay_choice
    memory.replay_choice = lambda index, size, eligible=None: seen.append(index) or original(index, size, eligible)
    sampler = ReplayRepeatSampler(ids, memory, mini_repeat_count=1, batch_size=2, seed=0)
    first, second = list(sampler), list(sampler)
    assert seen == [0, 1, 2, 3, 4, 5]
    seen.clear()
    sampler.set_epoch(1)  # what the HF Trainer does when it resumes in epoch 1
    assert list(sampler) == second and seen == [3, 4, 5]
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_replay_keys_are_chosen_when_the_batch_is_reached():
    ids = [f"s{i}" for i in range(6)]
    memory = make(replay_frac=1.0)
    items = iter(ReplayRepeatSampler(ids, memory, mini_repeat_count=1, batch_size=3, seed=0))
    first = list(itertools.islice(items, 3))
    assert not any(isinstance(item, ReplayItem) for item in first)
    memory.observe(0, [outcome("s0", 0.0)])  # the outcome of batch 0 arrives before batch 1 is drawn
    assert ReplayItem(0, ("s0", "clean", None), CLEAN) in list(items)


def test_replay_dataset_returns_base_rows_and_replay_rows():
    import datasets

    base = datasets.Dataset.from_list([{"sample_id": f"s{i}", "prompt": f"p{i}"} for i in range(3)])
    memory = make()
    memory.observe(0, [outcome("s1", 1.0, 0.0, seed=8, spec=SPEC)])
    view = ReplayDataset(base, memory)
    assert view.sample_ids == ["s0", "s1", "s2"] and len(view) == 3
    assert view[0] == {"sample_id": "s0", "prompt": "p0"}
    row = view[ReplayItem(1, ("s1", "corrupted", 8), MemoryView.corrupted(8, SPEC))]
    assert row["sample_id"] == "s1" and row["corruption_seed"] == 8 and row["corruption_record"] == SPEC
    assert row["replayed"] is True
    # the item carries its view: a worker's stale memory copy (here: empty) still builds the row
    assert ReplayDataset(base, make())[ReplayItem(1, ("s1", "corrupted", 8), MemoryView.corrupted(8, SPEC))] == row
