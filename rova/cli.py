"""`python launch.py [-m] [--cfg job] [--dry-run] key=value ...`: compose, validate, create run dirs, dispatch.

Kept free of torch/transformers imports so `--help` and config errors are instant.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
from contextlib import ExitStack
from pathlib import Path

from omegaconf import OmegaConf

from rova.errors import ConfigError, RovaError, exit_status

EXAMPLES = """\
examples:
  python launch.py                                        # CPU demo: GRPO, tiny Qwen2.5-VL, demo videos
  python launch.py stage=tgrpo corruption=weather reward.kl_alpha=2
  python launch.py -m corruption.p_weather=0.1,0.25,0.5   # one run per value
  python launch.py -m cluster=slurm +sweep=kl_alpha        # one SLURM job array
  python launch.py experiment=rova_7b data.train_file=/data/Video-R1-260k.json
  python launch.py --cfg job stage=memory                 # print the composed config and exit
"""


def _parser() -> argparse.ArgumentParser:
    from rova.config.compose import conf_dir
    from rova.launch.sweeps import available_sweeps

    groups = []
    for group in sorted(p for p in conf_dir().iterdir() if p.is_dir()):
        options = ", ".join(sorted(f.stem for f in group.glob("*.yaml")))
        groups.append(f"  {group.name:<12} {options}")
    epilog = "config groups (group=option):\n" + "\n".join(groups)
    epilog += f"\n\nsweeps (+sweep=NAME, with -m): {', '.join(available_sweeps())}\n\n" + EXAMPLES
    parser = argparse.ArgumentParser(
        prog="launch.py",
        description="Run a stage of the ROVA recipe, locally, on several processes, or on SLURM.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides: group=option, group.key=value, +sweep=NAME")
    parser.add_argument("-m", "--multirun", action="store_true", help="expand comma-separated values into one run each")
    parser.add_argument("--cfg", choices=["job", "resolved"], help="print the composed (job) or validated (resolved) config and exit")
    parser.add_argument("--dry-run", action="store_true", help="validate and print what would run; write nothing")
    return parser


def plan_jobs(overrides: list[str], multirun: bool) -> list[list[str]]:
    from rova.launch.sweeps import expand, extract_sweep_files

    overrides = extract_sweep_files(overrides)
    if not multirun:
        swept = [o for o in overrides if "," in o.partition("=")[2] and not o.partition("=")[2].startswith("[")]
        if swept:
            raise ConfigError(swept[0].partition("=")[0], "comma-separated values sweep only with -m (multirun)")
        return [overrides]
    return expand(overrides)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    try:
        return _run(args)
    except RovaError as exc:
        return exit_status(exc)


def _run(args: argparse.Namespace) -> int:
    from rova.config.compose import compose, validate_typed
    from rova.config.paths import absolutize

    from rova.recipe.plan import check_step_overrides_without_recipe, split_step_overrides

    jobs = plan_jobs(list(args.overrides), args.multirun)
    if args.cfg == "job":
        for job in jobs:
            print(OmegaConf.to_yaml(compose(split_step_overrides(job)[0])))
        return 0

    # Validate every job before anything is created, spawned or submitted.
    cwd = Path.cwd()
    typed_jobs = []
    for job in jobs:
        typed = validate_typed(compose(split_step_overrides(job)[0]))
        typed_jobs.append(absolutize(typed, cwd))
    if len({t.cluster.name for t in typed_jobs}) > 1:
        raise ConfigError("cluster", "a sweep cannot mix cluster=local and cluster=slurm")
    if any(t.recipe.steps for t in typed_jobs):
        return _run_recipes(args, jobs, typed_jobs, cwd)
    for job in jobs:
        check_step_overrides_without_recipe(job)

    if args.cfg == "resolved" or args.dry_run:
        from rova.launch.rundir import check_run_dir

        for job, typed in zip(jobs, typed_jobs):
            if args.dry_run:
                if typed.run.dir:  # what the launch would refuse (no lock: a dry run writes nothing)
                    check_run_dir(Path(typed.run.dir), typed)
                print(f"# would run: {' '.join(job) or '(defaults)'}")
            print(OmegaConf.to_yaml(OmegaConf.structured(typed)))
        return 0

    from rova.launch.dispatch import dispatch, prepare_run_dirs
    from rova.launch.rundir import run_dir_error

    # The launch holds its run dirs (lock) until it ends; a run dir it made that holds nothing but the launch's
    # own files then (the stage failed before writing anything) is removed (rova.launch.rundir).
    asked = copy.copy(typed_jobs[0].run)  # prepare_run_dirs sets run.dir
    with ExitStack() as claims:
        try:
            run_dirs = prepare_run_dirs(jobs, typed_jobs, now=dt.datetime.now(), multirun=args.multirun, claims=claims)
        except OSError as exc:  # an unwritable or full output root, a run.tag too long for a file name
            raise run_dir_error(exc, asked) from exc
        return dispatch(typed_jobs, run_dirs, release=claims.close)


def _run_recipes(args: argparse.Namespace, jobs: list[list[str]], typed_jobs: list, cwd: Path) -> int:
    """Plan every recipe (every step of every sweep point composed and validated) before anything is written."""
    from rova.launch.rundir import check_run_dir, claim_run_dir, new_run_dir, run_dir_error
    from rova.recipe.plan import new_parent_dir, plan_recipe, step_extends
    from rova.recipe.run import describe, launch_recipe

    if not all(t.recipe.steps for t in typed_jobs):
        raise ConfigError("recipe", "a sweep cannot mix recipes and single-stage runs")
    now = dt.datetime.now()
    plans, sweep_base = [], None
    for index, typed in enumerate(typed_jobs):
        try:
            if typed.run.dir:
                parent = Path(typed.run.dir)
            elif len(typed_jobs) > 1:
                sweep_base = sweep_base or new_run_dir(Path(typed.run.output_root), "multirun", now, typed.run.tag)
                parent = sweep_base / f"{index}_{typed.recipe.name or 'recipe'}"
            else:
                parent = new_parent_dir(typed, now)
        except OSError as exc:  # a run.tag too long for a file name
            raise run_dir_error(exc, typed.run) from exc
        plans.append(plan_recipe(jobs[index], typed, parent, cwd))
    if len({s.cfg.cluster.name for plan in plans for s in plan.steps}) > 1:
        raise ConfigError("cluster", "every step of a recipe runs on the same cluster (cluster=local or cluster=slurm)")
    parents = [plan.parent for plan in plans]
    for index, parent in enumerate(parents):
        if parent in parents[:index]:
            raise ConfigError("run.dir", f"recipes {parents.index(parent)} and {index} of this sweep would share "
                              f"{parent}; drop run.dir (each recipe then gets its own) or sweep run.dir too")
    if args.cfg == "resolved" or args.dry_run:
        for plan in plans:
            check_run_dir(plan.parent)
            describe(plan)
            for step in plan.steps:
                print(f"# step {step.name}: {' '.join(step.overrides)}")
                if args.cfg == "resolved":
                    print(OmegaConf.to_yaml(OmegaConf.structured(step.cfg)))
        return 0
    failures = 0
    with ExitStack() as every:
        # Each recipe's parent and pending step dirs are claimed (checks, locks) before any recipe runs, and held
        # until it ends (a SLURM recipe: until its jobs are submitted).
        claims = []
        for plan in plans:
            claim = every.enter_context(ExitStack())
            claim_run_dir(plan.parent, None, claim)
            for step in plan.pending:
                claim_run_dir(step.run_dir, step.cfg, claim, key_prefix=f"{step.name}:", extend=step_extends(step.cfg))
            claims.append(claim)
        for job, typed, plan, claim in zip(jobs, typed_jobs, plans, claims):
            typed.run.dir = str(plan.parent)
            failures += launch_recipe(plan, job, OmegaConf.structured(typed), release=claim.close) != 0
    return 1 if failures else 0
