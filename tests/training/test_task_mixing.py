"""data.task_mixing=per_batch: the single-kind order (rova.data.task_mixing), the sampler that repeats it as TRL's
RepeatSampler does (rova.training.task_mixing), the replay sampler with kinds, and the trainer's choice of sampler."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.data.task_mixing import batches_per_epoch, single_kind_batches
from rova.errors import DataError
from rova.training.task_mixing import SingleKindRepeatSampler, task_mixing_report

KINDS = ("multiple choice", "grounding", "tracking", "grounded_qa")


@st.composite
def layouts(draw):
    """(kinds of the dataset rows, G, prompts per process, processes, repeat_count)."""
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=40))
    return kinds, draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))


def sampler(kinds, G, per_process, processes, repeats, seed=0) -> SingleKindRepeatSampler:
    return SingleKindRepeatSampler(kinds, mini_repeat_count=G, batch_size=per_process * processes,
                                   repeat_count=repeats, group_size=per_process, seed=seed)


def process_batches(order: list[int], rows_per_process: int) -> list[list[int]]:
    """The dataloader batches as accelerate deals them to the processes (batch b to process b % processes)."""
    return [order[i : i + rows_per_process] for i in range(0, len(order), rows_per_process)]


@settings(max_examples=80, deadline=None)
@given(layout=layouts(), seed=st.integers(0, 2**32 - 1))
def test_every_process_generation_batch_holds_one_kind(layout, seed):
    kinds, G, per_process, processes, repeats = layout
    order = list(sampler(kinds, G, per_process, processes, repeats, seed))
    assert len(order) == len(sampler(kinds, G, per_process, processes, repeats, seed))
    for batch in process_batches(order, per_process * G):
        assert len(batch) == per_process * G and len({kinds[i] for i in batch}) == 1
        # RepeatSampler's invariant: each prompt G times in a row (whole prompt groups on one process)
        assert all(len(set(batch[g : g + G])) == 1 for g in range(0, len(batch), G))


@settings(max_examples=80, deadline=None)
@given(layout=layouts(), seed=st.integers(0, 2**32 - 1))
def test_every_record_appears_as_often_as_with_shuffled(layout, seed):
    kinds, G, per_process, processes, repeats = layout
    counts = Counter(sampler(kinds, G, per_process, processes, repeats, seed))
    # a drawn record: G copies per repeat, as with TRL's RepeatSampler; the rest sit this epoch out
    assert set(counts.values()) <= {G * repeats}
    drawn = len(counts)
    assert drawn == batches_per_epoch(kinds, per_process, processes) * per_process * processes
    if drawn:  # (data that fills no batch is refused when the data is loaded)
        assert task_mixing_report(kinds, per_process, processes)["left_out_per_epoch"] == len(kinds) - drawn
    # when every kind fills whole groups that fill whole batches, every record is drawn, exactly as with shuffled
    per_kind = Counter(kinds)
    if all(n % per_process == 0 for n in per_kind.values()) and (len(kinds) // per_process) % processes == 0:
        assert counts == Counter({i: G * repeats for i in range(len(kinds))})


@settings(max_examples=40, deadline=None)
@given(layout=layouts(), seed=st.integers(0, 2**32 - 1))
def test_the_order_is_a_function_of_seed_and_epoch(layout, seed):
    kinds, G, per_process, processes, repeats = layout
    first = sampler(kinds, G, per_process, processes, repeats, seed)
    assert list(first) == list(sampler(kinds, G, per_process, processes, repeats, seed))  # passes 0 and 0
    resumed = sampler(kinds, G, per_process, processes, repeats, seed)
    resumed.set_epoch(1)
    assert list(first) == list(resumed)  # the second pass is epoch 1, also when set by the Trainer on resume


def test_the_remainders_move_between_epochs_and_seeds_differ():
    kinds = ["a"] * 7 + ["b"] * 5
    epochs = [{i for batch in single_kind_batches(kinds, 2, 1, 0, epoch) for i in batch} for epoch in range(6)]
    assert len(set(map(frozenset, epochs))) > 1 and set().union(*epochs) == set(range(12))
    assert single_kind_batches(kinds, 2, 1, 0, 0) != single_kind_batches(kinds, 2, 1, 1, 0)


def test_each_kind_fills_the_batches_in_proportion_to_its_records():
    kinds = ["a"] * 300 + ["b"] * 100
    batches = single_kind_batches(kinds, 4, 1, 3, 0)
    share = Counter(kinds[batch[0]] for batch in batches)
    assert share == {"a": 75, "b": 25}


def test_a_kind_too_small_for_a_group_is_reported_and_data_that_fills_no_batch_is_refused(caplog):
    report = task_mixing_report(["a"] * 4 + ["b"], group_size=2, groups_per_batch=1, source="f.json")
    assert report["kinds_never_drawn"] == ["b"] and report["left_out_per_epoch"] == 1
    assert report["records_per_kind"] == {"a": 4, "b": 1} and "b never drawn" in caplog.text
    with pytest.raises(DataError, match="f.json: data.task_mixing=per_batch"):
        task_mixing_report(["a", "b", "c"], group_size=2, groups_per_batch=1, source="f.json")


def test_bad_sampler_arguments_are_refused():
    with pytest.raises(ValueError, match="group_size"):
        SingleKindRepeatSampler(["a"], 2, batch_size=3, repeat_count=1, group_size=2)
    with pytest.raises(ValueError, match="mini_repeat_count"):
        SingleKindRepeatSampler(["a"], 0, batch_size=1, repeat_count=1, group_size=1)


# ------------------------------------------------------------------------------------------------ with the memory


def test_the_replay_sampler_keeps_each_generation_batch_one_kind_replays_included():
    from rova.config.memory import MemoryConfig
    from rova.memory import GroupOutcome, ReplayItem, ReplayMemory, ReplayRepeatSampler

    ids = [f"s{i}" for i in range(12)]
    kinds = ["a", "b"] * 6
    memory = ReplayMemory(MemoryConfig(fail_threshold=0.0, replay_frac=0.5, recheck_interval=10, max_strikes=2,
                                       max_size=100, seed=7))
    memory.observe(0, [GroupOutcome(sample_id, 0.0, None, None, None, None) for sample_id in ("s0", "s1", "s3")])
    replay = ReplayRepeatSampler(ids, memory, mini_repeat_count=2, batch_size=2, repeat_count=1, seed=4, kinds=kinds)
    order = list(replay)
    assert len(order) == len(replay) == 12 * 2
    replayed = 0
    for batch in process_batches(order, 4):
        indices = [item.index if isinstance(item, ReplayItem) else item for item in batch]
        assert len({kinds[i] for i in indices}) == 1
        replayed += sum(isinstance(item, ReplayItem) for item in batch[::2])
    assert replayed > 0
    plain = ReplayRepeatSampler(ids, ReplayMemory(MemoryConfig()), mini_repeat_count=2, batch_size=2, seed=4,
                                kinds=kinds)
    assert [i for i in plain] == list(SingleKindRepeatSampler(kinds, 2, 2, 1, group_size=2, seed=4))


# ------------------------------------------------------------------------------------------------ the trainer


def _trainer(task_mixing: str, processes: int = 1):
    """A VideoGRPOTrainer shell holding only what _get_train_sampler reads (no model, no __init__)."""
    from rova.training.trainer import VideoGRPOTrainer

    trainer = VideoGRPOTrainer.__new__(VideoGRPOTrainer)
    trainer.args = SimpleNamespace(task_mixing=task_mixing, generation_batch_size=8, steps_per_generation=1, seed=3)
    trainer.memory, trainer.num_generations, trainer.num_iterations, trainer.shuffle_dataset = None, 2, 1, True
    trainer.accelerator = SimpleNamespace(num_processes=processes)
    return trainer


class Rows:
    def __init__(self, **columns):
        self.columns = columns

    def __len__(self):
        return len(next(iter(self.columns.values())))

    def __getitem__(self, key):
        return self.columns[key]


def test_the_trainer_picks_the_sampler_of_data_task_mixing():
    from trl.trainer.utils import RepeatSampler

    dataset = Rows(problem_type=["multiple choice", "Grounding"] * 8, sample_id=[str(i) for i in range(16)])
    assert type(_trainer("shuffled")._get_train_sampler(dataset)) is RepeatSampler
    per_batch = _trainer("per_batch", processes=2)._get_train_sampler(dataset)
    assert isinstance(per_batch, SingleKindRepeatSampler)
    # problem types canonicalised; 4 prompts per generation batch, 2 per process
    assert set(per_batch.kinds) == {"multiple choice", "grounding"} and per_batch.group_size == 2
    assert per_batch.batch_size == 4 and per_batch.mini_repeat_count == 2 and per_batch.seed == 3


@pytest.mark.slow
def test_a_tiny_run_with_inverted_questions_trains_one_kind_per_step(tmp_path, cache_dir):
    """End to end (stage=memory on the tiny model: its replay sampler keeps the kind too): every step's prompt
    groups share one kind, and data_report.json counts the inverted questions and the mixing."""
    import json

    from tests.support.trainers import make_trainer

    for stage in (["stage=memory", "corruption=rova"],):
        trainer, _, run_dir = make_trainer(
            cache_dir, tmp_path / stage[0].partition("=")[2], *stage, "data.demo_num_clips=24", "stage.per_device_train_batch_size=8",
            "stage.max_steps=2", "data.task_mixing=per_batch", "data.invert_questions.p=1",
        )
        trainer.train()
        report = json.loads((run_dir / "data_report.json").read_text())
        assert report["invert_questions"]["inverted"] > 0 and report["task_mixing"]["group_prompts"] == 2
        kinds: dict[int, set] = {}
        for line in (run_dir / "rollouts.jsonl").read_text().splitlines():
            row = json.loads(line)
            kinds.setdefault(row["step"], set()).add(row["problem_type"])
        assert len(kinds) == 2 and all(len(k) == 1 for k in kinds.values())
