"""The reward registry is the one list of components: weights, branches, totals, metrics, console."""

from __future__ import annotations

import dataclasses

import numpy as np

from rova.config.schema import RewardConfig
from rova.config.branches import CLEAN, CORRUPTED
from rova.rewards.registry import (
    REWARD_COMPONENTS,
    RewardComponent,
    components_for,
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


def test_adding_a_component_is_one_entry(monkeypatch):
    """A new reward flows into scoring and totals from its registry entry alone."""
    import rova.rewards.registry as registry

    @dataclasses.dataclass
    class Cfg(RewardConfig):
        w_brevity: float = 2.0

    brevity = RewardComponent("brevity", "w_brevity", (CLEAN,), lambda inputs, cfg: (inputs.lengths < 5).astype(float))
    monkeypatch.setattr(registry, "REWARD_COMPONENTS", (*REWARD_COMPONENTS, brevity))
    inputs = registry.BranchInputs(
        branch=CLEAN, texts=["a", "b"], lengths=np.array([[3, 9]]), correctness=np.array([[0.0, 0.0]]),
        grounding=np.zeros((1, 2), dtype=bool),
    )
    cfg = Cfg(w_fmt=0.0)
    components = registry.score_components(inputs, cfg)
    assert components["brevity"].tolist() == [[1.0, 0.0]]
    assert registry.total_reward(CLEAN, components, cfg).tolist() == [[2.0, 0.0]]
    assert "brevity" not in registry.score_components(dataclasses.replace(inputs, branch=CORRUPTED), cfg)


def test_nan_components_count_as_zero_in_the_total():
    cfg = RewardConfig(w_acc=1.0, w_fmt=1.0, w_temp=5.0, w_kl=5.0)
    from rova.rewards.registry import BranchInputs

    inputs = BranchInputs(CLEAN, ["<think>x</think><answer>A</answer>"], np.array([[4]]), np.array([[1.0]]),
                          np.zeros((1, 1), dtype=bool))
    components = score_components(inputs, cfg)
    assert np.isnan(components["temporal"]).all() and np.isnan(components["kl"]).all()
    assert total_reward(CLEAN, components, cfg).tolist() == [[2.0]]
