"""The outcome of one comparison: :class:`Comparison` and the stable reason slugs.

A module of its own so that the in-process ladder (:mod:`~prm_selfreward.grading.equivalence`) and the
worker processes (:mod:`~prm_selfreward.grading.timeout`) share it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Stable reason slugs (``Comparison.reason`` / ``Verdict.reason``). Everything but ``equal`` is
#: incorrect. ``timeout``: the comparison could not finish within its limit (it overran and was
#: killed, or it was refused beforehand because evaluating it would build a number too large to
#: finish); ``memory``: the worker hit its memory cap.
REASONS = ("equal", "not_equal", "no_answer", "no_gold", "timeout", "memory", "parse_error", "error")


@dataclass(frozen=True)
class Comparison:
    """Result of comparing a gold answer with a predicted one.

    ``reason`` is one of :data:`REASONS`; ``detail`` says which rung decided (``string``, ``fast``,
    ``sympy``) or what went wrong, for humans and logs (not a stable interface).
    """

    equal: bool
    reason: str
    detail: str = ""
