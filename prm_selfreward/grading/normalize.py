"""String normalisation of an answer, and its *shape* (tuple, set, interval, equation ...).

Pure string work, no sympy: it runs in the calling process and is bounded by the input length (no
regex with nested quantifiers). LaTeX *expressions* are never parsed here; they stay strings
(:class:`Atom`) that the equivalence ladder compares as numbers or hands to latex2sympy2_extended.
What happens here is the bookkeeping around them, where our policy lives:

- spacing, ``\\left``/``\\right``, ``$``, ``\\dfrac``/``\\tfrac``, ``\\frac34``, ``\\sqrt3``;
- thousands separators (``1,000``, ``1{,}000``, ``75,\\!075``, ``1\\,000``): a whole item matching
  ``d{1,3}(,ddd)+`` is one number, so ``1,000`` is 1000 while ``1, 000`` and ``2500,7500`` are lists;
- percent: ``\\%`` / ``%`` / "percent" are a unit and are stripped. ``50\\%`` equals ``50``, not ``0.5``
  (no silent x100 leniency either way);
- degrees (``^\\circ``, ``°``, ``\\degree``) are a unit and are stripped: ``30^\\circ`` equals ``30``, not
  ``\\pi/6``;
- units: a trailing ``\\text{...}``/``\\mbox{...}`` after math, a trailing known unit (``cm^2``, ``km/h``),
  trailing plain words after a number (``18 dollars``), a leading ``\\$``; the caller's ``unit``
  (OlympiadBench) is stripped from the end;
- ``\\text{and}``, ``\\text{or}``, " and ", " or " between answers become commas;
- relations in any spelling become one (``\\geqslant``, ``\\geq``, ``>=`` ... ``\\ge``; ``\\lt`` ``<``;
  ``\\ne``, `` != ``, ``\\not=`` ``\\neq``); currency signs and commands (``€``, ``\\euro``, ``USD``) go;
  ``3{,}14`` is a decimal comma; ``0.\\overline{3}`` is read exactly as ``\\frac{1}{3}``.

Shapes: top-level commas make an unordered :class:`Seq` ``list`` (a run of assignments to different
names, ``p=5, q=2``, is one ``tuple`` carrying the names); ``(a, b)`` is an ordered ``tuple``;
``11:21`` a ``ratio``; mixed brackets around other than two ends (``[6,31,-1)``) are :class:`Text`;
``\\{a, b\\}`` a ``set``; ``[a, b)`` etc. an :class:`Interval` (``(a, b)`` with an infinite end too);
``\\cup`` a :class:`Union`; ``pmatrix``/``bmatrix`` a :class:`Matrix`; ``a \\pm b`` the set
``{a+b, a-b}``; ``x = 5`` an :class:`Equation` whose left side is a plain name (an assignment);
``a < x \\le b`` / ``x > 2`` / ``x \\in [2, 3]`` intervals; ``\\text{even}`` or several words :class:`Text`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from .extract import matching_brace, unescape_latex

# ---------------------------------------------------------------------------------------------------
# Shapes


@dataclass(frozen=True)
class Atom:
    """One expression, as normalised LaTeX text (compared as a number or via sympy)."""

    text: str


@dataclass(frozen=True)
class Text:
    """Words (``\\text{even}``, "Quadrant I") or a multiple-choice letter: compared as words."""

    text: str


@dataclass(frozen=True)
class Seq:
    """``tuple``: ordered (points, vectors); ``ratio`` (``11:21``): ordered, equal only to a ratio;
    ``set`` and ``list`` (bare commas): unordered multisets."""

    kind: str
    items: tuple[Shape, ...]
    #: For a tuple of assignments (``p=5, q=2``, ``(p,q)=(5,2)``): the names, in order.
    names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Interval:
    left_closed: bool
    lo: Atom
    hi: Atom
    right_closed: bool


@dataclass(frozen=True)
class Union:
    parts: tuple[Shape, ...]


@dataclass(frozen=True)
class Matrix:
    rows: tuple[tuple[Atom, ...], ...]


@dataclass(frozen=True)
class Equation:
    """``lhs = rhs``. ``name`` is True when ``lhs`` is a plain name (``x``, ``f(x)``, ``a_1``): then the
    equation is an assignment and its value ``rhs`` can be compared with a bare answer."""

    lhs: str
    rhs: Shape
    name: bool


@dataclass(frozen=True)
class Relation:
    """Any other (in)equality, compared by sympy as a relation."""

    text: str


Shape = Atom | Text | Seq | Interval | Union | Matrix | Equation | Relation


# ---------------------------------------------------------------------------------------------------
# Normalisation

_UNICODE = {
    "\u2212": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u00d7": r"\times ",
    "\u22c5": r"\cdot ",
    "\u00b7": r"\cdot ",
    "\u00f7": r"\div ",
    "\u221a": r"\sqrt",
    "\u03c0": r"\pi ",
    "\u00b0": r"^\circ",
    "\u221e": r"\infty ",
    "\u2264": r"\le ",
    "\u2265": r"\ge ",
    "\u2260": r"\neq ",
    "\u00b1": r"\pm ",
    "\u222a": r"\cup ",
    "\u2229": r"\cap ",
    "\u2208": r"\in ",
    "\u2a7d": r"\le ",
    "\u2a7e": r"\ge ",
    "\u2026": r"\ldots ",
    "\u211d": r"\mathbb{R}",
    "\u00bd": r"\frac{1}{2}",
    "\u2153": r"\frac{1}{3}",
    "\u2154": r"\frac{2}{3}",
    "\u00bc": r"\frac{1}{4}",
    "\u00be": r"\frac{3}{4}",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u20ac": " ",  # currency signs are units: EUR, GBP, JPY/CNY, INR
    "\u00a3": " ",
    "\u00a5": " ",
    "\u20b9": " ",
    "\u00a0": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u2004": " ",
    "\u2005": " ",
    "\u2006": " ",
    "\u2007": " ",
    "\u2008": " ",
    "\u2009": " ",
    "\u200a": " ",
    "\u202f": " ",
    "\u205f": " ",
    "\u3000": " ",
    "\u200b": "",
    "\ufeff": "",
    "\uff0c": ",",
}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))

_WRAPPERS = [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")]
_SIZING_RE = re.compile(r"\\(?:left|right|[bB]igg?[lrm]?)(?![A-Za-z])\s*(\.|\\?[()\[\]{}|]|\\[a-zA-Z]+)?")
_DROP_RE = re.compile(
    r"(?<!\\)\\(?:(?:displaystyle|textstyle|scriptstyle|mathstrut|limits|nolimits)(?![A-Za-z])|[!;:,>])"
)
_SPACE_CMD_RE = re.compile(r"\\q?quad(?![A-Za-z])|~|(?<!\\)\\ ")
_FRAC_ALIAS_RE = re.compile(r"\\[dt]frac(?![A-Za-z])|\\cfrac(?![A-Za-z])")
_BINOM_ALIAS_RE = re.compile(r"\\[dt]binom(?![A-Za-z])")
_THOUSANDS_CMD_RE = re.compile(r"(\d)(?:\{,\}|,\\!\s*|\\,(?=\d{3}(?!\d)))(?=\d{3}(?!\d))")
_DEGREE_RE = re.compile(
    r"\^\s*\{?\s*\\circ\s*\}?(?:\s*[CF](?![A-Za-z]))?|\\degree(?![A-Za-z])|(?<=[\d}])\s*\\circ(?![A-Za-z])"
)
_PERCENT_RE = re.compile(
    r"\\%|%|\s*\\text\{\s*(?:percent|percentage|pct)\s*\}|\s+(?:percent|percentage|per\s+cent|pct)\b"
)
_TEXT_CMD_RE = re.compile(
    r"\\(?:textbf|textit|textrm|textsf|texttt|textnormal|mbox|hbox|mathrm|mathit|text)\s*\{"
)
_CHOICE_VALUE_RE = re.compile(
    r"^(?:(?i:option|choice|answer)\s*)?\(\s*([A-E])\s*\)\s+\S.*$|^(?i:option|choice)\s*\(?\s*([A-E])\s*\)?$",
    re.DOTALL,
)
_CHOICE_RE = re.compile(
    r"^[(\[]?\s*(?:\\text\{\s*\(?\s*([A-Ea-e])\s*\)?\s*\}|([A-E]))\s*[)\]]?$"
)
# 0.\overline{3}, 1.2\overline{34}: a repeating decimal, read exactly.
_REPEATING_RE = re.compile(r"(?<![\d.])(\d*)\.(\d*)\\overline\s*\{(\d{1,20})\}")


def _repeating(match: re.Match[str]) -> str:
    whole, fixed, period = match.group(1) or "0", match.group(2), match.group(3)
    numerator = int(whole + fixed + period) - int(whole + fixed)
    denominator = 10 ** len(fixed) * (10 ** len(period) - 1)
    value = Fraction(numerator, denominator)
    if value.denominator == 1:
        return str(value.numerator)
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


# Known units, stripped from the end even when glued to the number (22.1cm^2); single letters only
# after a space (2m is 2*m, "2 m" is two metres).
_LONG_UNITS = (
    r"(?:square\s+|sq\.?\s+|cubic\s+)?(?:cm|mm|km|dm|kg|mg|ml|sec|secs|min|mins|hr|hrs|mph|kmph|"
    r"km/h|m/s|cm/s|ft|feet|foot|inch|inches|yd|yards?|miles?|meters?|metres?|centimeters?|kilometers?|"
    r"units?|degrees?|radians?|dollars?|cents?|hours?|minutes?|seconds?|days?|weeks?|months?|years?|"
    r"pounds?|lbs?|ounces?|oz|grams?|kilograms?|liters?|litres?|gallons?|people|persons?)"
)
_UNIT_TAIL_RE = re.compile(
    r"(?:(?<=[\d}).\s])\s*" + _LONG_UNITS + r"|(?<=\s)(?:m|s|g|h|l|in))(?:\s*\^\s*\{?\s*[23]\s*\}?)?\s*$"
)
_WORD_TAIL_RE = re.compile(r"^(.*?[\d}])\s+[A-Za-z][A-Za-z'\-]+(?:\s+[A-Za-z][A-Za-z'\-]*)*\s*$")
_MATH_WORDS = {"pi", "sqrt", "sin", "cos", "tan", "log", "ln", "exp", "i", "e", "and", "or", "mod", "pmod"}
_AND_OR_RE = re.compile(
    r"\s*\\text\{\s*(?:and|or|,)\s*\}\s*|\s+(?:and|or)\s+|\s*\\(?:quad|qquad)\s*(?:and|or)?\s*"
)
# Relations in any spelling become one: \le \ge \neq < > (ASCII != only with a space around it:
# "n!=120" is a factorial).
_RELATION_ALIASES = {
    "leqslant": "\\le ", "leqq": "\\le ", "leq": "\\le ", "le": "\\le ",
    "geqslant": "\\ge ", "geqq": "\\ge ", "geq": "\\ge ", "ge": "\\ge ",
    "neq": "\\neq ", "ne": "\\neq ", "lt": "<", "gt": ">", "ngtr": "\\le ", "nless": "\\ge ",
    " != ": " \\neq ", "\\not=": "\\neq ", "\\not =": "\\neq ",
}
_RELATION_ALIAS_RE = re.compile(
    r"\\(leqslant|leqq|leq|le|geqslant|geqq|geq|ge|neq|ne|lt|gt|ngtr|nless)(?![A-Za-z])| != |\\not ?="
)
_CURRENCY_CMD_RE = re.compile(
    r"\\(?:euro|texteuro|pounds|textsterling|yen|textyen)(?![A-Za-z])|\bUSD\b|\bEUR\b|\bRs\.?(?=\s*\d)"
)
# {,} is the LaTeX idiom for a comma inside a number: before three digits a thousands separator
# (handled above), before any other count of digits a decimal comma (3{,}14).
_DECIMAL_COMMA_RE = re.compile(r"(\d)\{,\}(\d+)")
_BRACELESS_RE = re.compile(r"\\(frac|binom|sqrt)(?![A-Za-z])")
_WS_RE = re.compile(r"\s+")




def _unwrap_boxes(text: str) -> str:
    # An answer that is itself a box (\boxed{\boxed{5}}, or gold written as \boxed{5}): the content.
    for _ in range(5):
        match = re.match(r"^\s*\\(?:boxed|fbox)\s*\{", text)
        if not match:
            break
        end = matching_brace(text, match.end() - 1)
        if end != len(text.rstrip()) - 1:
            break
        text = text[match.end() : end]
    return text


def _strip_wrappers(text: str) -> str:
    changed = True
    while changed:
        changed = False
        text = text.strip()
        for left, right in _WRAPPERS:
            if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
                inner = text[len(left) : -len(right)]
                if left == "$" and "$" in inner:  # "$a$ and $b$" is not one span
                    continue
                text, changed = inner, True
                break
    return text


def _handle_text_commands(text: str) -> str:
    """``\\text{...}`` and friends: keep a whole-answer text as ``\\text{...}`` (it is a word answer),
    drop trailing ones after math (units), unwrap the rest."""
    stripped = text.strip()
    match = _TEXT_CMD_RE.match(stripped)
    if match and matching_brace(stripped, match.end() - 1) == len(stripped) - 1:
        inner = stripped[match.end() : -1].strip()
        # \text{(C)}, \text{5 cm}: unwrap (choice letter; math with a unit), else a word answer.
        if re.fullmatch(r"\(?[A-Ea-e]\)?", inner) or re.search(r"\d", inner):
            return inner
        return "\\text{" + inner + "}"
    for _ in range(20):
        match = _TEXT_CMD_RE.search(text)
        if not match:
            break
        end = matching_brace(text, match.end() - 1)
        if end < 0:
            break
        inner = text[match.end() : end]
        before, after = text[: match.start()], text[end + 1 :]
        after_stripped = re.sub(r"^\s*\^\s*\{?\s*[23]\s*\}?", "", after)  # \text{cm}^2
        if before.strip() and not after_stripped.strip() and re.search(r"[A-Za-z]", inner):
            text = before  # trailing unit / noun after the math
        elif re.fullmatch(r"\s*(?:and|or|,)\s*", inner):
            text = before + ", " + after
        else:
            text = before + " " + inner + " " + after
    return text


def _tex_argument(text: str, i: int) -> tuple[str, int] | None:
    """The TeX argument starting at ``text[i]`` (spaces skipped): a brace group, a command or one
    character; ``(group, end)`` with the group braced, or None."""
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text) or text[i] in "}^_&":
        return None
    if text[i] == "{":
        end = matching_brace(text, i)
        return (text[i : end + 1], end + 1) if end > 0 else None
    if text[i] == "\\":
        match = re.match(r"\\(?:[A-Za-z]+|.)", text[i:])
        assert match is not None
        return "{" + match.group(0) + "}", i + match.end()
    return "{" + text[i] + "}", i + 1


def _fix_malformed(text: str) -> str:
    # TeX's braceless arguments: \frac34 -> \frac{3}{4}, \frac \pi4, \frac{3}4, \sqrt3 -> \sqrt{3}
    if not _BRACELESS_RE.search(text):
        return text
    out: list[str] = []
    pos = 0
    for match in _BRACELESS_RE.finditer(text):
        if match.start() < pos:
            continue
        out.append(text[pos : match.end()])
        pos = match.end()
        arity = 1 if match.group(1) == "sqrt" else 2
        if arity == 1 and text[pos : pos + 1] == "[":
            continue  # \sqrt[3]{x}: leave the index form alone
        args = []
        i = pos
        for _ in range(arity):
            arg = _tex_argument(text, i)
            if arg is None:
                break
            group = arg[0]
            args.append("{" + _fix_malformed(group[1:-1]) + "}")  # nested: \frac{\frac12}{3}
            i = arg[1]
        if len(args) == arity:
            out.append("".join(args))
            pos = i
    out.append(text[pos:])
    return "".join(out)


def _strip_unit(text: str, unit: str | None) -> str:
    if not unit:
        return text
    norm_unit = _basic(unit)
    norm_unit = _handle_text_commands(norm_unit).strip()
    norm_unit = re.sub(r"^\\text\{(.*)\}$", r"\1", norm_unit).strip()
    if not norm_unit:
        return text
    compact_unit = _WS_RE.sub("", norm_unit)
    compact = _WS_RE.sub("", text)
    if compact.endswith(compact_unit) and len(compact) > len(compact_unit):
        # Cut the same number of non-space characters from the end of the spaced text.
        keep = len(compact) - len(compact_unit)
        seen = 0
        for i, ch in enumerate(text):
            if not ch.isspace():
                seen += 1
            if seen == keep:
                return text[: i + 1]
    return text


# A square or cubic unit glued to a number with a superscript sign (1,000.99m², 5cm³): a unit,
# although 5m^2 written with a caret stays a monomial.
_GLUED_SQUARE_UNIT_RE = re.compile(r"(?<=\d)\s*(?:[kcdm]?m|ft|in)[\u00b2\u00b3]")


def _basic(text: str) -> str:
    text = unescape_latex(text)
    text = _GLUED_SQUARE_UNIT_RE.sub(" ", text)
    text = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], text)
    text = _unwrap_boxes(text.strip())
    text = text.replace("\\$", " ").replace("\\displaystyle", " ")
    text = _strip_wrappers(text)
    text = text.replace("$", " ")
    text = _THOUSANDS_CMD_RE.sub(r"\1", text)
    text = _SIZING_RE.sub(lambda m: "" if m.group(1) in (None, ".") else m.group(1), text)
    text = _DROP_RE.sub(" ", text)
    text = _SPACE_CMD_RE.sub(" ", text)
    text = _FRAC_ALIAS_RE.sub(r"\\frac", text)
    text = _BINOM_ALIAS_RE.sub(r"\\binom", text)
    text = text.replace("\\lbrace", "\\{").replace("\\rbrace", "\\}").replace("\\emptyset", "\\{\\}")
    text = text.replace("\\varnothing", "\\{\\}")
    text = _RELATION_ALIAS_RE.sub(lambda m: _RELATION_ALIASES[m.group(1) or m.group(0)], text)
    text = _CURRENCY_CMD_RE.sub(" ", text)
    text = _DECIMAL_COMMA_RE.sub(r"\1.\2", text)
    text = _REPEATING_RE.sub(_repeating, text)
    text = text.replace("\\dots", "\\ldots").replace("\\cdots", "\\ldots")
    text = text.replace("\\langle", "(").replace("\\rangle", ")")  # a vector <a, b> is the tuple (a, b)
    return text


_MIXED_NUMBER_RE = re.compile(r"([+-]?)(\d{1,9}) (\d{1,9})/(\d{1,9})")
_ELLIPSIS_ITEM_RE = re.compile(r",\s*(?:\.\s*\.\s*\.|\\(?:ldots|dots|cdots|dotsc)(?![A-Za-z]))\s*[.,;]?\s*$")


@lru_cache(maxsize=65536)
def normalize_answer(text: str, unit: str | None = None) -> str:
    """The answer text with our normalisation policy applied (see the module docstring); whitespace
    is collapsed to single spaces. Idempotent; never raises."""
    text = _basic(text)
    text = _DEGREE_RE.sub(" ", text)
    text = _PERCENT_RE.sub(" ", text)
    text = _handle_text_commands(text)
    text = _strip_unit(text, unit)
    text = _AND_OR_RE.sub(", ", text)
    text = _fix_malformed(text)
    text = _WS_RE.sub(" ", text).strip()
    # "1, 2, 3, ..." goes on: the ellipsis is an item, never stripped as trailing punctuation.
    text = _ELLIPSIS_ITEM_RE.sub(r", \\ldots", text)
    for _ in range(3):
        text = re.sub(r"^(?:=|:)\s*", "", text)
        text = re.sub(r"[\s.,;:]+$", "", text)
        before = text
        text = _UNIT_TAIL_RE.sub("", text).strip()
        match = _WORD_TAIL_RE.match(text)
        tail = text[len(match.group(1)) :].split() if match else []
        # Words, not a product of variables: "18 dollars" loses its noun, "3 xy" stays.
        if (
            tail
            and len(tail[0]) >= 3
            and re.search(r"[aeiouAEIOU]", tail[0])
            and not any(w.lower() in _MATH_WORDS for w in tail)
        ):
            text = match.group(1).strip()
        if text == before:
            break
    if re.fullmatch(r"-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?", text):  # 0,111 is a decimal comma
        text = text.replace(",", "")
    elif re.fullmatch(r"-?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?", text):  # 1 000 000: spaced thousands
        text = text.replace(" ", "")
    mixed = _MIXED_NUMBER_RE.fullmatch(text)
    if mixed:  # 4 4/9: a mixed number (a proper fraction after the whole part), read as 40/9
        sign, whole, num, den = mixed.groups()
        if 0 <= int(num) < int(den):
            text = f"{sign if sign == '-' else ''}{int(whole) * int(den) + int(num)}/{den}"
    return text


def compact(text: str) -> str:
    """Whitespace removed: the key of the string rung."""
    return _WS_RE.sub("", text)


# ---------------------------------------------------------------------------------------------------
# Shape parsing: bracket matching and top-level splitting only; expressions stay strings.

def _split_at_top_level(text: str, tokens: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Split ``text`` at the ``tokens`` (text, label) found outside any bracket: (parts, labels met).

    ``(``/``[`` and ``)``/``]`` count alike so that half-open intervals ``[1, 2)`` stay whole;
    ``\\{``/``\\}`` count through their braces. A token that is a LaTeX command (``\\le``) does not
    match the start of a longer command (``\\left``).
    """
    parts: list[str] = []
    labels: list[str] = []
    depth = 0
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "{}":
            depth += 1 if text[i + 1] == "{" else -1
            i += 2
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            for token, label in tokens:
                if text.startswith(token, i) and not (
                    token[0] == "\\" and text[i + len(token) : i + len(token) + 1].isalpha()
                ):
                    parts.append(text[start:i])
                    labels.append(label)
                    i += len(token)
                    start = i
                    break
            else:
                i += 1
            continue
        i += 1
    parts.append(text[start:])
    return parts, labels


