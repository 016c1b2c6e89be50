"""Seed data for process-based self-rewarding: IFT (step-format solutions) and EFT (pairwise step
judgments), built from training problems with known reference solutions, no external model.

The paper (Zhang et al. 2025) seeds M1 with GPT-o1 solutions and PRM-labelled step pairs. We build
both from reference solutions instead:

- **IFT**: GSM8K train reference solutions, one step per line, calculator notes ``<<...>>`` removed,
  the ``#### N`` line turned into a final step ``The answer is \\boxed{N}.``; MATH train-pool solutions
  (the 4500 MATH test problems outside MATH-500) split with :func:`prm_selfreward.steps.split_steps`,
  final ``\\boxed{}`` kept. Each record is ``{prompt, completion, problem_id, benchmark}`` where
  ``prompt`` is the *message* of :func:`prm_selfreward.prompts.solve_message` (the trainer applies the
  chat template) and ``completion`` is ``"Step 1: ...\\nStep 2: ..."``.
- **EFT**: a correct reference step against a corrupted version of the same step, given the question
  and the reference steps before it. The corruptions come from GSM8K's calculator notes
  (``<<16-3-4=9>>``), which give every step's arithmetic exactly, so each corruption is checked to
  really change the value:

  ``wrong_result``      the step's computed result is replaced by a wrong number;
  ``wrong_operand``     one operand of the calculation is changed and the result recomputed;
  ``dropped_quantity``  one term of a 3+-term sum/product is left out and the result recomputed;
  ``premature_answer``  a non-final step ends with ``The answer is \\boxed{v}`` for its intermediate v
                        (v differs from the gold answer);
  ``copied_previous``   the previous step is repeated instead of a new one.

  Training pairs appear in both orders (verdict 0 = A better, 1 = B better), so A and B are exactly
  balanced; held-out pairs appear once, alternating the order (exactly balanced too).
- **Held-out EFT** (default 500 pairs): from problems used neither for IFT nor for EFT training; it is
  the step-judge accuracy set reported for every model.

Every problem comes from :func:`prm_selfreward.data.training_problems` with the evaluation sets
excluded by question text, and is used by at most one of IFT, EFT train and EFT held-out. Given the
config (including ``seed``) the output is byte-for-byte deterministic.
"""

from __future__ import annotations

import ast
import copy
import logging
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..config import ConfigError, option
from ..grading.numbers import exact_value
from ..io import write_jsonl
from ..prompts import solve_message
from ..records import Problem
from ..steps import format_steps, split_steps, step_body
from .benchmarks import load_benchmark, training_problems

log = logging.getLogger(__name__)

CORRUPTIONS: tuple[str, ...] = (
    "wrong_result",
    "wrong_operand",
    "dropped_quantity",
    "wrong_operation",
    "wrong_unit_rate",
    "wrong_final_answer",
)
"""The default kinds: each a real error a judge must find by checking the step, none decidable by a
surface feature (both candidates end the solution or neither does)."""
SURFACE_CORRUPTIONS: tuple[str, ...] = ("premature_answer", "copied_previous")
"""Kinds available on request but off by default: a premature answer is the only candidate with
``\\boxed{}`` and a copied step repeats the previous one verbatim, so a judge can learn the surface cue
instead of the error (the README's default run learnt "prefer the step with a box" from them)."""
ALL_CORRUPTIONS: tuple[str, ...] = CORRUPTIONS + SURFACE_CORRUPTIONS
IFT_SOURCES: tuple[str, ...] = ("gsm8k", "math")
EFT_SOURCES: tuple[str, ...] = ("gsm8k",)
DEFAULT_EXCLUDE: tuple[str, ...] = ("gsm8k", "math500", "olympiadbench", "gaokao2023en", "aime24", "amc23")


@dataclass
class SeedConfig:
    """Sizes, sources and seed of the IFT/EFT seed data (``seed_data`` in a run config)."""

    ift_examples: int = option(
        2000, minimum=0, help="IFT records (step-format solutions), split evenly over ift_sources."
    )
    ift_sources: list[str] = option(
        ["gsm8k", "math"],
        help="Training pools for IFT: 'gsm8k' (train split) and/or 'math' (4500-problem pool).",
    )
    eft_train_pairs: int = option(
        1000, minimum=0, help="EFT training pairs (correct vs corrupted step); each gives two records, one per order."
    )
    eft_heldout_pairs: int = option(
        500, minimum=0, help="Held-out EFT pairs (one record each): the step-judge accuracy set, from unused problems."
    )
    eft_sources: list[str] = option(
        ["gsm8k"], help="Training pools for EFT (GSM8K: arithmetic is checkable)."
    )
    corruptions: list[str] = option(
        list(CORRUPTIONS),
        help="Corruption kinds of EFT pairs, balanced; premature_answer and copied_previous are available "
        "but decidable by a surface cue (see the shortcut audit).",
    )
    max_pairs_per_problem: int = option(
        2, minimum=1, help="EFT pairs taken from one problem (more problems, more variety)."
    )
    max_steps: int = option(12, minimum=1, help="Skip reference solutions with more steps than this.")
    max_step_chars: int = option(600, minimum=1, help="Skip reference solutions with a step longer than this.")
    skip_asy: bool = option(True, help="Skip MATH solutions with [asy] drawing code (meaningless as text).")
    exclude_benchmarks: list[str] = option(
        list(DEFAULT_EXCLUDE),
        help="Evaluation sets whose questions never enter the seed data (matched by normalised text).",
    )
    seed: int = option(0, help="Seed for the problem order, the corruption choices and the A/B order.")
    eft_verdict_first: bool = option(
        False,
        help="EFT targets put the [[A]]/[[B]] verdict first and the explanation after it, so SFT trains the "
        "token the logprob judge reads right after the prompt (the paper's order, explanation first, "
        "teaches the generate judge; the logprob judge then reads a verdict where training put an "
        "explanation).",
    )

    eft_explanation: bool = option(
        True,
        help="EFT targets hold the judge's explanation (the paper's); false: the [[A]]/[[B]] verdict alone, so "
        "every trained token of a judgment is its verdict (teaches the logprob judge; the generate judge then "
        "learns to answer with the bare verdict). Pair with sft.loss_average: record (docs/step-judge.md).",
    )

    def validate(self) -> None:
        for name, value in (
            ("ift_examples", self.ift_examples),
            ("eft_train_pairs", self.eft_train_pairs),
            ("eft_heldout_pairs", self.eft_heldout_pairs),
        ):
            if value < 0:
                raise ConfigError(f"seed_data.{name} must be >= 0, got {value}")
        if self.max_pairs_per_problem < 1:
            raise ConfigError(
                f"seed_data.max_pairs_per_problem must be >= 1, got {self.max_pairs_per_problem}"
            )
        for name, values, allowed in (
            ("ift_sources", self.ift_sources, IFT_SOURCES),
            ("eft_sources", self.eft_sources, EFT_SOURCES),
            ("corruptions", self.corruptions, ALL_CORRUPTIONS),
        ):
            bad = [v for v in values if v not in allowed]
            if bad:
                raise ConfigError(
                    f"seed_data.{name}: unknown {', '.join(bad)} (allowed: {', '.join(allowed)})"
                )
        if self.ift_examples and not self.ift_sources:
            raise ConfigError("seed_data.ift_sources is empty but ift_examples > 0")
        if (self.eft_train_pairs or self.eft_heldout_pairs) and not (self.eft_sources and self.corruptions):
            raise ConfigError(
                "seed_data.eft_sources and seed_data.corruptions must be non-empty for EFT pairs"
            )


