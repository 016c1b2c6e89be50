"""Typed records that stages pass to each other.

Every record is a dataclass that round-trips through JSON Lines (``to_dict`` / ``from_dict``), so the
files in a run directory are plain tables that ``datasets.load_dataset("json", ...)`` reads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T", bound="Record")


class Record:
    """Mixin: JSON round-trip for dataclass records, unknown keys rejected by name."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
        return cls(**data)


@dataclass
class Problem(Record):
    """One benchmark or training problem.

    ``answers`` holds the gold answer(s) as strings. Most benchmarks have one; OlympiadBench items with
    ``is_multiple_answer`` hold each required answer separately (all must be matched).
    """

    id: str
    question: str
    answers: list[str]
    benchmark: str
    solution: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def answer(self) -> str:
        return self.answers[0] if len(self.answers) == 1 else ", ".join(self.answers)


@dataclass
class StepPair(Record):
    """A step-level preference: given ``prompt`` (question + steps 1..l-1), ``chosen`` beat ``rejected``.

    ``is_final_step`` is False for intermediate steps: training must not append EOS to those
    completions (TRL's DPOTrainer does by default), or the model learns to stop after one step.
    """

    prompt: str
    chosen: str
    rejected: str
    problem_id: str
    step_index: int
    chosen_score: float
    rejected_score: float
    is_final_step: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def margin(self) -> float:
        return self.chosen_score - self.rejected_score


@dataclass
class PreferencePair(Record):
    """An instruction-level preference (whole responses, EOS kept)."""

    prompt: str
    chosen: str
    rejected: str
    chosen_score: float
    rejected_score: float
    prompt_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalRecord(Record):
    """One evaluated problem, as written to ``eval/<benchmark>.jsonl``."""

    id: str
    prompt: str
    """Empty in a record restored from a published run (``prm-sr restore``: benchmark text is not published)."""
    completion: str
    predicted: str | None
    gold: list[str]
    correct: bool
    reason: str
    tokens: int
    benchmark: str = ""
    samples: list[dict[str, Any]] = field(default_factory=list)
    made_by: dict[str, Any] = field(default_factory=dict)
    """The model and settings that produced the record (see ``fingerprint.py``): resume checks it."""
    fingerprint: str = ""
