"""Degenerate solutions: a completion that repeats a step, loops, or states more than one final answer.

A self-rewarding loop can teach a model to game its own judge instead of solving: on the embedded
gemma-3-270m, step-DPO on pairs chosen by the model's likelihood judge made M2 repeat
``The answer is \\boxed{k}`` steps, often with different ``k``, in 76% of its completions; the last
box then hit small-integer golds by chance and raised its accuracy. Accuracy cannot show this, so the
report shows, per model, the share of its evaluation completions that

- **repeat a step**: two steps with the same text (:func:`~prm_selfreward.steps.guard_key`:
  case-folded, whitespace collapsed, surrounding ``.,;:!?`` removed), the steps being
  :func:`~prm_selfreward.steps.split_steps` of the completion (``Step n:`` markers, else paragraphs,
  else lines), blank ones left out;
- **loop**: one stretch of text written at least :data:`LOOP_MIN_COPIES` times back to back, the run of
  copies at least :data:`LOOP_MIN_CHARS` characters long (``= $150 * $80,000 / $80,000 `` again and
  again inside one step until the token budget, which no two steps share, so the repeated-step count
  misses it). A written-out sum (``$1.20 + $1.20 + ...`` six times, 48 characters) is not a loop; a
  stretch up to :data:`LOOP_MAX_PERIOD` characters is looked for (longer repeats are whole steps);
- **state several final answers**: among the steps that state a final answer
  (:func:`~prm_selfreward.steps.has_final_answer`: a complete box or an answer line), more than one
  distinct answer. A step's answers are what :func:`~prm_selfreward.grading.extract_answer` finds with
  the answer-stating sources only (box, ``Final Answer:``, ``####``, "the answer is"; no "last number"
  fallback), plus any other box of that step that is not part of its final run of boxes
  (``\\boxed{3}, no: \\boxed{4}`` is two answers, ``\\boxed{2} and \\boxed{3}`` one answer of two
  parts). Answers are compared as text after :func:`~prm_selfreward.grading.normalize_answer`, case
  and spaces ignored: ``1/2`` and ``0.5`` count as two (a monitor, not a grader; it errs towards
  flagging).

Text after the model ended its turn (a chat end token) is left out, as grading does. A model is
*degenerate* when any of the three shares is above :data:`DEGENERATE_SHARE`.

Degeneracy inflates accuracy only where a degenerate completion is graded right (gemma's M2: repeated
``\\boxed{1}`` lines hitting small golds); a greedy loop that runs into the token budget is simply
wrong. So the counts also give how many completions are degenerate in either way and how many of
those the checker graded right (``degenerate_right``): at most that many of a model's right answers
can come from degeneracy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .grading.extract import extract_answer, strip_chat_tail
from .grading.normalize import normalize_answer
from .steps import guard_key, has_final_answer, split_steps, step_body

DEGENERATE_SHARE = 0.02
"""A model whose completions repeat a step, loop, or state several answers, more often than this (any
one of the three) is marked degenerate in the report."""

LOOP_MIN_COPIES = 3
"""A loop: the same stretch of text at least this many times back to back ..."""
LOOP_MIN_CHARS = 64
"""... the copies together at least this many characters long."""
LOOP_MAX_PERIOD = 200
"""The longest stretch looked for (characters)."""
_LOOP = re.compile(rf"(\S.{{0,{LOOP_MAX_PERIOD - 1}}}?)\1{{{LOOP_MIN_COPIES - 1},}}", re.DOTALL)

ANSWER_SOURCES = ("boxed", "minerva", "gsm8k", "answer_is")
"""The extraction sources that read a stated answer (no math-span or last-number fallback)."""


def completion_steps(completion: str) -> list[str]:
    """The non-blank step bodies of ``completion`` (markers and surrounding whitespace removed)."""
    bodies = (step_body(s) for s in split_steps(strip_chat_tail(completion), format="auto"))
    return [b for b in bodies if b]


def repeats_a_step(completion: str) -> bool:
    """Whether two steps of ``completion`` have the same text (by :func:`~prm_selfreward.steps.guard_key`)."""
    keys = [k for k in (guard_key(b) for b in completion_steps(completion)) if k]
    return len(set(keys)) < len(keys)


def loops(completion: str) -> bool:
    """Whether ``completion`` writes one stretch of text :data:`LOOP_MIN_COPIES` or more times back to
    back over at least :data:`LOOP_MIN_CHARS` characters (text after the turn's end left out)."""
    text = strip_chat_tail(completion)
    return any(m.end() - m.start() >= LOOP_MIN_CHARS for m in _LOOP.finditer(text))


def _answer_key(answer: str) -> str:
    return "".join(normalize_answer(answer).casefold().split())


def _step_answers(step: str) -> list[str]:
    found = extract_answer(step, order=ANSWER_SOURCES)
    if found.answer is None:
        return []
    answers = [found.answer]
    if found.source == "boxed":
        final = _answer_key(found.answer)
        answers += [b for b in found.all_boxes if b.strip() and _answer_key(b) not in final]
    return answers


def final_answers(completion: str) -> list[str]:
    """The distinct final answers ``completion`` states, in order of first appearance (normalised
    text; see the module docstring for what counts)."""
    seen: dict[str, None] = {}
    for step in completion_steps(completion):
        if has_final_answer(step):
            for answer in _step_answers(step):
                key = _answer_key(answer)
                if key:
                    seen.setdefault(key)
    return list(seen)


def several_answers(completion: str) -> bool:
    """Whether ``completion`` states more than one distinct final answer."""
    return len(final_answers(completion)) > 1


@dataclass
class Degeneracy:
    """How many of ``completions`` repeat a step, loop, and state several final answers."""

    completions: int = 0
    repeated_step: int = 0
    several_answers: int = 0
    degenerate_completions: int | None = None
    """Completions that repeat a step, loop or state several answers (any; None where unknown)."""
    degenerate_right: int | None = None
    """Of those, how many were graded right (None where correctness is unknown)."""
    looping: int | None = None
    """Completions that loop (:func:`loops`; None in a summary from before it was counted)."""

    @property
    def repeated_step_share(self) -> float | None:
        return self.repeated_step / self.completions if self.completions else None

    @property
    def looping_share(self) -> float | None:
        return self.looping / self.completions if self.completions and self.looping is not None else None

    @property
    def several_answers_share(self) -> float | None:
        return self.several_answers / self.completions if self.completions else None

    @property
    def degenerate(self) -> bool:
        """Any share above :data:`DEGENERATE_SHARE`."""
        return any(x is not None and x > DEGENERATE_SHARE
                   for x in (self.repeated_step_share, self.looping_share, self.several_answers_share))

    def add(self, other: Degeneracy) -> None:
        self.completions += other.completions
        self.repeated_step += other.repeated_step
        self.several_answers += other.several_answers
        for name in ("degenerate_completions", "degenerate_right", "looping"):
            mine, theirs = getattr(self, name), getattr(other, name)
            # Known only when known for every part (an unknown part would make a total a lower bound).
            both = mine is not None and theirs is not None
            setattr(self, name, mine + theirs if both else None)

    def to_dict(self) -> dict[str, Any]:
        """Counts and shares, under the keys an evaluation summary carries them."""
        return {
            "completions": self.completions,
            "repeated_step": self.repeated_step,
            "repeated_step_share": self.repeated_step_share,
            "several_answers": self.several_answers,
            "several_answers_share": self.several_answers_share,
            "looping": self.looping,
            "looping_share": self.looping_share,
            "degenerate_completions": self.degenerate_completions,
            "degenerate_right": self.degenerate_right,
        }

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> Degeneracy | None:
        """The counts of an evaluation summary (one benchmark's), or None if it has none (older runs)."""
        keys = ("repeated_step", "several_answers")
        if not all(isinstance(summary.get(k), int) for k in keys) or not isinstance(summary.get("total"), int):
            return None
        known = {k: summary.get(k) if isinstance(summary.get(k), int) else None
                 for k in ("degenerate_completions", "degenerate_right", "looping")}
        return cls(summary["total"], summary["repeated_step"], summary["several_answers"], **known)


def degeneracy(completions: Iterable[str], correct: Iterable[bool] | None = None) -> Degeneracy:
    """Count the completions that repeat a step, those that loop, those that state several final
    answers and those that do any of these; with ``correct`` (one verdict per completion, in order),
    also how many of the degenerate ones were graded right. A ``correct`` of another length raises
    ValueError."""
    texts = list(completions)
    verdicts = None if correct is None else list(correct)
    if verdicts is not None and len(verdicts) != len(texts):
        raise ValueError(f"degeneracy: {len(verdicts)} verdicts for {len(texts)} completions")
    out = Degeneracy(degenerate_completions=0, degenerate_right=None if verdicts is None else 0)
    looping = 0
    for i, text in enumerate(texts):
        repeat, loop, several = repeats_a_step(text), loops(text), several_answers(text)
        out.completions += 1
        out.repeated_step += repeat
        looping += loop
        out.several_answers += several
        if repeat or loop or several:
            out.degenerate_completions += 1
            if verdicts is not None and verdicts[i]:
                out.degenerate_right += 1
    out.looping = looping
    return out


__all__ = [
    "ANSWER_SOURCES",
    "DEGENERATE_SHARE",
    "LOOP_MIN_CHARS",
    "LOOP_MIN_COPIES",
    "Degeneracy",
    "completion_steps",
    "degeneracy",
    "final_answers",
    "loops",
    "repeats_a_step",
    "several_answers",
]
