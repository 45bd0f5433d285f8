"""The pure rollout phases (rova.training.scoring / rollout_metrics) on hand-made rows and rewards."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.config.reward import RewardConfig
from rova.config.branches import CLEAN, CORRUPTED, SHUFFLED
from rova.training.rollout_metrics import MEAN_STD, SUM, rollout_metrics
from rova.training.scoring import group_advantages, loss_rows, plan_generation, score_rollout, zero_std_groups

RIGHT, WRONG = "<think>t</think><answer>A</answer>", "<think>t</think><answer>B</answer>"
NO_FORMAT = "A"
PROMPT = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Which? A or B"}]}]


def dataset_rows(solution="<answer>A</answer>", problem_type="multiple choice", groups=1) -> list[dict]:
    """The dataset rows of `groups` prompt groups: what score_rollout hands the reward components."""
    return [{"prompt": PROMPT, "solution": solution, "problem_type": problem_type}] * groups


def test_plan_puts_clean_rows_first_and_skips_missing_views():
    plan = plan_generation(2, {CLEAN: 3, SHUFFLED: 2, CORRUPTED: 2},
                           {CLEAN: [True, True], SHUFFLED: [True, False], CORRUPTED: [True, True]})
    assert plan.rows == [(CLEAN, 0)] * 3 + [(CLEAN, 1)] * 3 + [(SHUFFLED, 0)] * 2 + [(CORRUPTED, 0)] * 2 + [(CORRUPTED, 1)] * 2
    assert plan.groups == {CLEAN: [0, 1], SHUFFLED: [0], CORRUPTED: [0, 1]}
    assert plan.indices(SHUFFLED) == [6, 7]


def test_plan_with_a_branch_switched_off_has_no_rows_for_it():
    plan = plan_generation(1, {CLEAN: 2, SHUFFLED: 0, CORRUPTED: 2}, {CLEAN: [True], SHUFFLED: [True], CORRUPTED: [True]})
    assert plan.groups[SHUFFLED] == [] and plan.indices(SHUFFLED) == []


def _score(texts_by_branch: dict, cfg: RewardConfig, kl=None, problem_type="multiple choice", available=None):
    sizes = {b: len(t) for b, t in texts_by_branch.items()}
    sizes.setdefault(SHUFFLED, 0)
    sizes.setdefault(CORRUPTED, 0)
    plan = plan_generation(1, sizes, available or {b: [True] for b in sizes})
    texts = [texts_by_branch[b][k] for b in (CLEAN, SHUFFLED, CORRUPTED) for k in range(sizes[b])
             if plan.groups[b]]
    lengths = [10] * len(texts)
    return plan, score_rollout(plan, texts, lengths, dataset_rows(problem_type=problem_type), cfg, kl)


def test_components_and_total_follow_the_registry_and_weights():
    cfg = RewardConfig(w_acc=2.0, w_fmt=0.5, w_temp=1.0, temporal_alpha=0.3, temporal_mu=0.8)
    plan, scores = _score({CLEAN: [RIGHT, WRONG, NO_FORMAT], SHUFFLED: [WRONG, WRONG]}, cfg)
    clean = scores[CLEAN]
    np.testing.assert_array_equal(clean.correctness, [[1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(clean.components["format"], [[1.0, 1.0, 0.0]])
    # p = 1/3 >= 0.8 * p~ = 0: every correct ordered completion earns the temporal bonus.
    np.testing.assert_allclose(clean.components["temporal"], [[0.3, 0.0, 0.0]])
    np.testing.assert_allclose(clean.total, [[2.0 + 0.5 + 0.3, 0.5, 0.0]])
    assert SHUFFLED in scores and scores[SHUFFLED].total is None  # the shuffled branch is measured, not trained


def test_temporal_and_kl_only_reach_the_clean_branch():
    cfg = RewardConfig(w_kl=1.0, kl_alpha=1.0, w_temp=1.0)
    kl = np.array([0.0, np.log(2.0)])
    _, scores = _score({CLEAN: [RIGHT, RIGHT], SHUFFLED: [RIGHT], CORRUPTED: [RIGHT, WRONG]}, cfg, kl=kl)
    np.testing.assert_allclose(scores[CLEAN].components["kl"], [[1.0, 0.5]])
    assert "kl" not in scores[CORRUPTED].components and "temporal" not in scores[CORRUPTED].components
    # p = 1 < 0.8 * p~ is false (1 >= 0.8): bonus earned.
    np.testing.assert_allclose(scores[CLEAN].components["temporal"], [[0.3, 0.3]])
    np.testing.assert_allclose(scores[CORRUPTED].total, [[2.0, 1.0]])


def test_grounding_rows_are_weighted_by_w_iou_not_w_acc():
    cfg = RewardConfig(w_acc=1.0, w_iou=3.0, w_fmt=0.0)
    texts = ["<think>t</think><answer>[0, 10]</answer>", "<think>t</think><answer>[0, 5]</answer>"]
    plan = plan_generation(1, {CLEAN: 2}, {CLEAN: [True]})
    scores = score_rollout(plan, texts, [5, 5], dataset_rows("<answer>[0, 10]</answer>", "grounding"), cfg)
    iou = scores[CLEAN].components["iou"]
    assert np.all(np.isnan(scores[CLEAN].components["accuracy"]))
    np.testing.assert_allclose(scores[CLEAN].total, 3.0 * iou)


def test_image_groups_without_a_shuffled_view_get_no_temporal_bonus():
    cfg = RewardConfig()
    plan = plan_generation(2, {CLEAN: 2, SHUFFLED: 1}, {CLEAN: [True, True], SHUFFLED: [False, True]})
    texts = [RIGHT, RIGHT, RIGHT, RIGHT, WRONG]
    scores = score_rollout(plan, texts, [5] * 5, dataset_rows(groups=2), cfg)
    temporal = scores[CLEAN].components["temporal"]
    assert np.all(np.isnan(temporal[0])) and np.allclose(temporal[1], 0.3)


def test_group_advantages_match_trl_formulas():
    rewards = np.array([[1.0, 0.0, 0.0, 1.0], [2.0, 2.0, 2.0, 5.0]])
    group = group_advantages(rewards, "group")
    expected = (rewards - rewards.mean(1, keepdims=True)) / (rewards.std(1, ddof=1, keepdims=True) + 1e-4)
    np.testing.assert_allclose(group, expected)
    np.testing.assert_allclose(group_advantages(rewards, "batch", batch_std=2.0),
                               (rewards - rewards.mean(1, keepdims=True)) / (2.0 + 1e-4))
    np.testing.assert_allclose(group_advantages(rewards, "none"), rewards - rewards.mean(1, keepdims=True))
    with pytest.raises(ValueError, match="batch_std"):
        group_advantages(rewards, "batch")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(-5, 5), min_size=2, max_size=6), min_size=1, max_size=4).filter(
    lambda rows: len({len(r) for r in rows}) == 1))
def test_group_advantages_are_centred_per_group(rows):
    rewards = np.array(rows)
    for scale, std in (("group", None), ("batch", 1.5), ("none", None)):
        adv = group_advantages(rewards, scale, std)
        np.testing.assert_allclose(adv.mean(axis=1), 0.0, atol=1e-6)


def test_loss_rows_train_clean_then_corrupted_and_filter_zero_variance_groups():
    cfg = RewardConfig(w_fmt=0.0)
    plan, scores = _score({CLEAN: [RIGHT, WRONG], CORRUPTED: [WRONG, WRONG]}, cfg)
    rows = loss_rows(plan, scores, "group")
    assert rows.indices == plan.indices(CLEAN) + plan.indices(CORRUPTED) and rows.num_clean == 2
    assert rows.keep.all() and rows.advantages[2:].tolist() == [0.0, 0.0]
    filtered = loss_rows(plan, scores, "group", variance_filter=True)
    assert filtered.keep.tolist() == [True, True, False, False]


def test_metrics_report_each_branch_and_the_trained_rows():
    cfg = RewardConfig(w_fmt=0.0)
    plan, scores = _score({CLEAN: [RIGHT, WRONG], SHUFFLED: [WRONG, WRONG], CORRUPTED: [WRONG, WRONG]}, cfg)
    rows = loss_rows(plan, scores, "group")
    lengths = [10, 20, 300, 300, 30, 40]  # shuffled completions are long but never trained
    m = rollout_metrics(plan, scores, rows, lengths, None, ["weather"], False).values
    assert m["completions/mean_length"][0].tolist() == [10, 20, 30, 40]
    assert m["completions/shuffled/mean_length"][0].tolist() == [300, 300]
    assert m["reward"][0].tolist() == [1.3, 0.0, 0.0, 0.0] and m["reward"][1] == MEAN_STD  # 1 + temporal 0.3
    assert m["frac_reward_zero_std/clean"][0].tolist() == [0.0]
    assert m["frac_reward_zero_std/corrupted"][0].tolist() == [1.0]
    assert m["frac_reward_zero_std"][0].tolist() == [0.0, 1.0]
    assert m["branch/shuffled_completions"] == (np.array([2.0]), SUM)
    for branch in (CLEAN, CORRUPTED):
        assert f"rewards/{branch}/accuracy" in m and f"reward/{branch}" in m


def test_metric_names_do_not_depend_on_the_data_a_process_holds():
    """An image-only process has no shuffled rows, yet must make the same collective calls."""
    cfg = RewardConfig()
    sizes = {CLEAN: 2, SHUFFLED: 1, CORRUPTED: 2}
    video = plan_generation(1, sizes, {CLEAN: [True], SHUFFLED: [True], CORRUPTED: [True]})
    image = plan_generation(1, sizes, {CLEAN: [True], SHUFFLED: [False], CORRUPTED: [True]})
    names = []
    for plan in (video, image):
        texts = [RIGHT] * len(plan.rows)
        scores = score_rollout(plan, texts, [5] * len(texts), dataset_rows(), cfg)
        names.append(sorted(rollout_metrics(plan, scores, loss_rows(plan, scores, "group"), [5] * len(texts),
                                            None, ["clean"], False).values))
    assert names[0] == names[1]


def test_zero_std_groups():
    assert zero_std_groups(np.array([[1.0, 1.0], [0.0, 1.0]])).tolist() == [True, False]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_shuffled_rewards_keep_their_values_and_components_but_leave_their_completions(seed):
    from rova.training.scoring import shuffle_rewards

    plan = plan_generation(3, {CLEAN: 4, SHUFFLED: 0, CORRUPTED: 4}, {CLEAN: [True] * 3, SHUFFLED: [False] * 3,
                                                                       CORRUPTED: [True] * 3})
    texts = [RIGHT if i % 3 == 0 else WRONG for i in range(24)]
    scores = score_rollout(plan, texts, [10] * 24, dataset_rows(groups=3), RewardConfig())
    before = {b: (s.total.copy(), {k: v.copy() for k, v in s.components.items()}) for b, s in scores.items()
              if s.total is not None}
    shuffle_rewards(scores, seed)
    for branch, (total, components) in before.items():
        after = scores[branch].total
        assert after.shape == total.shape and sorted(after.ravel()) == sorted(total.ravel())
        for key, value in components.items():  # the logged rewards are the true ones
            np.testing.assert_array_equal(scores[branch].components[key], value)
    again = score_rollout(plan, texts, [10] * 24, dataset_rows(groups=3), RewardConfig())
    shuffle_rewards(again, seed)
    np.testing.assert_array_equal(again[CLEAN].total, scores[CLEAN].total)  # seeded: replayable


def test_shuffled_rewards_break_the_link_between_reward_and_correctness():
    from rova.training.scoring import shuffle_rewards

    plan = plan_generation(8, {CLEAN: 8, SHUFFLED: 0, CORRUPTED: 0}, {CLEAN: [True] * 8, SHUFFLED: [False] * 8,
                                                                      CORRUPTED: [False] * 8})
    texts = [RIGHT if i % 2 else WRONG for i in range(64)]
    scores = score_rollout(plan, texts, [10] * 64, dataset_rows(groups=8), RewardConfig())
    correct = scores[CLEAN].correctness.ravel()
    assert np.corrcoef(correct, scores[CLEAN].total.ravel())[0, 1] == pytest.approx(1.0)
    shuffle_rewards(scores, 0)
    assert abs(np.corrcoef(correct, scores[CLEAN].total.ravel())[0, 1]) < 0.5


CAPTION_SOLUTION = "<answer>a man opens the fridge\nhe pours milk into a glass</answer>"
CAPTIONS = ["<think>t</think><answer>A man opens the fridge.</answer>",  # the rule: 1 of 2 events
            "<think>t</think><answer>...</answer>"]                       # no caption text: 0, never judged


def _caption_rollout(cfg: RewardConfig):
    plan = plan_generation(1, {CLEAN: 2, SHUFFLED: 0, CORRUPTED: 2}, {CLEAN: [True], CORRUPTED: [True]})
    texts = CAPTIONS + CAPTIONS
    scores = score_rollout(plan, texts, [5] * 4, dataset_rows(CAPTION_SOLUTION, "caption"), cfg)
    metrics = rollout_metrics(plan, scores, loss_rows(plan, scores, "group"), [5] * 4, None, ["rain"], False).values
    return scores, metrics


def test_caption_recall_is_the_accuracy_of_caption_rows_and_the_rule_logs_no_judge_metric():
    scores, metrics = _caption_rollout(RewardConfig())
    np.testing.assert_allclose(scores[CLEAN].correctness, [[0.5, 0.0]])
    np.testing.assert_allclose(scores[CLEAN].components["accuracy"], [[0.5, 0.0]])
    assert np.isnan(scores[CLEAN].components["iou"]).all()
    assert scores[CLEAN].judge_fallbacks is None
    assert not any(name.startswith("caption/") for name in metrics)


def test_the_judge_scores_every_branch_and_its_fallbacks_are_a_metric(monkeypatch):
    """A real local endpoint: it answers the first request, then replies nonsense; the rule scores the rest."""
    from tests.support.judge_server import JudgeServer, Reply

    for var in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    with JudgeServer([Reply("[1, 2]"), Reply("no idea")]) as server:
        cfg = RewardConfig(caption_scorer="judge", caption_judge={"base_url": server.base_url, "model": "m",
                                                                  "retries": 0, "timeout_s": 2.0})
        scores, metrics = _caption_rollout(cfg)
    assert len(server.requests) == 2  # one caption with text per branch
    np.testing.assert_allclose(scores[CLEAN].correctness, [[1.0, 0.0]])      # judged: both events
    np.testing.assert_allclose(scores[CORRUPTED].correctness, [[0.5, 0.0]])  # fell back to the rule
    np.testing.assert_array_equal(scores[CORRUPTED].judge_fallbacks, [[1.0, np.nan]])
    fallbacks, kind = metrics["caption/judge_fallbacks"]
    judged, _ = metrics["caption/judged"]
    assert kind == SUM and np.nansum(fallbacks) == 1 and np.nansum(judged) == 2  # what the trainer's SUM reduces


def test_judge_metric_names_do_not_depend_on_the_data(monkeypatch):
    """Every process logs the caption/* names under the judge, also one holding no caption row (nothing sent)."""
    cfg = RewardConfig(caption_scorer="judge", caption_judge={"base_url": "http://127.0.0.1:9/v1", "model": "m"})
    plan = plan_generation(1, {CLEAN: 2, SHUFFLED: 0, CORRUPTED: 0}, {CLEAN: [True]})
    scores = score_rollout(plan, [RIGHT, WRONG], [5, 5], dataset_rows(), cfg)
    metrics = rollout_metrics(plan, scores, loss_rows(plan, scores, "group"), [5, 5], None, None, False).values
    assert {"caption/judge_fallbacks", "caption/judged"} <= set(metrics)
    assert np.isnan(metrics["caption/judge_fallbacks"][0]).all()  # SUM of nothing: 0
