"""Evaluation benchmarks: the `benchmark` config group, Video-R1 eval files, and their media.

A benchmark is one Video-R1-format eval file (eval_mvbench.json, eval_videomme.json, ...) plus the media
it points at, read with the same Qwen2.5-VL sampling rules as training (rova.data.sampling) but with the
benchmark's own frame and pixel settings (config values, recorded in every results file).

Real eval files differ from the training schema; `load_benchmark` accepts:
- media under `path` or `video` (a leading "./" stripped; a leading "/" placed under media_root when one
  is set, as MMVU's "/MMVU/videos/x.mp4"), resolved against benchmark.media_root or the file's folder;
- extra keys (duration, domain, question_type, ...), kept in the record and carried into the items; the
  keys named in benchmark.subtask_keys become the item's sub-tasks (aggregation groups);
- frame folders: data_type "frame"/"frames"/"frame_folder"/"video_frames", or a `video` path that is a
  directory; frames sorted naturally, at the record's `fps` or benchmark.frame_folder_fps;
- what is on disk decides how media is read, whatever data_type says: a directory is a frame folder, a file is
  decoded as a video (MVBench's TVQA items are "frame" records whose path is an .mp4 in the files people hold).
  Each item keeps the kind its record declared beside the kind read (BenchmarkItem.declared_kind); the items read
  as another kind are counted (BenchmarkData.kind_overrides), logged, and reach results.json and report.md;
- optional `start`/`end` (seconds): the clip is sampled inside that segment (benchmark.segments);
- no `problem_id`: the item is named by its position in the file;
- problem_type spelled "multiple-choice"/"Multiple_Choice": normalised to the training names.
Anything else malformed raises DataError naming the file, record and key. Records whose answer key the rewards
cannot score, or whose text holds chat special tokens, are skipped and counted by the training rule
(rova.inference.record_checks; data.max_bad_fraction; BenchmarkData.bad_records). Media that are missing or do
not decode are skipped, counted and listed with the reason (BenchmarkData.skipped), never replaced. A benchmark
left with no usable item (an empty file, every record bad, every media skipped) is a DataError naming the file and
the skip reasons with their counts: an evaluation of nothing is refused, not reported as accuracy null.
"""

from __future__ import annotations

import logging
import math
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from rova.config.benchmark import BenchmarkConfig
from rova.config.data import DataConfig, FrameSamplingConfig
from rova.data.records import (
    DATA_TYPES,
    MEDIA_KEYS,
    PROBLEM_TYPES,
    VideoQARecord,
    disambiguate_ids,
    parse_record,
    read_raw_records,
)
from rova.data.probe_pool import probe_all
from rova.data.video import (
    Segment,
    _short,
    list_frame_files,
    probe_image,
    probe_video,
    read_clip,
    read_frame_folder,
    read_image,
)
from rova.errors import ConfigError, DataError, VideoDecodeError
from rova.inference.record_checks import screen
from rova.models.families.base import ClipTiming

log = logging.getLogger(__name__)

MEDIA_KINDS = ("video", "frames", "image")
_KIND_NOUN = {"video": "video files", "frames": "frame folders", "image": "images"}
# data_type values that mean "a folder of frames" (MVBench's own annotations say "frame").
FRAME_DATA_TYPES = ("frame", "frames", "frame_folder", "frames_folder", "video_frames")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov")
SEGMENT_KEYS = ("start", "end")
BACKENDS = ("decord", "pyav")


