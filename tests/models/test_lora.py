"""LoRA through PEFT (model.lora) and model.freeze_vision: what trains, what is saved, how it loads and resumes.

The GRPO steps here use fixed, unequal rewards: the tiny random model's own rewards are usually all equal,
which gives advantage 0 and no gradient, and "nothing changed" would prove nothing.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pytest
import torch

from rova.errors import ConfigError, RovaError
from rova.config.compose import load, load_typed
from tests.support.trainers import make_trainer

LORA = ("model.lora.enabled=true", "model.lora.rank=4", "model.lora.alpha=8", "model.lora.dropout=0.0")
STEP = ("stage.max_steps=1", "stage.learning_rate=0.01", "stage.num_generations=4",
        "stage.per_device_train_batch_size=4")


@contextmanager
def unequal_rewards():
    """Rewards 0, 1, 2, ... within every clean group (scores from the real registry, totals replaced)."""
    import rova.training.trainer as trainer_module

    score_rollout = trainer_module.score_rollout

    def fixed(*args, **kwargs):
        scores = score_rollout(*args, **kwargs)
        groups, size = scores["clean"].total.shape
        scores["clean"].total = np.tile(np.arange(size, dtype=float), (groups, 1))
        return scores

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer_module, "score_rollout", fixed)
        yield


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def base_name(name: str) -> str:
    """A PeftModel parameter's name in the plain model (LoRA layers keep the wrapped Linear as `base_layer`)."""
    return name.removeprefix("base_model.model.").replace(".base_layer.", ".")


def live_name(saved_key: str) -> str:
    """PEFT saves "...q_proj.lora_A.weight"; in the model (adapter "default") it is "...q_proj.lora_A.default.weight"."""
    return re.sub(r"\.(lora_[AB])\.weight$", r".\1.default.weight", saved_key)


def completion_logps(trainer, model, batch) -> torch.Tensor:
    """log p(completion token) of every completion position (padding 0), float32, from a plain forward."""
    from rova.training.trainer import completion_span_logits

    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
    keep = batch["completion_ids"].size(1)
    with torch.no_grad():
        logits = completion_span_logits(model, trainer._model_inputs(ids, mask, batch["visual_rows"]), keep)
    logps = logits.float().log_softmax(-1).gather(-1, batch["completion_ids"].unsqueeze(-1)).squeeze(-1)
    return logps * batch["completion_mask"]


# ----------------------------------------------------------------------------------------------- config
BAD = [
    (["model.lora.rank=0"], "model.lora.rank"),
    (["model.lora.alpha=0"], "model.lora.alpha"),
    (["model.lora.alpha=-1"], "model.lora.alpha"),
    (["model.lora.dropout=1.0"], "model.lora.dropout"),
    (["model.lora.dropout=-0.1"], "model.lora.dropout"),
    (["model.lora.target_modules=[]"], "model.lora.target_modules"),
    (["model.lora.target_modules=[q_proj,'']"], "model.lora.target_modules"),
    (["model.lora.rank=two"], "model.lora.rank"),
    (["model.lora.save_merged=true"], "model.lora.save_merged"),
    (["model.lora.enabled=true", "stage=eval"], "model.lora.enabled"),
    (["model.lora.enabled=true", "stage=sft", "data.train_file=/x.json"], "model.lora.enabled"),
    (["model.freeze_vision=true", "stage=sft", "data.train_file=/x.json"], "model.freeze_vision"),
]


@pytest.mark.parametrize("overrides,key", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_lora_values_fail_at_compose_time_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as info:
        load(overrides)
    assert str(info.value).startswith(key), str(info.value)


def test_lora_keys_compose_with_their_defaults():
    cfg = load_typed(["model.lora.enabled=true", "model.freeze_vision=true", "model.lora.alpha=16"])
    lora = cfg.model.lora
    assert (lora.enabled, lora.rank, lora.alpha, lora.dropout, lora.save_merged) == (True, 16, 16.0, 0.05, False)
    assert lora.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert cfg.model.freeze_vision
    default = load_typed([])
    assert not default.model.lora.enabled and not default.model.freeze_vision


# ----------------------------------------------------------------------------------------------- targets
def test_default_targets_wrap_the_language_model_and_never_the_vision_tower(tiny_model_dir):
    from peft import get_peft_model
    from transformers import Qwen2_5_VLForConditionalGeneration

    from rova.config.model import LoraConfig
    from rova.models.lora import lora_config, vision_tower

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_dir)
    name, tower = vision_tower(model)
    assert name == "model.visual" and tower is model.model.visual
    vision_mlp = [n for n, _ in tower.named_modules() if n.endswith(("gate_proj", "up_proj", "down_proj"))]
    assert vision_mlp, "the vision MLP has the same projection names: the exclusion is what is tested"
    peft_model = get_peft_model(model, lora_config(model, LoraConfig()))
    wrapped = {n.removeprefix("base_model.model.") for n, m in peft_model.named_modules() if hasattr(m, "lora_A")}
    layers = model.config.text_config.num_hidden_layers
    assert len(wrapped) == 7 * layers
    assert all(".language_model." in n for n in wrapped), sorted(wrapped)
    assert not any(n.startswith("model.visual") for n in wrapped)


