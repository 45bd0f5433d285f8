"""Build rova's VideoGRPOConfig (TRL's GRPOConfig with the trainer's own options; GRPO stages) and transformers'
TrainingArguments (stage=sft) from our typed config (key names match theirs where they mean the same thing)."""

from __future__ import annotations

import copy
from pathlib import Path

from rova.config.schema import RootConfig

CHECKPOINTS = "checkpoints"


# stage.* keys handed to the trainer under the same name: those of every training stage, and GRPO's own.
TRAINER_KEYS = (
    "max_steps", "learning_rate", "lr_scheduler_type", "weight_decay", "max_grad_norm",
    "per_device_train_batch_size", "gradient_accumulation_steps", "gradient_checkpointing",
    "save_steps", "save_total_limit", "logging_steps", "seed", "dataloader_num_workers",
)
GRPO_KEYS = (
    "steps_per_generation", "num_generations", "num_iterations", "max_completion_length", "temperature", "top_p",
)
# objective.* keys (the policy loss), handed to GRPOConfig under the same name.
OBJECTIVE_KEYS = (
    "loss_type", "beta", "epsilon", "epsilon_high", "delta", "importance_sampling_level", "top_entropy_quantile",
    "entropy_coef", "scale_rewards", "mask_truncated_completions",
)


def common_trainer_args(cfg: RootConfig, run_dir: Path, *, report_to: list[str]) -> dict:
    """The TrainingArguments kwargs that stage=sft and the GRPO stages share: schedule, batch, checkpoints,
    logging, seeds, precision, dataloader (each stage adds its own on top)."""
    stage = cfg.stage
    return dict(
        {key: getattr(stage, key) for key in TRAINER_KEYS},
        lr_scheduler_type=scheduler_type(stage.lr_scheduler_type, stage.warmup_steps),
        output_dir=str(Path(run_dir) / CHECKPOINTS),
        warmup_steps=int(stage.warmup_steps) if stage.warmup_steps >= 1 else stage.warmup_steps,
        save_strategy="steps",
        data_seed=stage.seed,
        remove_unused_columns=False,  # the collators / rollout need the raw rows (prompt messages, media path)
        bf16=cfg.model.dtype == "bfloat16",
        fp16=cfg.model.dtype == "float16",
        report_to=report_to,
        run_name=Path(run_dir).name,
        disable_tqdm=True,
        dataloader_pin_memory=_has_cuda(),
    )


def scheduler_type(name: str, warmup_steps: float) -> str:
    """transformers' "constant" schedule ignores warmup_steps; with a warmup asked for, it is "constant_with_warmup"
    (the same constant rate after the warmup), so `stage.warmup_steps=N` is never silently dropped."""
    return "constant_with_warmup" if name == "constant" and warmup_steps > 0 else name


def video_grpo_config(cfg: RootConfig, run_dir: Path, *, report_to: list[str], extra: dict | None = None):
    """The VideoGRPOConfig of the GRPO stages: TRL's GRPOConfig from stage.* / objective.* / rollout.*, plus every
    option the VideoGRPOTrainer reads (rova.training.video_grpo_config); the one place the trainer's args are built."""
    from rova.training.video_grpo_config import VideoGRPOConfig

    return VideoGRPOConfig(
        **common_trainer_args(cfg, run_dir, report_to=report_to),
        **{key: getattr(cfg.stage, key) for key in GRPO_KEYS},
        **objective_arguments(cfg),
        log_completions=False,
        **vllm_arguments(cfg),
        **rova_trainer_arguments(cfg),
        **(extra or {}),
    )


def objective_arguments(cfg: RootConfig) -> dict:
    """objective.* for GRPOConfig under the same names, and rova's own objective keys for VideoGRPOConfig."""
    objective = cfg.objective
    trl = {key: getattr(objective, key) for key in OBJECTIVE_KEYS}
    if objective.advantage_regression and objective.regression_reference == "old":
        # Reg-GRPO against the old policy reads no reference model: TRL builds one only for beta != 0, so it gets
        # 0 and the regression its beta as regression_beta.
        trl["beta"] = 0.0
    return {
        **trl,
        "token_weight_alpha": objective.token_weight_alpha,
        "advantage_regression": objective.advantage_regression,
        "regression_reference": objective.regression_reference,
        "regression_log_ratio": objective.regression_log_ratio,
        "regression_beta": objective.beta,
    }


def rova_trainer_arguments(cfg: RootConfig) -> dict:
    """VideoGRPOConfig's own fields, each from the config key of the same meaning."""
    return {
        "model_family": cfg.model.family,
        "share_vision_encoding": cfg.model.share_vision_encoding,
        "sequence_parallel": cfg.distributed.sequence_parallel,
        "decode_workers": cfg.data.decode_workers,
        "branches": list(cfg.tgrpo.branches),
        "shuffled_generations": cfg.tgrpo.shuffled_generations,
        "corrupted_generations": cfg.tgrpo.corrupted_generations,
        "shuffle": cfg.tgrpo.shuffle,
        "reward": copy.deepcopy(cfg.reward),
        "corruption": copy.deepcopy(cfg.corruption),
        "variance_filter": cfg.memory.variance_filter,
        "task_mixing": cfg.data.task_mixing,
        "dynamic_sampling": cfg.objective.dynamic_sampling,
        "max_sampling_rounds": cfg.objective.max_sampling_rounds,
        "augment_easy": cfg.memory.augment_easy,
        "augment_hard": cfg.memory.augment_hard,
        "hint_max_chars": cfg.memory.hint_max_chars,
        "hint_template": cfg.memory.hint_template,
    }


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def vllm_arguments(cfg: RootConfig) -> dict:
    """rollout=vllm: TRL builds the colocated engine (and syncs weights); rova sends it video requests."""
    if cfg.rollout.name != "vllm":
        return {}
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        from rova.errors import RovaError

        raise RovaError("rollout=vllm needs the vllm extra on a GPU machine: `uv sync --extra vllm`") from exc
    return {
        "use_vllm": True,
        "vllm_mode": "colocate",
        "vllm_gpu_memory_utilization": cfg.rollout.vllm_gpu_memory_utilization,
        "vllm_enable_sleep_mode": cfg.rollout.vllm_enable_sleep_mode,
        "vllm_max_model_length": cfg.rollout.vllm_max_model_length,
        # vLLM's sampling log-probs come back with every rollout (rova.training.vllm_rollout), so TRL's
        # importance-sampling correction of the vLLM / trainer mismatch works as in TRL (on by default).
        "vllm_importance_sampling_correction": cfg.rollout.vllm_importance_sampling_correction,
        "vllm_importance_sampling_mode": cfg.rollout.vllm_importance_sampling_mode,
        "vllm_importance_sampling_clip_max": cfg.rollout.vllm_importance_sampling_clip_max,
        "vllm_importance_sampling_clip_min": cfg.rollout.vllm_importance_sampling_clip_min,
    }


def sft_config(cfg: RootConfig, run_dir: Path, *, report_to: list[str], extra: dict | None = None):
    """transformers' TrainingArguments for stage=sft (rova.training.sft says why not TRL's SFTConfig)."""
    from transformers import TrainingArguments

    return TrainingArguments(**common_trainer_args(cfg, run_dir, report_to=report_to), **(extra or {}))
