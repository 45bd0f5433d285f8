"""TW-GRPO's token weights (rova/training/token_weights.py): the chunked computation equals a plain full
materialisation of the written formula, the trainer feeds it the right positions, and scaling the per-token
advantage by w_t is exactly TW-GRPO's weighted loss for TRL's clipped surrogate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.training.token_weights import (chunk_positions, group_token_kl, group_token_weights, lm_head_log_probs,
                                         normalised_weights)


def reference_weights(logps: torch.Tensor, lengths: list[int], alpha: float) -> torch.Tensor:
    """The written formula on the full [G, L, V] log-probs of one group, L = its longest completion (the release's
    `compute_token_importance_kl_logs_uniform` for one prompt per device): [G, L] weights times the mask."""
    group, width, vocab = logps.shape
    mask = torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    p = torch.where(mask.unsqueeze(-1), logps, torch.full_like(logps, -math.log(vocab)))
    m = p.mean(dim=0, keepdim=True)
    d = torch.clamp(m - p, min=-11.0, max=11.0)
    kl = (torch.exp(d) - d - 1).sum(dim=-1).mean(dim=0)
    n = (kl - kl.min()) / (kl.max() - kl.min() + 1e-8)
    w = 1.0 + (alpha - 1.0) * n
    return w.unsqueeze(0).expand(group, width) * mask


def chunked_weights(logps: torch.Tensor, lengths: list[int], alpha: float, chunk: int) -> torch.Tensor:
    """rova's chunked weights, masked and padded like reference_weights: [G, max(lengths)]."""
    longest = max(lengths)
    asked = []

    def log_probs_at(start: int, end: int) -> torch.Tensor:
        asked.append(end - start)
        return logps[:, start:end]

    w = group_token_weights(log_probs_at, lengths, alpha, chunk)
    assert w.shape == (longest,) and max(asked) <= chunk  # never more than `chunk` positions at once
    mask = torch.arange(longest).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return w.unsqueeze(0) * mask


@st.composite
def groups(draw):
    size = draw(st.integers(1, 4))
    lengths = draw(st.lists(st.integers(0, 9), min_size=size, max_size=size).filter(lambda n: max(n) > 0))
    vocab = draw(st.integers(2, 40))
    padding = draw(st.integers(0, 3))  # other groups of the batch pad further: never read
    scale = draw(st.sampled_from([0.1, 1.0, 5.0, 40.0]))  # 40: |m - p| beyond the clamp at 11
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(size, max(lengths) + padding, vocab, generator=generator, dtype=torch.float64) * scale
    return torch.log_softmax(logits, dim=-1), lengths


@settings(max_examples=150, deadline=None)
@given(groups(), st.integers(1, 12), st.floats(0.1, 3.0))
def test_chunked_weights_equal_the_full_materialisation_reference(group, chunk, alpha):
    logps, lengths = group
    longest = max(lengths)
    expected = reference_weights(logps[:, :longest], lengths, alpha)
    got = chunked_weights(logps, lengths, alpha, chunk)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    # The trainer's float32 path: the same within 1e-6 as well.
    got32 = chunked_weights(logps.float(), lengths, alpha, chunk)
    torch.testing.assert_close(got32.double(), reference_weights(logps[:, :longest].float(), lengths, alpha).double(),
                               rtol=0, atol=1e-6)


def test_hand_computed_kl_and_weights():
    """G = 2, V = 2. Position 0: p_1 = log(.5, .5), p_2 = log(.9, .1); position 1: only row 1 (row 2 ended:
    uniform) with p_1 = log(.5, .5) = uniform, so kl_1 = 0."""
    p = torch.log(torch.tensor([[[0.5, 0.5], [0.5, 0.5]], [[0.9, 0.1], [0.3, 0.7]]], dtype=torch.float64))
    m = (p[0, 0] + p[1, 0]) / 2
    kl0 = float(sum((torch.exp(m - p[g, 0]) - (m - p[g, 0]) - 1).sum() for g in range(2)) / 2)
    kl = group_token_kl(lambda s, e: p[:, s:e], [2, 1], 2, chunk=1)
    torch.testing.assert_close(kl, torch.tensor([kl0, 0.0], dtype=torch.float64))
    assert kl0 > 0.1
    w = normalised_weights(kl, alpha=1.7)
    torch.testing.assert_close(w, torch.tensor([1.0 + 0.7 * kl0 / (kl0 + 1e-8), 1.0], dtype=torch.float64))


def test_equal_kl_everywhere_gives_weight_one():
    """Identical completions (every kl_t = 0) and a constant non-zero kl both normalise to n_t = 0, w_t = 1."""
    for seed in range(20):  # the mean of equal rows can round by an ulp: kl_t ~ 1e-16, n_t ~ 1e-8 at most
        gen = torch.Generator().manual_seed(seed)
        same = torch.log_softmax(torch.randn(1, 5, 7, generator=gen, dtype=torch.float64), dim=-1).expand(3, 5, 7)
        w = group_token_weights(lambda s, e: same[:, s:e], [5, 5, 5], 1.7, 2)
        torch.testing.assert_close(w, torch.ones(5, dtype=torch.float64), rtol=0, atol=1e-6)
    assert torch.equal(normalised_weights(torch.full((4,), 2.5), 1.7), torch.ones(4))