def _split_top(text: str, separators: tuple[str, ...]) -> list[str]:
    """Split at separators outside any bracket (see :func:`_split_at_top_level`)."""
    return _split_at_top_level(text, tuple((sep, sep) for sep in separators))[0]


def _closing_at_end(text: str) -> bool:
    """True when the bracket opening ``text`` closes at its last character (any of ) ] matches ( [)."""
    depth = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "{}":
            depth += 1 if text[i + 1] == "{" else -1
            if depth == 0:
                return i + 1 == n - 1
            i += 2
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i == n - 1
        i += 1
    return False


_NAME_RE = re.compile(
    r"^(?:[A-Za-z]|\\[A-Za-z]+)(?:_(?:\{[^{}]*\}|[A-Za-z0-9]))?(?:'|\^\{?\\prime\}?)*(?:\([^()=]*\))?$"
    r"|^\\angle\s*[A-Za-z_{}0-9 ]+$|^[A-Z]{2,3}$|^\\overline\{[A-Z]+\}$"
)
_NOT_NAMES = {"\\pi", "\\infty", "e", "i", "\\sqrt", "\\frac", "\\text", "\\ldots"}
_INF_RE = re.compile(r"^[+-]?\\infty$|^[+-]?\\inf$|^[+-]?oo$")
_REL_OPS = [
    ("\\approx", "approx"),
    ("\\le", "le"),
    ("\\ge", "ge"),
    ("\\neq", "ne"),
    ("<=", "le"),
    (">=", "ge"),
    ("<", "lt"),
    (">", "gt"),
    ("=", "eq"),
]


