"""The stage registry: every `stage=` option and its contract, declared once.

Light on purpose (no torch, no transformers): the config checks `stage.name` against it and the launcher,
the recipe and the SLURM code know stages only through these declarations; none of them branches on which
stage it is. Adding a stage is one module with `run(cfg, run_dir)` and `outcome(run_dir)`, one entry here,
and its `conf/stage/<name>.yaml`. Behaviour inside a stage is switched by config (`tgrpo.branches`,
`memory.enabled`), never by comparing stage names.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional


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

    @property
    def entry(self) -> str:
        return f"{self.module}:run"

    def load(self) -> Callable:
        """run(cfg, run_dir)."""
        return _load(self.entry)

    def outcome(self, run_dir: Path) -> str:
        """A few words on what a finished run produced (the recipe report's line), from its files."""
        if not (Path(run_dir) / self.done).exists():
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

STAGES: dict[str, StageSpec] = {
    spec.name: spec
    for spec in (
        StageSpec("grpo", "rova.stages.rl", "GRPO on video (clean branch only)", _RL_READS, _MODEL, _RL_WRITES,
                  "summary.json", policy_groups=True),
        StageSpec(
            "tgrpo", "rova.stages.rl", "T-GRPO + ROVA branches: clean, shuffled (temporal), corrupted (KL)",
            _RL_READS, _MODEL, _RL_WRITES, "summary.json", policy_groups=True,
        ),
        StageSpec(
            "memory", "rova.stages.rl", "T-GRPO with the difficulty-aware memory (memory.enabled=true)",
            _RL_READS, _MODEL, _RL_WRITES + ("memory.json",), "summary.json", policy_groups=True,
        ),
        StageSpec(
            "cot", "rova.stages.cot",
            "a teacher (model.*) writes <think> rationales for data.train_file; the best scoring sample is kept",
            ("model.path", "data.train_file"), {"data.train_file": "cot.json"},
            ("resolved.yaml", "cot_predictions.jsonl", "cot.json", "cot_report.json", "train.log"), "cot_report.json",
            shard_key="cot.shards",
        ),
        StageSpec(
            "sft", "rova.stages.sft",
            "video SFT on a Video-R1-COT file, loss on the assistant completion only",
            ("model.path", "data.train_file"), _MODEL,
            ("resolved.yaml", "metrics.jsonl", "train.log", "checkpoints/", "model/", "summary.json"), "summary.json",
        ),
        StageSpec(
            "eval", "rova.stages.eval",
            "benchmark accuracy, clean and under every eval.corruptions x eval.severities cell",
            ("model.path", "benchmark.file", "eval.reference"), {"eval.reference": "results.json"},
            ("resolved.yaml", "predictions.jsonl", "results.json", "report.md", "heatmap.png", "families.png",
             "train.log"), "results.json", shard_key="eval.shards",
        ),
    )
}


def stage_names() -> tuple[str, ...]:
    return tuple(STAGES)


def get_spec(name: str) -> StageSpec:
    try:
        return STAGES[name]
    except KeyError:
        from rova.errors import ConfigError

        raise ConfigError("stage.name", f"got {name!r}; allowed: {', '.join(STAGES)}") from None
