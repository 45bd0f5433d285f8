"""Two gloo processes on the tiny models: the sharded passes against one process's plain ones.

`run_pair(model_dir, family, out)` spawns 2 processes; each computes the plain (unsharded) log-probs, entropies,
completion logits and parameter gradients of one batch, then the same with the sequence split over an SP group
of 2 (rova.models.sequence_parallel), and writes what it measured to `out/rank<r>.json`. The batch: two video
prompts of different lengths (left padding), completions of different lengths (right padding), and a repeat of
both rows, so a clip is shown by two rows of a pass.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch


def _batch(family, processor):
    from rova.inference.padding import left_pad, right_pad
    from rova.inference.prompts import render_prompt

    rng = np.random.default_rng(0)
    f = family.frame_factor
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What moves first?"}]}]
    text = render_prompt(processor, messages)
    prompts = [family.encode(processor, text, rng.integers(0, 256, (n, 2 * f, 2 * f, 3), dtype=np.uint8), 2.0)
               for n in (4, 6)]
    completions = [rng.integers(10, 200, size=k).tolist() for k in (5, 3)]
    pad = processor.tokenizer.pad_token_id
    p_ids, p_mask = left_pad([p.input_ids for p in prompts] * 2, pad)
    c_ids, c_mask = right_pad(completions * 2, pad)
    rows = [p.visual for p in prompts] * 2  # rows 2, 3 show the clips of rows 0, 1 (the same tensors)
    return torch.cat([p_ids, c_ids], 1), torch.cat([p_mask, c_mask], 1), c_ids.size(1), rows


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)) for n, p in model.named_parameters()}


def _worker(rank: int, world: int, port: int, model_dir: str, family_name: str, out: str) -> None:
    import torch.distributed as dist
    from trl.trainer.utils import add_fused_lm_head

    from rova.config.model import ModelConfig
    from rova.inference.visual import model_inputs
    from rova.models.families import get_family
    from rova.models.loading import load_model_and_processor
    from rova.models.sequence_parallel import build_groups, install_ulysses, uninstall_ulysses
    from rova.models.sequence_parallel.logps import sharded_completion_logits, sharded_completion_logps
    from rova.models.sequence_parallel.vision import VisionCache

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    family = get_family(family_name)
    model, processor = load_model_and_processor(ModelConfig(name="tiny", family=family_name, path=model_dir))
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    model.train()
    ids, mask, keep, rows = _batch(family, processor)
    tokens = family.token_ids(processor.tokenizer)

    def inputs(i, m, r):
        return model_inputs(i, m, r, image_token=tokens["image_pad"], video_token=tokens["video_pad"],
                            share_vision_encoding=False)

    # one process, unsharded: TRL's fused head over the padded batch, and the completion logits
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :-keep] = -100
    plain = model(**inputs(ids, mask, rows), labels=labels, fused_lm_head=True)
    weights = torch.linspace(-1.0, 2.0, ids.size(0) * keep).reshape(ids.size(0), keep)
    (plain.log_probs[:, -keep:] * weights).sum().backward()
    plain_grads = _grads(model)
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        plain_logits = model(**inputs(ids, mask, rows), logits_to_keep=keep + 1).logits[:, :-1]

    sp = build_groups(world)
    install_ulysses(sp, model.config.get_text_config(), model.config._attn_implementation)
    cache, step_cache = VisionCache(), VisionCache()

    def row_inputs(t, visual_row):
        return inputs(t, torch.ones_like(t), [visual_row])

    logps, entropy = sharded_completion_logps(model, model.model, sp, ids, mask, keep, rows, row_inputs,
                                              compute_entropy=True, step_cache=step_cache, cache=cache)
    (logps * weights).sum().backward()
    worst, vision_grad = 0.0, 0.0
    for name, grad in _grads(model).items():
        dist.all_reduce(grad)  # data parallelism's sum; divided by the world size below, as DDP / ZeRO average
        grad /= world
        ref = plain_grads[name]
        worst = max(worst, ((grad - ref).norm() / (ref.norm() + 1e-12)).item())
        if ".visual." in f".{name}":
            vision_grad += ref.norm().item()
    with torch.no_grad():
        logits = sharded_completion_logits(model, model.model, sp, ids, mask, keep, rows, row_inputs)
    completion_mask = mask[:, -keep:].bool()
    uninstall_ulysses()
    result = {
        "rank": rank,
        "logps": (logps.detach() - plain.log_probs[:, -keep:]).abs().max().item(),
        "entropy": (entropy.detach() - plain.entropy[:, -keep:]).abs().max().item(),
        "logits": (logits - plain_logits)[completion_mask].abs().max().item(),
        "masked_zero": bool((logps.detach()[~completion_mask] == 0).all()),
        "grad_rel": worst,
        "vision_grad_norm": vision_grad,
        "encoded_patches": cache.encoded_patches,
        "clip_patches": [int(r["video_grid_thw"].prod()) for r in rows[:2]],
    }
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


def run_pair(model_dir: Path, family: str, out: Path) -> list[dict]:
    import torch.multiprocessing as mp

    from rova.launch.workers import free_port

    out.mkdir(parents=True, exist_ok=True)
    mp.spawn(_worker, args=(2, free_port(), str(model_dir), family, str(out)), nprocs=2)
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
