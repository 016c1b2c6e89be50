"""Rung 3 of the ladder: atoms compared with sympy, LaTeX parsed by latex2sympy2_extended.

This module is imported only inside worker processes (:mod:`~prm_selfreward.grading.timeout`), which
enforce the deadline by killing the process; nothing here needs to be interruptible. Parses are
cached per process (a gold answer is parsed once however many samples are graded against it).

Atom comparisons, in order (the first that decides wins):

1. ``fast``: :func:`~prm_selfreward.grading.equivalence.fast_atom_equal` (texts, plain numbers).
2. ``parse``: both sides through ``latex2sympy`` (unevaluated; plain polynomial and radical LaTeX
   through :func:`~prm_selfreward.grading.plain_latex.read_plain_latex`, which builds the same
   trees without the ANTLR parser), then the size cap
   (:func:`estimate_bits` against :data:`MAX_BITS`: an answer over it is refused, reason
   ``timeout``, before anything is evaluated); a side that does not parse makes the pair unequal
   and the verdict ``parse_error`` (unless another rung finds the answers equal).
3. ``structural``: sympy ``==`` after ``i`` is read as the imaginary unit.
4. ``relational``: (in)equations ``l op r`` as ``l - r op 0``; equal when the operators agree and the
   two sides differ by a constant factor (positive for inequalities), checked at random points; else
   two inequalities in the same one unknown with the same real solution set (``solveset``). An
   inequality in one unknown against an interval or union (:meth:`SympyComparator.solution_set`)
   compares its real solution set with that set.
5. ``matrix``: same shape and equal entries.
6. ``numeric``: no free symbols: evaluated to 40 digits. Exact against exact: unequal when they differ
   beyond 1e-12 relative; else a rational difference (``(a - b).doit()``) decides exactly (a non-zero
   one is unequal however small: ``1/2004!`` vs ``1/2006!``), and other constants must agree to 1e-45
   at 60 digits. With a decimal on either side: relative tolerance 1e-6; a predicted plain decimal
   that rounds the exact gold constant at its written precision is equal (``1.41`` for ``\\sqrt{2}``).
7. ``points``: free symbols: the difference evaluated at three random points (positive reals);
   equal when it vanishes (relatively) at every point where both sides are finite.
8. ``simplify``: ``simplify(a - b) == 0`` when no point could be evaluated.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import sympy
from latex2sympy2_extended import NormalizationConfig, latex2sympy
from sympy.core.relational import Relational

from .equivalence import Comparator, Undecided, fast_atom_equal, shapes_equal
from .normalize import Atom, Interval, Seq, Shape, Union, compact, gold_shape, parse_shape
from .numbers import REL_TOL, rounding_unit
from .plain_latex import read_plain_latex

_NORMALIZATION = NormalizationConfig(
    basic_latex=True, units=False, malformed_operators=True, nits=False, boxed="none", equations=False
)
_I = sympy.Symbol("i")
_EXACT_REJECT = sympy.Float("1e-12")
_EXACT_ACCEPT = sympy.Float("1e-45")
_POINT_TOL = sympy.Float("1e-10")

#: Size cap, checked on the unevaluated parse before sympy evaluates anything: an answer whose exact
#: value would need more bits than this (``10^{10^{10}}``, ``(2^{2^{30}})!``, ``x^{2^{30}}`` at a
#: rational point) is refused with reason ``timeout``: it could not be decided within any time limit,
#: and building it would exhaust the worker's memory first. 2^22 bits is a 1.26-million-digit number
#: (``10^{-9000}``, ``2006!`` and the like are far below it).
MAX_BITS = 2**22
#: Bits assumed for a symbol or constant (the random points are rationals of about 22 bits).
_SYMBOL_BITS = 32


class TooLarge(Exception):
    """An atom whose evaluation would build a number over :data:`MAX_BITS` bits."""


class _ParseFailed:
    def __init__(self, message: str):
        self.message = message


class _TooLargeParse:
    def __init__(self, message: str):
        self.message = message


class _State:
    """Per-job notes: did a parse fail (to report ``parse_error`` rather than ``not_equal``)?"""

    parse_failed: str | None = None


_state = _State()


def _log2_magnitude(expr: Any) -> float:
    """An upper bound of ``log2 |expr|`` (symbols at the random points, below 3), without evaluating."""
    if isinstance(expr, sympy.Rational):  # Integer too
        return math.log2(abs(int(expr.p))) if expr.p else 0.0
    if isinstance(expr, sympy.Float):
        return math.log2(abs(float(expr))) if expr and math.isfinite(float(expr)) else 0.0
    if isinstance(expr, sympy.Symbol | sympy.NumberSymbol) or expr is sympy.I:
        return 1.6
    if isinstance(expr, sympy.Pow):
        exponent = _log2_magnitude(expr.exp)
        return math.inf if exponent > 1000 else max(0.0, _log2_magnitude(expr.base)) * 2.0**exponent
    if isinstance(expr, sympy.factorial | sympy.factorial2 | sympy.gamma | sympy.subfactorial):
        n = _log2_magnitude(expr.args[0])
        return math.inf if n > 1000 else (2.0**n) * max(1.0, n)
    if isinstance(expr, sympy.Mul):
        return sum(max(0.0, _log2_magnitude(a)) for a in expr.args)
    if isinstance(expr, sympy.Basic) and expr.args:
        return max(max(0.0, _log2_magnitude(a)) for a in expr.args) + len(expr.args)
    return 1.0


def _magnitude(expr: Any, memo: dict) -> float:
    """An upper bound of ``|expr|`` (inf when it is astronomically large)."""
    log2 = _log2_magnitude(expr)
    return math.inf if log2 > 1000 else 2.0**log2


def estimate_bits(expr: Any, memo: dict | None = None) -> float:
    """An estimate (an upper bound in practice) of the bits the exact value of ``expr`` needs once
    evaluated, read from the unevaluated tree without evaluating it: integers their length, powers
    ``|exponent| x bits(base)``, factorials ``n log2 n``, everything else the sum of its parts."""
    memo = {} if memo is None else memo
    key = id(expr)
    if key in memo:
        return memo[key]
    memo[key] = 0.0  # cycles are impossible in sympy trees, but be safe
    if isinstance(expr, sympy.Integer):
        bits = float(max(1, int(expr).bit_length()))
    elif isinstance(expr, sympy.Rational):
        bits = float(int(expr.p).bit_length() + int(expr.q).bit_length())
    elif isinstance(expr, sympy.Float):
        bits = float(expr._prec)
    elif isinstance(expr, int):
        bits = float(max(1, expr.bit_length()))
    elif isinstance(expr, sympy.Pow):
        base = estimate_bits(expr.base, memo)
        exponent = _magnitude(expr.exp, memo)
        bits = base * max(1.0, exponent) + estimate_bits(expr.exp, memo)
    elif isinstance(expr, sympy.factorial | sympy.factorial2 | sympy.gamma | sympy.subfactorial):
        n = _magnitude(expr.args[0], memo)
        bits = n * max(1.0, math.log2(n)) if math.isfinite(n) and n > 1 else (math.inf if n > 1 else 1.0)
        bits += estimate_bits(expr.args[0], memo)
    elif isinstance(expr, sympy.binomial):
        bits = _magnitude(expr.args[0], memo) + estimate_bits(expr.args[0], memo) + estimate_bits(expr.args[1], memo)
    elif isinstance(expr, sympy.Symbol | sympy.NumberSymbol) or expr is sympy.I:
        bits = float(_SYMBOL_BITS)
    elif isinstance(expr, sympy.MatrixBase):
        bits = sum(estimate_bits(e, memo) for e in expr)
    elif isinstance(expr, sympy.Basic):
        bits = sum((estimate_bits(a, memo) for a in expr.args), 1.0)
    elif isinstance(expr, list | tuple):
        bits = sum((estimate_bits(a, memo) for a in expr), 1.0)
    else:
        bits = 1.0
    memo[key] = bits
    return bits


@lru_cache(maxsize=16384)
def parse_latex(text: str) -> Any:
    """The sympy object for an atom's LaTeX, a :class:`_ParseFailed`, or a :class:`_TooLargeParse`
    (over :data:`MAX_BITS`). Cached per process; nothing is evaluated before the size check."""
    expr = read_plain_latex(text)  # plain expressions without ANTLR (~100x faster, same trees)
    if expr is None:
        try:
            expr = latex2sympy(text, normalization_config=_NORMALIZATION)
        except Exception as exc:  # latex2sympy raises bare Exception on syntax errors
            return _ParseFailed(str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
    try:
        bits = estimate_bits(expr)
    except RecursionError:
        bits = math.inf
    if bits > MAX_BITS:
        size = "an astronomical number of" if not math.isfinite(bits) or bits > 1e15 else f"about {bits:.3g}"
        return _TooLargeParse(f"refused before evaluation: {text[:60]!r} needs {size} bits (cap 2^22)")
    try:
        if isinstance(expr, sympy.Basic) and _I in expr.free_symbols:
            expr = expr.subs(_I, sympy.I)
    except Exception:  # noqa: S110 - an expression that refuses substitution is used as parsed
        pass
    return expr


def _is_approx(expr: Any) -> bool:
    return isinstance(expr, sympy.Basic) and expr.has(sympy.Float)


def _evaluate(expr: Any, digits: int, subs: dict | None = None) -> Any:
    value = sympy.N(expr, digits, subs=subs) if subs else sympy.N(expr, digits)
    if not value.is_number or value.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
        return None
    return value


def _close(a: Any, b: Any, tol: Any) -> bool:
    diff = abs(a - b)
    scale = sympy.Max(abs(a), abs(b))
    return bool(diff <= tol * scale) if scale != 0 else True


def numeric_equal(a: sympy.Expr, b: sympy.Expr) -> bool | None:
    """Constants: the numeric policy of the module docstring; None when evaluation fails."""
    va, vb = _evaluate(a, 40), _evaluate(b, 40)
    if va is None or vb is None:
        return None
    if _is_approx(a) or _is_approx(b):
        return _close(va, vb, sympy.Float(REL_TOL))
    if not _close(va, vb, _EXACT_REJECT):
        return False
    # Near-equal exact values. A rational difference (factorials and powers evaluated) decides
    # exactly, however small: 1/2004! is not 1/2004! + 10^-9000. Otherwise (radicals, pi, logs)
    # agreement to 45 digits at 60-digit precision is accepted; simplify() is far slower and adds
    # nothing for constants that are not adversarial.
    difference = (a - b).doit()
    if difference == 0:
        return True
    if difference.is_Rational:
        return False
    va, vb = _evaluate(a, 60), _evaluate(b, 60)
    return va is not None and vb is not None and _close(va, vb, _EXACT_ACCEPT)


def _random_points(symbols: list[sympy.Symbol], count: int = 3) -> list[dict]:
    rng = random.Random(0x5EED)  # deterministic: the same pair always gets the same verdict
    return [{s: sympy.Rational(rng.randint(1100, 2900), 1000) for s in symbols} for _ in range(count)]


def points_equal(a: sympy.Expr, b: sympy.Expr) -> bool | None:
    """Random-point identity test for expressions with free symbols; None if no point evaluates."""
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    tol = sympy.Float(REL_TOL) if _is_approx(a) or _is_approx(b) else _POINT_TOL
    evaluated = 0
    for point in _random_points(symbols):
        va, vb = _evaluate(a, 30, point), _evaluate(b, 30, point)
        if va is None or vb is None:
            continue
        evaluated += 1
        if not _close(va, vb, tol):
            return False
    return True if evaluated else None


def _ratio_constant(a: sympy.Expr, b: sympy.Expr, positive: bool) -> bool:
    """``a = c * b`` for a non-zero constant c (positive if ``positive``), tested at random points."""
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    if not symbols:
        return bool(sympy.simplify(a - b) == 0)
    ratios = []
    for point in _random_points(symbols, 4):
        va, vb = _evaluate(a, 30, point), _evaluate(b, 30, point)
        if va is None or vb is None or vb == 0:
            continue
        ratios.append(va / vb)
    if not ratios or any(r == 0 for r in ratios):
        return False
    if positive and not all(sympy.re(r) > 0 for r in ratios):
        return False
    return all(_close(r, ratios[0], _POINT_TOL) for r in ratios[1:])


_CANONICAL = {
    sympy.Eq: ("eq", 1),
    sympy.Ne: ("ne", 1),
    sympy.StrictLessThan: ("pos", 1),  # a < b  ->  b - a > 0
    sympy.LessThan: ("nonneg", 1),
    sympy.StrictGreaterThan: ("pos", -1),  # a > b  ->  a - b > 0
    sympy.GreaterThan: ("nonneg", -1),
}


def _canonical_relation(rel: Relational) -> tuple[str, sympy.Expr] | None:
    for cls, (op, sign) in _CANONICAL.items():
        if isinstance(rel, cls):
            lhs, rhs = rel.lhs, rel.rhs
            return op, (rhs - lhs) if sign == 1 and op in ("pos", "nonneg") else (lhs - rhs)
    return None


def relations_equal(a: Relational, b: Relational) -> bool:
    ca, cb = _canonical_relation(a), _canonical_relation(b)
    if ca is None or cb is None or ca[0] != cb[0]:
        return False
    return _ratio_constant(ca[1], cb[1], positive=ca[0] in ("pos", "nonneg"))


def exprs_equal(a: Any, b: Any) -> bool:
    """Two parsed sympy objects (rungs 3-8 of the module docstring)."""
    if a == b:
        return True
    if isinstance(a, sympy.MatrixExpr) or isinstance(b, sympy.MatrixExpr):
        # a sum or product of matrices ("A + B") is the matrix it evaluates to
        a = a.doit() if isinstance(a, sympy.MatrixExpr) else a
        b = b.doit() if isinstance(b, sympy.MatrixExpr) else b
    if isinstance(a, Relational) or isinstance(b, Relational):
        return isinstance(a, Relational) and isinstance(b, Relational) and relations_equal(a, b)
    if isinstance(a, sympy.MatrixBase) or isinstance(b, sympy.MatrixBase):
        if not (isinstance(a, sympy.MatrixBase) and isinstance(b, sympy.MatrixBase)) or a.shape != b.shape:
            return False
        return all(exprs_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, sympy.Tuple) and isinstance(b, sympy.Tuple):
        return len(a) == len(b) and all(exprs_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, sympy.Set) or isinstance(b, sympy.Set):
        if isinstance(a, sympy.FiniteSet) and isinstance(b, sympy.FiniteSet) and len(a) == len(b):
            rest = list(b.args)
            for x in a.args:
                hit = next((k for k, y in enumerate(rest) if exprs_equal(x, y)), None)
                if hit is None:
                    return False
                rest.pop(hit)
            return True
        return False
    if not (isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr)):
        return False
    if not a.free_symbols and not b.free_symbols:
        decided = numeric_equal(a, b)
        if decided is not None:
            return decided
    elif a.free_symbols or b.free_symbols:
        decided = points_equal(a, b)
        if decided is not None:
            return decided
    return bool(sympy.simplify(a - b) == 0)


def _parsed(text: str) -> Any:
    value = parse_latex(text)
    if isinstance(value, _TooLargeParse):
        raise TooLarge(value.message)
    if isinstance(value, _ParseFailed):
        _state.parse_failed = value.message
        return None
    return value


def sympy_atom_equal(gold: str, pred: str, relation: bool = False) -> bool:
    """Compare two atom texts (see the module docstring). Never raises :class:`Undecided`; raises
    :class:`TooLarge` for an answer over the size cap."""
    try:
        return fast_atom_equal(gold, pred, relation)
    except Undecided:
        pass
    a, b = _parsed(gold), _parsed(pred)
    if a is None or b is None:
        return False
    if exprs_equal(a, b):
        return True
    if not relation and _rounds(a, pred):
        return True
    return relation and isinstance(a, Relational) and isinstance(b, Relational) and _same_solution_set(a, b)


def _rounds(gold: Any, pred_text: str) -> bool:
    """A predicted plain decimal that is the exact constant ``gold`` rounded at the precision
    written (``2.6667`` for ``\\frac{8}{3}``, ``1.41`` for ``\\sqrt{2}``; see
    :func:`~prm_selfreward.grading.numbers.rounding_unit`)."""
    unit = rounding_unit(pred_text)
    if unit is None or not isinstance(gold, sympy.Expr) or gold.free_symbols or _is_approx(gold):
        return False
    value = _evaluate(gold, 30)
    if value is None or not value.is_real:
        return False
    pred = sympy.Rational(compact(pred_text))
    return bool(abs(value - pred) <= sympy.Rational(unit.numerator, unit.denominator))


def _one_unknown(rel: Any) -> sympy.Symbol | None:
    if not isinstance(rel, Relational) or isinstance(rel, sympy.Eq):
        return None
    symbols = rel.free_symbols
    return next(iter(symbols)) if len(symbols) == 1 else None


def _same_solution_set(a: Relational, b: Relational) -> bool:
    """Two inequalities in the same one unknown with the same real solutions (``x^2 < 4`` and
    ``|x| < 2``)."""
    x, y = _one_unknown(a), _one_unknown(b)
    if x is None or x != y:
        return False
    try:
        return _sets_equal(sympy.solveset(a, x, sympy.S.Reals), sympy.solveset(b, x, sympy.S.Reals))
    except Exception:
        return False


def _sets_equal(a: Any, b: Any) -> bool:
    if a == b:
        return True
    try:
        return bool(sympy.Complement(a, b) == sympy.S.EmptySet and sympy.Complement(b, a) == sympy.S.EmptySet)
    except Exception:
        return False


def _end(atom: Atom) -> Any:
    value = _parsed(atom.text)
    if value is None or not isinstance(value, sympy.Expr) or value.free_symbols:
        raise ValueError(atom.text)
    return value


def _as_set(shape: Shape) -> Any:
    """The real set an interval, a union of intervals or a list of intervals stands for."""
    if isinstance(shape, Interval):
        return sympy.Interval(_end(shape.lo), _end(shape.hi), not shape.left_closed, not shape.right_closed)
    if isinstance(shape, Union) or (isinstance(shape, Seq) and shape.kind == "list"):
        parts = shape.parts if isinstance(shape, Union) else shape.items
        return sympy.Union(*(_as_set(p) for p in parts))
    raise ValueError(type(shape).__name__)


class SympyComparator(Comparator):
    """Rung 3: atoms through latex2sympy2_extended and sympy."""

    def atom(self, gold: str, pred: str) -> bool:
        return sympy_atom_equal(gold, pred, False)

    def relation(self, gold: str, pred: str) -> bool:
        return sympy_atom_equal(gold, pred, True)

    def solution_set(self, relation: str, shape: Shape, relation_is_gold: bool) -> bool:
        rel = _parsed(relation)
        x = _one_unknown(rel)
        if x is None:
            return False
        try:
            target = _as_set(shape)
        except (ValueError, TypeError):
            return False
        try:
            return _sets_equal(sympy.solveset(rel, x, sympy.S.Reals), target)
        except Exception:
            return False


SYMPY = SympyComparator()


def compare_normalized(golds: tuple[str, ...], pred: str) -> tuple[bool, str, str]:
    """The job a worker runs: ``(equal, reason, detail)`` for normalised gold(s) and prediction."""
    _state.parse_failed = None
    try:
        equal = shapes_equal(gold_shape(golds), parse_shape(pred), SYMPY)
    except Undecided:  # a shape pairing with no sympy meaning (an equation whose value is a list)
        equal = False
    except TooLarge as exc:
        return False, "timeout", str(exc)
    if equal:
        return True, "equal", "sympy"
    if _state.parse_failed:
        return False, "parse_error", _state.parse_failed
    return False, "not_equal", "sympy"


_WARM_UP = [
    ("\\frac{1}{\\sqrt{2}}", "\\sqrt{2}/2"),
    ("\\frac{\\sqrt{3}}{2}", "0.8660254"),
    ("2\\pi", "\\frac{4\\pi}{2}"),
    ("x^2+2x+1", "(x+1)^2"),
    ("\\frac{3x}{2}", "1.5x"),
    ("\\sin^2 x + \\cos^2 x", "1"),
    ("e^{-1}", "\\frac{1}{e}"),
    ("\\log_{10} 2", "\\ln 2"),
    ("1+2i", "2i+1"),
    ("y=2x+1", "2x-y+1=0"),
    ("(\\sqrt{2}, 3)", "(2^{1/2}, 3)"),
    ("\\begin{pmatrix} \\frac{1}{2} \\\\ 1 \\end{pmatrix}", "\\begin{pmatrix} 0.5 \\\\ 1 \\end{pmatrix}"),
    ("\\binom{5}{2}", "\\frac{5!}{2!3!}"),
    ("\\sqrt[3]{2}", "2^{1/3}"),
]


def warm_up(stop: Callable[[], bool] = lambda: False) -> None:
    """Compare a spread of answers so the parser's tables and sympy's lazily built machinery exist
    before real jobs (a cold first comparison costs ~0.4 s of CPU). Stops early when ``stop()``."""
    for gold, pred in _WARM_UP:
        if stop():
            return
        compare_normalized((gold,), pred)
