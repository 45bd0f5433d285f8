"""T-GRPO step of a randomly initialised Qwen2.5-VL-3B (real architecture, bf16): time, tokens/s, memory, vision share.

    python benchmarks/gpu_3b_step.py [--out DIR] [--steps 1] [--generations 8] [--frames 16] [--completion 256]
    python benchmarks/gpu_3b_step.py --cpu-smoke [--out DIR]     # tiny sizes, 1 step, CPU: tests the script

No checkpoint is downloaded: the model is built with `from_config` from the Qwen2.5-VL-3B-Instruct config
values written below (36 layers, hidden 2048, vision depth 32 / hidden 1280, vocab 151936), random weights,
bf16 on the GPU, and trained by rova's own VideoGRPOTrainer (stage=tgrpo: clean x G, shuffled x G/2,
corrupted x G/2, KL-consistency reward) on the demo clips at `--frames` frames of about 128 x 28 x 28
pixels, with `--completion` new tokens per completion (a random model rarely emits EOS, so nearly every
completion is that long). Only the tokenizer and processor come from the tiny model directory (the token
ids of the special tokens are copied into the 3B config; sizes are the 3B's).

Runs twice in this process, model.share_vision_encoding=true then false (the baseline: one vision-tower
pass per completion row), each `--warmup` untimed step(s) then `--steps` timed steps, and reports per
setting: seconds per step, completion tokens per second, peak GPU memory, the vision tower's forward time
and its share of the step, and the shared / per-completion ratios. Writes gpu_3b_step.json and
gpu_3b_step.md into --out (default $OUT, else outputs/gpu_3b_step).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Qwen/Qwen2.5-VL-3B-Instruct config.json (sizes only; token ids come from the local tokenizer).
QWEN2_5_VL_3B = {
    "text": {
        "vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
        "num_attention_heads": 16, "num_key_value_heads": 2, "hidden_act": "silu", "max_position_embeddings": 128000,
        "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "use_sliding_window": False, "sliding_window": 32768,
        "max_window_layers": 70, "attention_dropout": 0.0,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    },
    "vision": {
        "depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "in_chans": 3,
        "out_hidden_size": 2048, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
        "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2, "hidden_act": "silu",
    },
}

# --cpu-smoke: the same code path at sizes a CPU runs in seconds (vocab still larger than the tokenizer's).
SMOKE = {
    "text": {**QWEN2_5_VL_3B["text"], "vocab_size": 1024, "hidden_size": 64, "intermediate_size": 128,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
             "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]}},
    "vision": {**QWEN2_5_VL_3B["vision"], "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
               "out_hidden_size": 64, "fullatt_block_indexes": [1]},
}


def build_config(sizes: dict, token_ids: dict):
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        text_config={**sizes["text"], **{k: v for k, v in token_ids.items() if k.endswith("token_id")}},
        vision_config=dict(sizes["vision"]),
        **{k: token_ids[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id",
                                       "vision_end_token_id")},
        tie_word_embeddings=sizes["text"]["tie_word_embeddings"],
    )


def install_random_model_loader(sizes: dict, device: str) -> dict:
    """Make rova's loader return a from_config model of `sizes` with the tiny model's processor.

    rova.stages.builders.build_rl_trainer imports load_model_and_processor at call time, so replacing the module
    attribute is enough; nothing in rova is edited. Returns a dict that receives the built model's facts.
    """
    import rova.models.loading as loading

    facts: dict = {}

    def load(cfg):
        import torch
        from transformers import AutoConfig, AutoProcessor, Qwen2_5_VLForConditionalGeneration

        from rova.models.families import get_family

        get_family("qwen2_5_vl").install_fixes()
        path = loading.ensure_model_files(cfg)  # the tiny directory: tokenizer, processor, special-token ids
        processor = AutoProcessor.from_pretrained(path)
        tiny = AutoConfig.from_pretrained(path)
        tok = processor.tokenizer
        token_ids = {
            "image_token_id": tiny.image_token_id, "video_token_id": tiny.video_token_id,
            "vision_start_token_id": tiny.vision_start_token_id, "vision_end_token_id": tiny.vision_end_token_id,
            "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id,
            "bos_token_id": tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id,
        }
        config = build_config(sizes, token_ids)
        dtype = getattr(torch, cfg.dtype)
        torch.manual_seed(0)
        start = time.perf_counter()
        with torch.device(device):  # initialise on the GPU: a CPU init of 3.8B parameters takes minutes
            model = Qwen2_5_VLForConditionalGeneration._from_config(
                config, dtype=dtype, attn_implementation=cfg.attn_implementation
            )
        model.to(device)  # a no-op when the context placed it; the trainer moves it anyway
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        facts.update(
            parameters=sum(p.numel() for p in model.parameters()),
            vision_parameters=sum(p.numel() for p in model.model.visual.parameters()),
            build_s=time.perf_counter() - start,
        )
        return model, processor

    loading.load_model_and_processor = load
    return facts


class Probe:
    """Per-step wall time, vision-tower forward time and generated completion tokens (a TrainerCallback)."""

    def __init__(self, trainer, sync):
        from transformers import TrainerCallback

        self.sync = sync
        self.steps: list[dict] = []
        self.vision_s = 0.0
        self.tokens = 0
        visual = trainer.model.model.visual
        forward = visual.forward

        def timed(*args, **kwargs):
            sync()
            start = time.perf_counter()
            out = forward(*args, **kwargs)
            sync()
            self.vision_s += time.perf_counter() - start
            return out

        visual.forward = timed
        generate_rows = trainer.generate_rows

        def counted(*args, **kwargs):
            generation = generate_rows(*args, **kwargs)
            self.tokens += sum(len(row) for row in generation.ids)
            return generation

        trainer.generate_rows = counted
        probe = self

        class Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                probe.sync()
                probe._start = time.perf_counter()
                probe.vision_s, probe.tokens = 0.0, 0

            def on_step_end(self, args, state, control, **kwargs):
                probe.sync()
                now = time.perf_counter()
                probe.steps.append({"step_s": now - probe._start, "vision_s": probe.vision_s,
                                    "completion_tokens": probe.tokens})
                probe._start, probe.vision_s, probe.tokens = now, 0.0, 0
                control.should_save = False  # a benchmark: no checkpoint (22 GB for the 3B with its optimizer)
                return control

        trainer.add_callback(Callback())


def overrides(args, out: Path, share: bool) -> list[str]:
    g = args.generations
    return [
        f"run.cache_dir={args.cache_dir}", f"run.output_root={out / 'outputs'}", "logger=none", "rollout=hf",
        "distributed=none", "stage=tgrpo", f"stage.max_steps={args.warmup + args.steps}", "stage.save_steps=100000",
        f"stage.num_generations={g}", f"stage.per_device_train_batch_size={g}", "objective.beta=0.0",
        f"stage.max_completion_length={args.completion}", "stage.logging_steps=1",
        f"stage.gradient_checkpointing={str(args.gradient_checkpointing).lower()}", f"model.dtype={args.dtype}",
        f"model.share_vision_encoding={str(share).lower()}",
        "data.demo_num_clips=8", "data.probe_workers=1", f"data.min_frames={args.frames}",
        f"data.max_frames={args.frames}", f"data.min_pixels={args.min_pixels}", f"data.max_pixels={args.max_pixels}",
        f"data.total_pixels={max(args.max_pixels * args.frames, 3211264)}", *args.overrides,
    ]


def measure(args, share: bool, device: str) -> dict:
    import torch

    from rova.config.compose import load
    from rova.config.paths import absolutize
    from rova.stages.builders import build_rl_trainer

    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with tempfile.TemporaryDirectory(prefix="gpu-3b-step-") as tmp:
        out = Path(tmp)
        _, cfg = load(overrides(args, out, share))
        cfg = absolutize(cfg, out)
        run_dir = out / "run"
        run_dir.mkdir()
        trainer, _ = build_rl_trainer(cfg, run_dir)
        trainer.share_vision_encoding = share
        # Every completion runs to --completion tokens (a random model's EOS is rare anyway): equal work per row.
        trainer.generation_config.min_new_tokens = args.completion
        probe = Probe(trainer, sync)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        trainer.train()
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
        del trainer
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    timed = probe.steps[args.warmup:]
    step_s = statistics.median(s["step_s"] for s in timed)
    vision_s = statistics.median(s["vision_s"] for s in timed)
    tokens = statistics.median(s["completion_tokens"] for s in timed)
    return {
        "share_vision_encoding": share, "steps_timed": len(timed), "step_s": step_s,
        "completion_tokens_per_step": tokens, "completion_tokens_per_s": tokens / step_s,
        "vision_forward_s": vision_s, "vision_share_of_step": vision_s / step_s, "peak_gpu_gib": peak,
        "all_steps": probe.steps,
    }


def write_report(result: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "gpu_3b_step.json", out_dir / "gpu_3b_step.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    shared, base = result["runs"]["shared"], result["runs"]["per_completion"]
    s = result["setup"]

    def gib(v):
        return "n/a (CPU)" if v is None else f"{v:.1f}"

    lines = [
        f"# T-GRPO step, random {s['model']} ({s['parameters'] / 1e6:,.1f} M parameters, {s['dtype']}) on {s['device']}",
        "",
        f"G = {s['generations']} clean + {s['shuffled']} shuffled + {s['corrupted']} corrupted completions, "
        f"{s['frames']} frames of {s['frame_hw']} px ({s['patches_per_frame']} patches of 28x28 per frame), "
        f"{s['completion']} completion tokens max; gradient checkpointing {s['gradient_checkpointing']}; "
        f"median of {s['steps']} step(s) after {s['warmup']} warm-up.",
        "",
        "| share_vision_encoding | s / step | completion tok / s | peak GPU GiB | vision fwd s | vision share |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, run in (("true (shared)", shared), ("false (per completion)", base)):
        lines.append(f"| {label} | {run['step_s']:.2f} | {run['completion_tokens_per_s']:.0f} | "
                     f"{gib(run['peak_gpu_gib'])} | {run['vision_forward_s']:.2f} | {run['vision_share_of_step']:.1%} |")
    r = result["ratios"]
    lines += [
        "",
        f"per-completion / shared: step time {r['step_time']:.2f}x, vision forward time {r['vision_forward']:.2f}x"
        + (f", peak memory {r['peak_memory']:.2f}x" if r.get("peak_memory") else ""),
        "",
        *(["No warm-up step (smoke mode): the first setting also pays the one-time costs; compare nothing here.", ""]
          if s["warmup"] == 0 else []),
        "Vision share = the vision tower's forward time (synchronised, every pass) / step time; its backward "
        "in the policy pass is not included.",
    ]
    md_path.write_text("\n".join(lines) + "\n")
    return json_path, md_path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes, 1 step, on CPU: tests this script")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON + markdown (default $OUT)")
    parser.add_argument("--steps", type=int, default=1, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (CUDA kernels, allocator)")
    parser.add_argument("--generations", type=int, default=8, help="G on the clean branch")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--completion", type=int, default=256, help="max new tokens per completion")
    parser.add_argument("--min-pixels", type=int, default=88000,
                        help="the 160x120 demo clips are upscaled to 364x280 = 130 patches of 28x28 per frame")
    parser.add_argument("--max-pixels", type=int, default=128 * 28 * 28)
    parser.add_argument("--no-gradient-checkpointing", dest="gradient_checkpointing", action="store_false",
                        help="keep every activation (Video-R1 trains the 3B/7B with gradient checkpointing)")
    parser.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "rova-bench-cache"))
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    import torch

    if args.cpu_smoke:
        sizes, device, args.dtype, model_name = SMOKE, "cpu", "float32", "Qwen2.5-VL (smoke sizes)"
        args.steps, args.warmup, args.generations, args.frames, args.completion = 1, 0, 4, 4, 8
        args.min_pixels, args.max_pixels = 3136, 6272
    else:
        if not torch.cuda.is_available():
            raise SystemExit("gpu_3b_step: no CUDA device (use --cpu-smoke to test the script on a CPU)")
        sizes, device, args.dtype, model_name = QWEN2_5_VL_3B, "cuda", "bfloat16", "Qwen2.5-VL-3B"
    out_dir = args.out or Path(os.environ.get("OUT") or REPO / "outputs" / "gpu_3b_step")

    facts = install_random_model_loader(sizes, device)
    runs = {}
    for label, share in (("shared", True), ("per_completion", False)):
        print(f"[gpu_3b_step] share_vision_encoding={share}: {args.warmup} warm-up + {args.steps} timed step(s)",
              flush=True)
        runs[label] = measure(args, share, device)
        run = runs[label]
        out_dir.mkdir(parents=True, exist_ok=True)  # what is done so far survives a timeout of the next setting
        (out_dir / "gpu_3b_step.partial.json").write_text(json.dumps({"facts": facts, "runs": runs}, indent=2))
        print(f"[gpu_3b_step]   {run['step_s']:.2f} s/step, {run['completion_tokens_per_s']:.0f} completion tok/s, "
              f"vision share {run['vision_share_of_step']:.1%}, peak {run['peak_gpu_gib']} GiB", flush=True)

    from rova.config.data import FrameSamplingConfig
    from rova.data.sampling import target_size

    sampling = FrameSamplingConfig(fps=2.0, min_frames=args.frames, max_frames=args.frames,
                                   min_pixels=args.min_pixels, max_pixels=args.max_pixels,
                                   total_pixels=max(args.max_pixels * args.frames, 3211264))
    height, width = target_size(120, 160, args.frames, sampling)  # the demo clips are 160x120
    g = args.generations
    result = {
        "setup": {
            "model": model_name, "parameters": facts.get("parameters"), "vision_parameters": facts.get("vision_parameters"),
            "model_build_s": facts.get("build_s"), "dtype": args.dtype, "device": torch.cuda.get_device_name()
            if device == "cuda" else "cpu", "torch": torch.__version__, "generations": g, "shuffled": max(1, g // 2),
            "corrupted": max(2, g // 2), "frames": args.frames, "frame_hw": f"{width}x{height}",
            "patches_per_frame": (height // 28) * (width // 28), "completion": args.completion, "steps": args.steps,
            "warmup": args.warmup, "gradient_checkpointing": args.gradient_checkpointing, "sizes": sizes,
        },
        "runs": runs,
        "ratios": {
            "step_time": runs["per_completion"]["step_s"] / runs["shared"]["step_s"],
            "vision_forward": runs["per_completion"]["vision_forward_s"] / max(runs["shared"]["vision_forward_s"], 1e-12),
            "peak_memory": (runs["per_completion"]["peak_gpu_gib"] / runs["shared"]["peak_gpu_gib"]
                            if runs["shared"]["peak_gpu_gib"] else None),
        },
    }
    json_path, md_path = write_report(result, out_dir)
    (out_dir / "gpu_3b_step.partial.json").unlink(missing_ok=True)
    print(md_path.read_text())
    print(f"[gpu_3b_step] wrote {json_path} and {md_path}")
    return result


if __name__ == "__main__":
    main()
