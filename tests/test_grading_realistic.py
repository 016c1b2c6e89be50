"""The checker on answer forms as models really write them (tests/realistic_cases.py): every case
graded as labelled, with no wrong answer graded right."""

from __future__ import annotations

import pytest
from realistic_cases import CASES  # tests/ is on sys.path (pytest rootdir)

from prm_selfreward.grading import check


@pytest.mark.parametrize("case", CASES, ids=[f"{c.group}-{i}" for i, c in enumerate(CASES)])
def test_realistic_case(case):
    verdict = check(case.output, case.gold, benchmark=case.benchmark)
    assert verdict.correct is case.expected, (case.gold, case.output[-120:], verdict)


def test_the_table_covers_every_form_and_both_verdicts():
    groups = {c.group for c in CASES}
    assert groups == {
        "outside_box", "gold_forms", "several", "relations", "matrices", "numbers_units", "choices",
        "no_false_positives", "gsm8k_lines", "last_sentence",
        "prose_answers", "escaped_and_chat",
    }
    for group in groups:
        labels = {c.expected for c in CASES if c.group == group}
        assert labels == {True, False}, group