def test_a_single_position_gives_weight_one():
    logps = torch.log_softmax(torch.randn(4, 1, 9), dim=-1)
    w = group_token_weights(lambda s, e: logps[:, s:e], [1, 1, 0, 1], 1.7, 3)
    assert torch.equal(w, torch.ones(1))


def test_alpha_bounds_the_weights_and_the_most_disputed_position_gets_alpha():
    logps = torch.log_softmax(torch.randn(4, 6, 11, dtype=torch.float64) * 3, dim=-1)
    w = group_token_weights(lambda s, e: logps[:, s:e], [6, 6, 4, 5], 1.7, 4)
    assert float(w.min()) == pytest.approx(1.0) and float(w.max()) == pytest.approx(1.7, abs=1e-6)


def test_chunk_positions_keeps_a_chunk_tensor_under_the_budget():
    assert chunk_positions(8, 151936, budget=1 << 24) == (1 << 24) // (8 * 151936) == 13
    assert chunk_positions(8, 151936, budget=10) == 1  # never 0


def test_lm_head_log_probs_projects_only_the_asked_positions_at_the_temperature():
    hidden = torch.randn(2, 5, 3)
    head = torch.nn.Linear(3, 7, bias=False)
    seen = []
    log_probs_at = lm_head_log_probs(hidden, lambda h: seen.append(h.shape[1]) or head(h), temperature=0.5)
    torch.testing.assert_close(log_probs_at(1, 3), torch.log_softmax(head(hidden[:, 1:3]) / 0.5, dim=-1))
    assert seen == [2]


# ---------------------------------------------------------------- the trainer: positions and the loss it feeds


@pytest.fixture(scope="module")
def trainer(cache_dir, tmp_path_factory):
    from tests.support.trainers import make_trainer

    trainer, _, _ = make_trainer(cache_dir, tmp_path_factory.mktemp("tw"), "objective=tw_grpo",
                                 "stage.num_generations=4", "stage.per_device_train_batch_size=4",
                                 "stage.max_completion_length=8")
    return trainer


REWARDS = np.array([1.0, 0.0, 0.0, 2.0])


@pytest.mark.parametrize("rows_per_forward", [4, 3])
def test_the_rollout_scales_each_advantage_by_its_groups_weights_from_the_full_logits(trainer, monkeypatch,
                                                                                        rows_per_forward):
    """The trainer's chunked, hidden-state weights equal the reference on the model's full completion logits: a
    position off by one (hidden state t predicts token t + 1) or another group's rows would not. The policy passes
    run per_device_train_batch_size rows at a time (3: a group of 4 in two forwards)."""
    import rova.training.trainer as trainer_module
    from rova.training.trainer import completion_span_logits

    score_rollout = trainer_module.score_rollout

    def fixed_rewards(*args, **kwargs):
        scores = score_rollout(*args, **kwargs)
        scores["clean"].total = REWARDS.reshape(1, 4).copy()
        return scores

    monkeypatch.setattr(trainer_module, "score_rollout", fixed_rewards)
    eos = sorted(trainer.eos_token_ids)[0]
    completions = [[41, 42, 43, eos], [43, eos], [41, 45, 44, 42, 43, 41], [45, 45, 44]]  # no vision placeholder (5, 6)
    monkeypatch.setattr(trainer, "generate_rows", lambda prompts, greedy=False: trainer_module.Generation(completions))
    monkeypatch.setattr(trainer.args, "per_device_train_batch_size", rows_per_forward)
    trainer.model.train()
    batch = trainer._generate_and_score_completions([trainer.train_dataset[0]] * 4)
    advantages, mask = batch["advantages"], batch["completion_mask"]
    assert advantages.shape == mask.shape == (4, 6)

    lengths = [len(c) for c in completions]
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    attention = torch.cat([batch["prompt_mask"], mask], dim=1)
    with torch.no_grad():
        logits = completion_span_logits(trainer.model, trainer._model_inputs(ids, attention, batch["visual_rows"]), 6)
    expected_w = reference_weights(torch.log_softmax(logits.double(), dim=-1), lengths, alpha=1.7)
    plain = (REWARDS - REWARDS.mean()) / (REWARDS.std(ddof=1) + 1e-4)
    expected = torch.tensor(plain).unsqueeze(1) * expected_w
    torch.testing.assert_close(advantages.double(), expected, rtol=1e-4, atol=1e-5)
    weights = advantages / torch.tensor(plain, dtype=torch.float32).unsqueeze(1)
    assert float(weights[mask.bool()].min()) >= 1.0 - 1e-5 and float(weights.max()) == pytest.approx(1.7, abs=1e-4)


