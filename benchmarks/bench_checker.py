"""Our answer checker against math-verify on the same labelled cases: accuracy and speed.

Cases are built here from real gold answers (MATH-500, OlympiadBench, GSM8K, MATH test, Gaokao 2023
in ``$PRM_SR_DATA_DIR``, default ``../shared/data``): rewritings that must be accepted (other
notation, reordered sets, decimals within tolerance, units, ``x = v``) and near misses that must be
rejected (a changed element, a swapped tuple, an interval end, a mis-rounded decimal), each wrapped in a
realistic model output, plus the known failure modes of DESIGN.md section 4, extraction traps, and
the hand-written table of answer forms as models write them (tests/realistic_cases.py, category
``realistic``, labelled by hand; the agreement of the two checkers on it is printed). Other labels
come from the construction (a rewriting by an identity is equal; a perturbation is checked
numerically to differ), never from either checker.

Both checkers run one case at a time in this process (ours sends sympy work to its worker process
and waits; math-verify runs in-process with its signal-based timeout), interleaved case by case so
that a drifting machine load affects both alike: accuracy against the labels and checks per second,
per category, in one run, with the ratio.

    python benchmarks/bench_checker.py                 # all categories
    python benchmarks/bench_checker.py --show-errors 5 # also print disagreements with the labels
    python benchmarks/bench_checker.py --per-category 40  # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@dataclass
class Case:
    category: str
    gold: str | list[str]
    output: str  # the model's whole output
    label: bool
    benchmark: str | None = None
    unit: str | None = None
    note: str = ""


# ---------------------------------------------------------------------------------------------------
# Helpers (independent of the checker under test)


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def split_top(text: str) -> list[str]:
    """Split at commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


STEPS = [
    "Step 1: Let us set up the problem carefully.\nStep 2: Simplifying, we collect the terms.\n",
    "We start from the given conditions and simplify step by step.\n",
    "Step 1: Write down what is known.\nStep 2: Substitute and solve.\nStep 3: Check the result.\n",
]


def wrap(answer: str, rng: random.Random, style: str | None = None) -> str:
    """A model output whose final answer is ``answer``."""
    style = style or rng.choice(["boxed", "boxed", "boxed", "boxed_dollar", "answer_is"])
    head = rng.choice(STEPS)
    if style == "boxed":
        return f"{head}Therefore, the final answer is \\boxed{{{answer}}}."
    if style == "boxed_dollar":
        return f"{head}So the answer is $\\boxed{{{answer}}}$."
    if style == "answer_is":
        return f"{head}The final answer is ${answer}$."
    if style == "minerva":
        return f"{head}Final Answer: The final answer is ${answer}$. I hope it is correct."
    if style == "gsm8k":
        return f"{head}#### {answer}"
    raise ValueError(style)


def sympy_value(latex: str):
    """Parse a gold answer with latex2sympy (for building variants only; None if unusable)."""
    import sympy
    from latex2sympy2_extended import latex2sympy

    try:
        expr = latex2sympy(latex.strip("$ "))
    except Exception:
        return None
    return expr if isinstance(expr, sympy.Expr) else None


def numerically_different(a, b) -> bool:
    import sympy

    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    for k in range(3):
        point = {s: sympy.Rational(137 + 41 * k + 7 * i, 100) for i, s in enumerate(symbols)}
        try:
            va, vb = complex(sympy.N(a.subs(point), 30)), complex(sympy.N(b.subs(point), 30))
        except (TypeError, ValueError):
            continue
        if abs(va - vb) > 1e-6 * max(abs(va), abs(vb), 1e-300):
            return True
    return False


def decimal(value, digits: int) -> str:
    import sympy

    text = sympy.N(value, digits).__str__()
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def rounded(value, significant: int = 3) -> str | None:
    """``value`` rounded (half up, in decimal) to ``significant`` digits, written with its decimal
    point and trailing zeros (``0.350``); None when that has no decimal point (``123``)."""
    from decimal import ROUND_HALF_UP, Decimal

    import sympy

    exact = Decimal(str(sympy.N(value, 40)))
    if exact == 0:
        return None
    quantum = Decimal(1).scaleb(exact.adjusted() - significant + 1)
    text = format(exact.quantize(quantum, rounding=ROUND_HALF_UP), "f")
    return text if "." in text else None


