"""Regression tests for the RL-core review's defects, on the real tiny Qwen2.5-VL and the real trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rova.inference.prompts import render_prompt
from tests.support.families import encode_prompt
from tests.support.trainers import make_trainer


class LmHeadPositions:
    """Records how many positions each call of the LM head projects onto the vocabulary."""

    def __init__(self, model):
        self.positions: list[int] = []
        self.handle = model.lm_head.register_forward_pre_hook(lambda _m, args: self.positions.append(args[0].shape[1]))

    def close(self):
        self.handle.remove()


def _clean_and_other(trainer):
    row = trainer.train_dataset[0]
    text = render_prompt(trainer.processing_class, row["prompt"])
    clean = trainer.clip_source.clean(row)
    other = np.random.default_rng(0).integers(0, 256, clean.frames.shape, dtype=np.uint8)
    return (encode_prompt(trainer.processing_class, text, clean.frames, clean.sample_fps),
            encode_prompt(trainer.processing_class, text, other, clean.sample_fps))


def test_kl_passes_project_only_the_completion_span(tmp_path, cache_dir):
    """Defect 6: the KL reward and auxiliary KL loss built logits for the whole (video) prompt."""
    trainer, _, _ = make_trainer(cache_dir, tmp_path, "stage=tgrpo", "corruption=weather", "reward.kl_loss_coef=0.5")
    enc_clean, enc_other = _clean_and_other(trainer)
    words = trainer.processing_class.tokenizer("the answer is", add_special_tokens=False)["input_ids"]
    completions = [words[:3], words[:2], words[:1]]
    assert len(words) >= 3
    prompt_len = len(enc_clean.input_ids)
    assert prompt_len > 20
    heads = LmHeadPositions(trainer.model)
    kl = trainer._consistency_kl([enc_clean.input_ids] * 3, completions, [enc_clean.visual] * 3, [enc_other.visual] * 3)
    assert np.all(kl > 0)
    assert heads.positions and max(heads.positions) == 3 + 1, heads.positions

    heads.positions.clear()
    from rova.inference.padding import left_pad, right_pad

    p_ids, p_mask = left_pad([enc_clean.input_ids] * 2, 0)
    c_ids, c_mask = right_pad(completions[:2], 0)
    inputs = {
        "prompt_ids": p_ids, "prompt_mask": p_mask, "completion_ids": c_ids, "completion_mask": c_mask,
        "visual_rows": [enc_clean.visual] * 2, "corrupted_visual_rows": [enc_other.visual] * 2,
        "is_clean_row": torch.tensor([True, True]),
    }
    aux = trainer._kl_aux_loss(trainer.model, inputs, coef=0.5)
    aux.backward()
    assert aux.item() > 0 and max(heads.positions) == c_ids.size(1) + 1, heads.positions
    heads.close()


def test_kl_reward_skips_the_forwards_when_the_corrupted_clip_is_the_clean_one(tmp_path, cache_dir):
    """A corruption mix leaves some clips clean (corruption=rova: 40 %); their corrupted view is the clean clip,
    encoded again. Its KL is exactly 0 (both passes see the same inputs): no forward is run for it, and the value is
    the one the two forwards give. A chunk with a corrupted clip still runs both."""
    trainer, _, _ = make_trainer(cache_dir, tmp_path, "stage=tgrpo", "corruption=weather")
    enc_clean, enc_other = _clean_and_other(trainer)
    row = trainer.train_dataset[0]
    clean = trainer.clip_source.clean(row)
    text = render_prompt(trainer.processing_class, row["prompt"])
    enc_again = encode_prompt(trainer.processing_class, text, clean.frames.copy(), clean.sample_fps)
    assert enc_again.visual is not enc_clean.visual
    words = trainer.processing_class.tokenizer("the answer is", add_special_tokens=False)["input_ids"]
    completions = [words[:3], words[:2]]
    ids = [enc_clean.input_ids] * 2

    heads = LmHeadPositions(trainer.model)
    kl = trainer._consistency_kl(ids, completions, [enc_clean.visual] * 2, [enc_again.visual] * 2)
    assert heads.positions == [] and kl.dtype == np.float32 and kl.tolist() == [0.0, 0.0]

    from rova.inference.padding import left_pad, right_pad
    from rova.rewards import sequence_kl

    p_ids, p_mask = left_pad(ids, 0)
    c_ids, c_mask = right_pad(completions, 0)
    full_ids, full_mask = torch.cat([p_ids, c_ids], 1), torch.cat([p_mask, c_mask], 1)
    with torch.no_grad():
        logits = [trainer._completion_logits(trainer.model, full_ids, full_mask, [v] * 2, c_ids.size(1))
                  for v in (enc_clean.visual, enc_again.visual)]
    assert sequence_kl(*logits, c_mask).tolist() == [0.0, 0.0]

    heads.positions.clear()
    mixed = trainer._consistency_kl(ids, completions, [enc_clean.visual] * 2, [enc_again.visual, enc_other.visual])
    assert len(heads.positions) == 2 and mixed[0] == 0.0 and mixed[1] > 0
    heads.close()


def test_kl_reward_skips_a_clean_clip_chunk_only_where_every_process_does(tmp_path, cache_dir, monkeypatch):
    """Under ZeRO-3 the KL forwards gather parameters: a process whose chunk holds only clean clips still runs its
    forwards when another process's same chunk does not, or the two would wait on each other forever."""
    trainer, _, _ = make_trainer(cache_dir, tmp_path, "stage=tgrpo", "corruption=weather", "stage.num_generations=2",
                                 "stage.per_device_train_batch_size=2")
    enc_clean, enc_other = _clean_and_other(trainer)
    clean, other = enc_clean.visual, enc_other.visual
    peer = torch.tensor([0, 1])  # the second process: its first chunk has a corrupted clip, its second none

    def gather_with_peer(tensor):
        return torch.cat([tensor, peer.to(tensor.device, tensor.dtype)])

    monkeypatch.setattr(type(trainer.accelerator), "num_processes", property(lambda self: 2))
    monkeypatch.setattr(trainer.accelerator, "pad_across_processes", lambda tensor, **kwargs: tensor)
    monkeypatch.setattr(trainer.accelerator, "gather", gather_with_peer)
    assert trainer._clean_clip_chunks([clean] * 4, [clean] * 4) == [False, True]
    assert trainer._clean_clip_chunks([clean] * 4, [clean, clean, other, clean]) == [False, False]
    heads = LmHeadPositions(trainer.model)
    words = trainer.processing_class.tokenizer("the answer is", add_special_tokens=False)["input_ids"]
    kl = trainer._consistency_kl([enc_clean.input_ids] * 4, [words[:2]] * 4, [clean] * 4, [clean] * 4)
    assert len(heads.positions) == 2 and kl.tolist() == [0.0] * 4  # chunk 1 ran both forwards, chunk 2 none
    heads.close()


