"""stage=eval: the clean benchmark, then every cell of the robustness grid, resumable and sharded.

Cells: "clean", then "<variant>@<severity>" for every variant of `eval.corruptions` (families expand to
their variants) and every severity. The corrupted clip of (item, variant, severity) is
`corrupt(clip, CorruptionSpec(variant, severity), seed)` with seed = stable_seed(eval.seed, item id,
variant, severity): every model, run and shard sees byte-identical clips (each prediction records the
clip's SHA-1). Predictions are appended per generated batch (rova.inference.predictions), so a re-run skips
what is done. Progress (rova.inference.progress): rank 0 shows one bar over every shard's items x cells, what the
stores held at the start counted as done up front, the rate and ETA over what this run generates.
Shards: K SLURM array tasks (eval.shards) x N processes each (distributed=ddp) give K*N shards; shard i
scores items i, i + K*N, ... into its own predictions file and leaves a `.done` marker. Whichever shard
finds every marker present merges the files and writes results.json, report.md and the pictures.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from rova.eval.cells import CLEAN_CELL, cell_name
from rova.inference.predictions import PredictionStore
from rova.inference.progress import Progress
from rova.inference.sharding import complete_shard, shard_file, shard_of

log = logging.getLogger(__name__)
PREDICTIONS = "predictions.jsonl"


def clip_digest(frames: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(frames).tobytes()).hexdigest()


def grid_cells(eval_cfg) -> list[tuple[str | None, int | None]]:
    return [(None, None)] + [(v, s) for v in eval_cfg.grid_variants() for s in eval_cfg.severities]


def corrupted_clip(frames: np.ndarray, variant: str, severity: int, seed: int, item_id: str) -> np.ndarray:
    from rova.corruption import CorruptionSpec, corrupt
    from rova.inference.seeding import stable_seed

    out, _ = corrupt(frames, CorruptionSpec(variant, severity), stable_seed(seed, "eval", item_id, variant, severity))
    return out


def score_cells(cfg, items, read_clip, generator, store: PredictionStore, shard: int, num_shards: int,
                render_text, progress: Progress) -> None:
    """Score every (cell, item) of this shard that the store does not hold yet.

    The shard's items go in chunks of eval.batch_size; each chunk's clips are decoded and its prompts rendered
    ONCE, then every cell is one generate call on the chunk's items still pending in that cell (the clean clip,
    or its corrupted copy). A fresh run's batches are those of a cell-by-cell pass (each cell's rows are the
    chunk's items, in order), so its predictions are the same; a grid of C cells decodes each clip once instead
    of C times and holds one chunk of clean clips at a time.
    """
    from rova.eval.scoring import caption_fields, score_predictions

    mine = items[shard::num_shards]
    cells = [(cell_name(variant, severity), variant, severity) for variant, severity in grid_cells(cfg.eval)]
    progress.begin(sum(store.done(cell, item.item_id) for cell, _, _ in cells for item in mine))
    for start in range(0, len(mine), cfg.eval.batch_size):
        chunk = mine[start : start + cfg.eval.batch_size]
        clean: dict[str, tuple] = {}  # item id -> (frames, timing, is_image, prompt text), read on first need

        def view(item):
            if item.item_id not in clean:
                frames, timing, is_image = read_clip(item)
                clean[item.item_id] = (frames, timing, is_image, render_text(item))
            return clean[item.item_id]

        for cell, variant, severity in cells:
            batch = [item for item in chunk if not store.done(cell, item.item_id)]
            if not batch:
                continue
            prompts, digests = [], []
            for item in batch:
                frames, timing, is_image, text = view(item)
                if variant is not None:
                    frames = corrupted_clip(frames, variant, severity, cfg.eval.seed, item.item_id)
                digests.append(clip_digest(frames))
                prompts.append(generator.encode(text, frames, timing, is_image))
            records = []
            completions = list(generator.generate(prompts))
            scores = score_predictions(completions, [item.record.solution for item in batch],
                                       [item.record.problem_type for item in batch],
                                       fallback_whole_output=cfg.eval.fallback_whole_output, reward_config=cfg.reward)
            for item, completion, digest, scored in zip(batch, completions, digests, scores):
                record = item.record
                records.append({
                    "cell": cell, "item_id": item.item_id, "benchmark": item.benchmark,
                    "problem_type": record.problem_type, "score": scored.score, "lenient": scored.lenient,
                    "extracted": scored.extracted,
                    "answer": scored.answer, "solution": record.solution, "completion": completion[:4000],
                    "clip_sha1": digest, **{k: item.subtasks.get(k) for k in cfg.benchmark.subtask_keys},
                    **({"subtask_matched": item.subtask_matched} if item.subtask_matched else {}),
                    **caption_fields(record.problem_type, scored, cfg.reward),
                })
            store.extend(records)  # the batch's lines, one fsync
            progress.advance(len(batch), cell)
    progress.finish()


def write_results(cfg, run_dir: Path, records: list[dict], skipped: list, resolved: dict,
                  bad_records: list[str] = (), kind_overrides: list[dict] = ()) -> dict:
    """results.json, report.md, heatmap.png and families.png from every prediction; `bad_records`: the records
    left out for their content (rova.data.screening), listed under "bad_records" when there are any;
    `kind_overrides`: items read as another media kind than their record declared (BenchmarkData.kind_overrides),
    under "media_kind_overrides" when there are any."""
    from rova.eval.report import write_report
    from rova.eval.robustness import summarize
    from rova.eval.scoring import aggregate, caption_conventions, scoring_conventions
    from rova.utils.io import atomic_write_json

    keys = list(cfg.benchmark.subtask_keys)
    by_cell: dict[str, list[dict]] = {}
    for record in records:
        by_cell.setdefault(record["cell"], []).append(record)
    clean = aggregate(by_cell.get(CLEAN_CELL, []), keys, skipped_media=len(skipped))
    grid: dict[str, dict[str, dict]] = {}
    grid_items: dict[str, dict[str, list[dict]]] = {}
    for variant, severity in grid_cells(cfg.eval)[1:]:
        cell_items = by_cell.get(cell_name(variant, severity), [])
        grid.setdefault(variant, {})[str(severity)] = aggregate(cell_items, keys)
        grid_items.setdefault(variant, {})[str(severity)] = cell_items
    reference = reference_name = None
    if cfg.eval.reference:
        import json

        from rova.eval.robustness import reference_label

        reference = json.loads(Path(cfg.eval.reference).read_text())
        reference_name = reference_label(cfg.eval.reference, reference)
    results = {
        "config": {"model": cfg.model.path, "benchmark": resolved.get("benchmark"), "eval": resolved.get("eval"),
                   "scoring": scoring_conventions(fallback_whole_output=cfg.eval.fallback_whole_output,
                                                  caption=caption_conventions(cfg.reward, records))},
        "clean": clean,
        "grid": grid,
        "robustness": summarize(
            clean, grid, clean_items=by_cell.get(CLEAN_CELL, []), grid_items=grid_items, reference=reference,
            reference_name=reference_name,
        ).to_dict() if grid else None,
        "skipped_media": [s.to_dict() for s in skipped],
    }
    if bad_records:
        results["bad_records"] = list(bad_records)
    if kind_overrides:
        results["media_kind_overrides"] = [dict(o) for o in kind_overrides]
    atomic_write_json(run_dir / "results.json", results)
    write_report(results, run_dir)
    return results


def run_eval(cfg, run_dir: Path, rank: int = 0, world: int = 1, barrier=lambda: None, task: int = 0) -> dict | None:
    """Score this process's shard; the shard that completes the set merges and writes the results.

    rank / world: this process among the task's processes; task: the SLURM array index (eval.shards tasks).
    """
    from rova.data.prompts import build_messages
    from rova.eval.benchmark import load_benchmark, read_item_clip
    from rova.eval.generation import make_generator
    from rova.inference.prompts import render_prompt
    from rova.models.families import get_family
    from rova.models.loading import load_model_and_processor

    # The benchmark first: a file with no usable item fails here, before the model is loaded.
    data = load_benchmark(cfg.benchmark, backend=cfg.data.backend, image_factor=cfg.model.image_factor,
                          workers=cfg.data.probe_workers, max_bad_fraction=cfg.data.max_bad_fraction,
                          special_tokens=tuple(get_family(cfg.model.family).special_tokens()))
    if cfg.rollout.name == "vllm":  # vLLM loads the weights itself: only the processor is needed here
        from transformers import AutoProcessor

        from rova.models.loading import ensure_model_files

        model, processor = None, AutoProcessor.from_pretrained(ensure_model_files(cfg.model))
    else:
        model, processor = load_model_and_processor(cfg.model)
        model.eval()
    generator = make_generator(cfg, model, processor)
    # distributed.sequence_parallel: each group of N ranks scores one shard, its clips encoded MR-SP by the group and
    # generated by its first rank (rova.inference.sequence_parallel); the group is one data-parallel rank.
    sp, data_rank, data_world = None, rank, world
    if cfg.distributed.sequence_parallel > 1:
        from rova.inference.sequence_parallel import SequenceParallelGenerator
        from rova.models.sequence_parallel import build_groups

        sp = build_groups(cfg.distributed.sequence_parallel)
        generator = SequenceParallelGenerator(generator, sp)
        data_rank, data_world = sp.dp_rank, sp.dp_size
    writes = sp is None or sp.is_leader
    templates = cfg.data.prompt

    def render_text(item) -> str:
        return render_prompt(processor, build_messages(item.record, templates))

    def read_clip(item):
        clip = read_item_clip(item, cfg.benchmark, backend=cfg.data.backend, image_factor=cfg.model.image_factor)
        if not cfg.data.blank_video:
            return clip
        from rova.inference.clips import blank

        return (blank(clip[0]), *clip[1:])

    shard, num_shards = shard_of(data_rank, data_world, task, cfg.eval.shards)
    shard_files = [shard_file(run_dir, PREDICTIONS, i, num_shards) for i in range(num_shards)]
    store = PredictionStore(shard_files[shard], write=writes)
    cells = grid_cells(cfg.eval)
    # One bar over every shard's items x cells: the other shards' progress is read from their files.
    progress = Progress(len(data.items) * len(cells), enabled=rank == 0,
                        others=[path for i, path in enumerate(shard_files) if i != shard])
    score_cells(cfg, data.items, read_clip, generator, store, shard, num_shards, render_text, progress)
    if sp is not None:
        print(f"[rova] sequence parallel: rank {rank} (group rank {sp.rank}) encoded {generator.cache.encoded_patches} "
              "vision patches", flush=True)
    if not writes:  # the group's first rank marks the shard done; the others join the task's barrier
        barrier()
        return None
    return complete_shard(shard_files, shard, is_main=rank == 0, barrier=barrier, lock=run_dir / "merge.lock",
                          label="eval", write=lambda records: _merge_and_report(cfg, run_dir, data, records,
                                                                                 num_shards, len(cells)))


def _merge_and_report(cfg, run_dir: Path, data, records: list[dict], num_shards: int, num_cells: int) -> dict:
    from omegaconf import OmegaConf

    resolved = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
    results = write_results(cfg, run_dir, records, data.skipped, resolved, data.bad_records, data.kind_overrides())
    clean = results["clean"]["accuracy"]
    print(f"[rova] eval done: {len(data.items)} items, {num_cells} cells, clean accuracy "
          f"{clean if clean is None else round(clean, 4)}", flush=True)
    for name in ("results.json", "report.md", PREDICTIONS if num_shards == 1 else "predictions.shard*.jsonl"):
        print(f"[rova]   {run_dir / name}", flush=True)
    return results
