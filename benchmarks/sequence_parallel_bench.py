"""Longest clip per process: one forward + backward pass of the small model with the sequence split over
distributed.sequence_parallel = 1 vs 2 processes (rova.models.sequence_parallel), peak memory per process.

    uv run python -m rova.bench sequence_parallel [--frames 128] [--size 112] [--step 64] [--max-frames 1024]
                                                  [--cache DIR] [--family qwen2_5_vl]

One row = a video prompt of F frames at a fixed pixel budget (size x size per frame: (size/28)^2 merged tokens
per frame pair for Qwen2.5-VL) plus a 32-token completion, scored as the RL trainer scores it (TRL's fused LM
head on the completion) and back-propagated. Each measurement runs in fresh processes (gloo on CPU for SP = 2),
which report the growth of their peak resident memory during the pass (weights, inputs and imports are loaded
before the baseline is read).

1. SP = 1 at --frames F: its peak is the budget B one process has.
2. SP = 2 at F, F + step, ... up to --max-frames: the largest F' whose per-process peak stays within B.
Prints the table and `longest clip within B: SP=2 holds F'/F = x the frames of SP=1`.

On GPUs: `--arch qwen2_5_vl_3b --device cuda` makes the same measurement for a randomly initialised Qwen2.5-VL-3B
(benchmarks/gpu_3b_step.py's sizes, bf16, sdpa, NCCL, rank r on cuda:r; peak = the growth of
torch.cuda.max_memory_allocated). It needs 2 GPUs and DeepSpeed (scripts/gpu_check.sh runs it when both are there).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

COMPLETION = 32


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rank(rank: int, world: int, port: int, args: dict, out: str) -> None:
    import numpy as np
    import torch

    torch.manual_seed(0)
    from trl.trainer.utils import add_fused_lm_head

    from rova.config.model import ModelConfig
    from rova.inference.padding import left_pad, right_pad
    from rova.inference.prompts import render_prompt
    from rova.inference.visual import model_inputs
    from rova.models.families import get_family
    from rova.models.loading import load_model_and_processor

    if world > 1:
        import torch.distributed as dist

        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("nccl" if args["device"] == "cuda" else "gloo", rank=rank, world_size=world)
    family = get_family(args["family"])
    cuda = args["device"] == "cuda"
    if cuda:
        torch.cuda.set_device(rank)
    model, processor = load_model_and_processor(ModelConfig(name="small", family=args["family"], path=args["model"]))
    if args["arch"] != "small":
        model = _random_3b(model, processor, f"cuda:{rank}" if cuda else "cpu")
    add_fused_lm_head(model, outputs=("log_probs",))
    model.train()
    frames = np.random.default_rng(0).integers(0, 256, (args["frames"], args["size"], args["size"], 3), dtype=np.uint8)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens?"}]}]
    prompt = family.encode(processor, render_prompt(processor, messages), frames, 2.0)
    tokens = family.token_ids(processor.tokenizer)
    completion = np.random.default_rng(1).integers(10, 200, COMPLETION).tolist()
    pad = processor.tokenizer.pad_token_id
    p_ids, p_mask = left_pad([prompt.input_ids], pad)
    c_ids, c_mask = right_pad([completion], pad)
    ids, mask = torch.cat([p_ids, c_ids], 1), torch.cat([p_mask, c_mask], 1)
    device = next(model.parameters()).device
    ids, mask = ids.to(device), mask.to(device)
    visual = {k: v.to(device) for k, v in prompt.visual.items()}

    def inputs(i, m, rows):
        return model_inputs(i, m, rows, image_token=tokens["image_pad"], video_token=tokens["video_pad"],
                            share_vision_encoding=False)

    if world > 1:
        from rova.models.sequence_parallel import build_groups, install_ulysses
        from rova.models.sequence_parallel.logps import sharded_completion_logps

        sp = build_groups(world)
        install_ulysses(sp, model.config.get_text_config(), model.config._attn_implementation)
        import torch.distributed as dist

        dist.barrier()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**20
    else:
        before, peak_before = _rss_mib(), _peak_mib()
    if world > 1:
        logps, _ = sharded_completion_logps(model, model.model, sp, ids, mask, COMPLETION, [visual],
                                            lambda t, v: inputs(t, torch.ones_like(t), [v]))
    else:
        labels = ids.masked_fill(mask == 0, -100)
        labels[:, :-COMPLETION] = -100
        logps = model(**inputs(ids, mask, [visual]), labels=labels, fused_lm_head=True).log_probs[:, -COMPLETION:]
    logps.float().sum().backward()
    if cuda:
        torch.cuda.synchronize()
        growth = torch.cuda.max_memory_allocated() / 2**20 - before
    else:
        growth = max(_peak_mib(), peak_before) - before
    Path(out, f"rank{rank}.json").write_text(json.dumps({"growth_mib": growth, "tokens": int(ids.size(1))}))


def _random_3b(small, processor, device):
    """A randomly initialised Qwen2.5-VL-3B (gpu_3b_step.py's sizes) with the small model's special-token ids."""
    import importlib.util

    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    spec = importlib.util.spec_from_file_location("gpu_3b_step", Path(__file__).with_name("gpu_3b_step.py"))
    gpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu)
    tok, cfg = processor.tokenizer, small.config
    token_ids = {"image_token_id": cfg.image_token_id, "video_token_id": cfg.video_token_id,
                 "vision_start_token_id": cfg.vision_start_token_id, "vision_end_token_id": cfg.vision_end_token_id,
                 "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id,
                 "bos_token_id": tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id}
    with torch.device(device):
        return Qwen2_5_VLForConditionalGeneration._from_config(
            gpu.build_config(gpu.QWEN2_5_VL_3B, token_ids), dtype=torch.bfloat16, attn_implementation="sdpa")


def _measure(args, frames: int, world: int) -> dict:
    """Fresh processes: peak growth per process (the largest of the group) and the sequence length."""
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, __file__, "--worker", json.dumps({**vars(args), "frames": frames, "world": world,
                                                                  "out": out})]
        env = dict(os.environ, OMP_NUM_THREADS="1", MALLOC_MMAP_THRESHOLD_="65536")
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        results = [json.loads(p.read_text()) for p in sorted(Path(out).glob("rank*.json"))]
    return {"frames": frames, "world": world, "tokens": results[0]["tokens"],
            "peak_mib": max(r["growth_mib"] for r in results)}


def _worker(spec: str) -> None:
    args = json.loads(spec)
    world = args["world"]
    if world == 1:
        _rank(0, 1, 0, args, args["out"])
        return
    import torch.multiprocessing as mp

    from rova.launch.workers import free_port

    mp.spawn(_rank, args=(world, free_port(), args, args["out"]), nprocs=world)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=128, help="SP = 1's clip: its peak is the budget")
    parser.add_argument("--size", type=int, default=112, help="frame side in pixels (a multiple of 28)")
    parser.add_argument("--step", type=int, default=64, help="frames added per SP = 2 measurement")
    parser.add_argument("--max-frames", type=int, default=1024)
    parser.add_argument("--family", default="qwen2_5_vl")
    parser.add_argument("--arch", default="small", choices=("small", "qwen2_5_vl_3b"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "rova-bench"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker)
        return 0
    from rova.models.tiny import SPECS, ensure_tiny_model

    if args.device == "cuda":
        import torch

        if torch.cuda.device_count() < 2:
            print(f"skipped: SP = 2 needs 2 GPUs, this machine has {torch.cuda.device_count()}")
            return 0
    args.model = str(ensure_tiny_model(Path(args.cache) / f"small-{args.family}", args.family, SPECS["small"]))
    print(f"{args.arch} {args.family} model on {args.device}, frames {args.size}x{args.size}, {COMPLETION}-token completion, forward + "
          "backward, peak memory growth per process", flush=True)
    budget = _measure(args, args.frames, 1)
    rows = [budget]
    print(f"SP=1  {args.frames:5d} frames  {budget['tokens']:6d} tokens  {budget['peak_mib']:8.1f} MiB  (budget B)",
          flush=True)
    longest = 0
    frames = args.frames
    while frames <= args.max_frames:
        row = _measure(args, frames, 2)
        rows.append(row)
        fits = row["peak_mib"] <= budget["peak_mib"]
        print(f"SP=2  {frames:5d} frames  {row['tokens']:6d} tokens  {row['peak_mib']:8.1f} MiB per process  "
              f"{'within B' if fits else 'over B'}", flush=True)
        if not fits:
            break
        longest = frames
        frames += args.step
    same = next(r for r in rows if r["world"] == 2 and r["frames"] == args.frames)
    print(f"at {args.frames} frames: SP=2 peak per process / SP=1 peak = {same['peak_mib'] / budget['peak_mib']:.2f}")
    capped = " (the cap: raise --max-frames)" if frames > args.max_frames else ""
    print(f"longest clip within B = {budget['peak_mib']:.0f} MiB: SP=1 {args.frames} frames, SP=2 {longest} frames "
          f"= {longest / args.frames:.2f}x{capped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