def test_batch_scaled_advantages_use_the_std_over_all_processes(tmp_path, cache_dir, monkeypatch):
    """Defect 7: scale_rewards=batch divided by this process's std; TRL divides by the std over all processes."""
    trainer, _, run_dir = make_trainer(cache_dir, tmp_path, "objective.scale_rewards=batch", "stage.num_generations=4",
                                       "stage.per_device_train_batch_size=4")
    peer = np.array([0.0, 3.0, 3.0, 0.0])  # a second process's rewards
    reduce = trainer.accelerator.reduce

    def reduce_with_peer(tensor, reduction="sum"):
        if tensor.dtype == torch.float64 and tensor.numel() == 3:  # a [sum, count, sum of squares] reduction
            return tensor + torch.tensor([peer.sum(), peer.size, np.square(peer).sum()], dtype=tensor.dtype)
        return reduce(tensor, reduction=reduction)

    monkeypatch.setattr(trainer.accelerator, "reduce", reduce_with_peer)
    # Fixed rewards for this process's group, so the check never degenerates to an all-equal group.
    import rova.training.trainer as trainer_module

    score_rollout = trainer_module.score_rollout

    def fixed_rewards(*args, **kwargs):
        scores = score_rollout(*args, **kwargs)
        scores["clean"].total = np.array([[1.0, 0.0, 0.0, 2.0]])
        return scores

    monkeypatch.setattr(trainer_module, "score_rollout", fixed_rewards)
    trainer.model.train()
    batch = trainer._generate_and_score_completions([trainer.train_dataset[0]] * 4)
    rewards = np.array([1.0, 0.0, 0.0, 2.0])
    expected = (rewards - rewards.mean()) / (np.concatenate([rewards, peer]).std(ddof=1) + 1e-4)
    np.testing.assert_allclose(batch["advantages"].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_metrics_report_branches_and_tokens_as_trained(tmp_path, cache_dir):
    """Defect 9: metrics covered the clean group only, lengths included untrained shuffled completions, and
    num_input_tokens_seen counted completion tokens of one rank only."""
    trainer, _, _ = make_trainer(cache_dir, tmp_path, "stage=tgrpo", "corruption=weather", "stage.num_generations=4",
                                 "stage.per_device_train_batch_size=4")
    trainer.model.train()
    before = trainer.state.num_input_tokens_seen
    batch = trainer._generate_and_score_completions([trainer.train_dataset[0]] * 4)
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items() if v}
    for name in ("reward/clean/mean", "reward/corrupted/mean", "reward/mean", "frac_reward_zero_std/clean",
                 "frac_reward_zero_std/corrupted", "frac_reward_zero_std", "completions/shuffled/mean_length",
                 "accuracy/corrupted", "rewards/corrupted/format/mean"):
        assert name in metrics, name
    trained_lengths = batch["completion_mask"].sum(1).float()
    assert metrics["completions/mean_length"] == pytest.approx(trained_lengths.mean().item())
    tokens = int(batch["prompt_mask"].sum() + batch["completion_mask"].sum())
    assert trainer.state.num_input_tokens_seen - before == tokens
    assert metrics["num_tokens"] == trainer.state.num_input_tokens_seen


