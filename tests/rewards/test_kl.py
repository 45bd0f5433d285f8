"""KL-consistency reward: per-sequence KL over completion positions, estimators, aux loss."""

from __future__ import annotations

import math

import pytest
import torch

from rova.rewards import kl_consistency_loss, kl_reward, sequence_kl


def naive_sequence_kl(logits_clean, logits_corr, mask):
    """Direct float64 loops over rows, positions and the vocabulary."""
    out = []
    for b in range(logits_clean.shape[0]):
        total, count = 0.0, 0
        for t in range(logits_clean.shape[1]):
            if not mask[b, t]:
                continue
            p = torch.softmax(logits_clean[b, t].double(), -1)
            q = torch.softmax(logits_corr[b, t].double(), -1)
            total += sum(float(p[v] * (math.log(p[v]) - math.log(q[v]))) for v in range(p.numel()))
            count += 1
        out.append(total / count if count else 0.0)
    return torch.tensor(out, dtype=torch.float64)


def random_batch(seed=0, batch=3, length=5, vocab=11, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    clean = torch.randn(batch, length, vocab, generator=gen) * scale
    corr = torch.randn(batch, length, vocab, generator=gen) * scale
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]][:batch])
    return clean, corr, mask


def test_identical_logits_give_exactly_zero_and_reward_one():
    clean, _, mask = random_batch()
    for estimator in ("full", "topk", "sampled"):
        ids = clean.argmax(-1)
        kl = sequence_kl(clean, clean.clone(), mask, estimator=estimator, topk=4, sampled_ids=ids)
        assert torch.equal(kl, torch.zeros(3))
        assert torch.equal(kl_reward(kl, 1.0), torch.ones(3))


def test_full_estimator_matches_naive_computation():
    clean, corr, mask = random_batch()
    kl = sequence_kl(clean, corr, mask)
    assert kl.dtype == torch.float32
    torch.testing.assert_close(kl.double(), naive_sequence_kl(clean, corr, mask), atol=1e-6, rtol=0)
    assert kl[2] == 0.0  # no completion token
    assert (kl[:2] > 0).all()


def test_chunking_does_not_change_the_result():
    clean, corr, mask = random_batch(seed=1)
    torch.testing.assert_close(sequence_kl(clean, corr, mask, chunk_elements=1), sequence_kl(clean, corr, mask))


def test_half_precision_inputs_are_upcast():
    clean, corr, mask = random_batch(seed=2)
    kl = sequence_kl(clean.bfloat16(), corr.bfloat16(), mask)
    assert kl.dtype == torch.float32
    expected = naive_sequence_kl(clean.bfloat16().float(), corr.bfloat16().float(), mask)
    torch.testing.assert_close(kl.double(), expected, atol=1e-6, rtol=0)


def test_only_completion_positions_count():
    clean, corr, mask = random_batch(seed=3)
    changed = corr.clone()
    changed[0, 3:] += 100 * torch.randn_like(changed[0, 3:])  # positions outside row 0's mask
    torch.testing.assert_close(sequence_kl(clean, changed, mask), sequence_kl(clean, corr, mask))


def test_misaligned_mask_is_rejected():
    clean, corr, _ = random_batch()
    with pytest.raises(ValueError, match="slice the logits"):
        sequence_kl(clean, corr, torch.ones(3, 7))
    with pytest.raises(ValueError, match="kl_estimator"):
        sequence_kl(clean, corr, torch.ones(3, 5), estimator="k3")
    with pytest.raises(ValueError, match="sampled_ids"):
        sequence_kl(clean, corr, torch.ones(3, 5), estimator="sampled")


def peaked_batch(seed=4, vocab=200):
    gen = torch.Generator().manual_seed(seed)
    clean = torch.randn(2, 6, vocab, generator=gen)
    peak = torch.randint(0, vocab, (2, 6), generator=gen)
    clean.scatter_(-1, peak.unsqueeze(-1), 15.0)
    corr = clean + 0.3 * torch.randn(2, 6, vocab, generator=gen)
    mask = torch.ones(2, 6, dtype=torch.long)
    return clean, corr, mask, peak


def test_topk_and_sampled_are_close_to_full_on_peaked_distributions():
    clean, corr, mask, peak = peaked_batch()
    full = sequence_kl(clean, corr, mask)
    topk = sequence_kl(clean, corr, mask, estimator="topk", topk=64)
    sampled = sequence_kl(clean, corr, mask, estimator="sampled", sampled_ids=peak)
    torch.testing.assert_close(topk, full, atol=1e-4, rtol=0.05)
    torch.testing.assert_close(sampled, full, atol=1e-3, rtol=0)


