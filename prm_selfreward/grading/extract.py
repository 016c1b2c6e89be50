"""Extraction: find the final answer in free text (a model's solution).

Extraction never decides correctness; it returns the answer *text* and where it came from, and
:mod:`~prm_selfreward.grading.equivalence` compares texts. First a text whose every LaTeX command
has a doubled backslash (JSON inside JSON) is unescaped once (:func:`unescape_latex`), and the text
is cut at the first chat token that follows content (``<|im_end|>``, ``<|eot_id|>``,
``<|im_start|>user``, ``</s>``, ...): whatever a model writes after ending its turn is not its answer
(a whole transcript is read from its last assistant header). Then the sources are tried in this
order (``gsm8k`` puts ``####`` first, see :mod:`~prm_selfreward.grading.benchmarks`), first match wins:

1. ``boxed``: the last ``\\boxed{...}`` / ``\\fbox{...}`` (real brace matching, nested braces,
   ``\\boxed 5`` without braces). Policy for several boxes: every box is collected in ``all_boxes``; the
   answer is the *last* box, extended backwards over a trailing run of boxes separated only by
   punctuation, whitespace, ``$``, ``\\(``/``\\)``, ``\\quad``, the words "and"/"or" or part labels
   ("for part (a)"): ``\\boxed{2} and \\boxed{3}`` gives ``2, 3``. A Minerva answer line written after
   the last box outranks it. A last ``\\boxed{`` that never closes (generation cut off) makes the
   result ``answer=None, truncated=True``: it never falls back to an earlier box or another source,
   because the answer the model was writing is unknown.
2. ``minerva``: "Final Answer: The final answer is $X$. I hope it is correct." (the lm-eval format).
3. ``gsm8k``: the last ``#### N`` wherever a line's answer can stand (line start, after ``Step n:``,
   after other text; a markdown heading ``#### Step 2: ...`` is not one).
4. ``answer_is``: the last "the (final) answer is X" / "answer: X" / "**Answer:** X" / "the correct
   choice is X", up to the end of the sentence (periods inside math do not end it) or the start of
   an explanation (", since ..."); a math span right after the marker is taken whole, also on the
   next lines (``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]``); a prose sentence gives what it
   says the answer is ("The volume of $ABCDEFGH$ is 120" gives 120); "option B is correct", when
   later, gives the letter.
5. ``math`` / ``bold``: whichever comes later in the text of the last math span (``$...$``,
   ``$$...$$``, ``\\(...\\)``, ``\\[...\\]``; inline spans hold no line break, display spans may; paired
   from the end; not prose and not a lone variable; after "about"/``\\approx``/"attained at" the span
   before it; a trailing run of spans joined by "and"/"or"/commas is one answer) and the last bold
   ``**X**`` that looks like an answer (it holds a digit, math or a choice letter; not a "Step n"
   heading). When ``last_number`` is in the order, the last number outranks both if it stands in a
   later sentence (math-verify's rule for run-on and cut-off completions).
6. ``last_number``: the last number in the text (after "about"/``≈`` the one before it; never a
   ``Step n`` label nor a number inside an inline span broken across lines; a mixed number
   ``4 4/9``, a bare ``\\frac{a}{b}``, a decimal comma ``2,74``), labelled as the fallback it is
   (:func:`~prm_selfreward.grading.check` uses it only against a numeric gold).

Every finder is linear in the length of the text (hostile inputs are tested): markers are found by
regexes without nested or unbounded backtracking, only the last :data:`MAX_MARKERS` markers are
examined, and each within :data:`WINDOW` characters.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Literal

Source = Literal["boxed", "minerva", "gsm8k", "answer_is", "math", "bold", "last_number", "none"]

#: Sources in the default order; :func:`extract_answer` takes another order as ``order``
#: (``"math"`` stands for the later of the math-span and bold finders).
DEFAULT_ORDER: tuple[Source, ...] = ("boxed", "minerva", "gsm8k", "answer_is", "math", "last_number")

#: Characters after a marker that may hold its answer.
WINDOW = 2000
#: How many of the last markers of one kind are examined (an empty one is skipped for the one before).
MAX_MARKERS = 20
#: A math span or bold text longer than this is not a final answer.
MAX_SPAN = 1000


@dataclass
class Extraction:
    """The final answer found in a text.

    ``answer`` is the answer text (None when nothing was found or the last box was cut off);
    ``source`` names the rule that found it; ``all_boxes`` holds the content of every closed box in
    order of appearance; ``truncated`` is True when the text ends inside an unclosed ``\\boxed{``.
    """

    answer: str | None
    source: Source
    all_boxes: list[str] = field(default_factory=list)
    truncated: bool = False


def matching_brace(text: str, open_idx: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``open_idx``, or -1 when it is never closed.

    Escaped braces (``\\{``, ``\\}``) do not open or close a group.
    """
    depth = 0
    i = open_idx
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


# ---------------------------------------------------------------------------------------------------
# Chat tokens

# <|im_end|>, <|eot_id|>, <|endoftext|>, <|start_header_id|>, <|user|>, </s>, <end_of_turn>, <eos>,
# DeepSeek's <｜end▁of▁sentence｜>.
_CHAT_TOKEN_RE = re.compile(
    r"<\|[A-Za-z_][A-Za-z0-9_]{0,40}\|>|</s>|<(?:end|start)_of_turn>|<eos>|<\uff5c[^\uff5c<>\n]{1,40}\uff5c>"
)


def strip_chat_tail(text: str) -> str:
    """``text`` up to the first chat token that follows non-blank content: everything after the model
    ended its turn is dropped (a leading ``<|im_start|>assistant`` header is not content). A whole
    transcript (it opens with a user or system turn) is read from its last assistant header on."""
    prev = 0
    for match in _CHAT_TOKEN_RE.finditer(text):
        segment = text[prev : match.start()].strip()
        if segment and segment not in _ROLE_WORDS:
            if prev > 0 and _OTHER_ROLE_RE.match(segment):
                headers = list(_ASSISTANT_HEADER_RE.finditer(text, match.start()))
                if headers:
                    return strip_chat_tail(text[headers[-1].end() :])
            return text[: match.start()]
        prev = match.end()
    return text


_ROLE_WORDS = {"assistant", "model", "Assistant"}
_OTHER_ROLE_RE = re.compile(r"^(?:user|system|human)\b", re.IGNORECASE)
# The header that opens an assistant turn, in the templates of _CHAT_TOKEN_RE.
_ASSISTANT_HEADER_RE = re.compile(
    r"<\|im_start\|>\s*assistant\b|<\|start_header_id\|>\s*assistant\s*<\|end_header_id\|>"
    r"|<start_of_turn>\s*model\b|<\|assistant\|>|<\uff5cAssistant\uff5c>"
)


# A text whose backslashes were escaped once more (JSON in JSON): "\\\\boxed{\\\\frac{1}{2}}".
_DOUBLED_COMMAND_RE = re.compile(r"\\\\(?:[A-Za-z]{2,}|[()\[\]{}$%])")
_SINGLE_COMMAND_RE = re.compile(
    r"(?<!\\)\\(?:boxed|frac|dfrac|sqrt|text|left|right|cdot|times|pi|begin|end|le|ge|infty)(?![A-Za-z])"
)
_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"\\": "\\", "n": "\n", "t": "\t", '"': '"', "/": "/"}


