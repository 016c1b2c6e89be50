"""The solving prompt of the process-based paper, with an optional few-shot prefix for base models.

A *message* is what a user would send; the *prompt* is the text a completion is generated after
(``Generator.format_prompt(message)``: the chat template when the tokenizer has one). Solutions start
right after the prompt with ``Step 1: ``, so step search can append steps to the prompt verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Protocol

SOLVE_INSTRUCTION = (
    "Let's think step by step and solve the following math problem. "
    'Use "Step n: " before each step to distinguish between different steps, where n is a positive '
    "integer starting from 1, representing the current step number. "
    "Put your final answer in \\boxed{}."
)

MAX_FEW_SHOT = 4
"""Worked examples in ``prompts/fewshot_math.txt`` (a test keeps the two equal)."""

STEP_OPENER = "Step 1:"
"""What opens a solution (``eval.open_step``; the step search opens every step so): without it, a chat
model often answers in prose before, or instead of, the step format."""

# Where a base model would go on to invent the next few-shot problem: cut there.
SOLUTION_STOP = ["\nProblem:", "\n\n\n"]


class _Formatter(Protocol):
    def format_prompt(self, message: str) -> str: ...


@dataclass(frozen=True)
class FewShotExample:
    question: str
    solution: str


def few_shot_examples() -> list[FewShotExample]:
    """Hand-written step-format examples (``prompts/fewshot_math.txt``), blocks separated by '===='."""
    text = resources.files(__package__).joinpath("fewshot_math.txt").read_text(encoding="utf-8")
    out = []
    for block in text.split("\n====\n"):
        block = block.strip()
        if not block:
            continue
        question, solution = block.split("\nSolution:\n", 1)
        out.append(FewShotExample(question.removeprefix("Problem: ").strip(), solution.strip()))
    return out


def solve_message(question: str, few_shot: int = 0) -> str:
    """The user message: instruction, ``few_shot`` worked examples, then the problem.

    Ends with ``Solution:`` and a newline, so a base model continues with ``Step 1:``.
    """
    examples = few_shot_examples()
    if few_shot > len(examples):
        raise ValueError(f"few_shot={few_shot}: only {len(examples)} examples are available")
    parts = [SOLVE_INSTRUCTION, ""]
    for ex in examples[:few_shot]:
        parts += [f"Problem: {ex.question}", "Solution:", ex.solution, ""]
    parts += [f"Problem: {question.strip()}", "Solution:", ""]
    return "\n".join(parts)


_CHAT_PROBE = "\x00prm-sr-probe\x00"


def is_chat(formatter: _Formatter | None) -> bool:
    """Whether ``formatter`` (a Generator) wraps a message in a chat template: it renders a probe message
    into something other than the message itself. Backend-agnostic; a scripted model is not a chat model."""
    if formatter is None or not hasattr(formatter, "format_prompt"):
        return False
    try:
        return formatter.format_prompt(_CHAT_PROBE) != _CHAT_PROBE
    except Exception:  # a formatter that cannot render a probe is treated as template-less
        return False


def solve_prompt(formatter: _Formatter | None, question: str, few_shot: int = 0) -> str:
    """The full generation prompt for ``question``: :func:`solve_message` through the model's template."""
    message = solve_message(question, few_shot)
    return formatter.format_prompt(message) if formatter is not None else message
