"""The project's one reader of plain numbers (the checker's fast rung, gold conventions, and the
seed-data builders all use it).

:func:`parse_number` reads integers, decimals, ``a/b``, ``\\frac{a}{b}``, mixed numbers (``2\\frac{1}{2}``)
and ``1e-6`` as an exact :class:`~fractions.Fraction` plus a flag saying whether the value was written
approximately (a decimal point or an exponent). It never evaluates powers and refuses numbers longer
than :data:`MAX_DIGITS` characters, so it is safe on hostile text.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

#: Relative tolerance for a value written with a decimal point (see docs/checker.md, "Numbers").
REL_TOL = 1e-6
#: Longer numbers are left to sympy (its worker has a time limit; this process has none).
MAX_DIGITS = 4000

_WS_RE = re.compile(r"\s+")
_INT = r"[+-]?\d+"
_DEC = r"[+-]?(?:\d+\.\d*|\.\d+)"
_NUM = rf"(?:{_DEC}|{_INT})"
_NUMBER_RES = [
    ("plain", re.compile(rf"^({_NUM})(?:[eE]([+-]?\d{{1,3}}))?$")),
    ("slash", re.compile(rf"^({_NUM})/({_NUM})$")),
    ("frac", re.compile(rf"^([+-]?)\\frac\{{({_NUM})\}}\{{({_NUM})\}}$")),
    ("mixed", re.compile(r"^([+-]?)(\d+)\\frac\{(\d+)\}\{(\d+)\}$")),
]


def parse_number(text: str) -> tuple[Fraction, bool] | None:
    """``(value, approximate)`` for a plain number written in ``text`` (whitespace ignored), or None.

    ``approximate`` is True when a decimal point (or exponent) appears: such values compare with
    :data:`REL_TOL`. Integers and fractions of integers are exact. Never evaluates powers.
    """
    text = _WS_RE.sub("", text)
    while text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if not text or len(text) > MAX_DIGITS or not any(c.isdigit() for c in text):
        return None
    for kind, regex in _NUMBER_RES:
        match = regex.match(text)
        if not match:
            continue
        try:
            if kind == "plain":
                value = Fraction(match.group(1))
                approx = "." in match.group(1)
                if match.group(2):
                    value *= Fraction(10) ** int(match.group(2))
                    approx = True
                return value, approx
            if kind == "slash":
                den = Fraction(match.group(2))
                if den == 0:
                    return None
                return Fraction(match.group(1)) / den, "." in text
            if kind == "frac":
                den = Fraction(match.group(3))
                if den == 0:
                    return None
                value = Fraction(match.group(2)) / den
                return (-value if match.group(1) == "-" else value), "." in text
            sign, whole, num, den = match.groups()
            if int(den) == 0:
                return None
            value = int(whole) + Fraction(int(num), int(den))
            return (-value if sign == "-" else value), False
        except (ValueError, ZeroDivisionError):
            return None
    return None


#: A decimal rounds an exact value only when it is written with at least this many significant
#: digits (``0.33`` for 1/3 is a rounding; ``0.3`` is not).
MIN_ROUNDED_DIGITS = 2
_DECIMAL_TEXT_RE = re.compile(r"^[+-]?(\d*)\.(\d+)$")


def rounding_unit(text: str) -> Fraction | None:
    """Half a unit in the last written place of a plain decimal with at least
    :data:`MIN_ROUNDED_DIGITS` significant digits (``0.33`` -> 1/200, ``2.6667`` -> 1/20000), or None
    for anything else (integers, fractions, exponents, too few digits)."""
    match = _DECIMAL_TEXT_RE.match(_WS_RE.sub("", text))
    if not match:
        return None
    digits = (match.group(1) + match.group(2)).lstrip("0")
    if len(digits) < MIN_ROUNDED_DIGITS or len(match.group(2)) > MAX_DIGITS:
        return None
    return Fraction(1, 2 * 10 ** len(match.group(2)))


def rounds_to(exact: Fraction, text: str) -> bool:
    """True when the decimal ``text`` is ``exact`` rounded at the precision it is written with
    (:func:`rounding_unit`): ``0.33`` and ``0.3333`` round 1/3, ``0.34`` and ``0.3`` do not."""
    unit = rounding_unit(text)
    if unit is None:
        return False
    parsed = parse_number(text)
    return parsed is not None and abs(exact - parsed[0]) <= unit


def exact_value(text: str, thousands: bool = True) -> Fraction | None:
    """The exact value of a number written in plain text (``"1,250"``, ``"-3.5"``, ``"7"``, ``"3/4"``;
    no LaTeX), commas dropped when ``thousands``; None otherwise (for the seed-data builders)."""
    if "\\" in text:
        return None
    parsed = parse_number(text.replace(",", "") if thousands else text)
    return parsed[0] if parsed is not None else None


def numbers_equal(a: tuple[Fraction, bool], b: tuple[Fraction, bool], rel_tol: float = REL_TOL) -> bool:
    """Exact equality for exact values; relative tolerance when either side is approximate."""
    (x, x_approx), (y, y_approx) = a, b
    if x == y:
        return True
    if not (x_approx or y_approx):
        return False
    return abs(x - y) <= Fraction(rel_tol) * max(abs(x), abs(y))


def number_text(value: Any) -> str:
    """A gold value as answer text: an integral float (AMC's ``27.0``) as an integer, other numbers
    with ``str``, strings stripped of surrounding whitespace."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value.strip() if isinstance(value, str) else str(value)
