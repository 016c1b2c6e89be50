"""Equivalence: are two answer *texts* the same mathematical object?

A ladder of small named comparisons, tried in this order (gold first: the comparison is not
symmetric where assignments are stripped, see :class:`~prm_selfreward.grading.normalize.Equation`):

0. ``no_answer`` / ``no_gold``: an empty prediction / gold after normalisation is never equal.
1. ``string``: the normalised texts (:func:`~prm_selfreward.grading.normalize.normalize_answer`) agree
   with whitespace removed.
2. ``fast``: both texts are cut into shapes (tuples, sets, intervals, equations, ... see
   :mod:`~prm_selfreward.grading.normalize`) and compared structurally, with atoms compared by
   :func:`fast_atom_equal`: identical text, infinities, numbers with a base subscript (``52_8``, in
   their base), plain numbers (integers, decimals, ``a/b``, ``\\frac{a}{b}``, mixed numbers) compared as
   exact fractions, words. Anything else is *undecided*.
3. ``sympy``: an undecided comparison is re-run in a worker process with atoms compared by
   :func:`prm_selfreward.grading.sympy_compare.sympy_atom_equal` (latex2sympy2_extended parses;
   structural equality, numeric evaluation, random-point identity test, ``simplify``), under a hard
   deadline (:mod:`~prm_selfreward.grading.timeout`): a worker that overruns is killed and the
   verdict is ``timeout`` (not equal); an answer too large to evaluate is refused before sympy
   builds it (also ``timeout``), and a worker that reaches its memory cap answers ``memory``.

Rungs 0-2 run in the calling process: they are pure string and :class:`fractions.Fraction` work,
bounded by the input length (numbers longer than :data:`MAX_DIGITS` digits go to rung 3). Most real
answers (every GSM8K/AIME/AMC gold, ~60% of MATH golds) are decided there in microseconds, so the
cost of a process boundary is paid only by answers that need sympy.

Numeric policy (rungs 2 and 3 alike): two exact values (integers, fractions, radicals, pi ...) must be
exactly equal (``1/2004!`` is not ``1/2006!``; ``1/3`` is not ``333333/1000000``). When either side is
written with a decimal point, values are equal within a relative tolerance of :data:`REL_TOL` (1e-6):
``0.5`` equals ``1/2``, ``0.3333333`` equals ``1/3``, and ``1e-10`` is not ``2e-10`` (the tolerance is
relative, never absolute). A predicted decimal that rounds an exact gold at the precision it is written
with is equal too (``0.33`` and ``0.333`` for ``1/3``, ``2.6667`` for ``8/3``; at least two significant
digits, :func:`~prm_selfreward.grading.numbers.rounds_to`); a decimal gold is never rounded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .normalize import (
    Atom,
    Equation,
    Interval,
    Matrix,
    Relation,
    Seq,
    Shape,
    Text,
    Union,
    compact,
    gold_shape,
    normalize_answer,
    parse_shape,
)
from .numbers import MAX_DIGITS, REL_TOL, numbers_equal, parse_number, rounds_to
from .result import REASONS, Comparison
from .timeout import run_sympy

__all__ = [
    "MAX_DIGITS",
    "MAX_RAW_CHARS",
    "MAX_SYMPY_CHARS",
    "REASONS",
    "REL_TOL",
    "Comparator",
    "Comparison",
    "FastComparator",
    "Undecided",
    "answers_equal",
    "compare_answers",
    "fast_atom_equal",
    "numbers_equal",
    "parse_number",
    "prepare",
    "shapes_equal",
]

#: Longer (normalised) answers are compared as text only: no final answer is this long, and parsing
#: one would only burn a worker's time limit (and shape parsing is quadratic in nesting depth).
MAX_SYMPY_CHARS = 2000
#: Longer raw answers are not normalised at all (exact text equality only).
MAX_RAW_CHARS = 5000


class Undecided(Exception):
    """Raised by an atom comparator that cannot decide cheaply: escalate to the next rung."""


# ---------------------------------------------------------------------------------------------------
# Atoms


class Comparator:
    """How a rung compares the leaves of two shapes. Each method may raise :class:`Undecided`.

    ``atom(gold, pred)``: two expressions; ``relation(gold, pred)``: two (in)equations;
    ``solution_set(relation, shape, relation_is_gold)``: an inequality in one unknown against the
    interval, union or set it may describe."""

    def atom(self, gold: str, pred: str) -> bool:
        raise NotImplementedError

    def relation(self, gold: str, pred: str) -> bool:
        raise NotImplementedError

    def solution_set(self, relation: str, shape: Shape, relation_is_gold: bool) -> bool:
        raise Undecided


class FastComparator(Comparator):
    """Rung 2: :func:`fast_atom_equal`; solution sets are left to sympy."""

    def atom(self, gold: str, pred: str) -> bool:
        return fast_atom_equal(gold, pred, False)

    def relation(self, gold: str, pred: str) -> bool:
        return fast_atom_equal(gold, pred, True)


FAST = FastComparator()

_INFINITIES = {
    "\\infty": 1,
    "+\\infty": 1,
    "-\\infty": -1,
    "oo": 1,
    "-oo": -1,
    "+oo": 1,
    "\\inf": 1,
    "-\\inf": -1,
}

# 52_8, 10001_{2}, 2A_{16}: a numeral with its base. The digits must start with a digit (a_{12} is a
# variable), the base is 2..36.
_BASED_RE = re.compile(r"^([0-9][0-9A-Za-z]*)_(?:\{(\d{1,2})\}|(\d))$")


def based_number(text: str) -> tuple[str, int, int | None] | None:
    """``(digits, base, value)`` for a numeral written with its base (value None when the digits are
    not valid in that base), or None when ``text`` is not of that form."""
    match = _BASED_RE.match(compact(text))
    if not match:
        return None
    digits, base = match.group(1), int(match.group(2) or match.group(3))
    if not 2 <= base <= 36:
        return None
    try:
        value: int | None = int(digits, base)
    except ValueError:
        value = None
    return digits.upper(), base, value


def _based_equal(gold: str, pred: str) -> bool | None:
    """Numbers with a base subscript compare in their base (``52_8`` is not ``52_7``; sympy would drop
    the subscripts). Against a numeral without a subscript the digits must be the same (the model
    wrote the number in the base asked for). None when neither side has a base."""
    gb, pb = based_number(gold), based_number(pred)
    if gb is None and pb is None:
        return None
    if gb is not None and pb is not None:
        if gb[2] is None or pb[2] is None:
            return gb[:2] == pb[:2]
        return gb[2] == pb[2]
    based, other = (gb, compact(pred)) if gb is not None else (pb, compact(gold))
    assert based is not None
    return bool(re.fullmatch(r"[0-9A-Za-z]+", other)) and other.upper() == based[0]


def _casefold_key(text: str) -> str:
    key = compact(text).casefold()
    return re.sub(r"^\\text\{(.*)\}$", r"\1", key)


def fast_atom_equal(gold: str, pred: str, relation: bool = False) -> bool:
    """The in-process atom comparison: decides identical texts, infinities, numbers with a base and
    plain numbers; raises :class:`Undecided` for anything that needs sympy."""
    g, p = compact(gold), compact(pred)
    if g == p:
        return True
    if not relation:
        based = _based_equal(g, p)
        if based is not None:
            return based
    if g in _INFINITIES or p in _INFINITIES:
        if g in _INFINITIES and p in _INFINITIES:
            return _INFINITIES[g] == _INFINITIES[p]
        if parse_number(g) is not None or parse_number(p) is not None:
            return False
        raise Undecided
    if not relation:
        gn, pn = parse_number(g), parse_number(p)
        if gn is not None and pn is not None:
            # A predicted decimal that rounds an exact gold at its written precision (0.33 for 1/3).
            return numbers_equal(gn, pn) or (not gn[1] and rounds_to(gn[0], p))
        if (gn is not None or pn is not None) and re.fullmatch(r"[A-Za-z]", p if gn is not None else g):
            return False  # a number is never a bare variable
    raise Undecided


# ---------------------------------------------------------------------------------------------------
# Shapes


def _match_unordered(golds: Sequence[Shape], preds: Sequence[Shape], cmp: Comparator) -> bool:
    """Multiset matching. Equality of answers is an equivalence relation, so greedy matching is exact.
    A pair the comparator cannot decide makes the whole match undecided, unless a decided match is
    found for that gold item first."""
    if len(golds) != len(preds):
        return False
    free = list(range(len(preds)))
    for gold in golds:
        undecided = False
        for k in free:
            try:
                if shapes_equal(gold, preds[k], cmp):
                    free.remove(k)
                    break
            except Undecided:
                undecided = True
        else:
            if undecided:
                raise Undecided
            return False
    return True


def _match_ordered(golds: Sequence[Shape], preds: Sequence[Shape], cmp: Comparator) -> bool:
    if len(golds) != len(preds):
        return False
    undecided = False
    for gold, pred in zip(golds, preds, strict=True):
        try:
            if not shapes_equal(gold, pred, cmp):
                return False
        except Undecided:
            undecided = True  # keep looking: a decided mismatch elsewhere settles it
    if undecided:
        raise Undecided
    return True


def _all_equal(gold: Shape, preds: Sequence[Shape], cmp: Comparator) -> bool:
    undecided = False
    for pred in preds:
        try:
            if not shapes_equal(gold, pred, cmp):
                return False
        except Undecided:
            undecided = True
    if undecided:
        raise Undecided
    return True


def _interval_ends(shape: Shape) -> tuple[bool, Atom, Atom, bool] | None:
    if isinstance(shape, Interval):
        return shape.left_closed, shape.lo, shape.hi, shape.right_closed
    if isinstance(shape, Seq) and shape.kind == "tuple" and len(shape.items) == 2 and shape.names is None:
        lo, hi = shape.items
        if isinstance(lo, Atom) and isinstance(hi, Atom):
            return False, lo, hi, False  # (a, b): an open interval or a point, same ends either way
    return None


def _vector(shape: Shape) -> tuple[Shape, ...] | None:
    if isinstance(shape, Matrix) and (len(shape.rows) == 1 or all(len(r) == 1 for r in shape.rows)):
        return tuple(a for row in shape.rows for a in row)
    if isinstance(shape, Seq) and shape.kind == "tuple":
        return shape.items
    return None


def _set_like(shape: Shape) -> bool:
    """An interval, a union, or a list of intervals ("x < -1 or x > 2"): what an inequality describes."""
    if isinstance(shape, Interval | Union):
        return True
    return isinstance(shape, Seq) and shape.kind == "list" and all(isinstance(i, Interval) for i in shape.items)


def _as_interval(shape: Shape) -> Shape:
    if _set_like(shape):
        return shape
    ends = _interval_ends(shape)
    assert ends is not None
    return Interval(*ends)


def _union_parts(shape: Shape) -> tuple[Shape, ...]:
    if isinstance(shape, Union):
        return shape.parts
    if isinstance(shape, Seq) and shape.kind == "list" and all(isinstance(i, Interval) for i in shape.items):
        return shape.items
    return (shape,)


def _equation_text(shape: Equation) -> str:
    return f"{shape.lhs}={_shape_text(shape.rhs)}"


def _shape_text(shape: Shape) -> str:
    if isinstance(shape, Atom | Relation):
        return shape.text
    if isinstance(shape, Equation):
        return _equation_text(shape)
    raise Undecided


def _matrix_text(shape: Matrix) -> str:
    rows = " \\\\ ".join(" & ".join(cell.text for cell in row) for row in shape.rows)
    return f"\\begin{{pmatrix}} {rows} \\end{{pmatrix}}"


def _by_name(gold: Seq, pred: Seq) -> tuple[tuple[Shape, ...], tuple[Shape, ...]] | None:
    """Two tuples of assignments naming the same unknowns: their values paired by name."""
    if gold.names is None or pred.names is None or len(gold.names) != len(pred.names):
        return None
    pred_by_name = {n.casefold(): item for n, item in zip(pred.names, pred.items, strict=True)}
    if set(pred_by_name) != {n.casefold() for n in gold.names}:
        return None
    return gold.items, tuple(pred_by_name[n.casefold()] for n in gold.names)


def shapes_equal(gold: Shape, pred: Shape, cmp: Comparator = FAST) -> bool:
    """Compare two shapes with ``cmp`` for the leaves (see the module docstring for the rules:
    tuples ordered, sets and bare lists unordered multisets, interval ends and their closedness,
    matrices by entries, assignments ``x = v`` by their value, tuples of assignments by name)."""
    # Assignments: "x = 5" against "5" compares the value; two assignments need the same name.
    if isinstance(gold, Equation) and isinstance(pred, Equation):
        if gold.lhs.casefold() == pred.lhs.casefold():
            return shapes_equal(gold.rhs, pred.rhs, cmp)
        return cmp.relation(_equation_text(gold), _equation_text(pred))
    if isinstance(gold, Equation):
        if isinstance(pred, Relation):
            return cmp.relation(_equation_text(gold), pred.text)
        return shapes_equal(gold.rhs, pred, cmp)
    if isinstance(pred, Equation):
        if not pred.name:
            # A labelled value is read so on the gold side only: a predicted "|x| = 3" stays the
            # relation it is (the answer asked for may be x), not the value 3.
            return shapes_equal(gold, Relation(_equation_text(pred)), cmp)
        if isinstance(gold, Relation):
            return cmp.relation(gold.text, _equation_text(pred))
        return shapes_equal(gold, pred.rhs, cmp)
    if isinstance(gold, Relation) or isinstance(pred, Relation):
        if isinstance(gold, Relation) and isinstance(pred, Relation):
            return cmp.relation(gold.text, pred.text)
        # An inequality against the interval or union it describes ("-x > -1" and "(-oo, 1)"; a
        # pair "(a, b)" is the open interval here).
        if isinstance(gold, Relation) and (_set_like(pred) or _interval_ends(pred)):
            return cmp.solution_set(gold.text, _as_interval(pred), True)
        if isinstance(pred, Relation) and (_set_like(gold) or _interval_ends(gold)):
            return cmp.solution_set(pred.text, _as_interval(gold), False)
        return False
    # Words and choice letters: compared as words (an atom that spells the same word matches).
    if isinstance(gold, Text) or isinstance(pred, Text):
        if isinstance(gold, Text | Atom) and isinstance(pred, Text | Atom):
            return bool(_casefold_key(gold.text)) and _casefold_key(gold.text) == _casefold_key(pred.text)
        return False
    if isinstance(gold, Atom) and isinstance(pred, Atom):
        return cmp.atom(gold.text, pred.text)
    # A ratio (11:21) is only ever another ratio, compared term by term.
    if (isinstance(gold, Seq) and gold.kind == "ratio") or (isinstance(pred, Seq) and pred.kind == "ratio"):
        if not (isinstance(gold, Seq) and isinstance(pred, Seq) and gold.kind == pred.kind == "ratio"):
            return False
        paired = _by_name(gold, pred)
        if paired is not None:
            return _match_ordered(paired[0], paired[1], cmp)
        return _match_ordered(gold.items, pred.items, cmp)
    # One answer restated in several forms ("\\boxed{15\\frac{39}{40}} or \\boxed{\\frac{639}{40}}"):
    # a list whose every item equals a single gold. Hedging between values ("7 or 4") stays unequal.
    if isinstance(pred, Seq) and pred.kind == "list" and len(pred.items) > 1 and not isinstance(gold, Seq):
        if isinstance(gold, Union) and _set_like(pred):
            return _match_unordered(gold.parts, pred.items, cmp)  # "x < -1 or x > 2"
        return _all_equal(gold, pred.items, cmp)
    if isinstance(gold, Seq) and gold.kind == "list" and isinstance(pred, Union) and _set_like(gold):
        return _match_unordered(gold.items, pred.parts, cmp)
    # A one-element list or set is its element ("x = 5" in a list of one, {5} against 5).
    if isinstance(gold, Seq) and len(gold.items) == 1 and not isinstance(pred, Seq):
        return shapes_equal(gold.items[0], pred, cmp)
    if isinstance(pred, Seq) and len(pred.items) == 1 and not isinstance(gold, Seq):
        return shapes_equal(gold, pred.items[0], cmp)
    if isinstance(gold, Seq) and isinstance(pred, Seq):
        if gold.kind == "tuple" or pred.kind == "tuple":
            if {gold.kind, pred.kind} == {"tuple", "set"}:
                return False  # a set is not a point
            paired = _by_name(gold, pred)
            if paired is not None:
                return _match_ordered(paired[0], paired[1], cmp)  # p=5, q=2 against q=2, p=5
            return _match_ordered(gold.items, pred.items, cmp)
        return _match_unordered(gold.items, pred.items, cmp)
    gold_iv, pred_iv = _interval_ends(gold), _interval_ends(pred)
    if gold_iv and pred_iv and (isinstance(gold, Interval) or isinstance(pred, Interval)):
        if gold_iv[0] != pred_iv[0] or gold_iv[3] != pred_iv[3]:
            return False
        return _match_ordered((gold_iv[1], gold_iv[2]), (pred_iv[1], pred_iv[2]), cmp)
    if isinstance(gold, Union) or isinstance(pred, Union):
        gold_parts, pred_parts = _union_parts(gold), _union_parts(pred)
        if len(gold_parts) == 1 and len(pred_parts) == 1:
            return False
        return _match_unordered(gold_parts, pred_parts, cmp)
    if isinstance(gold, Matrix) and isinstance(pred, Atom) and "\\begin{" in pred.text:
        return cmp.atom(_matrix_text(gold), pred.text)  # "A + B", "A B": sympy evaluates it
    if isinstance(pred, Matrix) and isinstance(gold, Atom) and "\\begin{" in gold.text:
        return cmp.atom(gold.text, _matrix_text(pred))
    if isinstance(gold, Matrix) and isinstance(pred, Matrix):
        if len(gold.rows) != len(pred.rows) or len(gold.rows[0]) != len(pred.rows[0]):
            return False
        flat_gold = [a for row in gold.rows for a in row]
        flat_pred = [a for row in pred.rows for a in row]
        return _match_ordered(flat_gold, flat_pred, cmp)
    gold_vec, pred_vec = _vector(gold), _vector(pred)
    if gold_vec is not None and pred_vec is not None:
        return _match_ordered(gold_vec, pred_vec, cmp)  # column vector against a tuple
    return False


# ---------------------------------------------------------------------------------------------------
# The ladder


def _as_golds(gold: str | Sequence[str] | float | int) -> tuple[str, ...]:
    if isinstance(gold, str):
        return (gold,)
    if isinstance(gold, float | int):
        return (str(int(gold)) if isinstance(gold, float) and gold.is_integer() else str(gold),)
    return tuple(_as_golds(g)[0] for g in gold)


# "2,75" against a single number on the other side: a decimal comma. Exactly three digits after the
# comma is a thousands separator (1,500) unless the number opens with "0," (0,111: no thousands
# group starts with 0), and a comma followed by a space is a list (2, 75): neither is read so. Nor
# is "-3,0" (all zeros after the comma: the roots -3 and 0, whose decimal reading would equal -3).
DECIMAL_COMMA_RE = re.compile(r"^-?\d+,(?!0+$)(?:\d{1,2}|\d{4,})$|^-?0,(?!0+$)\d+$")
# On the gold side, where "1,5" and "-2,1" are lists of roots, only two or more digits after the
# comma read as a decimal ("1,22", "0,111").
GOLD_DECIMAL_COMMA_RE = re.compile(r"^-?\d+,(?!0+$)(?:\d{2}|\d{4,})$|^-?0,(?!0+$)\d{2,}$")


def prepare(
    gold: str | Sequence[str], predicted: str | None, unit: str | None = None
) -> Comparison | tuple[tuple[str, ...], str]:
    """Rungs 0-2 in the calling process: a decided :class:`Comparison`, or the normalised
    ``(golds, predicted)`` job that rung 3 (sympy) must decide. Never raises: these rungs have no
    time limit, so inputs are capped in length (:data:`MAX_RAW_CHARS`, :data:`MAX_SYMPY_CHARS`) and
    any failure is an ``error`` verdict."""
    try:
        return _prepare(gold, predicted, unit)
    except Exception as exc:  # a bug here must be a verdict, not a crash of the caller's batch
        return Comparison(False, "error", f"in-process comparison failed: {type(exc).__name__}: {exc}"[:300])


def _prepare(
    gold: str | Sequence[str], predicted: str | None, unit: str | None
) -> Comparison | tuple[tuple[str, ...], str]:
    raw_golds = _as_golds(gold)
    if predicted and max(len(predicted), *map(len, raw_golds)) > MAX_RAW_CHARS:
        equal = any(predicted.strip() == g.strip() for g in raw_golds) and len(raw_golds) == 1
        return Comparison(
            equal, "equal" if equal else "parse_error", f"answer longer than {MAX_RAW_CHARS} characters"
        )
    golds = tuple(g for g in (normalize_answer(g, unit) for g in raw_golds) if g)
    if not golds:
        return Comparison(False, "no_gold", "gold answer is empty")
    pred = normalize_answer(predicted, unit) if predicted else ""
    if not pred:
        return Comparison(False, "no_answer", "prediction is empty")
    if len(golds) == 1 and compact(golds[0]) == compact(pred):
        return Comparison(True, "equal", "string")
    if max(len(pred), *map(len, golds)) > MAX_SYMPY_CHARS:
        return Comparison(False, "parse_error", f"answer longer than {MAX_SYMPY_CHARS} characters")
    if len(golds) == 1 and DECIMAL_COMMA_RE.match(pred) and parse_number(golds[0]) is not None:
        pred = pred.replace(",", ".")
    elif (
        len(golds) == 1 and GOLD_DECIMAL_COMMA_RE.match(golds[0]) and "." in pred and parse_number(pred) is not None
    ):
        golds = (golds[0].replace(",", "."),)  # the gold written with a decimal comma: 1,22 and 1.22
    try:
        equal = shapes_equal(gold_shape(golds), parse_shape(pred), FAST)
    except Undecided:
        return golds, pred
    return Comparison(equal, "equal" if equal else "not_equal", "fast")


def compare_answers(
    gold: str | Sequence[str], predicted: str | None, timeout: float = 5.0, unit: str | None = None
) -> Comparison:
    """Run the whole ladder on one pair (gold first). Never raises, never hangs: rung 3 runs in a
    worker process killed after ``timeout`` seconds (``reason="timeout"``)."""
    step = prepare(gold, predicted, unit)
    if isinstance(step, Comparison):
        return step
    return run_sympy(step[0], step[1], timeout)


def answers_equal(gold: str | Sequence[str], predicted: str | None, timeout: float = 5.0) -> tuple[bool, str]:
    """Equivalence alone (no extraction): ``(equal, reason)`` with ``reason`` one of :data:`REASONS`.

    ``gold`` may be a list of answers that are all required (an unordered list); ``$...$`` wrappers,
    units and ``\\text{}`` are stripped from both sides as described in
    :mod:`~prm_selfreward.grading.normalize`.
    """
    result = compare_answers(gold, predicted, timeout)
    return result.equal, result.reason
