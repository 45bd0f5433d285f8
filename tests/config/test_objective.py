"""The `objective` group: the policy loss as config (TRL 1.16 GRPOConfig names), validated at compose time."""

from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from rova.config.compose import MOVED_KEYS, load, load_typed, validate
from rova.config.objective import DYNAMIC_SAMPLING_KEYS, LOSS_TYPES, ObjectiveConfig
from rova.errors import ConfigError

OBJECTIVES = ("grpo", "dapo", "dr_grpo", "gspo", "cispo", "tw_grpo", "reg_grpo")
# rova's own objective keys (not GRPOConfig fields), each off by default.
ROVA_KEYS = {"token_weight_alpha": None, "advantage_regression": False, "regression_reference": "ref",
             "regression_log_ratio": "sum"}
RL_STAGES = ("grpo", "tgrpo", "memory")
# Each preset's values (../shared/docs/methods.md, "GRPO variants already in TRL 1.16's GRPOConfig").
EXPECTED = {
    "grpo": {"loss_type": "dapo", "epsilon": 0.2, "epsilon_high": None, "scale_rewards": "group",
             "mask_truncated_completions": False, "importance_sampling_level": "token", "beta": 0.0,
             "dynamic_sampling": False},
    "dapo": {"loss_type": "dapo", "epsilon": 0.2, "epsilon_high": 0.28, "mask_truncated_completions": True,
             "dynamic_sampling": True, "max_sampling_rounds": 10},
    "dr_grpo": {"loss_type": "dr_grpo", "scale_rewards": "none", "dynamic_sampling": False},
    "gspo": {"loss_type": "grpo", "importance_sampling_level": "sequence", "epsilon": 3e-4, "epsilon_high": 4e-4,
             "beta": 0.0, "dynamic_sampling": False},
    "cispo": {"loss_type": "cispo", "epsilon_high": 5.0, "dynamic_sampling": False},
    # methods.md "TW-GRPO" and the release (scripts/tw-grpo.sh, grpo_config.py, grpo_trainer.py's normalisation).
    "tw_grpo": {"token_weight_alpha": 1.7, "loss_type": "bnpo", "epsilon": 0.2, "epsilon_high": 0.28, "beta": 0.0,
                "advantage_regression": False},
    # methods.md "DeepVideo-R1".
    "reg_grpo": {"advantage_regression": True, "beta": 1.0, "regression_reference": "ref",
                 "regression_log_ratio": "sum", "token_weight_alpha": None, "epsilon_high": None},
}


@pytest.mark.parametrize("stage", RL_STAGES)
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_every_objective_composes_with_every_rl_stage(objective, stage):
    cfg = load_typed([f"objective={objective}", f"stage={stage}", "corruption=rova"])
    assert cfg.objective.name == objective and cfg.stage.name == stage
    for key, value in EXPECTED[objective].items():
        assert getattr(cfg.objective, key) == value, key


def test_the_default_objective_is_trl_grpo_config_defaults_so_existing_runs_do_not_change():
    """objective=grpo is what runs did before the group: every key at TRL 1.16's GRPOConfig default (rova's own
    keys, not GRPOConfig's: dynamic sampling off)."""
    from trl import GRPOConfig

    cfg = load_typed([])
    assert cfg.objective.name == "grpo"
    theirs = {f.name: f.default for f in dataclasses.fields(GRPOConfig)}
    for field in dataclasses.fields(ObjectiveConfig):
        if field.name in ROVA_KEYS:
            assert getattr(cfg.objective, field.name) == ROVA_KEYS[field.name], field.name
        elif field.name not in ("name", *DYNAMIC_SAMPLING_KEYS):
            assert getattr(cfg.objective, field.name) == theirs[field.name], field.name
    assert cfg.objective.dynamic_sampling is False
    assert not set(DYNAMIC_SAMPLING_KEYS) & set(theirs)  # not TRL's: the trainer reads them, GRPOConfig never does


def test_loss_types_are_the_installed_trl_ones():
    import inspect

    from trl import GRPOConfig, GRPOTrainer

    help_text = next(f for f in dataclasses.fields(GRPOConfig) if f.name == "loss_type").metadata["help"]
    source = inspect.getsource(GRPOTrainer._compute_loss)
    for loss_type in LOSS_TYPES:
        assert f"'{loss_type}'" in help_text and f'"{loss_type}"' in source, loss_type


