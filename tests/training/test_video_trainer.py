"""The video GRPO trainer: video reaches the model in generation AND every log-prob pass.

TRL 1.16's GRPOTrainer silently drops video in its log-prob passes; these tests count real calls of the
tiny Qwen2.5-VL's vision tower in each pass of one GRPO step, and show that TRL's own pass makes none.
"""

from __future__ import annotations

import pytest
import torch
from trl import GRPOTrainer

from rova.training.vision_probe import VisionProbe, attribute_passes
from tests.support.trainers import make_trainer


@pytest.mark.parametrize("model", ["tiny", "tiny_qwen3_vl"])
def test_vision_tower_runs_in_generation_and_every_logprob_pass(cache_dir, tmp_path, model):
    # beta > 0 adds the reference pass; num_iterations=2 makes TRL keep old-policy log-probs.
    trainer, cfg, _ = make_trainer(
        cache_dir, tmp_path, "stage.max_steps=1", "objective.beta=0.04", "stage.num_iterations=2",
        "stage.per_device_train_batch_size=4", "stage.num_generations=2", f"model={model}",
    )
    counter = VisionProbe(trainer.model, trainer.ref_model)
    attribute_passes(trainer, counter)
    trainer.train()
    counter.close()
    for phase in ("generation", "old_policy", "reference", "policy"):
        assert counter.calls[phase] > 0, f"vision tower never ran in the {phase} pass: {dict(counter.calls)}"


def test_unmodified_trl_logprob_pass_never_calls_the_vision_tower(cache_dir, tmp_path):
    """The defect our override fixes: TRL's own log-prob pass runs on <|video_pad|> embeddings only."""
    trainer, _, _ = make_trainer(cache_dir, tmp_path, "stage.max_steps=1")
    row = trainer.train_dataset[0]
    rows = [row] * trainer.num_generations
    trainer.model.eval()
    batch = trainer._generate_and_score_completions(rows)
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
    keep = batch["completion_ids"].size(1)
    counter = VisionProbe(trainer.model, trainer.ref_model)
    with torch.no_grad():
        ours, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, keep, visual_rows=batch["visual_rows"])
        ours_calls = counter.calls["other"]
        theirs, _, _ = GRPOTrainer._get_per_token_logps_and_entropies(trainer, trainer.model, ids, mask, keep)
    counter.close()
    assert ours_calls > 0
    assert counter.calls["other"] == ours_calls, "TRL's own pass unexpectedly called the vision tower"
    # Without the clip the log-probs differ: the video content matters to the model.
    assert not torch.allclose(ours, theirs)


def test_batch_larger_than_one_group_keeps_groups_whole(cache_dir, tmp_path):
    trainer, cfg, run_dir = make_trainer(
        cache_dir, tmp_path, "stage.max_steps=1", "stage.per_device_train_batch_size=8", "stage.num_generations=4"
    )
    trainer.train()
    import json

    rollouts = [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    assert len(rollouts) == 2  # two prompt groups in one step of 8 rows
    assert all(len(r["accuracy"]) == 4 for r in rollouts)


@pytest.mark.parametrize("share", ["true", "false"])
def test_loss_pass_logprobs_equal_the_sampled_tokens_logprobs(cache_dir, tmp_path, share):
    """The policy-gradient pass scores each sampled token with the probability it was sampled with (temperature 1,
    no top-p): same clip, same positions, same prompt. A clip that reaches generation but not the loss pass (or
    another row's clip, or shifted positions) shows here as a difference of whole nats."""
    import rova.training.trainer as trainer_module
    from rova.inference.eos import cut_at_eos
    from rova.models.vision_sharing import clip_index_scope

    trainer, _, _ = make_trainer(
        cache_dir, tmp_path, "stage=grpo", "stage.max_steps=1", "stage.num_generations=2",
        "stage.per_device_train_batch_size=4", "stage.max_completion_length=8", "stage.save_steps=100",
        f"model.share_vision_encoding={share}",
    )
    sampled: list[torch.Tensor] = []

    def generate_ids(model, inputs, generation_config, eos_ids):
        index = {k: inputs.pop(k) for k in ("video_clip_index", "image_clip_index") if k in inputs}
        with clip_index_scope(model, **index):
            out = model.generate(**inputs, generation_config=generation_config, return_dict_in_generate=True,
                                 output_logits=True)
        tokens = out.sequences[:, inputs["input_ids"].size(1):]
        logps = torch.log_softmax(torch.stack(out.logits, 1).float(), -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        ids = [cut_at_eos(row, set(eos_ids)) for row in tokens.cpu().tolist()]
        sampled.extend(logps[i, : len(row)] for i, row in enumerate(ids))
        return ids

    scored: list[torch.Tensor] = []
    rollout = trainer._generate_and_score_completions

    def score(inputs):
        batch = rollout(inputs)
        ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
        mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
        with torch.no_grad():
            logps, _, _ = trainer._get_per_token_logps_and_entropies(
                trainer.model, ids, mask, batch["completion_ids"].size(1), 2, visual_rows=batch["visual_rows"])
        scored.extend(logps[i, : int(n)] for i, n in enumerate(batch["completion_mask"].sum(1)))
        return batch

    original = trainer_module.generate_ids
    trainer_module.generate_ids = generate_ids
    trainer._generate_and_score_completions = score
    try:
        trainer.train()
    finally:
        trainer_module.generate_ids = original
    assert len(sampled) == len(scored) == 4 and sum(len(s) for s in scored) > 4
    for at_sampling, in_loss in zip(sampled, scored):
        assert torch.allclose(at_sampling, in_loss, atol=1e-4), (at_sampling, in_loss)
