"""The `recipe.*` settings: a recipe is an ordered set of named steps, each one stage run with its own overrides.

A config with `recipe.steps` is a recipe: `launch.py` plans every step (compose + validate), creates one
parent run dir with a run dir per step, and runs the steps in order (locally) or as SLURM jobs chained by
`afterok` dependencies. A step links to an earlier one by `model_from` (it loads that step's `model/`) or
`data_from` (it trains on the data file that step hands: a cot step's `cot.json`, a select step's
`select.json`). The planning and running live in rova/recipe.

Seeds: with `recipe.seeds` (e.g. [0, 1, 2]) every `per_seed: true` step X runs once per seed, as steps
`X_s<seed>` (run dirs `<parent>/X_s<seed>`), listed where X is written, seed after seed. A copy sets its
stage's seed key (`StageSpec.seed_key`: `stage.seed` for the training and cot stages) to its seed after the
step's own overrides; an eval copy keeps `eval.seed` (the same corrupted clips for every arm and seed). A
copy's link to a per_seed step reads that step's same-seed copy; a link to a step that is not per_seed reads
that one step (the shared SFT). `expand_steps` is the one place that rule is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from rova.config.stage import get_spec
from rova.errors import ConfigError

STEP_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
LINK_FIELDS = ("model_from", "data_from")


@dataclass
class RecipeStepConfig:
    """One step: which stage, its own overrides, and which earlier steps it reads from."""

    stage: str = "???"                  # a registered stage (grpo, tgrpo, memory, cot, select, sft, eval)
    overrides: list[str] = field(default_factory=list)  # Hydra overrides for this step only, e.g. [stage.max_steps=20]
    model_from: Optional[str] = None    # an earlier sft/RL step: model.path = <its run dir>/model
    data_from: Optional[str] = None     # an earlier cot / select step: data.train_file = its cot.json / select.json
    per_seed: bool = False              # run once per recipe.seeds entry, as <step>_s<seed> (needs recipe.seeds)


@dataclass
class RecipeConfig:
    """Empty `steps`: an ordinary single-stage run. Otherwise the steps run in the order written."""

    name: Optional[str] = None          # names the parent run dir: <run.output_root>/<name>/<date>/<time>
    steps: dict[str, RecipeStepConfig] = field(default_factory=dict)
    compare: list[str] = field(default_factory=list)  # eval steps of the final report; the first is the baseline
    seeds: list[int] = field(default_factory=list)    # training seeds of the per_seed steps; report: mean ± std
    differences: list[list[str]] = field(default_factory=list)  # [[A, B], ...] compare entries: A - B per seed

    def __post_init__(self) -> None:
        if not self.steps:
            for key, value in (("recipe.compare", self.compare), ("recipe.seeds", self.seeds),
                               ("recipe.differences", self.differences)):
                if value:
                    raise ConfigError(key, "is set, but recipe.steps is empty (this is not a recipe)")
            return
        if self.name is not None and not STEP_NAME.match(self.name):
            raise ConfigError("recipe.name", f"got {self.name!r}; lower-case letters, digits and '_' (it names a folder)")
        _check_seeds(self)
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
                                       ("data_from", "data.train_file", "a step that hands data.train_file (cot, select)")):
                source = getattr(step, link)
                if source is None:
                    continue
                if source not in specs:
                    later = source in self.steps
                    raise ConfigError(f"{key}.{link}", f"{source!r} is {'a later' if later else 'not a'} step; "
                                      f"a step reads from the steps before it: {', '.join(specs) or '(none)'}")
                if handed not in specs[source].hands:
                    raise ConfigError(f"{key}.{link}", f"{source!r} is a {self.steps[source].stage} step; needs {what}")
                if self.steps[source].per_seed and not step.per_seed:
                    raise ConfigError(f"{key}.{link}", f"{source!r} is per_seed (one run per seed) but {name!r} is not: "
                                      f"which seed's would it read? Make {name!r} per_seed too")
            if step.data_from is not None and "data.train_file" not in spec.reads:
                raise ConfigError(f"{key}.data_from", f"a {step.stage} step does not read data.train_file")
            for override in step.overrides:
                target = override.lstrip("+~").partition("=")[0]
                if target in ("stage", "run.dir", "experiment") or target.startswith("recipe"):
                    raise ConfigError(f"{key}.overrides", f"{override!r}: the recipe sets {target} itself")
                if step.per_seed and target == spec.seed_key:
                    raise ConfigError(f"{key}.overrides", f"{override!r}: each copy of a per_seed step takes its "
                                      f"{target} from recipe.seeds")
            specs[name] = spec
        for name in self.compare:
            if name not in self.steps:
                raise ConfigError("recipe.compare", f"{name!r} is not a step; steps: {', '.join(self.steps)}")
            if "eval.reference" not in specs[name].hands:
                raise ConfigError("recipe.compare", f"{name!r} is a {self.steps[name].stage} step, not an eval step")
        if len(set(self.compare)) != len(self.compare):
            raise ConfigError("recipe.compare", f"duplicate entry in {self.compare}")
        _check_differences(self)


def _check_seeds(recipe: RecipeConfig) -> None:
    """Unique non-negative ints; per_seed steps need seeds, seeds need per_seed steps; no copy takes a step's name."""
    for seed in recipe.seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError("recipe.seeds", f"got {seed!r} in {list(recipe.seeds)}; seeds are non-negative integers")
    if len(set(recipe.seeds)) != len(recipe.seeds):
        raise ConfigError("recipe.seeds", f"duplicate seed in {list(recipe.seeds)}")
    per_seed = [name for name, step in recipe.steps.items() if step.per_seed]
    if per_seed and not recipe.seeds:
        raise ConfigError(f"recipe.steps.{per_seed[0]}.per_seed", "is true, but recipe.seeds is empty: list the "
                          "seeds to run it with (recipe.seeds=[42] for one run), or drop per_seed")
    if recipe.seeds and not per_seed:
        raise ConfigError("recipe.seeds", f"got {list(recipe.seeds)}, but no step is per_seed: mark the steps to "
                          "repeat with per_seed: true, or drop recipe.seeds")
    for name in per_seed:
        for seed in recipe.seeds:
            if copy_name(name, seed) in recipe.steps:
                raise ConfigError(f"recipe.steps.{copy_name(name, seed)}", f"is also the name of per_seed step "
                                  f"{name!r}'s copy for seed {seed}; rename the step")


