"""Qwen2.5-VL position-id correction: M-RoPE time positions for fractional `second_per_grid_ts`.

transformers 5.17's `Qwen2_5_VLModel.get_rope_index` computes the temporal step as
`tokens_per_second * int(second_per_grid_ts)`: it truncates the interval BEFORE multiplying. A clip sampled
at 4 fps (0.5 s per temporal patch) puts every temporal patch at one time position; 2.75 s gets 2 s steps.
Qwen2.5-VL as trained (and transformers PR #48669, and vLLM) multiplies first and truncates the product:
`t_index = long(grid_index * second_per_grid_t * tokens_per_second)`.

`install_mrope_time_fix()` replaces the method on the class (so the policy, TRL's reference model and
`generate` all use it: `compute_3d_position_ids` and `_prepare_position_ids_for_generation` both call
`self.get_rope_index`). It is guarded: it probes the installed upstream method first and patches only while
the defect is present; it refuses (loudly) when the method is gone, its signature changed, or its output
differs from 5.17's in any way other than the known defect. Everything except the temporal step (text
positions, `current_pos += max(h, w) // merge` after a visual block, deltas) is exactly 5.17's behaviour.
See docs/upstream_fixes.md.
"""

from __future__ import annotations

import inspect
import itertools
import logging

from rova.errors import RovaError

log = logging.getLogger(__name__)

# The parameters the patched method must keep (callers pass them by keyword, input_ids positionally).
EXPECTED_PARAMETERS = (
    "self",
    "input_ids",
    "mm_token_type_ids",
    "image_grid_thw",
    "video_grid_thw",
    "second_per_grid_ts",
    "attention_mask",
)
TEXT, IMAGE, VIDEO = 0, 1, 2

_UPSTREAM_ATTR = "_rova_upstream_get_rope_index"
_logged_not_needed = False