def test_targets_that_match_no_language_model_module_are_an_error_naming_the_key(tiny_model_dir):
    from transformers import Qwen2_5_VLForConditionalGeneration

    from rova.config.model import LoraConfig
    from rova.models.lora import lora_config

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_dir)
    for targets in (["qkv"], ["q_projj"]):  # qkv exists, but only in the vision tower
        with pytest.raises(ConfigError, match="^model.lora.target_modules"):
            lora_config(model, LoraConfig(target_modules=targets))


# ----------------------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def lora_run(cache_dir, tmp_path_factory):
    """One LoRA GRPO step (beta > 0: the reference pass runs with the adapter disabled), saved by the stage's
    finish with save_merged, plus the before / after parameters and a rollout batch of the trained model."""
    from rova.stages.finish import finish_training_run
    from rova.stages.setup import DistState

    tmp_path = tmp_path_factory.mktemp("lora")
    trainer, cfg, run_dir = make_trainer(cache_dir, tmp_path, *LORA, *STEP, "objective.beta=0.04",
                                         "model.lora.save_merged=true")
    before = snapshot(trainer.model)
    with unequal_rewards():
        result = trainer.train()
    after = snapshot(trainer.model)
    finish_training_run(cfg, run_dir, trainer, trainer.processing_class, result, dist=DistState(), wandb_run=None,
                        resume=None)
    trainer.model.eval()
    torch.manual_seed(0)
    batch = trainer._generate_and_score_completions([trainer.train_dataset[0]] * 4)
    return {"trainer": trainer, "cfg": cfg, "run_dir": run_dir, "before": before, "after": after, "batch": batch}


def test_one_lora_step_changes_only_adapter_weights(lora_run):
    from peft import PeftModel

    trainer, before, after = lora_run["trainer"], lora_run["before"], lora_run["after"]
    assert isinstance(trainer.model, PeftModel)
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable), sorted(trainable)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    lora_b = {n for n in before if ".lora_B." in n}
    assert lora_b <= changed, "every LoRA B (zero at init) moves in the first step"
    assert changed <= trainable, sorted(changed - trainable)
    base = [n for n in before if n not in trainable]
    assert any(".visual." in n for n in base) and all(torch.equal(before[n], after[n]) for n in base)


def test_the_reference_pass_is_the_base_model_with_the_adapter_disabled(lora_run, tiny_model_dir):
    from transformers import Qwen2_5_VLForConditionalGeneration

    trainer, batch = lora_run["trainer"], lora_run["batch"]
    base = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_dir).eval()
    with trainer._reference_model() as ref_model:
        reference = completion_logps(trainer, ref_model, batch)
    policy = completion_logps(trainer, trainer.model, batch)
    torch.testing.assert_close(reference, completion_logps(trainer, base, batch), rtol=0, atol=1e-5)
    assert not torch.allclose(reference, policy, atol=1e-4), "the trained adapter changes the policy"


