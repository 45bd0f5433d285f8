"""The rule of which keys shape a stage's results (rova.config.fingerprint), on composed configs: no runs."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from rova.config.compose import compose, validate_typed
from rova.config.fingerprint import check_relaunch, fingerprint, result_settings
from rova.errors import ConfigError


def resolved(*overrides: str) -> dict:
    typed = validate_typed(compose(list(overrides)))
    return OmegaConf.to_container(OmegaConf.structured(typed), resolve=True)


def relaunch(first: tuple[str, ...], *changes: str, extend: bool = False) -> dict:
    return check_relaunch(resolved(*first), resolved(*first, *changes), extend=extend, where="D")


@pytest.mark.parametrize(("first", "changes"), [
    (("stage=eval",), ("logger=wandb", "cluster.partition=gpu", "run.tag=x", "run.resume=false")),
    (("stage=eval",), ("eval.batch_size=1", "eval.shards=1", "distributed=ddp", "data.probe_workers=2")),
    (("stage=grpo",), ("stage.save_steps=1", "stage.logging_steps=3", "stage.gradient_checkpointing=true")),
    (("stage=grpo",), ("eval.seed=3", "benchmark.max_items=2", "cot.min_score=0")),  # a training stage reads none
    (("stage=grpo",), ("select.num_samples=4", "select.min_std=0.3")),
    (("stage=select",), ("eval.seed=3", "cot.min_score=0", "tgrpo.shuffle=derangement", "objective=dapo")),
], ids=["placement-and-logging", "eval-throughput", "training-saving", "training-ignores-eval",
        "training-ignores-select", "select-ignores-the-other-stages"])
def test_keys_that_do_not_shape_the_results_may_change(first, changes):
    assert relaunch(first, *changes) == {}
    assert fingerprint(resolved(*first)) == fingerprint(resolved(*first, *changes))


@pytest.mark.parametrize(("first", "changes", "key"), [
    (("stage=eval",), ("model.path=/elsewhere",), "model.path"),
    (("stage=eval",), ("eval.corruptions=[fog]",), "eval.corruptions"),
    (("stage=cot",), ("cot.batch_size=2",), "cot.batch_size"),  # sampling is seeded per generate call
    (("stage=select",), ("select.min_std=0.2",), "select.min_std"),
    (("stage=grpo",), ("distributed=ddp",), "distributed.name"),  # the world size sets the global batch
    (("stage=grpo",), ("stage=sft",), "stage.name"),
    (("stage=tgrpo",), ("stage.max_steps=8", "stage.learning_rate=5e-4"), "stage.max_steps"),
], ids=["model", "grid", "cot-batch", "select-threshold", "training-processes", "stage", "first-of-two"])
def test_a_key_that_shapes_the_results_is_refused_by_name(first, changes, key):
    with pytest.raises(ConfigError) as err:
        relaunch(first, *changes)
    assert err.value.key == key and "this launch gives" in err.value.problem
    assert fingerprint(resolved(*first)) != fingerprint(resolved(*first, *changes))


def test_run_extend_grows_only_max_steps_of_a_training_stage():
    assert relaunch(("stage=sft", "stage.max_steps=2"), "stage.max_steps=5", extend=True) == {"stage.max_steps": [2, 5]}
    with pytest.raises(ConfigError, match="run.extend=true"):  # without it, the error says how
        relaunch(("stage=sft", "stage.max_steps=2"), "stage.max_steps=5")
    with pytest.raises(ConfigError) as err:
        relaunch(("stage=sft", "stage.max_steps=5"), "stage.max_steps=2", extend=True)
    assert err.value.key == "stage.max_steps" and "grow" in err.value.problem
    with pytest.raises(ConfigError) as err:
        relaunch(("stage=eval",), extend=True)
    assert err.value.key == "run.extend"


def test_a_key_the_old_record_lacks_matches_its_default():
    new = resolved("stage=grpo")
    old = resolved("stage=grpo")
    del old["stage"]["dataloader_num_workers"]  # a record written before the key existed
    assert check_relaunch(old, new, extend=False, where="D") == {}
    changed = resolved("stage=grpo", "stage.dataloader_num_workers=2")
    with pytest.raises(ConfigError) as err:
        check_relaunch(old, changed, extend=False, where="D")
    assert err.value.key == "stage.dataloader_num_workers"


def test_result_settings_leave_out_the_free_keys():
    settings = result_settings(resolved("stage=eval"))
    assert "stage.name" in settings and "model.path" in settings and "eval.seed" in settings
    assert not any(k.startswith(("run.", "logger.", "cluster.", "recipe.", "distributed.")) for k in settings)
    assert "eval.batch_size" not in settings
