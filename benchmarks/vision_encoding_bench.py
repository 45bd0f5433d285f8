"""Vision-tower work per GRPO step: each clip encoded once per pass (shared) vs once per completion row.

    uv run python benchmarks/vision_encoding_bench.py [--stage tgrpo|grpo] [--generations 4] [--prompts 2]
                                                      [--steps 1] [OVERRIDE ...]

Runs `--steps` real training steps of the tiny Qwen2.5-VL twice in this process, from the same seed: with
`share_vision_encoding` on (rova/models/vision_sharing.py), then off (the baseline: every completion row
brings its own copy of the clip). The step has every pass that sees a clip: generation (prefill), the
KL-consistency reward (clean + corrupted clip), old-policy and reference log-probs, the policy loss and the
auxiliary KL loss, for `--prompts` prompts per process. `--stage tgrpo` (default) generates the branches
clean (G), shuffled (G/2) and corrupted (max(2, G/2)) completions per prompt; each pass's ratio is then its
rows per distinct clip (G/2 on the smaller branches). `--stage grpo` has the clean branch only (the corrupted
clip still feeds the KL reward and loss): every pass encodes G x fewer.
Prints, per pass and per step: vision-tower calls, clips and patches encoded, vision-tower forward FLOPs
(torch's FlopCounterMode around the tower's forward; the policy pass's backward scales the same way) and the
baseline / shared ratio, plus the step's wall time (informative only on a shared CPU). Extra arguments are
Hydra overrides (e.g. `data.num_frames=8`). Needs no GPU; runs offline (builds the tiny model and demo data
into --cache-dir on first use).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
def overrides(args, out: Path) -> list[str]:
    g = args.generations
    return [
        f"run.cache_dir={args.cache_dir}", f"run.output_root={out / 'outputs'}", "logger=none",
        f"stage={args.stage}", "corruption=weather", f"stage.max_steps={args.steps}", "stage.save_steps=1000",
        "objective.beta=0.04", "stage.num_iterations=2", f"stage.num_generations={g}",
        f"stage.per_device_train_batch_size={g * args.prompts}", f"tgrpo.shuffled_generations={max(1, g // 2)}",
        f"tgrpo.corrupted_generations={max(2, g // 2)}", "reward.w_kl=1.0", "reward.kl_loss_coef=0.5",
        f"data.demo_num_clips={max(8, 2 * args.prompts)}", *args.overrides,
    ]


def measure(args, share: bool):
    from rova.config.compose import load
    from rova.config.paths import absolutize
    from rova.stages.builders import build_rl_trainer
    from rova.training.vision_probe import VisionProbe, attribute_passes

    with tempfile.TemporaryDirectory(prefix="vision-bench-") as tmp:
        out = Path(tmp)
        _, cfg = load(overrides(args, out))
        cfg = absolutize(cfg, out)
        run_dir = out / "run"
        run_dir.mkdir()
        trainer, _ = build_rl_trainer(cfg, run_dir)
        trainer.share_vision_encoding = share
        work = VisionProbe(trainer.model, trainer.ref_model, flops=True)
        attribute_passes(trainer, work)
        start = time.perf_counter()
        trainer.train()
        seconds = (time.perf_counter() - start) / args.steps
        work.close()
    return work, seconds


def report(args, shared, baseline, times: dict[str, float]) -> None:
    from rova.training.vision_probe import PASSES

    steps = args.steps
    branches = (f" (+{max(1, args.generations // 2)} shuffled, +{max(2, args.generations // 2)} corrupted)"
                if args.stage == "tgrpo" else " (clean branch only)")
    print(f"\nvision-tower work per step, stage={args.stage}: {args.prompts} prompt(s) x G={args.generations}"
          f"{branches} per process, {steps} step(s) averaged")
    header = f"{'pass':<12}{'calls':>7}{'clips shared':>14}{'clips base':>12}{'patches shared':>16}" \
             f"{'patches base':>14}{'GFLOP shared':>14}{'GFLOP base':>12}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for name in (*PASSES, "total"):
        def value(counter):
            return sum(counter.values()) if name == "total" else counter[name]
        ratio = value(baseline.flops) / value(shared.flops) if value(shared.flops) else float("nan")
        print(f"{name:<12}{value(shared.calls) / steps:>7.0f}{value(shared.clips) / steps:>14.0f}"
              f"{value(baseline.clips) / steps:>12.0f}{value(shared.patches) / steps:>16.0f}"
              f"{value(baseline.patches) / steps:>14.0f}{value(shared.flops) / steps / 1e9:>14.4f}"
              f"{value(baseline.flops) / steps / 1e9:>12.4f}{ratio:>7.2f}x")
    calls = sum(shared.calls.values()), sum(baseline.calls.values())
    print(f"vision-tower calls per step: shared {calls[0] / steps:.0f}, per-completion {calls[1] / steps:.0f} "
          "(one packed call per forward either way; sharing cuts what each call encodes)")
    print(f"patches encoded: {sum(baseline.patches.values()) / max(1, sum(shared.patches.values())):.2f}x fewer; "
          f"vision FLOPs: {sum(baseline.flops.values()) / max(1, sum(shared.flops.values())):.2f}x fewer "
          f"(G = {args.generations})")
    print(f"step wall time: shared {times['shared']:.2f} s, per-completion {times['baseline']:.2f} s "
          "(tiny model: the vision tower is a small part of the step)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=("tgrpo", "grpo"), default="tgrpo")
    parser.add_argument("--generations", type=int, default=4, help="G, completions per prompt on the clean branch")
    parser.add_argument("--prompts", type=int, default=2, help="prompts per process (per-device batch = G x prompts)")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "rova-bench-cache"))
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    results, times = {}, {}
    for label, share in (("shared", True), ("baseline", False)):
        results[label], times[label] = measure(args, share)
    report(args, results["shared"], results["baseline"], times)


if __name__ == "__main__":
    main()
