"""memory.augment_easy / augment_hard / hint_max_chars / hint_template (DeepVideo-R1's difficulty-aware augmentation):
off by default, allowed on every RL stage, refused where they cannot apply naming the key, and handed to the trainer."""

from __future__ import annotations

import pytest

from rova.config.compose import load, load_typed
from rova.config.memory import MemoryConfig
from rova.errors import ConfigError

ON = ("memory.augment_easy=true", "memory.augment_hard=true")


def test_off_by_default():
    cfg = load_typed([])
    assert (cfg.memory.augment_easy, cfg.memory.augment_hard) == (False, False)
    assert cfg.memory.hint_max_chars >= 1 and "{hint}" in cfg.memory.hint_template


@pytest.mark.parametrize("stage", ["grpo", "tgrpo", "memory"])
def test_allowed_on_every_rl_stage_and_handed_to_the_trainer(stage, tmp_path):
    from rova.training.args import rova_trainer_arguments

    cfg = load_typed([f"stage={stage}", "corruption=rova", *ON, "memory.hint_max_chars=40", "memory.hint_template=' [{hint}]'"])
    args = rova_trainer_arguments(cfg)
    assert (args["augment_easy"], args["augment_hard"], args["hint_max_chars"], args["hint_template"]) == (
        True, True, 40, " [{hint}]")


@pytest.mark.parametrize("overrides,key", [
    (["memory.augment_easy=true"], "memory.augment_easy"),  # stage=grpo's default corruption=none never corrupts
    (["stage=memory", "corruption=none", "reward=video_r1", "tgrpo.branches=[clean]", "memory.augment_easy=true"],
     "memory.augment_easy"),
    (["stage=sft", "memory.augment_hard=true"], "memory.augment_hard"),
    (["stage=eval", "corruption=rova", "memory.augment_easy=true"], "memory.augment_easy"),
    (["memory.augment_hard=maybe"], "memory.augment_hard"),
    (["memory.hint_max_chars=0"], "memory.hint_max_chars"),
    (["memory.hint_max_chars=2.5"], "memory.hint_max_chars"),
    (["memory.hint_template=no placeholder"], "memory.hint_template"),
    (["memory.augment_hrad=true"], "memory.augment_hrad"),
])
def test_refused_where_it_cannot_apply_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as info:
        load(overrides)
    assert info.value.key == key, str(info.value)


def test_hard_alone_needs_no_corruption_mix_and_the_schema_checks_types():
    cfg = load_typed(["memory.augment_hard=true"])
    assert cfg.memory.augment_hard and not cfg.memory.augment_easy
    with pytest.raises(ConfigError, match="memory.augment_easy"):
        MemoryConfig(augment_easy=1)
    with pytest.raises(ConfigError, match="memory.hint_max_chars"):
        MemoryConfig(hint_max_chars=True)


def test_memory_json_leaves_the_rollout_options_out():
    """They shape no memory state: a memory.json is the same with them on or off (and a resume never reads them)."""
    from rova.config.memory import AUGMENT_KEYS
    from rova.memory.difficulty import DifficultyMemory

    on = DifficultyMemory(MemoryConfig(augment_easy=True, augment_hard=True, hint_max_chars=9)).to_dict()
    assert on == DifficultyMemory(MemoryConfig()).to_dict() and not set(AUGMENT_KEYS) & set(on["config"])
    assert DifficultyMemory.from_dict(on).config == MemoryConfig()
