"""Split solutions into steps (losslessly) and build step-wise prompts.

The process-based method works on steps: the canonical format is ``Step n: ...`` at the start of a
line, n counting from 1 (the solving prompt in :mod:`prm_selfreward.prompts` asks for it). Other
sources need fallbacks: blank-line paragraphs (MATH reference solutions), one step per line (GSM8K
reference solutions) and a caller-given delimiter (Math-Shepherd's ``ки``).

Contract of :func:`split_steps`, whatever the format:

- lossless: ``"".join(split_steps(text)) == text`` exactly; separators (newlines, blank lines, the
  delimiter) stay at the end of the step they follow, so the first step keeps nothing before it and
  the last step keeps the trailing whitespace;
- no step is empty or whitespace-only, except that a whitespace-only text is one step (and ``""`` gives
  ``[]``);
- never a split inside ``$...$``, ``$$...$$``, ``\\[...\\]``, ``\\(...\\)``,
  ``\\begin{env}...\\end{env}``, a fenced code block or an ``[asy]...[/asy]`` drawing (MATH); see
  :func:`protected_spans` for how openers are paired (an opener without a closer is plain text, so a
  stray ``$`` cannot swallow the rest of a solution, and inline math never spans a line that starts
  with a step marker, so a sloppy ``$`` cannot glue two steps together).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from typing import Literal

from .grading.extract import matching_brace

StepFormat = Literal["auto", "step", "paragraph", "line", "delimiter"]
FORMATS: tuple[str, ...] = ("auto", "step", "paragraph", "line", "delimiter")

MATH_SHEPHERD_DELIMITER = "ки"
"""The step tag of the Math-Shepherd data set; ``format="auto"`` recognises it."""

# A step marker at a line start: "Step 3:", tolerating what chat models add around it
# ("## Step 3:", "**Step 3:**", "**Step 3**:"), any case of "step".
STEP_MARKER_RE = re.compile(
    r"^[ \t]*(?:\#{1,6}[ \t]*)?(?:\*\*)?[Ss][Tt][Ee][Pp][ \t]+(\d+)[ \t]*(?:\*\*)?[ \t]*:(?:\*\*)?[ \t]?",
    re.MULTILINE,
)
_BLANK_RUN_RE = re.compile(r"\n(?:[ \t]*\n)+")
_CALCULATOR_NOTE_RE = re.compile(r"<<[^<>\n]*>>")
_FENCE_RE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})", re.MULTILINE)


# ---------------------------------------------------------------------------------------------------
# Protected spans: where a split must never happen.


def _escaped(text: str, i: int) -> bool:
    """Whether ``text[i]`` is preceded by an odd number of backslashes (``\\$`` is a literal dollar)."""
    n = 0
    while i - 1 - n >= 0 and text[i - 1 - n] == "\\":
        n += 1
    return n % 2 == 1


class _Finder:
    """``str.find`` with the last answer per needle remembered, so many unclosed openers of the same
    kind cost one scan in total instead of one scan each (keeps the splitter linear on hostile text)."""

    def __init__(self, text: str):
        self.text = text
        self.cache: dict[str, tuple[int, int]] = {}

    def find(self, needle: str, start: int) -> int:
        hit = self.cache.get(needle)
        if hit is not None:
            searched_from, found = hit
            if searched_from <= start and (found == -1 or found >= start):
                return found
        found = self.text.find(needle, start)
        self.cache[needle] = (start, found)
        return found


def _find_unescaped(finder: _Finder, needle: str, start: int) -> int:
    pos = finder.find(needle, start)
    while pos != -1 and _escaped(finder.text, pos):
        pos = finder.find(needle, pos + 1)
    return pos


def _single_dollar_closers(text: str) -> list[int]:
    """Positions that may close inline ``$...$`` (pandoc's rule): an unescaped lone ``$`` with a
    non-space character before it and no digit right after it. The rule keeps currency amounts in
    word problems ("$2 per egg ... costs $18") from pairing up into fake math."""
    out = []
    for m in re.finditer(r"\$", text):
        i = m.start()
        if i == 0 or text[i - 1] in " \t\n$" or _escaped(text, i):
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$" or nxt.isdigit():
            continue
        out.append(i)
    return out


def _end_of_line(text: str, pos: int) -> int:
    nl = text.find("\n", pos)
    return len(text) if nl == -1 else nl


def protected_spans(text: str) -> list[tuple[int, int]]:
    """Half-open ``(start, end)`` spans of ``text`` no split may fall strictly inside, left to right.

    Scanned left to right, the first opener wins and the scan resumes after its closer:
    fenced code (a line starting with three or more backticks or tildes, closed by a line starting
    with the same fence), ``[asy]...[/asy]``, ``$$...$$``, ``\\[...\\]``, ``\\(...\\)``,
    ``\\begin{env}...\\end{env}`` (same-name nesting counted) and inline ``$...$`` (pandoc's rule:
    the opener is followed by a non-space, the closer preceded by a non-space and not followed by a
    digit; it may not span a blank line). Inline math (``$...$``, ``\\(...\\)``) may not span a line
    that starts with a step marker either: a sloppy ``$`` (``yields $ x = \\boxed{83}$.``) must not
    glue the next ``Step 2:`` onto its step. Escaped ``\\$`` is literal. An opener without a closer is
    literal text.
    """
    spans: list[tuple[int, int]] = []
    finder = _Finder(text)
    closers = _single_dollar_closers(text)
    blank_lines = [m.start() for m in _BLANK_RUN_RE.finditer(text)]
    step_lines = [m.start() for m in STEP_MARKER_RE.finditer(text)]
    fences = {m.start(): m for m in _FENCE_RE.finditer(text)}
    environments = _environment_pairs(text)
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        at_line_start = i == 0 or text[i - 1] == "\n"
        if at_line_start and (ch in " \t`~"):
            fence = fences.get(i)
            if fence is not None:
                marker = fence.group(1)
                close = re.compile(rf"^[ \t]{{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$", re.M)
                m = close.search(text, _end_of_line(text, fence.end()) + 1)
                if m is not None:
                    spans.append((i, m.end()))
                    i = m.end()
                    continue
                i = fence.end()
                continue
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt in ("[", "("):
                closer = "\\]" if nxt == "[" else "\\)"
                end = finder.find(closer, i + 2)
                if end != -1 and not (nxt == "(" and _holds(step_lines, i, end)):
                    spans.append((i, end + 2))
                    i = end + 2
                    continue
            elif nxt == "b" and i in environments:
                end = environments[i]
                spans.append((i, end))
                i = end
                continue
            i += 2  # a backslash and the character it escapes (so "\\[" is a line break, then "[")
            continue
        if ch == "[" and text.startswith("[asy]", i):  # MATH's Asymptote drawings hold blank lines
            end = finder.find("[/asy]", i + 5)
            if end != -1:
                spans.append((i, end + 6))
                i = end + 6
                continue
        if ch == "$":
            if text.startswith("$$", i):
                end = _find_unescaped(finder, "$$", i + 2)
                if end != -1:
                    spans.append((i, end + 2))
                    i = end + 2
                    continue
                i += 2
                continue
            nxt = text[i + 1 : i + 2]
            if nxt and not nxt.isspace():
                k = bisect.bisect_right(closers, i)
                if k < len(closers):
                    end = closers[k]
                    if not _holds(blank_lines, i, end) and not _holds(step_lines, i, end):
                        spans.append((i, end + 1))
                        i = end + 1
                        continue
        i += 1
    return spans


def _holds(positions: list[int], start: int, end: int) -> bool:
    """Whether a position of the sorted ``positions`` lies strictly after ``start`` and before ``end``."""
    k = bisect.bisect_right(positions, start)
    return k < len(positions) and positions[k] < end


def _environment_pairs(text: str) -> dict[int, int]:
    """``{offset of \\begin{env}: end offset of its matching \\end{env}}`` for every balanced pair,
    same-name nesting matched with a stack in one pass (an unclosed begin simply has no entry)."""
    pairs: dict[int, int] = {}
    stacks: dict[str, list[int]] = {}
    for m in re.finditer(r"\\(begin|end)\{([^{}\n]{1,64})\}", text):
        stack = stacks.setdefault(m.group(2), [])
        if m.group(1) == "begin":
            stack.append(m.start())
        elif stack:
            pairs[stack.pop()] = m.end()
    return pairs


def _inside(spans: list[tuple[int, int]], starts: list[int], pos: int) -> bool:
    k = bisect.bisect_right(starts, pos - 1) - 1  # the last span starting strictly before pos
    return k >= 0 and pos < spans[k][1]


# ---------------------------------------------------------------------------------------------------
# Splitting.


def _candidate_cuts(text: str, fmt: str, delimiter: str | None) -> list[int]:
    """Offsets where a new step may start (before removing those inside protected spans)."""
    if fmt == "step":
        return [m.start() for m in STEP_MARKER_RE.finditer(text)]
    if fmt == "paragraph":
        return [m.end() for m in _BLANK_RUN_RE.finditer(text)]
    if fmt == "line":
        return [m.end() for m in re.finditer(r"\n", text)]
    if fmt == "delimiter":
        assert delimiter
        return [m.end() for m in re.finditer(re.escape(delimiter), text)]
    raise ValueError(f"unknown step format {fmt!r}; expected one of {', '.join(FORMATS)}")


def detect_format(text: str, delimiter: str | None = None) -> tuple[str, str | None]:
    """The ``(format, delimiter)`` that ``format="auto"`` uses for ``text``.

    In order: the caller's ``delimiter`` if it occurs; ``step`` if a ``Step n:`` marker starts a line;
    Math-Shepherd's ``ки`` if it occurs; ``paragraph`` if a blank line separates two non-blank parts;
    ``line`` otherwise.
    """
    if delimiter and delimiter in text:
        return "delimiter", delimiter
    if STEP_MARKER_RE.search(text):
        return "step", None
    if MATH_SHEPHERD_DELIMITER in text:
        return "delimiter", MATH_SHEPHERD_DELIMITER
    if _BLANK_RUN_RE.search(text.strip()):
        return "paragraph", None
    return "line", None


def split_steps(text: str, format: StepFormat | str = "auto", delimiter: str | None = None) -> list[str]:
    """Split a solution into steps; ``"".join(result) == text`` always.

    ``format``: ``"step"`` (a new step at each ``Step n:`` marker starting a line; text before the
    first marker is a step of its own if it is not blank), ``"paragraph"`` (blank lines end a step),
    ``"line"`` (each line is a step; blank lines stay with the line above), ``"delimiter"`` (each
    occurrence of ``delimiter`` ends a step and stays with it), ``"auto"`` (:func:`detect_format`).
    Raises ``ValueError`` for an unknown format or ``"delimiter"`` without a delimiter.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown step format {format!r}; expected one of {', '.join(FORMATS)}")
    if format == "delimiter" and not delimiter:
        raise ValueError('format="delimiter" needs a non-empty delimiter')
    if not text:
        return []
    fmt = format
    if fmt == "auto":
        fmt, delimiter = detect_format(text, delimiter)
    spans = protected_spans(text)
    starts = [s for s, _ in spans]
    cuts = [
        c
        for c in _candidate_cuts(text, fmt, delimiter)
        if 0 < c < len(text) and not _inside(spans, starts, c)
    ]
    pieces: list[str] = []
    prev = 0
    for cut in [*cuts, len(text)]:
        if cut <= prev:
            continue
        piece = text[prev:cut]
        if pieces and not piece.strip():
            pieces[-1] += piece  # whitespace-only: belongs to the step before it
        elif pieces and not pieces[-1].strip():
            pieces[-1] += piece  # leading whitespace: belongs to the first real step
        else:
            pieces.append(piece)
        prev = cut
    return pieces


def strip_calculator_notes(text: str) -> str:
    """Remove GSM8K's calculator annotations: ``"48/2 = <<48/2=24>>24"`` -> ``"48/2 = 24"``."""
    return _CALCULATOR_NOTE_RE.sub("", text)


# ---------------------------------------------------------------------------------------------------
# Canonical formatting and step prompts.


def step_marker(n: int) -> str:
    """The canonical marker of step ``n`` (1-based): ``"Step n: "``."""
    if n < 1:
        raise ValueError(f"step numbers start at 1, got {n}")
    return f"Step {n}: "


def step_body(step: str) -> str:
    """The step's text without its leading ``Step n:`` marker (if any) and surrounding whitespace."""
    m = STEP_MARKER_RE.match(step.lstrip("\n"))
    body = step.lstrip("\n")[m.end() :] if m else step
    return body.strip()


def format_steps(steps: Sequence[str]) -> str:
    """Canonical text ``"Step 1: ...\\nStep 2: ..."``: existing markers stripped, blank steps dropped,
    the rest renumbered from 1. No trailing newline."""
    bodies = [b for b in (step_body(s) for s in steps) if b]
    return "\n".join(step_marker(i) + body for i, body in enumerate(bodies, start=1))


def next_step_prefix(previous_steps: Sequence[str]) -> str:
    """What to append to a solving prompt (:func:`prm_selfreward.prompts.solve_prompt`) so the model
    writes step ``l = len(previous_steps) + 1``: the previous steps in canonical form, then
    ``"Step l: "``. With no previous steps it is ``"Step 1: "``."""
    done = format_steps(previous_steps)
    # Count non-blank steps rather than len(previous_steps): format_steps drops blank ones.
    n = sum(1 for s in previous_steps if step_body(s))
    return (done + "\n" if done else "") + step_marker(n + 1)


def guard_key(text: str) -> str:
    """A step's text as the step search's repeat and copy guards and the degeneracy monitor compare it:
    case-folded, whitespace collapsed, surrounding spaces and sentence punctuation (``.,;:!?``) removed.
    Stricter than whitespace normalisation, so "The answer is 5." repeats "the answer is 5"."""
    return " ".join(text.casefold().split()).strip(" .,;:!?")


def has_boxed_answer(step: str) -> bool:
    """Whether ``step`` holds a complete ``\\boxed{...}`` (braces balanced) with a non-blank answer."""
    for m in re.finditer(r"\\boxed\s*\{", step):
        close = matching_brace(step, m.end() - 1)
        if close != -1 and step[m.end() : close].strip():
            return True
    return False


# The answer lines a solution may end with instead of (or besides) a box, each with a value after it:
# GSM8K's "#### 18" at a line start; Minerva's "Final Answer: ..."; "the (final) answer is 18" /
# "Answer: $x = 3$" when the value starts like one (a digit, a sign, "$", a LaTeX command or "x ="), so that
# "the answer is the sum of ..." in the middle of the work does not end a solution. A value that is a
# box is left to has_boxed_answer (an unclosed or empty box is no answer). Runs of spaces are bounded,
# so a hostile text cannot make the regex backtrack.
_NOT_A_BOX = r"(?![ \t]{0,3}\$?[ \t]{0,3}\\(?:boxed|fbox)(?![A-Za-z]))"
ANSWER_LINE_RE = re.compile(
    r"^[ \t]{0,8}####[ \t]{0,8}" + _NOT_A_BOX + r"(?=\S)"
    r"|\bfinal[ \t]{1,3}answer[ \t]{0,3}(?:\*\*)?[ \t]{0,3}:(?:\*\*)?[ \t]{0,3}" + _NOT_A_BOX + r"(?=\S)"
    r"|\banswer[ \t]{0,3}(?:\*\*)?[ \t]{0,3}(?:is\b|:|=)(?:[ \t]{0,3}\*\*)?[ \t]{0,3}:?(?:[ \t]{0,3}\*\*)?"
    r"[ \t]{0,3}" + _NOT_A_BOX + r"(?=[-+\u2212]?[ \t]{0,3}[\d$\\]|[A-Za-z][ \t]{0,3}=)",
    re.IGNORECASE | re.MULTILINE,
)


def has_answer_line(step: str) -> bool:
    """Whether ``step`` holds an answer line with a value (:data:`ANSWER_LINE_RE`): ``#### 18`` at a
    line start, ``Final Answer: ...``, or "the (final) answer is" / "Answer:" followed by a value that
    starts with a digit, a sign, ``$``, a LaTeX command (``\\frac``, ``\\(`` ...) or ``x =``. A value
    that is a box counts only through :func:`has_boxed_answer`, so an unclosed or empty box is none."""
    return ANSWER_LINE_RE.search(step) is not None


def has_final_answer(step: str) -> bool:
    """Whether ``step`` states a final answer: a complete, non-blank ``\\boxed{...}``
    (:func:`has_boxed_answer`) or an answer line (:func:`has_answer_line`). The step search ends a
    solution at the first step for which this holds."""
    return has_boxed_answer(step) or has_answer_line(step)


__all__ = [
    "FORMATS",
    "MATH_SHEPHERD_DELIMITER",
    "STEP_MARKER_RE",
    "detect_format",
    "format_steps",
    "guard_key",
    "ANSWER_LINE_RE",
    "has_answer_line",
    "has_boxed_answer",
    "has_final_answer",
    "next_step_prefix",
    "protected_spans",
    "split_steps",
    "step_body",
    "step_marker",
    "strip_calculator_notes",
]
