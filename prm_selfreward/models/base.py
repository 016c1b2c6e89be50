"""The one model interface everything above it uses (search, judges, evaluation).

A backend implements :class:`Generator`: ``generate`` samples ``n`` completions per prompt with stop
strings honoured (the stop string itself is excluded from the text), ``score`` returns the
log-probability of each token of a continuation given its prompt. Prompts and continuations are
tokenised separately and concatenated, so the boundary between them is a clean token boundary
(``score(p, "A")`` really scores the token ``A`` after ``p``). Token accounting lives on the backend
in :class:`TokenUsage` so benchmarks can read it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass
class GenerationParams:
    max_new_tokens: int = 256
    temperature: float = 0.0
    """0 means greedy decoding."""
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    """Stop strings: generation of a sample ends at the first one; it is cut from the text."""
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    """``"stop"`` (a stop string), ``"eos"`` (end-of-sequence token) or ``"length"`` (max_new_tokens)."""
    stop_string: str | None = None


@dataclass
class TokenUsage:
    calls: int = 0
    """Model calls: one batched generate or score call counts once."""
    prompt_tokens: int = 0
    """Prompt tokens sent to the model (each sample's prompt counted once per forward it needs)."""
    generated_tokens: int = 0
    scored_tokens: int = 0
    """Continuation tokens scored by ``score``."""
    skipped_prompts: int = 0
    """Prompts that left no room in the model's context: not sent, answered with an empty
    ``"length"`` completion (see :mod:`.budget`)."""

    def snapshot(self) -> TokenUsage:
        return TokenUsage(**dataclasses.asdict(self))

    def __sub__(self, other: TokenUsage) -> TokenUsage:
        mine, theirs = dataclasses.asdict(self), dataclasses.asdict(other)
        return TokenUsage(**{k: v - theirs[k] for k, v in mine.items()})

    def __add__(self, other: TokenUsage) -> TokenUsage:
        mine, theirs = dataclasses.asdict(self), dataclasses.asdict(other)
        return TokenUsage(**{k: v + theirs[k] for k, v in mine.items()})

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.generated_tokens + self.scored_tokens


@runtime_checkable
class Generator(Protocol):
    usage: TokenUsage

    def generate(
        self, prompts: Sequence[str], n: int = 1, params: GenerationParams | None = None
    ) -> list[list[Completion]]:
        """``n`` completions for each prompt, in prompt order."""
        ...

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[list[float]]:
        """Per-token log-probabilities of ``continuations[i]`` given ``prompts[i]``."""
        ...

    def format_prompt(self, message: str) -> str:
        """The text a completion is generated after: the chat template applied to a user ``message``
        (generation prompt included) when the tokenizer has one, the message itself otherwise."""
        ...


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, str | None]:
    """Cut ``text`` at the earliest stop string; returns (text before it, the stop string or None)."""
    best: tuple[int, str] | None = None
    for s in stop:
        if not s:
            continue
        idx = text.find(s)
        if idx != -1 and (best is None or idx < best[0]):
            best = (idx, s)
    if best is None:
        return text, None
    return text[: best[0]], best[1]
