"""The progress of a generation job (rova.inference.progress): lines or a bar, other shards, the rate."""

from __future__ import annotations

import io

from rova.inference.progress import NewLines, Progress, duration


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_new_lines_counts_each_complete_line_once_and_a_torn_one_when_it_is_whole(tmp_path):
    path = tmp_path / "predictions.shard1-of-2.jsonl"
    lines = NewLines(path)
    assert lines.gained() == 0  # that shard has written nothing yet
    path.write_text('{"a": 1}\n{"a": 2}\n{"a"')
    assert lines.gained() == 2
    assert lines.gained() == 0
    with open(path, "a") as handle:
        handle.write(': 3}\n{"a": 4}\n')
    assert lines.gained() == 2


def test_not_a_terminal_one_line_per_step_with_the_rate_of_generated_items_only(tmp_path):
    clock, out = Clock(), io.StringIO()
    progress = Progress(100, label="cot", clock=clock, stream=out, step=0.25)
    progress.begin(40)  # resumed: 40 already in the store
    for _ in range(30):
        clock.now += 1.0
        progress.advance(2, "cot")
    progress.finish()
    assert out.getvalue().splitlines() == [
        "[rova] cot resuming: 40/100 (40%) already done, 60 to generate",
        "[rova] cot 50/100 (50%)  2.00 items/s  ETA 25s  cot",
        "[rova] cot 76/100 (76%)  2.00 items/s  ETA 12s  cot",
        "[rova] cot 100/100 (100%) in 30s: 2.00 items/s over 60 generated",
    ]


def test_a_shard_that_finishes_first_says_the_others_are_still_at_work(tmp_path):
    other = tmp_path / "p.shard1-of-2.jsonl"
    other.write_text("x\n" * 3)
    clock, out = Clock(), io.StringIO()
    progress = Progress(20, clock=clock, stream=out, others=[other], poll_s=10)
    progress.begin(0)
    clock.now += 5
    progress.advance(10, "clean")
    other.write_text("x\n" * 5)
    progress.finish()  # reads the other shard's file once more
    assert out.getvalue().splitlines()[0] == "[rova] eval resuming: 3/20 (15%) already done, 17 to generate"
    assert out.getvalue().splitlines()[-1] == (
        "[rova] eval 15/20 (75%)  2.40 items/s  ETA 2s  clean (this shard done in 5s; the other shards are at work)")


def test_a_terminal_gets_a_bar_updated_in_place(tmp_path):
    out = io.StringIO()
    progress = Progress(1000, stream=out, tty=True)
    progress.begin(0)
    for _ in range(250):
        progress.advance(4, "fog@3")
    progress.finish()
    text = out.getvalue()
    assert "\r" in text and "fog@3" in text and "1000/1000" in text
    lines = [line for line in text.split("\n") if line]
    assert len(lines) <= 3 and lines[-1].startswith("[rova] eval 1000/1000 (100%) in ")


def test_a_disabled_progress_says_nothing(capsys):
    progress = Progress(10, enabled=False)
    progress.begin(3)
    progress.advance(7, "clean")
    progress.finish()
    assert capsys.readouterr().out == ""


def test_duration():
    assert [duration(s) for s in (0.4, 45, 725, 11_220, float("inf"))] == ["0s", "45s", "12m05s", "3h07m", "?"]
