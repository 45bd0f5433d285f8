"""Training step time on the tiny model, same G: GRPO vs T-GRPO (clean + shuffled) vs T-GRPO + corrupted + KL.

    uv run python benchmarks/step_time_bench.py [--generations 4] [--prompts 1] [--steps 5] [OVERRIDE ...]

Three real VideoGRPOTrainer runs in this process, from the same seed, data and G (completions per prompt on
the clean branch), all with corruption=rova reward=rova so only the branches and the KL term differ:
  grpo      stage=grpo, reward.w_kl=0                                   (the baseline: clean branch only)
  tgrpo     stage=tgrpo tgrpo.branches=[clean,shuffled], reward.w_kl=0  (Video-R1's temporal contrast)
  tgrpo+kl  stage=tgrpo (clean, shuffled, corrupted), reward.w_kl=1     (ROVA: corrupted branch + KL reward)
Every completion is generated to stage.max_completion_length (min_new_tokens), so each config does the same
work per row whatever its random samples. A step's time is the wall time between two `on_step_end` callbacks (data loading, every generation, the
rewards, every log-prob pass, backward and the optimizer step); the first step is a warm-up and is
discarded; the figure is the median of the next `--steps`. Targets (issue 12): tgrpo <= 1.6x grpo;
tgrpo+kl <= 1.25x tgrpo.

Then a table of median seconds per step by phase, per config, with tgrpo+kl / tgrpo: decode, corruption, shuffle,
processor, generation (one batched call for every branch's rows), rewards, the KL reward's two forwards, the auxiliary
KL loss, the log-prob passes (old / reference / the policy's forward in the loss), backward, the optimizer step, the
rest, and the generated rows per step.

If the trainer logs `perf/data_wait_s` to metrics.jsonl (the time a step waited for its decoded clips),
the tgrpo+kl run is repeated with data.decode_workers=0 and =2 and the median data wait per step is
printed; otherwise the bench says the metric is not available. Extra arguments are Hydra overrides.
On a shared CPU wall time is noisy (other jobs steal the cores): the CPU time this process used per step is
printed too, with its ratios, and is the steadier figure there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA_WAIT = "perf/data_wait_s"
ROWS = "generated rows"

CONFIGS = {
    "grpo": ["stage=grpo", "reward.w_kl=0"],
    "tgrpo": ["stage=tgrpo", "tgrpo.branches=[clean,shuffled]", "reward.w_kl=0"],
    "tgrpo+kl": ["stage=tgrpo", "reward.w_kl=1"],
}
TARGETS = {"tgrpo": ("grpo", 1.6), "tgrpo+kl": ("tgrpo", 1.25)}


def step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall-clock stamps at train begin and at every step end (a step = the time between two stamps)."""

        def __init__(self):
            self.stamps: list[float] = []
            self.cpu: list[float] = []
            self.phases: PhaseTimer | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.stamps = [time.perf_counter()]
            self.cpu = [time.process_time()]

        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            if self.phases is not None:
                self.phases.optimizer_begin()

        def on_optimizer_step(self, args, state, control, **kwargs):
            if self.phases is not None:
                self.phases.optimizer_end()

        def on_step_end(self, args, state, control, **kwargs):
            self.stamps.append(time.perf_counter())
            self.cpu.append(time.process_time())
            if self.phases is not None:
                self.phases.cut()
            control.should_save = False  # a benchmark: no checkpoint writes inside the timed steps
            return control

        def steps(self) -> list[float]:
            return [b - a for a, b in zip(self.stamps, self.stamps[1:])]

        def cpu_steps(self) -> list[float]:
            return [b - a for a, b in zip(self.cpu, self.cpu[1:])]

    return StepTimer()


# Where a step's time goes, per phase (wrapped, not replaced; the phases do not nest, so they add up):
# trainer methods, the clip source's views and the rollout's module-level scoring, the backward pass.
PHASES = {
    "decode": "decode (clean clip)",
    "corrupt": "corruption (corrupted view)",
    "shuffle": "shuffle (shuffled view)",
    "_encode_views": "processor",
    "generate_rows": "generation (all branches, 1 call)",
    "score_rollout": "rewards",
    "_measure_kl": "KL reward (2 forwards)",
    "_kl_aux_loss": "KL aux loss (forwards)",
    "_get_per_token_logps_and_entropies": "log-prob passes (forwards)",
    "backward": "backward",
    "optimizer": "optimizer step",
}


