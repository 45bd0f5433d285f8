"""Difficulty-aware memory: the state machine, pure replay selection, persistence format."""

from __future__ import annotations

import json

import pytest

from rova.errors import ConfigError, DataError
from rova.config.memory import MemoryConfig
from rova.memory import FORMAT_VERSION, DifficultyMemory, MemoryView

CLEAN = MemoryView.clean()
SPEC = {"family": "weather", "variant": "rain", "severity": 3, "seed": 11, "params": {"angle": [1, 2]}}


def corrupted(seed: int, spec: dict | None = None) -> MemoryView:
    return MemoryView.corrupted(seed, spec)


def make(**overrides) -> DifficultyMemory:
    config = dict(fail_threshold=0.0, replay_frac=0.25, recheck_interval=10, max_strikes=2, max_size=4, seed=7)
    config.update(overrides)
    return DifficultyMemory(MemoryConfig(**config))


def fill(memory: DifficultyMemory, step: int, names, view: MemoryView = CLEAN) -> list:
    return [memory.add(step, name, view, 0.0) for name in names]


def test_scripted_lifecycle_enter_recheck_solved_strike_evicted():
    memory = make()
    assert memory.add(0, "vid-a", CLEAN, 0.0) == ("vid-a", "clean", None)
    assert memory.add(0, "vid-b", corrupted(12, SPEC), 0.0) == ("vid-b", "corrupted", 12)
    assert memory.stats()["size"] == 2 and memory.stats()["adds"] == 2
    assert memory.stats()["size_clean"] == 1 and memory.stats()["size_corrupted"] == 1

    # a failure of a key already in memory changes nothing; another view of the same sample is a new key.
    assert memory.add(3, "vid-a", CLEAN, 0.0) is None
    assert memory.get(("vid-a", "clean", None)).added_step == 0
    assert ("vid-a", "corrupted", 99) not in memory
    assert memory.get(("vid-b", "corrupted", 12)).view == corrupted(12, SPEC)

    # recheck is due recheck_interval steps after entering.
    assert memory.due_for_recheck(9) == []
    assert memory.due_for_recheck(10) == [("vid-a", "clean", None), ("vid-b", "corrupted", 12)]
    assert memory.record_recheck(10, ("vid-a", "clean", None), accuracy=1.0) == "solved"
    assert memory.record_recheck(10, ("vid-b", "corrupted", 12), accuracy=0.0) == "strike"
    assert ("vid-a", "clean", None) not in memory
    assert memory.get(("vid-b", "corrupted", 12)).strikes == 1

    # the strike restarts the clock: next due at step 20; the second strike evicts.
    assert memory.due_for_recheck(19) == []
    assert memory.due_for_recheck(20) == [("vid-b", "corrupted", 12)]
    assert memory.record_recheck(20, ("vid-b", "corrupted", 12), accuracy=0.0) == "evicted"
    assert len(memory) == 0
    assert memory.record_recheck(21, ("vid-b", "corrupted", 12), accuracy=1.0) == "absent"

    assert memory.stats() == {
        "size": 0, "size_clean": 0, "size_corrupted": 0, "adds": 2, "solved": 1, "evicted": 1,
        "evicted_strikes": 1, "evicted_overflow": 0, "replayed": 0, "rechecks": 3, "strikes": 2,
    }
    # a solved sample that fails again later re-enters as a new entry.
    assert memory.add(30, "vid-a", CLEAN, 0.0) == ("vid-a", "clean", None)
    assert memory.get(("vid-a", "clean", None)).added_step == 30


def test_recheck_threshold_is_the_complement_of_the_entry_rule():
    memory = make(fail_threshold=0.25)
    fill(memory, 0, ["a", 5])
    assert memory.record_recheck(10, ("a", "clean", None), 0.25) == "strike"
    assert memory.record_recheck(10, (5, "clean", None), 0.5) == "solved"


