"""Corruption engine contract: determinism, replay, shapes, coherence, temporal semantics, errors.

Synthetic clips only (small, fast); the real-clip checks (severity monotonic, gallery) live in
test_corruption_real.py.
"""

from __future__ import annotations

import copy
import json
from collections import Counter

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rova.config import corruption as catalogue
from rova.config.corruption import FAMILIES, FAMILY_OF, VARIANTS, VARIANTS_BY_FAMILY, CorruptionConfig
from rova.corruption import (
    CorruptionRecord,
    CorruptionSpec,
    apply_random_corruption,
    corrupt,
    replay,
    shuffle_frames,
)
from rova.corruption import occlusion, photometric, shake, temporal, weather
from rova.corruption.engine import REGISTRY

# No random parameter in their definition (HSV V += c; (x - mean) * c + mean): seed-independent.
DETERMINISTIC = {"overexposure", "contrast"}
# From each implementation's `moving` flag, which the coherence tests below check: a static variant puts the same
# layer on every frame; a moving one (it needs a freeze rule in `frozen`) only moves what it drew once.
STATIC = [name for name, v in REGISTRY.items() if not v.moving and v.family != "temporal"]
MOVING = [name for name, v in REGISTRY.items() if v.moving]
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def textured_frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random colour texture (like natural images: mid-frequency content, no flat areas)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4 + 2, w // 4 + 2, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def panning_clip(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """A texture panning 3 px per frame: every frame differs, like a real video."""
    wide = textured_frame(h, w + 3 * t, seed)
    return np.stack([wide[:, 3 * i : 3 * i + w] for i in range(t)])


