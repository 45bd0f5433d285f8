"""Resume: the memory restored is exactly the resumed checkpoint's; skipped batches change nothing."""

from __future__ import annotations

import json
import zlib

import pytest

from rova.errors import DataError
from rova.config.memory import MemoryConfig
from rova.memory import CHOICES_FILE, MEMORY_FILE, GroupOutcome, ReplayDataset, ReplayMemory, ReplayRepeatSampler

SPEC = {"family": "weather", "variant": "fog", "severity": 2, "seed": 0, "params": {}}
CONFIG = MemoryConfig(enabled=True, fail_threshold=0.25, replay_frac=0.5, recheck_interval=2, max_strikes=2, max_size=6, seed=3)


def memory_with(names, step=0) -> ReplayMemory:
    memory = ReplayMemory(CONFIG)
    memory.observe(step, [GroupOutcome(name, 0.0) for name in names])
    return memory


def test_restore_reads_the_resumed_checkpoint_not_the_run_dir(tmp_path):
    run_dir, checkpoint = tmp_path / "run", tmp_path / "run" / "checkpoints" / "checkpoint-2"
    at_checkpoint = memory_with(["a", "b"])
    assert at_checkpoint.save(run_dir, checkpoint) == [checkpoint / MEMORY_FILE, run_dir / MEMORY_FILE,
                                                    checkpoint / CHOICES_FILE]
    assert json.loads((checkpoint / MEMORY_FILE).read_text()) == json.loads((run_dir / MEMORY_FILE).read_text())
    memory_with(["a", "b", "c", "d"]).save(run_dir)  # later state in the run dir (a newer, unsaved step)

    restored = ReplayMemory.restore(CONFIG, checkpoint)
    assert restored.to_dict() == at_checkpoint.to_dict()
    assert restored.config == CONFIG
    restored_str = ReplayMemory.restore(CONFIG, str(checkpoint))
    assert restored_str.to_dict() == at_checkpoint.to_dict()


def test_restore_applies_the_resumed_runs_config(tmp_path):
    memory_with(["a", "b", "c"]).save(None, tmp_path)
    smaller = MemoryConfig(max_size=2)
    restored = ReplayMemory.restore(smaller, tmp_path)
    assert restored.config == smaller and [key[0] for key in restored.keys()] == ["b", "c"]


