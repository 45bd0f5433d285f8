"""Loading Video-R1 annotation files: the real MMVU file, JSON Lines, media paths, malformed records."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rova.data.records import load_records
from rova.errors import DataError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
MMVU = SHARED / "benchmarks" / "eval_mmvu.json"


def good_record(**overrides) -> dict:
    record = {
        "problem_id": 7,
        "problem": "Which way does the red ball move?",
        "data_type": "video",
        "problem_type": "multiple choice",
        "options": ["A. left to right", "B. right to left"],
        "process": "<think>It starts left.</think>",
        "solution": "<answer>A</answer>",
        "path": "./videos/a.mp4",
        "data_source": "unit",
    }
    record.update(overrides)
    return record


def write_json(tmp_path: Path, records, name="ann.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


# --- the real file ------------------------------------------------------------------------------


@pytest.mark.skipif(not MMVU.is_file(), reason=f"real data not present: {MMVU} (shared data folder absent)")
def test_loads_real_mmvu_file(tmp_path):
    records = load_records(MMVU, media_root=tmp_path)
    assert len(records) == 625
    assert {r.problem_type for r in records} == {"multiple choice"}
    assert {r.data_type for r in records} == {"video"}
    first = records[0]
    # media key `video`, written root-relative as "/MMVU/videos/...": placed under media_root.
    assert first.media_path == os.path.join(tmp_path, "MMVU", "videos", "Chemistry", "0.mp4")
    assert first.extra == {"original_question_type": "multiple-choice"}
    assert first.process is None  # "" in the file
    assert first.answer == "A" and len(first.options) == 5
    assert len({r.sample_id for r in records}) == 625 and first.sample_id == "1"
    # Without a media_root the absolute-looking path is kept as written.
    assert load_records(MMVU)[0].media_path == "/MMVU/videos/Chemistry/0.mp4"


# --- formats and paths --------------------------------------------------------------------------


def test_json_and_jsonl_give_the_same_records(tmp_path):
    rows = [good_record(problem_id=i, extra_key=i) for i in range(3)]
    rows.append(good_record(problem_id="q-x", problem_type="numerical", options=[], solution="<answer>3</answer>"))
    from_json = load_records(write_json(tmp_path, rows))
    jsonl = tmp_path / "ann.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    from_jsonl = load_records(jsonl)
    assert from_json == from_jsonl
    assert [r.sample_id for r in from_json] == ["0", "1", "2", "q-x"]
    assert from_json[1].extra == {"extra_key": 1}
    assert from_json[3].answer == "3" and from_json[3].options == []


def test_media_paths_resolve(tmp_path):
    rows = [
        good_record(problem_id=1, path="./videos/a.mp4"),
        good_record(problem_id=2, path="videos/b.mp4"),
        good_record(problem_id=3, path=None, video="./c.mp4"),
        good_record(problem_id=4, path="/abs/d.mp4"),
    ]
    del rows[2]["path"]
    (tmp_path / "sub").mkdir()
    ann = write_json(tmp_path / "sub", rows)
    got = [r.media_path for r in load_records(ann)]
    base = str((tmp_path / "sub").absolute())
    assert got == [f"{base}/videos/a.mp4", f"{base}/videos/b.mp4", f"{base}/c.mp4", "/abs/d.mp4"]
    root = tmp_path / "media"
    got = [r.media_path for r in load_records(ann, media_root=root)]
    assert got == [f"{root}/videos/a.mp4", f"{root}/videos/b.mp4", f"{root}/c.mp4", f"{root}/abs/d.mp4"]


def test_repeated_problem_ids_get_unique_stable_sample_ids(tmp_path):
    rows = [good_record(problem_id=1, problem=f"q{i}") for i in range(3)] + [good_record(problem_id=2)]
    ids = [r.sample_id for r in load_records(write_json(tmp_path, rows))]
    assert len(set(ids)) == 4 and ids[3] == "2" and all(i.startswith("1-") for i in ids[:3])
    reordered = [r.sample_id for r in load_records(write_json(tmp_path, rows[::-1], "rev.json"))]
    assert sorted(reordered) == sorted(ids)
    exact_dupes = [r.sample_id for r in load_records(write_json(tmp_path, [good_record()] * 2, "d.json"))]
    assert len(set(exact_dupes)) == 2


def test_to_dict_round_trips(tmp_path):
    rec = load_records(write_json(tmp_path, [good_record(original_question_type="mc")]))[0]
    d = rec.to_dict()
    assert d["path"] == rec.media_path and d["sample_id"] == "7" and d["original_question_type"] == "mc"
    again = load_records(write_json(tmp_path, [d], "again.json"))[0]
    assert again.media_path == rec.media_path and again.answer == rec.answer


# --- malformed input -----------------------------------------------------------------------------


def _without(key):
    rec = good_record()
    del rec[key]
    return rec


MALFORMED = [
    ("not an object", ["just a string"], "expected a JSON object"),
    ("missing problem", _without("problem"), "'problem'"),
    ("missing solution", _without("solution"), "'solution'"),
    ("missing problem_id", _without("problem_id"), "'problem_id'"),
    ("no media key", _without("path"), "'path'"),
    ("unknown problem_type", good_record(problem_type="multiple-choice"), "'problem_type'"),
    ("unknown data_type", good_record(data_type="audio"), "'data_type'"),
    ("options not a list", good_record(options="A. x"), "'options'"),
    ("option not a string", good_record(options=["A. x", 2]), "'options'"),
    ("empty options for multiple choice", good_record(options=[]), "'options'"),
    ("empty options for grounded QA", good_record(problem_type="grounded_qa", options=[],
                                                  solution="<answer>A</answer><glue>[]</glue>"), "'options'"),
    ("problem not a string", good_record(problem=["q"]), "'problem'"),
    ("solution not a string", good_record(solution=3), "'solution'"),
    ("problem_id a bool", good_record(problem_id=True), "'problem_id'"),
    ("problem_id a float", good_record(problem_id=1.5), "'problem_id'"),
    ("empty media path", good_record(path=""), "'path'"),
    ("media path not a string", good_record(path=3), "'path'"),
    ("path and video disagree", good_record(video="./other.mp4"), "'video'"),
    ("process not a string", good_record(process=5), "'process'"),
]


@pytest.mark.parametrize("label, bad, key_text", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_record_names_file_index_and_key(tmp_path, label, bad, key_text):
    bad = bad[0] if isinstance(bad, list) else bad
    path = write_json(tmp_path, [good_record(problem_id=0), bad, good_record(problem_id=2)])
    with pytest.raises(DataError) as info:
        load_records(path)
    message = str(info.value)
    assert str(path) in message and "record 1" in message and key_text in message, message


@pytest.mark.parametrize(
    "content, expected",
    [
        ("", "empty"),
        ('{"a": 1', "line 1"),
        ('[{"problem_id": 1}', "invalid JSON"),
        ("hello", "expected a JSON list"),
        ('{\n  "data": [{"problem_id": 1}]\n}', "top level is one JSON object"),
    ],
)
def test_unparseable_files(tmp_path, content, expected):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=expected) as info:
        load_records(path)
    assert str(path) in str(info.value)


def test_jsonl_error_names_record_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps(good_record(problem_id=0)), "", json.dumps(good_record(problem_type="essay"))]
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match=r"record 1 \(line 3\): key 'problem_type'"):
        load_records(path)
    path.write_text(lines[0] + "\n{broken\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"record 1 \(line 2\)"):
        load_records(path)


def test_grounded_qa_tracking_and_caption_records_load(tmp_path):
    records = load_records(write_json(tmp_path, [
        good_record(problem_id=0, problem_type="grounded_qa", solution="<answer>A</answer><glue>[(1, 2)]</glue>"),
        good_record(problem_id=1, problem_type="tracking", options=[], solution="<answer>[[0, 0, 1, 1]]</answer>"),
        good_record(problem_id=2, problem_type="caption", options=[], solution="<answer>a man runs\nhe falls</answer>"),
    ]))
    assert [r.problem_type for r in records] == ["grounded_qa", "tracking", "caption"]


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_records(tmp_path / "nope.json")


def test_keep_selects_records_by_top_level_and_nested_fields(tmp_path):
    from rova.data.records import keep_records
    from rova.data.shapes import build_shapes_dataset

    records = load_records(build_shapes_dataset(tmp_path, 12, "val"))
    assert keep_records(records, {}) == records
    flashes = keep_records(records, {"shapes.kind": ["flash_count"]})
    assert [r.extra["shapes"]["kind"] for r in flashes] == ["flash_count"] * 2
    mc = keep_records(records, {"problem_type": ["multiple choice"], "shapes.kind": ["direction", "size"]})
    assert {r.extra["shapes"]["kind"] for r in mc} == {"direction"}
    assert keep_records(records, {"shapes.nope": ["x"]}) == []


def test_keep_with_no_values_names_the_key():
    from rova.config.compose import load
    from rova.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        load(["data=shapes", "+data.keep={problem_type: []}"])
    assert err.value.key == "data.keep.problem_type"
