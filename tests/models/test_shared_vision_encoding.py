"""Each distinct clip goes through the vision tower once per forward pass (rova/models/vision_sharing.py).

The G completion rows of a prompt share its clip; with sharing on, a pass encodes that clip once and scatters
the embeddings to the G rows. These tests compare shared and per-completion encoding on the real tiny
Qwen2.5-VL: equal log-probs and gradients, and the number of clips the vision tower encodes in every pass of
a T-GRPO step equals the number of distinct clips (clean, shuffled and corrupted views are different clips).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rova.inference.padding import left_pad, right_pad
from rova.inference.prompts import render_prompt
from rova.inference.visual import stack_shared_visual
from rova.training.vision_probe import VisionProbe, attribute_passes
from tests.support.trainers import make_trainer


def _views(trainer, count: int):
    """Clean and corrupted EncodedPrompts of the first `count` dataset rows (distinct objects = distinct clips)."""
    clean, corrupted = [], []
    for i in range(count):
        row = trainer.train_dataset[i]
        text = render_prompt(trainer.processing_class, row["prompt"])
        for view, out in ((trainer.clip_source.clean(row), clean), (trainer.clip_source.corrupted(row, 0), corrupted)):
            out.append(trainer.family.encode(trainer.processing_class, text, view.frames, view.timing, view.is_image))
    return clean, corrupted


def _image_prompt(trainer, seed: int):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which colour dominates?"}]}]
    text = render_prompt(trainer.processing_class, messages)
    f = trainer.family.frame_factor
    frames = np.random.default_rng(seed).integers(0, 256, (1, 2 * f, 3 * f, 3), dtype=np.uint8)
    return trainer.family.encode(trainer.processing_class, text, frames, None, is_image=True)


def _batch(trainer, prompts, seed: int = 0):
    """Left-padded prompts + right-padded random completions (ordinary text tokens) of varied lengths."""
    rng = np.random.default_rng(seed)
    vocab = [i for i in range(len(trainer.processing_class.tokenizer)) if i not in set(trainer.banned_token_ids)]
    completions = [rng.choice(vocab, size=int(rng.integers(3, 9))).tolist() for _ in prompts]
    pad = trainer.processing_class.tokenizer.pad_token_id
    p_ids, p_mask = left_pad([p.input_ids for p in prompts], pad)
    c_ids, c_mask = right_pad(completions, pad)
    return torch.cat([p_ids, c_ids], 1), torch.cat([p_mask, c_mask], 1), c_ids.size(1)


def _logps_and_grads(trainer, rows, ids, mask, keep, batch_size, share: bool, counter: VisionProbe):
    trainer.share_vision_encoding = share
    trainer.model.zero_grad(set_to_none=True)
    with counter.during("shared" if share else "per_row"):
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids, mask, keep, batch_size, visual_rows=rows
        )
    weights = torch.linspace(-1.0, 2.0, logps.numel()).reshape(logps.shape)
    (logps * weights).sum().backward()
    grads = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return logps.detach(), grads


def _assert_same(shared, per_row):
    (logps_s, grads_s), (logps_p, grads_p) = shared, per_row
    assert torch.isfinite(logps_p).all()
    assert (logps_s - logps_p).abs().max().item() <= 1e-5
    assert grads_s.keys() == grads_p.keys()
    assert any(n.startswith("model.visual.") for n in grads_p), "the vision tower got no gradient"
    for name, g in grads_p.items():
        diff = (grads_s[name] - g).norm().item()
        assert diff <= 1e-4 * g.norm().item() + 1e-12, f"{name}: |shared - per-row| = {diff}, |per-row| = {g.norm()}"


MODELS = pytest.mark.parametrize("model", ["tiny", "tiny_qwen3_vl"])


@MODELS
def test_shared_encoding_gives_the_same_logps_and_gradients(cache_dir, tmp_path, model):
    """3 prompts x (G=3 clean + G=3 corrupted rows), 6 rows per forward: one encoding per distinct clip (for
    Qwen3-VL the DeepStack features too)."""
    trainer, _, _ = make_trainer(cache_dir, tmp_path, "stage=tgrpo", "corruption=weather", f"model={model}")
    assert trainer.share_vision_encoding  # the default
    clean, corrupted = _views(trainer, 3)
    group = 3
    prompts = [p for views in (clean, corrupted) for p in views for _ in range(group)]  # clean rows, then corrupted
    rows = [p.visual for p in prompts]
    ids, mask, keep = _batch(trainer, prompts)
    trainer.model.train()
    counter = VisionProbe(trainer.model)
    shared = _logps_and_grads(trainer, rows, ids, mask, keep, 6, True, counter)
    per_row = _logps_and_grads(trainer, rows, ids, mask, keep, 6, False, counter)
    counter.close()
    _assert_same(shared, per_row)
    # 18 rows in 3 forwards of 6 rows; each forward holds 2 distinct clips (3 rows each).
    assert counter.calls["shared"] == counter.calls["per_row"] == 3
    assert counter.clips["per_row"] == 18
    assert counter.clips["shared"] == 6
    assert counter.patches["per_row"] == group * counter.patches["shared"]


@MODELS
def test_mixed_image_and_video_batch(cache_dir, tmp_path, model):
    """Image rows next to video rows in one forward: each image and each clip encoded once."""
    trainer, _, _ = make_trainer(cache_dir, tmp_path, "stage=tgrpo", "corruption=weather", f"model={model}")
    clean, corrupted = _views(trainer, 2)
    images = [_image_prompt(trainer, 0), _image_prompt(trainer, 1)]
    group = 3
    distinct = [clean[0], images[0], corrupted[0], images[1], clean[1]]
    prompts = [p for p in distinct for _ in range(group)]
    rows = [p.visual for p in prompts]
    ids, mask, keep = _batch(trainer, prompts, seed=1)
    trainer.model.train()
    counter = VisionProbe(trainer.model)
    shared = _logps_and_grads(trainer, rows, ids, mask, keep, len(prompts), True, counter)
    per_row = _logps_and_grads(trainer, rows, ids, mask, keep, len(prompts), False, counter)
    counter.close()
    _assert_same(shared, per_row)
    # One forward: the images in one vision-tower call, the videos in another.
    assert counter.calls["shared"] == counter.calls["per_row"] == 2
    assert counter.clips["per_row"] == group * len(distinct)
    assert counter.clips["shared"] == len(distinct)


def test_clip_index_numbers_distinct_clips_in_order_of_first_use():
    video = {"pixel_values_videos": torch.randn(8, 3), "video_grid_thw": torch.tensor([[2, 2, 2]]),
             "second_per_grid_ts": torch.tensor([0.5])}
    other = {"pixel_values_videos": torch.randn(8, 3), "video_grid_thw": torch.tensor([[2, 2, 2]]),
             "second_per_grid_ts": torch.tensor([1.0])}
    image = {"pixel_values": torch.randn(4, 3), "image_grid_thw": torch.tensor([[1, 2, 2]])}
    batch = stack_shared_visual([other, video, image, other, video, image, video])
    assert batch["video_clip_index"] == [0, 1, 0, 1, 1]
    assert batch["image_clip_index"] == [0, 0]
    distinct = torch.cat([other["pixel_values_videos"], video["pixel_values_videos"]])
    assert torch.equal(batch["pixel_values_videos"], distinct)
    assert torch.equal(batch["pixel_values"], image["pixel_values"])
    # Grids and time intervals stay per row: M-RoPE positions are computed for every row.
    assert batch["video_grid_thw"].shape[0] == 5
    assert batch["second_per_grid_ts"].tolist() == [1.0, 0.5, 1.0, 0.5, 0.5]


STEP_OVERRIDES = (
    "stage=tgrpo", "corruption=weather", "stage.max_steps=1", "objective.beta=0.04", "stage.num_iterations=2",
    "stage.per_device_train_batch_size=8", "stage.num_generations=4", "tgrpo.shuffled_generations=2",
    "tgrpo.corrupted_generations=2", "reward.w_kl=1.0", "reward.kl_loss_coef=0.5",
)


@pytest.mark.parametrize(("model", "share"), [("tiny", True), ("tiny", False), ("tiny_qwen3_vl", True)],
                         ids=["shared", "per_completion", "qwen3_vl-shared"])
def test_every_pass_encodes_each_distinct_clip_once(cache_dir, tmp_path, model, share):
    """One T-GRPO step, 2 prompts per device, G=4 clean + 2 shuffled + 2 corrupted completions per prompt."""
    trainer, _, _ = make_trainer(cache_dir, tmp_path, *STEP_OVERRIDES, f"model={model}")
    trainer.share_vision_encoding = share
    assert trainer.ref_model is not None and trainer.branch_sizes == {"shuffled": 2, "corrupted": 2}
    counter = VisionProbe(trainer.model, trainer.ref_model)
    attribute_passes(trainer, counter)
    trainer.train()
    counter.close()
    # Distinct clips per pass (2 prompts; clean, shuffled, corrupted views are different clips):
    #   generation: 2 clean + 2 shuffled + 2 corrupted (prefill only; decoding steps never re-encode)
    #   kl_reward:  the 8 clean rows under their clean clip, then under their corrupted clip: 2 + 2
    #   old_policy, reference: 12 trained rows (8 clean, 4 corrupted) in chunks of 8 rows: 2 + 2
    #   policy:     the 12 trained rows in one micro-batch: 2 clean + 2 corrupted clips
    #   kl_aux:     the 8 clean rows under their clean clip, then under their corrupted clip: 2 + 2
    distinct = {"generation": 6, "kl_reward": 4, "old_policy": 4, "reference": 4, "policy": 4, "kl_aux": 4}
    rows = {"generation": 16, "kl_reward": 16, "old_policy": 12, "reference": 12, "policy": 12, "kl_aux": 16}
    expected = distinct if share else rows
    assert dict(counter.clips) == expected, dict(counter.clips)
    assert counter.calls["generation"] == 1


def test_greedy_generation_is_the_same_with_shared_encoding(cache_dir, tmp_path):
    trainer, _, _ = make_trainer(cache_dir, tmp_path, "stage=tgrpo", "corruption=weather")
    clean, corrupted = _views(trainer, 2)
    prompts = [p for p in (clean[0], corrupted[0], clean[1]) for _ in range(3)]
    trainer.model.eval()
    counter = VisionProbe(trainer.model)
    out = {}
    for share in (False, True):
        trainer.share_vision_encoding = share
        with counter.during(str(share)):
            out[share] = trainer.generate_rows(prompts, greedy=True).ids
    counter.close()
    assert out[True] == out[False]
    assert counter.clips["True"] == 3 and counter.clips["False"] == 9


def test_eval_and_cot_generators_encode_a_repeated_prompt_once(cache_dir, tmp_path):
    """stage=cot sends each record's prompt k times (the same object): one vision-tower run, same completions."""
    from rova.inference.hf_generation import HFGenerator as Generator

    trainer, _, _ = make_trainer(cache_dir, tmp_path)
    clean, _ = _views(trainer, 2)
    prompts = [clean[0]] * 3 + [clean[1]] * 3
    trainer.model.eval()
    counter = VisionProbe(trainer.model)
    out = {}
    for share in (False, True):
        generator = Generator(trainer.model, trainer.processing_class, max_new_tokens=8, share_vision_encoding=share)
        with counter.during(str(share)):
            out[share] = generator.generate(prompts)
    counter.close()
    assert out[True] == out[False]
    assert counter.clips["True"] == 2 and counter.clips["False"] == 6


def test_rows_sharing_a_clip_must_share_its_grid():
    pixels = torch.randn(8, 3)
    a = {"pixel_values_videos": pixels, "video_grid_thw": torch.tensor([[2, 2, 2]])}
    b = {"pixel_values_videos": pixels, "video_grid_thw": torch.tensor([[1, 2, 4]])}
    with pytest.raises(ValueError, match="different video_grid_thw"):
        stack_shared_visual([a, b])