_COMMAND_RE = re.compile(r"\\[A-Za-z]+")
_REALS_RE = re.compile(r"^(?:\\mathbb\s*\{?\s*R\s*\}?|\\R|\\text\{all real numbers\}|all real numbers)$")


def _is_constant(text: str) -> bool:
    """No letters outside LaTeX commands (``2\\sqrt{5}``, ``\\frac{\\pi}{2}``), and a digit or pi."""
    bare = _COMMAND_RE.sub(" ", text)
    return bool(text.strip()) and not re.search(r"[A-Za-z]", bare) and bool(re.search(r"[\d]|\\pi", text))


# A label names a quantity without computing one: no digits (outside subscripts), no + or -, no
# relation ("|AB|", "A:B", "\frac{NO}{BO}", "\angle ABC", "W(x)", "\zzz"); "5x - 7y + 4" and "x^2" are
# expressions, whose equation with a constant stays a relation.
_SUBSCRIPT_RE = re.compile(r"_(?:\{[^{}]*\}|[A-Za-z0-9])")
_NOT_LABEL_RE = re.compile(r"[\d+\-<>=]|\\(?:pm|mp|cdot|times|div|sqrt|sum|int|infty|pi)(?![A-Za-z])")


def is_label(text: str) -> bool:
    """True for the left side of a labelled value (see above) or a plain name."""
    text = text.strip()
    if is_name(text):
        return True
    bare = _SUBSCRIPT_RE.sub("", text)
    names_something = re.search(r"[A-Za-z]", _COMMAND_RE.sub("", bare)) or _COMMAND_RE.fullmatch(bare)
    return bool(names_something) and not _NOT_LABEL_RE.search(bare)


