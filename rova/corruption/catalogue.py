"""The names of every corruption family, variant and option value.

Kept free of numpy/OpenCV imports so that config validation (`config.py`) stays instant on the
launch path. The family modules register an implementation for each name listed here, and a test
checks that the two agree.
"""

from __future__ import annotations

FAMILIES: tuple[str, ...] = ("photometric", "weather", "occlusion", "shake", "temporal")

VARIANTS_BY_FAMILY: dict[str, tuple[str, ...]] = {
    "photometric": ("overexposure", "dusk", "night", "shadows", "contrast"),
    "weather": ("rain", "storm", "snow", "hail", "fog"),
    "occlusion": ("static_blocks", "moving_blocks"),
    "shake": ("camera_shake",),
    "temporal": ("frame_drop", "shuffle"),
}

# variant -> family; variant names are unique across families, so a spec needs only the variant.
FAMILY_OF: dict[str, str] = {v: f for f, vs in VARIANTS_BY_FAMILY.items() for v in vs}

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# Per-variant options: name -> allowed values, the first one being the default. "any" means the
# value is drawn uniformly per clip from the other choices (and recorded).
OCCLUSION_FILLS: tuple[str, ...] = ("black", "mean", "noise", "any")
FRAME_DROP_MODES: tuple[str, ...] = ("random", "segment", "keep_k", "any")
FRAME_DROP_FILLS: tuple[str, ...] = ("hold", "black")

OPTIONS: dict[str, dict[str, tuple]] = {
    "static_blocks": {"fill": OCCLUSION_FILLS},
    "moving_blocks": {"fill": OCCLUSION_FILLS},
    "camera_shake": {"motion_blur": (True, False)},
    "frame_drop": {"mode": FRAME_DROP_MODES, "fill": FRAME_DROP_FILLS},
}
