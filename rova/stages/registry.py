"""The stage registry: every `stage=` option, what it reads, what it writes, and where its code lives.

Light on purpose (no torch, no transformers): the schema checks `stage.name` against it and `launch.py`
knows stages only through it. Adding a stage is one module with a `run(cfg, run_dir)` function and one
entry here; behaviour inside a stage is switched by config (`tgrpo.branches`, `memory.enabled`), never by
comparing stage names.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class StageSpec:
    """One stage: its entry point and its contract with the run dir."""

    name: str
    entry: str                 # "package.module:function", imported only when the stage runs
    summary: str
    kind: str                  # "rl": GRPO-family (prompt groups of stage.num_generations); "sft"; "annotate"; "eval"
    reads: tuple[str, ...]     # config keys naming the inputs it needs
    writes: tuple[str, ...]    # files and folders it leaves in its run dir
    done: str                  # the file whose presence in its run dir means the run finished (written last)

    def load(self) -> Callable:
        module_name, _, func = self.entry.partition(":")
        return getattr(importlib.import_module(module_name), func)


_RL_READS = ("model.path", "data.train_file")
_RL_WRITES = (
    "resolved.yaml", "data_report.json", "metrics.jsonl", "rollouts.jsonl", "train.log", "checkpoints/",
    "model/", "summary.json",
)

STAGES: dict[str, StageSpec] = {
    spec.name: spec
    for spec in (
        StageSpec("grpo", "rova.stages.rl:run", "GRPO on video (clean branch only)", "rl", _RL_READS, _RL_WRITES, "summary.json"),
        StageSpec(
            "tgrpo", "rova.stages.rl:run", "T-GRPO + ROVA branches: clean, shuffled (temporal), corrupted (KL)",
            "rl", _RL_READS, _RL_WRITES, "summary.json",
        ),
        StageSpec(
            "memory", "rova.stages.rl:run", "T-GRPO with the difficulty-aware memory (memory.enabled=true)",
            "rl", _RL_READS, _RL_WRITES + ("memory.json",), "summary.json",
        ),
        StageSpec(
            "cot", "rova.stages.cot:run",
            "a teacher (model.*) writes <think> rationales for data.train_file; the best scoring sample is kept",
            "annotate", ("model.path", "data.train_file"),
            ("resolved.yaml", "cot_predictions.jsonl", "cot.json", "cot_report.json", "train.log"), "cot_report.json",
        ),
        StageSpec(
            "sft", "rova.stages.sft:run",
            "video SFT on a Video-R1-COT file, loss on the assistant completion only",
            "sft", ("model.path", "data.train_file"),
            ("resolved.yaml", "metrics.jsonl", "train.log", "checkpoints/", "model/", "summary.json"), "summary.json",
        ),
        StageSpec(
            "eval", "rova.stages.eval:run",
            "benchmark accuracy, clean and under every eval.corruptions x eval.severities cell",
            "eval", ("model.path", "benchmark.file", "eval.reference"),
            ("resolved.yaml", "predictions.jsonl", "results.json", "report.md", "heatmap.png", "families.png",
             "train.log"), "results.json",
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