def unescape_latex(text: str) -> str:
    """``text`` with one level of string escaping undone when every LaTeX command in it is written
    with a doubled backslash (``\\\\frac``) and none with a single one: doubled backslashes become
    single and ``\\n`` / ``\\t`` / ``\\"`` the characters they stand for. Anything else is returned as
    it is (a TeX line break ``\\\\`` between matrix rows is not an escape)."""
    if "\\\\" not in text or not _DOUBLED_COMMAND_RE.search(text) or _SINGLE_COMMAND_RE.search(text):
        return text
    return _ESCAPE_RE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), text)


# ---------------------------------------------------------------------------------------------------
# Boxes

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BARE_TOKEN_RE = re.compile(r"[^\s$]+")


@dataclass
class _Box:
    start: int  # index of the backslash
    end: int  # index just after the closing brace (or the bare token)
    content: str | None  # None: unclosed (truncated)


def _scan_boxes(text: str) -> list[_Box]:
    boxes: list[_Box] = []
    pos = 0
    n = len(text)
    while True:
        match = _BOX_RE.search(text, pos)
        if match is None:
            return boxes
        i = match.end()
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            boxes.append(_Box(match.start(), n, None))
            return boxes
        if text[i] == "{":
            j = matching_brace(text, i)
            if j == -1:
                boxes.append(_Box(match.start(), n, None))
                return boxes
            boxes.append(_Box(match.start(), j + 1, text[i + 1 : j]))
            pos = j + 1
            continue
        # \boxed 5 / \boxed -3.5 / \boxed\frac12: take the run of non-space characters up to a $ or
        # a sentence end; TeX would take one token, but models mean the whole number.
        bare = _BARE_TOKEN_RE.match(text, i)
        token = bare.group(0) if bare else ""
        if len(token) > MAX_SPAN:
            token = ""
        token = token.rstrip(".,;:")
        if token:
            boxes.append(_Box(match.start(), i + len(token), token))
        pos = i + max(len(token), 1)


