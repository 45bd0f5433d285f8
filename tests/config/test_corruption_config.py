"""conf/corruption/*.yaml + CorruptionConfig: composition, validation at compose time, and the
family frequencies that draw_corruption produces."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.config.corruption import FAMILIES, VARIANTS_BY_FAMILY, CorruptionConfig
from rova.corruption import draw_corruption
from rova.errors import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"
PRESETS = ["none", "photometric", "weather", "occlusion", "shake", "temporal", "rova"]
P_KEYS = [f"p_{f}" for f in FAMILIES]


def compose_corruption(*overrides: str) -> CorruptionConfig:
    """What the launcher does: compose the whole config (schema + presets), validate, take the corruption group."""
    from rova.config.compose import load_typed

    overrides = [o.lstrip("+") if o.startswith("+corruption=") else o for o in overrides]
    return load_typed(list(overrides)).corruption


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_is_a_delta_over_the_schema_and_validates(preset):
    raw = yaml.safe_load((CONF / "corruption" / f"{preset}.yaml").read_text()) or {}
    assert set(raw) <= {f.name for f in dataclasses.fields(CorruptionConfig)}
    cfg = compose_corruption(f"+corruption={preset}")
    assert isinstance(cfg, CorruptionConfig)
    assert sum(getattr(cfg, k) for k in P_KEYS) <= 1
    if preset == "none":
        assert all(getattr(cfg, k) == 0 for k in P_KEYS) and cfg.p_clean == 1
    elif preset in FAMILIES:
        assert getattr(cfg, f"p_{preset}") == 1 and all(getattr(cfg, k) == 0 for k in P_KEYS if k != f"p_{preset}")
    else:
        assert all(getattr(cfg, k) > 0 for k in P_KEYS) and 0 < cfg.p_clean < 1


def test_group_and_key_overrides_work_from_the_command_line():
    cfg = compose_corruption("+corruption=weather", "corruption.p_weather=0.5")
    assert cfg.p_weather == 0.5 and cfg.p_clean == 0.5
    cfg = compose_corruption("+corruption=rova", "corruption.severity=[3,3]", "corruption.weather_variants=[fog]")
    assert cfg.severity == [3, 3] and cfg.weather_variants == ["fog"]


def test_a_sum_above_one_is_rejected_at_compose_time_naming_every_probability_key():
    with pytest.raises(ConfigError) as err:
        compose_corruption("+corruption=rova", "corruption.p_weather=0.9")
    for key in P_KEYS:
        assert f"corruption.{key}" in err.value.key
    assert "1.35" in str(err.value)


@pytest.mark.parametrize(
    "overrides, key, fragment",
    [
        ({"p_weather": -0.1}, "corruption.p_weather", "[0, 1]"),
        ({"p_shake": 1.5}, "corruption.p_shake", "[0, 1]"),
        ({"severity": [0, 5]}, "corruption.severity", "1 <= lo <= hi <= 5"),
        ({"severity": [4, 2]}, "corruption.severity", "[lo, hi]"),
        ({"severity": [1, 6]}, "corruption.severity", "[lo, hi]"),
        ({"severity": [3]}, "corruption.severity", "[3, 3] for a fixed level"),
        ({"weather_variants": ["rain", "blizzard"]}, "corruption.weather_variants", "'blizzard'"),
        ({"photometric_variants": ["night", "night"]}, "corruption.photometric_variants", "twice"),
        ({"p_occlusion": 0.3, "occlusion_variants": []}, "corruption.occlusion_variants", "empty"),
        ({"temporal_variants": ["rain"]}, "corruption.temporal_variants", "temporal has: frame_drop, shuffle"),
        ({"occlusion_fill": "grey"}, "corruption.occlusion_fill", "black, mean, noise, any"),
        ({"frame_drop_mode": "burst"}, "corruption.frame_drop_mode", "random, segment, keep_k, any"),
        ({"frame_drop_fill": "any"}, "corruption.frame_drop_fill", "hold, black"),
        ({"shake_motion_blur": "yes"}, "corruption.shake_motion_blur", "true or false"),
    ],
)
def test_bad_values_name_their_key(overrides, key, fragment):
    with pytest.raises(ConfigError) as err:
        CorruptionConfig(**overrides)
    assert err.value.key == key
    assert fragment in str(err.value)


def test_unknown_key_is_named():
    with pytest.raises(ConfigError) as err:
        CorruptionConfig.from_mapping({"p_wether": 0.2})
    assert err.value.key == "corruption.p_wether"
    assert CorruptionConfig.from_mapping({"p_weather": 0.2, "severity": (2, 4)}).severity == [2, 4]


def test_empty_variant_list_is_fine_when_its_family_is_off():
    assert CorruptionConfig(p_weather=0.0, weather_variants=[]).weather_variants == []


# ---------------------------------------------------------------------------------------------
# draw_corruption frequencies


def _check_frequencies(cfg: CorruptionConfig, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    specs = [draw_corruption(cfg, rng) for _ in range(n)]
    families = Counter("clean" if s is None else s.family for s in specs)
    expected = {f: getattr(cfg, f"p_{f}") for f in FAMILIES} | {"clean": cfg.p_clean}
    for name, p in expected.items():
        tolerance = 4.5 * np.sqrt(p * (1 - p) / n) + 1e-9  # ~1 false alarm in 10^5 per check
        assert abs(families[name] / n - p) <= tolerance, (name, families[name] / n, p)
    lo, hi = cfg.severity
    for spec in specs:
        if spec is not None:
            assert spec.variant in getattr(cfg, f"{spec.family}_variants")
            assert lo <= spec.severity <= hi


def test_rova_mix_frequencies_over_2000_draws():
    cfg = compose_corruption("+corruption=rova")
    _check_frequencies(cfg, 2000, seed=0)
    # and within a family, variants and severities are uniform
    rng = np.random.default_rng(1)
    weather = CorruptionConfig(p_weather=1.0)
    specs = [draw_corruption(weather, rng) for _ in range(2000)]
    variants = Counter(s.variant for s in specs)
    severities = Counter(s.severity for s in specs)
    assert set(variants) == set(VARIANTS_BY_FAMILY["weather"]) and set(severities) == {1, 2, 3, 4, 5}
    for count in (*variants.values(), *severities.values()):
        assert abs(count / 2000 - 0.2) <= 4.5 * np.sqrt(0.2 * 0.8 / 2000)


@settings(max_examples=12, deadline=None)
@given(weights=st.lists(st.integers(0, 20), min_size=6, max_size=6).filter(sum), seed=st.integers(0, 2**32))
def test_property_family_frequencies_match_any_valid_config(weights, seed):
    # the last weight is the clean remainder
    probs = [w / sum(weights) for w in weights[:5]]
    cfg = CorruptionConfig(**dict(zip(P_KEYS, probs)), severity=[2, 4])
    _check_frequencies(cfg, 2000, seed)


def test_draws_pass_the_configured_options():
    cfg = CorruptionConfig(p_occlusion=0.5, p_temporal=0.5, occlusion_fill="noise", frame_drop_mode="keep_k",
                           frame_drop_fill="black", temporal_variants=["frame_drop"])
    rng = np.random.default_rng(0)
    for _ in range(50):
        spec = draw_corruption(cfg, rng)
        if spec.family == "occlusion":
            assert spec.options == {"fill": "noise"}
        else:
            assert spec.options == {"mode": "keep_k", "fill": "black"}


def test_config_schema_imports_without_the_engine():
    """The launcher validates configs before anything heavy loads: no numpy/OpenCV behind the schema."""
    import subprocess
    import sys

    code = "import sys, rova.config.corruption; print(sorted(m for m in ('cv2', 'numpy', 'albucore') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
