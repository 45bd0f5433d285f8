"""distributed.sequence_parallel: every combination Ulysses or rova's sharded trainer cannot run fails at compose
time (before anything is spawned), naming the key to change."""

from __future__ import annotations

import json

import pytest

from rova.config.compose import load, load_typed
from rova.config.sequence_parallel import BUILD_SPEC_HEADS, model_heads
from rova.errors import ConfigError

SP2 = ["stage=tgrpo", "distributed=zero2", "distributed.nproc_per_node=2", "distributed.sequence_parallel=2"]


def test_a_valid_sequence_parallel_run_composes():
    cfg = load_typed(SP2)
    assert cfg.distributed.sequence_parallel == 2


@pytest.mark.parametrize(("extra", "key", "words"), [
    (["model.attn_implementation=eager"], "model.attn_implementation", "takes no mask"),
    (["distributed.nproc_per_node=3", "distributed.sequence_parallel=3"], "distributed.sequence_parallel",
     "divide the model's 4 attention heads"),
    (["distributed.nproc_per_node=3"], "distributed.sequence_parallel", "must divide distributed.nproc_per_node"),
    (["distributed=none", "distributed.nproc_per_node=1"], "distributed.sequence_parallel", "several processes"),
    (["stage=select"], "distributed.sequence_parallel", "stage 'select'"),
    (["stage=cot"], "distributed.sequence_parallel", "stage 'cot'"),
    (["objective=tw_grpo"], "objective.token_weight_alpha", "not sharded"),
    (["distributed.sequence_parallel=0"], "distributed.sequence_parallel", ""),
], ids=["eager", "heads", "nproc", "one-process", "select", "cot", "tw_grpo", "zero"])
def test_refused_combinations_name_the_key(extra, key, words):
    with pytest.raises(ConfigError, match=key) as info:
        load(SP2 + extra)
    assert words in str(info.value)


def test_vllm_rollout_is_refused(monkeypatch):
    with pytest.raises(ConfigError, match="rollout.name"):
        load(SP2 + ["rollout=vllm"])


def test_kv_heads_and_group_size_must_divide_one_another(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"text_config": {"num_attention_heads": 12,
                                                                       "num_key_value_heads": 4}}))
    # 12 heads split over 6 ranks, but 4 key/value heads and 6 ranks do not divide one another
    with pytest.raises(ConfigError, match="key/value heads"):
        load(["stage=grpo", "distributed=ddp", "distributed.nproc_per_node=6", "distributed.sequence_parallel=6",
              "model=qwen2_5_vl_3b", f"model.path={tmp_path}"])


def test_the_build_specs_declared_heads_are_the_tiny_models_heads():
    from rova.models.tiny import SPECS

    assert BUILD_SPEC_HEADS == {name: (s.num_attention_heads, s.num_key_value_heads) for name, s in SPECS.items()}
    cfg = load_typed(["model=small"])
    assert model_heads(cfg.model) == (4, 2)


def test_visible_gpus_that_the_group_does_not_divide_fail_before_spawning(monkeypatch):
    from rova.launch.workers import processes_per_node

    cfg = load_typed(["stage=grpo", "distributed=ddp", "distributed.sequence_parallel=2"])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    with pytest.raises(ConfigError, match="distributed.sequence_parallel"):
        processes_per_node(cfg)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    assert processes_per_node(cfg) == 4
