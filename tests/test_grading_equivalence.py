"""Equivalence tables: (gold, predicted, expected) grouped by the form of the answer.

Each group has equal and not-equal cases; many are rewritings a model really produces. The reason
slug is checked where the policy names one (timeouts, parse errors, empty answers).
"""

from __future__ import annotations

import pytest

from prm_selfreward.grading import answers_equal, compare_answers

NUMBERS = [
    ("42", "42", True),
    ("42", "42.0", True),
    ("42", "042", True),
    ("42", "43", False),
    ("-7", "-7", True),
    ("-7", "7", False),
    ("1000", "1,000", True),
    ("1000", "1{,}000", True),
    ("75,\\!075", "75075", True),
    ("11,\\! 111,\\! 111,\\! 100", "11111111100", True),
    ("1000000", "1\\,000\\,000", True),
    ("2500,7500", "2500, 7500", True),  # not a thousands separator: a list of two
    ("2500,7500", "25007500", False),
    ("3.5", "3.50", True),
    ("3.5", "7/2", True),
    ("0.25", ".25", True),
    ("2.5", "2.6", False),
    ("1.17", "1.1700001", True),  # within the relative tolerance 1e-6
    ("1.17", "1.1701", False),
]

FRACTIONS = [
    ("\\frac{3}{4}", "3/4", True),
    ("\\frac34", "\\frac{3}{4}", True),
    ("\\dfrac{3}{4}", "0.75", True),
    ("\\tfrac{3}{4}", "\\frac{6}{8}", True),
    ("-\\frac{5}{7}", "\\frac{-5}{7}", True),
    ("-\\frac{5}{7}", "\\frac{5}{7}", False),
    ("\\frac{1}{3}", "0.3333333", True),  # a decimal approximates within 1e-6
    ("\\frac{1}{3}", "0.333", True),  # a decimal that rounds the exact gold at its written precision
    ("\\frac{1}{3}", "0.33", True),
    ("\\frac{1}{3}", "0.334", False),  # not a rounding of 1/3
    ("\\frac{1}{3}", "0.3", False),  # one significant digit is too few to be a rounding
    ("\\frac{8}{3}", "2.6667", True),
    ("\\frac{8}{3}", "2.6666", False),  # truncated, not rounded
    ("\\frac{1}{840}", "0.00119", True),
    ("\\frac{1}{840}", "0.001", False),
    ("\\frac{1}{3}", "\\frac{333333}{1000000}", False),  # two exact values: exact comparison
    ("2\\frac{1}{2}", "\\frac{5}{2}", True),  # mixed number
    ("\\frac{2004}{2005}", "\\frac{2005}{2006}", False),
    ("\\frac{1}{2004!}", "\\frac{1}{2006!}", False),
    ("\\frac{1}{2004!}", "\\frac{2005 \\cdot 2006}{2006!}", True),
    ("\\frac{1}{2004!}", "\\frac{1}{2004!} + 10^{-9000}", False),  # exact however small the gap
    ("\\sqrt{2}", "\\frac{1414213562373095048801688724}{10^{27}}", False),  # a rational is not sqrt 2
    ("\\frac{\\frac12}{3}", "\\frac16", True),
]

ROOTS_AND_CONSTANTS = [
    ("\\sqrt{2}/2", "\\frac{1}{\\sqrt{2}}", True),
    ("2\\sqrt{3}", "\\sqrt{12}", True),
    ("2\\sqrt{3}", "\\sqrt{13}", False),
    ("\\sqrt3", "3^{1/2}", True),
    ("\\frac{\\sqrt{6}}{3}", "\\sqrt{\\frac{2}{3}}", True),
    ("5\\sqrt{2}", "7.0710678", True),
    ("5\\sqrt{2}", "7.07", True),  # rounded at its written precision
    ("5\\sqrt{2}", "7.08", False),
    ("5\\sqrt{2}", "7.1", True),
    ("\\sqrt{2}", "1.4", True),
    ("\\sqrt{2}", "1.5", False),
    ("\\pi", "\\pi", True),
    ("2\\pi", "\\pi \\cdot 2", True),
    ("\\frac{\\pi}{4}", "\\frac \\pi4", True),
    ("\\frac{20000}{\\pi}", "\\frac{40000}{2\\pi}", True),
    ("\\pi", "3.14", True),
    ("\\pi", "3.15", False),
    ("\\pi", "3.1416", True),
    ("\\pi", "3.1415", False),
    ("e^{-1}", "\\frac{1}{e}", True),
    ("\\log_{10} 2", "\\frac{\\ln 2}{\\ln 10}", True),
    ("2004\\sqrt{2}-2003", "-2003+2004\\sqrt{2}", True),
]