def _check_differences(recipe: RecipeConfig) -> None:
    seen = set()
    for pair in recipe.differences:
        pair = list(pair)
        if len(pair) != 2 or pair[0] == pair[1]:
            raise ConfigError("recipe.differences", f"got {pair}; each entry is a pair of two different eval steps [A, B] "
                              "(reported: A - B)")
        missing = [name for name in pair if name not in recipe.compare]
        if missing:
            raise ConfigError("recipe.differences", f"{missing[0]!r} in {pair} is not in recipe.compare "
                              f"({', '.join(recipe.compare) or 'empty'}); a difference pairs two compared eval steps")
        if tuple(pair) in seen:
            raise ConfigError("recipe.differences", f"duplicate pair {pair}")
        seen.add(tuple(pair))


def copy_name(step: str, seed: int) -> str:
    """The name (and run dir) of a per_seed step's copy for one seed: grpo, 1 -> grpo_s1."""
    return f"{step}_s{seed}"


@dataclass(frozen=True)
class ExpandedStep:
    """One run of a recipe: a step as written, or one seed's copy of a per_seed step."""

    name: str                     # its run dir's name: the step's, or <step>_s<seed>
    base: str                     # the step in recipe.steps it comes from
    seed: Optional[int]           # the copy's seed; None for a step that runs once
    stage: str
    overrides: tuple[str, ...]    # the step's overrides, then <seed_key>=<seed> for a copy whose stage has one
    model_from: Optional[str]     # the run it reads, by expanded name (the same-seed copy of a per_seed step)
    data_from: Optional[str]


def expand_steps(recipe: RecipeConfig) -> list[ExpandedStep]:
    """The runs of a (validated) recipe in order: a per_seed step becomes one copy per seed, in place."""
    runs: list[ExpandedStep] = []
    for name, step in recipe.steps.items():
        seeds: list[Optional[int]] = list(recipe.seeds) if step.per_seed else [None]
        seed_key = get_spec(step.stage).seed_key
        for seed in seeds:
            links = {}
            for link in LINK_FIELDS:
                source = getattr(step, link)
                if source is not None and recipe.steps[source].per_seed:
                    source = copy_name(source, seed)
                links[link] = source
            overrides = tuple(step.overrides)
            if seed is not None and seed_key is not None:
                overrides += (f"{seed_key}={seed}",)
            runs.append(ExpandedStep(name if seed is None else copy_name(name, seed), name, seed, step.stage,
                                     overrides, **links))
    return runs