def is_name(text: str) -> bool:
    text = text.strip()
    return bool(_NAME_RE.match(text)) and text not in _NOT_NAMES


def _is_infinite(text: str) -> bool:
    return bool(_INF_RE.match(compact(text)))


def _split_relations(text: str) -> tuple[list[str], list[str]]:
    """Split ``text`` at top-level relation operators: (operands, ops)."""
    parts, ops = _split_at_top_level(text, _REL_OPS)
    return [part.strip() for part in parts], ops


def _interval_from_relations(operands: list[str], ops: list[str]) -> Interval | None:
    """``x > 2`` -> (2, oo); ``2 \\le x < 5`` -> [2, 5); ``5 > x`` -> (-oo, 5); None if not of that form."""
    inf, ninf = Atom("\\infty"), Atom("-\\infty")
    if len(ops) == 1 and ops[0] in ("lt", "le", "gt", "ge"):
        left, right = operands
        op = ops[0]
        if is_name(left) and not is_name(right) and right:
            value = Atom(right)
        elif is_name(right) and not is_name(left) and left:
            value = Atom(left)
            op = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}[op]  # flip to "x op value"
        else:
            return None
        if op in ("lt", "le"):
            return Interval(False, ninf, value, op == "le")
        return Interval(op == "ge", value, inf, False)
    ends = (operands[0], operands[-1])
    if len(ops) == 2 and is_name(operands[1]) and all(e and not is_name(e) for e in ends):
        if ops[0] in ("lt", "le") and ops[1] in ("lt", "le"):
            return Interval(ops[0] == "le", Atom(operands[0]), Atom(operands[2]), ops[1] == "le")
        if ops[0] in ("gt", "ge") and ops[1] in ("gt", "ge"):
            return Interval(ops[1] == "ge", Atom(operands[2]), Atom(operands[0]), ops[0] == "ge")
    return None


