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
baseline / shared ratio. Then the time: `--repeats` runs of `--timed-steps` steps per config, alternating, without
the FLOP counter (a dispatch mode on every tower op: it slows the tower 5-10x), after a discarded
warm-up run (a process's first training run pays its imports and warm-up, 0.3-0.5 s a step in a 1-step run):
median wall seconds per step, per pass and inside the vision tower. Extra arguments are
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


def measure(args, share: bool, flops: bool = True, steps: int | None = None):
    """One training run of `steps` (default --steps) steps: (the probe, with per-pass counts and seconds, the
    train() wall seconds per step). FLOP counting (a dispatch mode around every tower op) slows the tower: the
    timed runs go without it."""
    from rova.config.compose import load
    from rova.config.paths import absolutize
    from rova.stages.builders import build_rl_trainer
    from rova.training.vision_probe import VisionProbe, attribute_passes

    steps = steps or args.steps
    with tempfile.TemporaryDirectory(prefix="vision-bench-") as tmp:
        out = Path(tmp)
        _, cfg = load([*overrides(args, out), f"stage.max_steps={steps}"])
        cfg = absolutize(cfg, out)
        run_dir = out / "run"
        run_dir.mkdir()
        trainer, _ = build_rl_trainer(cfg, run_dir)
        trainer.share_vision_encoding = share
        work = VisionProbe(trainer.model, trainer.ref_model, flops=flops)
        attribute_passes(trainer, work)
        backward = trainer.accelerator.backward

        def timed_backward(*a, **k):
            with work.during("backward"):
                return backward(*a, **k)

        trainer.accelerator.backward = timed_backward
        start = time.perf_counter()
        trainer.train()
        seconds = (time.perf_counter() - start) / steps
        work.close()
    return work, seconds


def report(args, shared, baseline) -> None:
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


TIME_PASSES = ("generation", "kl_reward", "old_policy", "reference", "policy", "kl_aux", "backward", "other")
# other: the step's time outside every pass (views, processor, rewards, optimizer, logging)


def report_times(args, timed: dict[str, list]) -> None:
    """Median wall seconds per step, per pass (exclusive of nested passes; `other`: data, rewards, optimizer,
    bookkeeping) and inside the vision tower, shared vs per-completion, from the timed runs."""
    import statistics

    def per_step(label, pick):
        return statistics.median(pick(probe) for probe, _ in timed[label]) / args.timed_steps

    print(f"\nwall seconds per step: median of {args.repeats} alternating runs of {args.timed_steps} steps per config, "
          "no FLOP counting, after a discarded warm-up run")
    header = f"{'pass':<12}{'shared s':>10}{'base s':>10}{'tower shared':>14}{'tower base':>12}"
    print(header)
    print("-" * len(header))
    steps = {label: statistics.median(seconds for _, seconds in timed[label]) for label in timed}
    for name in TIME_PASSES:
        if name == "other":  # outside every pass
            row = [steps[label] - per_step(label, lambda p: sum(p.seconds.values())) for label in ("shared", "baseline")]
            row += [0.0, 0.0]
        else:
            row = [per_step(label, lambda p, c=counter, n=name: getattr(p, c)[n])
                   for counter in ("seconds", "tower_seconds") for label in ("shared", "baseline")]
        print(f"{name:<12}{row[0]:>10.3f}{row[1]:>10.3f}{row[2]:>14.3f}{row[3]:>12.3f}")
    towers = {label: per_step(label, lambda p: sum(p.tower_seconds.values())) for label in timed}
    print(f"{'step':<12}{steps['shared']:>10.3f}{steps['baseline']:>10.3f}{towers['shared']:>14.3f}"
          f"{towers['baseline']:>12.3f}")
    print(f"step: shared / per-completion {steps['shared'] / steps['baseline']:.2f}x; vision-tower time "
          f"{towers['baseline'] / max(towers['shared'], 1e-9):.2f}x less shared "
          "(tiny model: the tower is a small part of the step)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=("tgrpo", "grpo"), default="tgrpo")
    parser.add_argument("--generations", type=int, default=4, help="G, completions per prompt on the clean branch")
    parser.add_argument("--prompts", type=int, default=2, help="prompts per process (per-device batch = G x prompts)")
    parser.add_argument("--steps", type=int, default=1, help="steps of the counting runs (FLOPs counted)")
    parser.add_argument("--timed-steps", type=int, default=3, help="steps per timed run (no FLOP counting)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per config, alternating")
    parser.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "rova-bench-cache"))
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    # The process's first training run pays one-off costs (imports, kernel and allocator warm-up: 0.3-0.5 s a step
    # in a 1-step run): a discarded warm-up run, so that neither config measured below carries them.
    measure(args, True, flops=False, steps=1)
    counted = {label: measure(args, share) for label, share in (("shared", True), ("baseline", False))}
    report(args, counted["shared"][0], counted["baseline"][0])
    print("counting runs (FLOP counter on), s/step: " + ", ".join(
        f"{label} {seconds:.2f} (of which in the counted vision tower {sum(probe.tower_seconds.values()) / args.steps:.2f})"
        for label, (probe, seconds) in counted.items()) + "; not the step time: the counter slows every tower op")
    timed: dict[str, list] = {"shared": [], "baseline": []}
    for _ in range(args.repeats):  # alternating, so that a slow moment of a shared machine hits both
        for label, share in (("baseline", False), ("shared", True)):
            timed[label].append(measure(args, share, flops=False, steps=args.timed_steps))
    report_times(args, timed)


if __name__ == "__main__":
    main()
