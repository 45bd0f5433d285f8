"""Recipes: the recipe.* rules, planning (links, per-step overrides, notes), relaunch checks, sweeps, SLURM
dependencies. Everything here composes configs only; the runs are in tests/recipe/test_run.py (slow tier)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rova.errors import ConfigError
from rova.cli import main, plan_jobs
from rova.config.compose import load, load_typed
from rova.recipe.plan import merge_overrides, override_key, plan_recipe, split_step_overrides
from rova.recipe.slurm import job_dependency
from rova.config.stage import get_spec

DEMO = ["experiment=demo_recipe"]
GPU = ["experiment=rova_recipe", "data.train_file=/data/train.json"]


def plan(tmp_path: Path, *overrides: str):
    from rova.config.paths import absolutize

    overrides = list(overrides)
    root = load_typed(split_step_overrides(overrides)[0])
    root = absolutize(root, tmp_path)
    return plan_recipe(overrides, root, tmp_path / "parent", tmp_path)


@pytest.mark.parametrize("override, key", [
    ("recipe.steps.tgrpo.model_from=eval_base", "recipe.steps.tgrpo.model_from"),      # not a training step
    ("recipe.steps.sft.model_from=tgrpo", "recipe.steps.sft.model_from"),              # a later step
    ("recipe.steps.sft.model_from=nope", "recipe.steps.sft.model_from"),               # no such step
    ("recipe.steps.tgrpo.data_from=sft", "recipe.steps.tgrpo.data_from"),              # not a cot step
    ("recipe.compare=[eval_base,sft]", "recipe.compare"),                              # not an eval step
    ("recipe.compare=[eval_base,eval_base]", "recipe.compare"),
    ("recipe.steps.sft.stage=distill", "recipe.steps.sft.stage"),
    ('recipe.steps.sft.overrides=["stage=grpo"]', "recipe.steps.sft.overrides"),        # the recipe sets it
    ('recipe.steps.sft.overrides=["run.dir=/x"]', "recipe.steps.sft.overrides"),
    ("recipe.name=Bad/Name", "recipe.name"),
])
def test_recipe_rules_name_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        load([*DEMO, override])
    assert err.value.key == key, str(err.value)


@pytest.mark.parametrize("key", ["stage", "run.dir"])
def test_a_step_may_not_set_what_the_recipe_sets(key):
    # Quoted: unquoted `[stage=grpo]` is a Hydra parse error, which names the same key for another reason.
    with pytest.raises(ConfigError, match=f"'{key}=.*': the recipe sets {key} itself"):
        load([*DEMO, f'recipe.steps.sft.overrides=["{key}=x"]'])


def test_gpu_recipe_links_each_step_to_the_one_it_reads(tmp_path):
    recipe = plan(tmp_path, *GPU)
    parent = tmp_path / "parent"
    assert [s.name for s in recipe.steps] == ["cot", "sft", "tgrpo", "eval_base", "eval_sft", "eval_trained"]
    cfg = {s.name: s.cfg for s in recipe.steps}
    assert cfg["sft"].data.train_file == str(parent / "cot" / "cot.json") and not cfg["sft"].data.build_demo
    assert cfg["cot"].data.train_file == cfg["tgrpo"].data.train_file == "/data/train.json"  # RL on the QA data
    assert cfg["tgrpo"].model.path == str(parent / "sft" / "model")
    assert cfg["eval_sft"].model.path == str(parent / "sft" / "model")
    assert cfg["eval_trained"].model.path == str(parent / "tgrpo" / "model")
    assert cfg["eval_base"].model.path == cfg["cot"].model.path == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert {s.name: s.after for s in recipe.steps} == {
        "cot": [], "sft": ["cot"], "tgrpo": ["sft"], "eval_base": [], "eval_sft": ["sft"], "eval_trained": ["tgrpo"]}
    assert {s.name: s.cfg.stage.name for s in recipe.steps}["tgrpo"] == "tgrpo"
    assert cfg["tgrpo"].tgrpo.branches == ["clean", "shuffled", "corrupted"] and cfg["tgrpo"].reward.w_kl > 0
    assert all(s.cfg.run.dir == str(parent / s.name) for s in recipe.steps)
    assert all(not s.cfg.recipe.steps for s in recipe.steps)  # a step is one stage
    assert {s.cfg.logger.group for s in recipe.steps} == {"rova_recipe-parent"}  # one wandb group per recipe run
    assert plan(tmp_path, *GPU, "logger.group=mine").step("sft").cfg.logger.group == "mine"
    assert recipe.compare == ["eval_base", "eval_sft", "eval_trained"]


def test_step_overrides_win_and_shadowed_command_line_values_are_noted(tmp_path):
    recipe = plan(tmp_path, *DEMO, "stage.max_steps=3", "tgrpo:stage.max_steps=7", "eval.max_new_tokens=12")
    steps = {s.name: s.cfg for s in recipe.steps}
    assert steps["sft"].stage.max_steps == 40          # the recipe's own value for sft ...
    assert steps["tgrpo"].stage.max_steps == 7         # ... the command line's for tgrpo, set for that step
    assert steps["eval_base"].eval.max_new_tokens == 12  # a key no step sets: the command line's, everywhere
    assert steps["eval_trained"].eval.max_new_tokens == 12
    assert len(recipe.notes) == 1 and "sft:stage.max_steps=3" in recipe.notes[0]


@pytest.mark.parametrize("overrides, key", [
    (["nope:stage.max_steps=2"], "nope:stage.max_steps"),         # no such step
    (["sft:stage.max_steps=-1"], "sft:stage.max_steps"),          # a step's value is checked like any run's
    (["tgrpo:model.path=/x"], "tgrpo:model.path"),                # set by the link from sft
    (["stage=tgrpo"], "stage"),                                   # each step has its stage
])
def test_bad_step_overrides_name_step_and_key(tmp_path, overrides, key):
    with pytest.raises(ConfigError) as err:
        plan(tmp_path, *DEMO, *overrides)
    assert err.value.key == key, str(err.value)


def test_launch_refuses_a_bad_step_before_writing_anything(tmp_path, capsys):
    code = main([*DEMO, f"run.output_root={tmp_path / 'out'}", "tgrpo:stage.learning_rate=-1"])
    assert code == 2
    assert "tgrpo:stage.learning_rate" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_step_override_without_a_recipe_is_a_config_error(tmp_path, capsys):
    assert main([f"run.output_root={tmp_path / 'out'}", "--dry-run", "sft:stage.max_steps=2"]) == 2
    err = capsys.readouterr().err
    assert "sft:stage.max_steps" in err and "not a recipe" in err


def test_dry_run_prints_every_step_and_writes_nothing(tmp_path, capsys):
    assert main([*DEMO, f"run.output_root={tmp_path / 'out'}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for name in ("sft", "tgrpo", "eval_base", "eval_sft", "eval_trained"):
        assert f"# step {name}:" in out
    assert not (tmp_path / "out").exists()


def test_sweeping_a_step_override_gives_one_recipe_per_value():
    jobs = plan_jobs([*DEMO, "sft:stage.max_steps=3,5"], multirun=True)
    assert [[o for o in job if o.startswith("sft:")] for job in jobs] == [["sft:stage.max_steps=3"], ["sft:stage.max_steps=5"]]


def test_relaunch_skips_finished_steps_and_refuses_other_settings(tmp_path):
    from omegaconf import OmegaConf

    from rova.recipe.run import write_plan

    first = plan(tmp_path, *DEMO)
    write_plan(first, DEMO, OmegaConf.create({}))
    (first.parent / "sft" / "summary.json").write_text("{}")
    again = plan(tmp_path, *DEMO)
    assert [s.name for s in again.steps if s.done] == ["sft"]
    assert again.step("tgrpo").after == ["sft"] and not again.step("tgrpo").done
    # A relaunch may move to another cluster, but not change what a step computes.
    assert plan(tmp_path, *DEMO, "cluster=slurm")
    with pytest.raises(ConfigError) as err:
        plan(tmp_path, *DEMO, "sft:stage.learning_rate=1e-3")
    assert err.value.key == "sft:stage.learning_rate" and "new run dir" in str(err.value)


def test_a_done_file_that_does_not_parse_reruns_its_step_and_the_report_says_so(tmp_path):
    """Issue 21, item 3: with eval_sft/results.json truncated a relaunch skipped every step, then failed on
    "not valid JSON" and left the old report."""
    from omegaconf import OmegaConf

    from rova.recipe.report import step_outcome, write_recipe_report
    from rova.recipe.run import write_plan

    first = plan(tmp_path, *DEMO)
    write_plan(first, DEMO, OmegaConf.create({}))
    for step in first.steps:
        if step.stage != "eval":
            (step.run_dir / get_spec(step.stage).done).write_text("{}")
    evals = [s.name for s in first.steps if s.stage == "eval"]
    assert "eval_sft" in evals
    torn = first.step("eval_sft").run_dir / "results.json"
    torn.write_text('{"clean": {"accur')
    again = plan(tmp_path, *DEMO)
    assert [s.name for s in again.pending] == evals
    assert any("eval_sft" in note and "results.json does not parse" in note for note in again.notes)
    assert step_outcome({"stage": "eval", "run_dir": str(torn.parent)}) == "not finished: its results.json does not parse"
    write_plan(again, DEMO, OmegaConf.create({}))
    report = "\n".join(write_recipe_report(again.parent)["lines"])
    assert "done file did not parse: eval_sft" in report
    torn.write_text("")  # emptied (a full disk) counts the same
    assert [s.name for s in plan(tmp_path, *DEMO).pending] == evals


def test_a_finished_step_whose_input_is_unfinished_is_refused(tmp_path):
    from omegaconf import OmegaConf

    from rova.recipe.run import write_plan

    first = plan(tmp_path, *DEMO)
    write_plan(first, DEMO, OmegaConf.create({}))
    (first.parent / "tgrpo" / "summary.json").write_text("{}")  # tgrpo done, but sft (its model) is not
    with pytest.raises(ConfigError) as err:
        plan(tmp_path, *DEMO)
    assert err.value.key == "tgrpo"


def test_every_recipe_yaml_plans(tmp_path):
    from rova.config.compose import conf_dir

    import yaml

    # A preset is a recipe when it sets recipe.steps (a comment that says "recipe:" does not make one).
    recipes = [p.stem for p in (conf_dir() / "experiment").glob("*.yaml")
               if ((yaml.safe_load(p.read_text()) or {}).get("recipe") or {}).get("steps")]
    assert set(recipes) >= {"demo_recipe", "rova_recipe", "temporal_r1_3b"} and "dapo_7b" not in recipes
    for name in recipes:
        assert plan(tmp_path / name, f"experiment={name}", "data.train_file=/data/train.json").steps


def test_job_dependency_is_afterok_on_array_job_ids():
    assert job_dependency([]) == {}
    assert job_dependency(["12", "10_0", "10_1"]) == {"dependency": "afterok:10:12", "kill_on_invalid_dep": "yes"}


_override = st.tuples(st.sampled_from(["a", "b.c", "model", "x.y"]), st.integers(0, 9)).map(lambda t: f"{t[0]}={t[1]}")


@given(st.lists(st.lists(_override, max_size=5), max_size=4))
def test_merge_overrides_keeps_the_last_value_of_each_key(lists):
    merged = merge_overrides(*lists)
    flat = [o for overrides in lists for o in overrides]
    last = {}
    for o in flat:
        last[override_key(o)] = o
    assert sorted(merged) == sorted(last.values())
    assert len({override_key(o) for o in merged}) == len(merged)
    # Order: each kept override where it last appeared.
    positions = [max(i for i, o in enumerate(flat) if o == m and override_key(o) == override_key(m)) for m in merged]
    assert positions == sorted(positions)


def test_split_step_overrides():
    common, per_step = split_step_overrides(["a=1", "sft:b.c=2", "eval_x:d=[1,2]", "+e=f:g"])
    assert common == ["a=1", "+e=f:g"]
    assert per_step == {"sft": ["b.c=2"], "eval_x": ["d=[1,2]"]}


def test_a_new_stage_is_linked_and_reported_through_its_declared_contract(tmp_path, monkeypatch):
    """A stage the recipe code has never heard of (an offline selection pass that hands a data file): declared in
    the registry only, it feeds data.train_file of a later step, its shards come from its shard key, and the
    report shows its outcome; nothing in recipe/ or launch/ names it."""
    import dataclasses
    import shutil
    import sys
    import types

    import rova.config.compose as compose_module
    from rova.launch.slurm import run_tasks
    from rova.recipe.report import step_outcome
    from rova.config import stage as registry

    module = types.ModuleType("planted_select_stage")
    module.outcome = lambda run_dir: f"selected from {run_dir.name}"
    monkeypatch.setitem(sys.modules, "planted_select_stage", module)
    select = registry.StageSpec(
        "select", "planted_select_stage", "keep the hard records", ("model.path", "data.train_file"),
        {"data.train_file": "selected.json"}, ("selected.json",), "selected.json", shard_key="eval.shards",
        policy_groups=False)
    monkeypatch.setitem(registry.STAGES, "select", select)
    conf = shutil.copytree(compose_module.conf_dir(), tmp_path / "conf")  # + the stage's conf/stage/select.yaml
    (conf / "stage" / "select.yaml").write_text("# @package _global_\nstage:\n  name: select\n")
    monkeypatch.setattr(compose_module, "conf_dir", lambda: conf)
    recipe = plan(tmp_path, *GPU, "recipe.steps.cot.stage=select")  # sft reads data_from=cot
    steps = {s.name: s for s in recipe.steps}
    assert steps["sft"].cfg.data.train_file == str(tmp_path / "parent" / "cot" / "selected.json")
    assert steps["sft"].after == ["cot"] and not steps["sft"].cfg.data.build_demo
    cfg = dataclasses.replace(steps["cot"].cfg)
    cfg.eval.shards = 3
    assert len(run_tasks(cfg, steps["cot"].run_dir)) == 3
    (steps["cot"].run_dir).mkdir(parents=True)
    step = {"stage": "select", "run_dir": str(steps["cot"].run_dir)}
    assert step_outcome(step) == "not finished"
    (steps["cot"].run_dir / "selected.json").write_text("[]")
    assert step_outcome(step) == "selected from cot"
    with pytest.raises(ConfigError) as err:  # a step that hands no model cannot feed model_from
        load([*GPU, "recipe.steps.cot.stage=select", "recipe.steps.tgrpo.model_from=cot"])
    assert err.value.key == "recipe.steps.tgrpo.model_from"


SELECT_THEN_GRPO = """# @package _global_
recipe:
  name: select_then_grpo
  steps:
    select:
      stage: select
      overrides: [select.num_samples=4]
    grpo:
      stage: grpo
      data_from: select
      overrides: [stage.max_steps=3]
