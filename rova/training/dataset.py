"""Training rows: one per decodable record, holding the chat prompt and what the rewards need.

Decoding happens in the trainer, once per prompt group (the sampler repeats each row G times); with
data.decode_workers > 0, in its decode threads one generation batch ahead (rova/training/prefetch.py).
Records the rewards cannot score or holding chat special tokens (rova.inference.record_checks) and videos that
cannot be decoded are skipped up front, counted and logged; never replaced. With data.invert_questions.p > 0 the
multiple-choice records left (usable, readable media) are inverted here, once (rova.training.inversion), before
prompt lengths are counted; the counts go to data_report.json.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rova.config.data import DataConfig, PromptTemplates
from rova.data.prompts import DEFAULT_TEMPLATES, build_messages, with_multi_answer_wording
from rova.data.records import VideoQARecord, keep_records, load_records
from rova.data.probe_cache import cached_verdicts
from rova.data.video import Verdict, media_key, split_by_verdict, verdict_timing
from rova.inference.record_checks import screen
from rova.training.inversion import InversionReport, invert_records

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)


@dataclass
class LoadedData:
    dataset: "datasets.Dataset"
    skipped: list[tuple[str, str]]  # (media path, reason)
    total: int
    too_long: int = 0  # records dropped by stage.max_prompt_length
    bad_records: list[str] = field(default_factory=list)  # records skipped for their content (rova.data.screening)
    inversion: InversionReport | None = None  # data.invert_questions (None: off)


def to_dataset(records: list[VideoQARecord], templates: PromptTemplates = DEFAULT_TEMPLATES, hints: bool = False):
    """A `datasets.Dataset` (what TRL's GRPOTrainer accepts) with one row per record."""
    from datasets import Dataset

    return Dataset.from_list([to_row(r, templates, hints) for r in records])


def to_row(record: VideoQARecord, templates: PromptTemplates = DEFAULT_TEMPLATES, hints: bool = False) -> dict:
    """The training row of a record; with `hints` (memory.augment_hard) also the texts a hint is taken from, its
    `process` rationale and its `hint` field (rova.training.difficulty_augment.hint_for), left out otherwise
    (a CoT file's rationales would only cost memory)."""
    row = {
        "prompt": build_messages(record, templates),
        "sample_id": record.sample_id,
        "problem": record.problem,
        "problem_type": record.problem_type,
        "solution": record.solution,
        "data_type": record.data_type,
        "media_path": record.media_path,
    }
    if hints:
        row["process"] = record.process
        row["hint"] = record.extra.get("hint")
    return row


def prompt_length(
    processor, record: VideoQARecord, verdict: Verdict, family, templates: PromptTemplates = DEFAULT_TEMPLATES
) -> int:
    """Tokens of the rendered prompt once the one media placeholder is expanded as the family's processor expands
    it: the probed visual tokens plus any text the family writes around them (Qwen3-VL's time labels)."""
    from rova.inference.prompts import render_prompt

    text = render_prompt(processor, build_messages(record, templates))
    timing = verdict_timing(verdict)
    extra = family.video_text_tokens(processor, timing) if timing is not None else 0
    return len(processor.tokenizer(text)["input_ids"]) - 1 + verdict[1] + extra


def load_training_data(
    cfg: DataConfig, image_factor: int, cache_dir: str | Path, min_prompts: int = 1,
    processor=None, max_prompt_length: int | None = None, family=None, seed: int = 0, hints: bool = False,
) -> LoadedData:
    """The records a run can use (rova.inference.record_checks), whose media decode (and, with max_prompt_length,
    whose prompt as `family`'s processor expands it fits), as a dataset; every drop is counted. `seed` (the
    stage's) seeds the question inversion unless data.invert_questions.seed is set. `hints`: the rows carry the
    texts memory.augment_hard takes its hints from (to_row)."""
    records = keep_records(load_records(cfg.train_file, media_root=cfg.media_root), cfg.keep)
    if cfg.max_samples is not None:
        records = records[: cfg.max_samples]
    total = len(records)
    records, bad = screen(records, source=cfg.train_file, max_bad_fraction=cfg.max_bad_fraction,
                          fraction_key="data.max_bad_fraction",
                          special_tokens=family.special_tokens() if family is not None else ())
    verdicts = cached_verdicts(
        records, cfg.frame_sampling(image_factor), cfg.backend, Path(cache_dir) / "media_probe.json", cfg.probe_workers
    )
    kept_all, skipped = split_by_verdict(records, verdicts)
    templates, inversion = cfg.prompt, None
    if cfg.invert_questions.p > 0:
        invert_seed = cfg.invert_questions.seed if cfg.invert_questions.seed is not None else seed
        kept_all, inversion = invert_records(kept_all, cfg.invert_questions.p, invert_seed)
        templates = with_multi_answer_wording(cfg.prompt)
        log.info("data.invert_questions: %s", inversion.summary())
    too_long = 0
    if max_prompt_length is not None:
        if processor is None or family is None:
            raise ValueError("max_prompt_length needs the processor and the model family to count prompt tokens")
        fitting = [r for r in kept_all
                   if prompt_length(processor, r, verdicts[media_key(r)], family, templates) <= max_prompt_length]
        too_long = len(kept_all) - len(fitting)
        if too_long:
            log.warning("dropped %d records whose prompt exceeds stage.max_prompt_length=%d tokens",
                        too_long, max_prompt_length)
        kept_all = fitting
    skipped_pairs = [(rec.media_path, reason) for rec, reason in skipped]
    if skipped_pairs:
        log.warning("skipped %d of %d records whose media cannot be read", len(skipped_pairs), total)
    if not kept_all:
        from rova.errors import DataError

        raise DataError(f"{cfg.train_file}: none of its {len(records)} usable records has readable media")
    if len(kept_all) < min_prompts:
        from rova.errors import DataError

        raise DataError(
            f"{cfg.train_file}: {len(kept_all)} usable records, but one generation batch needs {min_prompts} "
            "distinct prompts; add data or lower stage.per_device_train_batch_size"
        )
    return LoadedData(to_dataset(kept_all, templates, hints), skipped_pairs, total, too_long, [b.message() for b in bad],
                      inversion)


def check_media_mix_for_zero3(cfg, kinds: set[str]) -> None:
    """ZeRO-3 gathers the vision tower's weights collectively at every call: a forward pass holding an image
    AND a video calls it twice, one holding a single kind once, and ranks that disagree abort or hang. With
    one prompt per process per generation every forward holds a single kind, on every rank."""
    from rova.errors import DataError

    stage = cfg.stage
    prompts_per_process = stage.per_device_train_batch_size * stage.generation_steps // stage.num_generations
    if cfg.distributed.name == "zero3" and {"image", "video"} <= kinds and prompts_per_process > 1:
        raise DataError(
            f"{cfg.data.train_file} mixes images and videos, and distributed=zero3 then needs one prompt per "
            f"process per generation (stage.per_device_train_batch_size x steps_per_generation == "
            f"stage.num_generations; now {prompts_per_process} prompts): a forward pass holding both kinds calls "
            "the vision tower twice and ZeRO-3 needs every rank to gather its weights the same number of times. "
            "Lower the batch, or use distributed=zero2."
        )