BAD = [
    (["objective.loss_type=ppo"], "objective.loss_type"),
    (["objective.beta=-0.1"], "objective.beta"),
    (["objective.epsilon=0"], "objective.epsilon"),
    (["objective.epsilon=1.5"], "objective.epsilon"),
    (["objective.epsilon_high=-0.2"], "objective.epsilon_high"),
    (["objective=cispo", "objective.epsilon_high=null"], "objective.epsilon_high"),
    (["objective=cispo", "objective.epsilon_high=0.28"], "objective.epsilon_high"),
    (["objective.delta=0.9"], "objective.delta"),
    (["objective=cispo", "objective.delta=2"], "objective.delta"),
    (["objective.importance_sampling_level=token_mean"], "objective.importance_sampling_level"),
    (["objective.loss_type=luspo"], "objective.importance_sampling_level"),
    (["objective=gspo", "objective.loss_type=vespo"], "objective.importance_sampling_level"),
    (["objective.top_entropy_quantile=1.2"], "objective.top_entropy_quantile"),
    (["objective.entropy_coef=-1"], "objective.entropy_coef"),
    (["objective.scale_rewards=max"], "objective.scale_rewards"),
    (["objective.scale_rewards=true"], "objective.scale_rewards"),
    (["objective.mask_truncated_completions=maybe"], "objective.mask_truncated_completions"),
    (["objective.epsilom=0.1"], "objective.epsilom"),
    (["objective.dynamic_sampling=maybe"], "objective.dynamic_sampling"),
    (["objective=dapo", "objective.max_sampling_rounds=0"], "objective.max_sampling_rounds"),
    (["objective=dapo", "objective.max_sampling_rounds=-1"], "objective.max_sampling_rounds"),
    (["objective=dapo", "objective.max_sampling_rounds=2.5"], "objective.max_sampling_rounds"),
    (["objective=dapo", "reward.shuffle=true"], "objective.dynamic_sampling"),
    (["objective=dapo", "stage=tgrpo", "reward.shuffle=true"], "objective.dynamic_sampling"),
    (["objective=dapo", "data.task_mixing=per_batch"], "objective.dynamic_sampling"),
    (["objective=ppo"], "objective"),
    (["objective=tw_grpo", "objective.token_weight_alpha=0"], "objective.token_weight_alpha"),
    (["objective.token_weight_alpha=-1.7"], "objective.token_weight_alpha"),
    (["objective.regression_reference=policy"], "objective.regression_reference"),
    (["objective.regression_log_ratio=max"], "objective.regression_log_ratio"),
    (["objective=reg_grpo", "objective.beta=0"], "objective.beta"),
    (["objective=reg_grpo", "objective.token_weight_alpha=1.7"], "objective.token_weight_alpha"),
    (["objective=reg_grpo", "objective.epsilon_high=0.28"], "objective.epsilon_high"),
    (["objective=reg_grpo", "objective.delta=1.5"], "objective.delta"),
    (["objective=reg_grpo", "objective.importance_sampling_level=sequence"], "objective.importance_sampling_level"),
    (["objective=reg_grpo", "objective.top_entropy_quantile=0.2"], "objective.top_entropy_quantile"),
    (["objective=reg_grpo", "objective.entropy_coef=0.001"], "objective.entropy_coef"),
    # Reg-GRPO needs whole groups in a micro-batch: each holds per_device_train_batch_size / num_generations groups.
    (["objective=reg_grpo", "stage.per_device_train_batch_size=2", "stage.num_generations=4",
      "stage.steps_per_generation=2"], "stage.per_device_train_batch_size"),
    (["objective=reg_grpo", "stage=tgrpo", "stage.per_device_train_batch_size=3", "stage.num_generations=2",
      "stage.gradient_accumulation_steps=2"], "stage.per_device_train_batch_size"),
    (["objective=reg_grpo", "stage=memory", "stage.per_device_train_batch_size=3", "stage.num_generations=2",
      "stage.steps_per_generation=1"], "stage.per_device_train_batch_size"),
    (["objective=reg_grpo", "rollout=vllm"], "rollout.vllm_importance_sampling_correction"),
]