def test_max_size_evicts_the_oldest_first():
    memory = make(max_size=3)
    for step, name in enumerate("abcde"):
        memory.add(step, name, CLEAN, 0.0)
    assert memory.keys() == [("c", "clean", None), ("d", "clean", None), ("e", "clean", None)]
    stats = memory.stats()
    assert stats["size"] == 3 and stats["adds"] == 5 and stats["evicted_overflow"] == 2 and stats["evicted"] == 2


def test_count_replay_counts_even_when_the_entry_left():
    memory = make()
    fill(memory, 0, ["a"])
    memory.count_replay(("a", "clean", None))
    memory.count_replay(("gone", "corrupted", 3))
    assert memory.get(("a", "clean", None)).replays == 1
    assert memory.stats()["replayed"] == 2


def test_selection_is_pure_deterministic_and_varies_with_index():
    def build(seed=7):
        memory = make(max_size=100, replay_frac=0.5, seed=seed)
        fill(memory, 0, [f"s{i}" for i in range(20)])
        return memory

    rank0, rank1 = build(), build()
    before = rank0.to_dict()
    picks = [rank0.select_replay(index, 8) for index in range(1, 6)]
    assert rank0.to_dict() == before  # selection changes nothing
    assert picks == [rank0.select_replay(index, 8) for index in range(1, 6)]  # ... so it repeats exactly
    assert picks == [rank1.select_replay(index, 8) for index in range(1, 6)]
    assert all(len(p) == 4 and len(set(p)) == 4 for p in picks)
    assert len({tuple(p) for p in picks}) > 1
    other = build(seed=8)
    assert [other.select_replay(index, 8) for index in range(1, 6)] != picks


def test_selection_takes_one_view_per_sample_and_respects_eligible():
    memory = make(max_size=100, replay_frac=1.0)
    for seed in range(5):
        memory.add(0, "same", corrupted(seed), 0.0)
    memory.add(0, "same", CLEAN, 0.0)
    memory.add(0, "other", CLEAN, 0.0)
    for index in range(20):
        picks = memory.select_replay(index, 4)
        assert len(picks) == 2 and {key[0] for key in picks} == {"same", "other"}
    assert memory.select_replay(0, 4, eligible={"other"}) == [("other", "clean", None)]
    assert memory.select_replay(0, 4, eligible=set()) == []


def test_replay_count_rounding_and_caps():
    memory = make(max_size=100, replay_frac=0.25)
    assert memory.select_replay(1, 8) == []  # empty memory
    fill(memory, 0, ["a"])
    assert len(memory.select_replay(1, 8)) == 1  # capped by size
    fill(memory, 0, [f"s{i}" for i in range(10)])
    # 0.25 * 2 = 0.5 per batch: stochastic rounding keeps the configured rate on small batches
    counts = [memory.replay_count(index, 2) for index in range(400)]
    assert set(counts) == {0, 1}
    assert 0.4 < sum(counts) / len(counts) < 0.6
    assert make(replay_frac=0.0).replay_count(1, 8) == 0
    with pytest.raises(ValueError, match="batch_size"):
        memory.select_replay(0, -1)


def test_round_trip_to_dict_and_file(tmp_path):
    memory = make()
    memory.add(0, "a", corrupted(1, SPEC), 0.0)
    memory.add(0, 42, CLEAN, 0.25)
    memory.count_replay(("a", "corrupted", 1))
    memory.record_recheck(10, ("a", "corrupted", 1), 0.0)
    path = memory.save(tmp_path / "run" / "memory.json")
    assert path.name == "memory.json"
    restored = DifficultyMemory.load(path)
    assert restored == memory
    assert restored.keys() == [("a", "corrupted", 1), (42, "clean", None)]  # FIFO order and key types survive
    assert restored.get(("a", "corrupted", 1)).view.corruption_spec == SPEC
    assert restored.stats() == memory.stats()
    assert restored.select_replay(5, 8) == memory.select_replay(5, 8)
    assert restored.due_for_recheck(20) == memory.due_for_recheck(20)
    assert DifficultyMemory.from_dict(json.loads(json.dumps(memory.to_dict()))) == memory
    assert json.loads(path.read_text())["version"] == FORMAT_VERSION == 2


