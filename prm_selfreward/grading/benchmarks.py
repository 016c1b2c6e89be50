"""Per-benchmark grading rules, and the one owner of gold answers: where the predicted answer is
looked for, and how gold answers are read from the benchmarks' own records (the loaders in
:mod:`prm_selfreward.data.benchmarks` call :func:`gold_answers`).

| benchmark | prediction: sources tried in order | gold |
|---|---|---|
| ``gsm8k`` | ``####``, box, Minerva, "answer is", math span / bold, last number | the number after ``####`` (commas dropped) |
| ``math``, ``math500`` | box, Minerva, ``####``, "answer is", math span / bold, last number | ``answer``, else solution's box |
| ``olympiadbench`` | as ``math`` | ``final_answer`` (a list; all required), ``unit`` stripped |
| ``gaokao2023en``, ``aime24``, ``amc23`` | as ``math`` | ``answer`` (AMC floats written as integers) |

``None`` (no benchmark) behaves like ``math``. Whatever the benchmark, a gold given to
:func:`~prm_selfreward.grading.check` that is a whole reference solution is reduced to its answer:
its last box (run), else its ``#### N`` line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .extract import DEFAULT_ORDER, Source, extract_answer, find_boxed
from .numbers import number_text


class MalformedRecord(ValueError):
    """A benchmark record whose gold answer cannot be read (e.g. a GSM8K answer without ``####``)."""


@dataclass(frozen=True)
class BenchmarkRules:
    name: str
    order: tuple[Source, ...] = DEFAULT_ORDER


_GSM8K_ORDER: tuple[Source, ...] = ("gsm8k", "boxed", "minerva", "answer_is", "math", "last_number")

RULES: dict[str, BenchmarkRules] = {
    "gsm8k": BenchmarkRules("gsm8k", _GSM8K_ORDER),
    "math": BenchmarkRules("math"),
    "math500": BenchmarkRules("math500"),
    "olympiadbench": BenchmarkRules("olympiadbench"),
    "gaokao2023en": BenchmarkRules("gaokao2023en"),
    "aime24": BenchmarkRules("aime24"),
    "amc23": BenchmarkRules("amc23"),
}
BENCHMARKS = tuple(RULES)


def rules_for(benchmark: str | None) -> BenchmarkRules:
    """The rules of ``benchmark`` (None: the default rules). Raises ValueError for an unknown name."""
    if benchmark is None:
        return BenchmarkRules("default")
    key = benchmark.lower().replace("-", "").replace("_", "")
    aliases = {
        "math5000": "math",
        "hendrycksmath": "math",
        "gaokao": "gaokao2023en",
        "aime": "aime24",
        "amc": "amc23",
    }
    key = aliases.get(key, key)
    if key not in RULES:
        raise ValueError(f"unknown benchmark {benchmark!r}; known: {', '.join(BENCHMARKS)}")
    return RULES[key]


# ---------------------------------------------------------------------------------------------------
# Gold answers of the benchmark files


def strip_math_delimiters(text: str) -> str:
    """``$x$`` -> ``x`` when the whole string is one inline-math span; anything else is returned stripped
    but otherwise unchanged (the checker also accepts ``$...$``)."""
    s = text.strip()
    if len(s) >= 2 and s.startswith("$") and s.endswith("$") and s.count("$") == 2:
        return s[1:-1].strip()
    return s


# A word of 3+ letters that is not a LaTeX command (``\\frac``): prose such as "where", "and".
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")


def split_multiple_answers(text: str) -> list[str]:
    """Split an OlympiadBench ``is_multiple_answer`` gold string into its required answers.

    Commas split only at bracket depth 0 (``()[]{}``, so tuples, intervals and sets stay whole); each
    piece loses its ``$`` wrappers (the upstream strings put ``$`` inconsistently: ``$69$,$84$``,
    ``$-2,0,2$``, ``$221,$8$``). An answer with prose outside math (``$f(x)=ax+b$, where $b$ is ...``)
    cannot be split safely and is returned whole.
    """
    s = text.strip()
    outside_math = re.sub(r"\$[^$]*\$", " ", s)
    if _PROSE_WORD.search(outside_math):
        return [s]
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            pieces.append(s[start:i])
            start = i + 1
    pieces.append(s[start:])
    out = [p.strip().strip("$").strip() for p in pieces]
    out = [p for p in out if p]
    return out or [s]


def gsm8k_final_answer(solution: str) -> str:
    """The number after ``#### `` on the last line of a GSM8K reference solution, thousands separators
    removed. Raises :class:`MalformedRecord` when there is no ``####`` line."""
    lines = [line for line in solution.strip().splitlines() if line.strip()]
    if not lines or not lines[-1].lstrip().startswith("####"):
        raise MalformedRecord("GSM8K answer has no final '#### N' line")
    value = lines[-1].lstrip()[4:].strip().replace(",", "")
    if not value:
        raise MalformedRecord("GSM8K answer has an empty '####' line")
    return value


def gsm8k_number(text: str) -> str:
    """The gold number of a GSM8K answer, leniently: after the last ``####`` if present, commas
    dropped (a bare number is returned as it is)."""
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    return text.strip().replace(",", "")


def last_boxed_content(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (brace-matched), or None."""
    boxes = find_boxed(text)
    return boxes[-1] if boxes else None


def gold_answers(benchmark: str, record: dict[str, Any]) -> list[str]:
    """The gold answers of a raw record of one of the benchmark files (original field names), every
    one required. Empty for a record without a gold (two Gaokao records). Raises
    :class:`MalformedRecord` when the record lacks its gold field.

    GSM8K: the number of the final ``####`` line. MATH / MATH-500: ``answer``, else the last box of
    ``solution`` (hub rows lack the field). OlympiadBench: ``final_answer`` without ``$`` wrappers,
    split into its answers when ``is_multiple_answer``. Gaokao: ``answer`` without ``$``. AIME / AMC:
    ``answer`` (AMC's floats such as ``27.0`` written as integers).
    """
    name = rules_for(benchmark).name
    if name == "gsm8k":
        solution = record.get("answer")
        if not isinstance(solution, str):
            raise MalformedRecord("field 'answer' missing or not a string")
        return [gsm8k_final_answer(solution)]
    if name in ("math", "math500"):
        answer = record.get("answer")
        if not isinstance(answer, str):
            solution = record.get("solution")
            answer = last_boxed_content(solution) if isinstance(solution, str) else None
            if answer is None:
                raise MalformedRecord("no 'answer' field and no \\boxed{} in the solution")
        return [answer.strip()]
    if name == "olympiadbench":
        final = record.get("final_answer")
        if isinstance(final, str):
            final = [final]
        if not isinstance(final, list) or not final or not all(isinstance(a, str) for a in final):
            raise MalformedRecord("'final_answer' must be a non-empty list of strings")
        answers: list[str] = []
        for item in final:
            answers += (
                split_multiple_answers(item) if record.get("is_multiple_answer") else [strip_math_delimiters(item)]
            )
        return answers
    raw = record.get("answer")
    if raw is None:
        raise MalformedRecord("no 'answer' field")
    if name == "gaokao2023en":
        answer = strip_math_delimiters(str(raw))
        return [answer] if answer else []
    return [number_text(raw)]


def gold_from_record(benchmark: str, record: dict[str, Any]) -> tuple[str | list[str], str | None]:
    """``(gold, unit)`` from a raw record, ready for :func:`~prm_selfreward.grading.check`: the one
    answer of :func:`gold_answers` (``""`` when there is none), or for OlympiadBench the list of
    answers (every one required) and its ``unit``. Raises :class:`MalformedRecord` (a ValueError)."""
    answers = gold_answers(benchmark, record)
    if rules_for(benchmark).name == "olympiadbench":
        return answers, record.get("unit") or None
    return (answers[0] if answers else ""), None


# ---------------------------------------------------------------------------------------------------
# Gold as given to check()


def prepare_gold(gold: Any, benchmark: str | None) -> str | list[str]:
    """Gold as given to :func:`~prm_selfreward.grading.check`, made ready for comparison: numbers
    (AMC floats) become strings; a gold that is a whole reference solution becomes its answer (the
    last box run, else the last ``#### N`` line; GSM8K golds drop thousands commas)."""
    if isinstance(gold, list | tuple):
        return [_reference_answer(number_text(g)) for g in gold]
    gold = _reference_answer(number_text(gold))
    if benchmark is not None and rules_for(benchmark).name == "gsm8k":
        return gsm8k_number(gold)
    return gold


_GSM8K_LINE_RE = re.compile(r"(?<!#)####(?!#)")


def _reference_answer(gold: str) -> str:
    if "\\boxed" in gold or "\\fbox" in gold:
        extraction = extract_answer(gold, ("boxed",))
        if extraction.answer is not None:
            return extraction.answer
    if _GSM8K_LINE_RE.search(gold):
        extraction = extract_answer(gold, ("gsm8k",))
        if extraction.answer is not None:
            return extraction.answer.replace(",", "") if re.fullmatch(r"[\d,.\-]+", extraction.answer) else extraction.answer
    return gold
