"""Prompt budgets: prompts fitted to the model's context before every call, never a crash.

The scripted generator counts whitespace words as tokens, so each case states its context in words.
"""

from __future__ import annotations

import re

import pytest

from prm_selfreward.judges.base import PairVerdict, StepComparison
from prm_selfreward.judges.pairwise import PairwiseStepJudge
from prm_selfreward.judges.prompts import elision_marker, pairwise_step_message
from prm_selfreward.models import ScriptedGenerator
from prm_selfreward.models.budget import PromptBudget, generation_room
from prm_selfreward.prompts import solve_prompt
from prm_selfreward.records import Problem
from prm_selfreward.search import SearchConfig, StepSearch

STEPS = [f"step{i} " + "w " * 20 for i in range(1, 11)]  # ten previous steps of 21 words each
A, B = "good " * 5, "bad " * 5


def words(text: str) -> int:
    return len(text.split())


def scripted_judge(context: int | None, mode: str = "generate", max_new_tokens: int = 8):
    seen: list[str] = []

    def generate_fn(prompt, n, params):
        seen.append(prompt)
        first = prompt.split("[The Start of Step A]")[1]
        return ["[[A]]" if first.strip().startswith("good") else "[[B]]"] * n

    def score_fn(prompt, continuation):
        seen.append(prompt)
        first = prompt.split("[The Start of Step A]")[1]
        return [-0.1 if (continuation == "A") == first.strip().startswith("good") else -3.0]

    gen = ScriptedGenerator(generate_fn, score_fn, context_length=context)
    judge = PairwiseStepJudge(gen, mode=mode, debias=False, max_new_tokens=max_new_tokens)
    return judge, seen


def full_words(previous=STEPS) -> int:
    return words(pairwise_step_message("What is x?", previous, A, B))


@pytest.mark.parametrize(
    "context_extra, mode, kept",
    [
        (None, "generate", 10),  # unbounded: the whole prompt
        (8, "generate", 10),  # exactly the verdict budget (max_new_tokens=8) left: nothing elided
        (7, "generate", 9),  # one word short: the earliest step goes, a marker line in its place
        (-100, "generate", 5),  # keeps the latest steps that fit (23 words a step, 5 for the marker)
        (1, "logprob", 10),  # logprob mode needs one token after "[["
        (0, "logprob", 9),
    ],
)
def test_judge_keeps_the_latest_steps_that_fit(context_extra, mode, kept):
    reserve = 8 if mode == "generate" else 1
    opening = 1 if mode == "logprob" else 0  # the "[[" the logprob prompt ends with is a word here
    context = None if context_extra is None else full_words() + opening + context_extra
    judge, seen = scripted_judge(context, mode)
    verdict = judge.compare([StepComparison("What is x?", STEPS, A, B)])[0]
    assert verdict.verdict == 0
    sent = seen[0]
    omitted = 10 - kept
    assert (elision_marker(omitted) in sent) == (omitted > 0)
    assert ("step1 " in sent) == (omitted == 0)
    assert f"Step {omitted + 1}: step{omitted + 1} " in sent and "Step 10: step10 " in sent
    if context is not None:
        assert words(sent) + reserve <= context
    assert judge.stats.elided_prompts == (omitted > 0) and judge.stats.elided_steps == omitted
    assert judge.stats.skipped_too_long == 0


def test_judge_skips_what_cannot_fit_and_counts_it():
    judge, seen = scripted_judge(full_words([]) + 8)  # room for a first-step prompt, not for more
    long_a = StepComparison("What is x?", STEPS, A + "more " * 10, B)
    fits = StepComparison("What is x?", [], A, B)
    verdicts = judge.compare([long_a, fits])
    assert [v.verdict for v in verdicts] == [-1, 0]
    assert judge.stats.skipped_too_long == 1 and judge.stats.failures == 1
    assert len(seen) == 1 and "more" not in seen[0]  # the skipped prompt never reached the model


class QualityJudge:
    """Prefers the candidate with the higher ``q=N``."""

    def compare(self, comparisons):
        return [PairVerdict(0 if c.step_a > c.step_b else 1) for c in comparisons]


def test_search_stops_a_problem_whose_prompt_leaves_no_room_for_a_step():
    def policy(prompt, n, params):
        step = int(re.search(r"Step (\d+):$", prompt).group(1))
        # Each step's text names its step: the same text twice would be a repeat (guard_repeats).
        return [f" q={1 + k % 2} s{step} " + "x " * 9 + f"\nStep {step + 1}:" for k in range(n)]

    problem = Problem(id="p", question="What is x?", answers=["1"], benchmark="toy")
    gen = ScriptedGenerator(policy)
    # Round l's prompt: the solving prompt, l - 1 steps of 13 words ("Step n:" + 11), "Step l:" (2).
    # A step needs 16 words of room: rounds 1-3 fit, round 4 (P + 41 + 16 > P + 49) does not.
    gen.context_length = words(solve_prompt(gen, problem.question)) + 49
    search = StepSearch(gen, QualityJudge(), SearchConfig(width=2, max_step_tokens=16, max_rounds=20, seed=None))
    result = search.run([problem])[0]
    assert result.stop_reason == "context" and not result.finished
    assert len(result.steps) == 3 and len(result.pairs) == 3 and result.counters["context_stops"] == 1
    assert len(gen.generate_calls) == 3 and gen.usage.skipped_prompts == 0  # stopped before the backend skips


@pytest.mark.parametrize(
    "context, prompt, max_new, room", [(None, 50, 16, 16), (100, 50, 16, 16), (60, 50, 16, 10), (50, 50, 16, 0), (40, 50, 16, 0)]
)
def test_generation_room(context, prompt, max_new, room):
    assert generation_room(context, prompt, max_new) == room


def test_budget_of_a_generator_without_a_context_is_unbounded():
    budget = PromptBudget.of(ScriptedGenerator(lambda p, n, params: [""] * n))
    assert not budget.bounded and budget.fits("a " * 10**5, 10**6) and budget.room("x") is None


def test_scripted_backend_skips_a_prompt_that_fills_its_context():
    calls = []
    gen = ScriptedGenerator(lambda p, n, params: calls.append(p) or ["ok"] * n, context_length=3)
    rows = gen.generate(["one two three", "one"], n=2)
    assert [c.finish_reason for c in rows[0]] == ["length", "length"] and rows[1][0].text == "ok"
    assert calls == ["one"] and gen.usage.skipped_prompts == 1


def test_transformers_judge_fits_its_prompts_to_max_length(tiny_model_dir):
    from prm_selfreward.models.hf import HFGenerator

    with HFGenerator(str(tiny_model_dir), batch_size=4) as gen:
        judge = PairwiseStepJudge(gen, mode="logprob", debias=False)
        comparison = StepComparison("What is 2 + 3?", STEPS, A, B)
        full = gen.count_tokens(judge.judge_prompt(comparison) + "[[")
        gen.max_length = full - 1  # one token short of the whole prompt + its verdict token
        prompt, omitted = judge.fitted_prompt(comparison)
        assert omitted == 1 and gen.count_tokens(prompt + "[[") < gen.max_length
        verdict = judge.compare([comparison])[0]
        assert verdict.verdict in (0, 1) and judge.stats.elided_prompts == 1
        gen.max_length = 8  # nothing fits: skipped, counted, no model call
        calls = gen.usage.calls
        assert judge.compare([comparison])[0].verdict == -1
        assert judge.stats.skipped_too_long == 1 and gen.usage.calls == calls