def still_clip(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """The same frame T times: whatever changes between output frames came from the corruption."""
    return np.repeat(textured_frame(h, w, seed)[None], t, axis=0)


NUMBER_STEP = 7


def numbered_clip(t: int, h: int = 16, w: int = 24) -> np.ndarray:
    """Frame i is uniformly 7 * (i + 1) (T <= 36): an output frame's value says which input frame it shows."""
    assert NUMBER_STEP * t <= 255
    return np.stack([np.full((h, w, 3), NUMBER_STEP * (i + 1), np.uint8) for i in range(t)])


def frozen(variant: str, params: dict) -> dict:
    """The same corruption with its motion removed: every moving thing stays where it is at frame 0."""
    p = copy.deepcopy(params)
    if variant == "night":
        p["noise_offsets"] = [p["noise_offsets"][0]] * len(p["noise_offsets"])
    elif variant == "rain":
        p["speed"] = 0.0
    elif variant == "storm":
        p["rain"]["speed"] = 0.0
        p["flash_frames"] = []
    elif variant in ("snow", "hail"):
        p["speed_near"] = p["speed_far"] = 0.0
    elif variant == "moving_blocks":
        for block in p["blocks"]:
            block["y"] = [block["y"][0]] * len(block["y"])
            block["x"] = [block["x"][0]] * len(block["x"])
    elif variant == "camera_shake":
        for key in ("dx", "dy", "roll_deg", "zoom"):
            p[key] = [p[key][0]] * len(p[key])
    else:
        raise AssertionError(f"no freeze rule for {variant}")
    return p


def all_frames_equal(clip: np.ndarray) -> bool:
    return all(np.array_equal(clip[0], frame) for frame in clip[1:])


# ---------------------------------------------------------------------------------------------
# listings and registry


def test_every_catalogued_variant_is_implemented_once_with_its_options():
    assert list(REGISTRY) == list(VARIANTS)
    assert set(FAMILIES) == set(VARIANTS_BY_FAMILY)
    for name, variant in REGISTRY.items():
        assert variant.family == FAMILY_OF[name]
        assert variant.options == catalogue.OPTIONS.get(name, {})
    assert "hail" in MOVING and "fog" in STATIC and not {"frame_drop", "shuffle"} & {*STATIC, *MOVING}


def test_a_catalogue_entry_without_its_implementation_is_refused_at_import(monkeypatch):
    from rova.corruption import engine

    weather_names = (*VARIANTS_BY_FAMILY["weather"], "drizzle")
    monkeypatch.setattr(engine, "VARIANTS_BY_FAMILY", {**VARIANTS_BY_FAMILY, "weather": weather_names})
    with pytest.raises(RuntimeError, match=r"rova\.corruption\.weather\.VARIANTS.*'drizzle'.*for weather"):
        engine._registry()


# ---------------------------------------------------------------------------------------------
# determinism and replay


@pytest.mark.parametrize("variant", VARIANTS)
def test_same_seed_same_bytes_and_record_replays_them(variant):
    clip = panning_clip(6, 40, 64)
    original = clip.copy()
    for severity in range(1, 6):
        out, record = corrupt(clip, CorruptionSpec(variant, severity), seed=11)
        again, record_again = corrupt(clip, CorruptionSpec(variant, severity), seed=11)
        assert np.array_equal(out, again)
        assert record.to_dict() == record_again.to_dict()
        assert (record.family, record.variant, record.severity) == (FAMILY_OF[variant], variant, severity)
        assert record.seed == 11
        # replay from the object, from its JSON text, and re-running the record's spec + seed
        assert np.array_equal(replay(clip, record), out)
        logged = json.loads(json.dumps(record.to_dict()))
        assert np.array_equal(replay(clip, logged), out)
        assert np.array_equal(replay(clip, CorruptionRecord.from_dict(logged)), out)
        assert np.array_equal(corrupt(clip, record.spec, record.seed)[0], out)
        assert np.array_equal(clip, original), "the input clip was modified"
        assert not np.shares_memory(out, clip)


@pytest.mark.parametrize("variant", VARIANTS)
def test_different_seeds_differ(variant):
    clip = panning_clip(16, 48, 64)
    outs = [corrupt(clip, CorruptionSpec(variant, 3), seed)[0] for seed in range(4)]
    if variant in DETERMINISTIC:
        assert all(np.array_equal(outs[0], o) for o in outs[1:])
        assert not np.array_equal(outs[0], clip)
    else:
        for i in range(4):
            for j in range(i + 1, 4):
                assert not np.array_equal(outs[i], outs[j]), f"{variant}: seeds {i} and {j} gave the same clip"


@pytest.mark.parametrize("shape", [(2, 17, 31), (2, 8, 8), (3, 9, 50), (1, 12, 13), (5, 31, 9)])
def test_shape_and_dtype_kept_for_every_variant_and_severity(shape):
    clip = panning_clip(*shape)
    for variant in VARIANTS:
        for severity in range(1, 6):
            out, record = corrupt(clip, CorruptionSpec(variant, severity), seed=severity)
            assert out.shape == clip.shape and out.dtype == np.uint8, (variant, severity, shape)
            assert out.flags.c_contiguous
            json.dumps(record.to_dict())


def _spec_strategy():
    def with_options(variant):
        choices = {name: st.sampled_from(values) for name, values in catalogue.OPTIONS.get(variant, {}).items()}
        options = st.fixed_dictionaries(choices) if choices else st.just({})
        return st.builds(CorruptionSpec, st.just(variant), st.integers(1, 5), options)

    return st.sampled_from(VARIANTS).flatmap(with_options)


@PROPERTY
@given(
    spec=_spec_strategy(),
    t=st.integers(1, 5),
    h=st.integers(8, 41),
    w=st.integers(8, 41),
    seed=st.integers(0, 2**63),
    texture=st.integers(0, 3),
)
def test_property_any_spec_keeps_shape_and_replays_from_json(spec, t, h, w, seed, texture):
    clip = panning_clip(t, h, w, seed=texture)
    original = clip.copy()
    out, record = corrupt(clip, spec, seed)
    assert out.shape == clip.shape and out.dtype == np.uint8
    assert np.array_equal(clip, original)
    assert np.array_equal(replay(clip, json.loads(json.dumps(record.to_dict()))), out)
    assert np.array_equal(corrupt(clip, record.spec, seed)[0], out)
    for name, value in spec.options.items():
        assert record.params[name] == value or value == "any"
        assert record.params[name] != "any"


def test_non_contiguous_input_is_accepted_and_left_alone():
    base = panning_clip(4, 40, 80)
    view = base[:, :, ::2]  # strided view
    expected = corrupt(np.ascontiguousarray(view), CorruptionSpec("snow", 2), 5)[0]
    assert np.array_equal(corrupt(view, CorruptionSpec("snow", 2), 5)[0], expected)


# ---------------------------------------------------------------------------------------------
# coherence: one draw per clip


@pytest.mark.parametrize("variant", STATIC)
def test_static_corruptions_put_the_same_layer_on_every_frame(variant):
    clip = still_clip(8, 48, 72)
    fills = [{"fill": f} for f in ("black", "mean", "noise")] if variant == "static_blocks" else [{}]
    for options in fills:
        for severity in (1, 3, 5):
            for seed in range(3):
                out, _ = corrupt(clip, CorruptionSpec(variant, severity, options), seed)
                assert all_frames_equal(out), (variant, options, severity, seed)
                assert not np.array_equal(out[0], clip[0])


@pytest.mark.parametrize("variant", MOVING)
def test_moving_corruptions_only_move_what_was_drawn_once(variant):
    """Frozen at frame 0's position, the corruption is identical on every frame; with its recorded
    motion, frames differ. So between frames only positions change, never the drawn things."""
    clip = still_clip(8, 48, 72)
    for severity in (2, 4, 5):
        for seed in range(3):
            out, record = corrupt(clip, CorruptionSpec(variant, severity), seed)
            assert not all_frames_equal(out), (variant, severity, seed)
            motionless = CorruptionRecord(record.family, variant, severity, seed, frozen(variant, record.params))
            still = replay(clip, motionless)
            assert all_frames_equal(still), (variant, severity, seed)


@pytest.mark.parametrize(
    "variant", [*VARIANTS_BY_FAMILY["photometric"], *VARIANTS_BY_FAMILY["weather"], "static_blocks"]
)
def test_no_type_switch_within_a_clip(variant):
    """On a still clip, every frame is degraded by the same amount (public ROVA code re-draws the
    corruption type per frame, which makes this vary several-fold). Lightning frames excepted."""
    clip = still_clip(16, 48, 72)
    for severity in (1, 3, 5):
        for seed in range(3):
            out, record = corrupt(clip, CorruptionSpec(variant, severity), seed)
            per_frame = np.abs(out.astype(np.int16) - clip).reshape(len(clip), -1).mean(axis=1)
            if variant == "storm":
                per_frame = np.delete(per_frame, record.params["flash_frames"])
            spread = (per_frame.max() - per_frame.min()) / per_frame.mean()
            assert spread < 0.25, (variant, severity, seed, per_frame.round(1))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), severity=st.integers(1, 5))
