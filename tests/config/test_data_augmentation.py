"""data.invert_questions.* and data.task_mixing: defaults (off, shuffled), bad values and stages that do not read
them fail at compose time naming the key, and the values reach what reads them."""

from __future__ import annotations

import pytest

from rova.config.compose import load, load_typed
from rova.config.data import VIDEO_R1_TYPE_TEMPLATES, DataConfig, InvertQuestionsConfig, PromptTemplates
from rova.errors import ConfigError


def test_defaults_are_off_and_shuffled():
    typed = load_typed([])
    assert typed.data.invert_questions.p == 0.0 and typed.data.invert_questions.seed is None
    assert typed.data.task_mixing == "shuffled"


@pytest.mark.parametrize("override,key", [
    ("data.invert_questions.p=1.5", "data.invert_questions.p"),
    ("data.invert_questions.p=-0.1", "data.invert_questions.p"),
    ("data.invert_questions.p=nan", "data.invert_questions.p"),
    ("data.invert_questions.seed=-1", "data.invert_questions.seed"),
    ("data.invert_questions.prob=0.5", "data.invert_questions.prob"),
    ("data.task_mixing=per_step", "data.task_mixing"),
])
def test_bad_values_fail_naming_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        load([override])
    assert err.value.key == key


@pytest.mark.parametrize("stage,override,key", [
    ("sft", "data.invert_questions.p=0.5", "data.invert_questions.p"),
    ("cot", "data.invert_questions.p=0.5", "data.invert_questions.p"),
    ("sft", "data.task_mixing=per_batch", "data.task_mixing"),
    ("eval", "data.task_mixing=per_batch", "data.task_mixing"),
])
def test_stages_that_do_not_train_a_policy_refuse_them(stage, override, key):
    with pytest.raises(ConfigError) as err:
        load([f"stage={stage}", override])
    assert err.value.key == key


def test_the_rl_stages_take_them_and_hand_task_mixing_to_the_trainer():
    from rova.training.args import rova_trainer_arguments

    for stage in (["stage=grpo"], ["stage=tgrpo", "corruption=rova"], ["stage=memory", "corruption=rova"]):
        typed = load_typed([*stage, "data.invert_questions.p=0.5", "data.invert_questions.seed=7",
                         "data.task_mixing=per_batch"])
        assert typed.data.invert_questions.p == 0.5 and typed.data.invert_questions.seed == 7
        assert rova_trainer_arguments(typed)["task_mixing"] == "per_batch"


def test_inversion_needs_the_several_letters_wording():
    only_video_r1 = PromptTemplates(type_templates=dict(VIDEO_R1_TYPE_TEMPLATES))
    DataConfig(train_file="x.json", prompt=only_video_r1)  # off: not needed
    with pytest.raises(ConfigError, match="data.prompt.type_templates: .*'multiple answers'"):
        DataConfig(train_file="x.json", prompt=only_video_r1, invert_questions=InvertQuestionsConfig(p=0.5))
