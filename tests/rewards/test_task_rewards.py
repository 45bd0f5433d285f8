"""The task rewards in the registry and the presets reward=videochat_r1|temporal_r1|tw_grpo: each record's problem
type selects what is scored, the totals follow the preset's weights (hand-computed), and the edge cases reach the
advantages as they should (an all-equal group has no signal)."""

from __future__ import annotations

import numpy as np
import pytest

import rova.rewards.registry as registry
from rova.config.branches import CLEAN
from rova.config.compose import load, load_typed
from rova.config.reward import RewardConfig
from rova.errors import ConfigError
from rova.rewards.choices import MULTI_ANSWER_MODES
from rova.rewards.format_rules import FORMAT_RULES
from rova.training.scoring import group_advantages, plan_generation, score_rollout, zero_std_groups

MC = ("multiple choice", "<answer>B</answer>")
GQA = ("grounded_qa", "<answer>B</answer><glue>[(1, 3)]</glue>")
TRACK = ("tracking", "<answer>[[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]]</answer>")
GROUND = ("grounding", "<answer>[2, 4]</answer>")
MULTI = ("multiple choice", "<answer>A,C</answer>")
CAPTION = ("caption", "<answer>a man opens the fridge\nhe pours milk into a glass</answer>")
THINK = "<think>x</think>"
# (record, completion, accuracy, iou, video_r1 format, per_task format)
ROWS = [
    (MC, f"{THINK}<answer>B</answer>", 1.0, np.nan, 1.0, 1.0),
    (MC, f" {THINK}<answer>C</answer> ", 0.0, np.nan, 1.0, 0.0),
    (GQA, f"{THINK}<answer>The best answer is B</answer><glue>[(2, 3)]</glue>", 1.0, 0.5, 0.0, 1.0),
    (GQA, f"{THINK}<answer>B</answer>", 1.0, 0.0, 1.0, 0.0),
    (TRACK, f"{THINK}<answer>[[0, 0, 0.5, 0.5], [0.5, 0.5, 0.75, 1]]</answer>", np.nan, 0.75, 1.0, 1.0),
    (TRACK, f"{THINK}<answer>[[0, 0, 0.5, 0.5]]</answer>", np.nan, 0.0, 1.0, 0.0),
    (GROUND, f"{THINK}<answer>[3, 4]</answer>", np.nan, 0.5, 1.0, 1.0),
    (CAPTION, f"{THINK}<answer>A man opens the fridge.</answer>", 0.5, np.nan, 1.0, 1.0),  # 1 of 2 events covered
    (CAPTION, f"{THINK}<answer>x</answer><glue>[]</glue>", 0.0, np.nan, 0.0, 0.0),
    (MULTI, f"{THINK}<answer>A</answer>", 0.0, np.nan, 1.0, 1.0),
]


def _score(cfg: RewardConfig):
    """Each row as its own prompt group of one completion, through score_rollout as the trainer calls it."""
    n = len(ROWS)
    plan = plan_generation(n, {CLEAN: 1}, {CLEAN: [True] * n})
    heads = [{"prompt": [], "solution": sol, "problem_type": kind} for (kind, sol), *_ in ROWS]
    texts = [row[1] for row in ROWS]
    return score_rollout(plan, texts, [10] * n, heads, cfg)[CLEAN]


def _column(index):
    return np.array([row[index] for row in ROWS])


def test_each_problem_type_selects_its_rewards():
    scores = _score(RewardConfig(format_rule="per_task"))
    np.testing.assert_allclose(scores.components["accuracy"].ravel(), _column(2))
    np.testing.assert_allclose(scores.components["iou"].ravel(), _column(3))
    np.testing.assert_allclose(scores.components["format"].ravel(), _column(5))
    np.testing.assert_allclose(_score(RewardConfig()).components["format"].ravel(), _column(4))


