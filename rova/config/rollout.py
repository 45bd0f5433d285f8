"""The `rollout.*` settings: where completions are generated (HF generate, or vLLM colocated with training)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rova.config.checks import _choice, _positive
from rova.errors import ConfigError

VLLM_IS_MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")


@dataclass
class RolloutConfig:
    """Where completions are generated: HF generate, or vLLM colocated with training."""

    name: str = "hf"
    vllm_gpu_memory_utilization: float = 0.3
    vllm_enable_sleep_mode: bool = False
    vllm_max_model_length: Optional[int] = None
    # Importance sampling between vLLM's sampling log-probs and the trainer's (TRL GRPOConfig names and defaults).
    vllm_importance_sampling_correction: bool = True
    vllm_importance_sampling_mode: str = "sequence_mask"
    vllm_importance_sampling_clip_max: Optional[float] = 3.0
    vllm_importance_sampling_clip_min: Optional[float] = None

    def __post_init__(self) -> None:
        _choice("rollout.name", self.name, ("hf", "vllm"))
        if not 0.0 < self.vllm_gpu_memory_utilization <= 1.0:
            raise ConfigError("rollout.vllm_gpu_memory_utilization", "must be in (0, 1]")
        if self.vllm_max_model_length is not None:
            _positive("rollout.vllm_max_model_length", self.vllm_max_model_length)
        _choice("rollout.vllm_importance_sampling_mode", self.vllm_importance_sampling_mode, VLLM_IS_MODES)
        lo, hi = self.vllm_importance_sampling_clip_min, self.vllm_importance_sampling_clip_max
        if hi is not None:
            _positive("rollout.vllm_importance_sampling_clip_max", hi)
        if lo is not None:
            _positive("rollout.vllm_importance_sampling_clip_min", lo, allow_zero=True)
        if lo is not None and hi is not None and lo >= hi:
            raise ConfigError(
                "rollout.vllm_importance_sampling_clip_min",
                f"got {lo}; must be < rollout.vllm_importance_sampling_clip_max ({hi})",
            )
        if (self.vllm_importance_sampling_correction and self.vllm_importance_sampling_mode.endswith("_truncate")
                and lo is None and hi is None):
            raise ConfigError(
                "rollout.vllm_importance_sampling_clip_max",
                f"mode {self.vllm_importance_sampling_mode} truncates: set clip_max and/or clip_min",
            )