TOLERANCE = [
    ("1e-10", "2e-10", False),  # relative, never absolute: tiny values are not all equal
    ("0.000001", "0.000002", False),
    ("0", "0.0000001", False),
    ("0", "0.0", True),
    ("123456789", "123456789.1", True),
    ("123456789", "123457000", False),
    ("10^{-10}", "2 \\cdot 10^{-10}", False),
]

PERCENT = [
    # Policy: the percent sign is a unit and is stripped; no x100 leniency either way.
    ("50\\%", "50", True),
    ("50\\%", "50 \\%", True),
    ("50\\%", "50 percent", True),
    ("50\\%", "0.5", False),
    ("0.5", "50\\%", False),
    ("8 \\%", "8", True),
    ("5.3\\%", "5.3", True),
]

UNITS_AND_TEXT = [
    ("5\\text{ cm}", "5", True),
    ("5", "5 \\text{cm}", True),
    ("135\\text{ square feet}", "135", True),
    ("18", "\\$18", True),
    ("18", "18 dollars", True),
    ("-\\$0.50", "-0.5", True),
    ("25 \\, \\text{km}", "25", True),
    ("0.25\\,\\text{ cm}", "0.25", True),
    ("20 cm^{2}", "20", True),
    ("22.1cm^{2}", "22.1", True),
    ("81\\text{ teachers}", "81", True),
    ("81\\text{ teachers}", "82 teachers", False),
    ("3xy", "3 xy", True),  # a product of variables is not a unit
    ("3xy", "3", False),
    ("\\text{even}", "even", True),
    ("\\text{even}", "\\text{odd}", False),
    ("\\text{(C)}", "C", True),
    ("\\text{(C)}", "(C)", True),
    ("\\text{(C)}", "\\textbf{(C)}", True),
    ("\\text{(C)}", "D", False),
    ("\\text{neither}", "\\text{Neither}", True),
    ("Quadrant I", "quadrant I", True),
    ("Quadrant I", "Quadrant II", False),
]

DEGREES = [
    ("30^\\circ", "30", True),
    ("30", "30^{\\circ}", True),
    ("120^\\circ", "120°", True),
    ("30^\\circ", "\\frac{\\pi}{6}", False),  # degree marks are units, not a conversion
    ("87^\\circ", "88^\\circ", False),
]

ASSIGNMENTS_AND_EQUATIONS = [
    ("5", "x = 5", True),
    ("x = 5", "5", True),
    ("x = 5", "x=5", True),
    ("x = 5", "6", False),
    ("k=2n-1", "2n-1", True),
    ("k = 2n-1", "k = 2n+1", False),
    ("f(x)=x+1", "x+1", True),
    ("f(x) = x+1", "f(x) = 1+x", True),
    ("y = 2x+1", "y = 1+2x", True),
    ("y = 2x+1", "y = 2x-1", False),
    ("x = 5", "y = 5", False),  # two assignments must name the same unknown
    ("5x - 7y + 11z + 4 = 0", "-5x + 7y - 11z - 4 = 0", True),
    ("5x - 7y + 11z + 4 = 0", "10x - 14y + 22z + 8 = 0", True),
    ("5x - 7y + 11z + 4 = 0", "5x - 7y + 11z - 4 = 0", False),
    ("\\frac{x^{2}}{2} - \\frac{y^{2}}{2} = 1", "x^2 - y^2 = 2", True),
    ("\\frac{x^{2}}{2} - \\frac{y^{2}}{2} = 1", "x^2 + y^2 = 2", False),
    ("y = 2x+1", "2x - y + 1 = 0", True),
    ("5x - 7y + 11z + 4 = 0", "4", False),
]

