"""VideoGRPOConfig: TRL's GRPOConfig plus the options rova's VideoGRPOTrainer reads (TRL's own pattern:
its configs are dataclass subclasses of transformers' TrainingArguments with extra fields).

The trainer and its helpers read `self.args` (this object), never the whole RootConfig. It is built in one
place, `rova.training.args.video_grpo_config`, from the composed config; field names are the config keys
they come from (`tgrpo.branches` -> `branches`, `memory.variance_filter` -> `variance_filter`, ...).

The `reward` and `corruption` fields hold rova's config dataclasses (the reward components read their
weights by name, the clip source its corruption mix). transformers serialises args with `to_dict` /
`to_json_string` (the wandb config, logs) and pickles them into each checkpoint's `training_args.bin`:
`to_dict` turns those two fields into plain dicts, and the constructor accepts the dicts back (tests:
tests/training/test_video_grpo_config.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from trl import GRPOConfig

from rova.config.branches import BRANCHES, CLEAN, CORRUPTED, SHUFFLED
from rova.config.reward import RewardConfig
from rova.config.corruption import CorruptionConfig
from rova.config.data import TASK_MIXING

# Fields holding a rova config dataclass: dicts in to_dict(), dataclasses again in __post_init__.
NESTED_CONFIGS = {"reward": RewardConfig, "corruption": CorruptionConfig}


@dataclass
class VideoGRPOConfig(GRPOConfig):
    r"""
    [`trl.GRPOConfig`] with the options of rova's `VideoGRPOTrainer` (video rollouts, T-GRPO branches, ROVA
    rewards). Parameters beyond GRPOConfig's:

        model_family (`str`): the model family adapter (`model.family`; rova/models/families).
        share_vision_encoding (`bool`): one vision-tower run per distinct clip per pass (`model.share_vision_encoding`).
        sequence_parallel (`int`): ranks per sequence-parallel group (`distributed.sequence_parallel`;
            rova.training.sequence_parallel); 1 = off.
        decode_workers (`int`): threads decoding the next generation batch's clips (`data.decode_workers`; 0 = inline).
        branches (`list[str]`): the T-GRPO branches that run (`tgrpo.branches`); always contains "clean".
        shuffled_generations / corrupted_generations (`int` or `None`): completions per prompt on the shuffled /
            corrupted branch (`tgrpo.*_generations`); must be set for a branch listed in `branches`.
        shuffle (`str`): frame order of the shuffled branch, "uniform" or "derangement" (`tgrpo.shuffle`).
        reward (`RewardConfig`): reward weights and constants (`reward.*`); the registry reads it.
        corruption (`CorruptionConfig`): the corruption mix of the corrupted view (`corruption.*`).
        variance_filter (`bool`): drop groups with one reward from the loss (`memory.variance_filter`).
        task_mixing (`str`): "shuffled" (TRL's sampler) or "per_batch" (one task kind per process's generation
            batch; `data.task_mixing`, rova.training.task_mixing).
        dynamic_sampling (`bool`): DAPO's dynamic sampling: refill groups with one clean reward with fresh prompts
            (`objective.dynamic_sampling`; rova.training.dynamic_sampling).
        max_sampling_rounds (`int`): most generation rounds per rollout with dynamic sampling, the first included
            (`objective.max_sampling_rounds`).
        token_weight_alpha (`float` or `None`): TW-GRPO token weights in [1, alpha] (`objective.token_weight_alpha`;
            None = off; rova.training.token_weights).
        advantage_regression (`bool`): Reg-GRPO's regression loss instead of TRL's (`objective.advantage_regression`;
            rova.training.reg_grpo), with `regression_beta` (`objective.beta`), `regression_reference` ("ref" or
            "old") and `regression_log_ratio` ("sum" or "mean") from the objective keys of the same names.
        augment_easy / augment_hard (`bool`): DeepVideo-R1's difficulty-aware augmentation: re-roll an all-right group
            on a corrupted clip / an all-wrong group with a hint (`memory.augment_*`; rova.training.difficulty_augment).
        hint_max_chars (`int`), hint_template (`str`): the hint's length and wording (`memory.hint_*`).
    """

    model_family: Optional[str] = field(default=None, metadata={"help": "Model family adapter (model.family); required."})
    share_vision_encoding: bool = field(
        default=True, metadata={"help": "One vision-tower run per distinct clip per pass (model.share_vision_encoding)."}
    )
    sequence_parallel: int = field(
        default=1, metadata={"help": "Ranks per sequence-parallel group (distributed.sequence_parallel); 1 = off."}
    )
    decode_workers: int = field(
        default=0, metadata={"help": "Threads decoding the next generation batch's clips; 0 = inline (data.decode_workers)."}
    )
    branches: list[str] = field(
        default_factory=lambda: [CLEAN], metadata={"help": "T-GRPO branches that run (tgrpo.branches)."}
    )
    shuffled_generations: Optional[int] = field(
        default=None, metadata={"help": "Completions per prompt on the shuffled branch (tgrpo.shuffled_generations)."}
    )
    corrupted_generations: Optional[int] = field(
        default=None, metadata={"help": "Completions per prompt on the corrupted branch (tgrpo.corrupted_generations)."}
    )
    shuffle: str = field(default="uniform", metadata={"help": "Shuffled branch frame order (tgrpo.shuffle)."})
    reward: RewardConfig = field(default_factory=RewardConfig, metadata={"help": "Reward weights and constants (reward.*)."})
    corruption: CorruptionConfig = field(
        default_factory=CorruptionConfig, metadata={"help": "Corruption mix of the corrupted view (corruption.*)."}
    )
    variance_filter: bool = field(
        default=False, metadata={"help": "Drop zero-variance groups from the loss (memory.variance_filter)."}
    )
    task_mixing: str = field(
        default="shuffled", metadata={"help": "shuffled, or per_batch: one task kind per generation batch (data.task_mixing)."}
    )
    dynamic_sampling: bool = field(
        default=False, metadata={"help": "Refill groups with one clean reward with fresh prompts (objective.dynamic_sampling)."}
    )
    max_sampling_rounds: int = field(
        default=10, metadata={"help": "Most generation rounds per rollout, the first included (objective.max_sampling_rounds)."}
    )
    augment_easy: bool = field(
        default=False, metadata={"help": "Re-roll all-right groups on a corrupted clip (memory.augment_easy)."}
    )
    augment_hard: bool = field(
        default=False, metadata={"help": "Re-roll all-wrong groups with a hint in the prompt (memory.augment_hard)."}
    )
    hint_max_chars: int = field(default=300, metadata={"help": "Most characters of a hint (memory.hint_max_chars)."})
    hint_template: str = field(
        default="\nHint: {hint}", metadata={"help": "What is appended to the question, {hint} replaced (memory.hint_template)."}
    )

    token_weight_alpha: Optional[float] = field(
        default=None, metadata={"help": "TW-GRPO token weights in [1, alpha]; None = off (objective.token_weight_alpha)."}
    )
    advantage_regression: bool = field(
        default=False, metadata={"help": "Reg-GRPO's regression loss instead of TRL's (objective.advantage_regression)."}
    )
    regression_beta: float = field(default=1.0, metadata={"help": "Reg-GRPO's beta (objective.beta)."})
    regression_reference: str = field(
        default="ref", metadata={"help": "Reg-GRPO's pi_ref: 'ref' model or 'old' policy (objective.regression_reference)."}
    )
    regression_log_ratio: str = field(
        default="sum", metadata={"help": "Reg-GRPO's rho over the tokens: 'sum' or 'mean' (objective.regression_log_ratio)."}
    )

    def __post_init__(self) -> None:
        if not self.model_family:
            raise ValueError("VideoGRPOConfig.model_family: set it to the model's family (model.family)")
        for name, cls in NESTED_CONFIGS.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, cls(**value))
            elif not isinstance(value, cls):
                raise TypeError(f"VideoGRPOConfig.{name} must be a {cls.__name__} or its dict, got {type(value).__name__}")
        if self.task_mixing not in TASK_MIXING:
            raise ValueError(f"task_mixing must be one of {', '.join(TASK_MIXING)}; got {self.task_mixing!r}")
        unknown = [b for b in self.branches if b not in BRANCHES]
        if unknown or CLEAN not in self.branches:
            raise ValueError(f"branches must contain {CLEAN!r} and only {', '.join(BRANCHES)}; got {self.branches}")
        for branch, size in ((SHUFFLED, self.shuffled_generations), (CORRUPTED, self.corrupted_generations)):
            if branch in self.branches and (size is None or size < 1):
                raise ValueError(f"branch {branch!r} is on: {branch}_generations must be >= 1, got {size}")
        if self.advantage_regression and self.regression_reference == "ref" and self.beta == 0.0:
            raise ValueError("advantage_regression against the reference model needs beta != 0 (TRL builds the "
                             "reference model only then; rova.training.args.objective_arguments)")
        super().__post_init__()

    def branch_sizes(self) -> dict[str, int]:
        """Completions per prompt on the untrained shuffled branch and the trained corrupted branch (0 = off)."""
        return {
            SHUFFLED: int(self.shuffled_generations) if SHUFFLED in self.branches else 0,
            CORRUPTED: int(self.corrupted_generations) if CORRUPTED in self.branches else 0,
        }

    # Override: the nested rova config dataclasses become dicts (transformers' to_dict keeps them as objects,
    # which breaks to_json_string and the trackers' config).
    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        for name in NESTED_CONFIGS:
            if dataclasses.is_dataclass(d.get(name)):
                d[name] = dataclasses.asdict(d[name])
        return d
