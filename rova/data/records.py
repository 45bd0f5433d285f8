"""Video-R1 annotation records: load, validate, and resolve media paths.

The schema (training and eval files alike): problem_id, problem, data_type ("video"|"image"),
problem_type, options (["A. ...", ...]), process ("<think>...</think>" in CoT files), solution
("<answer>X</answer>"), path (media, often "./..."), data_source. Real files differ: some use `video`
instead of `path`, some carry extra keys (kept in `extra`). Anything else malformed is rejected with
a DataError naming the file, the record index and the key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rova.errors import DataError

log = logging.getLogger(__name__)

# Video-R1's six problem types (the demo dataset makes one of each), then VideoChat-R1's three.
VIDEO_R1_PROBLEM_TYPES = ("multiple choice", "numerical", "OCR", "free-form", "regression", "grounding")
PROBLEM_TYPES = (*VIDEO_R1_PROBLEM_TYPES, "grounded_qa", "tracking", "caption")
CHOICE_TYPES = ("multiple choice", "grounded_qa")  # problem types whose question lists options
DATA_TYPES = ("video", "image")
MEDIA_KEYS = ("path", "video")
REQUIRED_KEYS = ("problem_id", "problem", "data_type", "problem_type", "solution")
KNOWN_KEYS = frozenset(REQUIRED_KEYS + MEDIA_KEYS + ("options", "process", "data_source"))

_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


@dataclass
class VideoQARecord:
    """One question about one video (or image). `media_path` is resolved (absolute)."""

    problem_id: int | str
    problem: str
    data_type: str
    problem_type: str
    options: list[str]
    solution: str
    media_path: str
    process: str | None = None
    data_source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # A stable string key (difficulty memory, results files): str(problem_id), disambiguated by the
    # loader when a file repeats a problem_id.
    sample_id: str = ""
    # Where the loader found it ("<file>: record 3", "... (line 4)" for JSON Lines): named in data errors. Not
    # part of the record's identity: the same record read from a .json and a .jsonl is equal.
    location: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.sample_id:
            self.sample_id = str(self.problem_id)

    @property
    def answer(self) -> str:
        """The ground truth inside <answer>...</answer> (the whole solution, stripped, if untagged)."""
        match = _ANSWER_RE.search(self.solution)
        return (match.group(1) if match else self.solution).strip()

    def to_dict(self) -> dict[str, Any]:
        """Flat dict in the Video-R1 schema (media under `path`), plus sample_id and the extra keys."""
        out: dict[str, Any] = dict(self.extra)
        out.update(
            problem_id=self.problem_id,
            sample_id=self.sample_id,
            problem=self.problem,
            data_type=self.data_type,
            problem_type=self.problem_type,
            options=list(self.options),
            process=self.process,
            solution=self.solution,
            path=self.media_path,
            data_source=self.data_source,
        )
        return out


def read_raw_records(path: Path) -> list[tuple[str, Any]]:
    """(location label, parsed object) for each record of a JSON list or a JSON Lines file, in file order.

    The objects are not validated (see parse_record); the label ("record 3", or "record 3 (line 4)" for
    JSON Lines) names the record in error messages. An unreadable, empty or malformed file raises DataError.
    """
    try:
        # utf-8-sig: a leading byte order mark (Windows editors, some exporters) is dropped, not taken for data.
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: annotation file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read annotation file ({exc})") from None
    stripped = text.lstrip()
    if not stripped:
        raise DataError(f"{path}: annotation file is empty (expected a JSON list or JSON Lines)")
    if path.suffix.lower() != ".jsonl" and stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        return [(f"record {i}", obj) for i, obj in enumerate(data)]
    if not stripped.startswith("{"):
        raise DataError(f"{path}: expected a JSON list of records or JSON Lines (one object per line)")
    if len(stripped.splitlines()) > 1:
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None  # several objects: JSON Lines, parsed below
        if isinstance(whole, dict):
            keys = ", ".join(list(whole)[:5])
            raise DataError(
                f"{path}: the top level is one JSON object (keys: {keys}); expected a list of records "
                "or JSON Lines (one object per line)"
            )
    items: list[tuple[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: record {len(items)} (line {lineno}): invalid JSON ({exc.msg}); "
                "JSON Lines files need one complete object per line"
            ) from None
        items.append((f"record {len(items)} (line {lineno})", obj))
    return items


def _resolve_media(raw: str, media_root: Path, root_given: bool) -> str:
    rel = raw
    while rel.startswith("./"):
        rel = rel[2:]
    if os.path.isabs(rel):
        if not root_given:
            return os.path.normpath(rel)
        # Video-R1-style eval files write root-relative paths with a leading "/" (MMVU:
        # "/MMVU/videos/Chemistry/0.mp4") and the eval scripts concatenate them onto a data root.
        rel = rel.lstrip("/")
    return os.path.normpath(os.path.join(media_root, rel))


def parse_record(obj: Any, where: str, media_root: Path, root_given: bool) -> VideoQARecord:
    """Validate one raw record (a JSON object of the Video-R1 schema) into a VideoQARecord.

    `where` prefixes every error message (file and record label); the media path is resolved against
    `media_root` (with `root_given`, a leading "/" is placed under it too; see load_records). A missing or
    ill-typed key raises DataError naming the key. sample_id is the problem_id (see disambiguate_ids).
    """
    def bad(key: str, problem: str) -> DataError:
        return DataError(f"{where}: key '{key}': {problem}")

    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for key in REQUIRED_KEYS:
        if key not in obj:
            raise bad(key, "missing (required: " + ", ".join(REQUIRED_KEYS) + ", and 'path' or 'video')")

    problem_id = obj["problem_id"]
    if isinstance(problem_id, bool) or not isinstance(problem_id, (int, str)) or problem_id == "":
        raise bad("problem_id", f"must be an int or a non-empty string, got {problem_id!r}")
    for key in ("problem", "solution"):
        if not isinstance(obj[key], str):
            raise bad(key, f"must be a string, got {type(obj[key]).__name__}")
    if obj["data_type"] not in DATA_TYPES:
        raise bad("data_type", f"must be one of {list(DATA_TYPES)}, got {obj['data_type']!r}")
    if obj["problem_type"] not in PROBLEM_TYPES:
        raise bad("problem_type", f"must be one of {list(PROBLEM_TYPES)}, got {obj['problem_type']!r}")

    options = obj.get("options", [])
    if options is None:
        options = []
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise bad("options", f"must be a list of strings like 'A. ...', got {options!r:.80}")
    if obj["problem_type"] in CHOICE_TYPES and not options:
        raise bad("options", f"a {obj['problem_type']} record needs a non-empty options list")

    for key in ("process", "data_source", "hint"):  # `hint` stays in `extra` (memory.augment_hard reads it)
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise bad(key, f"must be a string or null, got {type(value).__name__}")

    present = [k for k in MEDIA_KEYS if k in obj]
    if not present:
        raise bad("path", "missing media key (expected 'path' or 'video')")
    media = [obj[k] for k in present]
    for key, value in zip(present, media):
        if not isinstance(value, str) or not value.strip():
            raise bad(key, f"media path must be a non-empty string, got {value!r}")
    if len(set(media)) > 1:
        raise bad("video", f"'path' ({media[0]!r}) and 'video' ({media[1]!r}) disagree; keep one")

    return VideoQARecord(
        problem_id=problem_id,
        problem=obj["problem"],
        data_type=obj["data_type"],
        problem_type=obj["problem_type"],
        options=list(options),
        solution=obj["solution"],
        media_path=_resolve_media(media[0], media_root, root_given),
        # CoT-less files write "" for process; absent and empty mean the same.
        process=obj.get("process") or None,
        data_source=obj.get("data_source"),
        extra={k: v for k, v in obj.items() if k not in KNOWN_KEYS},
        location=where,
    )


def disambiguate_ids(records: list[VideoQARecord], path: Path) -> None:
    """Make sample_id unique in place: repeated problem_ids get a content hash (stable under reordering).

    `path` only names the file in the warning logged when ids repeat."""
    counts = Counter(r.sample_id for r in records)
    repeated = {sid for sid, n in counts.items() if n > 1}
    if not repeated:
        return
    log.warning("%s: %d problem_id values repeat; their sample_id gets a content hash", path, len(repeated))
    seen: Counter[str] = Counter()
    for rec in records:
        if rec.sample_id not in repeated:
            continue
        content = json.dumps([rec.problem, rec.options, rec.solution, rec.media_path], ensure_ascii=False)
        sid = f"{rec.sample_id}-{hashlib.sha1(content.encode('utf-8')).hexdigest()[:8]}"
        seen[sid] += 1
        # Exact duplicates (same id and content) are told apart by order of appearance.
        rec.sample_id = sid if seen[sid] == 1 else f"{sid}-{seen[sid]}"


def load_records(path: str | os.PathLike, media_root: str | os.PathLike | None = None) -> list[VideoQARecord]:
    """Read a Video-R1 annotation file (a JSON list, or JSON Lines) into validated records.

    Media paths ('path' or 'video'; a leading "./" is stripped) are resolved against `media_root`,
    by default the annotation file's folder. When `media_root` is given, a path with a leading "/"
    is also placed under it (MMVU-style "/MMVU/videos/x.mp4"); without it, absolute paths are kept.
    Media files are not opened here: see rova.data.video.filter_decodable; nor is the content checked against
    the rewards' parsers: see rova.data.screening (records a run cannot use are skipped and counted).
    """
    path = Path(path)
    root_given = media_root is not None
    root = Path(media_root).absolute() if root_given else path.absolute().parent
    raw = read_raw_records(path)
    records = [parse_record(obj, f"{path}: {where}", root, root_given) for where, obj in raw]
    disambiguate_ids(records, path)
    return records


def field_value(fields: dict[str, Any], key: str) -> Any:
    """The value under `key` ("a.b" for a nested key) of a record's Video-R1-schema dict; None if absent."""
    value: Any = fields
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def keep_records(records: list[VideoQARecord], keep: dict[str, list[Any]]) -> list[VideoQARecord]:
    """data.keep: the records whose every listed field (e.g. problem_type, data_source, shapes.kind) holds one of
    its listed values, in file order; {} keeps all."""
    if not keep:
        return list(records)
    wanted = {key: {str(v) for v in values} for key, values in keep.items()}
    return [r for r in records
            if all(str(field_value(r.to_dict(), key)) in values for key, values in wanted.items())]
