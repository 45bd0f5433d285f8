"""The reward registry is the one list of components: weights, branches, totals, metrics, console."""

from __future__ import annotations

import dataclasses

import numpy as np

import rova.rewards.registry as registry
from rova.config.reward import RewardConfig
from rova.rewards import accuracy_score
from rova.config.branches import CLEAN, CORRUPTED
from rova.rewards.registry import (
    REWARD_COMPONENTS,
    RewardComponent,
    components_for,
    get_component,
    score_components,
    total_reward,
)
from rova.training.tracking import console_keys


def test_every_weight_in_the_config_belongs_to_exactly_one_component():
    weights = {f.name for f in dataclasses.fields(RewardConfig) if f.name.startswith("w_")}
    assert sorted(c.weight_key for c in REWARD_COMPONENTS) == sorted(weights)
    assert len({c.name for c in REWARD_COMPONENTS}) == len(REWARD_COMPONENTS)


def test_console_line_shows_every_clean_component():
    keys = [k for k, _ in console_keys()]
    for component in components_for(CLEAN):
        assert f"rewards/{CLEAN}/{component.name}/mean" in keys


def test_the_console_line_keeps_its_columns_when_a_step_lacks_a_component():
    """Issue 21, item 8: the line switched between `iou=` and `accu=` from step to step."""
    import re

    from rova.training.tracking import console_line

    names = [c.name for c in components_for(CLEAN)]
    full = {"loss": 0.1, "reward/mean": 1.0, **{f"rewards/{CLEAN}/{n}/mean": 0.5 for n in names}}
    partial = {k: v for k, v in full.items() if not k.endswith(f"/{names[0]}/mean")}
    labels = [re.findall(r" (\w+)=", console_line(s, 9, logs)) for s, logs in ((1, full), (2, partial))]
    assert labels[0] == labels[1] and len(labels[0]) == 2 + len(names)
    assert f" {names[0][:4]}=- " in console_line(2, 9, partial) + " "


PROMPT = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Which? A or B"}]}]


def branch_inputs(branch, completions, lengths, correctness, solution="<answer>A</answer>",
                  problem_type="multiple choice", **signals):
    """One branch's inputs for a single prompt group: every completion carries the group's prompt and truth."""
    n = len(completions)
    return registry.BranchInputs(
        branch=branch, prompts=[PROMPT] * n, completions=completions, solution=[solution] * n,
        problem_type=[problem_type] * n, lengths=np.array([lengths]), correctness=np.array([correctness]), **signals,
    )


def test_adding_a_component_is_one_entry(monkeypatch):
    """A new reward flows into scoring and totals from its registry entry alone."""

    @dataclasses.dataclass
    class Cfg(RewardConfig):
        w_brevity: float = 2.0

    def brevity(prompts, completions, *, lengths, **kwargs):
        return (lengths < 5).astype(float)

    component = RewardComponent("brevity", "w_brevity", (CLEAN,), brevity)
    monkeypatch.setattr(registry, "REWARD_COMPONENTS", (*REWARD_COMPONENTS, component))
    inputs = branch_inputs(CLEAN, ["a", "b"], [3, 9], [0.0, 0.0])
    cfg = Cfg(w_fmt=0.0)
    components = registry.score_components(inputs, cfg)
    assert components["brevity"].tolist() == [[1.0, 0.0]]
    assert registry.total_reward(CLEAN, components, cfg).tolist() == [[2.0, 0.0]]
    assert "brevity" not in registry.score_components(dataclasses.replace(inputs, branch=CORRUPTED), cfg)


def test_nan_components_count_as_zero_in_the_total():
    cfg = RewardConfig(w_acc=1.0, w_fmt=1.0, w_temp=5.0, w_kl=5.0)
    inputs = branch_inputs(CLEAN, ["<think>x</think><answer>A</answer>"], [4], [1.0])
    components = score_components(inputs, cfg)
    assert np.isnan(components["temporal"]).all() and np.isnan(components["kl"]).all()
    assert total_reward(CLEAN, components, cfg).tolist() == [[2.0]]


def test_every_component_receives_the_prompt_and_the_ground_truth(monkeypatch):
    seen = {}

    def spy(prompts, completions, **kwargs):
        seen.update(prompts=prompts, completions=completions, **kwargs)
        return [0.0] * len(completions)

    monkeypatch.setattr(registry, "REWARD_COMPONENTS", (RewardComponent("spy", "w_acc", (CLEAN,), spy),))
    inputs = branch_inputs(CLEAN, ["x", "y"], [3, 4], [0.0, 1.0], solution="<answer>B</answer>")
    registry.score_components(inputs, RewardConfig())
    assert seen["prompts"] == [PROMPT, PROMPT] and seen["completions"] == ["x", "y"]
    assert seen["solution"] == ["<answer>B</answer>"] * 2 and seen["problem_type"] == ["multiple choice"] * 2
    assert seen["branch"] == CLEAN and isinstance(seen["reward_config"], RewardConfig)


def test_components_called_as_trl_calls_a_reward_function():
    """TRL's call: reward_func(prompts=..., completions=..., completion_ids=..., **dataset columns)."""
    dataset = [
        {"prompt": PROMPT, "solution": "<answer>A</answer>", "problem_type": "multiple choice", "sample_id": "v1"},
        {"prompt": PROMPT, "solution": "<answer>[0, 10]</answer>", "problem_type": "grounding", "sample_id": "v2"},
        {"prompt": PROMPT, "solution": "<answer>B</answer>", "problem_type": "multiple choice", "sample_id": "v3"},
    ]
    completions = ["<think>t</think><answer>A</answer>", "<think>t</think><answer>[0, 5]</answer>", "<answer>A</answer>"]
    columns = {key: [row[key] for row in dataset] for key in dataset[0] if key != "prompt"}
    call = dict(prompts=[row["prompt"] for row in dataset], completions=completions,
                completion_ids=[[1, 2, 3]] * 3, **columns)
    acc, iou_ = get_component("accuracy").compute(**call), get_component("iou").compute(**call)
    np.testing.assert_array_equal(np.isnan(acc), [False, True, False])
    assert acc[0] == 1.0 and acc[2] == 0.0
    np.testing.assert_array_equal(np.isnan(iou_), [True, False, True])
    np.testing.assert_allclose(iou_[1], 0.5)
    assert list(get_component("format").compute(**call)) == [1.0, 1.0, 0.0]
    # The same values as the trainer's scoring, which hands in the correctness it already computed.
    correctness = np.array([[accuracy_score(c, row["solution"], row["problem_type"]) for c, row in zip(completions, dataset)]])
    np.testing.assert_array_equal(get_component("accuracy").compute(**call, correctness=correctness), acc)