def _weighted_clipped_reference(logps, old, advantages, weights, mask, loss_type, eps_low, eps_high, num_items):
    """TW-GRPO's loss written out: -(w_t * min(r A, clip(r) A)) summed over the tokens / their number."""
    ratio = torch.exp(logps - old)
    a = advantages.unsqueeze(1)
    surrogate = torch.min(ratio * a, torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * a)
    per_token = -weights * surrogate * mask
    return per_token.sum() / (mask.sum() if loss_type == "bnpo" else num_items)


@pytest.mark.parametrize("loss_type", ["bnpo", "dapo"])
def test_scaling_the_advantage_by_w_is_the_weighted_clipped_loss_of_trl(trainer, monkeypatch, loss_type):
    """TRL 1.16's own _compute_loss given [B, T] advantages A_i * w_t equals the directly weighted loss, value and
    gradient, with ratios inside and outside the clip range and advantages of both signs."""
    from trl import GRPOTrainer

    gen = torch.Generator().manual_seed(0)
    rows, width = 4, 6
    logps = (torch.randn(rows, width, generator=gen) * 0.3 - 1.0).requires_grad_()
    old = logps.detach() + torch.randn(rows, width, generator=gen) * 0.4  # ratios from ~0.3 to ~3: clipped both ways
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], [1] * 6, [1, 1, 1, 0, 0, 0]], dtype=torch.long)
    advantages = torch.tensor([1.2, -0.7, -0.5, 0.9])
    weights = (1.0 + 0.7 * torch.rand(rows, width, generator=gen)) * mask
    monkeypatch.setattr(trainer, "_get_per_token_logps_and_entropies",
                        lambda *a, **k: (logps, torch.zeros(rows, width), None))
    monkeypatch.setattr(trainer, "loss_type", loss_type)
    monkeypatch.setattr(trainer, "current_gradient_accumulation_steps", 1, raising=False)
    inputs = {
        "prompt_ids": torch.ones(rows, 2, dtype=torch.long), "prompt_mask": torch.ones(rows, 2, dtype=torch.long),
        "completion_ids": torch.ones(rows, width, dtype=torch.long), "completion_mask": mask,
        "advantages": advantages.unsqueeze(1) * weights, "old_per_token_logps": old,
        "num_items_in_batch": mask.sum() * trainer.args.steps_per_generation,
    }
    trainer.model.train()
    loss = GRPOTrainer._compute_loss(trainer, trainer.model, inputs)
    (grad,) = torch.autograd.grad(loss, logps)
    expected = _weighted_clipped_reference(logps, old, advantages, weights, mask, loss_type, trainer.epsilon_low,
                                           trainer.epsilon_high, mask.sum())
    (expected_grad,) = torch.autograd.grad(expected, logps)
    assert (trainer.epsilon_low, trainer.epsilon_high) == (0.2, 0.28)
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-6, atol=1e-7)
    assert float(grad.abs().sum()) > 0 and int((grad == 0).logical_and(mask.bool()).sum()) > 0  # some tokens clipped


def test_with_lora_the_weights_are_the_adapted_policys(cache_dir, tmp_path, monkeypatch):
    """The weights' pass reaches the backbone through PEFT's wrapper with the adapter active (not the base model)."""
    import rova.training.trainer as trainer_module
    from rova.training.trainer import completion_span_logits
    from tests.support.trainers import make_trainer

    trainer, _, _ = make_trainer(cache_dir, tmp_path, "objective=tw_grpo", "model.lora.enabled=true",
                                 "model.lora.dropout=0", "stage.num_generations=4",
                                 "stage.per_device_train_batch_size=4", "stage.max_completion_length=8")
    with torch.no_grad():  # an adapter that changes the distributions
        gen = torch.Generator().manual_seed(0)
        for name, param in trainer.model.named_parameters():
            if "lora_B" in name:
                param.add_(torch.randn(param.shape, generator=gen) * 0.5)
    score_rollout = trainer_module.score_rollout

    def fixed_rewards(*args, **kwargs):
        scores = score_rollout(*args, **kwargs)
        scores["clean"].total = REWARDS.reshape(1, 4).copy()
        return scores

    monkeypatch.setattr(trainer_module, "score_rollout", fixed_rewards)
    eos = sorted(trainer.eos_token_ids)[0]
    completions = [[41, 42, 43, eos], [43, eos], [41, 45, 44, 42, 43, 41], [45, 45, 44]]
    monkeypatch.setattr(trainer, "generate_rows", lambda prompts, greedy=False: trainer_module.Generation(completions))
    trainer.model.train()
    batch = trainer._generate_and_score_completions([trainer.train_dataset[0]] * 4)
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    attention = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    with torch.no_grad():
        logits = completion_span_logits(trainer.model, trainer._model_inputs(ids, attention, batch["visual_rows"]), 6)
    expected_w = reference_weights(torch.log_softmax(logits.double(), dim=-1), [len(c) for c in completions], 1.7)
    plain = (REWARDS - REWARDS.mean()) / (REWARDS.std(ddof=1) + 1e-4)
    torch.testing.assert_close(batch["advantages"].double(), torch.tensor(plain).unsqueeze(1) * expected_w,
                               rtol=1e-4, atol=1e-5)
