"""Sequence parallelism (rova/models/sequence_parallel): the pure parts here, the sharded passes on 2 gloo processes.

The 2-process tests run the tiny Qwen2.5-VL and Qwen3-VL (DeepStack) with the sequence split over 2 ranks and compare
with one process's plain passes: log-probs and entropies within 1e-5, the KL passes' completion logits within
1e-5, parameter gradients within 1e-4 relative (data parallelism's average over the 2 ranks applied), and each
clip encoded once per group with its frames split over the ranks (MR-SP).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.errors import RovaError
from rova.models.sequence_parallel import group_ranks
from rova.models.sequence_parallel.groups import SequenceParallel
from rova.models.sequence_parallel.logps import IGNORE, row_sequence, shift_labels
from rova.models.sequence_parallel.sharding import global_positions, shard_plan
from rova.models.sequence_parallel.vision import slice_parts


def _sp(size: int, rank: int) -> SequenceParallel:
    return SequenceParallel(size, rank, tuple(range(size)), None, 0, 1)


def test_groups_are_consecutive_ranks_and_refuse_a_world_they_do_not_divide():
    assert group_ranks(4, 2) == [(0, 1), (2, 3)]
    assert group_ranks(6, 3) == [(0, 1, 2), (3, 4, 5)]
    with pytest.raises(RovaError, match="cannot be split"):
        group_ranks(4, 3)


@given(length=st.integers(1, 500), size=st.integers(1, 8))
def test_shard_plan_cuts_the_padded_sequence_into_equal_chunks(length, size):
    plans = [shard_plan(length, _sp(size, r)) for r in range(size)]
    assert all(p.padded % size == 0 and 0 <= p.padded - length < size for p in plans)
    assert [p.start for p in plans] == [r * plans[0].chunk for r in range(size)]
    assert plans[-1].end == plans[0].padded and len({p.chunk for p in plans}) == 1


def test_global_positions_prepend_the_text_row_and_continue_every_row_past_the_end():
    mrope = torch.tensor([[0, 1, 1, 1, 3], [0, 1, 1, 2, 3], [0, 1, 2, 1, 3]]).unsqueeze(1)  # [3, 1, 5]
    out = global_positions(mrope, 5, 8, "cpu")
    assert out.shape == (4, 1, 8)
    assert out[0, 0].tolist() == list(range(8))
    assert torch.equal(out[1:, :, :5], mrope)
    assert out[1:, 0, 5:].tolist() == [[4, 5, 6]] * 3
    assert global_positions(None, 3, 4, "cpu")[:, 0].tolist() == [[0, 1, 2, 3]] * 4


def test_a_row_loses_its_left_padding_and_keeps_its_completion_whole():
    ids = torch.tensor([0, 0, 5, 6, 7, 8, 0])  # 2 pad, prompt 5 6, completion 7 8 + one right pad
    mask = torch.tensor([0, 0, 1, 1, 1, 1, 0])
    tokens, completion_mask = row_sequence(ids, mask, 3)
    assert tokens.tolist() == [5, 6, 7, 8, 0] and completion_mask.tolist() == [1, 1, 0]
    labels = shift_labels(tokens, completion_mask, 6)
    # position 1 (token 6) predicts 7, position 2 predicts 8; the masked pad and the end padding are ignored
    assert labels.tolist() == [IGNORE, 7, 8, IGNORE, IGNORE, IGNORE]


def test_a_slice_larger_than_a_share_does_not_leave_a_rank_without_frames():
    # hypothesis found it: the first clip's one slice holds 12 of 24 patches, which closed two parts at once
    parts = slice_parts(torch.tensor([[1, 2, 6], [3, 2, 2]]), 4)
    assert parts == [[(0, 0, 1, 12)], [(1, 0, 1, 4)], [(1, 1, 1, 4)], [(1, 2, 1, 4)]]


@settings(max_examples=300)
@given(grid=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=4),
       size=st.integers(1, 4))
def test_slice_parts_give_every_temporal_slice_to_exactly_one_rank_in_order(grid, size):
    grid_t = torch.tensor([[t, 2 * h, 2 * w] for t, h, w in grid])
    parts = slice_parts(grid_t, size)
    slices = [(clip, t) for clip, (frames, _, _) in enumerate(grid) for t in range(frames)]
    if len(slices) < size:
        assert parts is None
        return
    assert len(parts) == size and all(parts), "a rank got no slice"
    flat = [(clip, first + k) for runs in parts for clip, first, count, _ in runs for k in range(count)]
    assert flat == slices
    patches = [sum(n * p for _, _, n, p in runs) for runs in parts]
    largest_slice = max(4 * h * w for _, h, w in grid)
    assert max(patches) - min(patches) <= 2 * largest_slice  # balanced up to a slice or two


# ---------------------------------------------------------------------------------------------- 2 processes
@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_sharded_passes_equal_one_process(tmp_path, cache_dir, tiny_model_dir, tiny_qwen3_model_dir, family):
    from tests.support.sequence_parallel import run_pair

    model_dir = tiny_model_dir if family == "qwen2_5_vl" else tiny_qwen3_model_dir
    results = run_pair(model_dir, family, tmp_path / "out")
    for r in results:
        assert r["logps"] <= 1e-5 and r["entropy"] <= 1e-5 and r["logits"] <= 1e-5, r
        assert r["masked_zero"], r
        assert r["grad_rel"] <= 1e-4, r
        assert r["vision_grad_norm"] > 0, "the vision tower got no gradient: the comparison would not see MR-SP"
    # MR-SP: the two clips (each shown by 2 rows) were encoded once per group, half of the patches on each rank
    total = sum(results[0]["clip_patches"])
    assert sum(r["encoded_patches"] for r in results) == total
    assert all(0 < r["encoded_patches"] < total for r in results)
