"""Each objective preset trains: a 2-step tiny GRPO run per preset (in-process), and rova's own advantage code
follows objective.scale_rewards (TRL's advantage code never runs: the rollout is rova's)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.support.runs import launch, only_run_dir
from tests.support.trainers import make_trainer

OBJECTIVES = ("grpo", "dapo", "dr_grpo", "gspo", "cispo")
TINY = ("stage=grpo", "stage.max_steps=2", "stage.num_generations=2", "stage.per_device_train_batch_size=2",
        "stage.max_completion_length=12", "stage.save_steps=100", "data.demo_num_clips=8", "logger=none")


# 80/20 (methods.md: top entropy quantile 0.2) with an entropy bonus: both read the entropies of rova's video-aware
# log-prob pass. dapo's dynamic sampling with 2 generation rounds at most (one refill round; the preset's 10 would
# cost the tiny run up to 10 generations per step, its random groups being mostly all-wrong). TW-GRPO (token
# weights from a no-grad pass in the rollout) and Reg-GRPO (rova's own loss, against TRL's reference model) add
# ~4 s each on this machine.
ENTROPY = ("objective.top_entropy_quantile=0.2", "objective.entropy_coef=0.001")
RUNS = [(name, ("objective.max_sampling_rounds=2",) if name == "dapo" else ()) for name in (*OBJECTIVES, "tw_grpo", "reg_grpo")] + [
    ("grpo", ENTROPY), ("reg_grpo", ("stage.gradient_accumulation_steps=2",))]  # 2 micro-batches of 1 whole group


@pytest.mark.parametrize("objective,extra", RUNS, ids=[" ".join((n, *e)) for n, e in RUNS])
def test_two_steps_train_with_each_objective(objective, extra, tmp_path, cache_dir):
    proc = launch(tmp_path, cache_dir, *TINY, f"objective={objective}", *extra)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = [row for row in rows if "loss" in row and "train_runtime" not in row]
    assert len(steps) == 2 and all(math.isfinite(row["loss"]) for row in steps), steps
    # The loss that ran is the objective's: CISPO logs its own clip ratio, the clipped losses theirs (TRL), Reg-GRPO
    # rova's regression terms and no clip ratio; TW-GRPO its token weights (in [1, 1.7]) beside the clip ratios.
    if objective == "cispo":
        assert all("cispo_clip_ratio" in row and "clip_ratio/low_mean" not in row for row in steps), steps[0]
    elif objective == "reg_grpo":
        assert all("reg_grpo/loss" in row and "clip_ratio/low_mean" not in row for row in steps), steps[0]
        assert all(math.isfinite(row["reg_grpo/implicit_advantage_abs"]) for row in steps), steps[0]
    else:
        assert all("clip_ratio/low_mean" in row and "cispo_clip_ratio" not in row for row in steps), steps[0]
    if objective == "tw_grpo":
        assert all(1.0 <= row["token_weights/mean"] <= 1.7 for row in steps), steps[0]
    resolved = (run_dir / "resolved.yaml").read_text()
    assert f"name: {objective}" in resolved
    if extra == ENTROPY:  # TRL logs the coefficient of an active entropy bonus
        assert all(row.get("entropy_coef") == 0.001 for row in steps), steps[0]
    if objective == "dapo":
        check_dynamic_sampling(steps, run_dir, max_rounds=2)
    else:
        assert not any(key.startswith("dynamic_sampling/") for row in steps for key in row), steps[0]


def check_dynamic_sampling(steps: list[dict], run_dir, max_rounds: int) -> None:
    """The counts of each step are plausible and agree with rollouts.jsonl, and the refill really ran (the tiny
    random model's groups are mostly all-wrong: all-equal rewards)."""
    log = [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    for step, row in enumerate(steps):
        counts = {name: row[f"dynamic_sampling/{name}"] for name in
                  ("rounds", "dropped_groups", "short_groups", "drawn_groups", "unused_groups")}
        groups = [r for r in log if r["step"] == step]
        assert 1 <= counts["rounds"] <= max_rounds, counts
        assert counts["short_groups"] <= 1 and counts["unused_groups"] == 0, counts  # one prompt group per step
        assert counts["short_groups"] == 0 or counts["rounds"] == max_rounds, counts
        equal = [len(set(r["reward"])) == 1 for r in groups]
        assert counts["drawn_groups"] == sum(r["round"] > 0 for r in groups) == counts["rounds"] - 1, (counts, groups)
        assert counts["dropped_groups"] == sum(e and not r["in_batch"] for e, r in zip(equal, groups)), (counts, groups)
        assert counts["short_groups"] == sum(e and r["in_batch"] for e, r in zip(equal, groups)), (counts, groups)
        assert sum(r["in_batch"] for r in groups) == 1, groups
    assert sum(row["dynamic_sampling/drawn_groups"] for row in steps) >= 1, steps


REWARDS = np.array([1.0, 0.0, 0.0, 2.0])
GROUP_SCALED = (REWARDS - REWARDS.mean()) / (REWARDS.std(ddof=1) + 1e-4)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_the_trainer_runs_the_objective_and_rova_advantages_follow_its_scale_rewards(objective, tmp_path,
                                                                                      cache_dir, monkeypatch):
    """The built trainer holds the objective's loss settings (TRL reads them from the args), and rova's own
    advantage code (TRL's never runs: the rollout is rova's) scales by objective.scale_rewards."""
    trainer, cfg, _ = make_trainer(cache_dir, tmp_path, f"objective={objective}", "stage.num_generations=4",
                                   "stage.per_device_train_batch_size=4", "stage.max_completion_length=8")
    o = cfg.objective
    assert (trainer.loss_type, trainer.importance_sampling_level, trainer.beta) == (
        o.loss_type, o.importance_sampling_level, o.beta)
    assert (trainer.epsilon_low, trainer.epsilon_high) == (o.epsilon, o.epsilon_high or o.epsilon)
    assert (trainer.scale_rewards, trainer.mask_truncated_completions) == (o.scale_rewards,
                                                                           o.mask_truncated_completions)
    import rova.training.trainer as trainer_module

    score_rollout = trainer_module.score_rollout

    def fixed_rewards(*args, **kwargs):
        scores = score_rollout(*args, **kwargs)
        scores["clean"].total = REWARDS.reshape(1, 4).copy()
        return scores

    monkeypatch.setattr(trainer_module, "score_rollout", fixed_rewards)
    eos = sorted(trainer.eos_token_ids)[0]
    completions = [[5, 6, eos], [7, eos], [5, 6, 7, 8], [9, 9]]  # the last two were cut at the length limit
    monkeypatch.setattr(trainer, "generate_rows", lambda prompts, greedy=False: trainer_module.Generation(completions))
    trainer.model.train()
    batch = trainer._generate_and_score_completions([trainer.train_dataset[0]] * 4)
    expected = REWARDS - REWARDS.mean() if objective == "dr_grpo" else GROUP_SCALED  # dr_grpo: scale_rewards none
    np.testing.assert_allclose(batch["advantages"].numpy(), expected, rtol=1e-5, atol=1e-6)
    # mask_truncated_completions (DAPO) is applied by rova's loss rows: truncated completions leave the loss.
    kept = batch["completion_mask"].sum(dim=1).tolist()
    assert kept[:2] == [3, 2] and kept[2:] == ([0, 0] if o.mask_truncated_completions else [4, 2])