class PhaseTimer:
    def __init__(self, trainer):
        import rova.training.trainer as trainer_module

        self.total = {name: 0.0 for name in PHASES}
        self.per_step: list[dict[str, float]] = []
        self.rows = 0  # generated rows, all steps
        self._open: str | None = None  # the phase being timed: a wrapped call inside it counts in it
        self._optimizer_start = 0.0
        for name in ("_encode_views", "generate_rows", "_measure_kl", "_kl_aux_loss",
                     "_get_per_token_logps_and_entropies"):
            setattr(trainer, name, self._wrap(name, getattr(trainer, name)))
        source = trainer.clip_source
        source.clean = self._wrap("decode", source.clean)
        source.corrupted = self._wrap("corrupt", source.corrupted)
        source.shuffled = self._wrap("shuffle", source.shuffled)
        trainer.accelerator.backward = self._wrap("backward", trainer.accelerator.backward)
        self._module, self._score_rollout = trainer_module, trainer_module.score_rollout
        trainer_module.score_rollout = self._wrap("score_rollout", self._score_rollout)
        generate = trainer.generate_rows

        def counted(prompts, *args, **kwargs):
            self.rows += len(prompts)
            return generate(prompts, *args, **kwargs)

        trainer.generate_rows = counted

    def _wrap(self, name, method):
        def timed(*args, **kwargs):
            if self._open is not None:
                return method(*args, **kwargs)
            self._open = name
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.total[name] += time.perf_counter() - start
                self._open = None
        return timed

    def optimizer_begin(self):
        self._optimizer_start = time.perf_counter()

    def optimizer_end(self):
        self.total["optimizer"] += time.perf_counter() - self._optimizer_start

    def cut(self):
        self.per_step.append(dict(self.total))
        self.total = {name: 0.0 for name in PHASES}

    def close(self):
        self._module.score_rollout = self._score_rollout


def common(args, out: Path) -> list[str]:
    g = args.generations
    return [
        f"run.cache_dir={args.cache_dir}", f"run.output_root={out / 'outputs'}", "logger=none",
        "corruption=rova", "reward=rova", f"stage.max_steps={args.steps + 1}", "stage.save_steps=1000",
        f"stage.num_generations={g}", f"stage.per_device_train_batch_size={g * args.prompts}",
        f"data.demo_num_clips={max(8, 2 * args.prompts)}", "data.probe_workers=1",
    ]


def measure(args, extra: list[str]) -> tuple[list[float], list[float] | None, dict[str, float], list[float]]:
    """(step seconds without the warm-up step, data wait per step or None when not logged, median s per phase,
    CPU seconds of this process per step)."""
    from rova.config.compose import load
    from rova.config.paths import absolutize
    from rova.stages.builders import build_rl_trainer

    with tempfile.TemporaryDirectory(prefix="step-time-bench-") as tmp:
        out = Path(tmp)
        _, cfg = load([*common(args, out), *extra, *args.overrides])
        cfg = absolutize(cfg, out)
        run_dir = out / "run"
        run_dir.mkdir()
        trainer, _ = build_rl_trainer(cfg, run_dir)
        # Same work per completion in every config: a random tiny model stops at a random EOS, so without
        # this the configs would differ by how long their samples happen to be, not by their branches.
        trainer.generation_config.min_new_tokens = cfg.stage.max_completion_length
        timer = step_timer()
        timer.phases = PhaseTimer(trainer)
        trainer.add_callback(timer)
        try:
            trainer.train()
        finally:
            timer.phases.close()
        waits = None
        metrics = run_dir / "metrics.jsonl"
        if metrics.exists():
            rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            by_step = {row["step"]: row[DATA_WAIT] for row in rows if row.get(DATA_WAIT) is not None}
            if by_step:
                waits = [by_step[s] for s in sorted(by_step) if s > 1]  # step 1 is the warm-up
        del trainer
    timed = timer.phases.per_step[1:]
    phases = {name: statistics.median(step[name] for step in timed) for name in PHASES} if timed else {}
    phases[ROWS] = timer.phases.rows / max(1, len(timer.phases.per_step))  # generated rows per step
    return timer.steps()[1:], waits, phases, timer.cpu_steps()[1:]


