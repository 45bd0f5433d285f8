"""DeepVideo-R1's Reg-GRPO loss (rova/training/reg_grpo.py): values against hand computation, the gradient against
autograd of the written formula, and the trainer's wiring (group ids through TRL's shuffle, pi_ref, the corrupted
branch's own groups)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rova.training.reg_grpo import reg_grpo_loss


def written_formula(logps, ref, mask, advantages, group_ids, beta, log_ratio="sum"):
    """mean over groups of (1/G) sum_i (A_i - beta * (rho_i - mean_j rho_j))^2, rho_i = sum (or mean) over i's
    tokens of log pi_theta - log pi_ref; a row without tokens is in no group. Plain loops, no shared code."""
    rho, active = {}, []
    for i in range(logps.shape[0]):
        tokens = mask[i].bool()
        if int(tokens.sum()) == 0:
            continue
        total = (logps[i][tokens] - ref[i][tokens]).sum()
        rho[i] = total / int(tokens.sum()) if log_ratio == "mean" else total
        active.append(i)
    losses = []
    for group in sorted({int(group_ids[i]) for i in active}):
        members = [i for i in active if int(group_ids[i]) == group]
        mean = sum(rho[j] for j in members) / len(members)
        losses.append(sum((advantages[i] - beta * (rho[i] - mean)) ** 2 for i in members) / len(members))
    return sum(losses) / len(losses)


# Two groups of two. By hand (beta = 2):
#   rho = [-1 + 1.5 + (-2 + 1.5), -1 + 2, (-0.5 + 1) * 2, (-3 + 1) + (-1 + 1)] = [0, 1, 1, -2]
#   group 0: mean 0.5, A_hat = [-1, 1], A = [0.7, -0.7]: errors 1.7^2 = 2.89 twice -> 2.89
#   group 1: mean -0.5, A_hat = [3, -3], A = [1, -1]: errors 2^2 = 4 twice -> 4
#   loss = (2.89 + 4) / 2 = 3.445
# With log_ratio="mean": rho = [0, 1, 0.5, -1]; group 1: mean -0.25, A_hat = [1.5, -1.5], errors 0.25 -> 0.25;
#   loss = (2.89 + 0.25) / 2 = 1.57
LOGPS = torch.tensor([[-1.0, -2.0], [-1.0, 0.0], [-0.5, -0.5], [-3.0, -1.0]], dtype=torch.float64)
REF = torch.tensor([[-1.5, -1.5], [-2.0, 5.0], [-1.0, -1.0], [-1.0, -1.0]], dtype=torch.float64)
MASK = torch.tensor([[1, 1], [1, 0], [1, 1], [1, 1]])
ADVANTAGES = torch.tensor([0.7, -0.7, 1.0, -1.0], dtype=torch.float64)
GROUPS = torch.tensor([0, 0, 1, 1])


@pytest.mark.parametrize("log_ratio,expected", [("sum", 3.445), ("mean", 1.57)])
def test_the_loss_against_hand_computation(log_ratio, expected):
    loss, terms = reg_grpo_loss(LOGPS, REF, MASK, ADVANTAGES, GROUPS, beta=2.0, log_ratio=log_ratio)
    assert float(loss) == pytest.approx(expected, abs=1e-12)
    if log_ratio == "sum":
        assert terms.log_ratio.tolist() == [0.0, 1.0, 1.0, -2.0]
        assert terms.implicit_advantage.tolist() == [-1.0, 1.0, 3.0, -3.0]


def test_the_row_order_and_the_group_numbers_do_not_matter():
    """TRL shuffles the rows of a rollout: the groups are found by id, not by position."""
    order = torch.tensor([3, 0, 2, 1])
    loss, _ = reg_grpo_loss(LOGPS[order], REF[order], MASK[order], ADVANTAGES[order], GROUPS[order] * 7 + 5, beta=2.0)
    assert float(loss) == pytest.approx(3.445, abs=1e-12)


def test_a_row_without_tokens_leaves_its_group_and_an_empty_group_leaves_the_mean():
    extra_logps = torch.cat([LOGPS, torch.tensor([[-9.0, -9.0], [-4.0, -4.0]], dtype=torch.float64)])
    extra_ref = torch.cat([REF, torch.zeros(2, 2, dtype=torch.float64)])
    mask = torch.cat([MASK, torch.zeros(2, 2, dtype=torch.long)])  # masked (variance filter, truncation)
    advantages = torch.cat([ADVANTAGES, torch.tensor([5.0, -5.0], dtype=torch.float64)])
    groups = torch.tensor([0, 0, 1, 1, 0, 2])  # one joins group 0; group 2 has no active row
    loss, terms = reg_grpo_loss(extra_logps, extra_ref, mask, advantages, groups, beta=2.0)
    assert float(loss) == pytest.approx(3.445, abs=1e-12)
    assert terms.active.tolist() == [True] * 4 + [False, False]


def test_no_active_row_gives_a_zero_that_reaches_the_graph():
    logps = LOGPS.clone().requires_grad_()
    loss, _ = reg_grpo_loss(logps, REF, torch.zeros_like(MASK), ADVANTAGES, GROUPS, beta=1.0)
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.equal(logps.grad, torch.zeros_like(logps))


@pytest.mark.parametrize("log_ratio", ["sum", "mean"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_gradient_equals_autograd_of_the_written_formula(seed, log_ratio):
    gen = torch.Generator().manual_seed(seed)
    rows, width = 7, 5
    logps = (torch.randn(rows, width, generator=gen, dtype=torch.float64) - 1.0).requires_grad_()
    ref = torch.randn(rows, width, generator=gen, dtype=torch.float64) - 1.0
    mask = (torch.rand(rows, width, generator=gen) > 0.3).long()
    mask[:, 0] = 1
    mask[5] = 0  # a masked row
    advantages = torch.randn(rows, generator=gen, dtype=torch.float64)
    groups = torch.tensor([2, 0, 2, 0, 1, 1, 2])
    loss, _ = reg_grpo_loss(logps, ref, mask, advantages, groups, beta=0.7, log_ratio=log_ratio)
    (grad,) = torch.autograd.grad(loss, logps)
    expected = written_formula(logps, ref, mask, advantages, groups, 0.7, log_ratio)
    (expected_grad,) = torch.autograd.grad(expected, logps)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-12)
    assert float(grad.abs().sum()) > 0 and torch.equal(grad[5], torch.zeros(width, dtype=torch.float64))


def test_the_gradient_of_a_tiny_linear_policy_equals_autograd_of_the_written_formula():
    """A policy with weights W: log pi(token | x) = log_softmax(x W)[token]; d loss / d W through both."""
    gen = torch.Generator().manual_seed(3)
    rows, width, hidden, vocab = 6, 4, 3, 5
    features = torch.randn(rows, width, hidden, generator=gen, dtype=torch.float64)
    tokens = torch.randint(0, vocab, (rows, width), generator=gen)
    weights = torch.randn(hidden, vocab, generator=gen, dtype=torch.float64, requires_grad=True)
    ref = torch.randn(rows, width, generator=gen, dtype=torch.float64).clamp(max=-0.1)
    mask = torch.ones(rows, width, dtype=torch.long)
    mask[1, 2:] = 0
    advantages = torch.tensor([1.1, -0.2, -0.9, 0.5, -0.5, 0.0], dtype=torch.float64)
    groups = torch.tensor([0, 0, 0, 1, 1, 1])

    def logps():
        return torch.log_softmax(features @ weights, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)

    (grad,) = torch.autograd.grad(reg_grpo_loss(logps(), ref, mask, advantages, groups, beta=1.0)[0], weights)
    (expected,) = torch.autograd.grad(written_formula(logps(), ref, mask, advantages, groups, 1.0), weights)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)
    assert float(grad.abs().sum()) > 0


def test_on_policy_against_the_old_policy_the_gradient_is_the_policy_gradient():
    """pi_ref = the old policy = this forward, detached: rho = 0 in value, and the gradient is
    -2 beta sum_i A_i grad rho_i / (G * groups) when each group's advantages sum to 0."""
    logps = (torch.randn(4, 3, dtype=torch.float64) - 1).requires_grad_()
    mask = torch.ones(4, 3, dtype=torch.long)
    loss, terms = reg_grpo_loss(logps, logps.detach(), mask, ADVANTAGES, GROUPS, beta=1.5)
    (grad,) = torch.autograd.grad(loss, logps)
    assert float(loss.detach()) == pytest.approx(float((ADVANTAGES ** 2).mean()))
    expected = (-2 * 1.5 * ADVANTAGES / 4).unsqueeze(1).expand(4, 3)
    torch.testing.assert_close(grad, expected)


