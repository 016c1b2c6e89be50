"""Prompt budgets: every prompt is checked against the model's context before it is sent.

A backend that knows its context (``context_length``: prompt + completion tokens a sequence may hold)
and can count a prompt's tokens (``count_tokens(text)``, special tokens included as ``generate`` adds
them) lets the callers above it fit their prompts: the step search stops a problem whose prompt no
longer leaves room for a whole step, the pairwise judge drops the oldest previous steps (with an
elision marker) until its prompt fits and skips a comparison that cannot fit at all. Both are counted,
never raised. Backends themselves answer a prompt that leaves no room at all with an empty
``"length"`` completion (``TokenUsage.skipped_prompts``), so one over-long prompt never fails a batch.

A backend without these (a scripted generator built without a context) is unbounded: every prompt fits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PromptBudget:
    """The context of one model and how to count a prompt's tokens in it (read from the model on
    every check, so a changed ``max_length`` applies at once)."""

    model: Any = None
    """A generator with ``context_length`` and ``count_tokens``; anything else is unbounded."""

    @classmethod
    def of(cls, generator: Any) -> PromptBudget:
        return cls(generator)

    @property
    def context(self) -> int | None:
        """Prompt + completion tokens per sequence; None: unbounded."""
        context = getattr(self.model, "context_length", None)
        return None if context is None or self.count is None else int(context)

    @property
    def count(self) -> Callable[[str], int] | None:
        count = getattr(self.model, "count_tokens", None)
        return count if callable(count) else None

    @property
    def bounded(self) -> bool:
        return self.context is not None and self.count is not None

    def tokens(self, prompt: str) -> int | None:
        return self.count(prompt) if self.count is not None else None

    def room(self, prompt: str) -> int | None:
        """Tokens left for the completion after ``prompt`` (negative: the prompt alone overflows);
        None when unbounded."""
        if not self.bounded:
            return None
        assert self.context is not None and self.count is not None
        return self.context - self.count(prompt)

    def fits(self, prompt: str, reserve: int) -> bool:
        """Whether ``prompt`` leaves at least ``reserve`` tokens for its completion."""
        room = self.room(prompt)
        return room is None or room >= reserve


def generation_room(context: int | None, prompt_tokens: int, max_new_tokens: int) -> int:
    """The completion budget of one prompt: ``max_new_tokens``, cut to what the context leaves
    (0: the prompt leaves no room and is not sent)."""
    if context is None:
        return max_new_tokens
    return max(0, min(max_new_tokens, context - prompt_tokens))


__all__ = ["PromptBudget", "generation_room"]