def find_boxed(text: str) -> list[str]:
    """Contents of every closed ``\\boxed{...}`` / ``\\fbox{...}`` in ``text``, in order (an unclosed
    last box is left out; use :func:`extract_answer` to learn about truncation)."""
    return [box.content for box in _scan_boxes(text) if box.content is not None]


# Text allowed between boxes (and math spans) of one multi-part answer: punctuation, spacing, math
# delimiters, and/or.
# Part labels may sit between them ("\\boxed{(3,3)} for part (a) and \\boxed{(1,1)}"), and inline
# delimiters around each ("\\(\\boxed{1}\\) and \\(\\boxed{-2}\\)").
_JOINER_RE = re.compile(
    r"(?:[\s,;.$]|\\quad|\\qquad|\\,|\\[()\[\]]|\\text\{\s*(?:and|or|,)\s*\}|\band\b|\bor\b"
    r"|\bfor\b|\bpart\b|\bin\b|\([a-h]\)|\((?:i{1,3}|iv|v|vi{1,3})\)|:)*",
    re.IGNORECASE,
)


def _is_joiner(text: str) -> bool:
    return len(text) <= 60 and _JOINER_RE.fullmatch(text) is not None


def _boxed(text: str) -> tuple[str | None, list[str], bool, int] | None:
    """``(answer, closed boxes, truncated, end of the last box)``, or None without a box."""
    boxes = _scan_boxes(text)
    if not boxes:
        return None
    closed = [b.content for b in boxes if b.content is not None]
    last = boxes[-1]
    if last.content is None:
        return None, closed, True, last.end
    run = [last]
    for box in reversed(boxes[:-1]):
        between = text[box.end : run[-1].start]
        if box.content is None or not _is_joiner(between):
            break
        run.append(box)
    run.reverse()
    parts = [b.content.strip() for b in run if b.content is not None and b.content.strip()]
    return (", ".join(parts) if parts else None), closed, False, last.end


# ---------------------------------------------------------------------------------------------------
# Math spans: $...$, $$...$$, \(...\), \[...\]


@dataclass(frozen=True)
class _Span:
    start: int  # the opener
    end: int  # just after the closer
    content: str


# Delimiter tokens, left to right: \\ (a line break) and \$ (a literal dollar) are consumed so that
# they are never read as delimiters.
_DELIM_RE = re.compile(r"\\\\|\\\$|\\[()\[\]]|\$\$|\$")
_OPENER = {"$": "$", "$$": "$$", "\\)": "\\(", "\\]": "\\["}
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")
# A word of prose (3+ letters, not a LaTeX command) outside \text{...}.
_PROSE_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}(?![A-Za-z])")
_TEXT_ARG_RE = re.compile(r"\\(?:text|mbox|mathrm|textbf|operatorname|begin|end)\s*\{[^{}]*\}")
_MATH_WORDS = {"and", "or", "cm", "km", "mm", "sin", "cos", "tan", "log", "sqrt", "frac", "pi"}


def _looks_like_prose(content: str) -> bool:
    words = [w for w in _PROSE_RE.findall(_TEXT_ARG_RE.sub(" ", content)) if w.lower() not in _MATH_WORDS]
    return len(words) >= 2


def math_spans(text: str) -> list[_Span]:
    """Every math span of ``text``, left to right (see :func:`_pair_spans`)."""
    return _pair_spans(text)[0]