LABELLED_VALUES = [
    # A labelled value compares by its value whatever the label (no digits, no + or - in it).
    ("|AB|=1", "1", True),
    ("|AB|=1", "2", False),
    ("|AB|=1", "|AB| = 1", True),
    ("1", "|x| = 1", False),  # on the prediction side a label is no value: x may be asked for
    ("A:B=1", "1", True),
    ("A:B=1", "2", False),
    ("\\frac{NO}{BO}=\\frac{1}{\\sqrt6}", "\\frac{\\sqrt6}{6}", True),
    ("\\frac{NO}{BO}=\\frac{1}{\\sqrt6}", "\\frac{1}{6}", False),
    ("1 = \\zzz = x = 0", "0", True),
    ("1 = \\zzz = x = 0", "1", False),
    ("\\angle ABC = 30^\\circ", "30", True),
    ("xy = 6", "6", True),
    ("11", "x \\approx 11", True),  # nothing exact written: the approximate side is the value
    ("11", "x \\approx 12", False),
    ("11.3", "x \\approx 11", False),
    ("W(x)=1 \\text{ or } W(x)=-1", "W(x)=1, W(x)=-1", True),
    ("W(x)=1 \\text{ or } W(x)=-1", "W(x) = \\pm 1", True),
    ("W(x)=1 \\text{ or } W(x)=-1", "W(x) = 1 or -1", True),
    ("W(x)=1 \\text{ or } W(x)=-1", "1, -1", True),
    ("W(x)=1 \\text{ or } W(x)=-1", "W(x) = 1", False),
    ("W(x)=1 \\text{ or } W(x)=-1", "W(x) = 1, W(x) = 2", False),
    ("5x - 7y + 11z + 4 = 0", "0", False),  # an equation, not a label: stays a relation
    ("x + y = 5", "5", False),
]

TUPLES = [
    ("(1,2)", "(1, 2)", True),
    ("(1,2)", "(2,1)", False),  # ordered
    ("(3,-3)", "\\left(3, -3\\right)", True),
    ("\\left(-\\tfrac52, -\\tfrac52\\right)", "(-2.5, -2.5)", True),
    ("(4, \\log_{10} 2)", "(4, \\log_{10}2)", True),
    ("(4, \\log_{10} 2)", "(4, \\ln 2)", False),
    ("(1,2,3)", "(1,2)", False),
    ("(1,2,3)", "(1,2,4)", False),  # every element counts, not just the first
    ("(1, 8, 19)", "(1, 8, 20)", False),
    ("(\\sqrt{2}, 1)", "(2^{1/2}, 1)", True),
    ("(1,2)", "\\{1,2\\}", False),  # a point is not a set
    ("\\langle 1, 2 \\rangle", "(1,2)", True),
]

INTERVALS = [
    ("[2,3)", "[2, 3)", True),
    ("[2,3)", "(2,3)", False),  # ends matter
    ("[2,3)", "[2,3]", False),
    ("(-\\infty, 0]", "(-\\infty,0]", True),
    ("(-\\infty, 0]", "(-\\infty, 0)", False),
    ("[3,\\infty)", "[3, +\\infty)", True),
    ("[3,\\infty)", "x \\ge 3", True),
    ("(2, \\infty)", "x > 2", True),
    ("(2, \\infty)", "x \\ge 2", False),
    ("[2,3)", "2 \\le x < 3", True),
    ("[2,3)", "2 < x \\le 3", False),
    ("\\{x|-2\\leq x < 1\\}", "[-2, 1)", True),
    ("(-\\infty,-7) \\cup (1,2)", "(1,2) \\cup (-\\infty, -7)", True),
    ("(-\\infty,-7) \\cup (1,2)", "(-\\infty,-7) \\cup (1,2]", False),
    ("(-\\infty, 0)\\cup(0,1)\\cup(1,+\\infty)", "(-\\infty,0) \\cup (0,1) \\cup (1,\\infty)", True),
    ("[\\frac{1}{2}, 2]", "[0.5, 2]", True),
    ("(1,3)", "1 < x < 3", True),
]