def _matrix(text: str) -> Matrix | None:
    match = re.fullmatch(
        r"\\begin\{([pbBvV]?matrix|smallmatrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}", text, re.DOTALL
    )
    if not match or match.group(1) in ("vmatrix", "Vmatrix"):
        return None
    body = match.group(2).strip()
    if "\\end{" in body or "\\begin{" in body:
        return None  # several matrices ("A + B", "A B"): an expression of matrices, one atom
    rows = [row for row in re.split(r"\\\\", body) if row.strip()]
    if not rows:
        return None
    cells = tuple(tuple(Atom(cell.strip()) for cell in row.split("&")) for row in rows)
    if len({len(r) for r in cells}) != 1:
        return None
    return Matrix(cells)


#: Nesting deeper than this is not an answer's structure: the rest stays one atom (sympy decides).
MAX_DEPTH = 50


def _unwrap(text: str) -> str:
    """Peel redundant wrappers, iteratively: ``{x}`` and ``(x)`` (one element, round brackets)."""
    while True:
        text = text.strip()
        if text.startswith("{") and matching_brace(text, 0) == len(text) - 1:
            if len(_split_top(text[1:-1], (",", ";"))) > 1:
                return text  # {1, 2, 3}: a bare list in a TeX group (see _item)
            text = text[1:-1]
        elif (
            text.startswith("(")
            and text.endswith(")")
            and _closing_at_end(text)
            and len(_split_top(text[1:-1], (",",))) == 1
        ):
            text = text[1:-1]
        else:
            return text