def test_rain_moves_as_one_rigid_layer_with_bounded_step(seed, severity):
    h, w = 40, 56
    clip = np.full((4, h, w, 3), 90, np.uint8)  # uniform: the output is the rain layer alone
    out, record = corrupt(clip, CorruptionSpec("rain", severity), seed)
    p = record.params
    assert 0.8 * p["length"] <= p["speed"] <= 1.5 * p["length"] and abs(p["slant_deg"]) <= 20
    offsets = np.array(weather.rain_offsets(p, len(clip)))
    steps = -np.diff(offsets, axis=0)
    assert np.all(np.hypot(*steps.T) <= p["speed"] + 1.5)
    # frame i+1 is frame i shifted by the step (on the torus), except next to the seams and borders
    # that the per-frame 3x3 blur treats differently
    for i, (dy, dx) in enumerate(steps):
        moved = np.roll(out[i], (int(dy), int(dx)), axis=(0, 1))
        keep = np.ones((h, w), bool)
        for r in (0, h - 1, dy % h, (dy - 1) % h):
            keep[r] = False
        for c in (0, w - 1, dx % w, (dx - 1) % w):
            keep[:, c] = False
        assert np.array_equal(moved[keep], out[i + 1][keep])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), severity=st.integers(1, 5), variant=st.sampled_from(["snow", "hail"]))
