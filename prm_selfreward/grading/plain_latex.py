"""A small reader for plain LaTeX expressions, in front of latex2sympy2_extended's ANTLR parser.

latex2sympy2_extended parses every answer with an ANTLR grammar that costs 20-40 ms for a short
polynomial (95% of the sympy rung's time on expressions). Most answers need only a small subset of
LaTeX, which this module reads directly into the sympy tree latex2sympy would build (plain
``Symbol``s, ``pi``, integers, ``Pow`` / ``Mul`` / ``Add`` left unevaluated so that the size cap can
measure them first). Anything outside the subset returns None and goes to latex2sympy, so the two
never disagree on what they both read (tests/test_grading_equivalence.py checks them against each
other on the benchmark golds).

The subset (TeX's own rules for ``^``: one token or a brace group):

- integers; single letters other than ``e`` and ``i`` (exp and the imaginary unit are left to
  latex2sympy), optionally with a one-character subscript (``x_1``), named in lower case as
  latex2sympy names them (``R`` is ``r``), never followed by ``(`` (``f(x)`` may be a function);
  ``\\pi``;
- ``+``, ``-`` (also unary), ``\\cdot``, ``\\times``, ``*``, and juxtaposition as multiplication
  (never of two numbers, ``2 3``, nor of a number and a fraction, ``3\\frac{1}{8}``: a mixed number);
- ``^`` with a digit, a letter or a brace group; ``\\frac{a}{b}``, ``\\sqrt{a}``, ``\\sqrt[n]{a}`` with
  an integer index; parentheses and brace groups.

No decimals (their precision semantics stay latex2sympy's), no ``/``, functions, relations, commas,
factorials or absolute values.
"""

from __future__ import annotations

import re
from typing import Any

import sympy

_TOKEN_RE = re.compile(r"\s*(?:(\d+)|\\(cdot|times|frac|sqrt|pi)(?![A-Za-z])|([A-Za-z])|([-+*^_(){}\[\]]))")
_MAX_LENGTH = 300


class _Refused(Exception):
    """The text is outside the subset: latex2sympy reads it."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise _Refused
        number, command, letter, symbol = match.groups()
        if number is not None:
            out.append(("num", number))
        elif command is not None:
            out.append(("cmd", command))
        elif letter is not None:
            out.append(("letter", letter))
        else:
            out.append(("sym", symbol))
        pos = match.end()
    return out


class _Reader:
    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            raise _Refused
        self.pos += 1
        return token[1]

    def at(self, kind: str, value: str) -> bool:
        return self.peek() == (kind, value)

    def expr(self) -> Any:
        terms = [self.term()]
        while self.at("sym", "+") or self.at("sym", "-"):
            sign = self.take("sym")
            term = self.term()
            terms.append(term if sign == "+" else sympy.Mul(-1, term, evaluate=False))
        return terms[0] if len(terms) == 1 else sympy.Add(*terms, evaluate=False)

    def term(self) -> Any:
        factors = [self.unary()]
        while True:
            token = self.peek()
            if token is None:
                break
            if token in (("cmd", "cdot"), ("cmd", "times"), ("sym", "*")):
                self.pos += 1
                factors.append(self.unary())
                continue
            if token[0] in ("num", "letter") or token in (("sym", "("), ("sym", "{"), ("cmd", "frac"),
                                                        ("cmd", "sqrt"), ("cmd", "pi")):
                if token[0] == "num" and self.tokens[self.pos - 1][0] == "num":
                    raise _Refused  # "2 3": TeX would print 23
                if token == ("cmd", "frac") and self.tokens[self.pos - 1][0] == "num":
                    raise _Refused  # "3\\frac{1}{8}": a mixed number, latex2sympy adds
                factors.append(self.power())
                continue
            break
        return factors[0] if len(factors) == 1 else sympy.Mul(*factors, evaluate=False)

    def unary(self) -> Any:
        if self.at("sym", "-"):
            self.pos += 1
            return sympy.Mul(-1, self.unary(), evaluate=False)
        if self.at("sym", "+"):
            self.pos += 1
            return self.unary()
        return self.power()

    def power(self) -> Any:
        base = self.atom()
        if self.at("sym", "^"):
            self.pos += 1
            token = self.peek()
            if token == ("sym", "{"):
                exponent = self.group()
            elif token is not None and token[0] == "num" and len(token[1]) == 1:
                self.pos += 1
                exponent = sympy.Integer(token[1])
            elif token is not None and token[0] == "letter":
                exponent = self.atom()
            else:
                raise _Refused  # 2^-1, 2^12 without braces: left to latex2sympy
            if self.at("sym", "^"):
                raise _Refused  # a^b^c
            return sympy.Pow(base, exponent, evaluate=False)
        return base

    def group(self) -> Any:
        self.take("sym", "{")
        inner = self.expr()
        self.take("sym", "}")
        return inner

    def atom(self) -> Any:
        token = self.peek()
        if token is None:
            raise _Refused
        kind, value = token
        if kind == "num":
            self.pos += 1
            return sympy.Integer(value)
        if kind == "letter":
            if value in ("e", "i", "E", "I"):
                raise _Refused
            self.pos += 1
            if self.at("sym", "("):
                raise _Refused  # f(x): latex2sympy reads a function application
            if self.at("sym", "_"):
                self.pos += 1
                sub = self.peek()
                if sub is None or sub[0] not in ("num", "letter") or len(sub[1]) != 1:
                    raise _Refused
                self.pos += 1
                return sympy.Symbol(f"{value.lower()}_{sub[1]}")
            return sympy.Symbol(value.lower())  # latex2sympy's names are lower case (R is r)
        if token == ("cmd", "pi"):
            self.pos += 1
            return sympy.pi
        if token == ("sym", "("):
            self.pos += 1
            inner = self.expr()
            self.take("sym", ")")
            return inner
        if token == ("sym", "{"):
            return self.group()
        if token == ("cmd", "frac"):
            self.pos += 1
            numerator, denominator = self.group(), self.group()
            if numerator == 1:
                return sympy.Pow(denominator, -1, evaluate=False)
            return sympy.Mul(numerator, sympy.Pow(denominator, -1, evaluate=False), evaluate=False)
        if token == ("cmd", "sqrt"):
            self.pos += 1
            index = 2
            if self.at("sym", "["):
                self.pos += 1
                index = int(self.take("num"))
                self.take("sym", "]")
                if index < 2:
                    raise _Refused
            return sympy.Pow(self.group(), sympy.Rational(1, index), evaluate=False)
        raise _Refused


def read_plain_latex(text: str) -> Any | None:
    """The sympy tree of ``text`` when it is in the subset above, else None (never raises)."""
    if len(text) > _MAX_LENGTH or not text.strip():
        return None
    try:
        reader = _Reader(_tokens(text))
        value = reader.expr()
        if reader.peek() is not None:
            return None
        return value
    except (_Refused, RecursionError, ValueError):
        return None