def test_spec_is_stored_in_json_form():
    # tuples become lists on the way through memory.json; storing the JSON form keeps restored == saved.
    view = corrupted(1, {**SPEC, "params": {"angle": (1, 2)}})
    assert view.corruption_spec["params"]["angle"] == [1, 2]


def test_load_with_a_smaller_max_size_drops_the_oldest(tmp_path):
    memory = make(max_size=4)
    fill(memory, 0, "abcd")
    memory.save(tmp_path / "memory.json")
    restored = DifficultyMemory.load(tmp_path / "memory.json", config=MemoryConfig(max_size=2))
    assert restored.keys() == [("c", "clean", None), ("d", "clean", None)]
    assert restored.stats()["evicted_overflow"] == 2


def test_load_errors_name_the_file(tmp_path):
    path = tmp_path / "memory.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="memory.json"):
        DifficultyMemory.load(path)
    path.write_text(json.dumps({"version": FORMAT_VERSION, "config": {}, "counters": {}, "entries": [{"x": 1}]}))
    with pytest.raises(DataError, match="memory.json: memory state is malformed"):
        DifficultyMemory.load(path)
    with pytest.raises(FileNotFoundError):
        DifficultyMemory.load(tmp_path / "missing.json")


def test_an_old_format_version_is_a_clear_error(tmp_path):
    # what rova wrote before entries stored their view (format 1)
    old = {
        "version": 1,
        "config": {"fail_threshold": 0.0},
        "counters": {"adds": 1},
        "entries": [{"sample_id": "a", "corruption_seed": 3, "added_step": 0, "last_check_step": 0, "accuracy": 0.0}],
    }
    path = tmp_path / "memory.json"
    path.write_text(json.dumps(old))
    with pytest.raises(DataError, match=r"memory.json: .*format version 1.*reads version 2"):
        DifficultyMemory.load(path)


@pytest.mark.parametrize(
    "key, value",
    [("fail_threshold", 1.0), ("replay_frac", 1.5), ("recheck_interval", 0), ("max_strikes", 0), ("max_size", 0), ("max_size", 2.5)],
)
def test_config_validation_names_the_key(key, value):
    with pytest.raises(ConfigError, match=f"memory.{key}"):
        MemoryConfig(**{key: value})


def test_keys_and_views_must_be_stable_types():
    memory = make()
    with pytest.raises(TypeError, match="sample_id"):
        memory.add(0, ("tuple",), CLEAN, 0.0)
    with pytest.raises(TypeError, match="corruption_seed"):
        MemoryView.corrupted(1.5)
    with pytest.raises(ValueError, match="clean view"):
        MemoryView("clean", 3)
    with pytest.raises(ValueError, match="kind"):
        MemoryView("shuffled")
    with pytest.raises(ValueError, match="exactly the keys"):
        MemoryView.corrupted(3, {"family": "clean", "seed": 3})  # not a replayable CorruptionRecord
    with pytest.raises(ValueError, match="no such variant"):
        MemoryView.corrupted(3, {**SPEC, "variant": "night"})
    with pytest.raises(TypeError, match="memory key"):
        memory.record_recheck(0, ("a", 3), 1.0)  # the old (sample_id, seed) key
    with pytest.raises(TypeError, match="memory key"):
        memory.record_recheck(0, ("a", "clean", 3), 1.0)


def test_defaults_match_the_spec():
    config = MemoryConfig()
    assert (config.fail_threshold, config.replay_frac, config.recheck_interval, config.max_strikes, config.max_size) == (
        0.0, 0.25, 50, 2, 100,
    )
    assert config.enabled is False