def test_snow_and_hail_layers_drift_at_a_constant_bounded_speed(seed, severity, variant):
    clip = still_clip(6, 32, 48)
    _, record = corrupt(clip, CorruptionSpec(variant, severity), seed)
    p = record.params
    bound = 4.0 if variant == "snow" else 1.2 * weather.HAIL_SPEED[severity - 1]
    assert 0 < p["speed_far"] < p["speed_near"] <= bound
    offsets = weather.particle_offsets(p, 6)
    for layer, speed in zip(offsets, (p["speed_near"], p["speed_far"])):
        steps = np.diff(np.array(layer), axis=0)
        assert np.all(np.hypot(*steps.T) <= speed + 1.5)
        assert np.ptp(steps, axis=0).max() <= 1  # constant velocity up to rounding


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), severity=st.integers(1, 5), t=st.integers(2, 16))
def test_moving_blocks_show_the_recorded_rectangles_and_move_a_bounded_step(seed, severity, t):
    h, w = 36, 60
    clip = np.full((t, h, w, 3), 128, np.uint8)
    out, record = corrupt(clip, CorruptionSpec("moving_blocks", severity, {"fill": "black"}), seed)
    blocks = record.params["blocks"]
    assert 1 <= len(blocks) <= occlusion.MAX_BLOCKS
    for i in range(t):
        expected = np.zeros((h, w), bool)
        for b in blocks:
            expected[b["y"][i] : b["y"][i] + b["h"], b["x"][i] : b["x"][i] + b["w"]] = True
        assert np.array_equal(out[i].max(axis=-1) == 0, expected)
    for b in blocks:
        assert np.abs(np.diff(b["y"])).max() <= occlusion.MAX_STEP_FRACTION * h + 1
        assert np.abs(np.diff(b["x"])).max() <= occlusion.MAX_STEP_FRACTION * w + 1
        assert min(b["y"]) >= 0 and max(b["y"]) + b["h"] <= h and min(b["x"]) >= 0 and max(b["x"]) + b["w"] <= w


def test_night_follows_the_spec_table_and_keeps_the_picture():
    """(gain, gamma, c) from the spec; on [0, 1] values gain, then gamma, then the cool tint (R x0.9,
    B x1.1), then zero-mean shot noise. Severity 5 maps white to (40, 45, 49)/255 and mid-grey to
    (11, 12, 13)/255 (the first table mapped both to 0: a black clip)."""
    table = ((0.8, 1.2, 60.0), (0.7, 1.35, 40.0), (0.6, 1.5, 25.0), (0.5, 1.7, 15.0), (0.4, 1.9, 10.0))
    assert photometric.NIGHT == table
    assert photometric.NIGHT_TINT == (0.9, 1.0, 1.1)
    levels = np.array([64, 128, 255], np.uint8)
    clip = np.repeat(np.repeat(levels[None, :, None, None], 3, axis=3), 8, axis=2).repeat(4, axis=0)  # [4, 3, 8, 3]
    clip = np.ascontiguousarray(np.repeat(clip, 3, axis=1))  # [4, 9, 8, 3]: three grey bands
    for severity, (gain, gamma, photons) in enumerate(photometric.NIGHT, start=1):
        _, record = corrupt(clip, CorruptionSpec("night", severity), 3)
        assert (record.params["gain"], record.params["gamma"], record.params["shot_noise_c"]) == (gain, gamma, photons)
        noiseless = replay(clip, {**record.to_dict(), "params": {**record.params, "shot_noise_c": 1e12}})
        for band, x in enumerate(levels / 255):
            expected = 255 * np.array([0.9, 1.0, 1.1]) * (gain * x) ** gamma
            got = noiseless[:, 3 * band : 3 * band + 3].reshape(-1, 3)
            assert np.abs(got - np.rint(expected)).max() <= 0, (severity, x, got[0], expected)
    # with noise: the level is kept on average (above it where the noise clips at 0), and it is blue
    big = np.full((16, 64, 64, 3), 128, np.uint8)
    for severity, (gain, gamma, _) in enumerate(photometric.NIGHT, start=1):
        mean = corrupt(big, CorruptionSpec("night", severity), 0)[0].reshape(-1, 3).mean(axis=0)
        expected = 255 * np.array([0.9, 1.0, 1.1]) * (gain * 128 / 255) ** gamma
        assert np.all(mean > expected - 1) and mean[0] < mean[2], (severity, mean, expected)
        if severity <= 3:
            assert np.allclose(mean, expected, atol=1.0), (severity, mean, expected)


def _night_whole_clip(clip, params):
    """apply_night as it was first written (whole-clip tables, the pool drawn with integers()): the reference bytes."""
    t, h, w, _ = clip.shape
    mean_lut, sigma_lut = photometric.night_curves(params)
    image = clip.reshape(t * h, w, 3)
    mean = cv2.LUT(image, mean_lut.reshape(256, 1, 3)).reshape(clip.shape)
    std = cv2.LUT(image, sigma_lut.reshape(256, 1, 3)).reshape(clip.shape)
    uniform = np.random.default_rng(params["noise_seed"]).integers(0, 256, size=(2 * h, 2 * w, 3), dtype=np.uint8)
    pool = cv2.LUT(uniform, photometric._NORMAL_Q)
    out = np.empty_like(clip)
    for i, (oy, ox) in enumerate(params["noise_offsets"]):
        noise = cv2.multiply(std[i], pool[oy : oy + h, ox : ox + w], scale=1.0 / 32)
        cv2.add(mean[i], noise, dst=out[i], dtype=cv2.CV_8U)
    return out