def _pair_spans(text: str) -> tuple[list[_Span], list[tuple[int, int]]]:
    """``(spans, broken)``: the math spans of ``text`` left to right, and the inline pairs refused
    for holding a line break. Spans are paired from the end (a closer with the nearest opener of its
    kind before it), so that a stray ``$`` early in a text cannot shift the pairing of the final
    answer. A span may not hold a blank line; an inline span (``$...$``, ``\\(...\\)``) may not hold a
    line break at all (math-verify's rule: ``Answer $ \\n 9 \\n $`` is no span, and its number is
    not read as the last number either: ``broken``); an inline ``$`` span whose closer is followed by
    a digit is currency (``$5 and $7``), not math, and so is a ``$`` after a digit (``5$``). Linear:
    openers are looked up by bisection in per-kind position lists."""
    tokens = [(m.start(), m.group(0)) for m in _DELIM_RE.finditer(text)]
    positions: dict[str, list[int]] = {}
    for index, (_, tok) in enumerate(tokens):
        positions.setdefault(tok, []).append(index)
    blanks = [m.start() for m in _BLANK_LINE_RE.finditer(text)]
    newlines = [m.start() for m in re.finditer("\n", text)]
    spans: list[_Span] = []
    broken: list[tuple[int, int]] = []
    k = len(tokens) - 1
    while k >= 0:
        close_pos, tok = tokens[k]
        opener = _OPENER.get(tok)
        if opener is None:
            k -= 1
            continue
        earlier = positions.get(opener, [])
        o = bisect.bisect_left(earlier, k) - 1
        if o < 0:
            k -= 1
            continue
        open_index = earlier[o]
        open_pos = tokens[open_index][0]
        b = bisect.bisect_right(blanks, open_pos)
        blank_inside = b < len(blanks) and blanks[b] < close_pos
        currency = tok == "$" and (
            text[close_pos + 1 : close_pos + 2].isdigit() or text[open_pos - 1 : open_pos].isdigit()
        )
        line = bisect.bisect_right(newlines, open_pos)
        line_inside = tok in ("$", "\\)") and line < len(newlines) and newlines[line] < close_pos
        if blank_inside or currency or line_inside:
            ends_in_digit = text[close_pos - 1 : close_pos].isdigit()  # "7$": a price, not a span
            if line_inside and not blank_inside and not currency and not ends_in_digit:
                broken.append((open_pos, close_pos + len(tok)))
            k -= 1
            continue
        spans.append(_Span(open_pos, close_pos + len(tok), text[open_pos + len(opener) : close_pos]))
        k = open_index - 1
    spans.reverse()
    broken.reverse()
    return spans, broken


_VARIABLE_RE = re.compile(r"^[a-z](?:_\{?[A-Za-z0-9]{1,3}\}?)?$")
_APPROX_BEFORE_RE = re.compile(
    r"^\s*[,;(]?\s*(?:i\.e\.,?|that\s+is,?|or|which\s+is|so)?\s*"
    r"(?:about|approximately|roughly|around|nearly|\\approx|\u2248)\s*$",
    re.IGNORECASE,
)


# "$-1$, attained at $x = 0$": the last span states where the value is reached, not the value.
_CONDITION_BEFORE_RE = re.compile(
    r"^\s*,?\s*(?:which\s+is\s+)?(?:attained|achieved|reached|obtained|occurring|occurs|when|whenever|if)"
    r"(?:\s+(?:at|when|for|with))?\s*$",
    re.IGNORECASE,
)


def _span_run(text: str, spans: list[_Span], last: int) -> str | None:
    """The content of ``spans[last]`` joined with the spans before it that are separated from it only
    by joiners ("$x=1$ and $x=2$"), or None when the last span is not an answer."""
    span = spans[last]
    content = span.content.strip()
    if not content or len(content) > MAX_SPAN or _looks_like_prose(content) or _VARIABLE_RE.match(content):
        return None  # "the value of $n$ is 10": a variable named in prose is not the answer
    if last > 0 and (
        _APPROX_BEFORE_RE.search(text[spans[last - 1].end : span.start])
        or _CONDITION_BEFORE_RE.search(text[spans[last - 1].end : span.start])
    ):
        # "$\frac{5}{3}$, i.e. about $1.67$": the exact value, not its rounding
        earlier = spans[last - 1].content.strip()
        if earlier and not _looks_like_prose(earlier) and not _VARIABLE_RE.match(earlier):
            return earlier
    parts = [content]
    for earlier in reversed(spans[max(0, last - 20) : last]):
        between = text[earlier.end : span.start]
        body = earlier.content.strip()
        if not _is_joiner(between) or "." in between or not body or _looks_like_prose(body):
            break
        parts.append(body)
        span = earlier
    return ", ".join(reversed(parts))


def _last_math(text: str) -> tuple[int, str, int] | None:
    spans = math_spans(text)
    for index in range(len(spans) - 1, max(-1, len(spans) - 1 - MAX_MARKERS), -1):
        value = _span_run(text, spans, index)
        if value:
            return spans[index].start, value, spans[index].end
    return None


