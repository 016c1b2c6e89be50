"""Extraction edge cases: boxes (nesting, braceless, truncation, several), GSM8K, "the answer is",
Minerva, the last-number fallback, and the per-benchmark order."""

from __future__ import annotations

import pytest

from prm_selfreward.grading import check, extract_answer, find_boxed
from prm_selfreward.grading.benchmarks import rules_for

BOXES = [
    # (text, answer, source)
    ("So the answer is $\\boxed{5}$.", "5", "boxed"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", "boxed"),
    (
        "nested: \\boxed{\\frac{\\sqrt{3}}{\\left(2+\\frac{1}{2}\\right)}}",
        "\\frac{\\sqrt{3}}{\\left(2+\\frac{1}{2}\\right)}",
        "boxed",
    ),
    ("set: \\boxed{\\{1, 2\\}}", "\\{1, 2\\}", "boxed"),  # escaped braces do not close the box
    ("\\boxed 5", "5", "boxed"),
    ("The answer is \\boxed 12.", "12", "boxed"),
    ("\\fbox{7}", "7", "boxed"),
    ("first \\boxed{3}, then on reflection \\boxed{4}", "4", "boxed"),  # policy: the last box
    ("The roots are \\boxed{2} and \\boxed{3}.", "2, 3", "boxed"),  # a trailing run of boxes: all
    ("$\\boxed{1}$, $\\boxed{-1}$", "1, -1", "boxed"),
    ("\\boxed{\\boxed{9}}", "\\boxed{9}", "boxed"),
    ("\\boxed{}", None, "none"),
    ("\\boxed{ } so the answer is 4", "4", "answer_is"),
]


@pytest.mark.parametrize("text,answer,source", BOXES)
def test_boxes(text, answer, source):
    extraction = extract_answer(text)
    assert (extraction.answer, extraction.source) == (answer, source)
    assert extraction.truncated is False


@pytest.mark.parametrize(
    "text",
    [
        "We get \\boxed{12} first. Checking again, the final answer is \\boxed{\\frac{1}{",
        "The final answer is \\boxed{",
        "\\boxed{3} and then \\boxed",
    ],
)
def test_truncated_box_never_yields_an_earlier_box(text):
    extraction = extract_answer(text)
    assert extraction.answer is None
    assert extraction.truncated is True
    assert extraction.source == "none"
    verdict = check(text, "12")
    assert (verdict.correct, verdict.reason, verdict.predicted) == (False, "no_answer", None)


def test_all_boxes_are_collected():
    extraction = extract_answer("a \\boxed{1} b \\boxed{x^{2}} c \\boxed{\\{3\\}}")
    assert extraction.all_boxes == ["1", "x^{2}", "\\{3\\}"]
    assert extraction.answer == "\\{3\\}"
    assert find_boxed("a \\boxed{1} b \\boxed{2") == ["1"]


OTHER_SOURCES = [
    ("She makes 9 * 2 = $18.\n#### 18", "18", "gsm8k"),
    ("#### 1,000", "1,000", "gsm8k"),
    ("Step 3: #### 26", "26", "gsm8k"),  # after a step marker
    ("So 5 + 21 = 26. #### 26", "26", "gsm8k"),  # after other text
    ("Step 3: #### 26 Step 4: then 30 more", "26", "gsm8k"),  # up to the next step's marker
    ("#### Step 2: double it\n7 * 2 = 14", "14", "last_number"),  # a markdown heading is not an answer
    ("\\[ d = -200 \\]\nSo it lands 200 feet away.", "200", "last_number"),  # a later sentence's number
    ("Hence \\[ x = 5 \\] in all 3 cases.", "x = 5", "math"),  # the same sentence: the span
    ("Step 3: so $x = 5$.\nStep 4:", "x = 5", "math"),  # a step label is not a number

    ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}", "minerva"),
    ("Final Answer: The final answer is 12. I hope it is correct.", "12", "minerva"),
    ("Therefore, the answer is 3.5.", "3.5", "answer_is"),
    ("Thus the final answer is $x = \\frac{1}{2}$. Done.", "x = \\frac{1}{2}", "answer_is"),
    ("The answer is $3.5$.", "3.5", "answer_is"),
    ("The final answer is $\\$14$.", "\\$14", "answer_is"),  # an escaped dollar does not end the span
    ("It costs \\$5, so the answer is $7$.", "7", "answer_is"),
    ("The answer is $18. She earns $5 more tomorrow.", "$18", "answer_is"),  # currency, not a math span
    ("Answer: (C)", "(C)", "answer_is"),
    ("The answer is 18 dollars.\nExtra text with 7 in it.", "18 dollars", "answer_is"),
    ("the answer is: 42", "42", "answer_is"),
    ("The answer is 3, no wait, the answer is 4.", "4", "answer_is"),  # the last marker on a line
    ("The answer is:\n\n$$5$$\n\nDone.", "5", "answer_is"),  # the answer on the next line
    ("We add 3 and 4 to get 7 apples, then 1,234 more.", "1234", "last_number"),
    ("The result is -0.5 after all.", "-0.5", "last_number"),
    ("The ratio is 3/4", "3/4", "last_number"),
    ("no numbers here", None, "none"),
    ("", None, "none"),
]


