"""DAPO dynamic sampling in the real VideoGRPOTrainer on the tiny model: generation is stubbed and the clean rewards
are set per prompt, so which groups are all-equal is known; the refill, its draws, the batch, the counts, the
rollout log and the memory are checked. The pure rules: tests/training/test_dynamic_sampling.py."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import rova.training.trainer as trainer_module
from rova.config.branches import CLEAN, CORRUPTED
from rova.training.dynamic_sampling import refill_order, take_fresh
from tests.support.trainers import make_trainer

G = 2
TINY = ("objective=dapo", f"stage.num_generations={G}", "stage.per_device_train_batch_size=4",
        "stage.max_completion_length=8")  # 2 prompt groups per process


def stub_rollout(trainer, monkeypatch, easy: set) -> dict:
    """Every completion is the same short text; a prompt in `easy` gets clean rewards [1, 0, ...] (signal), any
    other all zeros (all equal). Returns the spy: generation calls and the rollouts the refill merged."""
    spy = {"generations": 0, "merged": []}
    eos = sorted(trainer.eos_token_ids)[0]
    words = trainer.processing_class.tokenizer("the answer", add_special_tokens=False)["input_ids"]

    def generate(prompts, greedy=False):
        spy["generations"] += 1
        return trainer_module.Generation([[*words, eos] for _ in prompts])

    score_rollout = trainer_module.score_rollout

    def rewards_by_prompt(plan, texts, lengths, rows, cfg, kl=None):
        scores = score_rollout(plan, texts, lengths, rows, cfg, kl)
        scores[CLEAN].total = np.array([[1.0] + [0.0] * (G - 1) if rows[g]["sample_id"] in easy else [0.0] * G
                                        for g in scores[CLEAN].groups])
        return scores

    merge = trainer_module.merge_rollouts

    def merged(rounds, picks):
        out = merge(rounds, picks)
        spy["merged"].append(out)
        return out

    monkeypatch.setattr(trainer, "generate_rows", generate)
    monkeypatch.setattr(trainer_module, "score_rollout", rewards_by_prompt)
    monkeypatch.setattr(trainer_module, "merge_rollouts", merged)
    return spy


def rows_of(trainer, *sample_ids) -> list[dict]:
    ids = list(trainer.train_dataset.base["sample_id"] if hasattr(trainer.train_dataset, "base")
               else trainer.train_dataset["sample_id"])
    return [trainer.train_dataset[ids.index(s)] for s in sample_ids for _ in range(G)]


def metrics(trainer) -> dict:
    return {k: v[-1] for k, v in trainer._metrics["train"].items() if v and k.startswith("dynamic_sampling/")}


def test_an_all_equal_group_is_replaced_in_place_by_the_seeded_draw_with_its_branches(tmp_path, cache_dir, monkeypatch):
    """stage=memory (clean + shuffled + corrupted branches, KL reward, the replay dataset): the all-equal group's
    place goes to the prompt the seeded side order predicts, with all its branches; the memory and the rollout
    log see every group generated."""
    trainer, cfg, run_dir = make_trainer(cache_dir, tmp_path, "stage=memory", *TINY)
    ids = list(trainer.train_dataset.sample_ids)
    easy = set(ids) - {ids[1]}
    spy = stub_rollout(trainer, monkeypatch, easy)
    observed = []
    observe = trainer.memory.observe
    monkeypatch.setattr(trainer.memory, "observe", lambda step, outcomes: observed.append(list(outcomes)) or
                        observe(step, outcomes))
    trainer.model.train()
    batch = trainer._generate_and_score_completions(rows_of(trainer, ids[0], ids[1]))

    # The draw is the side order's (stage.seed, rollout (step 0, first rollout)), skipping the prompts held.
    order = refill_order(len(ids), cfg.stage.seed, (0, 0), 0, 1)
    predicted = ids[take_fresh(order, 1, lambda i: ids[i] in {ids[0], ids[1]}, len(ids))[0]]
    trained, generated = spy["merged"]
    assert [h["sample_id"] for h in trained.heads] == [ids[0], predicted]
    assert [h["sample_id"] for h in generated.heads] == [ids[0], ids[1], predicted]
    for g, head in enumerate(trained.heads):  # the prompt's other branches came with it
        assert trained.views[CORRUPTED][g].record["seed"] == trainer.clip_source.corruption_seed(head, 0)
        assert trained.plan.rows[g * G:(g + 1) * G] == [(CLEAN, g)] * G
    assert len(trained.kl) == 2 * G and spy["generations"] == 2
    assert metrics(trainer) == {"dynamic_sampling/dropped_groups": 1.0, "dynamic_sampling/short_groups": 0.0,
                                "dynamic_sampling/drawn_groups": 1.0, "dynamic_sampling/unused_groups": 0.0,
                                "dynamic_sampling/rounds": 2.0}
    # Every clean row of the batch has signal and stays in the loss.
    clean_rows = batch["completion_mask"][: 2 * G].sum(dim=1)
    assert (clean_rows > 0).all() and (batch["advantages"][: 2 * G] != 0).all()
    assert len(batch["advantages"]) == 2 * G + 2 * trainer.branch_sizes[CORRUPTED]  # the batch size is kept
    log = [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    assert [(r["sample_id"], r["round"], r["in_batch"]) for r in log] == [
        (ids[0], 0, True), (ids[1], 0, False), (predicted, 1, True)]
    assert [o.sample_id for o in observed[0]] == [ids[0], ids[1], predicted]


def test_at_the_cap_the_batch_keeps_its_all_equal_group_masked_and_counts_it(tmp_path, cache_dir, monkeypatch):
    trainer, _, _ = make_trainer(cache_dir, tmp_path, *TINY, "objective.max_sampling_rounds=3")
    ids = list(trainer.train_dataset["sample_id"])
    spy = stub_rollout(trainer, monkeypatch, easy={ids[0]})
    trainer.model.train()
    batch = trainer._generate_and_score_completions(rows_of(trainer, ids[0], ids[1]))
    assert spy["generations"] == 3  # the cap: 3 generation rounds, the first included
    assert metrics(trainer) == {"dynamic_sampling/dropped_groups": 2.0, "dynamic_sampling/short_groups": 1.0,
                                "dynamic_sampling/drawn_groups": 2.0, "dynamic_sampling/unused_groups": 0.0,
                                "dynamic_sampling/rounds": 3.0}
    assert [h["sample_id"] for h in spy["merged"][0].heads] == [ids[0], ids[1]]
    kept = batch["completion_mask"].sum(dim=1)
    assert (kept[:G] > 0).all() and (kept[G:] == 0).all()  # trained on what there is, the all-equal group masked
    assert (batch["advantages"][G:] == 0).all()


def test_every_process_draws_the_agreed_count_even_when_it_needs_none(tmp_path, cache_dir, monkeypatch):
    """A peer process needs 2 places, then none: this process (nothing to refill) still runs the round and
    draws 2 prompts (generation is collective), leaves them unused, and keeps its batch."""
    trainer, _, _ = make_trainer(cache_dir, tmp_path, *TINY)
    ids = list(trainer.train_dataset["sample_id"])
    spy = stub_rollout(trainer, monkeypatch, easy=set(ids))
    peer = iter([2, 0])
    draw_count = trainer_module.draw_count
    gathered = []

    def with_peer(needs, rounds_done, max_rounds):
        gathered.append(list(needs))
        return draw_count([*needs, next(peer)], rounds_done, max_rounds)

    monkeypatch.setattr(trainer_module, "draw_count", with_peer)
    trainer.model.train()
    trainer._generate_and_score_completions(rows_of(trainer, ids[0], ids[1]))
    assert gathered == [[0], [0]] and spy["generations"] == 2
    assert metrics(trainer) == {"dynamic_sampling/dropped_groups": 0.0, "dynamic_sampling/short_groups": 0.0,
                                "dynamic_sampling/drawn_groups": 2.0, "dynamic_sampling/unused_groups": 2.0,
                                "dynamic_sampling/rounds": 2.0}
    assert [h["sample_id"] for h in spy["merged"][0].heads] == [ids[0], ids[1]]


@pytest.mark.parametrize("overrides,training", [(("objective=grpo",), True), ((), False)], ids=["off", "eval"])
def test_no_refill_when_off_or_in_evaluation(tmp_path, cache_dir, monkeypatch, overrides, training):
    trainer, _, _ = make_trainer(cache_dir, tmp_path, *TINY, *overrides)
    ids = list(trainer.train_dataset["sample_id"])
    spy = stub_rollout(trainer, monkeypatch, easy=set())
    trainer.model.train(training)
    trainer._generate_and_score_completions(rows_of(trainer, ids[0], ids[1]))
    mode = "train" if training else "eval"
    assert spy["generations"] == 1 and spy["merged"] == []
    assert not [k for k in trainer._metrics[mode] if k.startswith("dynamic_sampling/")]
    assert not list(itertools.chain.from_iterable(
        v for k, v in trainer._metrics[mode].items() if k.startswith("variance_filter/")))