def _block_positions(start, grid_thw: list[int], merge: int, seconds, tokens_per_second) -> "torch.Tensor":  # noqa: F821
    """(3, t*h*w) positions of one image/video block, in (t, h, w) raster order, offset by `start`."""
    import torch

    t, h, w = grid_thw[0], grid_thw[1] // merge, grid_thw[2] // merge
    # Multiply the grid index by the (possibly fractional) interval, THEN truncate: Qwen2.5-VL's time positions.
    temporal = (torch.arange(t) * seconds * tokens_per_second).long()
    tt, hh, ww = torch.meshgrid(temporal, torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([tt.flatten(), hh.flatten(), ww.flatten()]) + start


def corrected_get_rope_index(
    self,
    input_ids,
    mm_token_type_ids,
    image_grid_thw=None,
    video_grid_thw=None,
    second_per_grid_ts=None,
    attention_mask=None,
    **kwargs,
):
    """Drop-in for `Qwen2_5_VLModel.get_rope_index`: returns (position_ids [3, B, L], deltas [B, 1])."""
    import torch

    merge = self.config.vision_config.spatial_merge_size
    tokens_per_second = self.config.vision_config.tokens_per_second
    grids = {
        IMAGE: iter(image_grid_thw.tolist()) if image_grid_thw is not None else None,
        VIDEO: iter(video_grid_thw.tolist()) if video_grid_thw is not None else None,
    }
    # One interval per video, consumed in order across the batch (as upstream); 1 s when absent.
    if second_per_grid_ts is None:
        intervals = itertools.repeat(1)
    else:
        intervals = iter(second_per_grid_ts.cpu() if torch.is_tensor(second_per_grid_ts) else second_per_grid_ts)
    batch, length = input_ids.shape
    position_ids = torch.zeros(3, batch, length, dtype=input_ids.dtype, device=input_ids.device)
    deltas = []
    for b in range(batch):
        keep = attention_mask[b].bool() if attention_mask is not None else torch.ones(length, dtype=torch.bool)
        token_types = mm_token_type_ids[b][keep.to(mm_token_type_ids.device)].tolist()
        blocks, pos = [], 0
        for kind, run in itertools.groupby(token_types):
            if kind == TEXT:
                n = len(list(run))
                blocks.append(torch.arange(n).expand(3, n) + pos)
                pos += n
                continue
            grid = next(grids[kind])
            # Still images have no time axis: step 1 (5.17's fix for #45325, kept).
            seconds, scale = (next(intervals), tokens_per_second) if kind == VIDEO else (1, 1)
            blocks.append(_block_positions(pos, grid, merge, seconds, scale))
            pos += max(grid[1], grid[2]) // merge  # 5.17: the next block starts max(h, w) after this one
        positions = torch.cat(blocks, dim=1)
        position_ids[:, b, keep.to(position_ids.device)] = positions.to(position_ids)
        deltas.append(int(positions.max()) + 1 - len(token_types))
    return position_ids, torch.tensor(deltas, device=input_ids.device).unsqueeze(1)


def _model_class():
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl

    return modeling_qwen2_5_vl.Qwen2_5_VLModel


def _version() -> str:
    import transformers

    return transformers.__version__


def _check_signature(method) -> None:
    params = list(inspect.signature(method).parameters)
    if tuple(params[: len(EXPECTED_PARAMETERS)]) != EXPECTED_PARAMETERS:
        raise RovaError(
            f"transformers {_version()}: Qwen2_5_VLModel.get_rope_index{inspect.signature(method)} no longer has the "
            f"signature rova's M-RoPE time fix replaces ({', '.join(EXPECTED_PARAMETERS)}, **kwargs). Check whether "
            "this version still truncates second_per_grid_ts (docs/upstream_fixes.md) and update or remove "
            "rova/models/families/_qwen2_5_vl_rope.py."
        )


class _Probe:
    """Just enough of a Qwen2_5_VLModel to call the unbound upstream method (no weights)."""

    def __init__(self, cls, tokens_per_second: int = 2, merge: int = 2):
        from types import SimpleNamespace

        self._cls = cls
        self.config = SimpleNamespace(
            vision_config=SimpleNamespace(tokens_per_second=tokens_per_second, spatial_merge_size=merge)
        )

    def __getattr__(self, name):  # upstream may call helper methods (get_vision_position_ids, ...)
        return getattr(self._cls, name).__get__(self)


def probe_inputs(intervals: list[float]) -> dict:
    """A padded batch of two sequences: text, an image, one 4-grid video per interval, text (merge 2)."""
    import torch

    def row(videos: int) -> list[int]:
        return [TEXT] * 3 + [IMAGE] * 2 + [TEXT] * 2 + ([VIDEO] * 4 + [TEXT]) * videos + [TEXT] * 2

    first, second = row(len(intervals) - 1), row(1)
    length = max(len(first), len(second))
    types = torch.zeros(2, length, dtype=torch.long)
    mask = torch.zeros(2, length, dtype=torch.long)
    types[0, length - len(first):] = torch.tensor(first)  # left padding, as generation uses
    mask[0, length - len(first):] = 1
    types[1, : len(second)] = torch.tensor(second)  # right padding, as training batches use
    mask[1, : len(second)] = 1
    return dict(
        input_ids=types.clone(),
        mm_token_type_ids=types,
        image_grid_thw=torch.tensor([[1, 2, 4], [1, 2, 4]]),  # 1 x 1 x 2 merged tokens each
        video_grid_thw=torch.tensor([[4, 2, 2]] * len(intervals)),  # 4 x 1 x 1 merged tokens each
        second_per_grid_ts=torch.tensor(intervals, dtype=torch.float32),
        attention_mask=mask,
    )


def upstream_truncates_time(method=None, cls=None) -> bool:
    """Probe the upstream `get_rope_index`: does it put 0.5 s grids (2 tokens/s) at one time position?

    Raises RovaError when upstream's output differs from ours in any other way (then our replacement would
    silently undo other upstream changes), or when the method is missing / its signature changed.
    """
    cls = cls or _model_class()
    method = method or getattr(cls, _UPSTREAM_ATTR, None) or getattr(cls, "get_rope_index", None)
    if method is None:
        raise RovaError(
            f"transformers {_version()}: Qwen2_5_VLModel.get_rope_index is gone; rova's M-RoPE time fix "
            "(rova/models/families/_qwen2_5_vl_rope.py, docs/upstream_fixes.md) must be updated or removed."
        )
    _check_signature(method)
    probe = _Probe(cls)
    # Integral intervals: upstream's truncation is a no-op there, so both must agree exactly.
    integral = probe_inputs([1.0, 2.0, 3.0])
    theirs, ours = method(probe, **integral), corrected_get_rope_index(probe, **integral)
    if not all(a.equal(b) for a, b in zip(theirs, ours)):
        raise RovaError(
            f"transformers {_version()}: Qwen2_5_VLModel.get_rope_index changed beyond the known time truncation "
            "(its positions for integral second_per_grid_ts differ from 5.17's); rova's replacement would undo "
            "that change. Review rova/models/families/_qwen2_5_vl_rope.py against the new upstream code."
        )
    fractional = probe_inputs([0.5, 0.5])
    (theirs, _), (ours, _) = method(probe, **fractional), corrected_get_rope_index(probe, **fractional)
    video = fractional["mm_token_type_ids"][1] == VIDEO
    upstream_times = theirs[0, 1, video]
    if theirs.equal(ours):
        return False
    if bool((upstream_times == upstream_times[0]).all()):
        return True
    raise RovaError(
        f"transformers {_version()}: Qwen2_5_VLModel.get_rope_index gives unexpected time positions for 0.5 s "
        f"grids at 2 tokens/s ({upstream_times.tolist()}; 5.17 gives all-equal, fixed upstream gives steps of 1). "
        "Review rova/models/families/_qwen2_5_vl_rope.py."
    )


def install_mrope_time_fix() -> bool:
    """Replace Qwen2_5_VLModel.get_rope_index while upstream truncates the interval. Idempotent.

    Returns True when the corrected method is installed, False when upstream no longer needs it.
    """
    global _logged_not_needed
    cls = _model_class()
    if getattr(cls, "get_rope_index", None) is corrected_get_rope_index:
        return True
    upstream = getattr(cls, "get_rope_index", None)
    if not upstream_truncates_time(upstream, cls):
        if not _logged_not_needed:
            log.info("transformers %s computes Qwen2.5-VL M-RoPE time positions correctly; rova's fix is not "
                     "installed (remove rova/models/families/_qwen2_5_vl_rope.py once older versions are unsupported)", _version())
            _logged_not_needed = True
        return False
    setattr(cls, _UPSTREAM_ATTR, upstream)
    cls.get_rope_index = corrected_get_rope_index
    log.info("Qwen2.5-VL M-RoPE: corrected fractional second_per_grid_ts time positions (transformers %s "
             "truncates the interval; docs/upstream_fixes.md)", _version())
    return True


def uninstall_mrope_time_fix() -> None:
    """Restore the upstream method (tests compare against it)."""
    cls = _model_class()
    upstream = cls.__dict__.get(_UPSTREAM_ATTR)
    if upstream is not None:
        cls.get_rope_index = upstream
        delattr(cls, _UPSTREAM_ATTR)
