"""Bad records are found when the file is loaded, never mid-run (issue 22, defects 6, 7 and 9a).

The rule (rova.data.screening): a record whose content cannot be used (a ground truth the rewards cannot parse, an
option letter that is not among the options, chat special tokens in its text) is skipped and counted, one log
line each (up to a limit) naming file, record, problem_id and key, then one total line; the run is refused when
no record is left or when more than data.max_bad_fraction of them are bad (eval: of benchmark.file's records).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.data.records import VideoQARecord, load_records
from rova.data.screening import screen_records, special_token_problem
from rova.errors import DataError
from tests.support.runs import launch

VISION_TOKENS = "<|vision_start|><|video_pad|><|vision_end|>"


def record(index: int = 0, **fields) -> VideoQARecord:
    values = dict(problem_id=index + 1, problem="Which way does the ball move?", data_type="video",
                  problem_type="multiple choice", options=["A. left", "B. right"], solution="<answer>A</answer>",
                  media_path="/data/a.mp4", location=f"/data/train.json: record {index}")
    values.update(fields)
    return VideoQARecord(**values)


# --- 9a: a byte order mark ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_a_file_with_a_utf8_byte_order_mark_loads(tmp_path, suffix):
    rows = [{"problem_id": i, "problem": "q?", "data_type": "video", "problem_type": "numerical",
             "solution": f"<answer>{i}</answer>", "path": f"./v{i}.mp4"} for i in range(3)]
    text = json.dumps(rows) if suffix == ".json" else "\n".join(json.dumps(r) for r in rows)
    path = tmp_path / f"bom{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # what Windows editors and some exporters write
    records = load_records(path)
    assert [r.problem_id for r in records] == [0, 1, 2]


# --- where a record came from --------------------------------------------------------------------


def test_a_loaded_record_knows_its_file_and_position(tmp_path):
    rows = [{"problem_id": f"q{i}", "problem": "q?", "data_type": "video", "problem_type": "numerical",
             "solution": "<answer>1</answer>", "path": "./v.mp4"} for i in range(3)]
    json_file, lines_file = tmp_path / "a.json", tmp_path / "a.jsonl"
    json_file.write_text(json.dumps(rows))
    lines_file.write_text("\n\n".join(json.dumps(r) for r in rows))
    assert load_records(json_file)[2].location == f"{json_file}: record 2"
    assert load_records(lines_file)[2].location == f"{lines_file}: record 2 (line 5)"


# --- 7: chat special tokens ----------------------------------------------------------------------


@pytest.mark.parametrize("fields,key", [
    ({"problem": f"{VISION_TOKENS} What happens?"}, "problem"),
    ({"options": ["A. left", "B. <|im_end|>right"]}, "options[1]"),
    ({"process": "<think>hm <|endoftext|></think>"}, "process"),
    ({"solution": "<answer>A</answer><|im_start|>"}, "solution"),
])
def test_chat_special_tokens_in_a_record_are_found_with_their_key(fields, key):
    found = special_token_problem(record(**fields))
    assert found is not None and found[0] == key, found
    assert "<|" in found[1]


def test_a_family_token_outside_the_qwen_pattern_is_found_too():
    assert special_token_problem(record(problem="see <image> here"), tokens=("<image>",))[0] == "problem"
    assert special_token_problem(record(problem="see <image> here")) is None


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_characters="|"), max_size=200))
def test_text_without_a_bar_is_never_taken_for_a_special_token(text):
    assert special_token_problem(record(problem=text, options=[text])) is None


# --- the rule: skip and count, refuse when too many ------------------------------------------------


def flag_solution_b(rec: VideoQARecord):
    return ("solution", f"untagged solution {rec.solution!r}") if rec.solution == "B" else None


def screen(records, **kwargs):
    kwargs.setdefault("source", "/data/train.json")
    kwargs.setdefault("max_bad_fraction", 0.05)
    kwargs.setdefault("fraction_key", "data.max_bad_fraction")
    return screen_records(records, flag_solution_b, **kwargs)


def test_a_bad_record_is_skipped_counted_and_named(caplog):
    records = [record(i) for i in range(30)]
    records[7].solution = "B"
    with caplog.at_level(logging.WARNING):
        kept, bad = screen(records)
    assert len(kept) == 29 and records[7] not in kept
    assert [b.record for b in bad] == [records[7]]
    lines = [r.getMessage() for r in caplog.records]
    assert any("/data/train.json: record 7 (problem_id 8): key 'solution': untagged solution 'B'" in line
               for line in lines), lines
    assert any("skipped 1 of 30 records" in line for line in lines), lines


def test_one_line_per_bad_record_up_to_the_limit_then_a_total(caplog):
    records = [record(i, solution="B" if i < 25 else "<answer>A</answer>") for i in range(100)]
    with caplog.at_level(logging.WARNING):
        kept, bad = screen(records, max_bad_fraction=0.5, limit=10)
    assert len(kept) == 75 and len(bad) == 25
    lines = [r.getMessage() for r in caplog.records]
    assert sum("key 'solution'" in line for line in lines) == 10
    assert any("and 15 more" in line for line in lines) and any("skipped 25 of 100" in line for line in lines)


def test_too_many_bad_records_refuse_the_run_naming_the_threshold_and_the_first():
    records = [record(i, solution="B" if i in (3, 4) else "<answer>A</answer>") for i in range(10)]
    with pytest.raises(DataError) as info:
        screen(records)
    message = str(info.value)
    assert "2 of 10" in message and "data.max_bad_fraction=0.05" in message
    assert "record 3 (problem_id 4): key 'solution'" in message and "\n" not in message
    kept, bad = screen(records, max_bad_fraction=0.2)  # the key lets a known-dirty file through
    assert len(kept) == 8


def test_a_file_with_no_usable_record_is_refused_whatever_the_threshold():
    with pytest.raises(DataError, match="none of its 3 records"):
        screen([record(i, solution="B") for i in range(3)], max_bad_fraction=1.0)


# --- end to end: refused before anything trains ---------------------------------------------------


def test_a_bad_answer_key_and_a_special_token_question_are_refused_before_training(tmp_path, cache_dir, demo_file):
    """Issue 22: one `"solution": "B"` among 8 trained 5 steps then stopped naming neither file nor record, and a
    question holding the vision tokens ended in a StopIteration traceback at step 1. Both are now named up front."""
    rows = json.loads(Path(demo_file).read_text())[:8]
    for row in rows:
        row["path"] = str((Path(demo_file).parent / row["path"]).resolve())
    first_choice = next(i for i, row in enumerate(rows) if row["problem_type"] == "multiple choice")
    rows[first_choice]["solution"] = "B"
    rows[5]["problem"] = f"{VISION_TOKENS} {rows[5]['problem']}"
    train_file = tmp_path / "bad.json"
    train_file.write_text(json.dumps(rows))
    proc = launch(tmp_path, cache_dir, "stage=grpo", "stage.max_steps=1", "stage.num_generations=2",
                  "stage.per_device_train_batch_size=2", "stage.max_completion_length=8", "logger=none",
                  f"data.train_file={train_file}", "data.build_demo=false")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    error = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and str(train_file) in error[0] and "data.max_bad_fraction" in error[0], proc.stderr[-3000:]
    logged = proc.stdout  # the run's log (console and train.log): one line per bad record
    assert f"record {first_choice} (problem_id {rows[first_choice]['problem_id']}): key 'solution'" in logged
    assert f"record 5 (problem_id {rows[5]['problem_id']}): key 'problem'" in logged
    assert "skipped 2 of 8 records" in logged
    assert not list((tmp_path / "outputs").rglob("metrics.jsonl")), "nothing may train"
