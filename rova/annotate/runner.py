"""stage=cot: a teacher answers every record of data.train_file; the best sample that scores enough is kept.

Each record with readable media (probed and decoded by the training rules: data.frame_sampling, data.backend)
is sent cot.num_samples times in one generate call (the prompt repeated k times) with the Video-R1 CoT
prompt (data.prompt); every sample is scored by accuracy_score (training mode) against the record's
solution. The best sample with an <answer> span and a score >= cot.min_score is kept (the first on ties);
otherwise the record is dropped, with the reason. Broken or missing media are skipped and counted, never
replaced.

Resumable and sharded like stage=eval (rova.inference.sharding): one line per record in cot_predictions.jsonl
(cell "cot", item_id = the record's sample_id), appended and fsynced, so a re-run does only what is missing.
K SLURM array tasks (cot.shards, env ROVA_EVAL_SHARD) x N processes (distributed=ddp) give K*N shard files
with `.done` markers; whichever shard finds every marker merges them and writes cot.json and cot_report.json.
Progress: the same bar as stage=eval's (rova.inference.progress), over every shard's records.

cot.json (Video-R1-COT schema): each kept record as it was in data.train_file (every key and value), with
`process` = the kept sample's <think>...</think> span (the text before <answer> wrapped in <think> tags when
the sample has no <think> span), `solution` = the record's own solution (the ground truth, as Video-R1-COT
keeps it), `teacher_answer` = the kept sample's <answer>...</answer> span, and the media key
('path' and/or 'video') rewritten to the ABSOLUTE path the record resolved to, so the file loads from any
folder (its original relative path would resolve against the run dir).
Sampling is seeded per generate call (stage.seed, the call's first item), so an HF re-run that resumes at a
batch boundary reproduces the uninterrupted run; vLLM sampling is seeded per engine only.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

from rova.inference.items import DatasetItem, lines_by_item, load_dataset_items, with_absolute_media
from rova.inference.predictions import PredictionStore
from rova.inference.progress import Progress
from rova.inference.sharding import complete_shard, shard_file, shard_of

log = logging.getLogger(__name__)

CELL = "cot"
PREDICTIONS = "cot_predictions.jsonl"
OUTPUT = "cot.json"
REPORT = "cot_report.json"
_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL)
_ANSWER_RE = re.compile(r"<answer>.*?</answer>", re.DOTALL)
_LONE_THINK_TAG_RE = re.compile(r"</?think>")
TEACHER_ANSWER = "teacher_answer"  # cot.json: the kept sample's <answer> span, beside the record's own solution


# A record of the input file with its raw JSON object: the one loader of the generation jobs over training data.
CotItem = DatasetItem
load_items = load_dataset_items


def split_parts(completion: str) -> tuple[str | None, str | None]:
    """(process, solution) of a completion: its <think>...</think> and <answer>...</answer> spans, tags kept.

    Without a <think> span the text before the answer (stripped) becomes the process, in <think> tags."""
    answer = _ANSWER_RE.search(completion)
    think = _THINK_RE.search(completion)
    if think is not None:
        process = think.group(0)
    else:
        # A lone tag ("x</think><answer>B</answer>", "<think>x<answer>..") is dropped, not wrapped a second time.
        before = _LONE_THINK_TAG_RE.sub("", completion[: answer.start()] if answer else completion).strip()
        process = f"<think>{before}</think>" if before else None
    return process, answer.group(0) if answer else None


def judge(item: CotItem, samples: list[str], min_score: float) -> dict[str, Any]:
    """The prediction line of one record: every sample, its score, and which one is kept (or why none is)."""
    from rova.rewards.accuracy import accuracy_score

    record = item.record
    scores = [accuracy_score(s, record.solution, record.problem_type, mode="train") for s in samples]
    eligible = [i for i, s in enumerate(samples) if split_parts(s)[1] is not None and scores[i] >= min_score]
    best = max(eligible, key=lambda i: (scores[i], -i)) if eligible else None
    if best is not None:
        status, reason = "kept", None
    elif not any(split_parts(s)[1] is not None for s in samples):
        status, reason = "dropped", "no sample has an <answer> span"
    else:
        status, reason = "dropped", f"best score {max(scores):.3g} < cot.min_score {min_score:g}"
    return {"cell": CELL, "item_id": item.item_id, "problem_type": record.problem_type, "status": status,
            "reason": reason, "best": best, "scores": scores, "completions": samples}


def annotate(cfg, items: list[CotItem], read_clip, generator, store: PredictionStore, shard: int, num_shards: int,
             render_text, progress: Progress, skipped: dict[str, str]) -> None:
    """Annotate every record of this shard that the store does not hold yet, one generate call at a time.

    `skipped`: item_id -> reason for media that failed the probe; a decode failure here is skipped the same way.
    """
    from rova.inference.sampling import sample_records

    sample_records(items[shard::num_shards], store, read_clip, generator, render_text, progress, skipped, cell=CELL,
                   num_samples=cfg.cot.num_samples, batch_size=cfg.cot.batch_size, seed=cfg.stage.seed,
                   skip_line=_skip_line, judge=lambda item, completions: judge(item, completions, cfg.cot.min_score))


def _skip_line(item: CotItem, reason: str) -> dict[str, Any]:
    return {"cell": CELL, "item_id": item.item_id, "problem_type": item.record.problem_type, "status": "skipped",
            "reason": reason, "best": None, "scores": [], "completions": [], "path": item.record.media_path}


def cot_record(item: CotItem, line: dict[str, Any]) -> dict[str, Any]:
    """The Video-R1-COT record of a kept item: the raw record, absolute media path, process and solution."""
    out = with_absolute_media(item)
    # The record's own solution (the ground truth) stays the solution, as in Video-R1-COT: with cot.min_score < 1
    # the kept sample may have answered otherwise, and that answer is kept beside it.
    out["process"], out[TEACHER_ANSWER] = split_parts(line["completions"][line["best"]])
    if _ANSWER_RE.search(item.record.solution) is None:  # an untagged ground truth, in the schema's form
        out["solution"] = f"<answer>{item.record.solution.strip()}</answer>"
    if out["process"] is None:  # an answer with no text before it: the process is empty, not missing
        out["process"] = "<think></think>"
    return out


def write_outputs(cfg, run_dir: Path, items: list[CotItem], lines: list[dict[str, Any]],
                  bad_records: list[str] = ()) -> dict[str, Any]:
    """cot.json (kept records, input order) and cot_report.json (kept / dropped / skipped per problem type)."""
    from rova.utils.io import atomic_write_json

    by_id = lines_by_item(items, lines, run_dir)
    kept = [cot_record(item, by_id[item.item_id]) for item in items if by_id[item.item_id]["status"] == "kept"]
    per_type: dict[str, Counter] = {}
    reasons: Counter = Counter()
    for item in items:
        line = by_id[item.item_id]
        per_type.setdefault(item.record.problem_type, Counter())[line["status"]] += 1
        if line["status"] == "dropped":
            # By kind: the per-record score is in the prediction line.
            reasons["best score < cot.min_score" if line["reason"].startswith("best score") else line["reason"]] += 1
    statuses = ("kept", "dropped", "skipped")
    report = {
        "train_file": str(cfg.data.train_file),
        "teacher": cfg.model.path,
        "settings": {"num_samples": cfg.cot.num_samples, "min_score": cfg.cot.min_score,
                     "temperature": cfg.cot.temperature, "top_p": cfg.cot.top_p,
                     "max_new_tokens": cfg.cot.max_new_tokens, "seed": cfg.stage.seed},
        "records": len(items),
        **{s: sum(c[s] for c in per_type.values()) for s in statuses},
        "by_problem_type": {t: {s: c[s] for s in statuses} for t, c in sorted(per_type.items())},
        "dropped_reasons": dict(reasons),
        "skipped_media": [{"item_id": item.item_id, "path": item.record.media_path,
                           "reason": by_id[item.item_id]["reason"]}
                          for item in items if by_id[item.item_id]["status"] == "skipped"],
        "bad_records": list(bad_records),  # skipped before annotation: answer key or text unusable (not in `records`)
    }
    atomic_write_json(run_dir / OUTPUT, kept)
    atomic_write_json(run_dir / REPORT, report)
    return report


def run_cot(cfg, run_dir: Path, rank: int = 0, world: int = 1, barrier=lambda: None, task: int = 0,
            generator=None) -> dict | None:
    """Annotate this process's shard; the shard that completes the set merges and writes cot.json.

    rank / world: this process among the task's processes; task: the SLURM array index (cot.shards tasks).
    `generator`: a ready teacher (tests); by default the model.* teacher for rollout.name.
    """
    from rova.data.prompts import build_messages
    from rova.data.probe_cache import cached_verdicts
    from rova.data.video import media_key
    from rova.inference.clips import read_view
    from rova.inference.prompts import render_prompt

    run_dir = Path(run_dir)
    if generator is None:
        from rova.annotate.generation import make_cot_generator

        if cfg.rollout.name == "vllm":  # vLLM loads the weights itself: only the processor is needed here
            from transformers import AutoProcessor

            from rova.models.loading import ensure_model_files

            model, processor = None, AutoProcessor.from_pretrained(ensure_model_files(cfg.model))
        else:
            from rova.models.loading import load_model_and_processor

            model, processor = load_model_and_processor(cfg.model)
            model.eval()
        generator = make_cot_generator(cfg, model, processor)
    processor = generator.processor
    from rova.models.families import get_family

    items, bad_records = load_items(cfg.data, get_family(cfg.model.family).special_tokens())
    sampling = cfg.data.frame_sampling(cfg.model.image_factor)
    verdicts = cached_verdicts([i.record for i in items], sampling, cfg.data.backend,
                               Path(cfg.run.cache_dir) / "media_probe.json", cfg.data.probe_workers)
    skipped = {i.item_id: verdicts[media_key(i.record)][0] for i in items
               if verdicts[media_key(i.record)][0] is not None}

    def render_text(item: CotItem) -> str:
        return render_prompt(processor, build_messages(item.record, cfg.data.prompt))

    @functools.lru_cache(maxsize=1)  # consecutive records often ask about the same video
    def read_media(path: str, data_type: str):
        return read_view(path, data_type, sampling, cfg.data.backend)

    def read_clip(item: CotItem):
        view = read_media(item.record.media_path, item.record.data_type)
        return view.frames, view.timing, view.is_image

    shard, num_shards = shard_of(rank, world, task, cfg.cot.shards)
    shard_files = [shard_file(run_dir, PREDICTIONS, i, num_shards) for i in range(num_shards)]
    store = PredictionStore(shard_files[shard])
    progress = Progress(len(items), enabled=rank == 0, label="cot",  # every shard's records, as stage=eval
                        others=[path for i, path in enumerate(shard_files) if i != shard])
    annotate(cfg, items, read_clip, generator, store, shard, num_shards, render_text, progress, skipped)
    report = complete_shard(shard_files, shard, is_main=rank == 0, barrier=barrier, lock=run_dir / "cot_merge.lock",
                            label="cot", write=lambda lines: write_outputs(cfg, run_dir, items, lines, bad_records))
    if report is None:
        return None
    print(f"[rova] cot done: {report['records']} records, kept {report['kept']}, dropped {report['dropped']}, "
          f"skipped {report['skipped']} (media)", flush=True)
    for name in (OUTPUT, REPORT):
        print(f"[rova]   {run_dir / name}", flush=True)
    return report
