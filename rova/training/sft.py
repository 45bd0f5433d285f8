"""Video SFT: rows (prompt + reasoning completion), the collator that encodes them, and the trainer.

Each row is the chat prompt (system + user with the clip) followed by the assistant completion
`<think>...</think><answer>...</answer><|im_end|>`. The prompt is rendered and encoded exactly as the RL
rollout encodes it (render_prompt + encode_prompt on our own decoded clip); the completion is tokenized
on its own and appended, so prompt ids + completion ids is exactly what the model sees. Labels are -100
everywhere except the completion (system, user, vision placeholders and padding carry no loss).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rova.config.schema import RootConfig
from rova.data.prompts import build_messages
from rova.data.records import VideoQARecord

if TYPE_CHECKING:
    import datasets
    import torch

log = logging.getLogger(__name__)

IGNORE_INDEX = -100


def completion_text(record: VideoQARecord, require_process: bool, end_of_turn: str) -> str | None:
    """The assistant turn, closed by the family's `end_of_turn` token; None when the record has no rationale and
    `sft.require_process` asks for one."""
    if record.process:
        return f"{record.process}{record.solution}{end_of_turn}"
    if require_process:
        return None
    return f"{record.solution}{end_of_turn}"


def completion_ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@dataclass
class SftData:
    dataset: "datasets.Dataset"
    total: int
    no_process: int = 0                      # records without a rationale (sft.require_process=true)
    too_long: int = 0                        # prompt + completion longer than sft.max_length
    skipped_media: list[tuple[str, str]] = field(default_factory=list)  # (media path, reason)
    bad_records: list[str] = field(default_factory=list)  # skipped for their content (rova.data.screening)

    def report(self) -> dict:
        return {
            "records": self.total, "kept": len(self.dataset), "no_process": self.no_process,
            "too_long": self.too_long, "skipped_media": len(self.skipped_media),
            "skipped_media_paths": [{"path": p, "reason": r} for p, r in self.skipped_media],
            "bad_records": self.bad_records,
        }


def load_sft_data(cfg: RootConfig, processor) -> SftData:
    """Rows for every record with a rationale (or any, require_process=false), readable media and a fitting
    length. Every drop is counted and logged, nothing is substituted (the same probe as the RL data)."""
    from datasets import Dataset

    from rova.data.probe_cache import cached_verdicts
    from rova.data.records import keep_records, load_records
    from rova.data.video import media_key, split_by_verdict
    from rova.errors import DataError
    from rova.inference.record_checks import screen
    from rova.models.families import get_family
    from rova.training.dataset import prompt_length

    data = cfg.data
    family = get_family(cfg.model.family)
    records = keep_records(load_records(data.train_file, media_root=data.media_root), data.keep)
    if data.max_samples is not None:
        records = records[: data.max_samples]
    total = len(records)
    records, bad = screen(records, source=data.train_file, max_bad_fraction=data.max_bad_fraction,
                          fraction_key="data.max_bad_fraction", special_tokens=family.special_tokens())
    end_of_turn = family.end_of_turn
    texts = {}
    for record in records:
        text = completion_text(record, cfg.sft.require_process, end_of_turn)
        if text is not None:
            texts[record.sample_id] = text
    no_process = len(records) - len(texts)
    if no_process:
        log.warning("skipped %d of %d records without a `process` rationale (sft.require_process=true)",
                    no_process, total)
    with_text = [r for r in records if r.sample_id in texts]
    verdicts = cached_verdicts(
        with_text, data.frame_sampling(cfg.model.image_factor), data.backend,
        Path(cfg.run.cache_dir) / "media_probe.json", data.probe_workers,
    )
    kept, skipped = split_by_verdict(with_text, verdicts)
    if skipped:
        log.warning("skipped %d of %d records whose media cannot be read", len(skipped), total)
    rows, too_long = [], 0
    for record in kept:
        ids = completion_ids(processor.tokenizer, texts[record.sample_id])
        length = prompt_length(processor, record, verdicts[media_key(record)], family, data.prompt) + len(ids)
        if cfg.sft.max_length is not None and length > cfg.sft.max_length:
            too_long += 1
            continue
        rows.append({
            "prompt": build_messages(record, data.prompt),
            "completion_ids": ids,
            "sample_id": record.sample_id,
            "data_type": record.data_type,
            "media_path": record.media_path,
            "length": length,
        })
    if too_long:
        log.warning("dropped %d records longer than sft.max_length=%d tokens", too_long, cfg.sft.max_length)
    if not rows:
        raise DataError(
            f"{data.train_file}: none of its {total} records is usable for SFT ({len(bad)} bad, {no_process} without "
            f"`process`, {len(skipped)} unreadable media, {too_long} longer than sft.max_length)"
        )
    return SftData(Dataset.from_list(rows), total, no_process, too_long, [(r.media_path, why) for r, why in skipped],
                   [b.message() for b in bad])


class VideoSFTCollator:
    """Rows -> one right-padded batch: input_ids, attention_mask, labels (completion only), mm_token_type_ids
    and the rows' visual tensors concatenated in row order."""

    def __init__(self, processor, clip_source, family):
        self.processor = processor
        self.clip_source = clip_source
        self.family = family  # rova.models.families: how a clip becomes processor inputs
        tokenizer = processor.tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        token_ids = family.token_ids(tokenizer)
        self.image_token, self.video_token = token_ids["image_pad"], token_ids["video_pad"]
        # Sequence parallelism (rova.training.sequence_parallel.SequenceParallelSFT) runs each row on its own:
        # it needs each row's visual tensors, not only their concatenation.
        self.per_row_visual = False

    def encode_row(self, row: dict):
        """(prompt ids, completion ids, visual tensors) of one row."""
        from rova.inference.prompts import render_prompt

        view = self.clip_source.clean(row)
        prompt = self.family.encode(
            self.processor, render_prompt(self.processor, row["prompt"]), view.frames, view.timing, view.is_image
        )
        return prompt.input_ids, list(row["completion_ids"]), prompt.visual

    def __call__(self, rows: list[dict]) -> dict[str, "torch.Tensor"]:
        from rova.inference.padding import right_pad
        from rova.inference.visual import stack_visual
        from rova.models.families.base import mm_token_type_ids

        encoded = [self.encode_row(row) for row in rows]
        ids, mask = right_pad([p + c for p, c, _ in encoded], self.pad_id)
        labels, _ = right_pad([[IGNORE_INDEX] * len(p) + c for p, c, _ in encoded], IGNORE_INDEX)
        batch = {
            "input_ids": ids,
            "attention_mask": mask,
            "labels": labels,
            "mm_token_type_ids": mm_token_type_ids(ids, self.image_token, self.video_token),
            **stack_visual([v for _, _, v in encoded]),
        }
        if self.per_row_visual:
            batch["visual_rows"] = [v for _, _, v in encoded]
        return batch
