"""EFT seed data for the pointwise 5-point judge, built from problems with known answers.

Yuan et al. 2024 seed their judge with human-ranked evaluations (EFT). We have no such data, so we
make responses of *known quality* from training problems and their reference solutions:

- ``correct``: the reference solution in step format, ending ``The answer is \\boxed{N}`` - 5 points;
- ``wrong_answer``: the same solution with the final calculation and the boxed answer changed to a
  different number - 2 points (relevant, covers most of the work, does not resolve the question);
- ``truncated``: the first half of the steps, no final answer - 1 point (relevant, incomplete).

Each is paired with a short justification that walks the rubric's criteria and ends ``Score: N``, as an
SFT record ``{prompt: judge message, completion: justification}``. Problems are split first: the
*held-out* problems give judge-accuracy pairs (better, worse) - the paper's "reward model accuracy"
axis, measured every iteration with :func:`~prm_selfreward.judges.pointwise.pairwise_accuracy` - and
never appear in the SFT records.

Only training pools are used (``gsm8k``/``math`` split ``train``, via
:func:`~prm_selfreward.data.benchmarks.training_problems`). Deterministic given ``seed``.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..config import option
from ..grading.numbers import exact_value
from ..io import atomic_write_json, read_jsonl, write_jsonl
from ..judges.pointwise import (
    JudgeAgreement,
    default_template,
    judge_agreement,
    judge_message,
    pairwise_accuracy,
)
from ..records import Problem, Record
from ..steps import format_steps, has_boxed_answer, split_steps, strip_calculator_notes

QUALITY_SCORES: dict[str, int] = {"correct": 5, "wrong_answer": 2, "truncated": 1}

# Held-out pairs are the clear-cut orderings only: a correct solution beats a wrong or unfinished one.
HELDOUT_ORDERINGS: tuple[tuple[str, str], ...] = (("correct", "wrong_answer"), ("correct", "truncated"))

_JUSTIFICATIONS: dict[str, tuple[str, ...]] = {
    "correct": (
        "The response is relevant and addresses the whole question. It works through the problem step by "
        "step, every calculation is correct, and it reaches the correct final answer {answer}, so it answers "
        "the question usefully. It is direct, well organized and written from an assistant's perspective, "
        "and it contains nothing extraneous.",
        "Each step follows from the previous one and the arithmetic is right, leading to the correct answer "
        "{answer}. The response is relevant, resolves the question completely, is clearly organized as an "
        "assistant's answer and stays focused on what was asked, so it earns all five points.",
    ),
    "wrong_answer": (
        "The response is relevant and sets up most of the solution, so it earns the first two points. But "
        "its final calculation is wrong and it concludes with {answer}, which is not the answer to the "
        "question, so it does not resolve the query and earns no further points.",
        "The approach addresses a substantial part of the question, but the last step miscalculates and the "
        "final answer {answer} is incorrect. A wrong answer does not answer the basic question usefully, so "
        "only the first two points apply.",
    ),
    "truncated": (
        "The response is relevant and starts on the problem, which earns one point. It stops after {steps} "
        "without finishing the work or stating a final answer, so it does not address a substantial part of "
        "the question.",
        "The response begins correctly and is related to the question, but it breaks off after {steps} and "
        "never reaches an answer. Being relevant but incomplete, it earns one point.",
    ),
}


__all__ = [
    "EFTExample",
    "InstructEFTSeed",
    "InstructSeedConfig",
    "JudgeAgreement",
    "JudgePair",
    "build_instruct_eft",
    "build_instruct_seed",
    "judge_agreement",
    "load_heldout",
    "load_instruct_eft",
    "pairwise_accuracy",
    "sft_records",
]

TRAIN_FILE = "eft_instruct_train.jsonl"
HELDOUT_FILE = "eft_instruct_heldout.jsonl"
SUMMARY_FILE = "eft_instruct_summary.json"


@dataclass
class InstructSeedConfig:
    sources: list[str] = option(
        ["gsm8k"], help="Training pools of problems with known answers: 'gsm8k' (train split) and/or 'math'."
    )
    n_train_problems: int = option(
        200, minimum=0, help="Problems whose responses become judge SFT records (up to 3 each)."
    )
    n_heldout_problems: int = option(
        100, minimum=0, help="Problems kept apart for the judge-accuracy pairs (up to 2 pairs each)."
    )
    seed: int = option(0, help="Seed for the problem split, the wrong answers and the wording.")


@dataclass
class EFTExample(Record):
    """One judge SFT record: ``prompt`` is the judge message (the 5-point template filled with the
    question and the response), ``completion`` the justification ending ``Score: N``."""

    prompt: str
    completion: str
    score: int
    quality: str
    problem_id: str


@dataclass
class JudgePair(Record):
    """A held-out judge test: the judge should score ``better`` above ``worse`` for ``question``."""

    question: str
    better: str
    worse: str
    better_quality: str
    worse_quality: str
    problem_id: str


@dataclass
class InstructEFTSeed:
    train: list[EFTExample]
    heldout: list[JudgePair]
    stats: dict[str, Any] = field(default_factory=dict)

    def sft_records(self) -> list[dict[str, str]]:
        """``{prompt, completion}`` rows for the SFT trainer."""
        return [{"prompt": e.prompt, "completion": e.completion} for e in self.train]


# --------------------------------------------------------------------------------------------------
# Responses of known quality


def reference_steps(problem: Problem) -> list[str]:
    """The reference solution as step bodies, the final answer left out (GSM8K: one step per line,
    calculator notes and the ``#### N`` line removed; MATH: paragraphs or lines, box kept)."""
    solution = (problem.solution or "").strip()
    if problem.benchmark == "gsm8k":
        lines = [ln for ln in strip_calculator_notes(solution).splitlines() if ln.strip()]
        return [ln.strip() for ln in lines if not ln.strip().startswith("####")]
    return [s.strip() for s in split_steps(solution, "auto") if s.strip()]


def correct_response(problem: Problem) -> str | None:
    steps = reference_steps(problem)
    if not steps:
        return None
    if not has_boxed_answer(steps[-1]) and not any(has_boxed_answer(s) for s in steps):
        steps = steps + [f"The answer is \\boxed{{{problem.answer}}}."]
    return format_steps(steps)


def _format_number(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return format(float(value), "g")


def wrong_value(answer: str, rng: random.Random) -> str | None:
    """A plausible wrong number for a numeric ``answer`` (off by a little, by ten, doubled or halved;
    same sign, integral if the answer is); ``None`` for a non-numeric answer."""
    value = exact_value(answer)
    if value is None:
        return None
    candidates = [value + d for d in (1, -1, 2, -2, 10, -10)] + [value * 2, value / 2]
    integral = value.denominator == 1
    ok = [
        c for c in candidates if c != value and (c >= 0 or value < 0) and (c.denominator == 1 or not integral)
    ]
    return _format_number(rng.choice(ok)) if ok else None


def _number_re(number: str) -> re.Pattern[str]:
    # The number as a whole token: not part of a longer number ("5" must not hit 15, 0.5 or 5.5).
    return re.compile(rf"(?<![\d.]){re.escape(number)}(?!\.?\d)")


def wrong_answer_response(problem: Problem, rng: random.Random) -> tuple[str, str] | None:
    """The reference solution with its final calculation and boxed answer changed to a wrong number;
    returns (response, wrong answer) or ``None`` when the answer is not a number or cannot be placed."""
    correct = correct_response(problem)
    wrong = wrong_value(problem.answer, rng)
    if correct is None or wrong is None:
        return None
    steps = correct.split("\n")
    box = f"\\boxed{{{problem.answer}}}"
    boxed_at = [i for i, s in enumerate(steps) if box in s]
    if not boxed_at:
        return None
    last = boxed_at[-1]
    steps[last] = steps[last].replace(box, f"\\boxed{{{wrong}}}")
    # The calculation that produced the answer is changed too, so the error is in the work, not only
    # in a copied final line.
    pattern = _number_re(problem.answer.replace(",", ""))
    if last > 0:
        steps[last - 1] = pattern.sub(wrong, steps[last - 1])
    return "\n".join(steps), wrong


def truncated_response(problem: Problem) -> tuple[str, str] | None:
    """The first half of the reference steps (a single step: its first half of words), no final answer;
    returns (response, how much was kept, for the justification) or ``None`` if nothing answer-free
    can be kept."""
    steps = [s for s in reference_steps(problem) if s]
    if len(steps) >= 2:
        kept = steps[: len(steps) // 2]
        detail = f"{len(kept)} step" + ("s" if len(kept) != 1 else "")
    elif steps:
        words = steps[0].split()
        if len(words) < 4:
            return None
        kept = [" ".join(words[: len(words) // 2])]
        detail = "part of its first step"
    else:
        return None
    if any(has_boxed_answer(s) or "\\boxed" in s for s in kept):
        return None
    return format_steps(kept), detail


def known_quality_responses(problem: Problem, rng: random.Random) -> dict[str, tuple[str, str]]:
    """``quality -> (response, what the justification names)`` for the qualities this problem allows."""
    out: dict[str, tuple[str, str]] = {}
    correct = correct_response(problem)
    if correct is None:
        return out
    out["correct"] = (correct, problem.answer)
    wrong = wrong_answer_response(problem, rng)
    if wrong is not None:
        out["wrong_answer"] = wrong
    truncated = truncated_response(problem)
    if truncated is not None:
        out["truncated"] = truncated
    return out


def justification(quality: str, detail: str, rng: random.Random) -> str:
    """A rubric-consistent justification for a response of ``quality``, ending ``Score: N``."""
    text = rng.choice(_JUSTIFICATIONS[quality]).format(answer=detail, steps=detail)
    return f"{text}\nScore: {QUALITY_SCORES[quality]}"


# --------------------------------------------------------------------------------------------------
# The seed


def build_instruct_eft(
    problems: Sequence[Problem], config: InstructSeedConfig | None = None, template: str | None = None
) -> InstructEFTSeed:
    """Split ``problems`` (shuffled with ``config.seed``) into held-out and training problems and build
    the judge's SFT records and held-out pairs. ``template`` is the judge prompt (default: the 5-point
    prompt); train with the one the judge will use. Deterministic given the inputs."""
    config = config or InstructSeedConfig()
    rng = random.Random(config.seed)
    order = list(range(len(problems)))
    rng.shuffle(order)
    heldout_idx = order[: config.n_heldout_problems]
    train_idx = order[config.n_heldout_problems : config.n_heldout_problems + config.n_train_problems]
    template = template if template is not None else default_template()

    stats: dict[str, Any] = {"train_problems": 0, "heldout_problems": 0, "skipped": {}}
    counts = {q: 0 for q in QUALITY_SCORES}

    def skipped(quality: str) -> None:
        stats["skipped"][quality] = stats["skipped"].get(quality, 0) + 1

    train: list[EFTExample] = []
    for i in train_idx:
        problem = problems[i]
        responses = known_quality_responses(problem, rng)
        stats["train_problems"] += 1
        for quality in QUALITY_SCORES:
            if quality not in responses:
                skipped(quality)
                continue
            response, detail = responses[quality]
            counts[quality] += 1
            train.append(
                EFTExample(
                    prompt=judge_message(template, problem.question, response),
                    completion=justification(quality, detail, rng),
                    score=QUALITY_SCORES[quality],
                    quality=quality,
                    problem_id=problem.id,
                )
            )
    heldout: list[JudgePair] = []
    for i in heldout_idx:
        problem = problems[i]
        responses = known_quality_responses(problem, rng)
        stats["heldout_problems"] += 1
        for better, worse in HELDOUT_ORDERINGS:
            if better in responses and worse in responses:
                heldout.append(
                    JudgePair(
                        problem.question, responses[better][0], responses[worse][0], better, worse, problem.id
                    )
                )
    stats["train_examples"] = counts
    stats["heldout_pairs"] = len(heldout)
    return InstructEFTSeed(train, heldout, stats)


def load_instruct_eft(
    config: InstructSeedConfig | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    template: str | None = None,
    exclude: Iterable[Problem] | None = None,
) -> InstructEFTSeed:
    """:func:`build_instruct_eft` on the training pools ``config.sources`` (never an evaluation split;
    problems whose question equals one in ``exclude`` - pass the evaluation problems - are dropped)."""
    from .benchmarks import training_problems

    config = config or InstructSeedConfig()
    problems = training_problems(config.sources, data_dir, exclude=exclude)
    return build_instruct_eft(problems, config, template)


# --------------------------------------------------------------------------------------------------
# The seed directory (I/O at the edge)


def write_instruct_seed(seed: InstructEFTSeed, out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the judge SFT records, the held-out pairs and a summary into ``out_dir`` (atomically)."""
    out = Path(out_dir)
    write_jsonl(out / TRAIN_FILE, [e.to_dict() for e in seed.train])
    write_jsonl(out / HELDOUT_FILE, [p.to_dict() for p in seed.heldout])
    atomic_write_json(out / SUMMARY_FILE, seed.stats)
    return seed.stats


def build_instruct_seed(
    config: InstructSeedConfig | None,
    data_dir: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    template: str | None = None,
    exclude: Iterable[Problem] | None = None,
) -> dict[str, Any]:
    """:func:`load_instruct_eft` then :func:`write_instruct_seed`; returns the summary."""
    return write_instruct_seed(load_instruct_eft(config, data_dir, template, exclude), out_dir)


def sft_records(seed_dir: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The judge SFT records ``{prompt, completion}`` written by :func:`write_instruct_seed`."""
    return [
        {"prompt": r["prompt"], "completion": r["completion"]}
        for r in read_jsonl(Path(seed_dir) / TRAIN_FILE)
    ]


def load_heldout(seed_dir: str | os.PathLike[str]) -> list[JudgePair]:
    """The held-out judge pairs written by :func:`write_instruct_seed`."""
    return [JudgePair.from_dict(r) for r in read_jsonl(Path(seed_dir) / HELDOUT_FILE)]