# ---------------------------------------------------------------------------------------------------
# Bold: **X**

_BOLD_NOT_ANSWER_RE = re.compile(r"^(?:step\s*\d|answer\b|final\s+answer\b|solution\b)|:$", re.IGNORECASE)
_CHOICE_ONLY_RE = re.compile(r"^\(?[A-E]\)?$")


def _last_bold(text: str) -> tuple[int, str, int] | None:
    marks = []
    pos = text.find("**")
    while pos != -1:
        marks.append(pos)
        pos = text.find("**", pos + 2)
    found = 0
    k = len(marks) - 1
    while k >= 1 and found < MAX_MARKERS:
        open_pos, close_pos = marks[k - 1], marks[k]
        content = text[open_pos + 2 : close_pos]
        k -= 1
        if "\n" in content or not content.strip() or len(content) > MAX_SPAN:
            continue
        k -= 1  # a pair: the next candidate ends before its opener
        found += 1
        value = content.strip().rstrip(".").strip()
        if _BOLD_NOT_ANSWER_RE.search(value):
            continue
        if re.search(r"[\d\\$]", value) or _CHOICE_ONLY_RE.match(value):
            return open_pos, value, close_pos + 2
    return None


# Between a math span and a number of a later sentence: a sentence end or a line break.
_LATER_SENTENCE_RE = re.compile(r"[.!?](?=\s)|\n")


def _math_or_bold(text: str, numbers: bool) -> tuple[str, Source] | None:
    """The later of the last math span and the last bold answer; when ``numbers``, the last number
    outranks both if it stands in a later sentence (``\\[ d = -200 \\]`` then "... hit it 200 feet
    away" reads 200, as does a run-on completion cut off long after its last math span)."""
    math = _last_math(text)
    bold = _last_bold(text)
    found: tuple[int, int, str, Source] | None = None
    if math and (not bold or math[0] > bold[0]):
        found = (math[0], math[2], math[1], "math")
    elif bold:
        found = (bold[0], bold[2], bold[1], "bold")
    if found is None:
        return None
    if numbers:
        number = _last_number_at(text)
        # (a sentence may end inside the span: "... \\geq 2.$$ Therefore ... 100%")
        if number is not None and number.start >= found[1] and (
            found[2].endswith((".", "!", "?")) or _LATER_SENTENCE_RE.search(text, found[1], number.start)
        ):
            return number.value, "last_number"
    return found[2], found[3]


# ---------------------------------------------------------------------------------------------------
# Markers: Minerva, ####, "the answer is"

_MINERVA_RE = re.compile(r"Final Answer:\s{0,20}The final answer is", re.IGNORECASE)
_HOPE_RE = re.compile(r"\.?\s*I hope it is correct", re.IGNORECASE)
# "#### N" wherever a line's answer can stand: at the start of a line, after a "Step n:" marker or
# after other text ("... = 26. #### 26"); not a markdown heading "#### Step 2: ..." (a word first).
_GSM8K_RE = re.compile(r"(?<!#)####(?!#)[ \t]*([^\n]*)")
_GSM8K_HEADING_RE = re.compile(r"^(?:\*\*)?[A-Za-z][A-Za-z']+\b(?![.)])")
_ANSWER_IS_RE = re.compile(
    r"\b(?:answers?|(?<=correct )(?:choice|option))\b(?:\*\*)?[ \t]*(?:is\b|are\b|:|=)(?:[ \t]*\*\*)?[ \t]*:?(?:\*\*)?"
    r"(?:[ \t]*(?:equal[ \t]+to|that|therefore|thus|then|simply)\b)?",
    re.IGNORECASE,
)
_SENTENCE_END_RE = re.compile(r"\.(?=\s|$)|\n")
_MARKDOWN_EDGE_RE = re.compile(r"^(?:\*\*|__)\s*|\s*(?:\*\*|__)$")


def _clean_value(value: str) -> str:
    value = value.strip()
    for _ in range(3):
        value = _MARKDOWN_EDGE_RE.sub("", value).strip().rstrip(".").strip()
    return value


