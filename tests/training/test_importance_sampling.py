"""vLLM importance-sampling correction: TRL 1.16's four modes, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from rova.training.importance import importance_sampling_ratio

OLD = torch.tensor([[-1.0, -2.0, 0.0], [-1.0, -1.0, -1.0]])
SAMPLED = torch.tensor([[-1.5, -1.0, float("nan")], [-1.0, -1.0, -4.0]])
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])


def test_token_modes():
    truncated = importance_sampling_ratio(OLD, SAMPLED, MASK, "token_truncate", None, 3.0)
    expected = torch.tensor([[math.exp(0.5), math.exp(-1.0), 1.0], [1.0, 1.0, 3.0]])
    torch.testing.assert_close(truncated, expected)
    masked = importance_sampling_ratio(OLD, SAMPLED, MASK, "token_mask", 0.5, 3.0)
    torch.testing.assert_close(masked, torch.tensor([[math.exp(0.5), 0.0, 1.0], [1.0, 1.0, 0.0]]))


def test_sequence_modes_use_the_summed_log_ratio():
    ratio = importance_sampling_ratio(OLD, SAMPLED, MASK, "sequence_truncate", None, 3.0)
    torch.testing.assert_close(ratio, torch.tensor([[math.exp(-0.5)], [3.0]]))
    masked = importance_sampling_ratio(OLD, SAMPLED, MASK, "sequence_mask", None, 3.0)
    torch.testing.assert_close(masked, torch.tensor([[math.exp(-0.5)], [0.0]]))


def test_unknown_mode_names_the_key():
    with pytest.raises(ValueError, match="vllm_importance_sampling_mode"):
        importance_sampling_ratio(OLD, SAMPLED, MASK, "tokens")