def _item(text: str, depth: int = 0) -> Shape:
    text = _unwrap(text)
    if not text:
        return Text("")
    if depth > MAX_DEPTH:
        return Atom(text)
    depth += 1
    choice = _CHOICE_RE.match(text)
    if choice:
        return Text((choice.group(1) or choice.group(2)).upper())
    if text.startswith("\\text{") and matching_brace(text, 5) == len(text) - 1:
        return Text(text[6:-1].strip())
    union = _split_top(text, ("\\cup",))
    if len(union) > 1:
        return Union(tuple(_item(p, depth) for p in union))
    matrix = _matrix(_unbracket_matrix(text))
    if matrix is not None:
        return matrix
    choice = _CHOICE_VALUE_RE.match(text)
    if choice:  # "(C) 12", "Option C": the letter chosen
        return Text((choice.group(1) or choice.group(2)).upper())
    operands, ops = _split_relations(text)
    if ops:
        if all(op in ("eq", "approx") for op in ops):
            # x = 2\sqrt{5} \approx 4.47: the value is the last side before the first \approx
            # (x \approx 11, with nothing exact written: the approximate side).
            first_approx = ops.index("approx") if "approx" in ops else len(ops)
            exact = operands[: max(first_approx, 1) + 1]
            lhs, rhs = operands[0], exact[-1]
            if is_name(lhs) and rhs and len(exact) > 1:
                return Equation(compact(lhs), _item(rhs, depth), True)
            named = _named_group(lhs, rhs, depth) if len(exact) > 1 else None
            if named is not None:
                return named
            if rhs and all(_is_constant(o) for o in exact):
                # A computation chain of constants ("\sqrt{20} = 2\sqrt{5}", "48 + 24 = 72"): its
                # result is the last side. Chains with unknowns stay relations ("x + 1 = 5" is not 5).
                return _item(rhs, depth)
            if rhs and _is_constant(rhs) and all(_is_constant(o) or is_label(o) for o in exact[:-1]):
                # A labelled value: "|AB| = 1", "A:B = 1", "\frac{NO}{BO} = \frac{1}{\sqrt6}",
                # "1 = \zzz = x = 0": what is named equals the constant on the last side.
                return Equation(compact(" = ".join(exact[:-1])), _item(rhs, depth), False)
            return Relation(text)
        interval = _interval_from_relations(operands, ops)
        return interval if interval is not None else Relation(text)
    ratio = _split_top(text, (":",))
    if len(ratio) > 1 and all(part.strip() for part in ratio):
        return Seq("ratio", tuple(_item(part, depth) for part in ratio))
    member = re.match(r"^(.*?)\\in(?![A-Za-z])(.*)$", text)
    if member and is_name(member.group(1)):
        return _item(member.group(2), depth)
    if text.startswith("{") and matching_brace(text, 0) == len(text) - 1:
        # {1, 2, 3}: a TeX group around a bare list, read as the list it holds (unordered, or in
        # order against a tuple: {1,3} against (1,3)); \{1, 2\} is the set.
        return Seq("list", tuple(_item(p, depth) for p in _split_top(text[1:-1], (",", ";"))))
    if text.startswith("\\{") and text.endswith("\\}") and _closing_at_end(text):
        inner = text[2:-2].strip()
        builder = _split_top(inner, ("|", "\\mid", ":"))
        if len(builder) == 2:
            # set-builder: {x | a < x <= b} is an interval, {x | x < -1 or x > 3} a union of them;
            # anything else is compared as text
            pieces: list[Shape] = []
            for condition in _split_top(builder[1].strip(), (",",)):
                operands, ops = _split_relations(condition.strip())
                interval = _interval_from_relations(operands, ops)
                if interval is None or compact(builder[0]) not in map(compact, operands):
                    return Atom(text)
                pieces.append(interval)
            return pieces[0] if len(pieces) == 1 else Union(tuple(pieces))
        if len(builder) > 2:
            return Atom(text)
        parts = _split_top(inner, (",", ";")) if inner else []
        return Seq("set", tuple(_item(p, depth) for p in parts))
    if text[:1] in "([" and text[-1:] in ")]" and _closing_at_end(text):
        inner = text[1:-1]
        parts = _split_top(inner, (",",))
        if len(parts) == 1:
            return Atom(text)  # [x]: brackets around one value ((x) was unwrapped above)
        if len(parts) == 2:
            lo, hi = parts[0].strip(), parts[1].strip()
            mixed = (text[0], text[-1]) != ("(", ")")
            if mixed or _is_infinite(lo) or _is_infinite(hi):
                return Interval(text[0] == "[", Atom(lo), Atom(hi), text[-1] == "]")
        if (text[0], text[-1]) not in (("(", ")"), ("[", "]")):
            # [6,31,-1): neither a tuple nor an interval; only the same text is the same answer.
            return Text(compact(text))
        return Seq("tuple", tuple(_item(p, depth) for p in parts))
    if _REALS_RE.match(text):
        return Interval(False, Atom("-\\infty"), Atom("\\infty"), False)  # all real numbers
    pm = _split_top(text, ("\\pm", "\\mp"))
    if len(pm) == 2:
        base, delta = pm[0].strip(), pm[1].strip()
        if not base:
            return Seq("set", (Atom(delta), Atom(f"-({delta})")))
        return Seq("set", (Atom(f"{base}+({delta})"), Atom(f"{base}-({delta})")))
    words = text.split()
    if (
        len(words) >= 2
        and all(re.fullmatch(r"[A-Za-z][A-Za-z'\-]*", w) for w in words)
        and any(len(w) > 1 for w in words)
    ):
        return Text(text)
    return Atom(text)


