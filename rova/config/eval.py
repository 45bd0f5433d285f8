"""The `eval.*` settings: what stage=eval measures (the clean benchmark, and the robustness grid
corruptions x severities) and how it decodes. The benchmark itself is `benchmark.*` (rova/config/benchmark.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from rova.config.checks import _seed
from rova.config.corruption import FAMILIES, VARIANTS, VARIANTS_BY_FAMILY
from rova.errors import ConfigError

DECODING_PRESETS = {
    # Greedy: what lmms-eval / VLMEvalKit use, and deterministic across runs and shards.
    "greedy": {"do_sample": False},
    # Video-R1's eval_bench.py settings (vLLM): temperature 0.1, top_p 0.001.
    "video_r1": {"do_sample": True, "temperature": 0.1, "top_p": 0.001},
}


@dataclass
class EvalConfig:
    """What stage=eval measures: the clean benchmark, and the robustness grid corruptions x severities."""

    corruptions: list[str] = field(default_factory=list)   # families or variants; [] = clean only
    severities: list[int] = field(default_factory=lambda: [1, 3, 5])
    seed: int = 0                      # corrupted clip of (item, corruption, severity) = f(seed, those three)
    decoding: str = "greedy"           # greedy | video_r1
    max_new_tokens: int = 256
    batch_size: int = 4                # prompts per HF generate call (left padding)
    fallback_whole_output: bool = False  # score the whole output when <answer> is missing (off: counted as failure)
    reference: Optional[str] = None    # a reference model's results.json: adds CE, mCE, relative mCE
    shards: int = 1                    # cluster=slurm: K array tasks share the items (each may run N processes)

    def __post_init__(self) -> None:
        for name in self.corruptions:
            if name not in FAMILIES and name not in VARIANTS:
                raise ConfigError(
                    "eval.corruptions", f"unknown corruption {name!r}; families: {', '.join(FAMILIES)}; "
                    f"variants: {', '.join(VARIANTS)}"
                )
        if len(set(self.corruptions)) != len(self.corruptions):
            raise ConfigError("eval.corruptions", f"duplicate entry in {self.corruptions}")
        for severity in self.severities:
            if not (isinstance(severity, int) and 1 <= severity <= 5):
                raise ConfigError("eval.severities", f"got {severity!r}; severities are integers 1-5")
        if self.corruptions and not self.severities:
            raise ConfigError("eval.severities", "a robustness grid needs at least one severity")
        _seed("eval.seed", self.seed)
        if self.decoding not in DECODING_PRESETS:
            raise ConfigError("eval.decoding", f"got {self.decoding!r}; allowed: {', '.join(DECODING_PRESETS)}")
        if self.max_new_tokens < 1:
            raise ConfigError("eval.max_new_tokens", f"got {self.max_new_tokens}; must be >= 1")
        if self.batch_size < 1:
            raise ConfigError("eval.batch_size", f"got {self.batch_size}; must be >= 1")
        if self.shards < 1:
            raise ConfigError("eval.shards", f"got {self.shards}; must be >= 1")

    def grid_variants(self) -> list[str]:
        """The corruption variants of the grid, families expanded in catalogue order, each once."""
        out: list[str] = []
        for name in self.corruptions:
            for variant in VARIANTS_BY_FAMILY.get(name, (name,)):
                if variant not in out:
                    out.append(variant)
        return out