def test_the_run_saves_the_adapter_and_processor_not_the_full_model(lora_run, tiny_model_dir):
    model_dir = lora_run["run_dir"] / "model"
    names = {p.name for p in model_dir.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "processor_config.json"} <= names, names
    assert not any(n.startswith("model") and n.endswith(".safetensors") for n in names), names
    assert "ref" not in names, "no copy of the adapter for the reference model"
    adapter = json.loads((model_dir / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(tiny_model_dir)
    assert adapter["r"] == 4 and adapter["lora_alpha"] == 8
    summary = json.loads((lora_run["run_dir"] / "summary.json").read_text())
    assert summary["model_dir"] == str(model_dir) and summary["merged_model_dir"] == str(model_dir / "merged")


def test_the_saved_adapter_reloads_through_model_path_with_the_same_logprobs(lora_run):
    from rova.models.loading import load_model_and_processor

    trainer, cfg, batch = lora_run["trainer"], lora_run["cfg"], lora_run["batch"]
    model_cfg = replace(cfg.model, path=str(lora_run["run_dir"] / "model"), build_tiny=False,
                        lora=replace(cfg.model.lora, enabled=False, save_merged=False))
    loaded, processor = load_model_and_processor(model_cfg)
    assert type(loaded).__name__ == "Qwen2_5_VLForConditionalGeneration" and processor is not None
    torch.testing.assert_close(completion_logps(trainer, loaded.eval(), batch),
                               completion_logps(trainer, trainer.model, batch), rtol=0, atol=1e-5)


def test_save_merged_writes_a_plain_checkpoint_with_the_same_logprobs(lora_run):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    trainer, batch = lora_run["trainer"], lora_run["batch"]
    merged_dir = lora_run["run_dir"] / "model" / "merged"
    merged = Qwen2_5_VLForConditionalGeneration.from_pretrained(merged_dir).eval()
    assert not any("lora" in n for n, _ in merged.named_parameters())
    assert AutoProcessor.from_pretrained(merged_dir) is not None
    assert not [p for p in (lora_run["run_dir"] / "model").iterdir() if p.name.startswith(".merged")], "staging left"
    torch.testing.assert_close(completion_logps(trainer, merged, batch),
                               completion_logps(trainer, trainer.model, batch), rtol=0, atol=1e-5)


def test_freeze_vision_without_lora_trains_the_language_model_only(cache_dir, tmp_path):
    trainer, _, _ = make_trainer(cache_dir, tmp_path, "model.freeze_vision=true", *STEP)
    before = snapshot(trainer.model)
    with unequal_rewards():
        trainer.train()
    after = snapshot(trainer.model)
    vision = [n for n in before if n.startswith("model.visual.")]
    language = [n for n in before if n.startswith("model.language_model.")]
    assert vision and language
    assert all(not p.requires_grad for n, p in trainer.model.named_parameters() if n.startswith("model.visual."))
    assert all(torch.equal(before[n], after[n]) for n in vision)
    assert sum(not torch.equal(before[n], after[n]) for n in language) > len(language) // 2


def test_an_adapter_dir_whose_base_is_gone_is_an_error_naming_it(tmp_path):
    from rova.models.lora import adapter_base

    assert adapter_base(str(tmp_path)) == (str(tmp_path), None)  # no adapter_config.json: a plain checkpoint
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path / "gone")}))
    with pytest.raises(RovaError, match="gone.*does not exist"):
        adapter_base(str(tmp_path))


# ----------------------------------------------------------------------------------------------- resume
def test_resume_restores_the_adapter_from_the_checkpoint(cache_dir, tmp_path):
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    overrides = (*LORA, *STEP[1:], "stage.save_steps=1")
    first, _, run_dir = make_trainer(cache_dir, tmp_path, *overrides, "stage.max_steps=1")
    with unequal_rewards():
        first.train()
    checkpoint = run_dir / "checkpoints" / "checkpoint-1"
    saved = load_file(str(checkpoint / "adapter_model.safetensors"))
    assert saved and all("lora_" in k for k in saved)

    class AdapterAtStart(TrainerCallback):
        weights: dict = {}

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            AdapterAtStart.weights = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}

    second, _, _ = make_trainer(cache_dir, tmp_path, *overrides, "stage.max_steps=2", resume_from=str(checkpoint))
    fresh = {n: p.detach().clone() for n, p in second.model.named_parameters() if "lora_B" in n}
    assert all(not t.any() for t in fresh.values()), "a fresh adapter starts with B = 0"
    second.add_callback(AdapterAtStart)
    with unequal_rewards():
        second.train(resume_from_checkpoint=str(checkpoint))
    assert second.state.global_step == 2
    restored = AdapterAtStart.weights
    assert len(restored) == len(saved)
    for key, value in saved.items():
        assert torch.equal(restored[live_name(key)], value), key
    assert any(restored[n].any() for n in fresh), "the restored B is the trained one, not the fresh zeros"