def test_trl_reward_functions_are_a_guard_never_called(tmp_path, cache_dir):
    """Defect 11: the reward functions handed to TRL were never called; now they fail loudly if ever reached."""
    from rova.stages.builders import rollout_scored_by_rova

    trainer, _, _ = make_trainer(cache_dir, tmp_path, "stage.max_steps=1")
    assert trainer.reward_funcs == [rollout_scored_by_rova]
    with pytest.raises(RuntimeError, match="reward registry|rova.rewards.registry"):
        rollout_scored_by_rova(prompts=["p"], completions=["c"])
    trainer.train()  # a whole step scores through the registry without touching TRL's reward path


def test_grpo_stage_trains_the_clean_branch_only_and_tgrpo_all(tmp_path, cache_dir):
    """Branches are switched by config (tgrpo.branches), not by comparing stage names."""
    grpo, _, _ = make_trainer(cache_dir, tmp_path / "a")
    assert grpo.branch_sizes == {"shuffled": 0, "corrupted": 0}
    temporal, _, _ = make_trainer(cache_dir, tmp_path / "b", "tgrpo.branches=[clean,shuffled]")
    assert temporal.branch_sizes["shuffled"] > 0 and temporal.branch_sizes["corrupted"] == 0


def test_vllm_sampling_logprobs_feed_the_importance_sampling_ratio(tmp_path, cache_dir):
    """Defect 8 (trainer side): vLLM's sampling log-probs reach TRL's importance-sampling correction.

    vLLM cannot run here; the rollout it would return (token ids + sampling log-probs) is handed to the
    trainer's loss-row phase directly, and the loss TRL computes from it is checked to be finite.
    """
    from rova.training.scoring import LossRows, plan_generation
    from rova.training.trainer import Generation

    trainer, _, _ = make_trainer(cache_dir, tmp_path, "stage.num_generations=2", "stage.per_device_train_batch_size=2")
    trainer.use_vllm = True
    trainer.vllm_importance_sampling_correction = True
    trainer.vllm_importance_sampling_mode, trainer.vllm_importance_sampling_clip_min = "sequence_mask", None
    trainer.vllm_importance_sampling_clip_max = 3.0
    heads = [trainer.train_dataset[0]]
    prompts = trainer._encode_views(heads, trainer._build_views(heads, 0))
    plan = plan_generation(1, {"clean": 2}, {"clean": [True]})
    words = trainer.processing_class.tokenizer("the answer is", add_special_tokens=False)["input_ids"]
    eos = next(iter(trainer.eos_token_ids))
    ids = [words[:2] + [eos], words[:1] + [eos]]
    sampled = [[-0.5, -0.25, -0.125], [-1.0, -2.0]]
    rows = LossRows([0, 1], np.array([1.0, -1.0]), np.array([True, True]), 2)
    trainer.model.train()
    batch = trainer._loss_batch(plan, prompts, Generation(ids, sampled), rows, "train")
    old, mask = batch["old_per_token_logps"], batch["completion_mask"]
    torch.testing.assert_close(batch["sampling_per_token_logps"][0], torch.tensor(sampled[0]))
    assert torch.isnan(batch["sampling_per_token_logps"][1, 2])
    expected = torch.exp(((old - torch.nan_to_num(batch["sampling_per_token_logps"])) * mask).sum(-1, keepdim=True))
    expected = expected.masked_fill(expected > 3.0, 0.0)
    torch.testing.assert_close(batch["importance_sampling_ratio"], expected)
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop, which is not running here
    loss = trainer._compute_loss(trainer.model, batch)
    assert torch.isfinite(loss)


def test_padding_rows_of_the_embedding_are_never_sampled(tmp_path, cache_dir):
    """Qwen2.5-VL pads its 151,665-token tokenizer to 151,936 embedding rows; HF generate could sample those
    rows (text no tokenizer decodes). They are banned with the vision placeholders, as on the vLLM path."""
    from tests.support.families import VISION_TOKENS, banned_token_ids

    trainer, _, _ = make_trainer(cache_dir, tmp_path, "stage.max_steps=1")
    tokenizer = trainer.processing_class.tokenizer
    vision = [tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS]
    assert banned_token_ids(tokenizer, len(tokenizer) + 3) == vision + [len(tokenizer) + i for i in range(3)]
    assert banned_token_ids(tokenizer, None) == vision
    vocab = trainer.model.get_output_embeddings().weight.shape[0]
    assert trainer.model.config.get_text_config().vocab_size == vocab
    assert trainer.generation_config.suppress_tokens == banned_token_ids(tokenizer, vocab)