@dataclass
class SeedSummary:
    """What :func:`build_seed_data` wrote, and why anything is short of the configured sizes."""

    ift: int = 0
    ift_by_source: dict[str, int] = field(default_factory=dict)
    eft_train_pairs: int = 0
    eft_train_records: int = 0
    eft_heldout: int = 0
    corruptions_train: dict[str, int] = field(default_factory=dict)
    corruptions_heldout: dict[str, int] = field(default_factory=dict)
    verdicts_heldout: dict[str, int] = field(default_factory=dict)
    problems_used: dict[str, int] = field(default_factory=dict)
    skipped_solutions: dict[str, int] = field(default_factory=dict)
    shortfall: dict[str, int] = field(default_factory=dict)
    heldout_problem_ids: list[str] = field(default_factory=list)
    shortcut_audit: dict[str, Any] = field(default_factory=dict)
    """Accuracy of trivial rules on the held-out pairs (:func:`shortcut_audit`)."""
    shortcut_audit_train: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Arithmetic: GSM8K calculator notes, evaluated exactly


_ALLOWED_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div)


class NotArithmetic(ValueError):
    """An expression that is not plain arithmetic on numbers (+ - * / and parentheses)."""


def parse_arithmetic(expr: str) -> ast.expr:
    """Parse ``expr`` as plain arithmetic; raises :class:`NotArithmetic` for anything else."""
    try:
        tree = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError as exc:
        raise NotArithmetic(expr) from exc
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp):
            if not isinstance(node.op, _ALLOWED_BINOPS):
                raise NotArithmetic(expr)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.USub | ast.UAdd):
                raise NotArithmetic(expr)
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, int | float) or isinstance(node.value, bool):
                raise NotArithmetic(expr)
        elif not isinstance(node, ast.operator | ast.unaryop):
            raise NotArithmetic(expr)
    return tree


