"""The pair audit: rollouts from prefix + chosen / rejected, graded against the known answer."""

from __future__ import annotations

import json

import pytest

from prm_selfreward.audit import AuditConfig, audit_pairs, outcome, sample_pairs
from prm_selfreward.models.scripted import ScriptedGenerator
from prm_selfreward.records import Problem

PROBLEMS = [Problem(f"p{i}", f"What is {i} + {i}?", [str(2 * i)], "gsm8k") for i in range(4)]


def pair(i: int, chosen: str, rejected: str, final: bool = False, rejected_final: bool = False) -> dict:
    return {"prompt": f"Problem: What is {i} + {i}?\nSolution:\nStep 1:", "chosen": chosen, "rejected": rejected,
            "is_final_step": final, "rejected_is_final_step": rejected_final, "problem_id": f"p{i}", "step_index": 0}


def rollout(prompt: str, n: int, params) -> list[str]:
    # The rollout carries on with whatever the step computed: "= 6" -> answer 6.
    value = prompt.rsplit("= ", 1)[-1].split()[0].rstrip(".")
    return [f"Step 2: The answer is \\boxed{{{value}}}." for _ in range(n)]


@pytest.mark.parametrize("chosen,rejected,expected", [(0.75, 0.25, "above"), (0.5, 0.5, "equal"), (0, 1, "below")])
def test_outcome(chosen: float, rejected: float, expected: str) -> None:
    assert outcome(chosen, rejected) == expected


def test_audit_counts_above_equal_below(tmp_path) -> None:
    rows = [
        pair(1, " 1 + 1 = 2.\n", " 1 + 1 = 3.\n"),            # chosen right: above
        pair(2, " 2 + 2 = 5.\n", " 2 + 2 = 4.\n"),            # chosen wrong: below
        pair(3, " 3 + 3 = 7.\n", " 3 + 3 = 8.\n"),            # both wrong: equal
        pair(0, " The answer is \\boxed{0}.", " The answer is \\boxed{1}.", final=True, rejected_final=True),
        {**pair(9, " x\n", " y\n"), "problem_id": "unknown"},  # no answer known: skipped
    ]
    gen = ScriptedGenerator(generate_fn=rollout)
    out = tmp_path / "audit.jsonl"
    summary = audit_pairs(gen, rows, PROBLEMS, AuditConfig(pairs=10, rollouts=3), out)
    assert (summary["above"], summary["equal"], summary["below"]) == (2, 1, 1)
    assert summary["pairs"] == 4 and summary["no_answer"] == 1 and summary["rollouts"] == 3
    assert summary["sign_p"] == pytest.approx(1.0)  # 2 vs 1: 2 * P(X <= 1 | n=3) = 2 * 4/8
    assert summary["chosen_success"] == pytest.approx(2 / 4) and summary["rejected_success"] == pytest.approx(1 / 4)
    # One generate call, 3 rollouts for each non-final side of the 3 usable non-final pairs.
    assert len(gen.generate_calls) == 1
    prompts, n = gen.generate_calls[0]
    assert n == 3 and len(prompts) == 6 and prompts[0].endswith("Step 1: 1 + 1 = 2.\n")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["outcome"] for r in records] == ["above", "below", "equal", "above"]
    assert records[0]["chosen_rollouts"][0]["predicted"] == "2" and records[0]["chosen_rollouts"][0]["correct"]
    assert len(records[3]["chosen_rollouts"]) == 1  # a final step is graded as it is


def test_sample_is_seeded_and_in_file_order() -> None:
    rows = [{"i": i} for i in range(50)]
    a, b = sample_pairs(rows, 5, seed=3), sample_pairs(rows, 5, seed=3)
    assert a == b and [r["i"] for r in a] == sorted(r["i"] for r in a)
    assert sample_pairs(rows, 5, seed=4) != a
    assert sample_pairs(rows, 99, seed=0) == rows