def _unbracket_matrix(text: str) -> str:
    # \left[\begin{array}{cc} ... \end{array}\right] (the sizing commands are gone by now).
    if text[:1] in "([" and text[-1:] in ")]" and "\\begin{" in text:
        inner = text[1:-1].strip()
        if inner.startswith("\\begin{") and inner.endswith("}") and _matrix(inner) is not None:
            return inner
    return text


def _names_of(lhs: str) -> list[str] | None:
    """``(p, q)``, ``p, q`` or ``V_1:V_2``: the names written on the left of an assignment, or None."""
    lhs = lhs.strip()
    if lhs[:1] in "([" and lhs[-1:] in ")]" and _closing_at_end(lhs):
        lhs = lhs[1:-1]
    for separator in (",", ":"):
        parts = [p.strip() for p in _split_top(lhs, (separator,))]
        if len(parts) > 1 and all(is_name(p) for p in parts):
            return [compact(p) for p in parts]
    return None


def _named_group(lhs: str, rhs: str, depth: int) -> Seq | None:
    """``(p,q)=(3,2)`` / ``V_1:V_2=11:21``: the values as a tuple (or ratio) carrying the names."""
    names = _names_of(lhs)
    if names is None or len({n.casefold() for n in names}) != len(names):
        return None
    value = _item(rhs, depth)
    if isinstance(value, Seq) and value.kind in ("tuple", "ratio") and len(value.items) == len(names):
        return Seq(value.kind, value.items, tuple(names))
    return None