def evaluate_arithmetic(node: ast.expr | str) -> Fraction:
    """Exact value of a plain-arithmetic expression (decimals read as exact fractions)."""
    if isinstance(node, str):
        node = parse_arithmetic(node)
    if isinstance(node, ast.Constant):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp):
        value = evaluate_arithmetic(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = evaluate_arithmetic(node.left), evaluate_arithmetic(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if right == 0:
            raise NotArithmetic("division by zero")
        return left / right
    raise NotArithmetic(ast.dump(node))


def parse_number(text: str) -> Fraction | None:
    """``"1,250"`` / ``"-3.5"`` / ``"7"`` -> exact Fraction; None if it is not a plain number (the
    checker's number reader, :func:`prm_selfreward.grading.numbers.exact_value`)."""
    return exact_value(text)


def format_number(value: Fraction, like: str = "") -> str:
    """Write ``value`` the way GSM8K would: an integer, else a decimal (as many places as ``like`` has,
    at least enough to be exact up to 4 places), else ``a/b``. Thousands separators if ``like`` has one."""
    if value.denominator == 1:
        n = int(value)
        return f"{n:,}" if "," in like and abs(n) >= 1000 else str(n)
    for places in range(max(_decimals(like), 1), 5):
        scaled = value * 10**places
        if scaled.denominator == 1:
            return f"{float(value):.{places}f}"
    return f"{value.numerator}/{value.denominator}"


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def wrong_values(value: Fraction, rng: random.Random) -> list[Fraction]:
    """Plausible wrong results for ``value``, shuffled: off by 1, 2 or 10, doubled, halved, x10.
    Never ``value`` itself, never negative when ``value`` is not."""
    if value.denominator == 1:
        candidates = [value + d for d in (1, -1, 2, -2, 10, -10)] + [value * 2, value * 10]
        if value % 2 == 0:
            candidates.append(value / 2)
    else:
        candidates = [
            value + Fraction(1, 2),
            value - Fraction(1, 2),
            value + 1,
            value - 1,
            value * 2,
            value * 10,
        ]
    out = []
    for c in candidates:
        if c != value and (c >= 0 or value < 0) and c not in out:
            out.append(c)
    rng.shuffle(out)
    return out


# --------------------------------------------------------------------------------------------------
# GSM8K reference steps with their calculations located in the clean text

_NOTE_RE = re.compile(r"<<([^<>=\n]+)=([^<>\n]+)>>")
_UNSIGNED_NUMBER_RE = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+")
_VISIBLE_NUMBER_RE = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")


@dataclass
class Calculation:
    """One calculator note of a step, ``expression = value``, located in the clean step text: the shown
    result at ``[result_start, result_end)`` and, when the expression is written out before
    ``= result``, each of its numbers at ``operand_spans`` (in written order, one per number of
    ``expression``)."""

    expression: str
    value: Fraction
    result_start: int
    result_end: int
    operand_spans: list[tuple[int, int]] | None = None


@dataclass
class ReferenceStep:
    text: str  # clean step body (no calculator notes, no marker)
    calculations: list[Calculation] = field(default_factory=list)


def gsm8k_reference_steps(solution: str) -> tuple[list[ReferenceStep], str] | None:
    """Parse a GSM8K reference solution into clean steps (one per non-blank line) with their checked
    calculations, and the final answer. None if there is no ``#### N`` line. A note whose arithmetic
    is wrong upstream, or whose result is not shown right after it, is dropped (not used for
    corruption)."""
    lines = [line for line in solution.strip().splitlines() if line.strip()]
    if not lines or not lines[-1].strip().startswith("####"):
        return None
    answer = lines[-1].strip()[4:].strip().replace(",", "")
    steps = []
    for raw in lines[:-1]:
        steps.append(_reference_step(raw.strip()))
    return steps, answer


def _reference_step(raw: str) -> ReferenceStep:
    clean_parts: list[str] = []
    note_positions: list[tuple[int, str, str]] = []  # (position in clean text, expr, result)
    pos = 0
    length = 0
    for m in _NOTE_RE.finditer(raw):
        clean_parts.append(raw[pos : m.start()])
        length += m.start() - pos
        note_positions.append((length, m.group(1), m.group(2)))
        pos = m.end()
    clean_parts.append(raw[pos:])
    clean = "".join(clean_parts)
    # Leading/trailing spaces of the line were already stripped; notes never sit at the very start.
    step = ReferenceStep(text=clean)
    for at, expr, result in note_positions:
        calc = _locate_calculation(clean, at, expr, result)
        if calc is not None:
            step.calculations.append(calc)
    return step


def _locate_calculation(clean: str, at: int, expr: str, result: str) -> Calculation | None:
    try:
        value = evaluate_arithmetic(expr)
    except NotArithmetic:
        return None
    stated = parse_number(result)
    if stated is None or stated != value:
        return None  # the note itself is wrong or not a number: not a reliable reference
    visible = _VISIBLE_NUMBER_RE.match(clean, at)
    if visible is None or parse_number(visible.group()) != value:
        return None
    calc = Calculation(expr.strip(), value, visible.start(), visible.end())
    span = _visible_expression(clean, at, expr)
    if span is not None:
        numbers = [(m.start(), m.end()) for m in _UNSIGNED_NUMBER_RE.finditer(clean, span[0], span[1])]
        if len(numbers) == len(_operand_nodes(parse_arithmetic(expr))):
            calc.operand_spans = numbers
    return calc


def _visible_expression(clean: str, at: int, expr: str) -> tuple[int, int] | None:
    """Where the note's expression is written before ``= <result>`` in the clean text, comparing
    without spaces, ``$`` and thousands separators; None if it is not written out."""
    head = clean[:at].rstrip(" $")
    if not head.endswith("="):
        return None
    end = len(head) - 1
    target = re.sub(r"[\s$]", "", expr)
    # Normalised copy of clean[:end] with a map from each kept character back to its index.
    kept: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(clean[:end]):
        if ch in " \t$":
            continue
        if ch == "," and 0 < i < end - 1 and clean[i - 1].isdigit() and clean[i + 1].isdigit():
            continue
        kept.append(ch)
        index.append(i)
    norm = "".join(kept)
    if not target or not norm.endswith(target):
        return None
    start = index[len(norm) - len(target)]
    # The written expression must start at a boundary (not in the middle of a number).
    if start > 0 and (clean[start - 1].isdigit() or clean[start - 1] == "."):
        return None
    return start, end


# --------------------------------------------------------------------------------------------------
# Corruptions


@dataclass
class EFTCandidate:
    """One correct-vs-corrupted step comparison before it is given an A/B order."""

    problem_id: str
    question: str
    previous_steps: list[str]
    good: str
    bad: str
    corruption: str
    step_index: int  # 0-based index of the judged step
    detail: dict[str, Any]


def _replace(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def corrupt_wrong_result(
    step: ReferenceStep, calc: Calculation, rng: random.Random
) -> tuple[str, dict] | None:
    for wrong in wrong_values(calc.value, rng):
        shown = format_number(wrong, like=step.text[calc.result_start : calc.result_end])
        if parse_number(shown) != calc.value:
            text = _replace(step.text, calc.result_start, calc.result_end, shown)
            return text, {"expression": calc.expression, "correct": format_number(calc.value), "shown": shown}
    return None


def _operand_nodes(tree: ast.expr) -> list[ast.Constant]:
    """The numbers of an arithmetic tree in written (left-to-right) order."""
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    return sorted(nodes, key=lambda n: (n.lineno, n.col_offset))


def _with_operand(tree: ast.expr, index: int, value: Fraction) -> ast.expr:
    """A copy of ``tree`` with its ``index``-th number (written order) set to ``value``."""
    new = copy.deepcopy(tree)
    _operand_nodes(new)[index].value = int(value) if value.denominator == 1 else float(value)
    return new


def _nice(value: Fraction) -> bool:
    # GSM8K quantities are integers or short decimals; a wrong step showing 12/59 would be an easy cue.
    return (value * 100).denominator == 1


def _plausible(new_value: Fraction, value: Fraction) -> bool:
    """A wrong result that does not give itself away: a short decimal, not negative where the right one
    is not, and whole where the right one is whole (750 / 4 = 187.5 jelly beans would be a cue)."""
    if not _nice(new_value) or new_value < 0 <= value:
        return False
    return new_value.denominator == 1 or value.denominator != 1


def _edit(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Apply non-overlapping ``(start, end, replacement)`` edits."""
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _edit_operand(
    step: ReferenceStep, calc: Calculation, tree: ast.expr, index: int, wrong: Fraction
) -> tuple[str, dict] | None:
    """Set the ``index``-th written number of the calculation to ``wrong`` and show the recomputed
    result, edited in place so spacing, ``$`` and wording stay as the reference wrote them; None when the
    result would not change, would be an odd fraction, or would turn negative."""
    assert calc.operand_spans is not None
    start, end = calc.operand_spans[index]
    written = step.text[start:end]
    like = step.text[calc.result_start : calc.result_end]
    new_tree = _with_operand(tree, index, wrong)
    try:
        new_value = evaluate_arithmetic(new_tree)
    except NotArithmetic:
        return None
    if new_value == calc.value or not _plausible(new_value, calc.value):
        return None
    new_operand = format_number(wrong, like=written)
    shown = format_number(new_value, like=like)
    text = _edit(step.text, [(start, end, new_operand), (calc.result_start, calc.result_end, shown)])
    detail = {
        "expression": calc.expression,
        "correct": format_number(calc.value),
        "changed_operand": written,
        "to": new_operand,
        "new_expression": _unparse(new_tree),
        "shown": shown,
    }
    return text, detail


def _written_operands(step: ReferenceStep, calc: Calculation) -> tuple[ast.expr, list[tuple[int, Fraction]]] | None:
    """The calculation's tree and (index, value) of each written number that matches the note."""
    if calc.operand_spans is None:
        return None
    tree = parse_arithmetic(calc.expression)
    operands = _operand_nodes(tree)
    out = []
    for index, (start, end) in enumerate(calc.operand_spans):
        old = parse_number(step.text[start:end])
        if old is not None and old == Fraction(str(operands[index].value)):
            out.append((index, old))
    return tree, out


def corrupt_wrong_operand(
    step: ReferenceStep, calc: Calculation, rng: random.Random
) -> tuple[str, dict] | None:
    """Change one written number of the calculation to a plausible wrong one and show the recomputed
    result (a quantity misread from the problem or an earlier step)."""
    found = _written_operands(step, calc)
    if found is None or len(found[1]) < 2:
        return None
    tree, operands = found
    rng.shuffle(operands)
    for index, old in operands:
        for wrong in wrong_values(old, rng):
            if wrong <= 0 < old:
                continue
            made = _edit_operand(step, calc, tree, index, wrong)
            if made is not None:
                return made
    return None


UNIT_FACTORS: dict[int, tuple[str, tuple[int, ...]]] = {
    60: (r"minute|hour|second", (100, 30)),
    24: (r"hour|day", (12, 60)),
    7: (r"day|week", (5, 10)),
    12: (r"month|year|dozen|inch|foot|feet", (10, 6)),
    52: (r"week|year", (12, 48)),
    365: (r"day|year", (360, 52)),
    100: (r"percent|%|cent", (10, 1000)),
    1000: (r"meter|metre|gram|liter|litre|kilo|ml\b", (100, 10)),
    30: (r"day|month", (7, 31)),
    16: (r"ounce|pound", (12, 10)),
    3: (r"feet|foot|yard", (12, 36)),
}
"""Conversion factors (value -> (unit words that must occur in the question or step, wrong factors a
solver confuses it with)): 60 minutes taken as 100, a week of 5 days, a dozen of 10 ..."""


def corrupt_wrong_unit_rate(
    step: ReferenceStep, calc: Calculation, rng: random.Random, question: str = ""
) -> tuple[str, dict] | None:
    """Replace a unit conversion factor (60 minutes an hour, 7 days a week, 100 percent ...) by one a
    solver confuses it with, and show the recomputed result: a wrong unit or rate."""
    found = _written_operands(step, calc)
    if found is None or len(found[1]) < 2:
        return None
    tree, operands = found
    context = f"{question} {step.text}".lower()
    rng.shuffle(operands)
    for index, old in operands:
        entry = UNIT_FACTORS.get(int(old)) if old.denominator == 1 else None
        if entry is None or not re.search(entry[0], context):
            continue
        for wrong in rng.sample(entry[1], len(entry[1])):
            made = _edit_operand(step, calc, tree, index, Fraction(wrong))
            if made is not None:
                text, detail = made
                detail["unit"] = re.search(entry[0], context).group()  # type: ignore[union-attr]
                return text, detail
    return None


_OPS: dict[type, tuple[str, str, str]] = {
    ast.Add: ("+", "adds", "add"), ast.Sub: ("-", "subtracts", "subtract"),
    ast.Mult: ("*", "multiplies", "multiply"), ast.Div: ("/", "divides", "divide"),
}
_SWAPS: dict[type, tuple[type, ...]] = {ast.Add: (ast.Sub, ast.Mult), ast.Sub: (ast.Add,),
                                        ast.Mult: (ast.Add, ast.Div), ast.Div: (ast.Mult, ast.Sub)}
_WRITTEN_OP = re.compile(r"[\s$]*([-+*/x\u00d7\u00f7])[\s$]*")


def corrupt_wrong_operation(
    step: ReferenceStep, calc: Calculation, rng: random.Random
) -> tuple[str, dict] | None:
    """Swap the operation of a two-number calculation (``a + b`` -> ``a - b``, ``a * b`` -> ``a / b`` ...)
    and show the recomputed result: the written operator and the result change, nothing else."""
    if calc.operand_spans is None or len(calc.operand_spans) != 2:
        return None
    tree = parse_arithmetic(calc.expression)
    if not (isinstance(tree, ast.BinOp) and isinstance(tree.left, ast.Constant) and isinstance(tree.right, ast.Constant)):
        return None
    (_, left_end), (right_start, _) = calc.operand_spans
    m = _WRITTEN_OP.fullmatch(step.text, left_end, right_start)
    if m is None:
        return None
    like = step.text[calc.result_start : calc.result_end]
    for op in rng.sample(_SWAPS[type(tree.op)], len(_SWAPS[type(tree.op)])):
        new_tree = ast.BinOp(left=copy.deepcopy(tree.left), op=op(), right=copy.deepcopy(tree.right))
        try:
            new_value = evaluate_arithmetic(new_tree)
        except NotArithmetic:
            continue
        if new_value == calc.value or not _plausible(new_value, calc.value):
            continue
        symbol = _OPS[op][0]
        if op is ast.Mult and m.group(1) in "x\u00d7":
            symbol = m.group(1)  # keep the reference's multiplication sign
        shown = format_number(new_value, like=like)
        text = _edit(step.text, [(m.start(1), m.end(1), symbol), (calc.result_start, calc.result_end, shown)])
        detail = {
            "expression": calc.expression,
            "correct": format_number(calc.value),
            "operation": _OPS[type(tree.op)][2],
            "new_operation": _OPS[op][1],
            "new_expression": _unparse(new_tree),
            "shown": shown,
        }
        return text, detail
    return None


def corrupt_dropped_quantity(
    step: ReferenceStep, calc: Calculation, rng: random.Random
) -> tuple[str, dict] | None:
    """Leave one number out of a chain of 3+ terms (``a - b - c`` -> ``a - c``) and show the recomputed
    result; the written operator and number are cut from the text."""
    if calc.operand_spans is None:
        return None
    tree = parse_arithmetic(calc.expression)
    terms, ops = _flatten_chain(tree)
    if len(terms) < 3:
        return None
    operands = _operand_nodes(tree)
    like = step.text[calc.result_start : calc.result_end]
    order = list(range(1, len(terms)))
    rng.shuffle(order)
    for drop in order:
        term, prev = terms[drop], terms[drop - 1]
        if not (isinstance(term, ast.Constant) and isinstance(prev, ast.Constant)):
            continue  # bare numbers only: their written spans are known exactly
        kept_terms = terms[:drop] + terms[drop + 1 :]
        kept_ops = ops[: drop - 1] + ops[drop:]
        new_tree = kept_terms[0]
        for op, kept in zip(kept_ops, kept_terms[1:], strict=True):
            new_tree = ast.BinOp(left=new_tree, op=op, right=kept)
        try:
            new_value = evaluate_arithmetic(new_tree)
        except NotArithmetic:
            continue
        if new_value == calc.value or not _nice(new_value) or new_value < 0 <= calc.value:
            continue
        prev_span = calc.operand_spans[_index_of(operands, prev)]
        term_span = calc.operand_spans[_index_of(operands, term)]
        shown = format_number(new_value, like=like)
        text = _edit(
            step.text, [(prev_span[1], term_span[1], ""), (calc.result_start, calc.result_end, shown)]
        )
        detail = {
            "expression": calc.expression,
            "correct": format_number(calc.value),
            "dropped": step.text[term_span[0] : term_span[1]],
            "new_expression": _unparse(new_tree),
            "shown": shown,
        }
        return text, detail
    return None


def _index_of(nodes: list[ast.Constant], node: ast.expr) -> int:
    # By identity: two operands can have the same value.
    return next(i for i, n in enumerate(nodes) if n is node)


def _flatten_chain(tree: ast.expr) -> tuple[list[ast.expr], list[ast.operator]]:
    """``a - b + c`` -> ([a, b, c], [Sub, Add]): the top-level left-leaning chain of one operator family
    (additive or multiplicative)."""
    if not isinstance(tree, ast.BinOp):
        return [tree], []
    family = (ast.Add, ast.Sub) if isinstance(tree.op, ast.Add | ast.Sub) else (ast.Mult, ast.Div)
    terms: list[ast.expr] = []
    ops: list[ast.operator] = []
    node: ast.expr = tree
    while isinstance(node, ast.BinOp) and isinstance(node.op, family):
        terms.insert(0, node.right)
        ops.insert(0, node.op)
        node = node.left
    terms.insert(0, node)
    return terms, ops


def _unparse(tree: ast.expr) -> str:
    return ast.unparse(ast.fix_missing_locations(tree))


# --------------------------------------------------------------------------------------------------
# EFT candidates of one problem


def final_answer_step(answer: str) -> str:
    return f"The answer is \\boxed{{{answer}}}."


def length_class(good: str, bad: str) -> int:
    """-1 when the corrupted step is the shorter (in characters), 1 the longer, 0 the same length."""
    return (len(bad) > len(good)) - (len(bad) < len(good))


VARIANT_TRIES = 6
"""Differently seeded attempts per arithmetic corruption of a step, so the builder can pick a variant
whose length balances the others (wrong values off by 1 keep the length, x10 lengthens, /2 may shorten)."""


def gsm8k_eft_candidates(
    problem: Problem, kinds: Sequence[str], rng: random.Random
) -> dict[str, list[EFTCandidate]]:
    """Every corruption available for ``problem``'s reference solution, grouped by kind: per step and
    kind at most one variant of each :func:`length_class` (chosen with ``rng``)."""
    parsed = gsm8k_reference_steps(problem.solution or "")
    if parsed is None:
        return {}
    steps, answer = parsed
    gold = parse_number(answer)
    bodies = [s.text for s in steps] + [final_answer_step(answer)]
    out: dict[str, list[EFTCandidate]] = {k: [] for k in kinds}

    def add(kind: str, index: int, bad: str, detail: dict[str, Any]) -> None:
        if not bad.strip() or bad.strip() == bodies[index].strip():
            return
        cls = length_class(bodies[index], bad)
        if any(c.step_index == index and length_class(c.good, c.bad) == cls for c in out[kind]):
            return
        out[kind].append(
            EFTCandidate(problem.id, problem.question, bodies[:index], bodies[index], bad, kind, index, detail)
        )

    arithmetic = (
        ("wrong_result", corrupt_wrong_result),
        ("wrong_operand", corrupt_wrong_operand),
        ("dropped_quantity", corrupt_dropped_quantity),
        ("wrong_operation", corrupt_wrong_operation),
        ("wrong_unit_rate", lambda st, ca, r: corrupt_wrong_unit_rate(st, ca, r, problem.question)),
    )
    for index, step in enumerate(steps):
        calcs = step.calculations
        if calcs:
            calc = rng.choice(calcs)
            for kind, fn in arithmetic:
                if kind not in out:
                    continue
                for _ in range(VARIANT_TRIES):
                    made = fn(step, calc, random.Random(rng.random()))
                    if made is None:
                        break
                    add(kind, index, made[0], made[1])
            last = calcs[-1].value
            if "premature_answer" in out and gold is not None and last != gold:
                claimed = format_number(last)
                bad = f"{step.text} {final_answer_step(claimed)}"
                add("premature_answer", index, bad, {"claimed": claimed, "gold": answer})
        if "copied_previous" in out and index >= 1:
            add("copied_previous", index, bodies[index - 1], {"copied_step": index})
    if "wrong_final_answer" in out and gold is not None:
        # The final step against a final step with a wrong answer: both candidates end the solution.
        index = len(steps)
        for wrong in wrong_values(gold, rng)[:VARIANT_TRIES]:
            shown = format_number(wrong, like=answer)
            add("wrong_final_answer", index, final_answer_step(shown), {"correct": answer, "shown": shown})
    return {k: v for k, v in out.items() if v}


EXPLANATIONS: dict[str, str] = {
    "wrong_result": (
        "Step {bad} computes {expression} as {shown}, but {expression} = {correct}, so its result is wrong. "
        "Step {good} does the calculation correctly."
    ),
    "wrong_operand": (
        "Step {bad} uses {to} where the calculation needs {changed_operand}, so it gets {shown} instead of "
        "{correct}. Step {good} uses the right quantities."
    ),
    "dropped_quantity": (
        "Step {bad} leaves {dropped} out of the calculation, so it gets {shown} instead of {correct}. "
        "Step {good} accounts for every quantity."
    ),
    "wrong_operation": (
        "Step {bad} {new_operation} where the calculation needs to {operation}: it computes "
        "{new_expression} = {shown} instead of {expression} = {correct}. Step {good} uses the right operation."
    ),
    "wrong_unit_rate": (
        "Step {bad} converts with {to} where the {unit} rate is {changed_operand}, so it gets {shown} instead "
        "of {correct}. Step {good} uses the right unit rate."
    ),
    "wrong_final_answer": (
        "Step {bad} gives {shown} as the final answer, but the steps above give {correct}. "
        "Step {good} states the answer the solution reached."
    ),
    "premature_answer": (
        "Step {bad} stops early and gives {claimed} as the final answer, but the problem is not solved yet. "
        "Step {good} continues the solution correctly."
    ),
    "copied_previous": (
        "Step {bad} only repeats the previous step and makes no progress. "
        "Step {good} moves the solution forward correctly."
    ),
}


def explanation(candidate: EFTCandidate, good_label: str) -> str:
    bad_label = "B" if good_label == "A" else "A"
    return EXPLANATIONS[candidate.corruption].format(good=good_label, bad=bad_label, **candidate.detail)


def eft_record(candidate: EFTCandidate, verdict: int) -> dict[str, Any]:
    """The EFT record for one order: verdict 0 puts the correct step in A, 1 puts it in B."""
    good_label = "A" if verdict == 0 else "B"
    step_a, step_b = (candidate.good, candidate.bad) if verdict == 0 else (candidate.bad, candidate.good)
    return {
        "question": candidate.question,
        "previous_steps": list(candidate.previous_steps),
        "step_a": step_a,
        "step_b": step_b,
        "verdict": verdict,
        "explanation": explanation(candidate, good_label),
        "problem_id": candidate.problem_id,
        "corruption": candidate.corruption,
        "step_index": candidate.step_index,
        "detail": candidate.detail,
    }


def eft_to_sft(
    records: Sequence[dict[str, Any]], verdict_first: bool = False, explanation: bool = True
) -> list[dict[str, str]]:
    """EFT records -> ``{prompt, completion}`` for the SFT trainer: the pairwise judge message (a
    message, not chat-formatted) and the explanation followed by the ``[[A]]``/``[[B]]`` verdict (with
    ``verdict_first``: the verdict, then the explanation; without ``explanation``: the verdict alone; see
    :func:`pairwise_step_target`)."""
    from ..judges.prompts import pairwise_step_message, pairwise_step_target

    return [
        {
            "prompt": pairwise_step_message(r["question"], r["previous_steps"], r["step_a"], r["step_b"]),
            "completion": pairwise_step_target(r["explanation"] if explanation else "", int(r["verdict"]),
                                               verdict_first),
        }
        for r in records
    ]


# --------------------------------------------------------------------------------------------------
# Shortcut audit: can a surface rule decide the verdict?


def _rule_score(preference: int, verdict: int) -> float:
    """1 if the rule's preference (0 = A, 1 = B, -1 = none) is the verdict, 1/2 with no preference (a
    coin toss's expectation), else 0."""
    return 0.5 if preference == -1 else float(preference == verdict)


def _prefer(flag_a: bool, flag_b: bool) -> int:
    return -1 if flag_a == flag_b else (0 if flag_a else 1)


def shortcut_audit(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy on EFT ``records`` of rules that read no arithmetic: ``prefer_a`` (always A),
    ``prefer_shorter`` (fewer characters), ``prefer_boxed`` (the step with ``\\boxed{}``); each should sit
    near 1/2. ``prefer_more_likely`` (the step the model finds more likely) needs a model: it is the
    ``likelihood`` mode of the held-out judge evaluation, reported per model. Also how often the correct
    and the corrupted step end the solution (state a boxed answer): equal counts mean the box is no cue."""
    from ..steps import has_boxed_answer

    rules: dict[str, list[float]] = {"prefer_a": [], "prefer_shorter": [], "prefer_boxed": []}
    ends = {"correct": 0, "corrupted": 0}
    for r in records:
        a, b, verdict = r["step_a"], r["step_b"], int(r["verdict"])
        good, bad = (a, b) if verdict == 0 else (b, a)
        ends["correct"] += has_boxed_answer(good)
        ends["corrupted"] += has_boxed_answer(bad)
        rules["prefer_a"].append(_rule_score(0, verdict))
        rules["prefer_shorter"].append(_rule_score(_prefer(len(a) < len(b), len(b) < len(a)), verdict))
        rules["prefer_boxed"].append(_rule_score(_prefer("\\boxed" in a, "\\boxed" in b), verdict))
    n = len(records)
    out: dict[str, Any] = {k: {"accuracy": sum(v) / n if n else None, "total": n} for k, v in rules.items()}
    out["prefer_more_likely"] = {"accuracy": None, "total": n, "see": "judge_eval likelihood mode, per model"}
    out["ends_solution"] = ends
    return out


# --------------------------------------------------------------------------------------------------
# IFT


def ift_steps(problem: Problem, config: SeedConfig) -> tuple[list[str] | None, str]:
    """Step bodies of ``problem``'s reference solution for IFT, or ``(None, reason)`` when skipped."""
    solution = problem.solution or ""
    if problem.benchmark == "gsm8k":
        parsed = gsm8k_reference_steps(solution)
        if parsed is None:
            return None, "no_final_answer"
        steps, answer = parsed
        bodies = [s.text for s in steps if s.text.strip()] + [final_answer_step(answer)]
    else:
        if config.skip_asy and "[asy]" in solution:
            return None, "asy_drawing"
        if "\\boxed" not in solution:
            return None, "no_boxed_answer"
        bodies = [step_body(s) for s in split_steps(solution.strip(), format="auto")]
        bodies = [b for b in bodies if b]
    if not bodies:
        return None, "empty"
    if len(bodies) > config.max_steps:
        return None, "too_many_steps"
    if any(len(b) > config.max_step_chars for b in bodies):
        return None, "step_too_long"
    return bodies, ""


def ift_record(problem: Problem, bodies: Sequence[str]) -> dict[str, Any]:
    return {
        "prompt": solve_message(problem.question),
        "completion": format_steps(bodies),
        "problem_id": problem.id,
        "benchmark": problem.benchmark,
    }


# --------------------------------------------------------------------------------------------------
# The builder


@dataclass
class SeedData:
    ift: list[dict[str, Any]]
    eft_train: list[dict[str, Any]]
    eft_heldout: list[dict[str, Any]]
    summary: SeedSummary


def build_seed_records(pools: dict[str, list[Problem]], config: SeedConfig) -> SeedData:
    """The pure core of :func:`build_seed_data`: seed records from per-source training pools.

    Each pool is shuffled with the seed; EFT held-out pairs take problems first, then EFT training
    pairs, then IFT solutions, each problem used by at most one of them.
    """
    config.validate()
    rng = random.Random(config.seed)
    summary = SeedSummary()
    skipped: Counter[str] = Counter()
    queues = {}
    for source in sorted(pools):
        order = list(pools[source])
        random.Random(f"{config.seed}:{source}").shuffle(order)
        queues[source] = order
    cursor = {source: 0 for source in queues}
    used: dict[str, int] = Counter()

    def take(source: str) -> Problem | None:
        queue = queues.get(source, [])
        if cursor[source] >= len(queue):
            return None
        cursor[source] += 1
        return queue[cursor[source] - 1]

    # EFT: held-out first (so the accuracy set does not depend on the training sizes), then training.
    kind_counts: Counter[str] = Counter()

    def draw_pairs(n_pairs: int, label: str) -> list[EFTCandidate]:
        chosen: list[EFTCandidate] = []
        length_balance = [0]
        sources = [s for s in config.eft_sources if s in queues]
        turn = 0
        while len(chosen) < n_pairs and sources:
            source = sources[turn % len(sources)]
            turn += 1
            problem = take(source)
            if problem is None:
                sources.remove(source)
                continue
            problem_rng = random.Random(f"{config.seed}:eft:{problem.id}")
            options = gsm8k_eft_candidates(problem, config.corruptions, problem_rng)
            if not options:
                skipped["eft_no_corruption"] += 1
                continue
            used[label] += 1
            for _ in range(min(config.max_pairs_per_problem, n_pairs - len(chosen))):
                if not options:
                    break
                # Balance the kinds: the least used kind available here, ties broken by the rng.
                kinds = sorted(options, key=lambda k: (kind_counts[k], problem_rng.random()))
                kind = kinds[0]
                # Balance the lengths: while more corrupted steps are longer than shorter, prefer a
                # shorter one (and the reverse), so "prefer the shorter step" stays at chance.
                want = -((length_balance[0] > 0) - (length_balance[0] < 0))
                ranked = sorted(range(len(options[kind])), key=lambda i: (
                    abs(length_class(options[kind][i].good, options[kind][i].bad) - want), problem_rng.random()))
                pick = options[kind].pop(ranked[0])
                length_balance[0] += length_class(pick.good, pick.bad)
                # One pair per step: a second pair from the same problem judges a different step.
                for k in list(options):
                    options[k] = [c for c in options[k] if c.step_index != pick.step_index]
                    if not options[k]:
                        del options[k]
                kind_counts[kind] += 1
                chosen.append(pick)
        return chosen

    heldout_pairs = draw_pairs(config.eft_heldout_pairs, "eft_heldout")
    heldout_kinds = Counter(c.corruption for c in heldout_pairs)
    kind_counts.clear()
    train_pairs = draw_pairs(config.eft_train_pairs, "eft_train")

    rng.shuffle(heldout_pairs)
    # Verdicts alternate within each kind, and a kind with an odd count starts where the previous odd one
    # ended: A and B balanced for every corruption (within one) and overall (exactly, for an even size).
    offset: dict[str, int] = {}
    odd = 0
    for kind, count in sorted(heldout_kinds.items()):
        offset[kind] = odd % 2
        odd += count % 2
    seen_kind: Counter[str] = Counter()
    eft_heldout = []
    for c in heldout_pairs:
        eft_heldout.append(eft_record(c, (seen_kind[c.corruption] + offset[c.corruption]) % 2))
        seen_kind[c.corruption] += 1
    eft_train = []
    for c in train_pairs:
        first = rng.randrange(2)
        eft_train += [eft_record(c, first), eft_record(c, 1 - first)]
    rng.shuffle(eft_train)

    # IFT: evenly over the sources, from problems not used above.
    ift: list[dict[str, Any]] = []
    sources = list(dict.fromkeys(config.ift_sources))
    quotas = {s: config.ift_examples // len(sources) for s in sources} if sources else {}
    for s in sources[: config.ift_examples % len(sources)] if sources else []:
        quotas[s] += 1
    by_source: Counter[str] = Counter()
    for source in sources:
        while by_source[source] < quotas[source]:
            problem = take(source)
            if problem is None:
                break
            bodies, reason = ift_steps(problem, config)
            if bodies is None:
                skipped[f"ift_{source}_{reason}"] += 1
                continue
            ift.append(ift_record(problem, bodies))
            by_source[source] += 1
            used["ift"] += 1
    rng.shuffle(ift)

    summary.ift = len(ift)
    summary.ift_by_source = {s: by_source[s] for s in sources}
    summary.eft_train_pairs = len(train_pairs)
    summary.eft_train_records = len(eft_train)
    summary.eft_heldout = len(eft_heldout)
    summary.corruptions_train = dict(sorted(Counter(c.corruption for c in train_pairs).items()))
    summary.corruptions_heldout = dict(sorted(heldout_kinds.items()))
    summary.verdicts_heldout = dict(sorted(Counter(f"[[{'AB'[r['verdict']]}]]" for r in eft_heldout).items()))
    summary.problems_used = dict(sorted(used.items()))
    summary.skipped_solutions = dict(sorted(skipped.items()))
    summary.heldout_problem_ids = sorted({c.problem_id for c in heldout_pairs})
    summary.shortcut_audit = shortcut_audit(eft_heldout)
    summary.shortcut_audit_train = shortcut_audit(eft_train)
    short = {
        "ift": config.ift_examples - len(ift),
        "eft_train_pairs": config.eft_train_pairs - len(train_pairs),
        "eft_heldout_pairs": config.eft_heldout_pairs - len(heldout_pairs),
    }
    summary.shortfall = {k: v for k, v in short.items() if v > 0}
    if summary.shortfall:
        log.warning("seed data short of the configured sizes (pools exhausted): %s", summary.shortfall)
    return SeedData(ift, eft_train, eft_heldout, summary)


def load_seed_pools(
    config: SeedConfig, data_dir: str | Path | None, exclude: Sequence[Problem] = ()
) -> dict[str, list[Problem]]:
    """Training pools per source, with every configured evaluation set and ``exclude`` (the run's own
    evaluation problems) excluded by question text."""
    exclude = list(exclude) + [
        p for name in config.exclude_benchmarks for p in load_benchmark(name, split="test", data_dir=data_dir)
    ]
    sources = list(dict.fromkeys([*config.eft_sources, *config.ift_sources]))
    return {source: training_problems([source], data_dir, exclude=exclude) for source in sources}


def build_seed_data(
    config: SeedConfig, data_dir: str | Path | None, out_dir: str | Path, exclude: Sequence[Problem] = ()
) -> SeedSummary:
    """Build the seed data and write ``ift.jsonl``, ``eft_train.jsonl``, ``eft_heldout.jsonl`` and
    ``summary.json`` in ``out_dir`` (each atomically). Deterministic given ``config`` and ``exclude``.
    ``exclude``: problems that must not enter the seed data besides ``config.exclude_benchmarks`` (the
    loop passes the run's evaluation problems, whatever benchmarks they come from).

    Raises ConfigError for a bad config and UserError when a pool or evaluation set cannot be loaded.
    """
    from ..io import atomic_write_json

    config.validate()
    data = build_seed_records(load_seed_pools(config, data_dir, exclude), config)
    out = Path(out_dir)
    files = {
        "ift": out / "ift.jsonl",
        "eft_train": out / "eft_train.jsonl",
        "eft_heldout": out / "eft_heldout.jsonl",
    }
    write_jsonl(files["ift"], data.ift)
    write_jsonl(files["eft_train"], data.eft_train)
    write_jsonl(files["eft_heldout"], data.eft_heldout)
    data.summary.files = {k: str(v) for k, v in files.items()}
    atomic_write_json(out / "summary.json", asdict(data.summary))
    return data.summary
