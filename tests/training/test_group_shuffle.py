"""Reg-GRPO with several micro-batches per rollout: rows are shuffled by whole groups (rova.training.group_shuffle)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.training.group_shuffle import permute_rows, whole_group_order
from tests.support.trainers import make_trainer


@st.composite
def rollouts(draw):
    """Group ids of a rollout as rova lays it out (clean groups of G rows, then the corrupted branch's groups of
    Gc rows, ids in any order), with a number of micro-batches that divides the groups of each size."""
    chunks = draw(st.integers(1, 4))
    per_chunk = draw(st.integers(1, 3))
    sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=2, unique=True))
    ids, next_id = [], 0
    for size in sizes:
        for _ in range(chunks * per_chunk):
            ids += [next_id] * size
            next_id += 1
    relabel = draw(st.permutations(range(next_id)))  # ids need not be in order
    return [relabel[i] for i in ids], chunks


@settings(max_examples=200, deadline=None)
@given(rollout=rollouts(), seed=st.integers(0, 2**31 - 1))
def test_every_micro_batch_holds_whole_groups_and_the_same_mix(rollout, seed):
    ids, chunks = rollout
    order = whole_group_order(ids, chunks, generator=torch.Generator().manual_seed(seed))
    assert sorted(order.tolist()) == list(range(len(ids)))  # a permutation of the rows
    size = Counter(ids)
    step = len(ids) // chunks
    mixes = []
    for k in range(chunks):
        chunk = [ids[i] for i in order[k * step:(k + 1) * step].tolist()]
        assert all(Counter(chunk)[g] == size[g] for g in set(chunk)), "a group was split"
        mixes.append(sorted(size[g] for g in set(chunk)))
    assert all(mix == mixes[0] for mix in mixes)  # every micro-batch: as many groups of each size
    # Seeded like TRL's row shuffle: the same generator state gives the same order.
    again = whole_group_order(ids, chunks, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(order, again)


def test_the_groups_really_move():
    ids = [g for g in range(8) for _ in range(2)]
    orders = {tuple(whole_group_order(ids, 2, generator=torch.Generator().manual_seed(s)).tolist())
              for s in range(20)}
    assert len(orders) > 10


def test_groups_that_cannot_be_dealt_evenly_are_refused():
    with pytest.raises(ValueError, match="3 groups of 2 rows"):
        whole_group_order([0, 0, 1, 1, 2, 2], 2)


def test_every_per_row_value_moves_together():
    batch = {"ids": torch.arange(4), "mask": torch.arange(8).reshape(4, 2), "visual": ["a", "b", "c", "d"],
             "scalar": torch.tensor(3.0), "none": None}
    out = permute_rows(batch, torch.tensor([2, 0, 3, 1]))
    assert out["ids"].tolist() == [2, 0, 3, 1] and out["visual"] == ["c", "a", "d", "b"]
    assert out["mask"][0].tolist() == [4, 5] and out["scalar"] is batch["scalar"] and out["none"] is None


def test_reg_grpo_trains_several_micro_batches_per_rollout_each_of_whole_groups(tmp_path, cache_dir):
    """stage=tgrpo (clean groups of 2, corrupted groups of 2), 4 prompts per rollout cut into 2 micro-batches: the
    trainer's buffered micro-batches each hold 2 whole clean and 2 whole corrupted groups, and the loss runs."""
    trainer, cfg, _ = make_trainer(
        cache_dir, tmp_path, "objective=reg_grpo", "stage=tgrpo", "corruption=rova", "stage.num_generations=2",
        "stage.per_device_train_batch_size=4", "stage.steps_per_generation=2", "stage.gradient_accumulation_steps=2",
        "stage.max_completion_length=8")
    assert cfg.stage.generation_steps == 2 and cfg.tgrpo.corrupted_generations == 2
    rows = [trainer.train_dataset[i] for i in range(4) for _ in range(2)]
    trainer.model.train()
    torch.manual_seed(0)
    micro = [trainer._prepare_inputs(rows)]
    trainer._step = 1
    micro.append(trainer._prepare_inputs(rows))  # the second micro-batch of the same rollout, from the buffer
    sizes = Counter()
    for batch in micro:
        groups = Counter(batch["group_ids"].tolist())
        assert sorted(groups.values()) == [2, 2, 2, 2], groups  # 4 groups of 2 rows, none split
        sizes.update(groups)
    assert len(sizes) == 8 and set(sizes.values()) == {2}  # the 8 groups (4 clean, 4 corrupted), each in one place
    trainer.current_gradient_accumulation_steps = 2  # set by the Trainer's loop
    loss = trainer.compute_loss(trainer.model, micro[0])
    assert torch.isfinite(loss) and loss.requires_grad
