"""Whether a record can be used, checked when its file is loaded (training, SFT, cot and eval alike).

A record is usable when its ground truth parses for its problem type with the parsers the rewards score it by
(rova.rewards.accuracy.ground_truth: an option letter that is among the options, a finite number, a [start, end]
span, boxes, ...) and no text of it holds a chat special token (rova.data.screening). The rule for the bad ones
(skip and count; refuse the run when none is left or more than the threshold are bad) is
rova.data.screening.screen_records.
"""

from __future__ import annotations

from collections.abc import Sequence

from rova.data.records import VideoQARecord
from rova.data.screening import BadRecord, screen_records, special_token_problem
from rova.rewards.accuracy import RewardDataError, ground_truth


def record_problem(record: VideoQARecord, special_tokens: Sequence[str] = ()) -> tuple[str, str] | None:
    """(key, what is wrong) for a record a run cannot use, else None."""
    found = special_token_problem(record, special_tokens)
    if found is not None:
        return found
    try:
        ground_truth(record.solution, record.problem_type, record.options)
    except RewardDataError as exc:
        return "solution", str(exc)
    return None


def screen(
    records: Sequence[VideoQARecord], *, source: str, max_bad_fraction: float, fraction_key: str,
    special_tokens: Sequence[str] = (),
) -> tuple[list[VideoQARecord], list[BadRecord]]:
    """(kept, bad) records of `source` (rova.data.screening.screen_records with `record_problem`)."""
    tokens = tuple(special_tokens)
    return screen_records(records, lambda r: record_problem(r, tokens), source=str(source),
                          max_bad_fraction=max_bad_fraction, fraction_key=fraction_key)
