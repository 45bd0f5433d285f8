"""The `recipe.*` settings: a recipe is an ordered set of named steps, each one stage run with its own overrides.

A config with `recipe.steps` is a recipe: `launch.py` plans every step (compose + validate), creates one
parent run dir with a run dir per step, and runs the steps in order (locally) or as SLURM jobs chained by
`afterok` dependencies. A step links to an earlier one by `model_from` (it loads that step's `model/`) or
`data_from` (it trains on that cot step's `cot.json`). The planning and running live in rova/recipe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from rova.config.stage import get_spec
from rova.errors import ConfigError

STEP_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class RecipeStepConfig:
    """One step: which stage, its own overrides, and which earlier steps it reads from."""

    stage: str = "???"                  # a registered stage (grpo, tgrpo, memory, cot, sft, eval)
    overrides: list[str] = field(default_factory=list)  # Hydra overrides for this step only, e.g. [stage.max_steps=20]
    model_from: Optional[str] = None    # an earlier sft/RL step: model.path = <its run dir>/model
    data_from: Optional[str] = None     # an earlier cot step: data.train_file = <its run dir>/cot.json


@dataclass
class RecipeConfig:
    """Empty `steps`: an ordinary single-stage run. Otherwise the steps run in the order written."""

    name: Optional[str] = None          # names the parent run dir: <run.output_root>/<name>/<date>/<time>
    steps: dict[str, RecipeStepConfig] = field(default_factory=dict)
    compare: list[str] = field(default_factory=list)  # eval steps of the final report; the first is the baseline

    def __post_init__(self) -> None:
        if not self.steps:
            if self.compare:
                raise ConfigError("recipe.compare", "names eval steps, but recipe.steps is empty")
            return
        if self.name is not None and not STEP_NAME.match(self.name):
            raise ConfigError("recipe.name", f"got {self.name!r}; lower-case letters, digits and '_' (it names a folder)")
        specs: dict[str, Any] = {}  # the steps before this one: their stages' declared contracts
        for name, step in self.steps.items():
            key = f"recipe.steps.{name}"
            if not STEP_NAME.match(name):
                raise ConfigError(key, "step names are lower-case letters, digits and '_' (each names a run dir)")
            if step.stage == "recipe":
                raise ConfigError(f"{key}.stage", "a step is one stage, not a recipe")
            try:
                spec = get_spec(step.stage)
            except ConfigError as exc:
                raise ConfigError(f"{key}.stage", exc.problem) from None
            for link, handed, what in (("model_from", "model.path", "a step that hands model.path (writes model/)"),
                                       ("data_from", "data.train_file", "a step that hands data.train_file (e.g. cot)")):
                source = getattr(step, link)
                if source is None:
                    continue
                if source not in specs:
                    later = source in self.steps
                    raise ConfigError(f"{key}.{link}", f"{source!r} is {'a later' if later else 'not a'} step; "
                                      f"a step reads from the steps before it: {', '.join(specs) or '(none)'}")
                if handed not in specs[source].hands:
                    raise ConfigError(f"{key}.{link}", f"{source!r} is a {self.steps[source].stage} step; needs {what}")
            if step.data_from is not None and "data.train_file" not in spec.reads:
                raise ConfigError(f"{key}.data_from", f"a {step.stage} step does not read data.train_file")
            for override in step.overrides:
                target = override.lstrip("+~").partition("=")[0]
                if target in ("stage", "run.dir", "experiment") or target.startswith("recipe"):
                    raise ConfigError(f"{key}.overrides", f"{override!r}: the recipe sets {target} itself")
            specs[name] = spec
        for name in self.compare:
            if name not in self.steps:
                raise ConfigError("recipe.compare", f"{name!r} is not a step; steps: {', '.join(self.steps)}")
            if "eval.reference" not in specs[name].hands:
                raise ConfigError("recipe.compare", f"{name!r} is a {self.steps[name].stage} step, not an eval step")
        if len(set(self.compare)) != len(self.compare):
            raise ConfigError("recipe.compare", f"duplicate entry in {self.compare}")