def misrounded(text: str, value) -> str:
    """The decimal ``text`` moved one unit in its last written place away from ``value``: no
    rounding of it at that precision (docs/checker.md, Numbers)."""
    from decimal import Decimal

    import sympy

    written = Decimal(text)
    unit = Decimal(1).scaleb(written.as_tuple().exponent)
    exact = Decimal(str(sympy.N(value, 40)))
    step = -unit if exact < written else unit
    moved = written + step
    while abs(moved - exact) <= unit / 2:  # a tie (0.4025 rounds to 0.402 and to 0.403)
        moved += step
    return format(moved, "f")


# ---------------------------------------------------------------------------------------------------
# Case builders, one per category


def gsm8k_cases(data: Path, rng: random.Random, n: int) -> list[Case]:
    golds = [
        r["answer"].rsplit("####", 1)[1].strip().replace(",", "") for r in rows(data / "gsm8k" / "test.jsonl")
    ]
    out = []
    for gold in rng.sample(golds, min(n, len(golds))):
        value = float(gold)
        style = rng.choice(["boxed", "gsm8k", "answer_is"])
        dollar = "$" if style == "gsm8k" else "\\$"  # a plain-text line vs LaTeX
        right = [
            gold,
            f"{dollar}{gold}",
            f"{gold}.00" if "." not in gold else gold + "0",
            f"{gold} dollars" if style == "gsm8k" else f"{gold} \\text{{ dollars}}",
        ]
        if value >= 1000 and value.is_integer():
            right.append(f"{int(value):,}")
        wrong = [
            str(int(value) + 1) if value.is_integer() else str(value + 1),
            str(int(value * 10)) if value else "1",
        ]
        for answer in rng.sample(right, 2):
            out.append(Case("gsm8k", gold, wrap(answer, rng, style), True, "gsm8k"))
        out.append(Case("gsm8k", gold, wrap(rng.choice(wrong), rng, style), False, "gsm8k"))
    return out


_FRAC_RE = re.compile(r"^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")


