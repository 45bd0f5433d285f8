"""Difficulty-aware memory: the state machine, replay selection, persistence."""

from __future__ import annotations

import json

import pytest

from rova.errors import ConfigError, DataError
from rova.memory import DifficultyMemory, MemoryConfig


def make(**overrides) -> DifficultyMemory:
    config = dict(fail_threshold=0.0, replay_frac=0.25, recheck_interval=10, max_strikes=2, max_size=4, seed=7)
    config.update(overrides)
    return DifficultyMemory(MemoryConfig(**config))


def test_scripted_lifecycle_enter_replay_recheck_solved_strike_evicted():
    memory = make()
    # step 0: two of three samples fail every rollout (group accuracy 0) and enter.
    added = memory.observe(0, [("vid-a", 11, 0.0), ("vid-b", 12, 0.0), ("vid-c", 13, 0.5)])
    assert added == [("vid-a", 11), ("vid-b", 12)]
    assert memory.stats()["size"] == 2 and memory.stats()["adds"] == 2

    # a failure of a key already in memory changes nothing; a different corruption seed is a new key.
    assert memory.observe(3, [("vid-a", 11, 0.0)]) == []
    assert memory.get("vid-a", 11).added_step == 0
    assert ("vid-a", 99) not in memory

    # replay: 25% of an 8-prompt batch = 2 prompts, both from memory.
    replay = memory.select_replay(step=1, batch_size=8)
    assert sorted(replay) == [("vid-a", 11), ("vid-b", 12)]
    assert memory.stats()["replayed"] == 2
    assert memory.get("vid-a", 11).replays == 1

    # recheck is due recheck_interval steps after entering.
    assert memory.due_for_recheck(9) == []
    assert memory.due_for_recheck(10) == [("vid-a", 11), ("vid-b", 12)]
    assert memory.record_recheck(10, ("vid-a", 11), accuracy=1.0) == "solved"
    assert memory.record_recheck(10, ("vid-b", 12), accuracy=0.0) == "strike"
    assert ("vid-a", 11) not in memory
    assert memory.get("vid-b", 12).strikes == 1

    # the strike restarts the clock: next due at step 20; the second strike evicts.
    assert memory.due_for_recheck(19) == []
    assert memory.due_for_recheck(20) == [("vid-b", 12)]
    assert memory.record_recheck(20, ("vid-b", 12), accuracy=0.0) == "evicted"
    assert len(memory) == 0
    assert memory.record_recheck(21, ("vid-b", 12), accuracy=1.0) == "absent"

    assert memory.stats() == {
        "size": 0,
        "adds": 2,
        "solved": 1,
        "evicted": 1,
        "evicted_strikes": 1,
        "evicted_overflow": 0,
        "replayed": 2,
        "rechecks": 3,
        "strikes": 2,
    }

    # a solved sample that fails again later re-enters as a new entry.
    assert memory.observe(30, [("vid-a", 11, 0.0)]) == [("vid-a", 11)]
    assert memory.get("vid-a", 11).added_step == 30


def test_fail_threshold_and_nan():
    memory = make(fail_threshold=0.25)
    added = memory.observe(0, [("a", 0, 0.25), ("b", 0, 0.26), ("c", 0, float("nan")), (5, 1, 0.0)])
    assert added == [("a", 0), (5, 1)]
    # a re-check must beat the same threshold to count as solved
    memory.observe(0, [])
    assert memory.record_recheck(10, ("a", 0), 0.25) == "strike"
    assert memory.record_recheck(10, (5, 1), 0.5) == "solved"


def test_max_size_evicts_the_oldest_first():
    memory = make(max_size=3)
    for step, name in enumerate("abcde"):
        memory.observe(step, [(name, 0, 0.0)])
    assert memory.keys() == [("c", 0), ("d", 0), ("e", 0)]
    stats = memory.stats()
    assert stats["size"] == 3 and stats["adds"] == 5 and stats["evicted_overflow"] == 2 and stats["evicted"] == 2


