"""Difficulty-aware augmentation (memory.augment_easy / augment_hard) in the real VideoGRPOTrainer on the tiny model:
generation is stubbed and each prompt's clean accuracies and rewards are set, so which groups are all right / all
wrong is known; the re-roll round, the batch it leaves, the counts, the rollout log, the memory and the interplay with
dynamic sampling are checked. The pure rules: tests/training/test_difficulty_augment.py."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

import rova.training.trainer as trainer_module
from rova.config.branches import CLEAN, CORRUPTED
from rova.training.difficulty_augment import hint_for
from tests.support.runs import launch, only_run_dir
from tests.support.trainers import make_trainer
from tests.training.test_dynamic_sampling_trainer import G, rows_of
from tests.training.test_dynamic_sampling_trainer import TINY as TINY_DAPO

TINY = tuple(o for o in TINY_DAPO if not o.startswith("objective="))  # 2 prompt groups per process, no refill

EASY = ("memory.augment_easy=true", "corruption=rova")
HARD = ("memory.augment_hard=true",)
SIGNAL = [1.0] + [0.0] * (G - 1)


def stub_rollout(trainer, monkeypatch, outcome) -> dict:
    """Every completion is the same short text; `outcome(row)` gives the clean accuracy of each of its G completions
    (the total reward is 0.5 + half of it). Returns the spy: generation calls, prompts generated, rollouts merged."""
    spy = {"generations": 0, "prompts": [], "merged": []}
    eos = sorted(trainer.eos_token_ids)[0]
    words = trainer.processing_class.tokenizer("the answer", add_special_tokens=False)["input_ids"]

    def generate(prompts, greedy=False):
        spy["generations"] += 1
        spy["prompts"].append(list(prompts))
        return trainer_module.Generation([[*words, eos] for _ in prompts])

    score_rollout = trainer_module.score_rollout

    def scores_by_prompt(plan, texts, lengths, rows, cfg, kl=None):
        scores = score_rollout(plan, texts, lengths, rows, cfg, kl)
        clean = scores[CLEAN]
        clean.correctness = np.array([outcome(rows[g]) for g in clean.groups], dtype=np.float64)
        clean.total = 0.5 + 0.5 * clean.correctness  # a format reward on top: difficulty must be read from accuracy
        return scores

    merge = trainer_module.merge_rollouts

    def merged(rounds, picks):
        out = merge(rounds, picks)
        spy["merged"].append(out)
        return out

    monkeypatch.setattr(trainer, "generate_rows", generate)
    monkeypatch.setattr(trainer_module, "score_rollout", scores_by_prompt)
    monkeypatch.setattr(trainer_module, "merge_rollouts", merged)
    return spy


def augment_metrics(trainer) -> dict:
    return {k.split("/", 1)[1]: v[-1] for k, v in trainer._metrics["train"].items() if v and k.startswith("augment/")}


def log(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]


def digest(frames) -> str:
    return hashlib.sha1(np.ascontiguousarray(frames).tobytes()).hexdigest()


def test_an_all_right_group_is_re_rolled_on_a_corrupted_clip_and_replaces_the_original(tmp_path, cache_dir, monkeypatch):
    """stage=memory (clean + shuffled + corrupted branches, KL reward, the replay dataset): the all-right group is
    generated again on a seeded corrupted clip with its other branches, takes its place in the batch, and is counted;
    the rollout log keeps both, the memory sees the original only."""
    trainer, cfg, run_dir = make_trainer(cache_dir, tmp_path, "stage=memory", *TINY, *EASY)
    ids = list(trainer.train_dataset.sample_ids)
    # ids[0] is all right, its re-roll half right (signal); ids[1] has signal from the start.
    spy = stub_rollout(trainer, monkeypatch, lambda row: SIGNAL if row.get("augment") or row["sample_id"] != ids[0]
                       else [1.0] * G)
    observed = []
    observe = trainer.memory.observe
    monkeypatch.setattr(trainer.memory, "observe", lambda step, outcomes: observed.append(list(outcomes)) or
                        observe(step, outcomes))
    trainer.model.train()
    inputs = rows_of(trainer, ids[0], ids[1])
    batch = trainer._generate_and_score_completions(inputs)

    assert spy["generations"] == 2  # the batch, then one re-roll round
    trained, generated, remembered = spy["merged"]
    assert [(h["sample_id"], h.get("augment")) for h in trained.heads] == [(ids[0], "easy"), (ids[1], None)]
    head = inputs[0]
    clean, perturbed = trainer.clip_source.clean(head), trained.views[CLEAN][0]
    assert digest(perturbed.frames) != digest(clean.frames)
    expected = trainer.clip_source.perturbed(head, 0)  # seeded by (stage.seed, step, sample id): the same draw
    assert perturbed.record == expected.record and digest(perturbed.frames) == digest(expected.frames)
    assert perturbed.record["family"] != "clean"
    # The prompt's corrupted view is this step's, as in the original group, and was generated again.
    assert trained.views[CORRUPTED][0].record == trainer.clip_source.corrupted(head, 0).record
    assert trained.plan.groups[CORRUPTED] == [0, 1] and len(trained.kl) == 2 * G
    # In the batch: the re-roll's rows with signal, the batch size kept.
    assert (batch["advantages"][:G] != 0).any()
    assert len(batch["advantages"]) == 2 * G + 2 * trainer.branch_sizes[CORRUPTED]
    assert augment_metrics(trainer) == {"easy_rerolled": 1.0, "hard_rerolled": 0.0, "hard_no_hint": 0.0,
                                        "easy_gained_signal": 1.0, "hard_gained_signal": 0.0, "padding_groups": 0.0}
    records = log(run_dir)
    assert [(r["sample_id"], r["round"], r["in_batch"], r["difficulty"], r["augment"]) for r in records] == [
        (ids[0], 0, False, "easy", None), (ids[1], 0, True, None, None), (ids[0], 1, True, None, "easy")]
    assert records[2]["perturbation"] == perturbed.record
    assert [o.sample_id for o in observed[0]] == [ids[0], ids[1]] == [h["sample_id"] for h in remembered.heads]
    assert generated.heads[2].get("augment") == "easy"


def test_an_all_wrong_group_is_re_rolled_with_the_truncated_rationale_in_its_prompt(tmp_path, cache_dir, monkeypatch):
    trainer, _, run_dir = make_trainer(cache_dir, tmp_path, *TINY, *HARD, "memory.hint_max_chars=24")
    ids = list(trainer.train_dataset["sample_id"])
    spy = stub_rollout(trainer, monkeypatch, lambda row: SIGNAL if row["sample_id"] != ids[0] else [0.0] * G)
    trainer.model.train()
    inputs = rows_of(trainer, ids[0], ids[1])
    process = inputs[0]["process"]
    hint = hint_for(inputs[0], 24)
    assert process and hint and len(hint) <= 24 and hint in process and len(process) > 24 + len("<think></think>")
    batch = trainer._generate_and_score_completions(inputs)

    decode = trainer.processing_class.tokenizer.decode
    reroll_prompts = [decode(p.input_ids) for p in spy["prompts"][1]]
    assert len(reroll_prompts) == G and all(f"Hint: {hint}" in text for text in reroll_prompts)
    assert process.removeprefix("<think>")[: len(hint) + 10] not in reroll_prompts[0]  # cut, not the whole rationale
    # The batch trains the hinted prompt in the original's place; the other group's prompt has no hint.
    trained = [decode(ids_, skip_special_tokens=True) for ids_ in batch["prompt_ids"]]
    assert all(f"Hint: {hint}" in text for text in trained[:G]) and not any("Hint:" in t for t in trained[G:])
    assert augment_metrics(trainer)["hard_rerolled"] == 1.0 and augment_metrics(trainer)["hard_gained_signal"] == 0.0
    records = log(run_dir)
    assert [(r["round"], r["in_batch"], r["difficulty"], r["augment"], r.get("hint")) for r in records] == [
        (0, False, "hard", None, None), (0, True, None, None, None), (1, True, None, "hard", hint)]


def test_an_all_wrong_group_without_a_hint_is_left_and_counted(tmp_path, cache_dir, monkeypatch):
    trainer, _, run_dir = make_trainer(cache_dir, tmp_path, *TINY, *HARD)
    ids = list(trainer.train_dataset["sample_id"])
    spy = stub_rollout(trainer, monkeypatch, lambda row: [0.0] * G if row["sample_id"] == ids[0] else SIGNAL)
    trainer.model.train()
    inputs = [{**row, "process": None, "hint": None} if row["sample_id"] == ids[0] else row
              for row in rows_of(trainer, ids[0], ids[1])]
    trainer._generate_and_score_completions(inputs)
    assert spy["generations"] == 1 and spy["merged"] == []  # no process needed a re-roll: no round
    assert augment_metrics(trainer) == {"easy_rerolled": 0.0, "hard_rerolled": 0.0, "hard_no_hint": 1.0,
                                        "easy_gained_signal": 0.0, "hard_gained_signal": 0.0, "padding_groups": 0.0}
    assert [(r["round"], r["in_batch"], r["difficulty"]) for r in log(run_dir)] == [(0, True, "hard"), (0, True, None)]


def test_a_process_without_re_rolls_pads_the_agreed_round_and_keeps_its_batch(tmp_path, cache_dir, monkeypatch):
    """A peer process re-rolls 2 groups: this one (none of its own) still generates 2 groups in the round, which are
    discarded, counted, and not logged."""
    trainer, _, run_dir = make_trainer(cache_dir, tmp_path, *TINY, *EASY)
    ids = list(trainer.train_dataset["sample_id"])
    spy = stub_rollout(trainer, monkeypatch, lambda row: SIGNAL)
    agreed = trainer_module.agreed_rerolls
    gathered = []
    monkeypatch.setattr(trainer_module, "agreed_rerolls", lambda needs: gathered.append(list(needs)) or agreed([*needs, 2]))
    trainer.model.train()
    batch = trainer._generate_and_score_completions(rows_of(trainer, ids[0], ids[1]))
    assert gathered == [[0]] and spy["generations"] == 2 and len(spy["prompts"][1]) == 2 * G
    trained = spy["merged"][0]
    assert [(h["sample_id"], h.get("augment")) for h in trained.heads] == [(ids[0], None), (ids[1], None)]
    assert len(batch["advantages"]) == 2 * G
    assert augment_metrics(trainer)["padding_groups"] == 2.0 and augment_metrics(trainer)["easy_rerolled"] == 0.0
    assert [(r["round"], r["in_batch"]) for r in log(run_dir)] == [(0, True), (0, True)]


def test_augmentation_comes_first_then_the_refill_replaces_a_re_roll_still_without_signal(tmp_path, cache_dir,
                                                                                            monkeypatch):
    """objective=dapo: the all-right group's re-roll is all right again (no signal), so the refill drops it and draws a
    fresh prompt into its place; the re-roll round is not one of objective.max_sampling_rounds; the counts add up."""
    trainer, _, run_dir = make_trainer(cache_dir, tmp_path, *TINY_DAPO, *EASY,
                                       "objective.max_sampling_rounds=2")
    ids = list(trainer.train_dataset["sample_id"])
    spy = stub_rollout(trainer, monkeypatch, lambda row: [1.0] * G if row["sample_id"] == ids[0] else SIGNAL)
    trainer.model.train()
    trainer._generate_and_score_completions(rows_of(trainer, ids[0], ids[1]))
    assert spy["generations"] == 3  # batch, re-roll, one refill round (the cap of 2 counts the refill's own rounds)
    start, trained = spy["merged"][:2]
    assert [h.get("augment") for h in start.heads] == ["easy", None]
    drawn = trained.heads[0]["sample_id"]
    assert drawn not in (ids[0], ids[1]) and trained.heads[1]["sample_id"] == ids[1]
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items() if v and k.startswith(("augment/", "dynamic_"))}
    assert metrics["augment/easy_rerolled"] == 1.0 and metrics["augment/easy_gained_signal"] == 0.0
    assert metrics["dynamic_sampling/dropped_groups"] == 1.0 and metrics["dynamic_sampling/drawn_groups"] == 1.0
    assert metrics["dynamic_sampling/rounds"] == 2.0 and metrics["dynamic_sampling/short_groups"] == 0.0
    assert [(r["sample_id"], r["round"], r["in_batch"], r["augment"]) for r in log(run_dir)] == [
        (ids[0], 0, False, None), (ids[1], 0, True, None), (ids[0], 1, False, "easy"), (drawn, 2, True, None)]


def test_off_or_in_evaluation_nothing_is_re_rolled(tmp_path, cache_dir, monkeypatch):
    for name, overrides, training in (("off", (), True), ("eval", (*EASY, *HARD), False)):
        trainer, _, run_dir = make_trainer(cache_dir, tmp_path / name, *TINY, *overrides)
        ids = list(trainer.train_dataset["sample_id"])
        spy = stub_rollout(trainer, monkeypatch, lambda row: [1.0] * G if row["sample_id"] == ids[0] else [0.0] * G)
        trainer.model.train(training)
        trainer._generate_and_score_completions(rows_of(trainer, ids[0], ids[1]))
        mode = "train" if training else "eval"
        assert spy["generations"] == 1 and spy["merged"] == [], name
        assert not [k for k in trainer._metrics[mode] if k.startswith("augment/")], name
        if training:  # the rollout log is as before the option existed
            assert all(set(r) & {"round", "in_batch", "difficulty", "augment"} == set() for r in log(run_dir))


@pytest.mark.slow
def test_two_steps_of_stage_memory_with_both_options_count_what_rollouts_jsonl_shows(tmp_path, cache_dir):
    """A real run (no stubs): the tiny random model's groups are mostly all wrong, the demo records all carry a
    rationale, so hard re-rolls run; each step's counts agree with its rollout log and the batch keeps its size."""
    proc = launch(tmp_path, cache_dir, "stage=memory", "stage.max_steps=2", "stage.num_generations=2",
                  "stage.per_device_train_batch_size=4", "stage.max_completion_length=12", "stage.save_steps=100",
                  "data.demo_num_clips=8", "logger=none", *EASY, *HARD)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = [row for row in rows if "loss" in row and "train_runtime" not in row]
    records = log(run_dir)
    assert len(steps) == 2 and all(math.isfinite(row["loss"]) for row in steps)
    for step, row in enumerate(steps):
        groups = [r for r in records if r["step"] == step]
        sampled = [r for r in groups if r["round"] == 0]
        for kind in ("easy", "hard"):
            rerolls = [r for r in groups if r["augment"] == kind]
            assert row[f"augment/{kind}_rerolled"] == len(rerolls) == sum(r["difficulty"] == kind and not r["in_batch"]
                                                                           for r in sampled)
            assert row[f"augment/{kind}_gained_signal"] == sum(len(set(r["reward"])) > 1 for r in rerolls)
        assert all(r["hint"] and r["in_batch"] for r in groups if r["augment"] == "hard")
        assert all(r["perturbation"]["family"] != "clean" for r in groups if r["augment"] == "easy")
        assert row["augment/hard_no_hint"] == 0 and sum(r["in_batch"] for r in groups) == len(sampled) == 2
    assert sum(row["augment/hard_rerolled"] + row["augment/easy_rerolled"] for row in steps) >= 1, steps