def number_cases(data: Path, rng: random.Random, n: int) -> list[Case]:
    import sympy

    golds = [r["answer"] for r in rows(data / "math" / "math500.jsonl")]
    golds += [r["answer"] for r in rows(data / "math" / "test.jsonl")]
    fracs = sorted({g for g in golds if _FRAC_RE.match(g)})
    decs = sorted({g for g in golds if re.fullmatch(r"-?\d+\.\d+", g)})
    out = []
    for gold in rng.sample(fracs, min(n, len(fracs))):
        sign, a, b = _FRAC_RE.match(gold).groups()
        value = sympy.Rational(int(a), int(b)) * (-1 if sign else 1)
        right = [
            f"{sign}{a}/{b}",
            f"{sign}\\dfrac{{{a}}}{{{b}}}",
            f"\\frac{{{sign}{2 * int(a)}}}{{{2 * int(b)}}}",
            decimal(value, 12),
        ]
        wrong = [f"{sign}\\frac{{{b}}}{{{a}}}" if a != b else "0", f"{sign}\\frac{{{int(a) + 1}}}{{{b}}}"]
        approx = rounded(value, 3)
        if approx is not None and sympy.Rational(approx) != value:
            # Rounded at the precision written: right (docs/checker.md, Numbers); one unit off: wrong.
            right.append(approx)
            wrong.append(misrounded(approx, value))
        for answer in rng.sample(right, 2):
            out.append(Case("numbers", gold, wrap(answer, rng), True, "math"))
        out.append(Case("numbers", gold, wrap(rng.choice(wrong), rng), False, "math"))
    for gold in rng.sample(decs, min(n // 3, len(decs))):
        value = sympy.Rational(gold)
        out.append(Case("numbers", gold, wrap(f"{gold}0", rng), True, "math"))
        out.append(Case("numbers", gold, wrap(latex_of(value), rng), True, "math"))
        out.append(Case("numbers", gold, wrap(str(value + sympy.Rational(1, 10)), rng), False, "math"))
    return out


def latex_of(expr) -> str:
    import sympy

    return sympy.latex(expr)


def constant_cases(data: Path, rng: random.Random, n: int) -> list[Case]:
    """Radicals, pi, logs: exact constants with another exact form, a 12-digit decimal; near misses."""
    import sympy

    golds = sorted(
        {
            r["answer"]
            for r in rows(data / "math" / "test.jsonl")
            if re.search(r"\\sqrt|\\pi", r["answer"])
            and not re.search(r"[a-zA-Z](?<!\\[a-z]{1})", re.sub(r"\\[a-zA-Z]+", "", r["answer"]))
        }
    )
    out = []
    for gold in rng.sample(golds, min(n * 2, len(golds))):
        expr = sympy_value(gold)
        if expr is None or expr.free_symbols or not expr.is_real:
            continue
        forms = {
            latex_of(sympy.radsimp(expr)),
            latex_of(sympy.nsimplify(expr)),
            latex_of(sympy.together(expr)),
            latex_of(sympy.expand(expr)),
        }
        if expr.is_positive and expr.is_algebraic:
            square = sympy.nsimplify(expr**2)
            if square.is_Rational:
                forms.add(f"\\sqrt{{{latex_of(square)}}}")
        forms = [f for f in forms if f.replace(" ", "") != gold.replace(" ", "")]
        right = forms[:2] + [decimal(expr, 12)]
        wrong = []
        for candidate in (expr + 1, 2 * expr, expr**2, -expr):
            if numerically_different(candidate, expr):
                wrong.append(latex_of(candidate))
        approx = rounded(expr, 3)
        if approx is not None and numerically_different(sympy.Float(approx, 30), expr):
            right.append(approx)  # rounded at the precision written
            wrong.append(misrounded(approx, expr))  # one unit off in the last place
        for answer in rng.sample(right, min(2, len(right))):
            out.append(Case("constants", gold, wrap(answer, rng), True, "math"))
        if wrong:
            out.append(Case("constants", gold, wrap(rng.choice(wrong), rng), False, "math"))
        if len(out) >= 3 * n:
            break
    return out


def expression_cases(data: Path, rng: random.Random, n: int) -> list[Case]:
    import sympy

    golds = [r["answer"] for r in rows(data / "math" / "test.jsonl")]
    golds += [
        r["final_answer"][0]
        for r in rows(data / "olympiadbench" / "test.jsonl")
        if r["answer_type"] == "Expression" and not r["is_multiple_answer"]
    ]
    golds = sorted(
        {
            g
            for g in golds
            if re.search(r"(?<!\\)\b[a-zA-Z]\b", re.sub(r"\\[a-zA-Z]+", " ", g))
            and "=" not in g
            and "," not in g
            and "\\text" not in g
            and "\\mbox" not in g
        }
    )
    out = []
    for gold in rng.sample(golds, len(golds)):
        expr = sympy_value(gold)
        if expr is None or not expr.free_symbols or expr.has(sympy.Function):
            continue
        try:
            forms = {latex_of(sympy.expand(expr)), latex_of(sympy.factor(expr)), latex_of(expr)}
        except Exception:
            continue
        forms = [f for f in forms if f.replace(" ", "") != gold.strip("$").replace(" ", "")]
        if not forms:
            continue
        symbol = sorted(expr.free_symbols, key=str)[0]
        wrong = [
            latex_of(c)
            for c in (expr + 1, expr * 2, expr.subs(symbol, 2 * symbol))
            if numerically_different(c, expr)
        ]
        for answer in forms[:2]:
            out.append(Case("expressions", gold, wrap(answer, rng), True, "math"))
        if wrong:
            out.append(Case("expressions", gold, wrap(rng.choice(wrong), rng), False, "math"))
        if len(out) >= 3 * n:
            break
    return out


def tuple_interval_cases(data: Path, rng: random.Random, n: int) -> list[Case]:
    golds = [r["answer"] for r in rows(data / "math" / "test.jsonl")]
    golds += [
        r["final_answer"][0].strip("$")
        for r in rows(data / "olympiadbench" / "test.jsonl")
        if r["answer_type"] in ("Tuple", "Interval") and not r["is_multiple_answer"]
    ]
    pattern = re.compile(r"^[(\[].*[)\]]$")
    golds = sorted(
        {
            g.strip()
            for g in golds
            if pattern.match(g.strip()) and len(split_top(g.strip()[1:-1])) >= 2 and "\\cup" not in g
        }
    )
    out = []
    for gold in rng.sample(golds, min(n, len(golds))):
        left, right_br, inner = gold[0], gold[-1], gold[1:-1]
        items = split_top(inner)
        is_interval = (left, right_br) != ("(", ")") or "infty" in gold
        right = [f"\\left{left}{', '.join(items)}\\right{right_br}", f"{left} {' , '.join(items)} {right_br}"]
        wrong = []
        if len(set(items)) > 1 and not is_interval:
            wrong.append(f"{left}{', '.join(reversed(items))}{right_br}")  # tuples are ordered
        if is_interval:
            flipped = {"(": "[", "[": "("}[left]
            if "infty" not in items[0]:
                wrong.append(f"{flipped}{inner}{right_br}")  # an end's closedness
        if len(items) > 2:
            wrong.append(f"{left}{', '.join(items[:-1])}{right_br}")
        changed = list(items)
        k = rng.randrange(len(items))
        if re.fullmatch(r"-?\d+", changed[k]):
            changed[k] = str(int(changed[k]) + 1)
            wrong.append(f"{left}{', '.join(changed)}{right_br}")  # one element differs
        for answer in right:
            out.append(Case("tuples_intervals", gold, wrap(answer, rng), True, "math"))
        for answer in wrong[:2]:
            out.append(Case("tuples_intervals", gold, wrap(answer, rng), False, "math"))
    return out


def set_list_cases(data: Path, rng: random.Random, n: int) -> list[Case]:
    golds = [r["answer"] for r in rows(data / "math" / "test.jsonl")]
    golds += [a for r in rows(data / "gaokao2023en" / "test.jsonl") for a in [r["answer"].strip("$ ")]]
    golds = sorted(
        {
            g
            for g in golds
            if (
                "," in g
                and len(split_top(g.replace("\\{", "").replace("\\}", ""))) >= 2
                and not g.startswith(("(", "["))
                and "text" not in g
                and "=" not in g
                and "\\$" not in g
                and not re.fullmatch(r"-?\d{1,3}(,\d{3})+", g.replace("\\!", "").replace(" ", ""))
            )
        }
    )
    out = []
    for gold in rng.sample(golds, min(n, len(golds))):
        braces = gold.startswith("\\{")
        inner = gold[2:-2] if braces else gold
        items = split_top(inner)
        shuffled = items[:]
        while len(set(items)) > 1 and shuffled == items:
            rng.shuffle(shuffled)
        fmt = (lambda xs: "\\{" + ", ".join(xs) + "\\}") if braces else (lambda xs: ", ".join(xs))
        out.append(Case("sets_lists", gold, wrap(fmt(shuffled), rng), True, "math"))
        out.append(Case("sets_lists", gold, wrap(fmt(items[:-1]), rng), False, "math"))  # one missing
        if len(set(items)) == len(items):
            out.append(
                Case(
                    "sets_lists",
                    gold,
                    wrap(fmt(items + [items[0]]) if False else fmt(items[:-1] + ["1000"]), rng),
                    False,
                    "math",
                )
            )
    for gold in sorted({r["answer"] for r in rows(data / "math" / "test.jsonl") if "\\pm" in r["answer"]})[
        :n
    ]:
        base, _, delta = gold.partition("\\pm")
        if not base.strip() or "," in gold:
            continue
        out.append(
            Case(
                "sets_lists",
                gold,
                wrap(f"{base.strip()} + {delta.strip()}, {base.strip()} - {delta.strip()}", rng),
                True,
                "math",
            )
        )
        out.append(Case("sets_lists", gold, wrap(f"{base.strip()} + {delta.strip()}", rng), False, "math"))
    return out


def matrix_cases(data: Path, rng: random.Random, n: int) -> list[Case]:
    golds = sorted({r["answer"] for r in rows(data / "math" / "test.jsonl") if "pmatrix" in r["answer"]})
    out = []
    for gold in rng.sample(golds, min(n, len(golds))):
        body = gold.split("\\begin{pmatrix}", 1)[1].rsplit("\\end{pmatrix}", 1)[0]
        cells = [[c.strip() for c in row.split("&")] for row in body.split("\\\\")]
        flat = [c for row in cells for c in row]

        def render(grid, env="pmatrix"):
            return f"\\begin{{{env}}} " + " \\\\ ".join(" & ".join(r) for r in grid) + f" \\end{{{env}}}"

        out.append(Case("matrices", gold, wrap(render(cells, "bmatrix"), rng), True, "math"))
        out.append(Case("matrices", gold, wrap(render(cells).replace(" ", ""), rng), True, "math"))
        if len(set(flat)) > 1:
            k = next(i for i in range(1, len(flat)) if flat[i] != flat[0])
            swapped = flat[:]
            swapped[0], swapped[k] = swapped[k], swapped[0]
            width = len(cells[0])
            grid = [swapped[i : i + width] for i in range(0, len(swapped), width)]
            out.append(Case("matrices", gold, wrap(render(grid), rng), False, "math"))
    return out


def text_unit_cases(data: Path, rng: random.Random, n: int) -> list[Case]:
    golds = [r["answer"] for r in rows(data / "math" / "test.jsonl")]
    units = sorted(
        {g for g in golds if re.fullmatch(r"-?[\d.,\\!]+\s*(?:\\,)?\s*\\(?:text|mbox)\{\s*[a-z ]+\}", g)}
    )
    degrees = sorted({g for g in golds if re.fullmatch(r"-?\d+\^\{?\\circ\}?", g)})
    percents = sorted({g for g in golds if re.fullmatch(r"-?[\d.]+\s*\\%", g)})
    choices = sorted({g for g in golds if re.fullmatch(r"\\text\{\([A-E]\)\}", g)})
    words = sorted({g for g in golds if re.fullmatch(r"\\text\{[a-z]+\}", g)})
    out = []
    for gold in rng.sample(units, min(n // 2, len(units))):
        leading = re.split(r"\\text|\\mbox", gold)[0]
        number = re.sub(r"[^\d.\-]", "", leading)
        unit = re.search(r"\{\s*([a-z ]+)\}", gold).group(1).strip()
        out.append(Case("text_units", gold, wrap(number, rng), True, "math"))
        out.append(Case("text_units", gold, wrap(f"{number} \\text{{ {unit}}}", rng), True, "math"))
        out.append(
            Case("text_units", gold, wrap(f"{float(number) + 1:g} \\text{{ {unit}}}", rng), False, "math")
        )
    for gold in rng.sample(degrees, min(n // 3, len(degrees))):
        number = re.match(r"-?\d+", gold).group(0)
        out.append(Case("text_units", gold, wrap(number, rng), True, "math"))
        out.append(Case("text_units", gold, wrap(f"{number}^\\circ", rng), True, "math"))
        out.append(Case("text_units", gold, wrap(f"{int(number) + 1}^\\circ", rng), False, "math"))
    for gold in percents:
        number = re.match(r"-?[\d.]+", gold).group(0)
        out.append(Case("text_units", gold, wrap(number, rng), True, "math"))
        out.append(Case("text_units", gold, wrap(f"{number}\\%", rng), True, "math"))
    for gold in choices:
        letter = gold[7]
        other = "ABCDE"[("ABCDE".index(letter) + 1) % 5]
        out.append(Case("text_units", gold, wrap(f"\\text{{({letter})}}", rng), True, "math"))
        out.append(Case("text_units", gold, wrap(f"({letter})", rng), True, "math"))
        out.append(Case("text_units", gold, wrap(f"\\text{{({other})}}", rng), False, "math"))
    for gold in words:
        word = gold[6:-1]
        out.append(Case("text_units", gold, wrap(word, rng), True, "math"))
        other = {"even": "odd", "odd": "even"}.get(word, "none")
        out.append(Case("text_units", gold, wrap(f"\\text{{{other}}}", rng), False, "math"))
    return out


def olympiad_multi_cases(data: Path, rng: random.Random, n: int) -> list[Case]:
    out = []
    records = [r for r in rows(data / "olympiadbench" / "test.jsonl") if r["is_multiple_answer"]]
    for r in records[:n]:
        gold = r["final_answer"][0]
        items = [p.strip().strip("$").strip() for p in split_top(gold.replace("$", ""))]
        if len(items) < 2 or len(set(items)) < len(items) or any("where" in i or "k" in i for i in items):
            continue
        shuffled = items[::-1]
        out.append(
            Case("olympiad_multi", r["final_answer"], wrap(", ".join(shuffled), rng), True, "olympiadbench")
        )
        out.append(
            Case("olympiad_multi", r["final_answer"], wrap(", ".join(items), rng), True, "olympiadbench")
        )
        out.append(
            Case("olympiad_multi", r["final_answer"], wrap(items[0], rng), False, "olympiadbench")
        )  # first only
        out.append(
            Case(
                "olympiad_multi", r["final_answer"], wrap(", ".join(items[:-1]), rng), False, "olympiadbench"
            )
        )
    for r in [
        r for r in rows(data / "olympiadbench" / "test.jsonl") if r["unit"] and not r["is_multiple_answer"]
    ]:
        gold = r["final_answer"][0].strip("$")
        unit = r["unit"].strip("$")
        out.append(
            Case(
                "olympiad_multi",
                r["final_answer"],
                wrap(f"{gold} \\text{{ {unit}}}", rng),
                True,
                "olympiadbench",
                r["unit"],
                "unit",
            )
        )
    return out


def equation_cases(data: Path, rng: random.Random, n: int) -> list[Case]:
    out = []
    numeric = [
        r["answer"] for r in rows(data / "math" / "math500.jsonl") if re.fullmatch(r"-?\d+", r["answer"])
    ]
    for gold in rng.sample(numeric, min(n // 2, len(numeric))):
        var = rng.choice("xnka")
        out.append(Case("equations", gold, wrap(f"{var} = {gold}", rng), True, "math"))
        out.append(Case("equations", gold, wrap(f"{var} = {int(gold) + 1}", rng), False, "math"))
    lines = [r["answer"].strip("$") for r in rows(data / "gaokao2023en" / "test.jsonl")]
    lines += [
        r["final_answer"][0].strip("$")
        for r in rows(data / "olympiadbench" / "test.jsonl")
        if not r["is_multiple_answer"]
    ]
    lines += [r["answer"] for r in rows(data / "math" / "test.jsonl")]
    assigns = sorted(
        {g for g in lines if re.fullmatch(r"[a-zA-Z](?:_\{?\w+\}?)?(?:\([a-z]\))?\s*=\s*[^=,]+", g)}
    )
    for gold in rng.sample(assigns, min(n, len(assigns))):
        lhs, rhs = (s.strip() for s in gold.split("=", 1))
        expr = sympy_value(rhs)
        out.append(Case("equations", gold, wrap(rhs, rng), True, "math"))
        if expr is not None:
            out.append(Case("equations", gold, wrap(f"{lhs} = {latex_of(expr)}", rng), True, "math"))
            if numerically_different(expr + 1, expr):
                out.append(Case("equations", gold, wrap(f"{lhs} = {latex_of(expr + 1)}", rng), False, "math"))
    planes = sorted({g for g in lines if re.fullmatch(r"[^=]*[xyz][^=]*=\s*0", g)})
    for gold in planes:
        lhs = gold.split("=")[0]
        expr = sympy_value(lhs)
        if expr is None:
            continue
        out.append(Case("equations", gold, wrap(f"{latex_of(-expr)} = 0", rng), True, "math"))
        out.append(Case("equations", gold, wrap(f"{latex_of(2 * expr)} = 0", rng), True, "math"))
        out.append(Case("equations", gold, wrap(f"{latex_of(expr + 1)} = 0", rng), False, "math"))
    return out


def known_failure_cases(rng: random.Random) -> list[Case]:
    """DESIGN.md section 4: what math-verify / the Qwen grader get wrong, and our stated policies."""
    table = [
        # tiny values equal under an absolute tolerance
        ("10^{-10}", "2 \\cdot 10^{-10}", False),
        ("1 \\times 10^{-8}", "1.5 \\times 10^{-8}", False),
        ("0.0000001", "0.0000002", False),
        ("3 \\cdot 10^{-7}", "0.0000003", True),
        # exact rationals kept exact
        ("\\frac{1}{2004!}", "\\frac{1}{2006!}", False),
        ("\\frac{2005 \\cdot 2006}{2006!}", "\\frac{1}{2004!}", True),
        ("\\frac{1}{3}", "\\frac{333333}{1000000}", False),
        ("\\frac{1}{3}", "0.333333333", True),
        ("\\frac{2^{100}+1}{2^{100}}", "1", False),
        # tuples with different elements
        ("(1,2,3)", "(1,2,4)", False),
        ("(1,2,3)", "(1,2)", False),
        ("(2,1)", "(1,2)", False),
        ("(1, 8, 19)", "(1,8,19)", True),
        # equations written outside LaTeX
        ("x = 5", "The answer is x = 6.", False),
        ("x = 5", "The answer is x = 5.", True),
        ("y = 2x + 3", "The answer is y = 2x + 4.", False),
        # percent: one explicit policy, no x100 leniency
        ("50\\%", "0.5", False),
        ("50\\%", "50", True),
        ("12.5\\%", "0.125", False),
        ("0.25", "25\\%", False),
        # every answer of a multi-answer item
        (["$69$", "$84$"], "69", False),
        (["$69$", "$84$"], "84, 69", True),
        (["$1,3$"], "1", False),
        # intervals: ends matter
        ("[2, 5)", "(2, 5)", False),
        ("[2, 5)", "[2, 5]", False),
        ("(-\\infty, 3]", "x \\le 3", True),
        # sets unordered, duplicates count
        ("\\{1, 2\\}", "\\{2, 1\\}", True),
        ("-2, -2", "-2", False),
    ]
    out = [
        Case("known_failures", g, wrap(p, rng, "boxed") if not p.startswith("The answer") else p, lab)
        for g, p, lab in table
    ]
    return out


def extraction_cases(data: Path, rng: random.Random, n: int) -> list[Case]:
    golds = [r["answer"] for r in rows(data / "math" / "math500.jsonl") if re.fullmatch(r"\d+", r["answer"])]
    out = []
    for gold in rng.sample(golds, min(n, len(golds))):
        other = str(int(gold) + 3)
        head = rng.choice(STEPS)
        out += [
            Case("extraction", gold, wrap(gold, rng, "minerva"), True, "math"),
            Case(
                "extraction",
                gold,
                f"{head}We first get \\boxed{{{other}}}, but that misses a case; "
                f"the answer is \\boxed{{{gold}}}.",
                True,
                "math",
            ),
            Case(
                "extraction",
                gold,
                f"{head}We first get \\boxed{{{gold}}}, but correcting an error gives \\boxed{{{other}}}.",
                False,
                "math",
            ),
            Case(
                "extraction",
                gold,
                f"{head}A first guess is \\boxed{{{gold}}}. "
                f"Re-checking, the final answer is \\boxed{{\\frac{{{other}}}{{",
                False,
                "math",
                note="truncated",
            ),
            Case("extraction", gold, f"{head}The answer is $\\boxed {gold}$.", True, "math"),
        ]
    return out


def realistic_cases(data: Path, rng: random.Random, n: int) -> list[Case]:
    """The hand-written table of answer forms as models write them (tests/realistic_cases.py), whole."""
    sys.path.insert(0, str(REPO / "tests"))
    from realistic_cases import CASES

    return [Case("realistic", c.gold, c.output, c.expected, c.benchmark, note=c.group) for c in CASES]


BUILDERS = {
    "gsm8k": gsm8k_cases,
    "numbers": number_cases,
    "constants": constant_cases,
    "expressions": expression_cases,
    "tuples_intervals": tuple_interval_cases,
    "sets_lists": set_list_cases,
    "matrices": matrix_cases,
    "text_units": text_unit_cases,
    "olympiad_multi": olympiad_multi_cases,
    "equations": equation_cases,
    "extraction": extraction_cases,
    "realistic": realistic_cases,
}


def build_cases(data: Path, per_category: int, seed: int) -> list[Case]:
    cases: list[Case] = []
    for name, builder in BUILDERS.items():
        cases += builder(data, random.Random(f"{seed}-{name}"), per_category)
    cases += known_failure_cases(random.Random(f"{seed}-known"))
    return cases


# ---------------------------------------------------------------------------------------------------
# Running both checkers


def grade_ours(case: Case, timeout: float) -> tuple[bool, str]:
    from prm_selfreward.grading import check

    verdict = check(case.output, case.gold, benchmark=case.benchmark, timeout=timeout, unit=case.unit)
    return verdict.correct, f"{verdict.reason} [{verdict.predicted!r}]"


def grade_math_verify(case: Case, timeout: int) -> tuple[bool, str]:
    from math_verify import parse, verify

    gold = case.gold[0] if isinstance(case.gold, list) else case.gold  # the documented usage: one gold
    gold = gold if "$" in gold else f"${gold}$"
    try:
        parsed_gold = parse(gold, parsing_timeout=timeout)
        parsed_pred = parse(case.output, parsing_timeout=timeout)
        ok = bool(verify(parsed_gold, parsed_pred, timeout_seconds=timeout))
        return ok, repr(parsed_pred[-1] if parsed_pred else None)
    except Exception as exc:  # math-verify raises on some inputs; count as not equal
        return False, type(exc).__name__


def run_interleaved(cases: list[Case], timeout: float) -> dict[str, tuple[list[bool], float, list[str]]]:
    """Grade every case with both checkers, alternating which goes first, timing each call: on a
    shared machine whose load drifts, both see the same conditions."""
    runs: dict[str, Any] = {"ours": ([], 0.0, []), "math-verify": ([], 0.0, [])}
    graders = {
        "ours": lambda c: grade_ours(c, timeout),
        "math-verify": lambda c: grade_math_verify(c, int(timeout)),
    }
    totals = {"ours": 0.0, "math-verify": 0.0}
    for index, case in enumerate(cases):
        order = ("ours", "math-verify") if index % 2 == 0 else ("math-verify", "ours")
        for name in order:
            started = time.perf_counter()
            ok, note = graders[name](case)
            totals[name] += time.perf_counter() - started
            runs[name][0].append(ok)
            runs[name][2].append(note)
    return {name: (runs[name][0], totals[name], runs[name][2]) for name in runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("PRM_SR_DATA_DIR", REPO.parent / "shared" / "data")),
    )
    parser.add_argument("--per-category", type=int, default=60, help="Gold answers sampled per category.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument(
        "--show-errors", type=int, default=0, help="Print up to N label disagreements per checker."
    )
    parser.add_argument(
        "--dump", type=Path, help="Write the labelled cases as JSON Lines (gold, prediction, label)."
    )
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    cases = build_cases(args.data_dir, args.per_category, args.seed)
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as handle:
            for case in cases:
                handle.write(
                    json.dumps(
                        {
                            "category": case.category,
                            "gold": case.gold,
                            "prediction": case.output,
                            "benchmark": case.benchmark,
                            "unit": case.unit,
                            "label": case.label,
                        }
                    )
                    + "\n"
                )

    # Warm both (imports, parser tables, our worker process) outside the timed runs.
    warm = [
        Case("warm", "\\frac{1}{2}", "\\boxed{0.5}", True),
        Case("warm", "x^2", "\\boxed{x \\cdot x}", True),
    ]
    run_interleaved(warm, args.timeout)

    by_cat: dict[str, list[int]] = defaultdict(list)
    for index, case in enumerate(cases):
        by_cat[case.category].append(index)

    console = Console()
    table = Table(
        title=f"Answer checker vs math-verify: {len(cases)} labelled cases (one process, sequential)"
    )
    for col in [
        "category",
        "cases",
        "ours acc",
        "math-verify acc",
        "ours checks/s",
        "math-verify checks/s",
        "speed ratio",
    ]:
        table.add_column(col, justify="left" if col == "category" else "right")
    totals = {"ours": [0, 0.0], "mv": [0, 0.0]}
    errors: dict[str, list[str]] = {"ours": [], "math-verify": []}
    agreement = ""
    for category, indices in by_cat.items():
        subset = [cases[i] for i in indices]
        runs = run_interleaved(subset, args.timeout)
        ours, ours_time, ours_notes = runs["ours"]
        mv, mv_time, mv_notes = runs["math-verify"]
        ours_ok = sum(r == c.label for r, c in zip(ours, subset, strict=True))
        mv_ok = sum(r == c.label for r, c in zip(mv, subset, strict=True))
        totals["ours"][0] += ours_ok
        totals["ours"][1] += ours_time
        totals["mv"][0] += mv_ok
        totals["mv"][1] += mv_time
        for name, res, notes in (("ours", ours, ours_notes), ("math-verify", mv, mv_notes)):
            for r, c, note in zip(res, subset, notes, strict=True):
                if r != c.label:
                    errors[name].append(
                        f"[{category}] label={c.label} gold={c.gold!r} out=...{c.output[-90:]!r} -> {note}"
                    )
        if category == "realistic":
            same = sum(a == b for a, b in zip(ours, mv, strict=True))
            agreement = (
                f"ours and math-verify agree on {same} of {len(subset)} realistic cases "
                f"({same / len(subset):.1%})"
            )
        table.add_row(
            category,
            str(len(subset)),
            f"{ours_ok / len(subset):.1%}",
            f"{mv_ok / len(subset):.1%}",
            f"{len(subset) / ours_time:,.0f}",
            f"{len(subset) / mv_time:,.0f}",
            f"{mv_time / ours_time:.1f}x",
        )
    n = len(cases)
    table.add_row(
        "all",
        str(n),
        f"{totals['ours'][0] / n:.1%}",
        f"{totals['mv'][0] / n:.1%}",
        f"{n / totals['ours'][1]:,.0f}",
        f"{n / totals['mv'][1]:,.0f}",
        f"{totals['mv'][1] / totals['ours'][1]:.1f}x",
        style="bold",
    )
    console.print(table)
    console.print(
        "speed ratio = math-verify time / our time (>1: ours faster); a timeout counts as not equal."
    )
    if agreement:
        console.print(agreement, highlight=False)
    _print_overhead(console)
    if args.show_errors:
        for name, lines in errors.items():
            console.print(f"\n{name}: {len(lines)} disagreement(s) with the labels", highlight=False)
            for line in lines[: args.show_errors]:
                console.print("  " + line, highlight=False, markup=False)


def _print_overhead(console) -> None:
    """What the process boundary costs: one round trip with a job the worker decides at once."""
    from prm_selfreward.grading.timeout import default_pool

    with default_pool().acquire() as worker:
        worker.wait_ready()
        rounds = 300
        started = time.perf_counter()
        for _ in range(rounds):
            worker.compare(("1",), "1", 5.0)
        per_call = (time.perf_counter() - started) / rounds
    console.print(
        f"worker round trip (pipe + pickle + CPU-time accounting): {per_call * 1e6:.0f} us "
        "per sympy comparison",
        highlight=False,
    )


if __name__ == "__main__":
    main()
