"""Put the weights save_pretrained wrote back into the live model, under whatever names it wrote them.

transformers 5 renames some models' weights between the checkpoint format and the live module tree
(Qwen2.5-VL: `model.layers.*` / `visual.*` on disk, `model.language_model.layers.*` / `model.visual.*` live):
from_pretrained applies the renaming, save_pretrained reverts it, and Trainer's resume applies neither
(rova/training/loop_fixes.py). The saved name of every live tensor is found here by running transformers' own
revert (the function save_pretrained calls) over the live state dict, so the map is exact for any model
whose conversion is a renaming. A model whose conversion fuses tensors (a MoE's experts saved one by one) is
read back through from_pretrained instead, which converts, at the cost of a second copy in CPU memory while it
loads. A checkpoint that leaves a weight unset or holds a weight the model lacks is an error naming the
checkpoint; nothing is loaded half-way silently.
"""

from __future__ import annotations

import json
from pathlib import Path

from rova.errors import CheckpointError

SAFE_WEIGHTS = "model.safetensors"
SAFE_WEIGHTS_INDEX = "model.safetensors.index.json"


def full_weight_files(checkpoint: str | Path) -> list[Path] | None:
    """The safetensors files of a checkpoint's full weights (one file or the shards of its index), else None."""
    folder = Path(checkpoint)
    if (folder / SAFE_WEIGHTS).is_file():
        return [folder / SAFE_WEIGHTS]
    index = folder / SAFE_WEIGHTS_INDEX
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        return [folder / name for name in sorted(set(weight_map.values()))]
    return None


def saved_to_live_names(model) -> dict[str, str]:
    """{name save_pretrained writes: live state-dict name} for every tensor of `model` (tied ones included)."""
    from transformers.core_model_loading import revert_weight_conversion

    live = model.state_dict()
    owner = {id(tensor): name for name, tensor in live.items()}
    mapping: dict[str, str] = {}
    for saved, tensor in revert_weight_conversion(model, dict(live)).items():
        name = owner.get(id(tensor))
        if name is None:
            raise FusedConversion(
                f"{type(model).__name__}: the checkpoint weight {saved!r} is not one live weight renamed"
            )
        mapping[saved] = name
    return mapping


class FusedConversion(CheckpointError):
    """The model's checkpoint format splits or fuses tensors: saved names do not map one to one."""


def load_saved_weights(model, files: list[Path]) -> None:
    """Copy every weight of `files` (written by save_pretrained of this model) into `model`, in place."""
    from safetensors.torch import load_file

    try:
        to_live = saved_to_live_names(model)
    except FusedConversion:
        return load_through_from_pretrained(model, files[0].parent)
    live = model.state_dict()
    loaded: set[str] = set()
    for file in files:
        shard = load_file(str(file), device="cpu")
        unknown = sorted(name for name in shard if name not in to_live)
        if unknown:
            raise CheckpointError(
                f"{file}: {len(unknown)} weights the model does not have (first: {', '.join(unknown[:3])}); "
                "is this checkpoint from another model?"
            )
        renamed = {to_live[name]: tensor for name, tensor in shard.items()}
        for name, tensor in renamed.items():
            if tuple(tensor.shape) != tuple(live[name].shape):
                raise CheckpointError(f"{file}: {name} has shape {tuple(tensor.shape)}, the model's is "
                                      f"{tuple(live[name].shape)}")
        model.load_state_dict(renamed, strict=False)
        loaded.update(renamed)
        del shard, renamed
    unset = _unset_weights(live, loaded)
    if unset:
        raise CheckpointError(
            f"{files[0].parent}: {len(unset)} model weights are not in the checkpoint (first: {', '.join(unset[:3])})"
        )


def load_through_from_pretrained(model, folder: Path) -> None:
    """Load `folder` as from_pretrained does (every conversion applied) into a CPU copy, then copy it into `model`."""
    import torch

    dtype = next(model.parameters()).dtype
    fresh = type(model).from_pretrained(str(folder), dtype=dtype, device_map="cpu")
    with torch.no_grad():
        result = model.load_state_dict(fresh.state_dict(), strict=False)
    live = model.state_dict()
    unset = _unset_weights(live, set(live) - set(result.missing_keys))
    if unset or result.unexpected_keys:
        raise CheckpointError(f"{folder}: from_pretrained gave weights that do not fit the model (unset: "
                              f"{unset[:3]}, unexpected: {result.unexpected_keys[:3]})")
    del fresh


def _unset_weights(live: dict, loaded: set[str]) -> list[str]:
    """Live weights neither loaded nor tied to a loaded one (lm_head shares the embeddings' storage and is saved
    once)."""
    loaded_storage = {live[name].data_ptr() for name in loaded}
    return sorted(name for name in live if name not in loaded and live[name].data_ptr() not in loaded_storage)