# ----------------------------------------------------------------------------------------------- distributed
@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "zero2"])
def test_lora_with_two_cpu_processes_trains_saves_and_resumes(tmp_path, cache_dir, strategy):
    """Two CPU processes (DDP through torchrun, ZeRO-2 through the DeepSpeed launcher): 2 LoRA steps with a
    frozen vision tower and a reference pass, the adapter (+ merged model) saved. Under ZeRO-2 a relaunch then
    resumes from checkpoint-2, whose DeepSpeed module state (what the engine restores, non-strictly) holds
    exactly the trained adapter. A DDP run on CPU cannot resume yet, LoRA or not: transformers loads
    optimizer.pt with map_location=args.device, "cpu:0" there, which torch refuses for storages saved as "cpu"."""
    from safetensors.torch import load_file
    from transformers import Qwen2_5_VLForConditionalGeneration

    from tests.support.runs import launch

    run_dir = tmp_path / "outputs" / "lora"
    common = (f"distributed={strategy}", "distributed.nproc_per_node=2", *LORA, "model.freeze_vision=true",
              "model.lora.save_merged=true", "objective.beta=0.04", "stage.save_steps=2", "logger=none",
              "data.demo_num_clips=8", f"run.dir={run_dir}")
    first = launch(tmp_path, cache_dir, *common, "stage.max_steps=2", timeout=900)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    assert "2 processes, DistributedType." in first.stdout and "DistributedType.NO" not in first.stdout
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in lines if "loss" in m and "train_loss" not in m]
    assert len(steps) == 2 and all(np.isfinite(m["loss"]) for m in steps)
    assert all(m["branch/clean_completions"] == 8 for m in steps)  # both ranks generated
    checkpoint = run_dir / "checkpoints" / "checkpoint-2"
    for folder in (checkpoint, run_dir / "model"):
        adapter = load_file(str(folder / "adapter_model.safetensors"))
        assert adapter and all("lora_" in key for key in adapter), folder
        assert not (folder / "model.safetensors").exists(), folder
    merged = Qwen2_5_VLForConditionalGeneration.from_pretrained(run_dir / "model" / "merged")
    assert not any("lora" in name for name, _ in merged.named_parameters())

    if strategy == "zero2":
        trained = load_file(str(checkpoint / "adapter_model.safetensors"))
        states = torch.load(checkpoint / "global_step2" / "mp_rank_00_model_states.pt", map_location="cpu",
                            weights_only=False)["module"]
        assert all(torch.equal(states[live_name(key)], value) for key, value in trained.items())
        again = launch(tmp_path, cache_dir, *common, "stage.max_steps=3", "run.extend=true", timeout=900)
        assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["resumed_from"] == str(checkpoint) and summary["global_step"] == 3
        lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in lines if "loss" in m and "train_loss" not in m] == [1, 2, 3]


def test_a_lora_step_on_the_tiny_qwen3_vl_changes_only_adapter_weights(cache_dir, tmp_path):
    """The same contract on the other family (its vision tower has DeepStack mergers; its MLPs share names)."""
    trainer, _, _ = make_trainer(cache_dir, tmp_path, "model=tiny_qwen3_vl", "model.freeze_vision=true", *LORA, *STEP)
    before = snapshot(trainer.model)
    with unequal_rewards():
        trainer.train()
    after = snapshot(trainer.model)
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable), sorted(trainable)
    assert not any(".visual." in n for n in trainable)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert {n for n in before if ".lora_B." in n} <= changed <= trainable


def test_with_lora_the_video_reaches_the_reference_pass_too(cache_dir, tmp_path):
    """TRL builds no reference model under LoRA: the reference pass is the policy with its adapter disabled, and
    the clip must reach it like every other pass (counted per pass, the reference one included)."""
    from rova.training.vision_probe import VisionProbe, attribute_passes

    trainer, _, _ = make_trainer(cache_dir, tmp_path, *LORA, *STEP, "objective.beta=0.04", "stage.num_iterations=2")
    assert trainer.ref_model is None
    counter = VisionProbe(trainer.model)
    attribute_passes(trainer, counter)
    trainer.train()
    counter.close()
    for phase in ("generation", "old_policy", "reference", "policy"):
        assert counter.calls[phase] > 0, f"vision tower never ran in the {phase} pass: {dict(counter.calls)}"
