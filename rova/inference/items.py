"""The records of a Video-R1 file that a generation job over the training data works on (stage=select), each
with its raw JSON object so that an output file can repeat the record exactly as the input had it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rova.data.records import MEDIA_KEYS, VideoQARecord, keep_records, load_records, read_raw_records
from rova.inference.record_checks import screen


@dataclass
class DatasetItem:
    """One record of the input file: its stable id (the record's sample_id), its raw JSON object, the parsed record."""

    item_id: str
    raw: dict[str, Any]
    record: VideoQARecord


def load_dataset_items(data_cfg, special_tokens=()) -> tuple[list[DatasetItem], list[str]]:
    """Every usable record (rova.inference.record_checks) of data.train_file that data.keep keeps (data.max_samples
    first ones), with its raw object, in file order; and the messages of the bad records skipped."""
    records = load_records(data_cfg.train_file, media_root=data_cfg.media_root)
    raw = [obj for _, obj in read_raw_records(Path(data_cfg.train_file))]
    kept = {id(r) for r in keep_records(records, data_cfg.keep)}
    items = [DatasetItem(r.sample_id, obj, r) for r, obj in zip(records, raw) if id(r) in kept]
    if data_cfg.max_samples is not None:
        items = items[: data_cfg.max_samples]
    usable, bad = screen([i.record for i in items], source=data_cfg.train_file,
                         max_bad_fraction=data_cfg.max_bad_fraction, fraction_key="data.max_bad_fraction",
                         special_tokens=special_tokens)
    usable_ids = {id(r) for r in usable}
    return [i for i in items if id(i.record) in usable_ids], [b.message() for b in bad]


def with_absolute_media(item: DatasetItem) -> dict[str, Any]:
    """The raw record with its media key ('path' and/or 'video') rewritten to the ABSOLUTE path it resolved to, so
    the written file loads from any folder (a relative path would resolve against the folder of the new file)."""
    out = dict(item.raw)
    for key in MEDIA_KEYS:
        if key in out:
            out[key] = item.record.media_path
    return out


def lines_by_item(items: list, lines: list[dict[str, Any]], where: Path) -> dict[str, dict[str, Any]]:
    """{item_id: its merged prediction line}; every item must have one (a merge that lost a shard's line would
    otherwise write an output silently missing records)."""
    by_id = {line["item_id"]: line for line in lines}
    missing = [item.item_id for item in items if item.item_id not in by_id]
    if missing:
        raise RuntimeError(f"{where}: {len(missing)} records have no prediction line (first: {missing[:3]})")
    return by_id
