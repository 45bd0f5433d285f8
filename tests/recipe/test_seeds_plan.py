"""Recipes over seeds (recipe.seeds, per_seed steps, recipe.differences): the rules, the expansion into
<step>_s<seed> copies, their seeds and links, per-copy command-line overrides, relaunches and SLURM
dependencies. Configs only; the aggregated report is in test_seeds_report.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from rova.cli import main, plan_jobs
from rova.config.compose import load, load_typed
from rova.config.recipe import expand_steps
from rova.errors import ConfigError
from rova.recipe.plan import split_step_overrides

SEEDS = ["experiment=demo_seeds_recipe"]  # sft -> grpo, tgrpo (per_seed) -> eval_sft, eval_grpo, eval_tgrpo; seeds [0, 1]
ORDER = ["sft", "grpo_s0", "grpo_s1", "tgrpo_s0", "tgrpo_s1", "eval_sft", "eval_grpo_s0", "eval_grpo_s1",
         "eval_tgrpo_s0", "eval_tgrpo_s1"]


def plan(tmp_path: Path, *overrides: str):
    from rova.config.paths import absolutize
    from rova.recipe.plan import plan_recipe

    overrides = list(overrides)
    root = load_typed(split_step_overrides(overrides)[0])
    root = absolutize(root, tmp_path)
    return plan_recipe(overrides, root, tmp_path / "parent", tmp_path)


@pytest.mark.parametrize("overrides, key", [
    (["recipe.seeds=[0,0]"], "recipe.seeds"),                                      # not unique
    (["recipe.seeds=[-1]"], "recipe.seeds"),                                       # names a run dir: >= 0
    (["recipe.seeds=[]"], "recipe.steps.grpo.per_seed"),                           # per_seed needs seeds
    (["recipe.steps.eval_sft.model_from=grpo"], "recipe.steps.eval_sft.model_from"),  # one run reading per-seed ones
    (["recipe.steps.grpo.overrides=['stage.seed=3']"], "recipe.steps.grpo.overrides"),  # the copies' seeds are set
    (["recipe.differences=[[eval_tgrpo,eval_grpo,eval_sft]]"], "recipe.differences"),   # not a pair
    (["recipe.differences=[[eval_tgrpo,eval_tgrpo]]"], "recipe.differences"),
    (["recipe.differences=[[eval_tgrpo,grpo]]"], "recipe.differences"),            # not a compared eval step
    (["recipe.compare=[eval_sft,eval_grpo]", "recipe.differences=[[eval_tgrpo,eval_grpo]]"], "recipe.differences"),
    (["recipe.differences=[[eval_tgrpo,eval_grpo],[eval_tgrpo,eval_grpo]]"], "recipe.differences"),
])
def test_seed_rules_name_the_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        load([*SEEDS, *overrides])
    assert err.value.key == key, str(err.value)


@pytest.mark.parametrize("overrides, key", [
    (["experiment=demo_recipe", "recipe.seeds=[1]"], "recipe.seeds"),             # nothing is per_seed
    (["experiment=demo_recipe", "recipe.steps.tgrpo.per_seed=true"], "recipe.steps.tgrpo.per_seed"),
    (["recipe.seeds=[1]"], "recipe.seeds"),                                        # not a recipe
    (["recipe.differences=[[a,b]]"], "recipe.differences"),
])
def test_seed_keys_outside_a_seeded_recipe_name_the_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        load(overrides)
    assert err.value.key == key, str(err.value)


def test_a_step_named_like_a_copy_is_refused():
    from rova.config.recipe import RecipeConfig, RecipeStepConfig

    steps = {"grpo": RecipeStepConfig(stage="grpo", per_seed=True), "grpo_s1": RecipeStepConfig(stage="eval")}
    with pytest.raises(ConfigError) as err:
        RecipeConfig(steps=steps, seeds=[0, 1])
    assert err.value.key == "recipe.steps.grpo_s1" and "seed 1" in str(err.value)
    assert RecipeConfig(steps=steps, seeds=[0, 2]).seeds == [0, 2]  # no copy is called grpo_s1


def test_a_seed_that_is_not_an_integer_names_recipe_seeds():
    with pytest.raises(ConfigError) as err:
        load([*SEEDS, "recipe.seeds=[a]"])
    assert err.value.key.startswith("recipe.seeds"), str(err.value)


def test_without_seeds_the_steps_are_planned_as_written():
    root = load_typed(["experiment=rova_recipe", "data.train_file=/data/train.json"])
    runs = expand_steps(root.recipe)
    assert [r.name for r in runs] == list(root.recipe.steps)
    for run in runs:
        step = root.recipe.steps[run.name]
        assert (run.base, run.seed, run.overrides) == (run.name, None, tuple(step.overrides))
        assert (run.model_from, run.data_from) == (step.model_from, step.data_from)


def test_per_seed_steps_become_one_copy_per_seed_linked_to_the_same_seed(tmp_path):
    recipe = plan(tmp_path, *SEEDS)
    parent = tmp_path / "parent"
    assert [s.name for s in recipe.steps] == ORDER
    assert all(s.run_dir == parent / s.name and s.cfg.run.dir == str(parent / s.name) for s in recipe.steps)
    steps = {s.name: s for s in recipe.steps}
    for seed in (0, 1):
        for arm in ("grpo", "tgrpo"):
            train, evaluate = steps[f"{arm}_s{seed}"], steps[f"eval_{arm}_s{seed}"]
            assert (train.base, train.seed, evaluate.base, evaluate.seed) == (arm, seed, f"eval_{arm}", seed)
            # The training copy: its seed after the step's own overrides; it reads the one shared SFT.
            assert train.cfg.stage.seed == seed
            assert train.overrides.index(f"stage.seed={seed}") > train.overrides.index("stage.max_steps=10")
            assert train.after == ["sft"] and train.cfg.model.path == str(parent / "sft" / "model")
            # The eval copy: the same-seed model, the eval seed untouched (the same corrupted clips for all).
            assert evaluate.after == [f"{arm}_s{seed}"]
            assert evaluate.cfg.model.path == str(parent / f"{arm}_s{seed}" / "model")
            assert evaluate.cfg.eval.seed == steps["eval_sft"].cfg.eval.seed == 0
            assert not any(o.startswith("stage.seed=") for o in evaluate.overrides)
    assert steps["sft"].cfg.stage.seed == 42 and steps["sft"].seed is None  # the shared step: the default seed
    assert steps["eval_sft"].after == ["sft"]
    assert (recipe.seeds, recipe.compare) == ([0, 1], ["eval_sft", "eval_grpo", "eval_tgrpo"])
    assert recipe.differences == [["eval_tgrpo", "eval_grpo"], ["eval_tgrpo", "eval_sft"]]
    saved = recipe.to_json()
    assert saved["seeds"] == [0, 1] and saved["differences"] == recipe.differences
    assert {s["name"]: (s["base"], s["seed"]) for s in saved["steps"]}["eval_grpo_s1"] == ("eval_grpo", 1)
    assert all(not s.cfg.recipe.seeds and not s.cfg.recipe.differences for s in recipe.steps)  # a step is one stage


def test_three_seeds_give_three_copies_each(tmp_path):
    recipe = plan(tmp_path, *SEEDS, "recipe.seeds=[7,3,11]")
    names = [s.name for s in recipe.steps]
    assert names[:4] == ["sft", "grpo_s7", "grpo_s3", "grpo_s11"] and len(names) == 1 + 3 * 4 + 1
    assert {s.name: s.cfg.stage.seed for s in recipe.steps if s.stage == "tgrpo"} == {
        "tgrpo_s7": 7, "tgrpo_s3": 3, "tgrpo_s11": 11}


def test_step_overrides_reach_every_copy_and_a_copy_override_only_that_copy(tmp_path):
    recipe = plan(tmp_path, *SEEDS, "tgrpo:stage.max_steps=3", "tgrpo_s1:stage.max_steps=5", "eval_grpo:eval.batch_size=2")
    steps = {s.name: s.cfg for s in recipe.steps}
    assert (steps["tgrpo_s0"].stage.max_steps, steps["tgrpo_s1"].stage.max_steps) == (3, 5)
    assert steps["grpo_s0"].stage.max_steps == steps["grpo_s1"].stage.max_steps == 10
    assert steps["eval_grpo_s0"].eval.batch_size == steps["eval_grpo_s1"].eval.batch_size == 2
    assert steps["eval_tgrpo_s0"].eval.batch_size == 8
    assert (steps["tgrpo_s0"].stage.seed, steps["tgrpo_s1"].stage.seed) == (0, 1)


@pytest.mark.parametrize("overrides, key", [
    (["tgrpo:stage.seed=3"], "tgrpo:stage.seed"),            # would give every copy the same seed
    (["tgrpo_s1:stage.seed=3"], "tgrpo_s1:stage.seed"),
    (["tgrpo_s9:stage.max_steps=3"], "tgrpo_s9:stage.max_steps"),  # no seed 9
    (["grpo_s0:model.path=/x"], "grpo_s0:model.path"),      # set by the link from sft
    (["eval_grpo_s1:eval.batch_size=0"], "eval_grpo_s1:eval.batch_size"),  # a copy's value is checked as any run's
])
def test_bad_copy_overrides_name_step_and_key(tmp_path, overrides, key):
    with pytest.raises(ConfigError) as err:
        plan(tmp_path, *SEEDS, *overrides)
    assert err.value.key == key, str(err.value)


def test_a_command_line_seed_sets_the_shared_steps_and_is_noted_for_the_copies(tmp_path):
    recipe = plan(tmp_path, *SEEDS, "stage.seed=7")
    steps = {s.name: s.cfg for s in recipe.steps}
    assert steps["sft"].stage.seed == 7 and (steps["grpo_s0"].stage.seed, steps["grpo_s1"].stage.seed) == (0, 1)
    assert len(recipe.notes) == 2  # one per per_seed training step, not one per copy
    assert all("recipe.seeds" in note and "stage.seed=7" in note for note in recipe.notes)


def test_relaunch_skips_finished_copies_and_may_add_a_seed(tmp_path):
    from omegaconf import OmegaConf

    from rova.recipe.run import write_plan

    first = plan(tmp_path, *SEEDS)
    write_plan(first, SEEDS, OmegaConf.create({}))
    for name in ("sft", "grpo_s0"):
        (first.parent / name / "summary.json").write_text("{}")
    again = plan(tmp_path, *SEEDS, "recipe.seeds=[0,1,2]")
    assert [s.name for s in again.steps if s.done] == ["sft", "grpo_s0"]
    assert "grpo_s2" in [s.name for s in again.pending]
    with pytest.raises(ConfigError) as err:  # a copy's settings are checked like any step's
        plan(tmp_path, *SEEDS, "grpo_s0:stage.learning_rate=1e-3")
    assert err.value.key == "grpo_s0:stage.learning_rate"
    (first.parent / "sft" / "summary.json").unlink()  # grpo_s0 finished, but the SFT model it read is gone
    with pytest.raises(ConfigError) as err:
        plan(tmp_path, *SEEDS)
    assert err.value.key == "grpo_s0"


def test_a_step_dir_planned_before_recipe_seeds_existed_relaunches(tmp_path):
    from omegaconf import OmegaConf

    from rova.recipe.run import write_plan

    demo = ["experiment=demo_recipe"]
    write_plan(plan(tmp_path, *demo), demo, OmegaConf.create({}))
    resolved = tmp_path / "parent" / "sft" / "resolved.yaml"
    old = OmegaConf.to_container(OmegaConf.load(resolved))
    del old["recipe"]["seeds"], old["recipe"]["differences"]  # what a step's resolved.yaml held before
    OmegaConf.save(OmegaConf.create(old), resolved)
    assert [s.name for s in plan(tmp_path, *demo).steps][0] == "sft"


def test_slurm_jobs_depend_on_the_expanded_steps(tmp_path, monkeypatch):
    import rova.launch.slurm as slurm
    from rova.recipe.slurm import submit_recipe

    recipe = plan(tmp_path, *SEEDS, "cluster=slurm")
    submitted: list[tuple[str, dict]] = []

    class Job:
        def __init__(self, job_id: str):
            self.job_id = job_id

    class Executor:
        def __init__(self, name: str, params: dict):
            self.name, self.params = name, params

        def submit(self, _call):
            submitted.append((self.name, self.params))
            return Job(str(100 + len(submitted)))

    monkeypatch.setattr(slurm, "make_executor", lambda cfg, folder, name, slurm_additional_parameters, **_: Executor(
        name, slurm_additional_parameters))
    monkeypatch.setattr(slurm, "run_tasks", lambda cfg, run_dir: [run_dir])
    monkeypatch.setattr(slurm, "submit_tasks", lambda executor, tasks, dirs, folder: [executor.submit(t) for t in tasks])
    assert submit_recipe(recipe) == 0
    job_of = {name.removeprefix("rova-demo_seeds-"): str(101 + i) for i, (name, _) in enumerate(submitted)}
    assert list(job_of) == [*ORDER, "report"]
    deps = {name.removeprefix("rova-demo_seeds-"): params.get("dependency") for name, params in submitted}
    assert deps["sft"] is None
    assert deps["grpo_s1"] == deps["tgrpo_s0"] == f"afterok:{job_of['sft']}"
    assert deps["eval_grpo_s1"] == f"afterok:{job_of['grpo_s1']}"
    assert deps["eval_tgrpo_s0"] == f"afterok:{job_of['tgrpo_s0']}"
    assert deps["report"] == "afterok:" + ":".join(job_of[n] for n in ORDER)


def test_dry_run_and_sweeps_know_the_copies(tmp_path, capsys):
    assert main([*SEEDS, f"run.output_root={tmp_path / 'out'}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for name in ORDER:
        assert f"# step {name}:" in out
    assert "seeds 0, 1: grpo, tgrpo, eval_grpo, eval_tgrpo run once per seed" in out
    assert not (tmp_path / "out").exists()
    jobs = plan_jobs([*SEEDS, "tgrpo_s1:stage.max_steps=3,5"], multirun=True)
    assert [[o for o in job if o.startswith("tgrpo_s1:")] for job in jobs] == [
        ["tgrpo_s1:stage.max_steps=3"], ["tgrpo_s1:stage.max_steps=5"]]
