"""Eval throughput over a robustness grid: stage=eval's loop against the cell-by-cell loop it replaced, same run.

    uv run python benchmarks/eval_throughput_bench.py [--items 40] [--reps 1] [--cache-dir DIR] [OVERRIDE ...]

Loads the model once (default: model=small benchmark=shapes data=shapes, eval.batch_size=40,
eval.max_new_tokens=64 and the 13-cell grid clean + fog, night, static_blocks, frame_drop x severities 1, 3, 5;
the small model and the shapes clips are built into --cache-dir on first use, ~1 min) and scores the first
`--items` benchmark items in every cell with each loop, each into a fresh predictions file:
  baseline  the loop before: cell by cell, every clip decoded and every prompt rendered once per CELL, one
            fsync per prediction line;
  current   rova.eval.runner.score_cells: chunk by chunk, each clip decoded and rendered once for ALL cells,
            one fsync per generated batch.
Both send the same batches to the same generator, so the generation work is equal and the ratio is what the
loop around it saves (generation dominates what is left). Prints items/s (wall and this process's CPU time:
the steadier figure on a shared CPU), the current / baseline ratio, the seconds spent decoding, rendering,
encoding, generating and writing, the counts of decodes, renders and fsyncs, and checks that both loops wrote
the same predictions. `--reps` alternates the two loops that many times (the best rep of each is reported).
One torch thread. Extra arguments are Hydra overrides (e.g. `eval.corruptions=[rain] eval.batch_size=8`).
"""

from __future__ import annotations

import os

# One thread, set before torch / numpy load their thread pools.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = [
    "stage=eval", "model=small", "benchmark=shapes", "data=shapes", "logger=none", "eval.batch_size=40",
    "eval.max_new_tokens=64", "eval.corruptions=[fog,night,static_blocks,frame_drop]", "eval.severities=[1,3,5]",
]


def cell_by_cell(cfg, items, read_clip, generator, store, shard, num_shards, render_text, progress) -> None:
    """The baseline: rova.eval.runner.score_cells as it was before chunking (kept verbatim but for imports)."""
    from rova.eval.cells import cell_name
    from rova.eval.runner import clip_digest, corrupted_clip, grid_cells
    from rova.eval.scoring import score_prediction

    mine = items[shard::num_shards]
    for variant, severity in grid_cells(cfg.eval):
        cell = cell_name(variant, severity)
        pending = [item for item in mine if not store.done(cell, item.item_id)]
        progress.advance(len(mine) - len(pending), cell)
        for start in range(0, len(pending), cfg.eval.batch_size):
            batch = pending[start : start + cfg.eval.batch_size]
            prompts, digests = [], []
            for item in batch:
                frames, timing, is_image = read_clip(item)
                if variant is not None:
                    frames = corrupted_clip(frames, variant, severity, cfg.eval.seed, item.item_id)
                digests.append(clip_digest(frames))
                prompts.append(generator.encode(render_text(item), frames, timing, is_image))
            for item, completion, digest in zip(batch, generator.generate(prompts), digests):
                record = item.record
                scored = score_prediction(completion, record.solution, record.problem_type,
                                          fallback_whole_output=cfg.eval.fallback_whole_output)
                store.append({
                    "cell": cell, "item_id": item.item_id, "benchmark": item.benchmark,
                    "problem_type": record.problem_type, "score": scored.score, "lenient": scored.lenient,
                    "extracted": scored.extracted,
                    "answer": scored.answer, "solution": record.solution, "completion": completion[:4000],
                    "clip_sha1": digest, **{k: item.subtasks.get(k) for k in cfg.benchmark.subtask_keys},
                })
            progress.advance(len(batch), cell)


class Meter:
    """Seconds and calls per phase of one loop (the functions it is handed are wrapped, never changed)."""

    def __init__(self):
        self.seconds: Counter = Counter()
        self.calls: Counter = Counter()

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1
        return timed


class MeteredGenerator:
    def __init__(self, generator, meter: Meter):
        self.encode = meter.wrap("encode", generator.encode)
        self.generate = meter.wrap("generate", generator.generate)


