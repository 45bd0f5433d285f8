"""The `stage.*` settings: which stage runs, and the trainer hyperparameters (TRL GRPOConfig / SFTConfig names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rova.config.checks import _choice, _positive, _unit
from rova.errors import ConfigError


@dataclass
class StageConfig:
    """Which stage runs, and the trainer hyperparameters (TRL GRPOConfig / SFTConfig names)."""

    name: str = "grpo"
    max_steps: int = 4
    learning_rate: float = 1e-5
    lr_scheduler_type: str = "constant"
    warmup_steps: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    steps_per_generation: Optional[int] = None
    num_generations: int = 4
    num_iterations: int = 1
    max_completion_length: int = 48
    max_prompt_length: Optional[int] = None
    temperature: float = 1.0
    top_p: float = 1.0
    beta: float = 0.0
    epsilon: float = 0.2
    loss_type: str = "dapo"
    scale_rewards: str = "group"
    mask_truncated_completions: bool = False
    gradient_checkpointing: bool = False
    save_steps: int = 2
    save_total_limit: Optional[int] = 2
    logging_steps: int = 1
    seed: int = 42
    dataloader_num_workers: int = 0

    def __post_init__(self) -> None:
        from rova.stages.registry import stage_names

        _choice("stage.name", self.name, stage_names())
        _positive("stage.max_steps", self.max_steps)
        _positive("stage.learning_rate", self.learning_rate)
        _positive("stage.warmup_steps", self.warmup_steps, allow_zero=True)
        _positive("stage.weight_decay", self.weight_decay, allow_zero=True)
        _positive("stage.max_grad_norm", self.max_grad_norm)
        _positive("stage.per_device_train_batch_size", self.per_device_train_batch_size)
        _positive("stage.gradient_accumulation_steps", self.gradient_accumulation_steps)
        if self.steps_per_generation is not None:
            _positive("stage.steps_per_generation", self.steps_per_generation)
        if self.num_generations < 2:
            raise ConfigError("stage.num_generations", f"got {self.num_generations}; GRPO needs a group of >= 2")
        _positive("stage.num_iterations", self.num_iterations)
        _positive("stage.max_completion_length", self.max_completion_length)
        if self.max_prompt_length is not None:
            _positive("stage.max_prompt_length", self.max_prompt_length)
        _positive("stage.temperature", self.temperature)
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError("stage.top_p", f"got {self.top_p!r}; must be in (0, 1]")
        _positive("stage.beta", self.beta, allow_zero=True)
        _unit("stage.epsilon", self.epsilon)
        _choice("stage.loss_type", self.loss_type, ("grpo", "bnpo", "dr_grpo", "dapo"))
        _choice("stage.scale_rewards", self.scale_rewards, ("group", "batch", "none"))
        _positive("stage.save_steps", self.save_steps)
        if self.save_total_limit is not None:
            _positive("stage.save_total_limit", self.save_total_limit)
        _positive("stage.logging_steps", self.logging_steps)
        _positive("stage.dataloader_num_workers", self.dataloader_num_workers, allow_zero=True)

    @property
    def generation_steps(self) -> int:
        return self.steps_per_generation or self.gradient_accumulation_steps
