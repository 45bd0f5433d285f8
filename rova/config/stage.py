"""The `stage` group: the stage registry (every `stage=` option and its contract, declared once) and the
`stage.*` settings (which stage runs, and the trainer hyperparameters: TRL GRPOConfig / SFTConfig names).

The registry is light on purpose (no torch, no transformers; a stage's module is imported only when it runs):
the config checks `stage.name` and the RL rules against it, and the launcher, the recipe and the SLURM code
know stages only through these declarations; none of them branches on which stage it is. Adding a stage is
one module in rova/stages/ with `run(cfg, run_dir)` and `outcome(run_dir)`, one entry in STAGES below, and its
`conf/stage/<name>.yaml`. Behaviour inside a stage is switched by config (`tgrpo.branches`, `memory.enabled`),
never by comparing stage names.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional

from rova.config.checks import _choice, _positive, _seed

# transformers' SchedulerType values that need no extra arguments (stage.lr_scheduler_type); "constant" with
# stage.warmup_steps > 0 runs as "constant_with_warmup" (rova.training.args.scheduler_type).
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial",
                 "inverse_sqrt")
from rova.errors import ConfigError


def _load(entry: str) -> Callable:
    module_name, _, func = entry.partition(":")
    return getattr(importlib.import_module(module_name), func)


@dataclass(frozen=True)
class StageSpec:
    """One stage: its code, and its contract with the run dir and with the steps of a recipe."""

    name: str
    module: str                # "package.module" holding run(cfg, run_dir) and outcome(run_dir); imported on use
    summary: str
    reads: tuple[str, ...]     # config keys naming its inputs (a recipe step may link these to an earlier step)
    hands: Mapping[str, str]   # what it hands a later step: {config key the later step sets: file in this run dir}
    writes: tuple[str, ...]    # files and folders it leaves in its run dir
    done: str                  # the file whose presence in its run dir means it finished (written last)
    shard_key: Optional[str] = None  # config key: how many SLURM array tasks share its run dir (None: one)
    policy_groups: bool = False  # trains a policy on prompt groups of stage.num_generations (GRPO family): the
    #                              tgrpo.*, memory.*, reward.w_kl, LoRA and batch-divisibility rules apply
    seed_key: Optional[str] = "stage.seed"  # config key a recipe's per-seed copy sets to its seed (recipe.seeds);
    #                              None: the copies keep the step's seed (eval: the same corrupted clips for all)
    free: tuple[str, ...] = ()   # config keys / groups that do not shape its results: groups it never reads and
    #                              its throughput knobs; a relaunch may change them (rova.config.fingerprint)
    extend_key: Optional[str] = None  # the key a relaunch with run.extend=true may grow (training: stage.max_steps)

    @property
    def entry(self) -> str:
        return f"{self.module}:run"

    def load(self) -> Callable:
        """run(cfg, run_dir)."""
        return _load(self.entry)

    def finished(self, run_dir: Path) -> bool:
        """Its done file is there and parses. Done files are JSON written last and atomically; one torn or emptied
        by other means (a full disk, a partial copy) does not count: the step runs again."""
        from rova.utils.io import read_json

        return read_json(Path(run_dir) / self.done) is not None

    def done_unreadable(self, run_dir: Path) -> bool:
        """Its done file is there but does not parse."""
        return (Path(run_dir) / self.done).exists() and not self.finished(run_dir)

    def outcome(self, run_dir: Path) -> str:
        """A few words on what a finished run produced (the recipe report's line), from its files."""
        if self.done_unreadable(run_dir):
            return f"not finished: its {self.done} does not parse"
        if not self.finished(run_dir):
            return "not finished"
        return _load(f"{self.module}:outcome")(Path(run_dir))

    def shards(self, cfg) -> int:
        """How many SLURM array tasks run this stage for the config (cfg.<shard_key>; 1 without one)."""
        if self.shard_key is None:
            return 1
        section, _, key = self.shard_key.partition(".")
        return int(getattr(getattr(cfg, section), key))


_RL_READS = ("model.path", "data.train_file")
_RL_WRITES = (
    "resolved.yaml", "data_report.json", "metrics.jsonl", "rollouts.jsonl", "train.log", "checkpoints/",
    "model/", "summary.json",
)
_MODEL = {"model.path": "model"}
# What a training stage's results (weights, metrics) do not depend on: the eval-only groups, and when and how
# much it saves and logs, and gradient checkpointing (the same gradients, less memory).
_TRAINING_FREE = ("eval", "benchmark", "cot", "select", "stage.save_steps", "stage.save_total_limit", "stage.logging_steps",
                  "stage.gradient_checkpointing")
_TRAINING = {"free": _TRAINING_FREE, "extend_key": "stage.max_steps"}

STAGES: dict[str, StageSpec] = {
    spec.name: spec
    for spec in (
        StageSpec("grpo", "rova.stages.rl", "GRPO on video (clean branch only)", _RL_READS, _MODEL, _RL_WRITES,
                  "summary.json", policy_groups=True, **_TRAINING),
        StageSpec(
            "tgrpo", "rova.stages.rl", "T-GRPO + ROVA branches: clean, shuffled (temporal), corrupted (KL)",
            _RL_READS, _MODEL, _RL_WRITES, "summary.json", policy_groups=True, **_TRAINING,
        ),
        StageSpec(
            "memory", "rova.stages.rl", "T-GRPO with the difficulty-aware memory (memory.enabled=true)",
            _RL_READS, _MODEL, _RL_WRITES + ("memory.json",), "summary.json", policy_groups=True, **_TRAINING,
        ),
        StageSpec(
            "cot", "rova.stages.cot",
            "a teacher (model.*) writes <think> rationales for data.train_file; the best scoring sample is kept",
            ("model.path", "data.train_file"), {"data.train_file": "cot.json"},
            ("resolved.yaml", "cot_predictions.jsonl", "cot.json", "cot_report.json", "train.log"), "cot_report.json",
            shard_key="cot.shards",
        ),
        StageSpec(
            "select", "rova.stages.select",
            "Temporal-R1's selection: select.num_samples answers per record of data.train_file; the records whose "
            "reward varies are kept",
            ("model.path", "data.train_file"), {"data.train_file": "select.json"},
            ("resolved.yaml", "select_predictions.jsonl", "select.json", "select_report.json", "select_report.md",
             "select_hist.png", "train.log"), "select_report.json", shard_key="select.shards",
            # The groups it never reads; its sampling is seeded per generate call, so select.batch_size, the
            # shards and the processes may change which records share a call: they are not free.
            free=("eval", "benchmark", "cot", "sft", "tgrpo", "memory", "objective", "corruption"),
        ),
        StageSpec(
            "sft", "rova.stages.sft",
            "video SFT on a Video-R1-COT file, loss on the assistant completion only",
            ("model.path", "data.train_file"), _MODEL,
            ("resolved.yaml", "metrics.jsonl", "train.log", "checkpoints/", "model/", "summary.json"), "summary.json",
            **_TRAINING,
        ),
        StageSpec(
            "eval", "rova.stages.eval",
            "benchmark accuracy, clean and under every eval.corruptions x eval.severities cell",
            ("model.path", "benchmark.file", "eval.reference"), {"eval.reference": "results.json"},
            ("resolved.yaml", "predictions.jsonl", "results.json", "report.md", "heatmap.png", "families.png",
             "train.log"), "results.json", shard_key="eval.shards", seed_key=None,
            # Items are scored one by one and each corrupted clip is a function of (eval.seed, item, cell): how many
            # prompts per generate call, SLURM tasks or processes share them changes the speed, not what is
            # measured (greedy decoding; padding in a batch may move float rounding, not the protocol).
            free=("eval.batch_size", "eval.shards", "distributed"),
        ),
    )
}


def stage_names() -> tuple[str, ...]:
    return tuple(STAGES)


def get_spec(name: str) -> StageSpec:
    try:
        return STAGES[name]
    except KeyError:
        raise ConfigError("stage.name", f"got {name!r}; allowed: {', '.join(STAGES)}") from None


@dataclass
class StageConfig:
    """Which stage runs, and the trainer hyperparameters (TRL GRPOConfig / SFTConfig names). The policy loss of
    the RL stages (loss_type, epsilon, beta, scale_rewards, ...) is the `objective` group (rova/config/objective.py)."""

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
    gradient_checkpointing: bool = False
    save_steps: int = 2
    save_total_limit: Optional[int] = 2
    logging_steps: int = 1
    seed: int = 42
    dataloader_num_workers: int = 0

    def __post_init__(self) -> None:
        _choice("stage.name", self.name, stage_names())
        _positive("stage.max_steps", self.max_steps)
        _positive("stage.learning_rate", self.learning_rate)
        _choice("stage.lr_scheduler_type", self.lr_scheduler_type, LR_SCHEDULERS)
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
        _positive("stage.save_steps", self.save_steps)
        if self.save_total_limit is not None:
            _positive("stage.save_total_limit", self.save_total_limit)
        _positive("stage.logging_steps", self.logging_steps)
        _positive("stage.dataloader_num_workers", self.dataloader_num_workers, allow_zero=True)
        _seed("stage.seed", self.seed)

    @property
    def generation_steps(self) -> int:
        return self.steps_per_generation or self.gradient_accumulation_steps
