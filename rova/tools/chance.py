"""Chance level of an eval file: the best score an answer that ignores the video can reach, per sub-task.

For every group of records (a sub-task key's value, e.g. shapes.kind, or else the problem type) each ground-truth
answer seen in the group is tried as THE answer to every record of the group, scored as stage=eval scores
(rova.rewards.accuracy_score, mode "eval": MRA for regression, IoU for grounding); the best one is the group's
chance level (for balanced multiple choice with 4 options, 25 %).

    uv run python -m rova.tools.chance .cache/shapes/test/shapes-120.json --key shapes.kind
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from rova.data.records import VideoQARecord, field_value, load_records
from rova.rewards import accuracy_score


def constant_answer_baseline(records: list[VideoQARecord], key: str | None = None) -> dict[str, dict]:
    """{group: {"n", "problem_type", "answer" (the best constant answer), "score"}} in first-seen group order."""
    groups: dict[str, list[VideoQARecord]] = defaultdict(list)
    for record in records:
        value = field_value(record.to_dict(), key) if key else None
        groups[str(value) if value is not None else record.problem_type].append(record)
    out = {}
    for name, members in groups.items():
        best = None
        for candidate in dict.fromkeys(r.answer for r in members):
            completion = f"<answer>{candidate}</answer>"
            score = sum(accuracy_score(completion, r.solution, r.problem_type, mode="eval") for r in members) / len(members)
            if best is None or score > best[1]:
                best = (candidate, score)
        out[name] = {"n": len(members), "problem_type": members[0].problem_type, "answer": best[0], "score": best[1]}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="a Video-R1-format eval file (.json / .jsonl)")
    parser.add_argument("--key", default=None, help="a sub-task key (a.b for nested), e.g. shapes.kind")
    args = parser.parse_args(argv)
    rows = constant_answer_baseline(load_records(args.file), args.key)
    print("| group | problem type | n | best constant answer | chance |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['problem_type']} | {row['n']} | {row['answer']} | {100 * row['score']:.1f} % |")


if __name__ == "__main__":
    main()