def _leading_span(tail: str) -> tuple[str, int] | None:
    """A math span opening ``tail`` (after whitespace): ``(content, end)``, or None. An inline ``$``
    span holding a newline or a sentence end is currency ("$18. She earns $5 more"), not math."""
    start = len(tail) - len(tail.lstrip())
    for opener, closer in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$")):
        if not tail.startswith(opener, start):
            continue
        close = start + len(opener)
        while True:
            close = tail.find(closer, close)
            if close == -1 or opener != "$" or tail[close - 1] != "\\":
                break
            close += 1  # \$ inside a span is a literal dollar
        if close == -1:
            return None
        content = tail[start + len(opener) : close]
        if opener == "$" and ("\n" in content or re.search(r"\.\s", content)):
            return None
        return content, close + len(closer)
    return None


def _sentence(tail: str) -> str:
    """``tail`` up to the end of its sentence, math spans skipped (their periods do not count)."""
    spans = math_spans(tail)
    starts = [s.start for s in spans]
    pos = 0
    while True:
        end = _SENTENCE_END_RE.search(tail, pos)
        if end is None:
            return tail
        k = bisect.bisect_left(starts, end.start()) - 1  # the last span opening before the end
        if k < 0 or spans[k].end <= end.start():
            return tail[: end.start()]
        pos = spans[k].end


def _value_after(tail: str) -> str | None:
    """The answer that follows a marker: a leading math span whole, else the rest of the sentence
    (its math spans joined when only joiners separate them, else the first span)."""
    lead = _leading_span(tail)
    if lead is not None:
        content, end = lead
        rest = tail[end:]
        more = _sentence(rest)
        spans = math_spans(more)
        parts = [content.strip()]
        cursor = 0
        for span in spans:
            if not _is_joiner(more[cursor : span.start]) or not span.content.strip():
                break
            parts.append(span.content.strip())
            cursor = span.end
        value = ", ".join(p for p in parts if p) if len(parts) > 1 else content
        return _clean_value(value) or None
    sentence = _sentence(tail.lstrip())
    if _CHOICE_LEAD_RE.match(sentence):
        return _clean_value(sentence) or None  # "(B) $\frac{1}{2}$": the letter chosen
    spans = math_spans(sentence)
    clause = _CLAUSE_RE.search(sentence)
    if clause and not any(s.start < clause.start() < s.end for s in spans):
        sentence = sentence[: clause.start()]  # "7 dollars, since 14/2 = 7"
        spans = [s for s in spans if s.end <= clause.start()]
    subject = _SUBJECT_VALUE_RE.match(sentence)
    if subject:
        return _clean_value(subject.group(1)) or None  # "5 is the number of apples left"
    copula = _copula_value(sentence, spans)
    if copula is not None:
        return _value_after(copula)  # "The volume of $ABCDEFGH$ is 120": what the sentence says it is
    if spans:
        outside = sentence[: spans[0].start] + "".join(
            sentence[a.end : b.start] for a, b in zip(spans, spans[1:], strict=False)
        ) + sentence[spans[-1].end :]
        if _is_joiner(outside) or not outside.strip():
            value = ", ".join(s.content.strip() for s in spans if s.content.strip())
        elif _CURRENCY_ONLY_RE.match(sentence):
            value = sentence
        else:
            value = spans[0].content
        return _clean_value(value) or None
    return _clean_value(sentence) or None


_CURRENCY_ONLY_RE = re.compile(r"^\s*\$\s*\d")
_COPULA_RE = re.compile(
    r"\s(?:is|are|equals|was|were|becomes)\s+(?:(?:equal\s+to|exactly|then)\s+)?", re.IGNORECASE
)
_SUBJECT_VALUE_RE = re.compile(r"^\s*(-?[\d.,/]+)\s+(?:is|are)\s+(?:the|a|an|our|my|its)\b", re.IGNORECASE)
_PROSE_START_RE = re.compile(r"^\s*(?:\*\*)?[A-Za-z][a-z]+\b")


def _copula_value(sentence: str, spans: list[_Span]) -> str | None:
    """What a prose sentence after a marker says the answer is: the text after its last "is" /
    "are" / "equals" outside math, when the sentence opens with a word and that text holds a digit
    or math ("Final Answer: The volume of $ABCDEFGH$ is 120" gives 120; "5 is the count" stays)."""
    if not _PROSE_START_RE.match(sentence):
        return None
    found = None
    for match in _COPULA_RE.finditer(sentence):
        if not any(s.start < match.start() < s.end for s in spans):
            found = match
    if found is None:
        return None
    rest = sentence[found.end() :]
    return rest if re.search(r"[\d$\\]", rest) else None