@pytest.mark.parametrize("text,answer,source", OTHER_SOURCES)
def test_other_sources(text, answer, source):
    extraction = extract_answer(text)
    assert (extraction.answer, extraction.source) == (answer, source)


def test_a_later_number_outranks_a_math_span_only_when_the_last_number_is_read():
    text = "The polynomial is $x^2+1$.\nWe checked it in 3 cases."
    assert extract_answer(text).answer == "3"
    no_numbers = tuple(s for s in rules_for(None).order if s != "last_number")
    assert extract_answer(text, no_numbers).answer == "x^2+1"
    assert check(text, "x^2+1").correct  # a non-numeric gold never reads the last number


def test_the_whole_text_fallback_never_reads_a_later_number():
    """The CLI grades a bare answer whole; with a math span, the span, not a later sentence's number."""
    text = "\\[ d = -200 \\]\nSo it lands 200 feet away."
    assert check(text, "200").correct  # the later sentence's number, as math-verify reads it
    verdict = check(text, "-200", whole_text_fallback=True)
    assert (verdict.correct, verdict.source) == (True, "math")


def test_none_text():
    assert extract_answer(None).source == "none"


def test_one_answer_boxed_in_two_forms():
    text = "$d = 15\\frac{975}{1000} = \\boxed{15\\frac{39}{40}},$ or $\\boxed{\\frac{639}{40}}$"
    assert extract_answer(text).answer == "15\\frac{39}{40}, \\frac{639}{40}"
    assert check(text, "15\\frac{39}{40}").correct
    assert not check("\\boxed{7} or \\boxed{4}", "4").correct


def test_box_beats_answer_is_and_last_number():
    text = "The answer is 3. Wait, recompute: \\boxed{4}. So 5 apples."
    assert extract_answer(text).answer == "4"


def test_gsm8k_order_puts_hashes_first():
    text = "We box the subtotal \\boxed{10} and finish.\n#### 12"
    assert extract_answer(text).answer == "10"
    assert extract_answer(text, rules_for("gsm8k").order).answer == "12"
    assert check(text, "12", benchmark="gsm8k").correct
    assert not check(text, "12", benchmark="math").correct


@pytest.mark.parametrize(
    "prediction,gold,benchmark,correct",
    [
        ("Janet sells 9 eggs.\n#### 18", "18", "gsm8k", True),
        ("So she makes \\boxed{18} dollars.", "18", "gsm8k", True),
        ("#### 1,080", "1080", "gsm8k", True),
        ("He pays 5 + 3 = 8 in total.", "8", "gsm8k", True),  # last-number fallback
        ("#### 18", "Janet sells 16 - 3 - 4 = 9 eggs.\n#### 18", "gsm8k", True),  # whole reference as gold
        ("\\boxed{27}", 27.0, "amc23", True),  # AMC gold floats
        ("\\boxed{73}", "073", "aime24", True),
        ("\\boxed{73}", "074", "aime24", False),
    ],
)
def test_benchmark_rules(prediction, gold, benchmark, correct):
    assert check(prediction, gold, benchmark=benchmark).correct is correct


def test_unknown_benchmark_is_rejected():
    with pytest.raises(ValueError, match="unknown benchmark"):
        check("\\boxed{1}", "1", benchmark="mmlu")


def test_olympiadbench_unit_is_stripped():
    assert check("the time is \\boxed{45 \\text{ minutes}}", ["45"], "olympiadbench", unit="minute").correct
    assert check("\\boxed{166 \\mathrm{cm}^2}", ["$166$"], "olympiadbench", unit="$cm^2$").correct
    assert check("\\boxed{\\frac{600}{7} km/h}", ["$\\frac{600}{7}$"], "olympiadbench", unit="km/h").correct
    assert not check("\\boxed{167 cm^2}", ["$166$"], "olympiadbench", unit="$cm^2$").correct