@pytest.mark.parametrize("overrides,key", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_objective_values_are_refused_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as info:
        load(overrides)
    assert info.value.key == key, str(info.value)


def test_dynamic_sampling_composes_with_every_objective_and_its_edge_values():
    """Any objective can switch it on; one round (drop and mask, no refill) is allowed; reward.shuffle is fine
    without it (the refusal above is about the pair)."""
    for objective in OBJECTIVES:
        cfg = load_typed([f"objective={objective}", "objective.dynamic_sampling=true", "objective.max_sampling_rounds=1"])
        assert cfg.objective.dynamic_sampling and cfg.objective.max_sampling_rounds == 1
    cfg = load_typed(["objective=dapo", "objective.dynamic_sampling=false", "reward.shuffle=true"])
    assert not cfg.objective.dynamic_sampling and cfg.reward.shuffle
    with pytest.raises(ConfigError) as info:
        ObjectiveConfig(max_sampling_rounds=0)
    assert info.value.key == "objective.max_sampling_rounds" and ">= 1" in info.value.problem


def test_good_edge_values_are_accepted():
    cfg = load_typed(["objective.delta=1.5", "objective.top_entropy_quantile=0.2", "objective.entropy_coef=0.001",
                   "objective.scale_rewards=batch", "objective.loss_type=luspo",
                   "objective.importance_sampling_level=sequence"])
    assert (cfg.objective.delta, cfg.objective.top_entropy_quantile, cfg.objective.loss_type) == (1.5, 0.2, "luspo")


@pytest.mark.parametrize("stage", RL_STAGES)
def test_reg_grpo_composes_with_several_micro_batches_per_rollout_of_whole_groups(stage):
    for steps in (1, 2, 4):
        cfg = load_typed(["objective=reg_grpo", f"stage={stage}", "stage.gradient_accumulation_steps=4",
                       f"stage.steps_per_generation={steps}", "stage.per_device_train_batch_size=4",
                       "stage.num_generations=2"])
        assert cfg.stage.generation_steps == steps and cfg.objective.advantage_regression
    cfg = load_typed(["objective=reg_grpo", f"stage={stage}", "objective.regression_reference=old",
                   "objective.regression_log_ratio=mean", "rollout=vllm",
                   "rollout.vllm_importance_sampling_correction=false"])
    assert (cfg.objective.regression_reference, cfg.objective.regression_log_ratio) == ("old", "mean")


def test_token_weights_compose_with_any_objective_and_alpha_below_one():
    """The weights scale A by w > 0, which weights each token's loss for every TRL loss (each reads A's sign only)."""
    cfg = load_typed(["objective=dapo", "objective.token_weight_alpha=0.5"])
    assert cfg.objective.token_weight_alpha == 0.5 and cfg.objective.epsilon_high == 0.28


@pytest.mark.parametrize("old", sorted(MOVED_KEYS))
def test_a_moved_stage_key_is_refused_with_its_new_home_named(old):
    with pytest.raises(ConfigError) as info:
        load([f"{old}=1"])
    assert info.value.key == old and MOVED_KEYS[old] in info.value.problem


def test_a_resolved_file_with_an_old_stage_key_names_the_new_key():
    """A run dir written before the move (workers read resolved.yaml): the same clear error, not a bare KeyError."""
    resolved, _ = load([])
    old = OmegaConf.to_container(resolved)
    old["stage"]["beta"] = 0.04
    with pytest.raises(ConfigError) as info:
        validate(OmegaConf.create(old))
    assert info.value.key == "stage.beta" and "objective.beta" in info.value.problem


def test_experiments_set_the_kl_penalty_in_objective():
    cfg = load_typed(["experiment=video_r1_7b", "data.train_file=/data/Video-R1-260k.json"])
    assert cfg.objective.beta == 0.04 and cfg.objective.name == "grpo"
    cfg = load_typed(["experiment=video_r1_7b", "data.train_file=/data/x.json", "objective=dapo"])
    assert cfg.objective.beta == 0.04 and cfg.objective.epsilon_high == 0.28