SETS_AND_LISTS = [
    ("\\{1,2\\}", "\\{2,1\\}", True),  # unordered
    ("\\{1,2\\}", "\\{1,2,3\\}", False),
    ("\\{2,3,5\\}", "\\{5, 3, 2\\}", True),
    ("1, 3", "3, 1", True),
    ("1, 3", "1", False),
    ("1, 3", "1, 3, 5", False),
    ("-2,-2", "-2", False),  # multisets: both answers are required
    ("15\\frac{39}{40}", "15\\frac{39}{40}, \\frac{639}{40}", True),  # one answer in two forms
    ("4", "7, 4", False),  # hedging between two values
    ("4, -2 + 3i, -2 - 3i", "-2-3i, 4, -2+3i", True),
    ("4, -2 + 3i, -2 - 3i", "-2-3i, 4, -2+2i", False),
    ("(1,8,19), (2,7,13), (4,5,7)", "(2,7,13), (4,5,7), (1,8,19)", True),
    ("(1,8,19), (2,7,13), (4,5,7)", "(2,7,13), (4,5,7), (8,1,19)", False),
    ("$2$ or $-2$", "-2, 2", True),
    ("$0.05$ and $0.6$", "0.05, 0.6", True),
    ("\\{1\\}", "1", True),
    ("\\emptyset", "\\{\\}", True),
    ("{1,2,3}", "\\{3,2,1\\}", True),  # a bare list in a TeX group
    ("{1,2,3}", "\\{1,2\\}", False),
    ("{1}", "1", True),  # a group, not a set
    ("(1,3)", "{1,3}", True),  # a bare list against a tuple: in order
    ("(3,1)", "{1,3}", False),
]

MATRICES = [
    ("\\begin{pmatrix} 1 \\\\ 3 \\end{pmatrix}", "\\begin{pmatrix}1\\\\3\\end{pmatrix}", True),
    ("\\begin{pmatrix} 1/5 \\\\ -3/5 \\end{pmatrix}", "\\begin{bmatrix} 0.2 \\\\ -0.6 \\end{bmatrix}", True),
    ("\\begin{pmatrix} 1 \\\\ 3 \\end{pmatrix}", "\\begin{pmatrix} 3 \\\\ 1 \\end{pmatrix}", False),
    (
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}",
        True,
    ),
    (
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}",
        False,
    ),
    ("\\begin{pmatrix} 6 \\\\ 3 \\\\ 0 \\end{pmatrix}", "(6, 3, 0)", True),
    (
        "\\begin{pmatrix} \\sqrt{2} \\\\ 1 \\end{pmatrix}",
        "\\begin{pmatrix} 2^{1/2} \\\\ 1 \\end{pmatrix}",
        True,
    ),
]

PLUS_MINUS = [
    ("3 \\pm 2\\sqrt{2}", "3 + 2\\sqrt{2}, 3 - 2\\sqrt{2}", True),
    ("3 \\pm 2\\sqrt{2}", "3 - 2\\sqrt{2}, 3 + 2\\sqrt{2}", True),
    ("3 \\pm 2\\sqrt{2}", "3 + 2\\sqrt{2}", False),
    ("\\pm 2", "2, -2", True),
    ("1 \\pm \\sqrt{2}", "1 \\mp \\sqrt{2}", True),
]

