"""Degenerate completions: repeated steps and several final answers, as tables of cases (several taken
from the embedded gemma-3-270m's M1 and M2 on the showcase run)."""

from __future__ import annotations

import pytest

from prm_selfreward.degeneracy import (
    DEGENERATE_SHARE,
    Degeneracy,
    degeneracy,
    final_answers,
    loops,
    repeats_a_step,
    several_answers,
)


@pytest.mark.parametrize(
    "completion,expected",
    [
        ("Step 1: 3 + 4 = 7.\nStep 2: The answer is \\boxed{7}.", False),
        ("Step 1: 3 + 4 = 7.\nStep 2: The answer is \\boxed{7}.\nStep 3: The answer is \\boxed{7}.", True),
        ("Step 1: 3 + 4 = 7.\nStep 2: the  answer is \\boxed{7}\nStep 3: The answer is \\boxed{7}.", True),
        # The question copied twice as steps (gemma M0).
        ("Step 1: Tommy sells 43 brownies.\nStep 2: Tommy sells 43 brownies.", True),
        # Without markers: lines (GSM8K-style) or paragraphs are the steps.
        ("Seattle has 20 sheep.\nToulouse has 40.\nSeattle has 20 sheep.", True),
        ("Seattle has 20 sheep.\n\nToulouse has 40.", False),
        # Steps that differ in a number are not repeats, blank steps are not steps.
        ("Step 1: 50 more on day 3.\nStep 2: 50 more on day 4.", False),
        ("Step 1: x = 2.\nStep 2:\nStep 3:  \nStep 4: so \\boxed{2}", False),
        # After the turn ended, nothing counts.
        ("Step 1: 3 + 4 = 7.<|im_end|>\nStep 1: 3 + 4 = 7.", False),
        ("", False),
    ],
)
def test_repeats_a_step(completion, expected):
    assert repeats_a_step(completion) is expected


@pytest.mark.parametrize(
    "completion,answers",
    [
        ("Step 1: 3 + 4 = 7.\nStep 2: The answer is \\boxed{7}.", ["7"]),
        ("Step 1: The answer is \\boxed{7}.\nStep 2: The answer is $7$.", ["7"]),  # one answer, twice
        ("Step 1: The answer is 2 flowers a day.\nStep 2: The answer is 5.\nStep 3: The answer is \\boxed{2}.",
         ["2", "5"]),
        ("Step 1: so \\boxed{3}, no wait: \\boxed{4}", ["4", "3"]),  # two boxes, not one run of boxes
        ("Step 1: x = \\boxed{2} and \\boxed{3}", ["2,3"]),  # one answer of two parts
        ("Step 1: the point is \\boxed{(1, 2)}", ["(1,2)"]),
        ("Step 1: #### 18\nStep 2: Final Answer: The final answer is $19$. I hope it is correct.", ["18", "19"]),
        # Numbers in the work are not answers; neither is prose after "the answer is".
        ("Step 1: 3 + 4 = 7 and 2 * 5 = 10.\nStep 2: The answer is the sum.", []),
        ("Step 1: The answer is \\boxed{", []),  # cut off: no answer yet
    ],
)
def test_final_answers(completion, answers):
    assert final_answers(completion) == answers
    assert several_answers(completion) is (len(answers) > 1)


def test_degeneracy_counts_shares_and_the_threshold():
    repeat = "Step 1: a = 1.\nStep 2: a = 1."
    several = "Step 1: The answer is 2.\nStep 2: The answer is 3."
    clean = "Step 1: a = 1.\nStep 2: The answer is \\boxed{1}."
    d = degeneracy([repeat, several, clean, clean])
    assert (d.completions, d.repeated_step, d.several_answers) == (4, 1, 1)
    assert d.repeated_step_share == d.several_answers_share == 0.25 and d.degenerate
    assert d.to_dict() == {"completions": 4, "repeated_step": 1, "repeated_step_share": 0.25,
                           "several_answers": 1, "several_answers_share": 0.25, "looping": 0, "looping_share": 0.0,
                           "degenerate_completions": 2, "degenerate_right": None}
    # At exactly the threshold a model is not degenerate; above it (either share alone) it is.
    n = round(1 / DEGENERATE_SHARE)
    assert not degeneracy([repeat] + [clean] * (n - 1)).degenerate
    assert not degeneracy([repeat, several] + [clean] * (n - 2)).degenerate  # 2% each
    assert degeneracy([repeat, repeat] + [clean] * (n - 2)).degenerate
    assert degeneracy([several, several] + [clean] * (n - 2)).degenerate
    loop = "Step 1: x = " + "= 150 * 80000 / 80000 " * 4
    assert not degeneracy([loop] + [clean] * (n - 1)).degenerate
    assert degeneracy([loop, loop] + [clean] * (n - 2)).degenerate  # loops alone make a model degenerate
    assert degeneracy([]).repeated_step_share is None and not degeneracy([]).degenerate