def test_without_a_resumed_checkpoint_the_memory_starts_empty_and_ignores_the_run_dir(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    memory_with(["a", "b"]).save(run_dir)  # an earlier run's mirror (run.resume=false reuses nothing)
    monkeypatch.chdir(run_dir)
    memory = ReplayMemory.restore(CONFIG, None)
    assert len(memory) == 0 and memory.metrics()["adds"] == 0 and memory.config == CONFIG
    (run_dir / MEMORY_FILE).write_text("{torn")  # not even looked at
    assert len(ReplayMemory.restore(CONFIG, None)) == 0


def test_a_resumed_checkpoint_without_memory_json_is_an_error_naming_it(tmp_path):
    checkpoint = tmp_path / "run" / "checkpoints" / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    memory_with(["stale"]).save(tmp_path / "run")  # an older/newer file elsewhere must not be used instead
    with pytest.raises(DataError, match=rf"{checkpoint}: .*has no memory.json"):
        ReplayMemory.restore(CONFIG, checkpoint)
    with pytest.raises(DataError, match=rf"{tmp_path / 'nowhere'}: .*does not exist"):
        ReplayMemory.restore(CONFIG, tmp_path / "nowhere")


def test_a_torn_checkpoint_file_is_an_error_naming_it(tmp_path):
    (tmp_path / MEMORY_FILE).write_text('{"version": 2, "entr')
    with pytest.raises(DataError, match=rf"{tmp_path / MEMORY_FILE}: not valid JSON"):
        ReplayMemory.restore(CONFIG, tmp_path)


# ------------------------------------------------------------------------------------------------
# Kill-and-resume, simulated with a real DataLoader and accelerate's skip_first_batches.

IDS = [f"clip{i}" for i in range(10)]
G, B = 2, 4  # generations per prompt, distinct prompts per generation batch


def crc(*parts) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def rollout(rows, step) -> list[GroupOutcome]:
    """A stand-in model: accuracy is a fixed function of (sample, view, step)."""
    outcomes = []
    for row in rows[::G]:
        seed = row.get("corruption_seed")
        seed = crc(row["sample_id"], step) % 1000 if seed is None else seed
        spec = row.get("corruption_record") or {**SPEC, "seed": seed}
        outcomes.append(GroupOutcome(
            row["sample_id"],
            clean_accuracy=(crc(row["sample_id"], "c", step) % 4) / 4,
            corrupted_accuracy=(crc(row["sample_id"], seed, step) % 4) / 4,
            corruption_seed=seed,
            corruption_spec=spec,
            replayed=row.get("replay_view"),
        ))
    return outcomes


def one_batch_ahead(loader):
    """What accelerate's DataLoaderShard does: the next batch is drawn before the current one is handed out."""
    batches = iter(loader)
    current = next(batches, None)
    if current is None:
        return
    for following in batches:
        yield current
        current = following
    yield current


def train(memory, steps, start=0, run_dir=None, checkpoints=(), epoch_of=None, ahead=False):
    import datasets
    from accelerate import skip_first_batches
    from torch.utils.data import DataLoader

    base = datasets.Dataset.from_list([{"sample_id": sid, "prompt": sid} for sid in IDS])
    dataset = ReplayDataset(base, memory)
    sampler = ReplayRepeatSampler(dataset.sample_ids, memory, mini_repeat_count=G, batch_size=B, repeat_count=1, seed=5)
    per_epoch = len(IDS) // B
    step = start
    while step < steps:
        epoch, skip = divmod(step, per_epoch)
        sampler.set_epoch(epoch)
        loader = DataLoader(dataset, batch_size=G * B, sampler=sampler, collate_fn=list)
        if skip:
            loader = skip_first_batches(loader, skip)  # what the HF Trainer does on resume
        for rows in one_batch_ahead(loader) if ahead else loader:
            step += 1
            memory.observe(step, rollout(rows, step))
            due = memory.due(step)
            memory.record_rechecks(step, [(entry.key, float(crc(entry.key, step) % 2)) for entry in due])
            if step in checkpoints:
                memory.save(run_dir, run_dir / f"checkpoint-{step}")
            if step == steps:
                break
    return memory


@pytest.mark.parametrize("ahead", [False, True], ids=["plain", "one_batch_ahead"])
def test_kill_and_resume_gives_the_same_memory_as_an_uninterrupted_run(tmp_path, ahead):
    """one_batch_ahead: the batch after checkpoint-5 was drawn (its replays chosen) before step 5's outcomes;
    the resumed run must replay what that choice was, not choose again from the checkpoint's memory."""
    straight = train(ReplayMemory(CONFIG), steps=9, run_dir=tmp_path, checkpoints=(5,), ahead=ahead)
    assert straight.metrics()["replayed"] > 0 and straight.metrics()["adds"] > 0  # the scenario exercises replays

    # killed after step 7; the run dir's memory.json holds step 7, the last checkpoint is step 5
    train(ReplayMemory(CONFIG), steps=7, run_dir=tmp_path / "killed", checkpoints=(5, 7), ahead=ahead)
    (tmp_path / "killed" / "checkpoint-7").rename(tmp_path / "killed" / "lost-7")
    resumed = ReplayMemory.restore(CONFIG, tmp_path / "killed" / "checkpoint-5")
    assert resumed.to_dict() == json.loads((tmp_path / "checkpoint-5" / MEMORY_FILE).read_text())
    train(resumed, steps=9, start=5, ahead=ahead)  # resumes in epoch 2 with its first batch skipped
    assert resumed.to_dict() == straight.to_dict()


def test_skipped_batches_change_no_counter(tmp_path):
    memory = train(ReplayMemory(CONFIG), steps=5)
    before = memory.to_dict()
    import datasets
    from accelerate import skip_first_batches
    from torch.utils.data import DataLoader

    base = datasets.Dataset.from_list([{"sample_id": sid, "prompt": sid} for sid in IDS])
    dataset = ReplayDataset(base, memory)
    sampler = ReplayRepeatSampler(dataset.sample_ids, memory, mini_repeat_count=G, batch_size=B, seed=5)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        loader = DataLoader(dataset, batch_size=G * B, sampler=sampler, collate_fn=list)
        assert list(skip_first_batches(loader, 2)) == []  # every batch of the epoch skipped
    assert memory.to_dict() == before
    assert memory.metrics()["replayed"] == before["counters"]["replayed"]
