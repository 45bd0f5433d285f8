"""TW-GRPO's question-answer inversion (docs: ../shared/docs/methods.md, TW-GRPO): a multiple-choice record is
asked the negated question, whose correct answers are the options that were wrong.

A record drawn (probability p) becomes:
  question  the first auxiliary verb after the first word in its "n't" form ("What is the man doing?" -> "What isn't
            the man doing?", "Which object does he hold?" -> "Which object doesn't he hold?");
  options   the original correct option + k of the wrong ones, k uniform in 1..n-1, shuffled and relettered
            ("A. text", "B. text", ...);
  answer    every option except the original correct one ("<answer>A,C</answer>"; one letter when k = 1), scored
            by the multi-answer rule (reward.multi_answer; TW-GRPO: soft).

A record that cannot be inverted is left unchanged, NOT inverted, and counted with its reason (InversionReport);
the released code inverts a question it cannot negate anyway (the question stays positive, the answer flips), a
bug rova fixes. Each record's draws come from stable_seed(seed, "invert_questions", sample_id): the same seed
inverts the same records the same way whatever the file order or the other records, and a larger p inverts a
superset of the records a smaller one does. Applied once, when the RL training rows are built
(rova.training.dataset), not re-drawn per epoch: a record keeps one question per run, which the difficulty memory
(keyed by sample_id) and a resumed run (which rebuilds the rows) rely on.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from rova.data.records import VideoQARecord
from rova.inference.seeding import stable_seed
from rova.rewards.accuracy import canonical_problem_type, option_letters, parse_choice
from rova.rewards.choices import is_multi_answer

# An auxiliary verb and its "n't" form (can't and won't are irregular; am, may, might, shall: no common form).
AUXILIARIES = {
    "is": "isn't", "are": "aren't", "was": "wasn't", "were": "weren't",
    "do": "don't", "does": "doesn't", "did": "didn't",
    "has": "hasn't", "have": "haven't", "had": "hadn't",
    "can": "can't", "could": "couldn't", "will": "won't", "would": "wouldn't",
    "should": "shouldn't", "must": "mustn't",
}
# Words that open a subordinate or coordinate clause: an auxiliary after one of them belongs to that clause
# ("What happened after the man was ..."), not to the question, so the search stops there.
CLAUSE_WORDS = frozenset({
    "after", "before", "when", "while", "if", "because", "since", "until", "unless", "that", "who", "whom", "whose",
    "where", "as", "and", "or", "but", "so", "then", "than",
})
_CLAUSE_END = ",;:.?!"
_NEGATIVE = re.compile(r"\b(?:not|never|cannot)\b|n['\u2019]t\b", re.IGNORECASE)
_WORD = re.compile(r"\S+")
# An option's letter and the text after it: the forms rova.rewards.accuracy.parse_choice reads ("A. x", "(A) x",
# "[A] x", "A) x", "A: x").
_OPTION = re.compile(r"\s*(?:\(([A-Za-z])\)|\[([A-Za-z])\]|([A-Za-z])[.):])\s*(.*)", re.DOTALL)
_ANSWER_SPAN = re.compile(r"<answer>.*?</answer>", re.DOTALL)
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Why a multiple-choice record is left as it is (InversionReport.left_alone keys).
NOT_NEGATABLE = "question cannot be negated (no auxiliary verb after the first word)"
ALREADY_NEGATIVE = "question is already negative"
NOT_ONE_LETTER = "answer is not one option letter"
TOO_FEW_OPTIONS = "fewer than two options"
UNLETTERED = "options without letter and text"
OPTIONS_IN_QUESTION = "the question text lists the options"


def _cased(replacement: str, word: str) -> str:
    if len(word) > 1 and word.isupper():
        return replacement.upper()
    return replacement[0].upper() + replacement[1:] if word[0].isupper() else replacement


def negate_question(question: str) -> str | None:
    """The question with the first auxiliary verb after its first word in its "n't" form (its capitals kept);
    None when there is none before the clause ends (punctuation, or a word such as "after", "that", "and"), when
    the first word is itself an auxiliary (a yes/no question), or when the question is already negative."""
    if _NEGATIVE.search(question):
        return None
    words = list(_WORD.finditer(question))
    if len(words) < 2 or words[0].group().lower() in AUXILIARIES or words[0].group()[-1] in _CLAUSE_END:
        return None
    for match in words[1:]:
        word = match.group()
        if word.lower() in AUXILIARIES:
            return question[: match.start()] + _cased(AUXILIARIES[word.lower()], word) + question[match.end():]
        if word.lower() in CLAUSE_WORDS or word[-1] in _CLAUSE_END:
            return None
    return None


def split_option(option: str) -> tuple[str, str] | None:
    """(letter upper-cased, text) of an option such as "B. a dog"; None without a letter or without text."""
    match = _OPTION.fullmatch(option)
    if match is None or not match.group(4).strip():
        return None
    letter = next(group for group in match.groups()[:3] if group is not None)
    return letter.upper(), match.group(4).strip()


def inversion_problem(record: VideoQARecord) -> str | None:
    """Why a multiple-choice record cannot be inverted (one of the reasons above), or None when it can."""
    if _NEGATIVE.search(record.problem):
        return ALREADY_NEGATIVE
    if negate_question(record.problem) is None:
        return NOT_NEGATABLE
    if len(record.options) < 2:
        return TOO_FEW_OPTIONS
    parts = [split_option(option) for option in record.options]
    letters = option_letters(record.options)
    if None in parts or letters is None or len(set(letters)) != len(letters):
        return UNLETTERED
    answer = record.answer
    if not _ANSWER_SPAN.search(record.solution) or is_multi_answer(answer) or parse_choice(answer) not in letters:
        return NOT_ONE_LETTER
    if any(option.strip() in record.problem for option in record.options):
        return OPTIONS_IN_QUESTION
    return None


def invert_record(record: VideoQARecord, rng: random.Random) -> VideoQARecord:
    """The inverted record (the module docstring's rule; `record` must pass inversion_problem). The rationale
    (`process`) and a `hint` field answered the original question and are dropped; extra["inverted"] marks the
    record."""
    texts = [split_option(option)[1] for option in record.options]
    correct = option_letters(record.options).index(parse_choice(record.answer))
    wrong = [i for i in range(len(texts)) if i != correct]
    chosen = [correct, *rng.sample(wrong, rng.randint(1, len(wrong)))]
    rng.shuffle(chosen)
    answer = ",".join(LETTERS[position] for position, i in enumerate(chosen) if i != correct)
    return dataclasses.replace(
        record,
        problem=negate_question(record.problem),
        options=[f"{LETTERS[position]}. {texts[i]}" for position, i in enumerate(chosen)],
        solution=_ANSWER_SPAN.sub(lambda _: f"<answer>{answer}</answer>", record.solution, count=1),
        process=None,
        extra={**{k: v for k, v in record.extra.items() if k != "hint"}, "inverted": True},
    )


@dataclass
class InversionReport:
    """What the inversion did to a file's records (data_report.json's `invert_questions`)."""

    p: float
    seed: int
    multiple_choice: int = 0  # records of problem type multiple choice
    inverted: int = 0
    not_drawn: int = 0        # invertible, left as they are by the draw (probability 1 - p)
    left_alone: dict[str, int] = field(default_factory=dict)  # reason -> records that cannot be inverted

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One log line: the inverted records, and those left alone per reason."""
        reasons = "; ".join(f"{reason}: {count}" for reason, count in sorted(self.left_alone.items()))
        text = (f"inverted {self.inverted} of {self.multiple_choice} multiple-choice questions (p={self.p}, "
                f"seed={self.seed}); {sum(self.left_alone.values())} cannot be inverted")
        return f"{text} ({reasons})" if reasons else text


def invert_records(records: Sequence[VideoQARecord], p: float, seed: int) -> tuple[list[VideoQARecord], InversionReport]:
    """The records in their order, each multiple-choice one inverted with probability p when it can be, and the
    counts. p = 0 returns the records unchanged; p = 1 inverts every invertible one."""
    report = InversionReport(p=float(p), seed=int(seed))
    if p <= 0:
        return list(records), report
    left_alone: Counter[str] = Counter()
    out = []
    for record in records:
        if canonical_problem_type(record.problem_type) != "multiple choice":
            out.append(record)
            continue
        report.multiple_choice += 1
        problem = inversion_problem(record)
        if problem is not None:
            left_alone[problem] += 1
            out.append(record)
            continue
        rng = random.Random(stable_seed(seed, "invert_questions", record.sample_id))
        if rng.random() < p:
            report.inverted += 1
            out.append(invert_record(record, rng))
        else:
            report.not_drawn += 1
            out.append(record)
    report.left_alone = dict(left_alone)
    return out, report