def has_decode_workers() -> bool:
    from dataclasses import fields

    from rova.config.data import DataConfig

    return any(f.name == "decode_workers" for f in fields(DataConfig))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generations", type=int, default=4, help="G: completions per prompt, clean branch")
    parser.add_argument("--prompts", type=int, default=1, help="prompts per step (per-device batch = G x prompts)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per config (after one warm-up step)")
    parser.add_argument("--no-data-wait", action="store_true", help="skip the decode_workers=0 vs 2 comparison")
    parser.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "rova-bench-cache"))
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, applied to every config")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    medians, all_waits, phases, cpu = {}, {}, {}, {}
    for name, extra in CONFIGS.items():
        steps, waits, phases[name], cpu_steps = measure(args, extra)
        medians[name] = statistics.median(steps)
        cpu[name] = statistics.median(cpu_steps)
        all_waits[name] = waits
        print(f"{name:<9} steps (s): {' '.join(f'{s:.3f}' for s in steps)}", file=sys.stderr)

    g = args.generations
    print(f"\nstep time, tiny Qwen2.5-VL, G = {g}, {args.prompts} prompt(s) per step, median of {args.steps} "
          "steps after one warm-up step")
    print(f"{'config':<10}{'branches':<44}{'median s':>10}{'ratio':>18}{'target':>16}")
    rows = {
        "grpo": f"clean x{g}",
        "tgrpo": f"clean x{g} + shuffled x{max(1, g // 2)}",
        "tgrpo+kl": f"clean x{g} + shuffled x{max(1, g // 2)} + corrupted x{max(2, g // 2)} + KL",
    }
    for name, branches in rows.items():
        ratio, target = "", ""
        if name in TARGETS:
            base, limit = TARGETS[name]
            value = medians[name] / medians[base]
            ratio = f"{value:.2f}x {base}"
            target = f"<= {limit}x {'ok' if value <= limit else 'OVER'}"
        print(f"{name:<10}{branches:<44}{medians[name]:>10.3f}{ratio:>18}{target:>16}")
    print(f"tgrpo+kl vs grpo: {medians['tgrpo+kl'] / medians['grpo']:.2f}x")
    # CPU seconds this process used per step: far less sensitive than wall time to other jobs on a shared machine.
    print("CPU time per step (this process, all threads): " + ", ".join(f"{n} {cpu[n]:.3f} s" for n in CONFIGS)
          + f"; tgrpo/grpo {cpu['tgrpo'] / cpu['grpo']:.2f}x, tgrpo+kl/tgrpo {cpu['tgrpo+kl'] / cpu['tgrpo']:.2f}x")
    print("\nmedian seconds per step by phase (rest: the policy loss's own arithmetic, metrics, logging, bookkeeping;"
          " the log-prob passes include the policy's forward in the loss):")
    ratio_label = "tgrpo+kl/tgrpo"
    print(f"{'phase':<34}" + "".join(f"{name:>10}" for name in CONFIGS) + f"{ratio_label:>16}")
    for method, label in PHASES.items():
        values = [phases[name].get(method, float("nan")) for name in CONFIGS]
        ratio = f"{values[2] / values[1]:.2f}x" if values[1] > 1e-4 else "-"
        print(f"{label:<34}" + "".join(f"{v:>10.3f}" for v in values) + f"{ratio:>16}")
    rest = [medians[name] - sum(v for k, v in phases[name].items() if k in PHASES) for name in CONFIGS]
    print(f"{'rest':<34}" + "".join(f"{v:>10.3f}" for v in rest) + f"{rest[2] / rest[1] if rest[1] > 1e-4 else 0:>15.2f}x")
    print(f"{'step (median)':<34}" + "".join(f"{medians[n]:>10.3f}" for n in CONFIGS)
          + f"{medians['tgrpo+kl'] / medians['tgrpo']:>15.2f}x")
    print(f"{ROWS + ' per step':<34}" + "".join(f"{phases[n][ROWS]:>10.0f}" for n in CONFIGS)
          + f"{phases['tgrpo+kl'][ROWS] / phases['tgrpo'][ROWS]:>15.2f}x")

    print()
    if args.no_data_wait:
        return
    if not has_decode_workers():
        print(f"data wait per step: not available (this checkout has no data.decode_workers; "
              f"metrics.jsonl {'carries' if any(all_waits.values()) else 'has no'} {DATA_WAIT})")
        return
    waits = {}
    for workers in (0, 2):
        steps, wait, _, _ = measure(args, [*CONFIGS["tgrpo+kl"], f"data.decode_workers={workers}"])
        waits[workers] = (statistics.median(steps), wait)
    if any(w is None for _, w in waits.values()):
        print(f"data wait per step: not available (metrics.jsonl has no {DATA_WAIT})")
        return
    print(f"tgrpo+kl data wait per step ({DATA_WAIT}, median of {args.steps} steps after the warm-up):")
    for workers, (step, wait) in waits.items():
        print(f"  data.decode_workers={workers}: wait {statistics.median(wait):.4f} s of a {step:.3f} s step")
    w0, w2 = (statistics.median(waits[w][1]) for w in (0, 2))
    if w2 > 0:
        print(f"  decode_workers=2 waits {w0 / w2:.2f}x less than 0")


if __name__ == "__main__":
    main()
