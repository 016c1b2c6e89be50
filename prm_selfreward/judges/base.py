"""The step-judge interface the step search depends on.

A judge compares two candidate next steps given the question and the steps so far. The search sends
every ordered pair of one step's candidates in a single ``compare`` call so the judge can batch them
into as few model calls as its backend allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class StepComparison:
    question: str
    previous_steps: list[str]
    step_a: str
    step_b: str


@dataclass
class PairVerdict:
    verdict: int
    """0: step_a is better, 1: step_b is better, -1: no verdict (see :func:`missing_verdicts`)."""
    probability: float | None = None
    """The judge's probability for the verdict it gave, where the mode has one (``logprob``)."""
    raw: str | None = None
    """The judge's raw output (``generate`` mode), kept for inspection."""
    extra: dict = field(default_factory=dict)


@runtime_checkable
class StepJudge(Protocol):
    def compare(self, comparisons: Sequence[StepComparison]) -> list[PairVerdict]:
        """One verdict per comparison, in order. Never raises on unparsable model output (-1)."""
        ...


def missing_verdicts(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Why judged rows (``predicted``, ``p_a``) have no verdict (``predicted == -1``).

    ``failures``: no order gave an answer (``p_a`` None: unparsable output, or a prompt that could not
    fit). ``ties``: the orders answered and cancelled (``p_a`` exactly 1/2); in ``generate`` mode that is
    a judge naming the same position in both orders, bound to the position, not unreadable.
    """
    out = {"failures": 0, "ties": 0}
    for r in rows:
        if r.get("predicted") == -1:
            out["failures" if r.get("p_a") is None else "ties"] += 1
    return out
