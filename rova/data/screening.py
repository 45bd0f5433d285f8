"""Screening records before a run uses them: bad ones are skipped and counted, too many refuse the run.

A record whose content cannot be used is found when the file is loaded, not at the step that samples it: a ground
truth the rewards cannot parse (checked by rova.inference.record_checks with the rewards' own parsers) or chat
special tokens in its text (`special_token_problem` below: the processor would take them for real vision or
turn tokens). The rule, the same as for undecodable media (rova.data.video.split_by_verdict) plus a threshold:

- each bad record is skipped and logged on one line naming its file, record, problem_id and key (the first
  `limit` of them, then "... and N more"), then one total line;
- the run is refused (DataError) when no record is left, or when more than `max_bad_fraction` of the records are
  bad (data.max_bad_fraction; eval applies it to benchmark.file too): a file that broken is the wrong file, or
  needs fixing, rather than a few typos to step over. Raising the key lets a known-dirty file through.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rova.data.records import VideoQARecord
from rova.errors import DataError

log = logging.getLogger(__name__)

# Qwen's chat and vision special tokens (<|im_start|>, <|vision_start|>, <|video_pad|>, ...): every family rova
# supports writes its special tokens this way; a family's own list (ModelFamily.special_tokens) is checked too.
SPECIAL_TOKEN_RE = re.compile(r"<\|[A-Za-z0-9_]+\|>")
LOG_LIMIT = 20  # bad records logged one per line; the rest are counted

# (key, what is wrong) for one record, or None when it can be used.
Check = Callable[[VideoQARecord], "tuple[str, str] | None"]


@dataclass(frozen=True)
class BadRecord:
    record: VideoQARecord
    key: str
    problem: str

    def message(self) -> str:
        """`<file>: record <i> (problem_id <id>): key '<key>': <problem>`."""
        where = self.record.location or "record"
        return f"{where} (problem_id {self.record.problem_id!r}): key '{self.key}': {self.problem}"


def _text_fields(record: VideoQARecord) -> Iterable[tuple[str, str]]:
    """The text of a record that reaches the model (prompt, and the completion SFT trains on), with its key."""
    yield "problem", record.problem
    for i, option in enumerate(record.options):
        yield f"options[{i}]", option
    if record.process:
        yield "process", record.process
    if record.extra.get("hint"):  # a hint in the prompt (memory.augment_hard)
        yield "hint", record.extra["hint"]
    yield "solution", record.solution


def special_token_problem(record: VideoQARecord, tokens: Sequence[str] = ()) -> tuple[str, str] | None:
    """(key, problem) of the first text field holding a chat special token (the Qwen `<|...|>` pattern, or one of
    `tokens`, e.g. the family's), else None. Tokenizers read such text as the token itself: a question holding
    `<|vision_start|><|video_pad|><|vision_end|>` asks the processor for a second video (a StopIteration traceback
    at step 1), one holding `<|im_end|>` ends the user turn early."""
    for key, text in _text_fields(record):
        found = [m.group(0) for m in SPECIAL_TOKEN_RE.finditer(text)]
        found += [t for t in tokens if t and t in text and t not in found]
        if found:
            shown = ", ".join(dict.fromkeys(found))
            return key, f"holds chat special token(s) {shown}, which the tokenizer would read as control tokens; " \
                        "remove them from the record"
    return None


def screen_records(
    records: Sequence[VideoQARecord],
    check: Check,
    *,
    source: str,
    max_bad_fraction: float,
    fraction_key: str,
    limit: int = LOG_LIMIT,
) -> tuple[list[VideoQARecord], list[BadRecord]]:
    """(kept, bad) by `check`, in file order; logs each bad record and the total; DataError when none is left or
    more than `max_bad_fraction` of them are bad (`fraction_key` is the config key to name). `source` is the file."""
    kept: list[VideoQARecord] = []
    bad: list[BadRecord] = []
    for record in records:
        found = check(record)
        if found is None:
            kept.append(record)
        else:
            bad.append(BadRecord(record, *found))
    if not bad:
        return kept, bad
    for entry in bad[:limit]:
        log.warning("skipping bad record: %s", entry.message())
    if len(bad) > limit:
        log.warning("skipping bad records: ... and %d more", len(bad) - limit)
    total = len(records)
    log.warning("%s: skipped %d of %d records whose content cannot be used (answer key the rewards cannot parse, or "
                "chat special tokens); kept %d", source, len(bad), total, len(kept))
    first = bad[0].message()
    if not kept:
        raise DataError(f"{source}: none of its {total} records is usable; the first: {first}")
    if len(bad) > max_bad_fraction * total:
        raise DataError(
            f"{source}: {len(bad)} of {total} records are bad ({len(bad) / total:.1%}), more than "
            f"{fraction_key}={max_bad_fraction:g}; fix or remove them (each is logged above), or raise {fraction_key} "
            f"to skip them; the first: {first}"
        )
    return kept, bad
