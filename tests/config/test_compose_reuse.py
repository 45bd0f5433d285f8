"""compose keeps one Hydra instance per process (a fresh one per call was 40 % of a compose's time).

What reusing it must not change: an edited YAML file is read again, another conf dir gets its own instance,
someone else clearing Hydra's global instance is recovered from, and a refused override leaves the next
compose working.
"""

from __future__ import annotations

import shutil

import pytest

import rova.config.compose as compose_module
from rova.config.compose import compose
from rova.errors import ConfigError


@pytest.fixture
def own_conf(tmp_path, monkeypatch):
    conf = shutil.copytree(compose_module.conf_dir(), tmp_path / "conf")
    monkeypatch.setattr(compose_module, "conf_dir", lambda: conf)
    return conf


def test_an_edited_yaml_file_is_read_again(own_conf):
    assert compose(["logger=wandb"]).logger.project != "edited"
    wandb = own_conf / "logger" / "wandb.yaml"
    wandb.write_text(wandb.read_text() + "project: edited\n")
    assert compose(["logger=wandb"]).logger.project == "edited"


def test_another_conf_dir_gets_its_own_hydra(own_conf, monkeypatch):
    (own_conf / "logger" / "extra.yaml").write_text("name: none\nmode: disabled\n")
    assert compose(["logger=extra"]).logger.mode == "disabled"
    monkeypatch.undo()  # back to the shipped conf/
    with pytest.raises(ConfigError) as err:  # the shipped conf/ has no logger/extra.yaml
        compose(["logger=extra"])
    assert err.value.key == "logger"


def test_a_cleared_global_hydra_and_a_refused_override_leave_compose_working():
    from hydra.core.global_hydra import GlobalHydra

    compose([])
    GlobalHydra.instance().clear()
    assert compose(["logger=none"]).logger.name == "none"
    with pytest.raises(ConfigError):
        compose(["logger=nope"])
    assert compose(["logger=wandb"]).logger.name == "wandb"