@pytest.mark.parametrize("shape", [(16, 224, 420), (5, 31, 17), (1, 8, 8)])
def test_night_gives_the_bytes_of_its_first_whole_clip_implementation(shape):
    """The frame-by-frame apply_night (and its pool drawn with Generator.bytes) is a speed-up only: every severity
    and seed gives the bytes of the whole-clip version, records without a tint included."""
    clip = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    for severity in range(1, 6):
        for seed in range(3):
            out, record = corrupt(clip, CorruptionSpec("night", severity), seed)
            assert np.array_equal(out, _night_whole_clip(clip, record.params)), (shape, severity, seed)
    untinted = {k: v for k, v in record.params.items() if k != "tint"}
    assert np.array_equal(photometric.apply_night(clip, untinted), _night_whole_clip(clip, untinted))


def test_night_records_without_a_tint_replay_untinted():
    """Records logged before the tint existed carry no `tint`: they replay the old (untinted) bytes."""
    clip = panning_clip(4, 32, 48)
    _, record = corrupt(clip, CorruptionSpec("night", 2), 5)
    old = {k: v for k, v in record.params.items() if k != "tint"}
    untinted = replay(clip, {**record.to_dict(), "params": {**old}})
    assert np.array_equal(untinted, replay(clip, {**record.to_dict(), "params": {**old, "tint": [1.0, 1.0, 1.0]}}))
    assert not np.array_equal(untinted, replay(clip, record))


def test_fog_strength_grows_strictly_and_its_layer_is_standardised():
    strengths = [s for s, _ in weather.FOG]
    assert weather.FOG == ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.75, 1.5), (3.0, 1.4))
    assert all(b > a for a, b in zip(strengths, strengths[1:]))
    clip = panning_clip(4, 96, 160)
    for severity in range(1, 6):
        for seed in range(3):
            _, record = corrupt(clip, CorruptionSpec("fog", severity), seed)
            layer = weather.fog_layer(96, 160, record.params)
            assert layer.dtype == np.float32 and layer.min() >= 0 and layer.max() <= 1
            assert abs(layer.mean() - weather.FOG_MEAN) < 0.01 and abs(layer.std() - weather.FOG_STD) < 0.01
    # a record without the layer statistics (logged before they existed) replays the old layer
    old = {k: v for k, v in record.params.items() if k not in ("layer_mean", "layer_std")}
    raw = weather.plasma_fractal(np.random.default_rng(old["fog_seed"]), 256, old["decay"])[:96, :160]
    assert np.array_equal(weather.fog_layer(96, 160, old), raw)
    old_record = {**record.to_dict(), "params": old}
    assert np.array_equal(replay(clip, old_record), replay(clip, old_record))
    assert not np.array_equal(replay(clip, old_record), replay(clip, record))


@pytest.mark.parametrize("seed", range(6))
def test_fog_distance_from_clean_grows_strictly_with_severity(seed):
    clip = panning_clip(4, 96, 160, seed)
    outs = [corrupt(clip, CorruptionSpec("fog", s), seed)[0] for s in range(1, 6)]
    distance = [np.abs(out.astype(np.int16) - clip).mean() for out in outs]
    assert all(b > a for a, b in zip(distance, distance[1:])), [round(d, 2) for d in distance]


def test_occlusion_covers_the_severity_fraction():
    h, w = 60, 80
    clip = np.full((2, h, w, 3), 128, np.uint8)
    for severity, target in enumerate(occlusion.COVERAGE, start=1):
        covered = np.mean(
            [(corrupt(clip, CorruptionSpec("static_blocks", severity), s)[0][0].max(-1) == 0).mean() for s in range(20)]
        )
        assert target * 0.8 <= covered <= target * 1.1, (severity, covered)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), severity=st.integers(1, 5), t=st.integers(2, 16))