def test_replay_is_deterministic_across_ranks_and_varies_with_step():
    def build():
        memory = make(max_size=100, replay_frac=0.5)
        memory.observe(0, [(f"s{i}", i, 0.0) for i in range(20)])
        return memory

    rank0, rank1 = build(), build()
    picks = [rank0.select_replay(step, 8) for step in range(1, 6)]
    assert picks == [rank1.select_replay(step, 8) for step in range(1, 6)]
    assert all(len(p) == 4 and len(set(p)) == 4 for p in picks)
    assert len({tuple(p) for p in picks}) > 1
    other_seed = make(max_size=100, replay_frac=0.5, seed=8)
    other_seed.observe(0, [(f"s{i}", i, 0.0) for i in range(20)])
    assert [other_seed.select_replay(step, 8) for step in range(1, 6)] != picks


def test_replay_count_rounding_and_caps():
    memory = make(max_size=100, replay_frac=0.25)
    assert memory.select_replay(1, 8) == []  # empty memory
    memory.observe(0, [("a", 0, 0.0)])
    assert len(memory.select_replay(1, 8)) == 1  # capped by size
    memory.observe(0, [(f"s{i}", 0, 0.0) for i in range(10)])
    # 0.25 * 2 = 0.5 per step: stochastic rounding keeps the configured rate on small batches
    counts = [memory.replay_count(step, 2) for step in range(400)]
    assert set(counts) == {0, 1}
    assert 0.4 < sum(counts) / len(counts) < 0.6
    assert make(replay_frac=0.0).replay_count(1, 8) == 0


def test_round_trip_to_dict_and_file(tmp_path):
    memory = make()
    memory.observe(0, [("a", 1, 0.0), (42, 2, 0.0)])
    memory.select_replay(1, 8)
    memory.record_recheck(10, ("a", 1), 0.0)
    path = memory.save(tmp_path / "run" / "memory.json")
    assert path.name == "memory.json"
    restored = DifficultyMemory.load(path)
    assert restored == memory
    assert restored.keys() == [("a", 1), (42, 2)]  # FIFO order and key types survive JSON
    assert restored.stats() == memory.stats()
    # the restored memory behaves identically
    assert restored.select_replay(5, 8) == memory.select_replay(5, 8)
    assert restored.due_for_recheck(20) == memory.due_for_recheck(20)
    assert DifficultyMemory.from_dict(json.loads(json.dumps(memory.to_dict()))) == memory


def test_load_with_a_smaller_max_size_drops_the_oldest(tmp_path):
    memory = make(max_size=4)
    memory.observe(0, [(name, 0, 0.0) for name in "abcd"])
    memory.save(tmp_path / "memory.json")
    restored = DifficultyMemory.load(tmp_path / "memory.json", config=MemoryConfig(max_size=2))
    assert restored.keys() == [("c", 0), ("d", 0)]
    assert restored.stats()["evicted_overflow"] == 2


def test_load_errors_name_the_file(tmp_path):
    path = tmp_path / "memory.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="memory.json"):
        DifficultyMemory.load(path)
    path.write_text(json.dumps({"version": 99}))
    with pytest.raises(DataError, match="version"):
        DifficultyMemory.load(path)
    with pytest.raises(FileNotFoundError):
        DifficultyMemory.load(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "key, value",
    [("fail_threshold", 1.0), ("replay_frac", 1.5), ("recheck_interval", 0), ("max_strikes", 0), ("max_size", 0), ("max_size", 2.5)],
)
def test_config_validation_names_the_key(key, value):
    with pytest.raises(ConfigError, match=f"memory.{key}"):
        MemoryConfig(**{key: value})


def test_keys_must_be_stable_types():
    memory = make()
    with pytest.raises(TypeError, match="sample_id"):
        memory.observe(0, [(("tuple",), 0, 0.0)])
    with pytest.raises(TypeError, match="corruption_seed"):
        memory.observe(0, [("a", 1.5, 0.0)])


def test_defaults_match_the_spec():
    config = MemoryConfig()
    assert (config.fail_threshold, config.replay_frac, config.recheck_interval, config.max_strikes, config.max_size) == (
        0.0,
        0.25,
        50,
        2,
        100,
    )
