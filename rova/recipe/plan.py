"""Plan a recipe: compose and validate every step before anything runs, and find the steps already finished.

Each step's overrides, last one winning per key:
  1. the command line's overrides (they apply to every step), 2. `stage=<step.stage>`,
  3. the step's `recipe.steps.<step>.overrides`, and for a per-seed copy `stage.seed=<seed>` (its stage's
     seed key; rova.config.recipe.expand_steps), 4. the command line's `<step>:key=value` overrides, then for a
     copy `<step>_s<seed>:key=value` (that copy only),
  5. the links: `run.dir=<parent>/<step>`, `model.path` / `data.train_file` from `model_from` / `data_from`,
     and `logger.group=<recipe>-<parent dir name>` (one wandb group per recipe run) unless logger.group is set.
A command-line override that a step's own overrides replace is reported (a note, not an error): set it for
that step with `<step>:key=value`. A copy's seed comes from recipe.seeds only: `<step>:stage.seed=...` is refused.

A step is finished when its run dir holds its stage's `done` file (summary.json, results.json, ...). On a
relaunch (`run.dir=<parent>`) finished steps are skipped; a step dir that exists must have been planned with
the same settings, by the check every run dir passes (rova.config.fingerprint: which keys shape a stage's
results), otherwise the relaunch is refused naming `<step>:<key>`, so a parent dir never mixes settings. With
`run.extend=true` a training step's stage.max_steps may grow: that step is no longer finished (it trains on), and
a finished step reading from it is then refused as stale.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from rova.config.schema import RootConfig
from rova.errors import ConfigError
from rova.launch.sweeps import STEP_OVERRIDE

RECIPE_JSON = "recipe.json"
# A recipe link sets a key of the later step to a file an earlier step hands it (its stage's `hands`), and
# these keys with it: what the handed file replaces (the tiny model's build, the demo data's build and root).
LINKS = {"model_from": "model.path", "data_from": "data.train_file"}
LINKED_WITH = {"model.path": ("model.build_tiny=false",),
               "data.train_file": ("data.build_demo=false", "data.media_root=null")}


@dataclass
class PlannedStep:
    name: str
    stage: str
    run_dir: Path
    overrides: list[str]
    cfg: RootConfig
    after: list[str]            # steps this one reads from (its SLURM afterok dependencies)
    done: bool                  # finished in an earlier launch: skipped
    base: Optional[str] = None  # the step in recipe.steps it comes from (None: its own name)
    seed: Optional[int] = None  # a per_seed step's copy: its seed
    extended: dict = field(default_factory=dict)  # what run.extend grows in its existing run dir: {key: [old, new]}

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "stage": self.stage, "run_dir": str(self.run_dir), "after": self.after,
                "overrides": self.overrides, "base": self.base or self.name, "seed": self.seed}


@dataclass
class RecipePlan:
    name: str
    parent: Path
    steps: list[PlannedStep]
    compare: list[str]          # eval steps as written (a per_seed one stands for its copies)
    notes: list[str] = field(default_factory=list)
    rerun_unreadable: list[str] = field(default_factory=list)  # steps whose done file was there but did not parse
    seeds: list[int] = field(default_factory=list)
    differences: list[list[str]] = field(default_factory=list)

    def step(self, name: str) -> PlannedStep:
        return next(s for s in self.steps if s.name == name)

    @property
    def pending(self) -> list[PlannedStep]:
        return [s for s in self.steps if not s.done]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "parent": str(self.parent), "steps": [s.to_json() for s in self.steps],
                "compare": self.compare, "seeds": self.seeds, "differences": self.differences}


def override_key(override: str) -> str:
    """The key an override sets: `model=x` -> model, `+a.b=1` -> a.b, `~a` -> a."""
    return override.lstrip("+~").partition("=")[0].strip()


def merge_overrides(*lists: list[str]) -> list[str]:
    """The lists in order, a later override of the same key replacing the earlier one (in its later place)."""
    merged: dict[str, str] = {}
    for overrides in lists:
        for override in overrides:
            key = override_key(override)
            merged.pop(key, None)
            merged[key] = override
    return list(merged.values())


def split_step_overrides(overrides: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """(overrides for every step, {step: its `step:key=value` overrides without the prefix})."""
    common: list[str] = []
    per_step: dict[str, list[str]] = {}
    for override in overrides:
        match = STEP_OVERRIDE.match(override)
        if match and "=" not in match.group(1):
            per_step.setdefault(match.group(1), []).append(match.group(2))
        else:
            common.append(override)
    return common, per_step


def check_step_overrides_without_recipe(overrides: list[str]) -> None:
    """A `step:key=value` override on a single-stage run is a mistake: say so instead of a Hydra parse error."""
    _, per_step = split_step_overrides(overrides)
    if per_step:
        step = next(iter(per_step))
        raise ConfigError(f"{step}:{override_key(per_step[step][0])}",
                          "a STEP:key=value override sets one step of a recipe, but this run is not a recipe "
                          "(pick one with experiment=..., e.g. experiment=demo_recipe)")


def new_parent_dir(root: RootConfig, now: dt.datetime) -> Path:
    from rova.launch.rundir import new_run_dir

    return new_run_dir(Path(root.run.output_root), root.recipe.name or "recipe", now, root.run.tag)


def plan_recipe(overrides: list[str], root: RootConfig, parent: Path, cwd: Path) -> RecipePlan:
    """Every step (every seed's copy of a per_seed step) composed, validated and linked; finished steps marked
    done. Raises ConfigError, naming `<step>:<key>`, for the first step that does not validate."""
    from rova.config.compose import compose, validate_typed
    from rova.config.paths import absolutize
    from rova.config.recipe import expand_steps
    from rova.config.stage import get_spec

    runs = expand_steps(root.recipe)
    common, per_step = split_step_overrides(overrides)
    for override in common:
        if override_key(override) in ("stage", "stage.name"):
            raise ConfigError("stage", "a recipe sets each step's stage; change a step with STEP:key=value "
                              f"(steps: {', '.join(root.recipe.steps)})")
    names = list(dict.fromkeys([*root.recipe.steps, *(run.name for run in runs)]))
    unknown = [s for s in per_step if s not in names]
    if unknown:
        raise ConfigError(f"{unknown[0]}:{override_key(per_step[unknown[0]][0])}",
                          f"no step {unknown[0]!r} in this recipe; steps: {', '.join(names)}")
    common = [o for o in common if override_key(o) != "run.dir"]  # run.dir names the parent; each step gets its own

    plan = RecipePlan(root.recipe.name or "recipe", parent, [], list(root.recipe.compare),
                      seeds=list(root.recipe.seeds), differences=[list(pair) for pair in root.recipe.differences])
    for run in runs:
        name = run.name
        run_dir = parent / name
        links = [f"run.dir={run_dir}"]
        after = []
        for link, key in LINKS.items():
            source = getattr(run, link)
            if source:
                handed = get_spec(plan.step(source).stage).hands[key]
                links += [f"{key}={plan.step(source).run_dir / handed}", *LINKED_WITH[key]]
                after.append(source)
        # The command line's STEP:key=value for the step as written, then (a per-seed copy) for this copy only.
        prefixes = [run.base] + ([name] if name != run.base else [])
        cli_own = [(prefix, o) for prefix in prefixes for o in per_step.get(prefix, [])]
        seed_key = get_spec(run.stage).seed_key if run.seed is not None else None
        for prefix, override in cli_own:
            if seed_key is not None and override_key(override) == seed_key:
                raise ConfigError(f"{prefix}:{seed_key}", f"each copy of per_seed step {run.base} takes its {seed_key} "
                                  f"from recipe.seeds ({', '.join(map(str, plan.seeds))}); change recipe.seeds")
        own = merge_overrides(list(run.overrides), [o for _, o in cli_own])
        if root.logger.group is None and not any(override_key(o) == "logger.group" for o in own):
            links.append(f"logger.group={plan.name}-{parent.name}")  # the steps' wandb runs, side by side
        linked = {override_key(o) for o in links} - {"logger.group"}
        clash = [o for o in own if override_key(o) in linked]
        if clash:
            raise ConfigError(f"{name}:{override_key(clash[0])}", "set by the recipe's links (model_from / data_from / "
                              "the step's run dir); drop the override or the link")
        cli_keys = {override_key(o) for _, o in cli_own}
        for override in common:
            key = override_key(override)
            theirs = next((o for o in run.overrides if override_key(o) == key), None)
            if theirs is None or key in cli_keys:
                continue
            if key == seed_key:
                note = (f"the copies of step {run.base} take {key} from recipe.seeds, not from the command line's "
                        f"{override}")
            else:
                note = (f"step {run.base} keeps its own {theirs} over the command line's {override}; "
                        f"use {run.base}:{override} to change it")
            if note not in plan.notes:
                plan.notes.append(note)
        step_overrides = merge_overrides(common, [f"stage={run.stage}"], own, links)
        try:
            composed = compose(step_overrides)
            # The step is one stage: it does not carry the recipe's steps into its own config.
            composed.recipe.steps = {}
            composed.recipe.compare = []
            composed.recipe.seeds = []
            composed.recipe.differences = []
            cfg = validate_typed(composed)
        except ConfigError as exc:
            raise ConfigError(f"{name}:{exc.key}", exc.problem) from None
        cfg = absolutize(cfg, cwd)
        spec = get_spec(run.stage)
        extended = check_same_settings(name, run_dir, cfg)
        if spec.done_unreadable(run_dir):
            plan.rerun_unreadable.append(name)
            plan.notes.append(f"step {name}: its {spec.done} does not parse (a torn or emptied file); it runs again")
        done = spec.finished(run_dir) and not extended
        plan.steps.append(PlannedStep(name, run.stage, run_dir, step_overrides, cfg, after, done, run.base, run.seed,
                                      extended))
    for step in plan.steps:  # a step re-runs when a step it reads from re-runs
        if step.done and any(not plan.step(a).done for a in step.after):
            raise ConfigError(
                f"{step.name}", f"finished in {step.run_dir}, but {', '.join(a for a in step.after if not plan.step(a).done)} "
                "it reads from is not: its outputs would be stale; use a new run dir")
    return plan


def check_same_settings(name: str, run_dir: Path, cfg: RootConfig) -> dict:
    """Refuse a relaunch whose settings for an existing step dir differ from the ones it was made with (the one
    check of every run dir, rova.launch.rundir.check_run_dir); returns what run.extend grows. run.extend applies
    to the steps that can grow (the training stages) and leaves the others as they are."""
    from rova.launch.rundir import check_run_dir

    return check_run_dir(run_dir, cfg, key_prefix=f"{name}:", extend=step_extends(cfg))


def step_extends(cfg: RootConfig) -> bool:
    """Whether run.extend applies to this step: set, and its stage has something to extend."""
    from rova.config.stage import get_spec

    return cfg.run.extend and get_spec(cfg.stage.name).extend_key is not None