def test_camera_shake_stays_within_amplitude_and_moves_half_of_it_per_frame_at_most(seed, severity, t):
    h, w = 40, 64
    _, record = corrupt(still_clip(t, h, w), CorruptionSpec("camera_shake", severity), seed)
    p = record.params
    amplitude = {
        "dx": shake.TRANSLATION[severity - 1] * w,
        "dy": shake.TRANSLATION[severity - 1] * h,
        "roll_deg": shake.ROLL_DEG[severity - 1],
        "zoom": shake.ZOOM[severity - 1],
    }
    for key, amp in amplitude.items():
        values = np.array(p[key])
        assert np.abs(values).max() <= amp * (1 + 1e-9)
        assert np.abs(np.diff(values)).max() <= amp / 2 * (1 + 1e-9)


def test_camera_shake_moves_the_picture_by_the_recorded_translation():
    h, w = 96, 128
    clip = still_clip(6, h, w, seed=3)
    _, record = corrupt(clip, CorruptionSpec("camera_shake", 5, {"motion_blur": False}), seed=4)
    p = copy.deepcopy(record.params)
    p["roll_deg"] = [0.0] * 6
    p["zoom"] = [0.0] * 6
    out = replay(clip, CorruptionRecord("shake", "camera_shake", 5, 4, p))
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float64) for f in out]
    for i in range(5):
        (sx, sy), _ = cv2.phaseCorrelate(gray[i], gray[i + 1])
        assert abs(sx - (p["dx"][i + 1] - p["dx"][i])) < 0.75 and abs(sy - (p["dy"][i + 1] - p["dy"][i])) < 0.75


def test_motion_blur_option_blurs_only_when_asked():
    clip = still_clip(8, 128, 224)  # big enough for inter-frame motion of several px
    sharp, rec_sharp = corrupt(clip, CorruptionSpec("camera_shake", 5, {"motion_blur": False}), 2)
    blurred, rec_blur = corrupt(clip, CorruptionSpec("camera_shake", 5, {"motion_blur": True}), 2)
    assert rec_sharp.params["dx"] == rec_blur.params["dx"]
    laplacian = lambda c: np.mean([cv2.Laplacian(f, cv2.CV_64F).var() for f in c])  # noqa: E731
    assert laplacian(blurred) < 0.9 * laplacian(sharp)


# ---------------------------------------------------------------------------------------------
# temporal


