"""Resuming restores the checkpoint's weights (transformers 5.17 restored none for Qwen2.5-VL: rova/training/loop_fixes.py).

save_pretrained writes Qwen2.5-VL's weights under the checkpoint format's names (`model.layers.*`, `visual.*`);
Trainer's resume loaded them non-strictly under the live names (`model.language_model.layers.*`,
`model.visual.*`), matched nothing and went on from the base weights.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from rova.errors import CheckpointError
from rova.models.checkpoint_weights import SAFE_WEIGHTS, full_weight_files, load_saved_weights
from tests.support.trainers import make_trainer


@pytest.mark.parametrize(("model", "lora"), [("tiny", False), ("tiny_qwen3_vl", False), ("tiny", True)],
                         ids=["qwen2_5_vl", "qwen3_vl", "qwen2_5_vl-lora"])
def test_resume_restores_every_weight_of_the_checkpoint(cache_dir, tmp_path, model, lora):
    trainer, _, run_dir = make_trainer(cache_dir, tmp_path, f"model={model}", f"model.lora.enabled={str(lora).lower()}")
    checkpoint = run_dir / "checkpoints" / "checkpoint-7"
    trainer.save_model(str(checkpoint))  # the weights of a checkpoint, as the trainer writes them
    saved = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    if model == "tiny" and not lora:  # the case that broke: the file's names are not the live ones
        assert set(load_file(str(checkpoint / SAFE_WEIGHTS))).isdisjoint(trainer.model.state_dict())
    with torch.no_grad():
        for p in trainer.model.parameters():
            if p.requires_grad:  # (with LoRA the checkpoint is the adapter: the frozen base is not in it)
                p.add_(0.5)  # what a resumed run starts from: the base weights, not the checkpoint's
    trainer._load_from_checkpoint(str(checkpoint))  # what Trainer.train(resume_from_checkpoint=...) calls
    for name, p in trainer.model.named_parameters():
        assert torch.equal(p, saved[name]), f"{name} not restored from the checkpoint"


def _tiny(model_dir):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(model_dir)


def test_a_checkpoint_missing_a_weight_is_an_error_naming_it(tiny_model_dir, tmp_path):
    model = _tiny(tiny_model_dir)
    weights = load_file(str(tiny_model_dir / SAFE_WEIGHTS))
    assert "model.norm.weight" in weights
    del weights["model.norm.weight"]
    save_file(weights, str(tmp_path / SAFE_WEIGHTS))
    with pytest.raises(CheckpointError, match=r"1 model weights are not in the checkpoint.*model\.language_model\.norm"):
        load_saved_weights(model, full_weight_files(tmp_path))


def test_another_models_checkpoint_is_an_error(tiny_model_dir, tiny_qwen3_model_dir):
    model = _tiny(tiny_qwen3_model_dir)
    with pytest.raises(CheckpointError, match="weights the model does not have"):
        load_saved_weights(model, full_weight_files(tiny_model_dir))


def test_sharded_checkpoints_are_read_through_their_index(tiny_model_dir, tmp_path):
    model = _tiny(tiny_model_dir)
    model.save_pretrained(tmp_path, max_shard_size="20KB")  # several shards and an index
    files = full_weight_files(tmp_path)
    assert files is not None and len(files) > 1 and not (tmp_path / SAFE_WEIGHTS).exists()
    expected = {name: p.detach().clone() for name, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    load_saved_weights(model, files)
    assert all(torch.equal(p, expected[name]) for name, p in model.named_parameters())
    assert full_weight_files(tmp_path / "nowhere") is None


def test_a_model_whose_checkpoint_format_fuses_tensors_is_read_through_from_pretrained(
    tiny_qwen3_model_dir, tmp_path, monkeypatch
):
    """A MoE saved with its experts one by one has no one-to-one name map: from_pretrained converts it instead.
    No tiny model here fuses on save, so the map is made to refuse; the weights really go the fallback way."""
    import rova.models.checkpoint_weights as checkpoint_weights

    model = _tiny(tiny_qwen3_model_dir)
    model.save_pretrained(tmp_path)
    expected = {name: p.detach().clone() for name, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-1.0)

    def refuse(model):
        raise checkpoint_weights.FusedConversion("experts saved one by one")

    monkeypatch.setattr(checkpoint_weights, "saved_to_live_names", refuse)
    calls = []
    original = checkpoint_weights.load_through_from_pretrained
    monkeypatch.setattr(checkpoint_weights, "load_through_from_pretrained",
                        lambda m, folder: calls.append(folder) or original(m, folder))
    load_saved_weights(model, full_weight_files(tmp_path))
    assert calls == [tmp_path]
    assert all(torch.equal(p, expected[name]) for name, p in model.named_parameters())
