"""VideoGRPOConfig: the trainer's one args object (TRL's GRPOConfig + rova's options), built from a composed config,
serialised by transformers as it serialises any TrainingArguments."""

from __future__ import annotations

import dataclasses
import json
import pickle

import pytest
import torch

from rova.config.branches import CLEAN, CORRUPTED, SHUFFLED
from rova.config.reward import RewardConfig
from rova.config.corruption import CorruptionConfig
from rova.training.args import video_grpo_config
from rova.training.video_grpo_config import VideoGRPOConfig
from tests.support.trainers import run_overrides


def compose(tmp_path, *overrides: str):
    from rova.config.compose import load_typed

    cfg = load_typed(run_overrides(tmp_path / "cache", tmp_path, *overrides))
    return cfg


@pytest.fixture(scope="module")
def composed(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("video-grpo-config")
    cfg = compose(
        tmp_path, "stage=memory", "model=tiny", "corruption=weather", "reward.kl_alpha=2", "reward.w_kl=0.5",
        "tgrpo.shuffle=derangement", "memory.variance_filter=true", "model.share_vision_encoding=false",
        "stage.num_generations=4", "stage.per_device_train_batch_size=4", "tgrpo.corrupted_generations=3",
    )
    return cfg, video_grpo_config(cfg, tmp_path / "run", report_to=[])


def test_built_from_the_composed_config_carries_every_trainer_option(composed):
    cfg, args = composed
    assert isinstance(args, VideoGRPOConfig)
    # TRL's own fields, from stage.*
    assert (args.num_generations, args.per_device_train_batch_size, args.seed) == (4, 4, cfg.stage.seed)
    assert args.beta == cfg.objective.beta and args.loss_type == cfg.objective.loss_type
    # rova's, each from the key of the same meaning
    assert args.model_family == cfg.model.family == "qwen2_5_vl"
    assert args.share_vision_encoding is False and args.decode_workers == cfg.data.decode_workers
    assert args.branches == [CLEAN, SHUFFLED, CORRUPTED] == list(cfg.tgrpo.branches)
    assert (args.shuffled_generations, args.corrupted_generations) == (cfg.tgrpo.shuffled_generations, 3)
    assert args.branch_sizes() == {SHUFFLED: cfg.tgrpo.shuffled_generations, CORRUPTED: 3}
    assert args.shuffle == "derangement" and args.variance_filter is True
    assert args.reward == cfg.reward and args.reward.kl_alpha == 2.0 and args.reward.w_kl == 0.5
    assert args.corruption == cfg.corruption and args.corruption.p_weather == 1.0
    assert args.reward is not cfg.reward  # a copy: the args own their values


def test_branches_left_out_have_size_zero(tmp_path):
    cfg = compose(tmp_path, "stage=grpo", "model=tiny")
    args = video_grpo_config(cfg, tmp_path / "run", report_to=[])
    assert args.branches == [CLEAN] and args.branch_sizes() == {SHUFFLED: 0, CORRUPTED: 0}


def test_serialises_like_any_training_arguments_and_round_trips(composed, tmp_path):
    _, args = composed
    as_dict = args.to_dict()
    assert as_dict["reward"] == dataclasses.asdict(args.reward)
    assert as_dict["corruption"] == dataclasses.asdict(args.corruption)
    assert as_dict["branches"] == [CLEAN, SHUFFLED, CORRUPTED] and as_dict["variance_filter"] is True
    parsed = json.loads(args.to_json_string())
    assert parsed["reward"]["kl_alpha"] == 2.0 and parsed["shuffle"] == "derangement"
    assert all(not dataclasses.is_dataclass(v) for v in args.to_sanitized_dict().values())
    # generation_batch_size is derived by GRPOConfig from steps_per_generation; TRL refuses both set.
    rebuilt = VideoGRPOConfig(**{**as_dict, "generation_batch_size": None})
    assert isinstance(rebuilt.reward, RewardConfig) and rebuilt.reward == args.reward
    assert isinstance(rebuilt.corruption, CorruptionConfig) and rebuilt.corruption == args.corruption
    for key in ("branches", "shuffled_generations", "corrupted_generations", "shuffle", "variance_filter",
                "model_family", "share_vision_encoding", "num_generations", "learning_rate", "seed"):
        assert getattr(rebuilt, key) == getattr(args, key), key
    # transformers' Trainer writes torch.save(args) as each checkpoint's training_args.bin
    torch.save(args, tmp_path / "training_args.bin")
    loaded = torch.load(tmp_path / "training_args.bin", weights_only=False)
    assert loaded.reward == args.reward and loaded.branches == args.branches
    assert pickle.loads(pickle.dumps(args)).corruption == args.corruption


def test_bad_branch_options_fail_clearly(tmp_path):
    family = {"model_family": "qwen2_5_vl"}
    with pytest.raises(ValueError, match="must contain 'clean'"):
        VideoGRPOConfig(output_dir=str(tmp_path), branches=[SHUFFLED], **family)
    with pytest.raises(ValueError, match="corrupted_generations must be >= 1"):
        VideoGRPOConfig(output_dir=str(tmp_path), branches=[CLEAN, CORRUPTED], **family)
    with pytest.raises(TypeError, match="VideoGRPOConfig.reward must be a RewardConfig"):
        VideoGRPOConfig(output_dir=str(tmp_path), reward=3, **family)
    with pytest.raises(ValueError, match="model_family"):
        VideoGRPOConfig(output_dir=str(tmp_path))


def test_the_trainer_takes_its_options_from_a_video_grpo_config_only(tmp_path):
    from trl import GRPOConfig

    from rova.training.trainer import VideoGRPOTrainer

    with pytest.raises(TypeError, match="needs args=VideoGRPOConfig"):
        VideoGRPOTrainer(model=None, reward_funcs=[], args=GRPOConfig(output_dir=str(tmp_path), bf16=False), clip_source=None,
                         run_dir=tmp_path)


def test_a_warmup_is_honoured_under_the_constant_schedule(tmp_path):
    """transformers' "constant" ignores warmup_steps: learn_demo's `stage.warmup_steps=20` was silently dropped."""
    from transformers import get_scheduler

    cfg = compose(tmp_path, "stage=grpo", "model=tiny", "stage.learning_rate=1e-3", "stage.warmup_steps=10")
    args = video_grpo_config(cfg, tmp_path / "run", report_to=[])
    assert args.lr_scheduler_type.value == "constant_with_warmup" and args.warmup_steps == 10
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=args.learning_rate)
    schedule = get_scheduler(args.lr_scheduler_type, optimizer, num_warmup_steps=args.get_warmup_steps(40),
                             num_training_steps=40)
    rates = []
    for _ in range(12):
        rates.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    assert rates[0] == 0.0 and rates[5] == pytest.approx(5e-4) and rates[10:] == [1e-3, 1e-3]
    plain = video_grpo_config(compose(tmp_path, "stage=grpo", "model=tiny"), tmp_path / "run2", report_to=[])
    assert plain.lr_scheduler_type.value == "constant" and plain.warmup_steps == 0


