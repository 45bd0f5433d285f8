"""Qwen2.5-VL M-RoPE time positions: rova's correction of transformers 5.17's truncated `second_per_grid_ts`.

Hand-computed expectations (tokens_per_second = 2): time position of temporal grid i = floor(i * interval * 2).
The tests call the method the model really uses (`Qwen2_5_VLModel.get_rope_index` after installation), so
they fail on upstream 5.17 (0.5 s -> all 0, 1.5 s -> steps of 2, 2.75 s -> steps of 4).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rova.errors import RovaError
from rova.models.families import _qwen2_5_vl_rope as fix


def _model_self(tokens_per_second: int = 2, merge: int = 2):
    """The only state get_rope_index reads from `self`: the vision config (plus upstream's helper method)."""
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel

    return fix._Probe(Qwen2_5_VLModel, tokens_per_second, merge)


@pytest.fixture(scope="module")
def upstream():
    """transformers' own get_rope_index (as shipped), whether or not the fix is installed."""
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel

    return Qwen2_5_VLModel.__dict__.get(fix._UPSTREAM_ATTR, Qwen2_5_VLModel.get_rope_index)


@pytest.fixture(scope="module")
def installed():
    """The get_rope_index the model class uses once rova has loaded a Qwen2.5-VL model."""
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel

    fix.install_mrope_time_fix()
    return Qwen2_5_VLModel.get_rope_index


# Two text tokens, one video of 4 temporal grids x (4 x 4 patches -> 2 x 2 merged), one text token.
# Time position of grid i, BY HAND: floor(i * interval * tokens_per_second), tokens_per_second = 2.
HAND_TIMES = {
    0.5: [0, 1, 2, 3],  # 1.0 per grid
    1.0: [0, 2, 4, 6],
    1.5: [0, 3, 6, 9],
    2.75: [0, 5, 11, 16],  # 5.5 per grid: 0, 5.5, 11, 16.5
}


@pytest.mark.parametrize("interval", sorted(HAND_TIMES))
def test_time_positions_by_hand(installed, interval):
    types = torch.tensor([[0, 0] + [2] * 16 + [0]])
    position_ids, deltas = installed(
        _model_self(), input_ids=types.clone(), mm_token_type_ids=types,
        video_grid_thw=torch.tensor([[4, 4, 4]]), second_per_grid_ts=torch.tensor([interval]),
    )
    start = 2  # the video starts after two text tokens
    times = [start + t for t in HAND_TIMES[interval]]
    expected_t = [0, 1] + [t for t in times for _ in range(4)] + [start + 2]  # text resumes max(h, w)=2 later
    expected_h = [0, 1] + [start + h for _ in range(4) for h in (0, 0, 1, 1)] + [start + 2]
    expected_w = [0, 1] + [start + w for _ in range(4) for w in (0, 1, 0, 1)] + [start + 2]
    assert position_ids[0, 0].tolist() == expected_t
    assert position_ids[1, 0].tolist() == expected_h
    assert position_ids[2, 0].tolist() == expected_w
    assert deltas.tolist() == [[max(times[-1], start + 2) + 1 - 19]]


def test_half_second_grids_in_a_padded_batch(installed):
    """0.5 s grids (4 fps sampling), left padding, two videos: relative times [0, 1, 2, 3] in each."""
    types = torch.tensor([[0, 0, 0] + [2] * 4 + [0], [0] + [2] * 4 + [0] * 3])
    mask = torch.tensor([[0, 1, 1] + [1] * 4 + [1], [1] * 8])
    position_ids, _ = installed(
        _model_self(), input_ids=types.clone(), mm_token_type_ids=types, attention_mask=mask,
        video_grid_thw=torch.tensor([[4, 2, 2], [4, 2, 2]]), second_per_grid_ts=torch.tensor([0.5, 0.5]),
    )
    assert position_ids[0, 0].tolist() == [0, 0, 1, 2, 3, 4, 5, 3]  # padding keeps 0
    assert position_ids[0, 1].tolist() == [0, 1, 2, 3, 4, 2, 3, 4]


def _random_batch(rng: random.Random, merge: int, with_intervals: bool) -> dict:
    """A padded batch with several images and videos per row; integral intervals (or none)."""
    rows, image_grids, video_grids = [], [], []
    for _ in range(rng.randint(1, 3)):
        row = [0] * rng.randint(1, 4)
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice([1, 2])
            t = 1 if kind == 1 else rng.randint(1, 5)
            h, w = merge * rng.randint(1, 3), merge * rng.randint(1, 4)
            (image_grids if kind == 1 else video_grids).append([t, h, w])
            row += [kind] * (t * h * w // merge**2) + [0] * rng.randint(1, 3)
        rows.append(row)
    length = max(map(len, rows))
    types = torch.zeros(len(rows), length, dtype=torch.long)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, row in enumerate(rows):
        offset = length - len(row) if i % 2 == 0 else 0  # left and right padding in one batch
        types[i, offset : offset + len(row)] = torch.tensor(row)
        mask[i, offset : offset + len(row)] = 1
    batch = dict(input_ids=types.clone(), mm_token_type_ids=types, attention_mask=mask,
                 image_grid_thw=torch.tensor(image_grids) if image_grids else None,
                 video_grid_thw=torch.tensor(video_grids) if video_grids else None)
    if with_intervals and video_grids:
        batch["second_per_grid_ts"] = torch.tensor([float(rng.randint(1, 4)) for _ in video_grids])
    return batch


@pytest.mark.parametrize("tokens_per_second", [2, 4])
def test_equals_upstream_for_integral_intervals(upstream, tokens_per_second):
    rng = random.Random(tokens_per_second)
    for case in range(40):
        batch = _random_batch(rng, merge=2, with_intervals=case % 4 != 0)
        model_self = _model_self(tokens_per_second)
        theirs, ours = upstream(model_self, **batch), fix.corrected_get_rope_index(model_self, **batch)
        for a, b in zip(theirs, ours):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert torch.equal(a, b), (case, batch)
        # Without an attention mask (first row only; its padding then counts as text for both).
        batch.pop("attention_mask")
        batch["input_ids"], batch["mm_token_type_ids"] = batch["input_ids"][:1], batch["mm_token_type_ids"][:1]
        theirs, ours = upstream(model_self, **batch), fix.corrected_get_rope_index(model_self, **batch)
        assert all(torch.equal(a, b) for a, b in zip(theirs, ours)), (case, batch)


def test_upstream_still_truncates_the_interval(upstream):
    """Fails LOUDLY when an upgraded transformers makes the fix unnecessary or unable to apply."""
    import transformers

    try:
        still_needed = fix.upstream_truncates_time(upstream)
    except RovaError as error:  # method gone, signature changed, or other behaviour changed
        pytest.fail(f"rova's M-RoPE time fix can no longer be applied: {error}")
    assert still_needed, (
        f"transformers {transformers.__version__} no longer truncates second_per_grid_ts in Qwen2.5-VL "
        "get_rope_index: rova's fix is now skipped at load time. Remove rova/models/families/_qwen2_5_vl_rope.py, this test "
        "and its entry in docs/upstream_fixes.md once versions with the defect are no longer supported."
    )


def test_install_is_idempotent_and_keeps_the_upstream_method(installed, upstream):
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel

    assert fix.install_mrope_time_fix() is True
    assert fix.install_mrope_time_fix() is True
    assert Qwen2_5_VLModel.get_rope_index is fix.corrected_get_rope_index
    assert Qwen2_5_VLModel.__dict__[fix._UPSTREAM_ATTR] is upstream is not fix.corrected_get_rope_index


def _fake_model_class(method):
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel

    attrs = {"get_vision_position_ids": Qwen2_5_VLModel.get_vision_position_ids}
    if method is not None:
        attrs["get_rope_index"] = method
    return type("FakeQwen2_5_VLModel", (), attrs)


def test_guard_skips_when_upstream_is_fixed(monkeypatch, caplog):
    def fixed_upstream(self, input_ids, mm_token_type_ids, image_grid_thw=None, video_grid_thw=None,
                       second_per_grid_ts=None, attention_mask=None, **kwargs):
        return fix.corrected_get_rope_index(self, input_ids, mm_token_type_ids, image_grid_thw, video_grid_thw,
                                            second_per_grid_ts, attention_mask)

    cls = _fake_model_class(fixed_upstream)
    monkeypatch.setattr(fix, "_model_class", lambda: cls)
    monkeypatch.setattr(fix, "_logged_not_needed", False)
    with caplog.at_level("INFO", logger=fix.__name__):
        assert fix.install_mrope_time_fix() is False
        assert fix.install_mrope_time_fix() is False
    assert cls.get_rope_index is fixed_upstream
    assert sum("not installed" in r.message for r in caplog.records) == 1  # logged once


def test_guard_refuses_a_missing_or_changed_method(monkeypatch, upstream):
    import transformers

    monkeypatch.setattr(fix, "_model_class", lambda: _fake_model_class(None))
    with pytest.raises(RovaError, match=f"transformers {transformers.__version__}.*get_rope_index is gone"):
        fix.install_mrope_time_fix()

    def renamed(self, input_ids, token_type_ids, image_grid_thw=None, video_grid_thw=None, **kwargs):
        return upstream(self, input_ids, token_type_ids, image_grid_thw, video_grid_thw, **kwargs)

    monkeypatch.setattr(fix, "_model_class", lambda: _fake_model_class(renamed))
    with pytest.raises(RovaError, match=f"transformers {transformers.__version__}.*signature"):
        fix.install_mrope_time_fix()

    def other_text_positions(self, input_ids, mm_token_type_ids, image_grid_thw=None, video_grid_thw=None,
                             second_per_grid_ts=None, attention_mask=None, **kwargs):
        position_ids, deltas = upstream(self, input_ids, mm_token_type_ids, image_grid_thw, video_grid_thw,
                                        second_per_grid_ts, attention_mask)
        return position_ids * 2, deltas

    monkeypatch.setattr(fix, "_model_class", lambda: _fake_model_class(other_text_positions))
    with pytest.raises(RovaError, match="changed beyond the known time truncation"):
        fix.install_mrope_time_fix()


def test_tiny_model_generate_and_forward_use_corrected_positions(tiny_model_dir):
    """4 fps sampling (0.5 s per grid) on the real loading path: prefill and forward see time steps of 2."""
    from rova.config.model import ModelConfig
    from rova.models.loading import load_model_and_processor
    from rova.models.families.base import mm_token_type_ids
    from tests.support.families import encode_prompt

    model, processor = load_model_and_processor(ModelConfig(family="qwen2_5_vl", path=str(tiny_model_dir)))
    model.eval()
    text = "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>count<|im_end|>\n<|im_start|>assistant\n"
    frames = np.random.default_rng(0).integers(0, 256, (8, 56, 56, 3), dtype=np.uint8)
    encoded = encode_prompt(processor, text, frames, 4.0)
    assert encoded.visual["video_grid_thw"].tolist() == [[4, 4, 4]]
    assert encoded.visual["second_per_grid_ts"].tolist() == [0.5]
    ids = torch.tensor([encoded.input_ids])
    video = ids[0] == model.config.video_token_id
    start = int(video.nonzero()[0])
    step = 0.5 * model.config.vision_config.tokens_per_second  # tiny model: 4 tokens/s -> 2 per grid
    assert step == 2
    expected = [start + int(i * step) for i in range(4) for _ in range(4)]  # 4 grids x (2 x 2 merged)

    seen = []
    model.model.language_model.register_forward_pre_hook(
        lambda _m, _args, kwargs: seen.append(kwargs["position_ids"].clone()), with_kwargs=True
    )
    inputs = dict(input_ids=ids, attention_mask=torch.ones_like(ids),
                  mm_token_type_ids=mm_token_type_ids(ids, model.config.image_token_id, model.config.video_token_id),
                  **encoded.visual)
    with torch.no_grad():
        model(**inputs)
        forward_times = seen[-1][-3][0, video].tolist()  # forward: [3, B, L] (t, h, w)
        seen.clear()
        model.generate(**inputs, max_new_tokens=2, do_sample=False)
    prefill_times = seen[0][-3][0, video].tolist()  # generate: [4, B, L] (text, t, h, w)
    assert forward_times == expected
    assert prefill_times == expected
    # Decoding continues from the corrected deltas: max position + 1 - prompt length.
    n = ids.shape[1]
    tail = n - 1 - int(video.nonzero()[-1])  # text tokens after the last video token
    text_start_after_video = start + 2  # 5.17: max(h, w) // merge after the video start
    last = max(expected[-1], text_start_after_video + tail - 1)
    assert model.model.rope_deltas.tolist() == [[last + 1 - n]]
