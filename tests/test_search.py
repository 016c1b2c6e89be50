"""Step search with a scripted policy and a scripted judge: the paper's procedure, step by step."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

import pytest

from prm_selfreward.judges.base import PairVerdict, StepComparison
from prm_selfreward.models import GenerationParams, ScriptedGenerator
from prm_selfreward.pairs import build_step_pairs
from prm_selfreward.prompts import solve_prompt
from prm_selfreward.records import Problem
from prm_selfreward.search import (
    COPY_MIN_CHARS,
    GUARDED_SCORE,
    SearchConfig,
    SearchResult,
    StepSearch,
    copies_question,
    guard_key,
    order_consistency,
    pick_best_worst,
    repeats_step,
    round_seed,
    solve_with_search,
    step_completion,
    step_prompt,
    win_scores,
)

# ---------------------------------------------------------------------------------------------------
# Scripted pieces. Candidate steps carry their quality as "q=N"; the scripted judge prefers the higher
# quality and, between equal qualities, answers by position (always A), as a biased judge would.


class ScriptedJudge:
    def __init__(self, verdict_fn: Callable[[StepComparison], int] | None = None):
        self.verdict_fn = verdict_fn or by_quality
        self.calls: list[list[StepComparison]] = []

    def compare(self, comparisons: Sequence[StepComparison]) -> list[PairVerdict]:
        self.calls.append(list(comparisons))
        return [PairVerdict(self.verdict_fn(c)) for c in comparisons]


def quality(step: str) -> int:
    m = re.search(r"q=(\d+)", step)
    return int(m.group(1)) if m else 0


def by_quality(c: StepComparison) -> int:
    qa, qb = quality(c.step_a), quality(c.step_b)
    return 0 if qa >= qb else 1


def current_step(prompt: str) -> int:
    m = re.search(r"Step (\d+):$", prompt)
    assert m, f"prompt must end with 'Step l:' (no trailing space): {prompt[-30:]!r}"
    return int(m.group(1))


def make_problem(i: int, answer: str = "7") -> Problem:
    return Problem(id=f"toy/{i}", question=f"Question number {i}?", answers=[answer], benchmark="toy")


def policy(script: Callable[[str, int, int], list[str]]) -> ScriptedGenerator:
    """A generator whose candidates come from ``script(question_id, step, visit)``; ``visit`` counts how
    often step ``step`` of this question was sampled before (a re-sampled step after a tie or roll-back
    gets visit 1, 2 ...). Each raw text is followed by the next step's marker, as a real model would
    continue."""
    visits: dict[tuple[int, int], int] = {}

    def generate(prompt: str, n: int, params: GenerationParams) -> list[str]:
        step = current_step(prompt)
        qid = int(re.search(r"Question number (\d+)", prompt).group(1))
        visit = visits.get((qid, step), 0)
        visits[(qid, step)] = visit + 1
        texts = script(qid, step, visit)
        assert len(texts) == n
        return [t if "\\boxed" in t or t.endswith("<eos>") else f"{t}\nStep {step + 1}: more" for t in texts]

    return ScriptedGenerator(generate_fn=generate)


def ranked(step: int, qualities: Sequence[int], final: bool = False) -> list[str]:
    box = " so \\boxed{7}" if final else ""
    return [f" step{step} option{k} q={q}{box}" for k, q in enumerate(qualities)]


# ---------------------------------------------------------------------------------------------------
# Pure pieces.


@pytest.mark.parametrize(
    "n,verdicts,expected",
    [
        (2, {(0, 1): 0, (1, 0): 1}, [2, 0]),
        (2, {(0, 1): 0, (1, 0): 0}, [1, 1]),  # position-biased judge: a tie
        (3, {(0, 1): 1, (1, 0): 0, (0, 2): 0, (2, 0): 1, (1, 2): 0, (2, 1): 1}, [2, 4, 0]),
        (2, {(0, 1): -1, (1, 0): 1}, [1, 0]),  # a failure is a win for neither
        (2, {(0, 1): -1, (1, 0): -1}, [0, 0]),
    ],
)
def test_win_scores(n, verdicts, expected):
    assert win_scores(n, verdicts) == expected


@pytest.mark.parametrize(
    "scores,expected",
    [
        ([2, 4, 0], (1, 2)),
        ([3, 3, 1, 1], (0, 2)),  # lowest index among equals, for best and for worst
        ([1, 1, 1], None),
        ([0, 0], None),
        ([0, 5], (1, 0)),
    ],
)
def test_pick_best_worst(scores, expected):
    assert pick_best_worst(scores) == expected


@pytest.mark.parametrize(
    "verdicts,expected",
    [
        ({(0, 1): 0, (1, 0): 1}, (1, 1)),  # 0 wins both ways
        ({(0, 1): 0, (1, 0): 0}, (1, 0)),  # first position wins both times: inconsistent
        ({(0, 1): -1, (1, 0): 0}, (0, 0)),  # one order failed: not judged both ways
    ],
)
def test_order_consistency(verdicts, expected):
    assert order_consistency(2, verdicts) == expected


def test_round_seed_is_stable_and_varies():
    a = round_seed(0, ["p1", "p2"], 3)
    assert a == round_seed(0, ["p1", "p2"], 3)
    assert (
        len({a, round_seed(0, ["p1", "p2"], 4), round_seed(1, ["p1", "p2"], 3), round_seed(0, ["p1"], 3)})
        == 4
    )
    assert round_seed(None, ["p1"], 0) is None


def test_step_prompt_ends_on_marker_without_space_and_chains():
    base = "PROMPT\n"
    p1 = step_prompt(base, [])
    p2 = step_prompt(base, ["a = 1."])
    assert p1 == "PROMPT\nStep 1:"
    assert p2 == "PROMPT\nStep 1: a = 1.\nStep 2:"
    assert p1 + step_completion("a = 1.", final=False) + "Step 2:" == p2
    assert step_completion("so \\boxed{1}", final=True) == " so \\boxed{1}"


# ---------------------------------------------------------------------------------------------------
# The search.


def test_best_and_worst_by_wins_and_final_answer_stop():
    gen = policy(lambda q, step, v: ranked(step, [2, 5, 1], final=step == 2))
    judge = ScriptedJudge()
    (result,) = StepSearch(gen, judge, SearchConfig(width=3)).run([make_problem(0)])

    assert result.finished and result.stop_reason == "final_answer"
    assert result.steps == ["step1 option1 q=5", "step2 option1 q=5 so \\boxed{7}"]
    assert [p.step_index for p in result.pairs] == [1, 2]
    first, last = result.pairs
    # 3 candidates: 6 ordered comparisons, the best wins all 4 of its own, the worst none.
    assert (first.chosen_score, first.rejected_score) == (4.0, 0.0)
    assert first.chosen == " step1 option1 q=5\n" and first.rejected == " step1 option2 q=1\n"
    assert not first.is_final_step and last.is_final_step
    assert last.chosen.endswith("\\boxed{7}")  # a final step carries no trailing newline
    assert result.solution == "Step 1: step1 option1 q=5\nStep 2: step2 option1 q=5 so \\boxed{7}"
    # DPO prompt = exactly the text the step was generated after.
    assert first.prompt == gen.generate_calls[0][0][0]
    assert last.prompt == gen.generate_calls[1][0][0]
    assert first.prompt + first.chosen + "Step 2:" == last.prompt


def test_prompt_uses_few_shot_and_the_generators_template():
    gen = policy(lambda q, step, v: ranked(step, [1, 2], final=True))
    gen.template = "<user>{message}<model>"
    (result,) = StepSearch(gen, ScriptedJudge(), SearchConfig(width=2, few_shot=2)).run([make_problem(3)])
    expected = solve_prompt(gen, "Question number 3?", few_shot=2) + "Step 1:"
    assert result.pairs[0].prompt == expected
    assert expected.startswith("<user>") and "Solution:\nStep 1:" in expected


def test_model_ending_the_solution_stops_the_search():
    gen = policy(
        lambda q, step, v: [f" done q={k}<eos>" for k in range(3)] if step == 2 else ranked(step, [1, 2, 3])
    )

    def generate(prompt, n, params):  # "<eos>": no next marker, the model stopped
        return [t.replace("<eos>", "") for t in inner(prompt, n, params)]

    inner = gen.generate_fn
    gen.generate_fn = generate
    (result,) = StepSearch(gen, ScriptedJudge(), SearchConfig(width=3)).run([make_problem(0)])
    assert result.finished and result.stop_reason == "model_ended"
    assert len(result.steps) == 2 and result.pairs[-1].is_final_step
    assert result.pairs[-1].chosen == " done q=2"


def test_round_cap_ends_an_endless_solution():
    gen = policy(lambda q, step, v: ranked(step, [1, 3]))
    (result,) = StepSearch(gen, ScriptedJudge(), SearchConfig(width=2, max_rounds=20)).run([make_problem(0)])
    assert not result.finished and result.stop_reason == "max_rounds"
    assert len(result.steps) == 20 and len(result.pairs) == 20
    assert result.counters["rounds"] == 20 and len(gen.generate_calls) == 20


def test_all_tie_rolls_back_the_previous_step_and_its_pair():
    # Step 2 ties on the first visit (all equal quality, position-biased judge), so step 1 and its
    # pair are discarded; the re-sampled step 1 (visit 1) differs, then step 2 resolves.
    def script(q, step, visit):
        if step == 1:
            return ranked(1, [1, 4, 2]) if visit == 0 else [" again1 q=9", " again1 q=1", " again1 q=5"]
        if visit == 0:
            return ranked(2, [3, 3, 3])
        return ranked(2, [1, 2, 6], final=True)

    gen = policy(script)
    (result,) = StepSearch(gen, ScriptedJudge(), SearchConfig(width=3)).run([make_problem(0)])
    assert result.steps == ["again1 q=9", "step2 option2 q=6 so \\boxed{7}"]
    assert [p.chosen.strip() for p in result.pairs] == ["again1 q=9", "step2 option2 q=6 so \\boxed{7}"]
    assert result.counters["ties"] == 1 and result.counters["rollbacks"] == 1
    assert result.counters["rounds"] == 4 and result.finished
    assert [t["action"] for t in result.trace] == ["pair", "tie_rollback", "pair", "pair"]


def test_tie_at_step_one_resamples_without_rollback():
    gen = policy(lambda q, step, v: ranked(1, [2, 2]) if v == 0 else ranked(1, [1, 2], final=True))
    (result,) = StepSearch(gen, ScriptedJudge(), SearchConfig(width=2)).run([make_problem(0)])
    assert result.counters["ties"] == 1 and result.counters["rollbacks"] == 0
    assert result.steps == ["step1 option1 q=2 so \\boxed{7}"] and result.counters["rounds"] == 2


def test_rollbacks_are_capped_then_ties_keep_the_first_candidate():
    # Step 1 always resolves, step 2 always ties: without a cap this would oscillate until max_rounds.
    gen = policy(lambda q, step, v: ranked(step, [1, 2]) if step == 1 else ranked(step, [5, 5], final=True))
    cfg = SearchConfig(width=2, max_rollbacks=2)
    (result,) = StepSearch(gen, ScriptedJudge(), cfg).run([make_problem(0)])
    assert result.counters["rollbacks"] == 2 and result.counters["ties"] == 3
    assert result.trace[-1]["action"] == "tie_keep_first"
    assert result.steps[-1] == "step2 option0 q=5 so \\boxed{7}" and result.finished
    assert [p.step_index for p in result.pairs] == [1]  # the kept tie emits no pair


def test_ties_at_step_one_count_toward_the_cap():
    # A judge that always prefers position A makes every round a tie; the search must still progress.
    gen = policy(lambda q, step, v: ranked(step, [1, 1], final=step == 3))
    (result,) = StepSearch(gen, ScriptedJudge(lambda c: 0), SearchConfig(width=2, max_rollbacks=3)).run(
        [make_problem(0)]
    )
    actions = [t["action"] for t in result.trace]
    assert actions == ["tie_resample"] * 3 + ["tie_keep_first"] * 3
    assert len(result.steps) == 3 and result.finished and result.pairs == []
    assert result.counters["ties"] == 6 and result.counters["rollbacks"] == 0


def test_rollback_off_keeps_the_first_candidate_on_ties():
    gen = policy(lambda q, step, v: ranked(step, [1, 2]) if step == 1 else ranked(step, [5, 5], final=True))
    (result,) = StepSearch(gen, ScriptedJudge(), SearchConfig(width=2, rollback_on_tie=False)).run(
        [make_problem(0)]
    )
    assert result.counters["rollbacks"] == 0 and result.counters["rounds"] == 2


def test_judge_failures_count_as_no_win():
    # The judge fails on every comparison involving the q=9 candidate, which would otherwise win.
    def verdict(c):
        return -1 if 9 in (quality(c.step_a), quality(c.step_b)) else by_quality(c)

    gen = policy(lambda q, step, v: ranked(step, [9, 1, 5], final=True))
    (result,) = StepSearch(gen, ScriptedJudge(verdict), SearchConfig(width=3)).run([make_problem(0)])
    assert result.trace[0]["scores"] == [0, 0, 2]
    assert result.counters["judge_failures"] == 4
    pair = result.pairs[0]
    assert pair.chosen.startswith(" step1 option2 q=5") and pair.rejected.startswith(" step1 option0 q=9")


def test_identical_candidates_are_judged_once():
    four = [" same q=1", "  same   q=1", " other q=3", " other q=3"]
    gen = policy(lambda q, step, v: four if step == 1 else ranked(2, [1, 2, 3, 4], final=True))
    judge = ScriptedJudge()
    (result,) = StepSearch(gen, judge, SearchConfig(width=4)).run([make_problem(0)])
    assert len(judge.calls[0]) == 2  # 2 distinct candidates -> 2 ordered pairs, not 12
    assert result.counters["duplicate_candidates"] == 2
    assert result.pairs[0].chosen == " other q=3\n" and result.pairs[0].rejected == " same q=1\n"


def test_all_identical_candidates_accept_the_step_without_a_pair():
    gen = policy(lambda q, step, v: [" sure q=1"] * 3 if step == 1 else ranked(2, [1, 2, 3], final=True))
    judge = ScriptedJudge()
    (result,) = StepSearch(gen, judge, SearchConfig(width=3)).run([make_problem(0)])
    assert result.steps[0] == "sure q=1" and [p.step_index for p in result.pairs] == [2]
    assert result.counters["uniform_rounds"] == 1 and result.counters["ties"] == 0
    assert len(judge.calls) == 1  # round 1 needed no judge call at all


def test_empty_candidates_are_not_judged_and_all_empty_ends_the_search():
    def generate(prompt, n, params):  # step 1: one blank sample; step 2: the model writes nothing
        return ["  ", " a q=1\nStep 2:", " b q=2\nStep 2:"] if current_step(prompt) == 1 else [""] * n

    gen = ScriptedGenerator(generate_fn=generate)
    judge = ScriptedJudge()
    (result,) = StepSearch(gen, judge, SearchConfig(width=3, max_rounds=5)).run([make_problem(0)])
    assert len(judge.calls) == 1 and len(judge.calls[0]) == 2
    assert result.steps == ["b q=2"]
    assert result.stop_reason == "empty" and not result.finished
    assert result.counters["empty_candidates"] == 1 + 3


# ---------------------------------------------------------------------------------------------------
# Guards: a candidate that repeats an earlier step or copies the question is never chosen.

QUESTION = "Question number 0? Tom has 3 apples and buys 4 more apples. How many apples does he have?"


@pytest.mark.parametrize(
    "text,key",
    [
        ("  The answer is   5. ", "the answer is 5"),
        ("THE ANSWER IS 5!", "the answer is 5"),
        ("x = 5;", "x = 5"),
        ("...", ""),
    ],
)
def test_guard_key(text, key):
    assert guard_key(text) == key


@pytest.mark.parametrize(
    "body,previous,expected",
    [
        ("The answer is \\boxed{3}.", ["3 + 0 = 3.", "The answer is \\boxed{3}."], True),
        ("the answer is \\boxed{3}", ["The  Answer is \\boxed{3}."], True),  # case, spaces, final period
        ("The answer is \\boxed{4}.", ["The answer is \\boxed{3}."], False),
        ("3 + 0 = 3.", [], False),
        ("3 + 0 = 3 and more.", ["3 + 0 = 3."], False),  # a step that extends another is no repeat
    ],
)
def test_repeats_step(body, previous, expected):
    assert repeats_step(body, previous) is expected


@pytest.mark.parametrize(
    "body,expected",
    [
        (QUESTION, True),
        ("  " + QUESTION.upper() + " ", True),
        ("We know: " + QUESTION + " Let us think.", True),  # holds the whole question
        ("Tom has 3 apples and buys 4 more apples. How many apples does he have", True),  # most of it
        ("Tom has 3 apples and buys 4 more apples", False),  # a piece, under half of the question
        ("4 more apples", False),  # short: never a copy
        ("He has 3 + 4 = 7 apples.", False),
    ],
)
def test_copies_question(body, expected):
    assert copies_question(body, QUESTION) is expected


def test_copies_question_needs_min_chars_on_both_sides():
    short = "What is 2 + 3?"
    assert len(guard_key(short)) < COPY_MIN_CHARS
    assert not copies_question("What is 2 + 3? It is 5.", short)  # a short question is not flagged
    assert not copies_question("What is 2 + 3", short)


def test_a_repeated_step_is_never_chosen_and_becomes_the_rejected_step():
    # At step 2 the judge would prefer the repeat of step 1 (highest quality), written in other case
    # and spacing: the guard keeps it from the judge and makes it the pair's rejected step.
    def script(q, step, visit):
        if step == 1:
            return ranked(1, [1, 5, 2])
        return [" STEP1 option1   q=5.", " fresh q=1", " better q=2 so \\boxed{7}"]

    judge = ScriptedJudge()
    (result,) = StepSearch(policy(script), judge, SearchConfig(width=3)).run([make_problem(0)])
    assert result.steps == ["step1 option1 q=5", "better q=2 so \\boxed{7}"]
    assert len(judge.calls[1]) == 2  # only the two judged candidates: the repeat is never compared
    assert all("STEP1" not in c.step_a + c.step_b for c in judge.calls[1])
    pair = result.pairs[1]
    assert pair.chosen == " better q=2 so \\boxed{7}" and pair.rejected == " STEP1 option1   q=5.\n"
    assert pair.rejected_score == GUARDED_SCORE < pair.chosen_score == 2.0
    assert pair.metadata["rejected_guard"] == "repeat"
    assert result.trace[1]["action"] == "guard_pair" and result.trace[1]["guards"] == ["repeat"]
    c = result.counters
    guards = (c["repeat_candidates"], c["copy_candidates"], c["guard_pairs"], c["degenerate_stops"])
    assert guards == (1, 0, 1, 0)
    kept, _ = build_step_pairs([result])
    assert len(kept) == 2 and kept[1].margin == 3.0  # the pair builder keeps it, margin wins - (-1)


def test_guard_off_judges_repeats_like_any_other_candidate():
    def script(q, step, visit):
        if step == 1:
            return ranked(1, [1, 5, 2])
        return [" STEP1 option1   q=5.", " fresh q=1", " better q=2 so \\boxed{7}"]

    judge = ScriptedJudge()
    cfg = SearchConfig(width=3, max_rounds=3, guard_repeats=False)
    (result,) = StepSearch(policy(script), judge, cfg).run([make_problem(0)])
    assert result.steps[1] == "STEP1 option1   q=5."  # the ablation: the judge picks the repeat
    assert len(judge.calls[1]) == 6
    assert result.counters["repeat_candidates"] >= 1 and result.counters["guard_pairs"] == 0


def test_a_candidate_copying_the_question_is_the_rejected_step():
    problem = Problem(id="toy/0", question=QUESTION, answers=["7"], benchmark="toy")
    copy = " " + QUESTION + " q=9"
    gen = policy(lambda q, step, v: [copy, " He has 3 + 4 = 7 apples q=1 so \\boxed{7}"])
    judge = ScriptedJudge()
    (result,) = StepSearch(gen, judge, SearchConfig(width=2)).run([problem])
    assert result.steps == ["He has 3 + 4 = 7 apples q=1 so \\boxed{7}"] and result.finished
    assert judge.calls == []  # one judged candidate: nothing to compare
    (pair,) = result.pairs
    assert pair.rejected.startswith(copy) and pair.metadata["rejected_guard"] == "copy"
    assert result.counters["copy_candidates"] == 1 and result.counters["uniform_rounds"] == 0


LOOPING_STEP = " 150 * 80000 / 80000 = 150" + " * 80000 / 80000 = 150" * 4 + " q=9"


@pytest.mark.parametrize("guard", [True, False])
def test_a_candidate_looping_inside_the_step_is_the_rejected_step(guard):
    # The judge would prefer the loop (q=9): only the guard keeps it out of the solution.
    def script(q, step, visit):
        if step == 1:
            return ranked(1, [1, 5])
        return [LOOPING_STEP, " fresh q=1 so \\boxed{7}"]

    judge = ScriptedJudge()
    (result,) = StepSearch(policy(script), judge, SearchConfig(width=2, guard_repeats=guard)).run(
        [make_problem(0)]
    )
    assert result.counters["loop_candidates"] == 1  # counted whether or not the guard is on
    if guard:
        assert result.steps[1] == "fresh q=1 so \\boxed{7}" and len(judge.calls) == 1
        assert result.pairs[1].metadata["rejected_guard"] == "loop"
        assert result.pairs[1].rejected.startswith(LOOPING_STEP)
        assert result.counters["guard_pairs"] == 1
    else:
        assert result.steps[1] == LOOPING_STEP.strip() and result.counters["guard_pairs"] == 0


def test_a_repeated_sub_expression_is_no_loop():
    # Two copies of a stretch, or a long step that reuses a number, are ordinary arithmetic.
    gen = policy(lambda q, step, v: [" 80000 / 80000 = 1 and 80000 / 80000 = 1, so q=2 \\boxed{7}",
                                     " 3 + 4 = 7 q=1 so \\boxed{7}"])
    (result,) = StepSearch(gen, ScriptedJudge(), SearchConfig(width=2)).run([make_problem(0)])
    assert result.counters["loop_candidates"] == 0 and result.steps[0].startswith("80000 / 80000")


def test_guarded_candidate_resolves_a_tie_instead_of_a_rollback():
    # A judge that always answers A ties every judged candidate; a repeat still loses to all of them.
    def script(q, step, visit):
        if step == 1:
            return [" first q=1", " second q=2", " third q=3"]
        return [" first q=1", " a q=4 so \\boxed{7}", " b q=4 so \\boxed{8}"]

    (result,) = StepSearch(policy(script), ScriptedJudge(lambda c: 0), SearchConfig(width=3)).run(
        [make_problem(0)]
    )
    actions = [t["action"] for t in result.trace]
    assert actions[-1] == "guard_pair" and result.counters["rollbacks"] == 0
    assert result.steps[-1] == "a q=4 so \\boxed{7}"  # lowest index among the tied judged ones
    assert result.pairs[-1].rejected == " first q=1\n"


def test_every_candidate_guarded_ends_the_search_as_degenerate():
    def script(q, step, visit):
        if step == 1:
            return ranked(1, [1, 2])
        return [" step1 option1 q=2", " Step1 Option1 q=2!"]

    judge = ScriptedJudge()
    (result,) = StepSearch(policy(script), judge, SearchConfig(width=2, max_rounds=5)).run([make_problem(0)])
    assert result.stop_reason == "degenerate" and not result.finished
    assert result.steps == ["step1 option1 q=2"] and len(result.pairs) == 1
    assert len(judge.calls) == 1  # the degenerate round asked the judge nothing
    c = result.counters
    assert c["degenerate_stops"] == 1 and c["repeat_candidates"] == 2 and c["rounds"] == 2


def test_search_stage_summary_sums_the_guard_counts():
    from prm_selfreward.stages import search_summary

    def script(q, step, visit):
        if step == 1:
            return ranked(1, [1, 2])
        return [" step1 option1 q=2", " fresh q=1 so \\boxed{7}"] if q == 0 else [" step1 option1 q=2"] * 2

    results = StepSearch(policy(script), ScriptedJudge(), SearchConfig(width=2)).run(
        [make_problem(0), make_problem(1)]
    )
    summary = search_summary(results)
    assert [r.stop_reason for r in results] == ["final_answer", "degenerate"]
    assert (summary["repeat_candidates"], summary["copy_candidates"]) == (3, 0)
    assert (summary["guard_pairs"], summary["degenerate_stops"], summary["finished"]) == (1, 1, 1)


def test_an_answer_line_without_a_box_ends_the_solution():
    gen = policy(lambda q, step, v: [" 3 + 4 = 7, so the answer is 7. q=1", " so the answer is 8. q=2"])
    (result,) = StepSearch(gen, ScriptedJudge(), SearchConfig(width=2)).run([make_problem(0)])
    assert result.finished and result.stop_reason == "final_answer"
    assert result.steps == ["so the answer is 8. q=2"] and result.pairs[0].is_final_step


def script_for_lockstep(q: int, step: int, visit: int) -> list[str]:
    """Problems of different lengths, with a tie (roll-back) in problem 1."""
    length = {0: 1, 1: 3, 2: 4}[q]
    if q == 1 and step == 2 and visit == 0:
        return ranked(step, [4, 4, 4])
    qualities = [(q + step + k) % 5 for k in range(3)]
    if len(set(qualities)) == 1:
        qualities[0] += 1
    return ranked(step, qualities, final=step == length)


def test_lockstep_equals_one_problem_at_a_time_with_one_call_each_per_round():
    problems = [make_problem(i) for i in range(3)]
    gen, judge = policy(script_for_lockstep), ScriptedJudge()
    search = StepSearch(gen, judge, SearchConfig(width=3))
    together = search.run(problems)

    alone = []
    for p in problems:
        alone += StepSearch(policy(script_for_lockstep), ScriptedJudge(), SearchConfig(width=3)).run([p])
    assert [r.to_dict() for r in together] == [r.to_dict() for r in alone]

    rounds = max(r.counters["rounds"] for r in together)
    assert search.lockstep_rounds == rounds == 5
    assert len(gen.generate_calls) == rounds and len(judge.calls) == rounds
    # Each round's single generate call holds every active problem's prompt, n = width.
    active_per_round = [sum(r.counters["rounds"] > i for r in together) for i in range(rounds)]
    assert [len(prompts) for prompts, _ in gen.generate_calls] == active_per_round
    assert all(n == 3 for _, n in gen.generate_calls)
    assert [len(c) for c in judge.calls] == [6 * a for a in active_per_round]


def test_counters_and_usage():
    problems = [make_problem(i) for i in range(3)]
    gen = policy(script_for_lockstep)
    search = StepSearch(gen, ScriptedJudge(), SearchConfig(width=3))
    results = search.run(problems)

    c = search.counters
    assert c.problems == 3 and c.finished == 3
    assert c.pairs == sum(len(r.pairs) for r in results) == 1 + 3 + 4
    assert c.ties == 1 and c.rollbacks == 1
    assert c.rounds == sum(r.counters["rounds"] for r in results) == 1 + 5 + 4
    assert c.comparisons == 6 * c.rounds and c.judge_failures == 0
    # The scripted judge prefers higher quality regardless of position, except between equals.
    assert c.judged_orders == 3 * c.rounds
    assert c.consistent_orders == c.judged_orders - 3  # only the all-equal tie round is inconsistent
    # Usage is read from the generator's TokenUsage deltas (the scripted judge uses no model).
    assert search.usage.calls == len(gen.generate_calls) == gen.usage.calls
    assert search.usage.generated_tokens == gen.usage.generated_tokens == c.generated_tokens
    assert search.usage.prompt_tokens == gen.usage.prompt_tokens == c.prompt_tokens
    # A second run accumulates.
    search.run([make_problem(0)])
    assert search.counters.problems == 4 and search.usage.calls == gen.usage.calls


def test_judge_usage_is_counted_when_the_judge_has_its_own_generator():
    gen = policy(lambda q, step, v: ranked(step, [1, 2], final=True))
    judge = ScriptedJudge()
    judge.generator = ScriptedGenerator(score_fn=lambda p, c: [-1.0])
    inner = judge.compare

    def compare(comparisons):
        judge.generator.score(["x"] * len(comparisons), ["A"] * len(comparisons))
        return inner(comparisons)

    judge.compare = compare
    search = StepSearch(gen, judge, SearchConfig(width=2))
    search.run([make_problem(0)])
    assert search.usage.calls == 2 and search.usage.scored_tokens == 2


def test_sampling_params_and_seeds():
    gen = policy(lambda q, step, v: ranked(step, [1, 2], final=step == 2))
    seen: list[GenerationParams] = []
    inner = gen.generate_fn

    def generate(prompt, n, params):
        seen.append(params)
        return inner(prompt, n, params)

    gen.generate_fn = generate
    cfg = SearchConfig(width=2, temperature=0.5, top_p=0.95, max_step_tokens=77, seed=123)
    StepSearch(gen, ScriptedJudge(), cfg).run([make_problem(0)])
    assert [(p.temperature, p.top_p, p.max_new_tokens) for p in seen] == [(0.5, 0.95, 77)] * 2
    assert seen[0].seed == round_seed(123, ["toy/0"], 0) and seen[1].seed == round_seed(123, ["toy/0"], 1)
    assert "\nStep 2:" in seen[0].stop and "\nProblem:" in seen[0].stop and "\nStep 3:" in seen[1].stop


def test_result_round_trips_through_json():
    gen = policy(script_for_lockstep)
    results = StepSearch(gen, ScriptedJudge(), SearchConfig(width=3)).run([make_problem(1)])
    line = json.dumps(results[0].to_dict())
    back = SearchResult.from_dict(json.loads(line))
    assert back == results[0]
    with pytest.raises(ValueError, match="unknown field"):
        SearchResult.from_dict({**results[0].to_dict(), "bogus": 1})


def test_solve_with_search_returns_full_solutions():
    gen = policy(script_for_lockstep)
    results = solve_with_search(gen, ScriptedJudge(), [make_problem(2)], SearchConfig(width=3))
    assert results[0].solution.count("Step ") == 4 and results[0].solution.startswith("Step 1: ")


@pytest.mark.parametrize("bad", [{"width": 1}, {"max_rounds": 0}, {"max_rollbacks": -1}])
def test_config_rejects_impossible_values(bad):
    with pytest.raises(ValueError):
        SearchConfig(**bad)


def test_consistency_comes_from_the_judge_when_it_debiases_itself():
    class DebiasingJudge(ScriptedJudge):
        """Returns the combined (mirrored) verdict for both orders, flagging order agreement."""

        def compare(self, comparisons):
            out = []
            for c in super().compare(comparisons):
                c.extra["consistent"] = False  # pretend the two orders disagreed every time
                out.append(c)
            return out

    gen = policy(lambda q, step, v: ranked(step, [1, 2, 3], final=True))
    (result,) = StepSearch(gen, DebiasingJudge(), SearchConfig(width=3)).run([make_problem(0)])
    assert result.counters["judged_orders"] == 3 and result.counters["consistent_orders"] == 0


def test_final_answer_is_extracted():
    gen = policy(lambda q, step, v: ranked(step, [1, 2], final=step == 2))
    (result,) = StepSearch(gen, ScriptedJudge(), SearchConfig(width=2)).run([make_problem(0)])
    assert result.final_answer == "7"


@pytest.mark.parametrize(
    "answer,record,drop,correct,pairs",
    [
        ("7", True, False, True, 2),
        ("8", True, False, False, 2),
        ("8", False, True, False, 0),  # drop_wrong checks even without record_correctness
        ("8", False, False, None, 2),  # off by default: nothing recorded
    ],
)
def test_correctness_recording_and_dropping(monkeypatch, answer, record, drop, correct, pairs):
    import prm_selfreward.search as search_module

    # The checker itself is tested with grading; here: what the search does with its verdict.
    monkeypatch.setattr(
        search_module, "_check", lambda solution, problem: f"boxed{{{problem.answer}}}" in solution
    )
    gen = policy(lambda q, step, v: ranked(step, [1, 2], final=step == 2))
    cfg = SearchConfig(width=2, record_correctness=record, drop_wrong=drop)
    (result,) = StepSearch(gen, ScriptedJudge(), cfg).run([make_problem(0, answer=answer)])
    assert result.correct is correct and len(result.pairs) == pairs
    assert result.counters["pairs"] == pairs
    if correct is not None and pairs:
        assert all(p.metadata["solution_correct"] is correct for p in result.pairs)


@pytest.mark.parametrize(
    "benchmark,gold,final_text,correct",
    [
        ("gsm8k", "7", " so \\boxed{7}", True),
        ("gsm8k", "7", " so \\boxed{8}", False),
        ("math", "\\frac{1}{2}", " so \\boxed{0.5}", True),
        ("toy", "7", " so \\boxed{7.0}", True),  # a benchmark the checker does not know: default rules
    ],
)
def test_correctness_uses_the_answer_checker(benchmark, gold, final_text, correct):
    def script(q, step, v):
        return [f" step{step} q={k}" + (final_text if step == 2 else "") for k in range(2)]

    gen = policy(script)
    problem = Problem(id="p/0", question="Question number 0?", answers=[gold], benchmark=benchmark)
    cfg = SearchConfig(width=2, record_correctness=True)
    (result,) = StepSearch(gen, ScriptedJudge(), cfg).run([problem])
    assert result.finished and result.correct is correct


def test_run_to_jsonl_resumes_with_the_same_chunks(tmp_path):
    problems = [make_problem(i) for i in range(3)]
    path = tmp_path / "search.jsonl"
    seeds: list[int | None] = []

    def recording_policy():
        gen = policy(script_for_lockstep)
        inner = gen.generate_fn

        def generate(prompt, n, params):
            seeds.append(params.seed)
            return inner(prompt, n, params)

        gen.generate_fn = generate
        return gen

    full = StepSearch(recording_policy(), ScriptedJudge(), SearchConfig(width=3, lockstep=2))
    expected = full.run_to_jsonl(problems, path)
    seeds_full = list(seeds)
    lines = path.read_text().splitlines()
    assert len(lines) == 3

    # A kill after the first result of chunk 1 was written, mid-way through the second line.
    path.write_text(lines[0] + "\n" + lines[1][:20])
    seeds.clear()
    gen = recording_policy()
    resumed = StepSearch(gen, ScriptedJudge(), SearchConfig(width=3, lockstep=2)).run_to_jsonl(problems, path)
    assert [r.to_dict() for r in resumed] == [r.to_dict() for r in expected]
    assert len(path.read_text().splitlines()) == 3
    # Chunk [0, 1] ran whole again (same batch, same seeds); chunk [2] too, since it was never written.
    assert set(seeds) <= set(seeds_full)

    # Nothing left to do: no model call at all.
    gen = recording_policy()
    StepSearch(gen, ScriptedJudge(), SearchConfig(width=3, lockstep=2)).run_to_jsonl(problems, path)
    assert gen.generate_calls == []


# ---------------------------------------------------------------------------------------------------
# The real thing, small: transformers backend on the tiny random model, the model judging itself.


@pytest.fixture(scope="module")
def tiny_generator(tiny_model_dir):
    from prm_selfreward.models.hf import HFGenerator

    return HFGenerator(str(tiny_model_dir), batch_size=8, seed=0)


@pytest.mark.parametrize("mode", ["logprob", "likelihood"])
def test_short_real_search_on_the_tiny_model(tiny_generator, mode):
    from prm_selfreward.judges.pairwise import PairwiseStepJudge

    judge = PairwiseStepJudge(tiny_generator, mode=mode)
    cfg = SearchConfig(width=2, max_rounds=2, max_step_tokens=6, max_rollbacks=0, seed=1)
    problems = [make_problem(0), make_problem(1)]
    before = tiny_generator.usage.snapshot()
    search = StepSearch(tiny_generator, judge, cfg)
    results = search.run(problems)

    assert [r.problem_id for r in results] == ["toy/0", "toy/1"]
    assert search.lockstep_rounds == max(r.counters["rounds"] for r in results) <= 2
    # Per round: one generate call, one judge call (one score call in both modes).
    assert search.usage.calls == 2 * search.lockstep_rounds
    assert search.usage == tiny_generator.usage - before
    assert search.usage.generated_tokens == search.counters.generated_tokens > 0
    assert any(r.pairs for r in results)  # the debiased/likelihood judge of a random model rarely ties
    for r in results:
        assert r.counters["rounds"] >= 1 and len(r.trace) == r.counters["rounds"]
        assert SearchResult.from_dict(json.loads(json.dumps(r.to_dict()))) == r
        for p in r.pairs:
            assert p.prompt.endswith(f"Step {p.step_index}:") and p.chosen.startswith(" ")
            assert p.prompt == step_prompt(
                solve_prompt(tiny_generator, r.question), r.steps[: p.step_index - 1]
            )
    if mode == "logprob":
        return  # the judge prompt is long for the tiny byte-level tokenizer: check reproducibility once
    # Reproducible: the same seed gives the same search.
    again = StepSearch(tiny_generator, PairwiseStepJudge(tiny_generator, mode=mode), cfg).run(problems)
    assert [r.to_dict() for r in again] == [r.to_dict() for r in results]


def test_pairs_command_on_the_tiny_model_writes_and_resumes(tiny_model_dir, data_dir, tmp_path):
    from typer.testing import CliRunner

    from prm_selfreward.cli import app

    out = tmp_path / "pairs"
    args = ["pairs", "--model", str(tiny_model_dir), "--problems", "gsm8k", "--limit", "2", "--out", str(out)]
    args += ["--width", "2", "--max-rounds", "2", "--max-step-tokens", "4", "--data-dir", str(data_dir)]
    args += ["--mode", "likelihood"]
    runner = CliRunner()
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "tokens per pair" in first.output and "roll-backs" in first.output
    assert re.search(r"guarded: repeat / copy / loop\s*│\s*0 / 0 / 0 │", first.output)
    results = [json.loads(line) for line in (out / "search.jsonl").read_text().splitlines()]
    assert [r["problem_id"] for r in results] == ["gsm8k/train/0", "gsm8k/train/1"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairs_kept"] == len((out / "pairs.jsonl").read_text().splitlines())
    assert summary["counters"]["problems"] == 2

    second = runner.invoke(app, args)  # everything done: resumes without searching
    assert second.exit_code == 0, second.output
    assert json.loads((out / "summary.json").read_text())["counters"]["problems"] == 0

    changed = runner.invoke(app, [*args[:-2], "--mode", "logprob"])
    assert changed.exit_code != 0 and "other settings (judge)" in str(changed.exception or changed.output)