# ---------------------------------------------------------------- the trainer


def test_the_trainer_regresses_whole_groups_of_both_trained_branches_through_trls_shuffle(cache_dir, tmp_path,
                                                                                           monkeypatch):
    """stage=tgrpo: a clean group and a corrupted group; each row carries its group's id, the reference log-probs come
    from TRL's reference model, and the loss equals the written formula however TRL shuffles the rows."""
    import rova.training.trainer as trainer_module
    from tests.support.trainers import make_trainer
    from trl.trainer.utils import shuffle_sequence_dict

    trainer, cfg, _ = make_trainer(cache_dir, tmp_path, "stage=tgrpo", "objective=reg_grpo", "stage.num_generations=2",
                                   "stage.per_device_train_batch_size=2", "stage.max_completion_length=8",
                                   "reward.w_kl=0")
    assert trainer.ref_model is not None and trainer.args.regression_beta == 1.0 == cfg.objective.beta
    with torch.no_grad():  # the policy has moved away from the reference (else pi_ref = pi_old: rho = 0)
        gen = torch.Generator().manual_seed(0)
        for param in trainer.model.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * 0.05)
    rewards = {"clean": np.array([[1.0, 0.0]]), "corrupted": np.array([[0.0, 2.0]])}
    score_rollout = trainer_module.score_rollout

    def fixed_rewards(*args, **kwargs):
        scores = score_rollout(*args, **kwargs)
        for branch, total in rewards.items():
            scores[branch].total = total.copy()
        return scores

    monkeypatch.setattr(trainer_module, "score_rollout", fixed_rewards)
    eos = sorted(trainer.eos_token_ids)[0]
    completions = [[41, 42, eos], [43, eos], [44, 45, 46, eos], [41, 41, eos], [47, eos]]  # clean 2, shuffled 1, corrupted 2
    monkeypatch.setattr(trainer, "generate_rows", lambda prompts, greedy=False: trainer_module.Generation(completions))
    trainer.model.train()
    batch = trainer._generate_and_score_completions([trainer.train_dataset[0]] * 2)
    assert batch["group_ids"].tolist() == [0, 0, 1, 1]  # clean rows, then the corrupted branch's own group
    assert "ref_per_token_logps" in batch
    torch.testing.assert_close(batch["advantages"], torch.tensor([0.7071, -0.7071, -0.7071, 0.7071]), atol=1e-3,
                               rtol=0)
    monkeypatch.setattr(trainer, "current_gradient_accumulation_steps", 1, raising=False)
    expected = None
    for _ in range(3):
        shuffled = shuffle_sequence_dict(batch)
        with trainer._visual_rows(shuffled["visual_rows"]):
            logps, _, _ = trainer._get_per_token_logps_and_entropies(
                trainer.model, torch.cat([shuffled["prompt_ids"], shuffled["completion_ids"]], 1),
                torch.cat([shuffled["prompt_mask"], shuffled["completion_mask"]], 1), shuffled["completion_ids"].size(1))
        reference = written_formula(logps.detach(), shuffled["ref_per_token_logps"], shuffled["completion_mask"],
                                    shuffled["advantages"], shuffled["group_ids"], 1.0)
        assert float((logps.detach() - shuffled["ref_per_token_logps"]).abs().max()) > 1e-3
        loss = trainer._compute_loss(trainer.model, shuffled)
        torch.testing.assert_close(loss.detach(), reference.float(), rtol=1e-5, atol=1e-6)
        expected = float(loss) if expected is None else expected
        assert float(loss) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in trainer.model.parameters())
    # Against the old policy (on-policy: this forward, detached) rho = 0, so the loss is the mean of A_i^2.
    monkeypatch.setattr(trainer.args, "regression_reference", "old")
    loss = trainer._compute_loss(trainer.model, batch)
    assert float(loss.detach()) == pytest.approx(float((batch["advantages"] ** 2).mean()), rel=1e-5)