_CHOICE_LEAD_RE = re.compile(r"^\s*(?:\*\*)?\(([A-E])\)")
# Where the answer's sentence goes on to explain it.
_CLAUSE_RE = re.compile(
    r"\s*[,;]?\s+(?:since|because|as\s+(?:shown|computed|required|calculated)|which|where|so\s+that|"
    r"given\s+that|i\.e\.|that\s+is|from|using|by)\b",
    re.IGNORECASE,
)
# "Option B is correct", "(B) is the correct answer", "the correct option is B" (answer_is reads the
# last one).
_CHOICE_CORRECT_RE = re.compile(
    r"(?:\b(?i:option|choice|answer)\s*)?(?<![A-Za-z])\(?([A-E])\)?\s+(?i:is)\s+(?i:the\s+)?(?i:correct|right)\b"
)


def _minerva_at(text: str) -> tuple[int, str] | None:
    """``(marker start, value)`` of the last Minerva answer line that holds a value."""
    markers = list(_MINERVA_RE.finditer(text))
    for match in reversed(markers[-MAX_MARKERS:]):
        window = text[match.end() : match.end() + WINDOW]
        hope = _HOPE_RE.search(window)
        body = window[: hope.start()] if hope else _sentence(window)
        lead = _leading_span(body)
        value = _clean_value(lead[0] if lead else body)
        if value:
            return match.start(), value
    return None


def _minerva(text: str) -> str | None:
    found = _minerva_at(text)
    return found[1] if found else None


def _gsm8k(text: str) -> str | None:
    """The value after the last ``####`` that holds one: the rest of its line up to a sentence end
    or the next ``Step n:`` marker (a model that goes on writing on the same line)."""
    found = _GSM8K_RE.findall(text)
    for line in reversed(found[-MAX_MARKERS:]):
        value = line.strip()[:WINDOW]
        if _GSM8K_HEADING_RE.match(value) and not re.match(r"^[A-E]\b", value):
            continue  # a markdown heading ("#### Step 2: add"), not an answer
        value = _clean_value(_GSM8K_STOP_RE.split(value, maxsplit=1)[0])
        if value:
            return value
    return None


# Where the value of a "####" line ends: a sentence end or another step's marker.
_GSM8K_STOP_RE = re.compile(r"\.(?=\s)|\s(?=(?:\*\*)?Step\s*\d+\s*[:.])|\s####", re.IGNORECASE)


def _answer_is(text: str) -> str | None:
    markers = list(_ANSWER_IS_RE.finditer(text))
    chosen = list(_CHOICE_CORRECT_RE.finditer(text))
    if chosen and (not markers or chosen[-1].start() > markers[-1].start()):
        return chosen[-1].group(1)
    # The last marker: "the answer is 3, no wait, the answer is 4".
    for match in reversed(markers[-MAX_MARKERS:]):
        tail = text[match.end() : match.end() + WINDOW]
        value = _value_after(tail)
        if value:
            return value
    return None


@dataclass(frozen=True)
class _Number:
    start: int
    end: int
    value: str


# A number as prose writes it, thousands separators included (1,234; 1{,}234; 1\,234; 1\!234).
# A decimal comma where a thousands separator is impossible: "2,74", "0,111" (not "1,2,3", and not
# "-3,0": two roots).
# A mixed number "4 4/9" (one space, on one line), a bare "\\frac{10}{9}".
_PROSE_NUMBER_RE = re.compile(
    r"(?P<mixed>(?<![\w./])[+-]?\d+ \d+/\d+(?![\d/.]))"
    r"|-?\\[dt]?frac\{\d+\}\{\d+\}"
    r"|(?P<comma>(?<![\w.,])-?(?:0,(?!0+(?!\d))\d+|\d+,(?!0+(?!\d))\d{1,2})(?![\d,]|\.\d))"
    r"|(?<![\w.])-?(?:[1-9]\d{0,2}(?:(?:,|\{,\}|,\\!|\\,|\\!)\d{3})+(?!\d)|\d+)(?:\.\d+)?"
    r"(?:[ \t]{0,3}/[ \t]{0,3}\d+)?|(?<![\w.])-?\.\d+"
)
_SEPARATORS_RE = re.compile(r"\{,\}|,\\!|\\,|\\!|[,\s]")
# "Step 4:" labels a step; its number is never an answer.
_STEP_LABEL_BEFORE_RE = re.compile(r"\bstep\s*$", re.IGNORECASE)


