"""The pair audit: rollouts from prefix + chosen / rejected, graded against the known answer."""

from __future__ import annotations

import json
import re

import pytest

from prm_selfreward.audit import AuditConfig, audit_pairs, outcome, sample_pairs
from prm_selfreward.fingerprint import StaleOutputError
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


# --------------------------------------------------------------- written as it goes, resumable (issue 24)


class Killed(Exception):
    pass


def sampling(fail_after: int | None = None) -> ScriptedGenerator:
    """Rollouts that depend on the call's seed and the prompt's place in the batch (as a batched
    sampler's would), so a resumed audit matches only if it redraws whole chunks with their seeds;
    raises ``Killed`` on the generate call after ``fail_after``."""
    calls = {"n": 0, "seen": 0}

    def generate(prompt: str, n: int, params) -> list[str]:
        calls["seen"] += 1
        value = prompt.rsplit("= ", 1)[-1].split()[0].rstrip(".")
        return [f"Step 2: The answer is \\boxed{{{value if (params.seed + calls['seen'] + j) % 3 else 0}}}."
                for j in range(n)]

    gen = ScriptedGenerator(generate_fn=generate)
    original = gen.generate

    def counted(prompts, n=1, params=None):
        if fail_after is not None and len(gen.generate_calls) >= fail_after:
            raise Killed
        calls["seen"] = 0  # position in this call's batch
        return original(prompts, n=n, params=params)

    gen.generate = counted  # type: ignore[method-assign]
    return gen


MANY = [Problem(f"p{i}", f"What is {i} + {i}?", [str(2 * i)], "gsm8k") for i in range(12)]
ROWS = [pair(i, f" {i} + {i} = {2 * i}.\n", f" {i} + {i} = {2 * i + 1}.\n") for i in range(12)]
CONFIG = AuditConfig(pairs=10, rollouts=3, chunk_size=3)


def test_a_killed_audit_resumes_to_the_uninterrupted_records(tmp_path) -> None:
    whole, killed = tmp_path / "whole.jsonl", tmp_path / "killed.jsonl"
    expected = audit_pairs(sampling(), ROWS, MANY, CONFIG, whole, model="M1", progress_label=None)
    with pytest.raises(Killed):
        audit_pairs(sampling(fail_after=2), ROWS, MANY, CONFIG, killed, model="M1", progress_label=None)
    lines = killed.read_text().splitlines()
    assert len(lines) == 6
    killed.write_text("\n".join(lines[:5]) + "\n")  # as if the kill landed inside the second chunk
    gen = sampling()
    summary = audit_pairs(gen, ROWS, MANY, CONFIG, killed, model="M1", progress_label=None)
    assert summary.pop("resumed")["records"] == 5
    assert summary == expected
    assert killed.read_text() == whole.read_text()
    assert len(gen.generate_calls) == 3  # chunk 2 redrawn whole (its seed and batch), chunks 3 and 4
    assert [json.loads(line)["row"] for line in whole.read_text().splitlines()] == sorted(
        json.loads(line)["row"] for line in whole.read_text().splitlines())


@pytest.mark.parametrize("cut,kept", [(1, 0), (0, 1)])
def test_a_torn_last_audit_record_is_cut_or_kept(tmp_path, cut, kept) -> None:
    path = tmp_path / "audit.jsonl"
    audit_pairs(sampling(), ROWS, MANY, CONFIG, path, model="M1", progress_label=None)
    whole = path.read_text()
    path.write_text(whole[: whole.rindex("{") + 30] if cut else whole[:-1])
    summary = audit_pairs(sampling(), ROWS, MANY, CONFIG, path, model="M1", progress_label=None)
    assert (summary["resumed"]["torn_tail_cut"], summary["resumed"]["torn_tail_kept"]) == (cut, kept)
    assert path.read_text() == whole


@pytest.mark.parametrize("change,message", [
    ({"model": "M2"}, "model: 'M1' in the file, 'M2' now"),
    ({"config": AuditConfig(pairs=10, rollouts=4, chunk_size=3)}, "rollouts: 3 in the file, 4 now"),
    ({"config": AuditConfig(pairs=10, rollouts=3, chunk_size=5)}, "chunk_size: 3 in the file, 5 now"),
    ({"rows": [pair(i, " other\n", " steps\n") for i in range(12)]}, "was made for another input item"),
])
def test_an_audit_of_other_settings_or_pairs_is_not_resumed(tmp_path, change, message) -> None:
    path = tmp_path / "audit.jsonl"
    audit_pairs(sampling(), ROWS, MANY, CONFIG, path, model="M1", progress_label=None)
    before = path.read_text()
    with pytest.raises(StaleOutputError, match=re.escape(message)):
        audit_pairs(sampling(), change.get("rows", ROWS), MANY, change.get("config", CONFIG), path,
                    model=change.get("model", "M1"), progress_label=None)
    assert path.read_text() == before