def setup(args, out: Path):
    import torch

    from rova.config.compose import load
    from rova.config.paths import absolutize
    from rova.data.prompts import build_messages
    from rova.eval.benchmark import ensure_benchmark_demo, load_benchmark, read_item_clip
    from rova.eval.generation import make_generator
    from rova.inference.prompts import render_prompt
    from rova.models.loading import load_model_and_processor

    torch.set_num_threads(1)
    _, cfg = load([*DEFAULTS, f"run.cache_dir={args.cache_dir}", f"run.output_root={out}", *args.overrides])
    cfg = absolutize(cfg, out)
    ensure_benchmark_demo(cfg.benchmark)
    model, processor = load_model_and_processor(cfg.model)
    model.eval()
    data = load_benchmark(cfg.benchmark, backend=cfg.data.backend, image_factor=cfg.model.image_factor,
                          workers=cfg.data.probe_workers)
    generator = make_generator(cfg, model, processor)

    def render_text(item) -> str:
        return render_prompt(processor, build_messages(item.record, cfg.data.prompt))

    def read_clip(item):
        return read_item_clip(item, cfg.benchmark, backend=cfg.data.backend, image_factor=cfg.model.image_factor)

    return cfg, data.items[: args.items], generator, render_text, read_clip


def measure(loop, cfg, items, generator, render_text, read_clip, path: Path) -> dict:
    from rova.eval.runner import grid_cells
    from rova.inference.predictions import PredictionStore
    from rova.inference.progress import Progress

    meter = Meter()
    real_fsync = os.fsync
    os.fsync = meter.wrap("fsync", real_fsync)
    store = PredictionStore(path)
    store_write = meter.wrap("write", store.extend)
    store.extend = store_write
    progress = Progress(len(items) * len(grid_cells(cfg.eval)), enabled=False)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        loop(cfg, items, meter.wrap("decode", read_clip), MeteredGenerator(generator, meter), store, 0, 1,
             meter.wrap("render", render_text), progress)
    finally:
        os.fsync = real_fsync
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows = {(r["cell"], r["item_id"]): r for r in map(json.loads, path.read_text().splitlines())}
    return {"wall": wall, "cpu": cpu, "n": len(rows), "meter": meter, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=40, help="benchmark items scored in every cell")
    parser.add_argument("--reps", type=int, default=1, help="alternate the two loops this many times")
    parser.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "rova-bench-cache"))
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from rova.eval.runner import grid_cells, score_cells

    with tempfile.TemporaryDirectory(prefix="eval-throughput-bench-") as tmp:
        out = Path(tmp)
        cfg, items, generator, render_text, read_clip = setup(args, out)
        cells = len(grid_cells(cfg.eval))
        generator.generate([generator.encode(render_text(items[0]), *read_clip(items[0]))])  # warm-up
        loops = {"baseline": cell_by_cell, "current": score_cells}
        best: dict[str, dict] = {}
        for rep in range(args.reps):
            for label, loop in loops.items():
                result = measure(loop, cfg, items, generator, render_text, read_clip, out / f"{label}{rep}.jsonl")
                if label not in best or result["wall"] < best[label]["wall"]:
                    best[label] = result

    print(f"\neval loop, {len(items)} items x {cells} cells = {len(items) * cells} generations, "
          f"eval.batch_size={cfg.eval.batch_size}, eval.max_new_tokens={cfg.eval.max_new_tokens}, "
          f"model={cfg.model.name}, best of {args.reps} rep(s), 1 thread")
    phases = ("decode", "render", "encode", "generate", "write")
    header = f"{'loop':<10}{'items/s':>9}{'CPU items/s':>13}" + "".join(f"{p + ' s':>11}" for p in phases) + \
             f"{'decodes':>9}{'renders':>9}{'fsyncs':>8}"
    print(header)
    print("-" * len(header))
    for label, r in best.items():
        m = r["meter"]
        print(f"{label:<10}{r['n'] / r['wall']:>9.2f}{r['n'] / r['cpu']:>13.2f}"
              + "".join(f"{m.seconds[p]:>11.2f}" for p in phases)
              + f"{m.calls['decode']:>9}{m.calls['render']:>9}{m.calls['fsync']:>8}")
    base, cur = best["baseline"], best["current"]
    print(f"current / baseline: {base['wall'] / cur['wall']:.2f}x items/s (wall), "
          f"{base['cpu'] / cur['cpu']:.2f}x (CPU)")
    same = base["rows"].keys() == cur["rows"].keys() and all(
        base["rows"][k]["completion"] == cur["rows"][k]["completion"] and base["rows"][k] == cur["rows"][k]
        for k in base["rows"])
    print(f"same predictions in both loops: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