def _last_number_at(text: str) -> _Number | None:
    """The last number of ``text`` with its position (after "about"/``≈`` the number before it;
    a "Step n" label is skipped). A text that is nothing but a number with spaced thousands
    (``1 000``) or an arithmetic expression of numbers (``4 + 4/9``) is that number or expression.
    Only the last :data:`WINDOW` characters are read (widened to the start of a number the window
    would cut), unless they hold no number."""
    whole = _BARE_EXPRESSION_RE.fullmatch(text) if len(text) <= 200 else None
    if whole:
        value = whole.group(1)
        if not _OPERATOR_RE.search(value):
            value = value.replace(" ", "")  # 1 000 000
        return _Number(whole.start(1), whole.end(1), value)
    start = max(0, len(text) - WINDOW)
    while start > 0 and (text[start - 1].isdigit() or text[start - 1] in ",.{}\\!"):
        start -= 1
    broken = _pair_spans(text)[1]
    starts = [b[0] for b in broken]

    def in_broken_span(pos: int) -> bool:
        k = bisect.bisect_right(starts, pos) - 1
        return k >= 0 and broken[k][1] > pos

    for origin in (start, 0) if start > 0 else (0,):
        found = [
            m for m in _PROSE_NUMBER_RE.finditer(text, origin)
            if not _STEP_LABEL_BEFORE_RE.search(text[max(0, m.start() - 8) : m.start()])
            and not in_broken_span(m.start())
        ]
        if found:
            break
    else:
        return None
    last = found[-1]
    if len(found) > 1 and _APPROX_BEFORE_RE.search(text[found[-2].end() : last.start()]):
        last = found[-2]  # "1/6 ≈ 0.167": the exact value, not its rounding
    if last.group("mixed") or last.group(0).lstrip("-").startswith("\\"):
        return _Number(last.start(), last.end(), last.group(0))
    if last.group("comma"):
        return _Number(last.start(), last.end(), last.group(0).replace(",", "."))
    return _Number(last.start(), last.end(), _SEPARATORS_RE.sub("", last.group(0)))


# A bare answer: spaced thousands, or numbers joined by explicit operators (never juxtaposed).
_BARE_EXPRESSION_RE = re.compile(
    r"\s*(-?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?"
    r"|[+-]?\d+(?:\.\d+)?(?:[ \t]*[-+*/\u00d7\u00f7^][ \t]*\d+(?:\.\d+)?)+)\s*"
)
_OPERATOR_RE = re.compile(r"[-+*/\u00d7\u00f7^]")


def _last_number(text: str) -> str | None:
    number = _last_number_at(text)
    return number.value if number else None


# ---------------------------------------------------------------------------------------------------


def extract_answer(text: str | None, order: tuple[Source, ...] = DEFAULT_ORDER) -> Extraction:
    """The final answer in ``text`` (see the module docstring for the sources and their order).

    ``order`` lists the sources to try, first match wins (``"boxed"`` may sit anywhere in it; a
    truncated last box stops the search wherever ``"boxed"`` sits, returning ``truncated=True``).
    Never raises; ``None`` or empty text gives ``Extraction(None, "none")``.
    """
    if not text:
        return Extraction(None, "none")
    text = strip_chat_tail(unescape_latex(text))
    boxed = _boxed(text)
    all_boxes = boxed[1] if boxed else []
    for source in order:
        if source == "boxed":
            if boxed is None:
                continue
            answer, _, truncated, box_end = boxed
            if truncated:
                return Extraction(None, "none", all_boxes, truncated=True)
            if answer is not None:
                # A Minerva answer line written after the last box is the final word ("... so
                # \\boxed{255} ... Final Answer: The final answer is $10,455$. I hope it is correct.").
                minerva = _minerva_at(text) if "minerva" in order else None
                if minerva is not None and minerva[0] >= box_end:
                    return Extraction(minerva[1], "minerva", all_boxes)
                return Extraction(answer, "boxed", all_boxes)
            continue
        if source in ("math", "bold"):
            found = _math_or_bold(text, "last_number" in order)
            if found:
                return Extraction(found[0], found[1], all_boxes)
            continue
        finder = {"minerva": _minerva, "gsm8k": _gsm8k, "answer_is": _answer_is, "last_number": _last_number}
        value = finder[source](text)
        if value:
            return Extraction(value, source, all_boxes)
    return Extraction(None, "none", all_boxes)