def _assignment_tuple(shapes: list[Shape]) -> Seq | None:
    """``p=5, q=2``: assignments to different names are one point, a tuple carrying the names."""
    if len(shapes) < 2 or not all(isinstance(s, Equation) and s.name for s in shapes):
        return None
    names = tuple(s.lhs for s in shapes)  # type: ignore[union-attr]
    if len({n.casefold() for n in names}) != len(names):
        return None  # x=1, x=2: two values of one unknown, a list
    return Seq("tuple", tuple(s.rhs for s in shapes), names)  # type: ignore[union-attr]


@lru_cache(maxsize=65536)
def parse_shape(text: str) -> Shape:
    """The shape of a *normalised* answer (see :func:`normalize_answer`). Never raises.

    Top-level commas and semicolons make a list; a comma-separated run of assignments to different
    names (``p=5, q=2``) is one tuple, so ``p=5,q=2; p=7,q=2`` is a list of two points."""
    items: list[Shape] = []
    for group in _split_top(text, (";",)):
        shapes = [_item(p) for p in _split_top(group, (",",)) if p.strip()]
        point = _assignment_tuple(shapes)
        if point is not None:
            items.append(point)
        else:
            items.extend(shapes)
    if not items:
        return _item(text)
    return items[0] if len(items) == 1 else Seq("list", tuple(items))


def gold_shape(golds: tuple[str, ...]) -> Shape:
    """Several normalised gold answers, all required: their shapes as one unordered list (a gold
    that is itself a list is flattened into it)."""
    if len(golds) == 1:
        return parse_shape(golds[0])
    items: list[Shape] = []
    for gold in golds:
        shape = parse_shape(gold)
        if isinstance(shape, Seq) and shape.kind == "list":
            items.extend(shape.items)
        else:
            items.append(shape)
    return Seq("list", tuple(items))
