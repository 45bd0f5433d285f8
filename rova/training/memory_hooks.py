"""The trainer's side of the difficulty memory: outcomes in, greedy re-checks out (docs/memory.md).

The memory (`rova.memory.ReplayMemory`) never calls the trainer; this phase drives it with plain values.
Every rank feeds it the same gathered outcomes and re-check results, so every rank holds the same state.
"""

from __future__ import annotations

import numpy as np
from accelerate.utils import gather_object

from rova.config.branches import CLEAN, CORRUPTED
from rova.memory import GroupOutcome, MemoryView
from rova.memory.replay import RECHECK_OUTCOMES, REPLAY_VIEW
from rova.inference.prompts import render_prompt
from rova.rewards.correctness import score_correctness


def group_outcomes(heads: list[dict], views: dict, scores: dict, seeds: list[int]) -> list[GroupOutcome]:
    """One outcome per prompt group: its clean and (when trained) corrupted group accuracy and corruption.

    `seeds[g]` is the corruption seed of group g's corrupted clip (a replay's stored seed, else a fresh one).
    """
    clean = scores[CLEAN].group_accuracy()
    corrupted = scores[CORRUPTED].group_accuracy() if CORRUPTED in scores else {}
    outcomes = []
    for g, row in enumerate(heads):
        view = views[CORRUPTED][g]
        has_corrupted = g in corrupted and view is not None and (view.record or {}).get("family", "clean") != "clean"
        outcomes.append(GroupOutcome(
            sample_id=row["sample_id"],
            clean_accuracy=clean[g],
            corrupted_accuracy=corrupted[g] if has_corrupted else None,
            corruption_seed=int(seeds[g]) if has_corrupted else None,
            corruption_spec=view.record if has_corrupted else None,
            replayed=MemoryView.from_dict(row[REPLAY_VIEW]) if row.get(REPLAY_VIEW) else None,
        ))
    return outcomes


def memory_phase(trainer, step: int, heads: list[dict], views: dict, scores: dict) -> None:
    memory = trainer.memory
    seeds = [trainer.clip_source.corruption_seed(row, step) for row in heads]
    outcomes = gather_object(group_outcomes(heads, views, scores, seeds) if trainer.reports else [])
    added = memory.observe(step, outcomes)
    rechecks = recheck_due(trainer, step)
    metrics = trainer._metrics["train"]
    for name, value in memory.metrics().items():
        metrics[f"memory/{name}"].append(value)
    metrics["memory/added_this_step"].append(float(len(added)))
    replayed = [o for o in outcomes if o.replayed is not None]
    metrics["memory/replayed_this_step"].append(float(len(replayed)))
    for name, value in rechecks.items():
        metrics[f"memory/recheck_{name}"].append(float(value))
    # A replay's accuracy is that of the view it replays (the corrupted group for a corrupted view).
    replay_accuracy = [
        o.corrupted_accuracy if o.replayed.kind == CORRUPTED and o.corrupted_accuracy is not None else o.clean_accuracy
        for o in replayed
    ]
    metrics["memory/group_accuracy_replayed"].append(float(np.mean(replay_accuracy)) if replayed else float("nan"))


def recheck_due(trainer, step: int) -> dict[str, int]:
    """Greedy re-check of due entries on exactly their stored view; each rank takes a share, results gathered."""
    memory = trainer.memory
    due = memory.due(step)
    if not due:  # the same on every rank (identical memory), so skipping keeps the collectives in step
        return dict.fromkeys(RECHECK_OUTCOMES, 0)
    rank, world = trainer.data_rank, trainer.data_world  # an SP group re-checks one share (its first rank generates)
    dataset = trainer.train_dataset
    index_of = {sample_id: i for i, sample_id in enumerate(dataset.sample_ids)}
    rows = [memory.replay_row(dict(dataset.base[index_of[e.sample_id]]), e.key) for e in due[rank::world]
            if e.sample_id in index_of]
    prompts = []
    for row in rows:
        view = trainer.clip_source.clean(row) if row[REPLAY_VIEW]["kind"] == CLEAN else trainer.clip_source.corrupted(row, step)
        text = render_prompt(trainer.processing_class, row["prompt"])
        prompts.append(trainer.family.encode(trainer.processing_class, text, view.frames, view.timing, view.is_image))
    # Every rank enters generation exactly once, even with nothing to re-check (ZeRO-3 gathers there).
    completions = trainer.generate_rows(prompts, greedy=True).ids
    texts = trainer.processing_class.batch_decode(completions, skip_special_tokens=True) if completions else []
    keys = [MemoryView.from_dict(row[REPLAY_VIEW]).key(row["sample_id"]) for row in rows]
    # Scored as the rollouts are (reward.multi_answer, reward.caption_scorer), so "solved" means what entering meant.
    scored = score_correctness(texts, [row["solution"] for row in rows], [row["problem_type"] for row in rows],
                               trainer.args.reward).scores
    results = [(key, float(score)) for key, score in zip(keys, scored)]
    gathered = sorted(gather_object(results if trainer.reports else []), key=lambda r: repr(r[0]))
    return memory.record_rechecks(step, gathered)