def test_an_unknown_scheduler_is_refused_with_its_key(tmp_path):
    from rova.errors import ConfigError

    with pytest.raises(ConfigError, match="stage.lr_scheduler_type"):
        compose(tmp_path, "stage=grpo", "model=tiny", "stage.lr_scheduler_type=cosine_decay")


OBJECTIVE_KEYS = ("loss_type", "beta", "epsilon", "epsilon_high", "delta", "importance_sampling_level",
                  "top_entropy_quantile", "entropy_coef", "scale_rewards", "mask_truncated_completions")


@pytest.mark.parametrize("objective", ["grpo", "dapo", "dr_grpo", "gspo", "cispo"])
def test_each_objective_reaches_the_trainer_args(tmp_path, objective):
    """objective.* is handed to TRL's GRPOConfig under the same names, for every preset and any RL stage."""
    cfg = compose(tmp_path, "stage=tgrpo", "model=tiny", f"objective={objective}", "objective.entropy_coef=0.01",
                  "objective.top_entropy_quantile=0.5")
    args = video_grpo_config(cfg, tmp_path / "run", report_to=[])
    for key in OBJECTIVE_KEYS:
        assert getattr(args, key) == getattr(cfg.objective, key), key
    assert (args.entropy_coef, args.top_entropy_quantile) == (0.01, 0.5)
    expected = {"grpo": ("dapo", 0.2, None), "dapo": ("dapo", 0.2, 0.28), "dr_grpo": ("dr_grpo", 0.2, None),
                "gspo": ("grpo", 3e-4, 4e-4), "cispo": ("cispo", 0.2, 5.0)}[objective]
    assert (args.loss_type, args.epsilon, args.epsilon_high) == expected
    assert args.scale_rewards == ("none" if objective == "dr_grpo" else "group")
    assert args.importance_sampling_level == ("sequence" if objective == "gspo" else "token")
    assert args.mask_truncated_completions is (objective == "dapo")


def test_delta_reaches_the_trainer_args(tmp_path):
    args = video_grpo_config(compose(tmp_path, "stage=grpo", "model=tiny", "objective.delta=1.5"), tmp_path / "r",
                             report_to=[])
    assert args.delta == 1.5


def test_tw_grpo_reaches_the_trainer_args(tmp_path):
    args = video_grpo_config(compose(tmp_path, "stage=grpo", "model=tiny", "objective=tw_grpo"), tmp_path / "r",
                             report_to=[])
    assert (args.token_weight_alpha, args.loss_type, args.epsilon_high, args.beta) == (1.7, "bnpo", 0.28, 0.0)
    assert args.advantage_regression is False


@pytest.mark.parametrize("reference,trl_beta", [("ref", 1.0), ("old", 0.0)])
def test_reg_grpo_reaches_the_trainer_args_and_trl_builds_a_reference_model_only_for_it(tmp_path, reference, trl_beta):
    """objective.beta is Reg-GRPO's beta; TRL gets it (and so builds the reference model) only when rho is taken
    against the reference model, not against the old policy."""
    cfg = compose(tmp_path, "stage=grpo", "model=tiny", "objective=reg_grpo",
                  f"objective.regression_reference={reference}", "objective.regression_log_ratio=mean")
    args = video_grpo_config(cfg, tmp_path / "r", report_to=[])
    assert args.advantage_regression is True and args.regression_beta == 1.0 == cfg.objective.beta
    assert (args.beta, args.regression_reference, args.regression_log_ratio) == (trl_beta, reference, "mean")
    assert args.token_weight_alpha is None


def test_reg_grpo_against_the_reference_model_needs_trls_beta(tmp_path):
    cfg = compose(tmp_path, "stage=grpo", "model=tiny", "objective=reg_grpo")
    args = video_grpo_config(cfg, tmp_path / "r", report_to=[])
    with pytest.raises(ValueError, match="beta != 0"):
        dataclasses.replace(args, beta=0.0)