@settings(max_examples=40, deadline=None)
@given(
    t=st.integers(2, 24),
    severity=st.integers(1, 5),
    mode=st.sampled_from(["random", "segment", "keep_k"]),
    fill=st.sampled_from(["hold", "black"]),
    seed=st.integers(0, 2**32),
)
def test_frame_drop_drops_the_severity_fraction_and_holds_or_blacks_them(t, severity, mode, fill, seed):
    clip = numbered_clip(t)
    out, record = corrupt(clip, CorruptionSpec("frame_drop", severity, {"mode": mode, "fill": fill}), seed)
    dropped = record.params["dropped"]
    assert len(dropped) == min(max(1, round(temporal.DROP_FRACTION[severity - 1] * t)), t - 1)
    assert dropped == sorted(set(dropped)) and all(0 <= i < t for i in dropped)
    kept = [i for i in range(t) if i not in dropped]
    shown = out[:, 0, 0, 0].astype(int) // NUMBER_STEP - 1  # input frame index shown (-1 = black)
    for i in range(t):
        if i in kept:
            assert shown[i] == i
        elif fill == "black":
            assert not out[i].any()
        else:
            earlier = [k for k in kept if k < i]
            assert shown[i] == (earlier[-1] if earlier else kept[0])
    if mode == "segment":
        runs, run = [], 0
        for i in range(t):
            run = run + 1 if i in dropped else 0
            if run and (i + 1 == t or i + 1 not in dropped):
                runs.append(run)
        burst = temporal.BURST_LENGTH[severity - 1]
        # bursts share a gap only when there are more bursts than gaps between kept frames
        if -(-len(dropped) // burst) <= len(kept) + 1:
            assert max(runs) <= burst
    if mode == "keep_k":
        gaps = np.diff(kept)
        assert gaps.max() - gaps.min() <= 1 if len(kept) > 2 else True


def test_frame_drop_severity_nests_the_dropped_frames():
    clip = numbered_clip(16)
    for seed in range(5):
        sets = [set(corrupt(clip, CorruptionSpec("frame_drop", s), seed)[1].params["dropped"]) for s in range(1, 6)]
        assert all(a < b for a, b in zip(sets, sets[1:]))


@settings(max_examples=30, deadline=None)
@given(t=st.integers(1, 24), severity=st.integers(1, 5), seed=st.integers(0, 2**32))
def test_shuffle_moves_the_severity_fraction_of_frames(t, severity, seed):
    clip = numbered_clip(t)
    out, record = corrupt(clip, CorruptionSpec("shuffle", severity), seed)
    perm = record.params["permutation"]
    assert sorted(perm) == list(range(t))
    assert np.array_equal(out, clip[perm])
    moved = sum(p != i for i, p in enumerate(perm))
    expected = 0 if t == 1 else min(t, max(2, round(temporal.SHUFFLE_FRACTION[severity - 1] * t)))
    assert moved == expected


@settings(max_examples=20, deadline=None)
@given(t=st.integers(2, 32), seed=st.integers(0, 2**32))
def test_shuffle_frames_derangement_moves_every_frame(t, seed):
    clip = numbered_clip(t)
    out, perm = shuffle_frames(clip, seed, mode="derangement")
    assert perm.dtype == np.int64 and sorted(perm.tolist()) == list(range(t))
    assert np.all(perm != np.arange(t))
    assert np.array_equal(out, clip[perm])
    again, perm_again = shuffle_frames(clip, seed, mode="derangement")
    assert np.array_equal(perm, perm_again) and np.array_equal(out, again)
    # The severity-5 shuffle corruption with the same seed: one definition of "all frames deranged".
    assert corrupt(clip, CorruptionSpec("shuffle", 5), seed)[1].params["permutation"] == perm.tolist()


@settings(max_examples=30, deadline=None)
@given(t=st.integers(1, 32), seed=st.integers(0, 2**32))
def test_shuffle_frames_uniform_is_a_seeded_permutation(t, seed):
    clip = numbered_clip(t)
    out, perm = shuffle_frames(clip, seed)  # uniform is the default (tgrpo.shuffle)
    assert perm.dtype == np.int64 and sorted(perm.tolist()) == list(range(t))
    assert np.array_equal(out, clip[perm]) and out.shape == clip.shape
    again, perm_again = shuffle_frames(clip, seed, mode="uniform")
    assert np.array_equal(perm, perm_again) and np.array_equal(out, again)


def test_shuffle_frames_uniform_draws_every_permutation_including_the_identity():
    # Regression: the shuffled branch used to be a derangement only (Video-R1 shuffles uniformly), so the
    # identity and fixed points never occurred. Over 3 frames all 6 orders appear, each near 1/6.
    clip = numbered_clip(3)
    counts = Counter(tuple(shuffle_frames(clip, seed, mode="uniform")[1].tolist()) for seed in range(1200))
    assert len(counts) == 6 and (0, 1, 2) in counts
    assert all(120 <= n <= 280 for n in counts.values()), counts  # expected 200 each; > 5 sigma margin
    fixed_points = [int(np.sum(shuffle_frames(numbered_clip(8), seed)[1] == np.arange(8))) for seed in range(400)]
    assert 0.8 < np.mean(fixed_points) < 1.2  # a uniform permutation has 1 fixed point on average


def test_shuffle_frames_rejects_unknown_modes_and_bad_seeds():
    with pytest.raises(ValueError, match="uniform, derangement"):
        shuffle_frames(numbered_clip(4), 0, mode="reverse")
    with pytest.raises(ValueError, match="seed"):
        shuffle_frames(numbered_clip(4), -1)


def test_shuffle_modes_match_the_config_schema():
    from rova.config.tgrpo import SHUFFLE_MODES

    assert temporal.SHUFFLE_MODES == SHUFFLE_MODES


# ---------------------------------------------------------------------------------------------
# apply_random_corruption


def test_apply_random_corruption_draws_once_and_is_reproducible():
    cfg = CorruptionConfig(p_photometric=0.2, p_weather=0.2, p_occlusion=0.2, p_shake=0.1, p_temporal=0.1,
                           occlusion_fill="any", frame_drop_mode="any")
    clip = panning_clip(4, 24, 32)
    seen_clean = seen_corrupted = 0
    for seed in range(60):
        out, record = apply_random_corruption(clip, cfg, seed)
        again, record_again = apply_random_corruption(clip, cfg, seed)
        assert np.array_equal(out, again)
        if record is None:
            seen_clean += 1
            assert out is clip and record_again is None
            continue
        seen_corrupted += 1
        assert record.seed == seed and record.to_dict() == record_again.to_dict()
        assert np.array_equal(replay(clip, record.to_dict()), out)
        assert np.array_equal(corrupt(clip, record.spec, record.seed)[0], out)
    assert seen_clean and seen_corrupted


def test_clean_config_never_corrupts():
    clip = panning_clip(2, 16, 16)
    cfg = CorruptionConfig()
    assert all(apply_random_corruption(clip, cfg, s)[1] is None for s in range(200))


# ---------------------------------------------------------------------------------------------
# errors say what is wrong


@pytest.mark.parametrize(
    "clip, spec, seed, message",
    [
        (np.zeros((2, 16, 16, 3), np.float32), CorruptionSpec("fog", 1), 0, "uint8"),
        (np.zeros((16, 16, 3), np.uint8), CorruptionSpec("fog", 1), 0, r"\[T, H, W, 3\]"),
        (np.zeros((2, 16, 16, 4), np.uint8), CorruptionSpec("fog", 1), 0, r"\[T, H, W, 3\]"),
        (np.zeros((2, 4, 16, 3), np.uint8), CorruptionSpec("fog", 1), 0, "H, W >= 8"),
        (np.zeros((0, 16, 16, 3), np.uint8), CorruptionSpec("fog", 1), 0, "T >= 1"),
        (np.zeros((2, 16, 16, 3), np.uint8), CorruptionSpec("fogg", 1), 0, "unknown corruption variant 'fogg'"),
        (np.zeros((2, 16, 16, 3), np.uint8), CorruptionSpec("fog", 6), 0, "severity must be an integer 1-5"),
        (np.zeros((2, 16, 16, 3), np.uint8), CorruptionSpec("fog", 0), 0, "severity must be an integer 1-5"),
        (np.zeros((2, 16, 16, 3), np.uint8), CorruptionSpec("fog", 2, {"fill": "black"}), 0, "has no option"),
        (np.zeros((2, 16, 16, 3), np.uint8), CorruptionSpec("static_blocks", 2, {"fill": "grey"}), 0, "fill='grey'"),
        (np.zeros((2, 16, 16, 3), np.uint8), CorruptionSpec("camera_shake", 2, {"motion_blur": 1}), 0, "motion_blur=1"),
        (np.zeros((2, 16, 16, 3), np.uint8), CorruptionSpec("fog", 2), -1, "non-negative integer"),
        (np.zeros((2, 16, 16, 3), np.uint8), CorruptionSpec("fog", 2), 1.5, "non-negative integer"),
    ],
)
def test_bad_inputs_are_rejected_with_a_clear_message(clip, spec, seed, message):
    with pytest.raises((ValueError, TypeError), match=message):
        corrupt(clip, spec, seed)


def test_bad_records_are_rejected_with_a_clear_message():
    clip = numbered_clip(6)
    _, record = corrupt(clip, CorruptionSpec("frame_drop", 3), 1)
    data = record.to_dict()
    with pytest.raises(ValueError, match="exactly the keys"):
        CorruptionRecord.from_dict({k: v for k, v in data.items() if k != "seed"})
    with pytest.raises(ValueError, match="unknown variant"):
        replay(clip, {**data, "variant": "blizzard"})
    with pytest.raises(ValueError, match="belongs to 'temporal'"):
        replay(clip, {**data, "family": "weather"})
    with pytest.raises(ValueError, match="lacks parameter 'dropped'"):
        replay(clip, {**data, "params": {k: v for k, v in data["params"].items() if k != "dropped"}})
    _, shuffled = corrupt(clip, CorruptionSpec("shuffle", 5), 1)
    with pytest.raises(ValueError, match="no permutation of 4 frames"):
        replay(clip[:4], shuffled)


def test_output_does_not_depend_on_the_opencv_thread_count():
    """Data-loader workers often run OpenCV single-threaded; a replay must still give the same bytes."""
    clip = panning_clip(4, 64, 96)
    threads = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        single = [corrupt(clip, CorruptionSpec(v, 4), 9)[0] for v in VARIANTS]
    finally:
        cv2.setNumThreads(threads)
    for variant, expected in zip(VARIANTS, single):
        assert np.array_equal(corrupt(clip, CorruptionSpec(variant, 4), 9)[0], expected), variant