@dataclass
class BenchmarkItem:
    """One question of a benchmark, with how to read its media."""

    item_id: str                    # "<benchmark>/<sample_id>": stable, unique; results are resumed by it
    index: int                      # position in the eval file
    record: VideoQARecord           # extra keys of the file are in record.extra
    media_kind: str                 # how it is read: "video" (a file), "frames" (a frame folder) or "image"
    segment: Optional[tuple[Optional[float], Optional[float]]] = None  # (start, end) seconds, if any
    frames_fps: Optional[float] = None  # fps of a frame folder
    subtasks: dict[str, str] = field(default_factory=dict)  # subtask key -> value, for keys the record has
    benchmark: str = ""             # the benchmark's name (benchmark.name)
    # For a subtask key with spellings ("task_type|task"): the spelling this record carries (the report names
    # its column by it). Empty when no key has spellings.
    subtask_matched: dict[str, str] = field(default_factory=dict)
    # The kind the record's data_type declared; differs from media_kind when the disk says otherwise.
    declared_kind: str = ""

    @property
    def media_path(self) -> str:
        return self.record.media_path

    @property
    def problem_type(self) -> str:
        return self.record.problem_type

    @property
    def answer(self) -> str:
        return self.record.answer

    @property
    def is_image(self) -> bool:
        return self.media_kind == "image"

    def to_dict(self) -> dict[str, Any]:
        """The record (Video-R1 schema plus its extra keys) and the item's own fields, JSON-ready."""
        out = self.record.to_dict()
        out.update(
            item_id=self.item_id,
            benchmark=self.benchmark,
            index=self.index,
            media_kind=self.media_kind,
            declared_kind=self.declared_kind or self.media_kind,
            segment=list(self.segment) if self.segment else None,
            frames_fps=self.frames_fps,
            subtasks=dict(self.subtasks),
        )
        return out


@dataclass
class SkippedItem:
    """An item left out of the benchmark: its media is missing or does not decode (never replaced)."""

    item_id: str
    index: int
    path: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "index": self.index, "path": self.path, "reason": self.reason}


@dataclass
class BenchmarkData:
    """The usable items of a benchmark, and those skipped with their reasons."""

    name: str
    file: str
    media_root: str
    items: list[BenchmarkItem]
    skipped: list[SkippedItem]
    num_records: int                # records in the file (before max_items)
    sampling: FrameSamplingConfig
    subtask_keys: list[str] = field(default_factory=list)
    probed: bool = True             # False: media were only checked to exist, not decoded
    bad_records: list[str] = field(default_factory=list)  # skipped for their content (rova.data.screening)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def num_considered(self) -> int:
        return len(self.items) + len(self.skipped)

    def skip_counts(self) -> Counter[str]:
        """Skipped items by reason kind (the text after the path, up to a parenthesis)."""
        counts: Counter[str] = Counter()
        for skip in self.skipped:
            prefix = f"{skip.path}: "
            text = skip.reason[len(prefix):] if skip.reason.startswith(prefix) else skip.reason
            counts[text.split(" (")[0]] += 1
        return counts

    def kind_overrides(self) -> list[dict[str, Any]]:
        """Kept items read as another kind than their record declared: [{"declared", "read_as", "items"}]."""
        pairs = Counter((i.declared_kind, i.media_kind) for i in self.items if i.declared_kind not in ("", i.media_kind))
        return [{"declared": d, "read_as": r, "items": n} for (d, r), n in sorted(pairs.items())]

    def subtask_coverage(self) -> dict[str, int]:
        """For each subtask key, how many kept items carry it."""
        return {key: sum(key in item.subtasks for item in self.items) for key in self.subtask_keys}

    def summary(self) -> dict[str, Any]:
        """What a results file records about the data: counts, skip reasons, sampling settings."""
        s = self.sampling
        return {
            "name": self.name,
            "file": self.file,
            "media_root": self.media_root,
            "num_records": self.num_records,
            "num_considered": self.num_considered,
            "num_items": len(self.items),
            "num_skipped": len(self.skipped),
            "bad_records": list(self.bad_records),
            "skip_reasons": dict(self.skip_counts()),
            "skipped": [skip.to_dict() for skip in self.skipped],
            "media_probed": self.probed,
            "media_kinds": dict(Counter(item.media_kind for item in self.items)),
            "media_kind_overrides": self.kind_overrides(),
            "subtask_keys": list(self.subtask_keys),
            "subtask_coverage": self.subtask_coverage(),
            "sampling": {
                "fps": s.fps, "min_frames": s.min_frames, "max_frames": s.max_frames, "min_pixels": s.min_pixels,
                "max_pixels": s.max_pixels, "total_pixels": s.total_pixels, "image_factor": s.image_factor,
            },
        }