def test_videochat_r1_total_is_the_unweighted_sum():
    cfg = load_typed(["reward=videochat_r1"])
    expected = np.nan_to_num(_column(2)) + np.nan_to_num(_column(3)) + _column(5)
    np.testing.assert_allclose(_score(cfg.reward).total.ravel(), expected)


def test_temporal_r1_halves_every_part():
    cfg = load_typed(["reward=temporal_r1"])
    expected = 0.5 * (np.nan_to_num(_column(2)) + np.nan_to_num(_column(3)) + _column(4))
    np.testing.assert_allclose(_score(cfg.reward).total.ravel(), expected)


def test_tw_grpo_gives_partial_credit_to_a_subset_of_the_letters():
    cfg = load_typed(["reward=tw_grpo"])
    scores = _score(cfg.reward)
    assert scores.correctness.ravel()[-1] == 0.5 and scores.components["accuracy"].ravel()[-1] == 0.5
    assert _score(RewardConfig()).correctness.ravel()[-1] == 0.0  # exact by default


def test_the_registry_scores_without_the_scorers_correctness_too():
    """As a TRL reward function (no `correctness` kwarg): the same values from the completions alone."""
    kinds, sols = [r[0][0] for r in ROWS], [r[0][1] for r in ROWS]
    comps = [r[1] for r in ROWS]
    cfg = RewardConfig(multi_answer="soft")
    acc = registry.accuracy([[]] * len(ROWS), comps, solution=sols, problem_type=kinds, reward_config=cfg)
    iou = registry.iou([[]] * len(ROWS), comps, solution=sols, problem_type=kinds, reward_config=cfg)
    np.testing.assert_allclose(acc, np.where(np.arange(len(ROWS)) == len(ROWS) - 1, 0.5, _column(2)))
    np.testing.assert_allclose(iou, _column(3))


def test_an_all_equal_group_has_zero_advantage():
    """Every completion of a tracking group with the wrong box count scores 0: no signal, advantages 0."""
    kind, sol = TRACK
    plan = plan_generation(1, {CLEAN: 4}, {CLEAN: [True]})
    text = f"{THINK}<answer>[[0, 0, 0.5, 0.5]]</answer>"
    cfg = load_typed(["reward=videochat_r1"])
    scores = score_rollout(plan, [text] * 4, [10] * 4, [{"prompt": [], "solution": sol, "problem_type": kind}],
                           cfg.reward)[CLEAN]
    assert np.all(scores.total == 0.0) and zero_std_groups(scores.total).all()
    for scale in ("group", "none"):
        assert np.all(group_advantages(scores.total, scale) == 0.0)


def test_reward_modes_are_validated_with_their_keys_and_match_the_rewards():
    assert RewardConfig.__dataclass_fields__["format_rule"].default == FORMAT_RULES[0]
    for key, allowed in (("format_rule", FORMAT_RULES), ("multi_answer", MULTI_ANSWER_MODES)):
        for value in allowed:
            assert getattr(load_typed([f"reward.{key}={value}"]).reward, key) == value
        with pytest.raises(ConfigError) as info:
            load([f"reward.{key}=loose"])
        assert info.value.key == f"reward.{key}"


@pytest.mark.parametrize("preset,values", [
    ("videochat_r1", {"format_rule": "per_task", "w_temp": 0.0, "w_acc": 1.0, "w_iou": 1.0, "w_fmt": 1.0,
                      "caption_scorer": "rule", "caption_threshold": 0.5}),
    ("temporal_r1", {"w_acc": 0.5, "w_iou": 0.5, "w_fmt": 0.5, "w_temp": 0.0, "format_rule": "video_r1"}),
    ("tw_grpo", {"multi_answer": "soft", "w_temp": 0.0}),
])
def test_presets(preset, values):
    cfg = load_typed([f"reward={preset}"])
    assert cfg.reward.name == preset
    assert {k: getattr(cfg.reward, k) for k in values} == values