EXPRESSIONS = [
    ("x^2+2x+1", "(x+1)^2", True),
    ("x^2+2x+1", "(x-1)^2", False),
    ("7(x+3)(x-3)", "7x^2-63", True),
    ("\\frac{3x^2}{2}", "1.5x^2", True),
    ("-2n^2 - n", "-n(2n+1)", True),
    ("n^{2}+1", "n^2+2", False),
    ("2^{k}", "2^k", True),
    ("11+x", "x+11", True),
    ("-12 + 15i", "15i - 12", True),
    ("\\frac{7}{5} + \\frac{1}{5} i", "\\frac{7+i}{5}", True),
    ("1-i", "1+i", False),
    ("2RC+R+C", "R+C+2RC", True),
]

MULTI_ANSWER_GOLDS = [
    # A gold list: every answer is required (OlympiadBench is_multiple_answer), in any order.
    (["$69$", "$84$"], "84, 69", True),
    (["$69$", "$84$"], "69", False),
    (["$69$", "$84$"], "69, 84, 100", False),
    (["$69$,$84$"], "69, 84", True),
    (["$69$,$84$"], "84", False),  # not just the first gold
    (["$f(x)=x,f(x)=-x$"], "f(x) = -x, f(x) = x", True),
    (["$(1,1), (3,2)$"], "(3,2), (1,1)", True),
    (["$(1,1), (3,2)$"], "(1,1), (2,3)", False),
    (["$\\frac{1}{2},\\sqrt{x}$"], "\\sqrt{x}, 0.5", True),
]

ALL = (
    NUMBERS
    + FRACTIONS
    + ROOTS_AND_CONSTANTS
    + TOLERANCE
    + PERCENT
    + UNITS_AND_TEXT
    + DEGREES
    + ASSIGNMENTS_AND_EQUATIONS
    + LABELLED_VALUES
    + TUPLES
    + INTERVALS
    + SETS_AND_LISTS
    + MATRICES
    + PLUS_MINUS
    + EXPRESSIONS
    + MULTI_ANSWER_GOLDS
)


@pytest.mark.parametrize("gold,pred,expected", ALL)
def test_equivalence_table(gold, pred, expected):
    equal, reason = answers_equal(gold, pred)
    assert equal is expected, (gold, pred, reason)
    assert reason == ("equal" if expected else "not_equal"), (gold, pred, reason)


# Deliberately asymmetric: a single gold matches a prediction that restates it in several forms, but
# a gold list needs every answer ("-2,-2" is two answers; "-2" is one); a predicted decimal may round
# an exact gold at its own precision ("0.33" for 1/3), but a gold "0.33" is not the exact 1/3.
ASYMMETRIC = {("-2,-2", "-2"), ("15\\frac{39}{40}", "15\\frac{39}{40}, \\frac{639}{40}")} | {
    # a predicted decimal rounds an exact gold; an exact prediction does not match a rounded gold
    (g, p) for g, p, equal in FRACTIONS + ROOTS_AND_CONSTANTS
    if equal and "." in p and "." not in g and len(p.split(".")[1]) < 6
} | {
    # a labelled gold ("|AB| = 1") compares by its value; a labelled prediction stays a relation
    (g, p) for g, p, equal in LABELLED_VALUES if equal and "=" in g and "=" not in p
} | {("1", "|x| = 1")}


@pytest.mark.parametrize(
    "gold,pred,expected", [c for c in ALL if isinstance(c[0], str) and (c[0], c[1]) not in ASYMMETRIC]
)
def test_symmetric_except_where_documented(gold, pred, expected):
    """Swapping gold and prediction gives the same answer, except for the pairs in ASYMMETRIC."""
    assert answers_equal(pred, gold)[0] is expected


def test_documented_asymmetry():
    assert answers_equal("-2", "-2,-2") == (True, "equal")
    assert answers_equal("-2,-2", "-2") == (False, "not_equal")


