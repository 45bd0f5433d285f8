"""stage=select: Temporal-R1's offline selection; the model answers every record N times, the records whose reward
varies are kept.

Each record of data.train_file with readable media (probed and decoded by the training rules: data.frame_sampling,
data.backend) is sent select.num_samples times in one generate call (the prompt repeated N times, data.prompt as
in training), sampled at select.temperature / select.top_p. Every sample is scored by the reward registry as
training scores it (rova.rewards.registry, train mode, reward.multi_answer): the `accuracy` component, and for the
IoU types (grounding, tracking, grounded_qa) the `iou` component, which is then the record's reward. The keep rule
on the N rewards (mean, variance, std) is rova.select.rule. Broken or missing media are skipped and counted, never
replaced.

Resumable and sharded like stage=eval and stage=cot (rova.inference.sharding): one line per record in
select_predictions.jsonl (cell "select", item_id = the record's sample_id) holding its N rewards and their
statistics, appended and fsynced, so a re-run does only what is missing. K SLURM array tasks (select.shards, env
ROVA_EVAL_SHARD) x N processes (distributed=ddp) give K*N shard files with `.done` markers; whichever shard finds
every marker merges them and writes the outputs.

select.json: the kept records in input order, each as it was in data.train_file (every key and value) with the
media key ('path' and/or 'video') rewritten to the ABSOLUTE path it resolved to, so the file loads from any folder
(a recipe step reads it through `data_from`). select_report.json (written last: the done file), select_report.md
and select_hist.png: the counts (kept, dropped too easy / too hard / without variance, skipped media with reasons),
per problem type, and the histogram of the per-record mean reward.
Sampling is seeded per generate call (stage.seed, the call's first record). With select.batch_size < 2 x
select.num_samples (the default: 8 and 8) each call holds ONE record, so on the HF path a record's samples depend on
(stage.seed, record) alone: shards, processes and a resume change nothing. vLLM sampling is seeded per engine only.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any

from rova.inference.items import DatasetItem, lines_by_item, load_dataset_items, with_absolute_media
from rova.inference.predictions import PredictionStore
from rova.inference.progress import Progress
from rova.inference.sharding import complete_shard, shard_file, shard_of
from rova.select.rule import DROPPED, KEPT, rule_for, selects_by_iou

log = logging.getLogger(__name__)

CELL = "select"
PREDICTIONS = "select_predictions.jsonl"
OUTPUT = "select.json"
REPORT = "select_report.json"
REPORT_MD = "select_report.md"
HISTOGRAM_PNG = "select_hist.png"
SKIPPED = "skipped"
HISTOGRAM_BINS = 10  # equal bins of the per-record mean reward over [0, 1], the last one closed
ANSWER_CHARS = 200   # each sample's extracted answer is kept in its line, cut to this length


def _finite_or_none(values) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values]


def score_samples(item: DatasetItem, samples: list[str], reward_config) -> dict[str, Any]:
    """The prediction line of one record: its N rewards (and their statistics) as the reward registry scores them."""
    from rova.rewards.answers import extract_answer
    from rova.rewards.registry import get_component
    from rova.select.rule import reward_stats

    record = item.record
    n = len(samples)
    kwargs = {"solution": [record.solution] * n, "problem_type": [record.problem_type] * n,
              "reward_config": reward_config}
    prompts = [None] * n
    accuracy = _finite_or_none(get_component("accuracy").compute(prompts, samples, **kwargs))
    iou = _finite_or_none(get_component("iou").compute(prompts, samples, **kwargs))
    rewards = iou if selects_by_iou(record.problem_type) else accuracy
    if any(r is None for r in rewards):  # the registry says the component does not apply: a bug, not data
        raise RuntimeError(f"record {item.item_id} ({record.problem_type}): the reward registry gave no "
                           f"{'iou' if selects_by_iou(record.problem_type) else 'accuracy'} for some samples")
    stats = reward_stats(rewards)
    answers = [extract_answer(s) for s in samples]
    return {
        "cell": CELL, "item_id": item.item_id, "problem_type": record.problem_type, "status": "scored",
        "reason": None, "rule": rule_for(record.problem_type), "rewards": rewards,
        "accuracy": None if all(a is None for a in accuracy) else accuracy,
        "iou": None if all(v is None for v in iou) else iou,
        "mean": stats.mean, "variance": stats.variance, "std": stats.std,
        "answers": [None if a is None else a[:ANSWER_CHARS] for a in answers],
    }


def _skip_line(item: DatasetItem, reason: str) -> dict[str, Any]:
    return {"cell": CELL, "item_id": item.item_id, "problem_type": item.record.problem_type, "status": SKIPPED,
            "reason": reason, "rule": None, "rewards": [], "path": item.record.media_path}


def sample_records(cfg, items: list[DatasetItem], read_clip, generator, store: PredictionStore, shard: int,
                   num_shards: int, render_text, progress: Progress, skipped: dict[str, str]) -> None:
    """Sample and score every record of this shard that the store does not hold yet, one generate call at a time.

    `skipped`: item_id -> reason for media that failed the probe; a decode failure here is skipped the same way.
    """
    from rova.inference.sampling import sample_records

    sample_records(items[shard::num_shards], store, read_clip, generator, render_text, progress, skipped, cell=CELL,
                   num_samples=cfg.select.num_samples, batch_size=cfg.select.batch_size, seed=cfg.stage.seed,
                   skip_line=_skip_line, judge=lambda item, completions: score_samples(item, completions, cfg.reward))


def decide(cfg, line: dict[str, Any]) -> str:
    """KEPT, a DROPPED status, or SKIPPED for one prediction line under the select.* thresholds."""
    from rova.select.rule import keep_status

    if line["status"] == SKIPPED:
        return SKIPPED
    s = cfg.select
    return keep_status(line["rewards"], line["rule"], min_mean=s.min_mean, max_mean=s.max_mean, min_std=s.min_std)


def histogram(means: list[float], bins: int = HISTOGRAM_BINS) -> list[int]:
    """Counts of `means` (in [0, 1]) in `bins` equal bins, the last one closed ([0.9, 1.0] with 10 bins)."""
    counts = [0] * bins
    for mean in means:
        counts[min(bins - 1, max(0, int(mean * bins)))] += 1
    return counts


def write_outputs(cfg, run_dir: Path, items: list[DatasetItem], lines: list[dict[str, Any]],
                  bad_records: list[str] = ()) -> dict[str, Any]:
    """select.json (kept records, input order), the histogram, select_report.md and, last, select_report.json."""
    from rova.select.report import histogram_png, markdown_report
    from rova.utils.io import atomic_write_json, atomic_write_text

    by_id = lines_by_item(items, lines, run_dir)
    statuses = (KEPT, *DROPPED, SKIPPED)
    verdict = {item.item_id: decide(cfg, by_id[item.item_id]) for item in items}
    kept = [with_absolute_media(item) for item in items if verdict[item.item_id] == KEPT]
    per_type: dict[str, Counter] = {}
    for item in items:
        per_type.setdefault(item.record.problem_type, Counter())[verdict[item.item_id]] += 1
    scored = [item for item in items if verdict[item.item_id] != SKIPPED]
    bins = HISTOGRAM_BINS
    report = {
        "train_file": str(cfg.data.train_file),
        "model": cfg.model.path,
        "settings": {"num_samples": cfg.select.num_samples, "min_mean": cfg.select.min_mean,
                     "max_mean": cfg.select.max_mean, "min_std": cfg.select.min_std,
                     "temperature": cfg.select.temperature, "top_p": cfg.select.top_p,
                     "max_new_tokens": cfg.select.max_new_tokens, "seed": cfg.stage.seed,
                     "multi_answer": cfg.reward.multi_answer, "rollout": cfg.rollout.name},
        "records": len(items),
        **{status: sum(c[status] for c in per_type.values()) for status in statuses},
        "by_problem_type": {t: {"rule": rule_for(t), **{s: c[s] for s in statuses}} for t, c in sorted(per_type.items())},
        "mean_reward_histogram": {
            "edges": [round(i / bins, 6) for i in range(bins + 1)],
            "kept": histogram([by_id[i.item_id]["mean"] for i in scored if verdict[i.item_id] == KEPT], bins),
            "dropped": histogram([by_id[i.item_id]["mean"] for i in scored if verdict[i.item_id] != KEPT], bins),
        },
        "skipped_media": [{"item_id": item.item_id, "path": item.record.media_path,
                           "reason": by_id[item.item_id]["reason"]}
                          for item in items if verdict[item.item_id] == SKIPPED],
        "bad_records": list(bad_records),  # skipped before sampling: answer key or text unusable (not in `records`)
        "files": {"selected": OUTPUT, "predictions": PREDICTIONS, "markdown": REPORT_MD, "histogram": HISTOGRAM_PNG},
    }
    atomic_write_json(run_dir / OUTPUT, kept)
    histogram_png(report, run_dir / HISTOGRAM_PNG)
    atomic_write_text(run_dir / REPORT_MD, markdown_report(report, image=HISTOGRAM_PNG))
    atomic_write_json(run_dir / REPORT, report)  # the done file: last
    return report


def run_select(cfg, run_dir: Path, rank: int = 0, world: int = 1, barrier=lambda: None, task: int = 0,
               generator=None) -> dict | None:
    """Sample this process's shard; the shard that completes the set merges and writes select.json and the report.

    rank / world: this process among the task's processes; task: the SLURM array index (select.shards tasks).
    `generator`: a ready generator (tests); by default model.* sampling through rollout.name (hf or vllm).
    """
    from rova.data.probe_cache import cached_verdicts
    from rova.data.prompts import build_messages
    from rova.data.video import media_key
    from rova.inference.clips import read_view
    from rova.inference.prompts import render_prompt
    from rova.models.families import get_family

    run_dir = Path(run_dir)
    if generator is None:
        from rova.inference.sampling import load_generation_model, make_sampling_generator

        model, processor = load_generation_model(cfg)
        generator = make_sampling_generator(cfg, model, processor, max_new_tokens=cfg.select.max_new_tokens,
                                            temperature=cfg.select.temperature, top_p=cfg.select.top_p,
                                            stage="select")
    processor = generator.processor
    items, bad_records = load_dataset_items(cfg.data, get_family(cfg.model.family).special_tokens())
    sampling = cfg.data.frame_sampling(cfg.model.image_factor)
    verdicts = cached_verdicts([i.record for i in items], sampling, cfg.data.backend,
                               Path(cfg.run.cache_dir) / "media_probe.json", cfg.data.probe_workers)
    skipped = {i.item_id: verdicts[media_key(i.record)][0] for i in items
               if verdicts[media_key(i.record)][0] is not None}

    def render_text(item: DatasetItem) -> str:
        return render_prompt(processor, build_messages(item.record, cfg.data.prompt))

    @functools.lru_cache(maxsize=1)  # consecutive records often ask about the same video
    def read_media(path: str, data_type: str):
        return read_view(path, data_type, sampling, cfg.data.backend, blank_video=cfg.data.blank_video)

    def read_clip(item: DatasetItem):
        view = read_media(item.record.media_path, item.record.data_type)
        return view.frames, view.timing, view.is_image

    shard, num_shards = shard_of(rank, world, task, cfg.select.shards)
    shard_files = [shard_file(run_dir, PREDICTIONS, i, num_shards) for i in range(num_shards)]
    store = PredictionStore(shard_files[shard])
    progress = Progress(len(items), enabled=rank == 0, label="select",  # every shard's records, as stage=eval
                        others=[path for i, path in enumerate(shard_files) if i != shard])
    sample_records(cfg, items, read_clip, generator, store, shard, num_shards, render_text, progress, skipped)
    report = complete_shard(shard_files, shard, is_main=rank == 0, barrier=barrier,
                            lock=run_dir / "select_merge.lock", label="select",
                            write=lambda lines: write_outputs(cfg, run_dir, items, lines, bad_records))
    if report is None:
        return None
    print(f"[rova] select done: {report['records']} records, kept {report['kept']}, dropped "
          f"{report['too_easy']} too easy, {report['too_hard']} too hard, {report['no_variance']} without variance, "
          f"skipped {report['skipped']} (media)", flush=True)
    for name in (OUTPUT, REPORT, REPORT_MD, HISTOGRAM_PNG):
        print(f"[rova]   {run_dir / name}", flush=True)
    return report