# ----------------------------------------------------------------------------------------------------------
# Records


def _problem_type(value: Any) -> Any:
    """'multiple-choice', 'Multiple_Choice', 'ocr' -> the training names; anything else unchanged (rejected later)."""
    if not isinstance(value, str):
        return value
    wanted = " ".join(value.replace("-", " ").replace("_", " ").split()).lower()
    for name in PROBLEM_TYPES:
        if name.lower() == wanted or (name == "free-form" and wanted == "free form"):
            return name
    return value


def _seconds(obj: dict, key: str, where: str) -> Optional[float]:
    value = obj.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        seconds = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: key '{key}': must be a number of seconds or null, got {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise DataError(f"{where}: key '{key}': must be a finite number of seconds >= 0, got {value!r}")
    return seconds


def _prepare(obj: Any, index: int, where: str) -> tuple[dict, str, bool]:
    """A copy of the raw record the training parser accepts, plus its raw data_type and whether it had an id."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    obj = dict(obj)
    has_id = obj.get("problem_id") not in (None, "")
    if not has_id:
        obj["problem_id"] = index
    # An empty or null media key beside a real one ("path": "", "video": "x.mp4") is no media key.
    for key in MEDIA_KEYS:
        if key in obj and (obj[key] is None or (isinstance(obj[key], str) and not obj[key].strip())):
            if any(isinstance(obj.get(k), str) and obj[k].strip() for k in MEDIA_KEYS if k != key):
                del obj[key]
    raw_type = obj.get("data_type")
    if isinstance(raw_type, str):
        lowered = raw_type.strip().lower()
        if lowered in FRAME_DATA_TYPES:
            obj["data_type"] = "video"
        elif lowered in DATA_TYPES:
            obj["data_type"] = lowered
        elif lowered == "gif":  # MVBench's own annotations; decoded like any video file
            obj["data_type"] = "video"
    if obj.get("data_type") not in DATA_TYPES and "data_type" in obj:
        raise DataError(
            f"{where}: key 'data_type': must be one of {list(DATA_TYPES) + list(FRAME_DATA_TYPES)}, "
            f"got {obj['data_type']!r}"
        )
    obj["problem_type"] = _problem_type(obj.get("problem_type"))
    if obj.get("options") is None and "options" in obj:
        obj["options"] = []
    return obj, raw_type if isinstance(raw_type, str) else "", has_id


def _declared_kind(record: VideoQARecord, raw_type: str) -> str:
    if record.data_type == "image":
        return "image"
    return "frames" if raw_type.strip().lower() in FRAME_DATA_TYPES else "video"


def _on_disk(path: str) -> Optional[str]:
    """What is at `path`: "dir", "file" (a regular file; symlinks followed) or None (nothing, or something else)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else None


def _media_kind(declared: str, on_disk: Optional[str]) -> str:
    """How the media is read: a directory is a frame folder and a file a video, whatever data_type declared;
    an image stays an image, and absent media keeps the declared kind (its skip reason names what was expected)."""
    if declared == "image" or on_disk is None:
        return declared
    return "frames" if on_disk == "dir" else "video"


def _frames_fps(obj: dict, cfg: BenchmarkConfig, where: str) -> Optional[float]:
    value = obj.get("fps")
    if value is None:
        return cfg.frame_folder_fps
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DataError(f"{where}: key 'fps': must be a number > 0, got {value!r}")
    try:
        fps = float(value)
    except ValueError:
        raise DataError(f"{where}: key 'fps': must be a number > 0, got {value!r}") from None
    if not math.isfinite(fps) or fps <= 0:
        raise DataError(f"{where}: key 'fps': must be a number > 0, got {value!r}")
    return fps


def subtask_lookup(fields: dict[str, Any], spec: str) -> Optional[str]:
    """The sub-task a record carries under `spec`: a key, "a.b" for a nested key, "a|b" for the first
    of several spellings present (files differ: question_type | original_question_type). None if absent."""
    match = subtask_match(fields, spec)
    return match[1] if match else None


def subtask_match(fields: dict[str, Any], spec: str) -> Optional[tuple[str, str]]:
    """(the spelling of `spec` that matched, the sub-task), or None if the record carries none of them."""
    for alternative in spec.split("|"):
        value: Any = fields
        for part in alternative.strip().split("."):
            value = value.get(part) if isinstance(value, dict) else None
        text = _subtask_value(value)
        if text is not None:
            return alternative.strip(), text
    return None


def _subtask_value(value: Any) -> Optional[str]:
    if value is None or value == "" or isinstance(value, (dict, list)):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_benchmark_items(cfg: BenchmarkConfig) -> tuple[list[BenchmarkItem], int]:
    """Parse the eval file into items (media not opened) and the number of records in the file."""
    path = Path(cfg.file)
    root_given = cfg.media_root is not None
    root = Path(cfg.media_root).absolute() if root_given else path.absolute().parent
    raw = read_raw_records(path)
    num_records = len(raw)
    if cfg.max_items is not None:
        raw = raw[: cfg.max_items]
    records: list[VideoQARecord] = []
    meta: list[tuple[dict, str, bool]] = []
    for index, (where, obj) in enumerate(raw):
        where = f"{path}: {where}"
        prepared, raw_type, has_id = _prepare(obj, index, where)
        record = parse_record(prepared, where, root, root_given)
        if not has_id:
            record.sample_id = f"#{index}"
        records.append(record)
        meta.append((prepared, raw_type, has_id))
    disambiguate_ids(records, path)
    on_disk = {media: _on_disk(media) for media in {record.media_path for record in records}}  # one stat a path

    items: list[BenchmarkItem] = []
    for index, (record, (obj, raw_type, _)) in enumerate(zip(records, meta)):
        where = f"{path}: {raw[index][0]}"
        segment = None
        if cfg.segments:
            start, end = (_seconds(obj, key, where) for key in SEGMENT_KEYS)
            if start is not None and end is not None and end <= start:
                raise DataError(f"{where}: key 'end': must be after 'start' ({start:g} s), got {end:g} s")
            if start is not None or end is not None:
                segment = (start, end)
        declared = _declared_kind(record, raw_type)
        kind = _media_kind(declared, on_disk[record.media_path])
        fields = record.to_dict()
        subtasks, matched = {}, {}
        for key in cfg.subtask_keys:
            match = subtask_match(fields, key)
            if match is not None:
                subtasks[key] = match[1]
                if "|" in key:
                    matched[key] = match[0]
        items.append(
            BenchmarkItem(
                item_id=f"{cfg.name}/{record.sample_id}",
                index=index,
                record=record,
                media_kind=kind,
                segment=segment if kind != "image" else None,
                frames_fps=_frames_fps(obj, cfg, where) if kind == "frames" else None,
                subtasks=subtasks,
                benchmark=cfg.name,
                subtask_matched=matched,
                declared_kind=declared,
            )
        )
    return items, num_records


# ----------------------------------------------------------------------------------------------------------
# Media


def _sampling(cfg: Union[BenchmarkConfig, FrameSamplingConfig], image_factor: int) -> FrameSamplingConfig:
    return cfg if isinstance(cfg, FrameSamplingConfig) else cfg.frame_sampling(image_factor)


def _segment(item: BenchmarkItem) -> Segment | None:
    return tuple(item.segment) if item.segment else None  # type: ignore[return-value]


def read_item_clip(
    item: BenchmarkItem,
    cfg: Union[BenchmarkConfig, FrameSamplingConfig],
    backend: str = "decord",
    image_factor: int = 28,
) -> tuple[np.ndarray, ClipTiming, bool]:
    """(frames uint8 [T, H, W, 3], timing of the sampled frames, is_image) of an item; raises VideoDecodeError.

    Videos and frame folders are sampled and resized by the rules of rova.data.sampling with the model
    family's frame factor (inside the item's segment, if any); an image is one frame sized as training sizes
    images (timing: 1 fps).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    sampling = _sampling(cfg, image_factor)
    if item.media_kind == "image":
        return read_image(item.media_path, sampling), ClipTiming(1.0), True
    if item.media_kind == "frames":
        if item.frames_fps is None:
            raise VideoDecodeError(
                f"{item.media_path}: frame folder without a frame rate (set benchmark.frame_folder_fps, "
                "or an 'fps' key in the record)"
            )
        clip = read_frame_folder(item.media_path, sampling, item.frames_fps, segment=_segment(item))
    else:
        clip = read_clip(item.media_path, sampling, backend, segment=_segment(item))
    return clip.frames, clip.timing, False


def _check_exists(item: BenchmarkItem) -> None:
    path = item.media_path
    if item.media_kind == "frames":
        if item.frames_fps is None:
            raise VideoDecodeError(
                f"{path}: frame folder without a frame rate (set benchmark.frame_folder_fps, "
                "or an 'fps' key in the record)"
            )
        list_frame_files(path)
        return
    if not os.path.exists(path):
        raise VideoDecodeError(f"{path}: file not found")
    if not os.path.isfile(path):
        raise VideoDecodeError(f"{path}: not a regular file")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(f"{path}: file is empty (0 bytes)")


def _probe_item(item: BenchmarkItem, sampling: FrameSamplingConfig, backend: str) -> None:
    """Raise VideoDecodeError exactly when read_item_clip would (frames decoded, then dropped)."""
    _check_exists(item)
    if item.media_kind == "image":
        probe_image(item.media_path)
    elif item.media_kind == "frames":
        read_frame_folder(item.media_path, sampling, item.frames_fps, segment=_segment(item))
    else:
        probe_video(item.media_path, sampling, backend, segment=_segment(item))


def _media_key(item: BenchmarkItem) -> tuple:
    return (item.media_path, item.media_kind, item.segment, item.frames_fps)


def _probe_job(args: tuple) -> tuple[tuple, Optional[str]]:
    item, sampling, backend, decode = args
    try:
        (_probe_item if decode else lambda i, s, b: _check_exists(i))(item, sampling, backend)
    except VideoDecodeError as exc:
        return _media_key(item), str(exc)
    except Exception as exc:  # a decoder bug must not end the evaluation: skip and say why
        return _media_key(item), f"{item.media_path}: unexpected error while reading ({_short(exc)})"
    return _media_key(item), None


def _verdicts(
    items: list[BenchmarkItem], sampling: FrameSamplingConfig, backend: str, probe: bool, workers: int
) -> dict[tuple, Optional[str]]:
    jobs = list({_media_key(i): (i, sampling, backend, probe) for i in items}.values())
    # Checking that files exist is too quick to be worth worker processes.
    return dict(probe_all(_probe_job, jobs, workers if probe else 1))


def ensure_benchmark_demo(cfg: BenchmarkConfig) -> None:
    """Build the procedural clips (benchmark.demo_task's benchmark.demo_split: held out from training) into
    benchmark.file's folder if benchmark.build_demo (one process builds, the others wait; deterministic, so a
    second build rewrites the same files)."""
    if not cfg.build_demo:
        return
    from rova.data.procedural import build_procedural
    from rova.utils.locking import file_lock

    file = Path(cfg.file)
    with file_lock(file.parent.with_name(file.parent.name + ".lock")):
        built = build_procedural(cfg.demo_task, file.parent, cfg.demo_num_clips, cfg.demo_split)
    if Path(built) != file:
        raise ConfigError("benchmark.file", f"the procedural builder writes {built}; point benchmark.file there")


def no_usable_item_message(data: BenchmarkData) -> str:
    """Why a benchmark has no item to score: its records, those left out for their content, and the media skipped
    by reason with counts (the first reason in full)."""
    parts = [f"{data.num_records} record(s)"]
    read = data.num_considered + len(data.bad_records)
    if read < data.num_records:
        parts[0] += f", the first {read} read (benchmark.max_items)"
    if data.bad_records:
        parts.append(f"{len(data.bad_records)} bad record(s) left out (answer key or text unusable)")
    if data.skipped:
        reasons = ", ".join(f"{n} {reason}" for reason, n in data.skip_counts().most_common())
        parts.append(f"{len(data.skipped)} skipped: {reasons}; the first: {data.skipped[0].reason}")
    return f"benchmark {data.file} has no usable item: {'; '.join(parts)}"


def load_benchmark(
    cfg: BenchmarkConfig,
    *,
    backend: str = "decord",
    image_factor: int = 28,
    probe: bool = True,
    workers: int = 1,
    max_bad_fraction: float = DataConfig.max_bad_fraction,
    special_tokens: tuple[str, ...] = (),
) -> BenchmarkData:
    """Read the eval file (first benchmark.max_items records) and check each item's media.

    probe=True decodes the sampled frames of every distinct media (the only reliable test; `workers`
    processes); probe=False only checks that files and frame folders exist (read_item_clip may then
    still raise VideoDecodeError: skip and count such items too). Skipped items are logged and listed
    with their reason; nothing is substituted. Records a run cannot use (rova.inference.record_checks: answer key,
    chat special tokens) are left out first, by the data.max_bad_fraction rule (`max_bad_fraction`). Builds the
    demo first when benchmark.build_demo. Raises DataError when no item is left (no_usable_item_message).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    ensure_benchmark_demo(cfg)
    sampling = cfg.frame_sampling(image_factor)
    items, num_records = read_benchmark_items(cfg)
    usable, bad = screen([item.record for item in items], source=str(cfg.file), max_bad_fraction=max_bad_fraction,
                         fraction_key="data.max_bad_fraction", special_tokens=special_tokens)
    usable_ids = {id(record) for record in usable}
    items = [item for item in items if id(item.record) in usable_ids]
    verdicts = _verdicts(items, sampling, backend, probe, workers)
    kept: list[BenchmarkItem] = []
    skipped: list[SkippedItem] = []
    for item in items:
        reason = verdicts[_media_key(item)]
        if reason is None:
            kept.append(item)
        else:
            skipped.append(SkippedItem(item.item_id, item.index, item.media_path, reason))
    media_root = cfg.media_root if cfg.media_root is not None else str(Path(cfg.file).absolute().parent)
    data = BenchmarkData(
        name=cfg.name,
        file=str(cfg.file),
        media_root=str(Path(media_root).absolute()),
        items=kept,
        skipped=skipped,
        num_records=num_records,
        sampling=sampling,
        subtask_keys=list(cfg.subtask_keys),
        probed=probe,
        bad_records=[b.message() for b in bad],
    )
    bad = {skip.path: skip.reason for skip in skipped}
    for reason in list(bad.values())[:20]:
        log.warning("benchmark %s: skipping item media: %s", cfg.name, reason)
    if skipped:
        log.warning(
            "benchmark %s: %d items usable, %d skipped (%d media; reasons: %s)",
            cfg.name, len(kept), len(skipped), len(bad), dict(data.skip_counts()),
        )
    if not kept:
        raise DataError(no_usable_item_message(data))
    for override in data.kind_overrides():
        log.warning("benchmark %s: %d item(s) declared as %s are %s on disk, and are read as such", cfg.name,
                    override["items"], _KIND_NOUN[override["declared"]], _KIND_NOUN[override["read_as"]])
    missing = {k: n for k, n in data.subtask_coverage().items() if n < len(kept)}
    if missing:
        log.warning(
            "benchmark %s: subtask keys absent from some items (items carrying each: %s of %d)",
            cfg.name, missing, len(kept),
        )
    return data