def test_topk_with_k_at_least_vocab_is_the_full_kl():
    clean, corr, mask = random_batch(seed=5)
    torch.testing.assert_close(sequence_kl(clean, corr, mask, estimator="topk", topk=64), sequence_kl(clean, corr, mask))


def test_sampled_estimator_is_log_ratio_of_sampled_tokens():
    clean, corr, mask = random_batch(seed=6)
    ids = torch.randint(0, 11, (3, 5), generator=torch.Generator().manual_seed(0))
    got = sequence_kl(clean, corr, mask, estimator="sampled", sampled_ids=ids)
    lp_c = torch.log_softmax(clean.double(), -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    lp_r = torch.log_softmax(corr.double(), -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    m = mask.double()
    expected = ((lp_c - lp_r) * m).sum(-1) / m.sum(-1).clamp_min(1)
    torch.testing.assert_close(got.double(), expected, atol=1e-6, rtol=0)


def test_masked_vocabulary_entries_do_not_make_nan():
    clean, corr, mask = random_batch(seed=7)
    clean[..., :3] = float("-inf")  # tokens the clean model can never emit
    kl = sequence_kl(clean, corr, mask)
    assert torch.isfinite(kl).all()
    torch.testing.assert_close(kl.double(), naive_sequence_kl_masked(clean, corr, mask), atol=1e-6, rtol=0)


def naive_sequence_kl_masked(clean, corr, mask):
    p = torch.softmax(clean.double(), -1)
    terms = torch.where(p > 0, p * (torch.log_softmax(clean.double(), -1) - torch.log_softmax(corr.double(), -1)), 0.0)
    m = mask.double()
    return (terms.sum(-1) * m).sum(-1) / m.sum(-1).clamp_min(1)


def test_runs_without_grad():
    clean, corr, mask = random_batch()
    clean.requires_grad_(True)
    corr.requires_grad_(True)
    kl = sequence_kl(clean, corr, mask)
    assert not kl.requires_grad


def test_kl_reward():
    kl = torch.tensor([0.0, 0.5, float("inf"), float("nan"), -0.1])
    reward = kl_reward(kl, 3.0)
    torch.testing.assert_close(reward, torch.tensor([1.0, math.exp(-1.5), 0.0, 0.0, 1.0]))
    assert kl_reward(0.5, 1.0) == pytest.approx(math.exp(-0.5))
    assert kl_reward(float("nan"), 1.0) == 0.0
    assert kl_reward(float("inf"), 0.0) == 1.0
    with pytest.raises(ValueError, match="kl_alpha"):
        kl_reward(kl, -1.0)


def test_aux_loss_value_and_gradient_through_corrupted_only():
    clean, corr, mask = random_batch(seed=8)
    clean.requires_grad_(True)
    corr.requires_grad_(True)
    loss = kl_consistency_loss(clean, corr, mask, kl_loss_coef=0.5)
    kl = sequence_kl(clean, corr, mask)
    torch.testing.assert_close(loss.detach(), 0.5 * kl[:2].mean())  # row 2 has no completion token
    loss.backward()
    assert clean.grad is None
    assert corr.grad is not None and corr.grad.abs().sum() > 0
    assert corr.grad[2].abs().sum() == 0 and corr.grad[0, 3:].abs().sum() == 0


def test_aux_loss_with_no_completion_tokens_is_zero_and_differentiable():
    clean, corr, _ = random_batch()
    corr.requires_grad_(True)
    loss = kl_consistency_loss(clean, corr, torch.zeros(3, 5))
    assert loss.item() == 0.0
    loss.backward()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    clean, corr, mask = random_batch(seed=9)
    ids = clean.argmax(-1)
    for estimator in ("full", "topk", "sampled"):
        cpu = sequence_kl(clean, corr, mask, estimator=estimator, topk=4, sampled_ids=ids)
        gpu = sequence_kl(clean.cuda(), corr.cuda(), mask.cuda(), estimator=estimator, topk=4, sampled_ids=ids.cuda())
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=1e-5)
        assert torch.equal(sequence_kl(clean.cuda(), clean.cuda(), mask.cuda(), estimator=estimator, topk=4, sampled_ids=ids.cuda()).cpu(), torch.zeros(3))