"""


def test_a_select_step_hands_its_kept_records_to_grpo(tmp_path, monkeypatch):
    """Temporal-R1's recipe: stage=select on the QA data, then GRPO on select.json through data_from; the select
    step's shards, relaunch skip and report line come from its registry entry."""
    import json
    import shutil

    from omegaconf import OmegaConf

    import rova.config.compose as compose_module
    from rova.launch.slurm import run_tasks
    from rova.recipe.report import step_outcome
    from rova.recipe.run import write_plan

    conf = shutil.copytree(compose_module.conf_dir(), tmp_path / "conf")  # + a recipe file of this test's own
    (conf / "experiment" / "select_then_grpo.yaml").write_text(SELECT_THEN_GRPO)
    monkeypatch.setattr(compose_module, "conf_dir", lambda: conf)
    args = ["experiment=select_then_grpo", "model=qwen2_5_vl_3b", "data.train_file=/data/train.json",
            "select:select.min_std=0.2", "cluster=slurm", "select:select.shards=3"]
    recipe = plan(tmp_path, *args)
    steps = {s.name: s for s in recipe.steps}
    parent = tmp_path / "parent"
    assert [s.name for s in recipe.steps] == ["select", "grpo"]
    select, grpo = steps["select"].cfg, steps["grpo"].cfg
    assert (select.stage.name, grpo.stage.name) == ("select", "grpo")
    assert grpo.data.train_file == str(parent / "select" / "select.json")
    assert not grpo.data.build_demo and grpo.data.media_root is None  # select.json carries absolute media paths
    assert steps["grpo"].after == ["select"] and steps["select"].after == []
    assert select.data.train_file == "/data/train.json" and select.model.path == grpo.model.path
    assert (select.select.num_samples, select.select.min_std, grpo.stage.max_steps) == (4, 0.2, 3)
    assert len(run_tasks(select, steps["select"].run_dir)) == 3 and len(run_tasks(grpo, steps["grpo"].run_dir)) == 1
    # A relaunch after the select step finished skips it and runs GRPO on its file.
    write_plan(recipe, args, OmegaConf.create({}))
    report = {"records": 10, "kept": 4, "too_easy": 3, "too_hard": 1, "no_variance": 1, "skipped": 1}
    (parent / "select" / "select_report.json").write_text(json.dumps(report))
    again = plan(tmp_path, *args)
    assert [s.name for s in again.steps if s.done] == ["select"] and [s.name for s in again.pending] == ["grpo"]
    assert step_outcome({"stage": "select", "run_dir": str(parent / "select")}) == (
        "kept 4 of 10 records (dropped 3 too easy, 1 too hard, 1 without variance; 1 unreadable)")
    with pytest.raises(ConfigError) as err:  # select hands a data file, no model
        load([*args[:3], "recipe.steps.grpo.model_from=select"])
    assert err.value.key == "recipe.steps.grpo.model_from" and "needs a step that hands model.path" in err.value.problem