def test_degeneracy_counts_the_degenerate_completions_graded_right():
    repeat = "Step 1: a = 1.\nStep 2: a = 1."
    both = "Step 1: The answer is 2.\nStep 2: The answer is 3.\nStep 3: The answer is 3."
    clean = "Step 1: a = 1.\nStep 2: The answer is \\boxed{1}."
    # A completion that repeats a step and states several answers counts once; a right clean one not at all.
    d = degeneracy([repeat, both, clean, repeat], [True, True, True, False])
    assert (d.repeated_step, d.several_answers, d.degenerate_completions, d.degenerate_right) == (3, 1, 3, 2)
    assert degeneracy([repeat, clean], [False, True]).degenerate_right == 0
    with pytest.raises(ValueError, match="1 verdicts for 2 completions"):
        degeneracy([repeat, clean], [True])


def test_degeneracy_from_a_summary_and_summed():
    assert Degeneracy.from_summary({"total": 10, "accuracy": 0.5}) is None  # an older run's summary
    d = Degeneracy.from_summary({"total": 10, "repeated_step": 3, "several_answers": 0})
    assert d == Degeneracy(10, 3, 0)  # degenerate_right and looping unknown: None, not 0
    assert d.looping_share is None
    assert Degeneracy.from_summary({"total": 10, "repeated_step": 0, "several_answers": 0, "looping": 3}).degenerate
    d.add(Degeneracy(90, 0, 1))
    assert (d.completions, d.repeated_step, d.several_answers) == (100, 3, 1) and d.degenerate
    assert d.degenerate_right is None
    # Summed only where every part knows it: a part without it would make the total a lower bound.
    known = Degeneracy.from_summary({"total": 10, "repeated_step": 3, "several_answers": 1,
                                     "degenerate_completions": 4, "degenerate_right": 1})
    known.add(Degeneracy(5, 1, 0, degenerate_completions=1, degenerate_right=1))
    assert (known.degenerate_completions, known.degenerate_right) == (5, 2)
    known.add(Degeneracy(5, 0, 0))
    assert (known.degenerate_completions, known.degenerate_right) == (None, None)


@pytest.mark.parametrize(
    "completion,expected",
    [
        # The Qwen branch's M3 (step-DPO at lr 2e-4) on GSM8K: a stretch looped inside one step.
        ("Step 1: Josh's house increased by 150% * $80,000 / $80,000 = " + "$150 * $80,000 / $80,000 = " * 6, True),
        ("Step 1: I am " + "really, " * 30 + "sure.", True),
        ("Step 1: 2^{100} = 1" + "0" * 80, True),  # a run of one character counts once it is long enough
        # Not loops: a written-out sum (six terms, 48 characters), a short run, repeated words far apart.
        ("Step 1: " + "$1.20 + " * 6 + "= $7.20\nStep 2: The answer is \\boxed{7.20}.", False),
        ("Step 1: 1" + "0" * 60, False),
        ("Step 1: a = 3 * 4 = 12.\nStep 2: b = 3 * 4 = 12 too.\nStep 3: a + b = 3 * 4 + 3 * 4 = 24.", False),
        # Two copies are not a loop; after the turn ended nothing counts.
        ("Step 1: " + "Therefore, Aaron's jewels are 5 more than half of Raymond's. " * 2, False),
        ("Step 1: x = 1.<|im_end|>" + "x = 1, " * 40, False),
        ("", False),
    ],
)
def test_loops(completion, expected):
    assert loops(completion) is expected
    assert degeneracy([completion]).looping == int(expected)
