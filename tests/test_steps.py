"""The step splitter: lossless, never inside math or code, each format, detection, step prompts."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prm_selfreward.prompts import solve_prompt
from prm_selfreward.steps import (
    detect_format,
    format_steps,
    has_answer_line,
    has_boxed_answer,
    has_final_answer,
    next_step_prefix,
    protected_spans,
    split_steps,
    step_body,
    step_marker,
    strip_calculator_notes,
)

FORMAT_ARGS = [
    ("auto", None),
    ("step", None),
    ("paragraph", None),
    ("line", None),
    ("delimiter", "ки"),
    ("delimiter", "\n"),
    ("auto", "||"),
]

# Text built from the pieces the splitter reacts to, so random draws hit the interesting cases.
ATOMS = [
    "Step 1: ",
    "Step 2: ",
    "step 10:",
    "## Step 3: ",
    "**Step 4:** ",
    "\n",
    "\n\n",
    " \n",
    "\t",
    "$",
    "$$",
    "\\[",
    "\\]",
    "\\(",
    "\\)",
    "\\begin{align}",
    "\\end{align}",
    "\\begin{cases}",
    "\\end{cases}",
    "```",
    "```python\n",
    "~~~",
    "\\",
    "\\$",
    "ки",
    "||",
    "<<48/2=24>>",
    "{",
    "}",
    "\\boxed{",
    "[asy]",
    "[/asy]",
    "x = 1",
    "$x$",
    "9 * 2 = $18",
    "a",
    " ",
    "é",
    "\r\n",
]
texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(ATOMS), max_size=40).map("".join),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, fmt=st.sampled_from(FORMAT_ARGS))
def test_split_is_lossless_and_has_no_blank_steps(text, fmt):
    format_, delimiter = fmt
    steps = split_steps(text, format_, delimiter)
    assert "".join(steps) == text
    if text == "":
        assert steps == []
    elif not text.strip():
        assert steps == [text]
    else:
        assert all(s.strip() for s in steps)


@settings(max_examples=300, deadline=None)
@given(text=texts, fmt=st.sampled_from(FORMAT_ARGS))
def test_no_split_falls_inside_a_protected_span(text, fmt):
    steps = split_steps(text, *fmt)
    cuts, pos = [], 0
    for s in steps[:-1]:
        pos += len(s)
        cuts.append(pos)
    for start, end in protected_spans(text):
        assert not any(start < c < end for c in cuts), (text, steps, (start, end))


@pytest.mark.parametrize(
    "text,fmt,expected",
    [
        ("Step 1: a\nStep 2: b", "step", ["Step 1: a\n", "Step 2: b"]),
        ("Step 1: a\n\nStep 2: b\n", "step", ["Step 1: a\n\n", "Step 2: b\n"]),
        # text before the first marker is a step of its own; leading blank lines stay with the first step
        ("We solve.\nStep 1: a\nStep 2: b", "step", ["We solve.\n", "Step 1: a\n", "Step 2: b"]),
        ("\n\nStep 1: a\nStep 2: b", "step", ["\n\nStep 1: a\n", "Step 2: b"]),
        (
            "## Step 1: a\n**Step 2:** b\nstep 3: c",
            "step",
            ["## Step 1: a\n", "**Step 2:** b\n", "step 3: c"],
        ),
        # a marker that does not start a line is text
        ("Step 1: go to Step 2: now", "step", ["Step 1: go to Step 2: now"]),
        (
            "First.\n\nSecond\nstill second.\n\n\nThird.",
            "paragraph",
            ["First.\n\n", "Second\nstill second.\n\n\n", "Third."],
        ),
        ("a\nb\n\nc\n", "line", ["a\n", "b\n\n", "c\n"]),
        ("x ки y ки z", "delimiter", ["x ки", " y ки", " z"]),
    ],
)
def test_formats(text, fmt, expected):
    delimiter = "ки" if fmt == "delimiter" else None
    assert split_steps(text, fmt, delimiter) == expected


@pytest.mark.parametrize(
    "text,fmt,expected",
    [
        # each protected construct keeps a would-be split point inside it
        (
            "Step 1: let\n$$\nStep 2: x\n$$\nStep 2: y",
            "step",
            ["Step 1: let\n$$\nStep 2: x\n$$\n", "Step 2: y"],
        ),
        ("Step 1: \\[\nStep 2: x \\]\nStep 2: y", "step", ["Step 1: \\[\nStep 2: x \\]\n", "Step 2: y"]),
        ("a \\(x\ny\\) b\nc", "line", ["a \\(x\ny\\) b\n", "c"]),
        ("a $x\ny$ b\nc", "line", ["a $x\ny$ b\n", "c"]),
        (
            "A.\n\n\\begin{align}\nx &= 1\n\n\\begin{align}y\n\n\\end{align}\n\nz\n\\end{align}\n\nB.",
            "paragraph",
            [
                "A.\n\n",
                "\\begin{align}\nx &= 1\n\n\\begin{align}y\n\n\\end{align}\n\nz\n\\end{align}\n\n",
                "B.",
            ],
        ),
        (
            "Step 1: code\n```python\nx = 1\nStep 2: not a step\n```\nStep 2: b",
            "step",
            ["Step 1: code\n```python\nx = 1\nStep 2: not a step\n```\n", "Step 2: b"],
        ),
        ("x $a ки b$ ки y", "delimiter", ["x $a ки b$ ки", " y"]),
        # MATH's Asymptote drawings hold blank lines
        (
            "Draw it.\n\n[asy]\nsize(3cm);\n\ndraw((0,0)--(1,1));\n[/asy]\n\nSo $x=1$.",
            "paragraph",
            ["Draw it.\n\n", "[asy]\nsize(3cm);\n\ndraw((0,0)--(1,1));\n[/asy]\n\n", "So $x=1$."],
        ),
        # currency is not math: "$2 ... $18" must not pair up and glue the lines together
        (
            "Eggs cost $2 each.\nShe makes 9 * 2 = $18 a day.\n#### 18",
            "line",
            ["Eggs cost $2 each.\n", "She makes 9 * 2 = $18 a day.\n", "#### 18"],
        ),
        # an opener without a closer is plain text: it must not swallow the rest
        ("a \\[ x\nb\nc", "line", ["a \\[ x\n", "b\n", "c"]),
        ("a $$ x\nb", "line", ["a $$ x\n", "b"]),
        ("```\nx\ny", "line", ["```\n", "x\n", "y"]),
        # inline $ may not span a blank line
        ("a $x\n\ny$ b", "paragraph", ["a $x\n\n", "y$ b"]),
        # escaped dollars are literal
        ("costs \\$x\nand y\\$ z", "line", ["costs \\$x\n", "and y\\$ z"]),
    ],
)
def test_math_and_code_blocks_stay_whole(text, fmt, expected):
    delimiter = "ки" if fmt == "delimiter" else None
    assert split_steps(text, fmt, delimiter) == expected


S1 = "Step 1: Adding the two equations yields $ x = \\boxed{83}$.\n"
SLOPPY = [
    # A MATH-style step that ends in sloppy inline math (a space after the opening $): the $ after the
    # box opens a would-be span that pairs with the next step's $...$.
    (S1 + "Step 2: So $y = 2$ and we are done.", [S1, "Step 2: So $y = 2$ and we are done."]),
    # the same with chat-model markers
    (S1 + "**Step 2:** So $y = 2$.", [S1, "**Step 2:** So $y = 2$."]),
    (S1 + "## Step 2: So $y = 2$.", [S1, "## Step 2: So $y = 2$."]),
    # an inline $ left open in one step, closed in the next
    ("Step 1: We get $x = 2.\nStep 2: Then $y=3$.", ["Step 1: We get $x = 2.\n", "Step 2: Then $y=3$."]),
    ("Step 1: We get $x=2\nStep 2: so y=3$ too", ["Step 1: We get $x=2\n", "Step 2: so y=3$ too"]),
    # \( left open
    ("Step 1: we have \\(x = 2.\nStep 2: then \\(y = 3\\).", ["Step 1: we have \\(x = 2.\n", "Step 2: then \\(y = 3\\)."]),
    # currency followed by math in the next step
    ("Step 1: It costs $5.\nStep 2: Then $2x = 10$.\nStep 3: So x = 5.",
     ["Step 1: It costs $5.\n", "Step 2: Then $2x = 10$.\n", "Step 3: So x = 5."]),
    # still whole: inline math that really spans lines without a marker line inside it
    ("Step 1: $x\n= 2$ here\nStep 2: b", ["Step 1: $x\n= 2$ here\n", "Step 2: b"]),
    # display math keeps a marker-like line inside it (as before)
    ("Step 1: let\n$$\nStep 2: x\n$$\nStep 2: y", ["Step 1: let\n$$\nStep 2: x\n$$\n", "Step 2: y"]),
]


@pytest.mark.parametrize("text,expected", SLOPPY)
def test_a_step_marker_line_starts_a_step_despite_sloppy_inline_math(text, expected):
    steps = split_steps(text, "auto")
    assert steps == expected
    assert "".join(steps) == text


@pytest.mark.parametrize(
    "text,delimiter,expected",
    [
        ("Step 1: a\nStep 2: b", None, ("step", None)),
        ("Intro\nStep 1: a", None, ("step", None)),
        ("a ки b ки", None, ("delimiter", "ки")),
        ("a || b", "||", ("delimiter", "||")),
        ("Step 1: a || b", "||", ("delimiter", "||")),
        ("Step 1: a\nStep 2: b", "||", ("step", None)),  # the given delimiter does not occur
        ("One.\n\nTwo.", None, ("paragraph", None)),
        ("\n\nOne line with blank lines around\n\n", None, ("line", None)),
        ("a\nb\nc", None, ("line", None)),
        ("a = <<1+1=2>>2\n#### 2", None, ("line", None)),
    ],
)
def test_auto_detection(text, delimiter, expected):
    assert detect_format(text, delimiter) == expected
    fmt, delim = expected
    assert split_steps(text, "auto", delimiter) == split_steps(text, fmt, delim)


def test_bad_format_arguments_raise():
    with pytest.raises(ValueError, match="unknown step format"):
        split_steps("a", "sentences")
    with pytest.raises(ValueError, match="delimiter"):
        split_steps("a", "delimiter")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs", "Janet sells 16 - 3 - 4 = 9 duck eggs"),
        ("9 * 2 = $<<9*2=18>>18 a day\n#### 18", "9 * 2 = $18 a day\n#### 18"),
        ("<<a=1>><<b=2>>x", "x"),
        ("no notes << here", "no notes << here"),
        ("a <<x\ny>> b", "a <<x\ny>> b"),  # a note never spans lines
    ],
)
def test_strip_calculator_notes(text, expected):
    assert strip_calculator_notes(text) == expected


def test_gsm8k_reference_solutions(data_dir):
    rows = [json.loads(line) for line in (data_dir / "gsm8k" / "test.jsonl").open(encoding="utf-8")][:300]
    for row in rows:
        answer = row["answer"]
        cleaned = strip_calculator_notes(answer)
        steps = split_steps(cleaned)
        assert "".join(steps) == cleaned
        assert "<<" not in cleaned
        # one step per non-blank line: GSM8K uses no blank lines and no math delimiters
        assert len(steps) == len([line for line in cleaned.split("\n") if line.strip()])
        assert steps[-1].startswith("####")


def test_math_reference_solutions_keep_display_math_whole(data_dir):
    rows = [json.loads(line) for line in (data_dir / "math" / "math500.jsonl").open(encoding="utf-8")]
    multi = 0
    for row in rows:
        text = row["solution"]
        steps = split_steps(text)
        assert "".join(steps) == text
        for step in steps[:-1]:
            # a step never ends inside a display block
            assert step.count("\\[") == step.count("\\]")
            assert step.count("\\begin{") == step.count("\\end{")
        multi += len(steps) > 1
    assert multi > 100  # MATH solutions mostly have several paragraphs or lines


@pytest.mark.parametrize(
    "step,expected",
    [
        ("Step 3: x = 2\n", "x = 2"),
        ("**Step 3:** x = 2", "x = 2"),
        ("## Step 12: a\nb\n\n", "a\nb"),
        ("no marker here ", "no marker here"),
        ("Step one: words", "Step one: words"),
        ("", ""),
    ],
)
def test_step_body(step, expected):
    assert step_body(step) == expected


@pytest.mark.parametrize(
    "steps,expected",
    [
        (["Step 1: a\n", "Step 2: b"], "Step 1: a\nStep 2: b"),
        (["Step 4: a", "b\n\n", "  ", "Step 9: c\n"], "Step 1: a\nStep 2: b\nStep 3: c"),
        (["x = 1 ки", " y = 2 ки"], "Step 1: x = 1 ки\nStep 2: y = 2 ки"),
        ([], ""),
    ],
)
def test_format_steps(steps, expected):
    assert format_steps(steps) == expected


@settings(max_examples=200, deadline=None)
@given(text=texts)
def test_format_steps_round_trips_through_the_step_splitter(text):
    canonical = format_steps(split_steps(text, "line"))
    if not canonical:
        return
    again = split_steps(canonical, "step")
    # each canonical step becomes one step again unless its body holds a line-start marker itself
    assert format_steps(again) == canonical or any("\n" in step_body(s) for s in again)


@pytest.mark.parametrize(
    "previous,expected",
    [
        ([], "Step 1: "),
        (["Step 1: a\n"], "Step 1: a\nStep 2: "),
        (["a", "  ", "Step 7: b"], "Step 1: a\nStep 2: b\nStep 3: "),
    ],
)
def test_next_step_prefix(previous, expected):
    assert next_step_prefix(previous) == expected


def test_solving_prompt_plus_prefix_reads_as_a_step_solution():
    prompt = solve_prompt(None, "What is 1 + 1?")
    text = prompt + next_step_prefix(["Add: 1 + 1 = 2."]) + "The answer is \\boxed{2}."
    solution = text[len(prompt) :]
    assert split_steps(solution) == ["Step 1: Add: 1 + 1 = 2.\n", "Step 2: The answer is \\boxed{2}."]


@pytest.mark.parametrize(
    "step,expected",
    [
        ("The answer is \\boxed{15}.", True),
        ("so \\boxed{\\frac{1}{2}}", True),
        ("\\boxed {x^{2}}", True),
        ("\\boxed{\\frac{1}{2}", False),
        ("\\boxed{}", False),
        ("\\boxed{ }", False),
        ("boxed{3}", False),
        ("\\boxed{\\{1,2\\}}", True),
        ("no answer yet", False),
        ("\\boxed{} then \\boxed{4}", True),
    ],
)
def test_has_final_answer(step, expected):
    assert has_final_answer(step) is expected


@pytest.mark.parametrize(
    "step,expected",
    [
        # The format's answer lines end a solution as a box does.
        ("The answer is 18.", True),
        ("So the final answer is $\\frac{1}{2}$.", True),
        ("The answer is: 12", True),
        ("The answer is -5", True),
        ("The answer = 7", True),
        ("the answer is x = 5", True),
        ("**Answer:** 42", True),
        ("Answer: $x = 3$", True),
        ("#### 72", True),
        ("  #### 1,200", True),
        ("Final Answer: The final answer is $5$. I hope it is correct.", True),
        ("Final answer: 3 apples", True),
        # Not answer lines: no value yet, prose after the marker, a marker inside a sentence.
        ("The answer is the sum of 3 and 4.", False),
        ("We need the answer to 3 + 4 first.", False),
        ("the answer is a whole number", False),
        ("answers are 3 and 4", False),
        ("#### ", False),
        ("Final Answer:", False),
        ("x #### 3", False),
        # A box as the value counts only when it is complete and non-blank.
        ("The answer is \\boxed{", False),
        ("The answer is $\\boxed{", False),
        ("Final answer: \\boxed{}", False),
        ("#### \\boxed{ }", False),
        ("The answer is \\boxed{15}.", True),
    ],
)
def test_has_final_answer_reads_answer_lines(step, expected):
    assert has_final_answer(step) is expected
    assert has_answer_line(step) is (expected and "boxed" not in step)
    assert has_boxed_answer(step) is ("boxed" in step and expected)


def test_step_marker():
    assert step_marker(3) == "Step 3: "
    with pytest.raises(ValueError):
        step_marker(0)


@pytest.mark.parametrize(
    "text",
    [
        "$a " * 20000,
        "\\[ " * 20000,
        "\\begin{x}" * 5000 + "\\end{x}" * 4000,
        "$$" + "x\n" * 20000,
        "```\n" * 10000,
        "{" * 50000 + "\\boxed{" * 1000,
    ],
    ids=["dollars", "brackets", "nested-envs", "open-display", "fences", "braces"],
)
def test_hostile_text_is_fast(text):
    start = time.perf_counter()
    steps = split_steps(text, "line")
    has_final_answer(text[:20000])
    has_final_answer("answer **" * 3000 + " " * 20000)
    assert "".join(steps) == text
    assert time.perf_counter() - start < 5.0


# ---------------------------------------------------------------------------------------------------
# prm-sr split


def _run_split(args, stdin=None):
    from typer.testing import CliRunner

    from prm_selfreward.cli import app

    return CliRunner().invoke(app, ["split", *args], input=stdin)


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_cli_split_plain_text_from_stdin():
    result = _run_split(["-"], stdin="Step 1: a\nStep 2: b\n")
    assert result.exit_code == 0, result.output
    assert _json_lines(result.stdout) == [{"steps": ["Step 1: a\n", "Step 2: b\n"]}]


def test_cli_split_jsonl_with_field_format_and_malformed_lines(tmp_path):
    path = tmp_path / "in.jsonl"
    rows = [
        json.dumps({"answer": "x = <<1+1=2>>2\n#### 2"}),
        "{not json",
        json.dumps({"other": "no answer field"}),
        json.dumps({"answer": "p ки q ки"}),
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = _run_split([str(path), "--field", "answer", "--format", "line", "--strip-calculator-notes"])
    assert result.exit_code == 0, result.output
    assert _json_lines(result.stdout) == [
        {"steps": ["x = 2\n", "#### 2"], "input_line": 1}, {"steps": ["p ки q ки"], "input_line": 4}
    ]
    assert "skipped 2 malformed line(s)" in result.stderr
    assert "line 2" in result.stderr and "line 3" in result.stderr


def test_cli_split_delimiter(tmp_path):
    path = tmp_path / "sol.txt"
    path.write_text("a || b || c", encoding="utf-8")
    result = _run_split([str(path), "--format", "delimiter", "--delimiter", "||"])
    assert _json_lines(result.stdout) == [{"steps": ["a ||", " b ||", " c"]}]


@pytest.mark.parametrize(
    "args,message",
    [
        (["/no/such/file"], "does not exist"),
        (["-", "--format", "words"], "--format must be one of"),
        (["-", "--format", "delimiter"], "needs --delimiter"),
    ],
)
def test_cli_split_user_errors(args, message):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "prm_selfreward.cli", "split", *args],
        input="x",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
