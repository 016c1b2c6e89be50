"""The pairwise step-judge prompt (process-based self-rewarding, Zhang et al. 2025) and its verdict parser.

The judge sees the question, the steps so far and two candidate next steps, and decides which
candidate is the better next step, MT-bench style: a short explanation, then the verdict strictly as
``[[A]]`` or ``[[B]]``; ties are not allowed. The same message serves every mode:

- ``generate``: the model writes the explanation and the verdict; :func:`parse_verdict` reads it;
- ``logprob``: the prompt is followed by :data:`VERDICT_OPENING` (``"[["``) and the model's
  probabilities of ``A`` and ``B`` as the next token decide, without an explanation;
- EFT training data: :func:`pairwise_step_target` gives the target text (explanation + verdict).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..steps import step_body, step_marker

VERDICT_OPENING = "[["
"""What the ``logprob`` mode appends to the judge prompt; ``A`` / ``B`` are scored right after it."""

VERDICT_LABELS = ("A", "B")

PAIRWISE_STEP_INSTRUCTION = (
    "Please act as an impartial judge of a step-by-step math solution in progress. You are given a math "
    "question, the solution steps written so far, and two candidate next steps, Step A and Step B. "
    "Decide which candidate is the better next step.\n"
    "Judge first whether each candidate is correct: its calculations and reasoning must be right and "
    "consistent with the question and the previous steps. Then judge how helpful it is: a better step "
    "makes clear, real progress towards the final answer. A correct step beats an incorrect one.\n"
    "Do not let the order in which the candidates are presented influence your decision, and do not "
    "prefer a candidate because it is longer or shorter. Be as objective as possible.\n"
    "Begin with a short explanation comparing the two candidates. Then output your final verdict by "
    'strictly following this format: "[[A]]" if Step A is better, "[[B]]" if Step B is better. '
    "You must choose one; there is no tie."
)


def elision_marker(omitted: int) -> str:
    """The line that stands for the ``omitted`` earliest previous steps of a shortened judge prompt."""
    return f"(Steps 1-{omitted} omitted for length)" if omitted > 1 else "(Step 1 omitted for length)"


def _previous_block(previous_steps: Sequence[str], omitted: int = 0) -> str:
    bodies = [b for b in (step_body(s) for s in previous_steps) if b]
    if not bodies and not omitted:
        return "(none yet: the candidates are the first step)"
    lines = [elision_marker(omitted)] if omitted else []
    return "\n".join(lines + [step_marker(i) + b for i, b in enumerate(bodies, start=omitted + 1)])


def pairwise_step_message(
    question: str, previous_steps: Sequence[str], step_a: str, step_b: str, omitted: int = 0
) -> str:
    """The judge's user message for one ordered comparison (pass it through ``format_prompt``).

    Previous steps are shown in canonical ``Step n:`` form; both candidates are shown as the next
    step's body without any marker of their own (a marker that differs between the two would be a
    cue unrelated to quality). ``omitted``: the solution's first steps left out to fit the model's
    context (``previous_steps`` are then the steps after them, numbered on from ``omitted + 1``), shown
    as one :func:`elision_marker` line.
    """
    return (
        f"{PAIRWISE_STEP_INSTRUCTION}\n\n"
        f"[Question]\n{question.strip()}\n\n"
        f"[Previous Steps]\n{_previous_block(previous_steps, omitted)}\n\n"
        f"[The Start of Step A]\n{step_body(step_a)}\n[The End of Step A]\n\n"
        f"[The Start of Step B]\n{step_body(step_b)}\n[The End of Step B]\n"
    )


def pairwise_step_target(explanation: str, verdict: int, verdict_first: bool = False) -> str:
    """The judge's answer for EFT training data: ``explanation`` then ``" [[A]]"`` (verdict 0) or
    ``" [[B]]"`` (verdict 1), as the judge prompt asks; with ``verdict_first`` the tag first and the
    explanation after it (``"[[A]] Step B ..."``), so the verdict token sits right after the prompt,
    where the ``logprob`` judge reads it. Raises ``ValueError`` for any other verdict."""
    if verdict not in (0, 1):
        raise ValueError(f"a training verdict is 0 (A) or 1 (B), got {verdict!r}")
    tag = f"[[{VERDICT_LABELS[verdict]}]]"
    explanation = explanation.strip()
    if not explanation:
        return tag
    return f"{tag} {explanation}" if verdict_first else f"{explanation} {tag}"


_DOUBLE = re.compile(r"\[\[\s*([AaBb])\s*\]\]")
_SINGLE = re.compile(r"(?<!\[)\[\s*([AaBb])\s*\](?!\])")
_WORDED = re.compile(r"(?i)\bverdict\s*(?:is)?\s*[:=]?\s*\**\s*(?:step\s+)?([ab])\b")


def parse_verdict(text: str | None) -> int:
    """0 if the judge's output says Step A is better, 1 for Step B, -1 if it cannot be read.

    Reading order: the ``[[A]]``/``[[B]]`` tags (any case, inner spaces allowed); if there are none,
    single-bracket ``[A]``/``[B]``; if none, a worded ``Verdict: A``. When both letters occur, the
    **last** one counts: the prompt asks for the verdict at the end, and explanations often quote the
    other tag first ("choosing [[A]] would ignore the error, so [[B]]"). Empty or other text: -1.
    """
    if not text:
        return -1
    for pattern in (_DOUBLE, _SINGLE, _WORDED):
        found = pattern.findall(text)
        if found:
            return VERDICT_LABELS.index(found[-1].upper())
    return -1


__all__ = [
    "PAIRWISE_STEP_INSTRUCTION",
    "VERDICT_LABELS",
    "VERDICT_OPENING",
    "elision_marker",
    "pairwise_step_message",
    "pairwise_step_target",
    "parse_verdict",
]