@pytest.mark.parametrize(
    "gold,pred,reason",
    [
        ("5", "", "no_answer"),
        ("5", None, "no_answer"),
        ("5", "$ $", "no_answer"),
        ("", "5", "no_gold"),
        ("\\frac{1}{2}", "\\frac{1}{", "parse_error"),
        ("x+1", "x +* 1", "parse_error"),
    ],
)
def test_reason_slugs(gold, pred, reason):
    result = compare_answers(gold, pred)
    assert result.equal is False
    assert result.reason == reason, result


@pytest.mark.parametrize(
    "gold,pred,rung",
    [
        ("42", "42", "string"),
        ("\\frac{1}{2}", "0.5", "fast"),
        ("(1,2)", "(2,1)", "fast"),
        ("[2,3)", "(2,3)", "fast"),
        ("x^2+2x+1", "(x+1)^2", "sympy"),
    ],
)
def test_rung_that_decides(gold, pred, rung):
    """Plain numbers and structure are decided in-process; only expressions reach sympy."""
    assert compare_answers(gold, pred).detail == rung


# ---------------------------------------------------------------------------------------------------
# The plain-LaTeX reader builds the trees latex2sympy builds, and refuses what it does not read.

PLAIN_LATEX = [
    # (text, read by plain_latex)
    ("2x^2+3x", True),
    ("x^2y", True),  # ^ takes one token: (x^2) y
    ("-x^2", True),
    ("\\frac{1}{2}x", True),
    ("\\sqrt{2}x", True),
    ("\\sqrt[3]{x}", True),
    ("\\pi r^2", True),
    ("2RC+R+C", True),  # latex2sympy names R as r
    ("(x+1)(x-1)", True),
    ("2^{10}", True),
    ("a_1 + a_2", True),
    ("3 \\cdot 4 \\times x", True),
    ("3\\frac{1}{8}", False),  # a mixed number
    ("2 3", False),
    ("f(x)", False),  # possibly a function
    ("e^x", False),  # exp
    ("1+2i", False),  # the imaginary unit
    ("2.5x", False),  # decimals keep latex2sympy's precision
    ("\\sin x", False),
    ("x/2", False),
    ("2^-1", False),
    ("x_{12}", False),
    ("x = 1", False),
]


@pytest.mark.parametrize("text,read", PLAIN_LATEX)
def test_plain_latex_reader_agrees_with_latex2sympy(text, read):
    import sympy
    from latex2sympy2_extended import latex2sympy

    from prm_selfreward.grading.plain_latex import read_plain_latex
    from prm_selfreward.grading.sympy_compare import _NORMALIZATION

    fast = read_plain_latex(text)
    assert (fast is not None) is read
    if fast is not None:
        slow = latex2sympy(text, normalization_config=_NORMALIZATION)
        assert fast.free_symbols == slow.free_symbols
        assert sympy.simplify(fast.doit() - slow) == 0


def test_plain_latex_reader_agrees_on_every_math_gold(data_dir):
    """Every MATH test gold the reader accepts reads as latex2sympy reads it (same symbols, same
    value at three points)."""
    import json

    from latex2sympy2_extended import latex2sympy

    from prm_selfreward.grading.normalize import Atom, normalize_answer, parse_shape
    from prm_selfreward.grading.plain_latex import read_plain_latex
    from prm_selfreward.grading.sympy_compare import _NORMALIZATION, numeric_equal, points_equal

    path = data_dir / "math" / "test.jsonl"
    if not path.exists():
        pytest.skip("no MATH test set")
    atoms = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        shape = parse_shape(normalize_answer(json.loads(line)["answer"]))
        if isinstance(shape, Atom):
            atoms.add(shape.text)
    read = 0
    for text in sorted(atoms):
        fast = read_plain_latex(text)
        if fast is None:
            continue
        read += 1
        slow = latex2sympy(text, normalization_config=_NORMALIZATION)
        assert fast.free_symbols == slow.free_symbols, text
        same = points_equal(fast, slow) if fast.free_symbols else numeric_equal(fast, slow)
        assert same, text
    assert read > 500  # it reads most plain golds
