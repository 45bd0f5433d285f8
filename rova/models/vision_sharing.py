"""Encode each distinct clip ONCE per forward pass, however many rows of the batch show it.

GRPO gives every prompt G completion rows and each row carries that prompt's clip, so a plain VL model's
forward runs the vision tower on G copies of one clip in every pass (rollout prefill, old-policy, reference,
policy, KL consistency). Here the caller passes:
  * the pixels of the DISTINCT clips only (`pixel_values_videos` / `pixel_values`), in order of first use;
  * the full per-row grids (`video_grid_thw`, `image_grid_thw`) and per-video timing, exactly as without
    sharing: M-RoPE position ids are still computed from every row's grid;
  * `video_clip_index` / `image_clip_index`: for each video (image) of the batch, in row order, the number of
    the distinct clip it shows (0, 1, 2, ... in order of first appearance).
`install_shared_vision_encoding(family)` wraps three methods of the family's inner model classes (the ones
holding `visual`; rova.models.families) on the class, so the policy, the reference model, `generate` and TRL's
fused LM head all use them:
  * `forward` pops the two indices (they never reach the language model) and holds them for this call
    (`generate` rejects unknown keyword arguments: wrap it in `clip_index_scope(model, ...)` instead);
  * `get_video_features` / `get_image_features` run the vision tower once on the distinct clips and index the
    per-clip embeddings out to every video (image) of the batch, and likewise every per-token field the family
    declares (Qwen3-VL's DeepStack features). Indexing (not detaching) keeps autograd exact: a shared clip's
    encoding receives the sum of its rows' gradients.
Without the indices all three are upstream's methods, unchanged. The tower still runs as one call per forward
(all distinct clips packed, as upstream packs all rows): sharing cuts the patches it encodes, not its calls.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

from rova.errors import RovaError

VIDEO, IMAGE = "video", "image"
INDEX_KWARGS = {VIDEO: "video_clip_index", IMAGE: "image_clip_index"}

_UPSTREAM_ATTR = "_rova_upstream_vision_methods"
_ACTIVE_ATTR = "_rova_clip_index"
_FIELDS_ATTR = "_rova_per_token_fields"


def _model_classes(family=None) -> tuple[type, ...]:
    """The inner model classes of `family`, or of every family (clip_index_scope on any model)."""
    from rova.models.families import family_names, get_family

    families = [family] if family is not None else [get_family(name) for name in family_names()]
    return tuple(cls for f in families for cls in f.inner_model_classes())


def _per_token_fields(cls) -> tuple[str, ...]:
    return getattr(cls, _FIELDS_ATTR, ())


def first_uses(index: list[int]) -> list[int]:
    """Position of the first use of each distinct clip; checks the clips are numbered 0, 1, ... in that order."""
    first: list[int] = []
    for position, clip in enumerate(index):
        if clip == len(first):
            first.append(position)
        elif not 0 <= clip < len(first):
            raise RovaError(
                f"shared vision encoding: clip index {list(index)} must number distinct clips 0, 1, 2, ... in order "
                "of first appearance (rova.inference.visual.stack_shared_visual builds it)"
            )
    return first


def _encode_shared(self, modality: str, upstream, pixels, grid, kwargs):
    index = (self.__dict__.get(_ACTIVE_ATTR) or {}).get(modality)
    if index is None:
        return upstream(self, pixels, grid, **kwargs)
    if grid is None or len(index) != grid.shape[0]:
        raise RovaError(
            f"shared vision encoding: {INDEX_KWARGS[modality]} has {len(index)} entries but the batch has "
            f"{0 if grid is None else grid.shape[0]} {modality} grids (one entry per {modality}, in row order)"
        )
    import torch

    distinct_grid = grid[torch.as_tensor(first_uses(index), device=grid.device)]
    expected = int(distinct_grid.prod(-1).sum())
    if pixels.shape[0] != expected:
        raise RovaError(
            f"shared vision encoding: {pixels.shape[0]} {modality} patches given, but the {distinct_grid.shape[0]} "
            f"distinct clips of {INDEX_KWARGS[modality]} have {expected}; pass each distinct clip's pixels once"
        )
    # The index is consumed here: an upstream method that calls the other modality's method (Qwen3-VL's video
    # features are its image features) must not apply this modality's index a second time.
    held = self.__dict__.get(_ACTIVE_ATTR)
    self.__dict__[_ACTIVE_ATTR] = None
    try:
        out = upstream(self, pixels, distinct_grid, **kwargs)
    finally:
        self.__dict__[_ACTIVE_ATTR] = held
    per_clip = out.pooler_output  # a tuple: one [tokens, hidden] tensor per distinct clip
    out.pooler_output = tuple(per_clip[clip] for clip in index)
    tokens = [int(t.shape[0]) for t in per_clip]
    for name in _per_token_fields(type(self)):
        value = getattr(out, name, None)
        if value is not None:  # [all distinct clips' tokens, hidden] per layer -> every row's clip, in order
            setattr(out, name, [torch.cat([part[clip] for clip in index]) for part in
                                (layer.split(tokens) for layer in value)])
    return out


@contextmanager
def _active(models, video_clip_index, image_clip_index):
    index = {
        VIDEO: None if video_clip_index is None else [int(i) for i in video_clip_index],
        IMAGE: None if image_clip_index is None else [int(i) for i in image_clip_index],
    }
    previous = [m.__dict__.get(_ACTIVE_ATTR) for m in models]
    for m in models:
        m.__dict__[_ACTIVE_ATTR] = index
    try:
        yield
    finally:
        for m, value in zip(models, previous):
            m.__dict__[_ACTIVE_ATTR] = value


@contextmanager
def clip_index_scope(model, video_clip_index=None, image_clip_index=None):
    """Hold the clip indices for every forward of `model` inside the block: for `generate`, which validates its
    keyword arguments against the model's signature and would reject the index kwargs. Only the prefill (the
    forward that carries pixels) reads them."""
    inner = [m for m in model.modules() if isinstance(m, _model_classes())]
    if (video_clip_index is not None or image_clip_index is not None) and not inner:
        raise RovaError(f"shared vision encoding: {type(model).__name__} holds no model of a known family")
    with _active(inner, video_clip_index, image_clip_index):
        yield


def generate_sharing_clips(model, inputs: dict, **kwargs):
    """`model.generate(**inputs, **kwargs)` where `inputs` may carry stack_shared_visual's clip indices: they
    reach the prefill through clip_index_scope, since generate() rejects unknown keyword arguments."""
    inputs = dict(inputs)
    indices = {k: inputs.pop(k) for k in ("video_clip_index", "image_clip_index") if k in inputs}
    with clip_index_scope(model, **indices):
        return model.generate(**inputs, **kwargs)


def _wrap_forward(upstream):
    @functools.wraps(upstream)
    def forward(self, *args, video_clip_index=None, image_clip_index=None, **kwargs):
        if video_clip_index is None and image_clip_index is None:
            return upstream(self, *args, **kwargs)
        with _active([self], video_clip_index, image_clip_index):
            return upstream(self, *args, **kwargs)

    return forward


def _wrap_features(upstream, modality: str):
    @functools.wraps(upstream)
    def get_features(self, pixels, grid=None, **kwargs):
        return _encode_shared(self, modality, upstream, pixels, grid, kwargs)

    return get_features


_METHODS = ("forward", "get_video_features", "get_image_features")


def install_shared_vision_encoding(family) -> None:
    """Wrap forward / get_video_features / get_image_features of `family`'s inner model classes (idempotent,
    class-level)."""
    for cls in _model_classes(family):
        if _UPSTREAM_ATTR in cls.__dict__:
            continue
        missing = [name for name in _METHODS if name not in cls.__dict__]
        if missing:
            import transformers

            raise RovaError(
                f"transformers {transformers.__version__}: {cls.__name__} no longer defines {', '.join(missing)}; "
                "rova/models/vision_sharing.py must be updated (or run with model.share_vision_encoding=false)"
            )
        upstream = {name: cls.__dict__[name] for name in _METHODS}
        setattr(cls, _UPSTREAM_ATTR, upstream)
        setattr(cls, _FIELDS_ATTR, tuple(family.per_token_feature_fields))
        cls.forward = _wrap_forward(upstream["forward"])
        cls.get_video_features = _wrap_features(upstream["get_video_features"], VIDEO)
        cls.get_image_features = _wrap_features(upstream["get_image_features"], IMAGE)


def uninstall_shared_vision_encoding(family=None) -> None:
    """Restore upstream's methods (tests compare against them); every family's when `family` is None."""
    for cls in _model_classes(family):
        upstream = cls.__dict__.get(_UPSTREAM_ATTR)
        if upstream is None:
            continue
        for name, method in upstream.items():
            setattr(cls, name, method)
        delattr(cls, _UPSTREAM_ATTR)
        delattr(cls, _FIELDS_ATTR)
