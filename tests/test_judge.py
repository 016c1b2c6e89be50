"""The pairwise step judge's machinery with scripted models: prompt, parsing, both-order logic, batching,
the TRL-style ``judge`` and the GRPO reward function."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prm_selfreward.judges import (
    JudgeStats,
    PairwiseStepJudge,
    StepComparison,
    StepJudge,
    as_reward_func,
    pairwise_step_message,
    pairwise_step_target,
    parse_verdict,
)
from prm_selfreward.judges.prompts import PAIRWISE_STEP_INSTRUCTION, VERDICT_OPENING
from prm_selfreward.models import ScriptedGenerator

SHOWN = re.compile(r"\[The Start of Step ([AB])\]\n(.*?)\n\[The End of Step \1\]", re.S)


def shown_steps(prompt: str) -> tuple[str, str]:
    """The two candidate bodies in a judge prompt, in the order shown (A, B)."""
    found = dict(SHOWN.findall(prompt))
    return found["A"], found["B"]


def quality(step: str) -> float:
    """The scripted judges' notion of a good step: the number in 'q=<n>' inside it."""
    m = re.search(r"q=(-?\d+(?:\.\d+)?)", step)
    return float(m.group(1)) if m else 0.0


def fair_callable(prompts: list[str]) -> list[str]:
    """Prefers the higher-quality step wherever it is shown; explains first, as the prompt asks."""
    out = []
    for p in prompts:
        a, b = shown_steps(p)
        out.append(
            f"Step {'A' if quality(a) >= quality(b) else 'B'} is right. "
            + ("[[A]]" if quality(a) >= quality(b) else "[[B]]")
        )
    return out


def always_a(prompts: list[str]) -> list[str]:
    return ["I prefer the first. [[A]]" for _ in prompts]


def cmp(
    a: str, b: str, question: str = "What is 2 + 3?", previous: list[str] | None = None
) -> StepComparison:
    return StepComparison(question, previous or [], a, b)


# ---------------------------------------------------------------------------------------------------
# Prompt and target


def test_message_holds_question_previous_steps_and_both_candidates_in_order():
    msg = pairwise_step_message(
        "What is 2 + 3?", ["Step 1: Start.\n", "We add."], "Step 3: 2 + 3 = 5", "2 + 3 = 6"
    )
    assert msg.startswith(PAIRWISE_STEP_INSTRUCTION)
    assert "[Question]\nWhat is 2 + 3?" in msg
    assert "[Previous Steps]\nStep 1: Start.\nStep 2: We add.\n" in msg
    # candidates are shown as bodies: a differing marker would be a cue unrelated to quality
    assert shown_steps(msg) == ("2 + 3 = 5", "2 + 3 = 6")
    assert msg.index("2 + 3 = 5") < msg.index("2 + 3 = 6")
    for phrase in ("[[A]]", "[[B]]", "order in which", "longer or shorter", "correct", "no tie"):
        assert phrase in msg


def test_message_without_previous_steps_says_so():
    msg = pairwise_step_message("Q?", [], "a", "b")
    assert "(none yet" in msg


@pytest.mark.parametrize(
    "explanation,verdict,verdict_first,expected",
    [
        ("Step A computes 2 + 3 correctly.", 0, False, "Step A computes 2 + 3 correctly. [[A]]"),
        ("  B is right.\n", 1, False, "B is right. [[B]]"),
        ("", 1, False, "[[B]]"),
        ("Step A computes 2 + 3 correctly.", 0, True, "[[A]] Step A computes 2 + 3 correctly."),
        ("  B is right.\n", 1, True, "[[B]] B is right."),
        ("", 0, True, "[[A]]"),
    ],
)
def test_target(explanation, verdict, verdict_first, expected):
    target = pairwise_step_target(explanation, verdict, verdict_first)
    assert target == expected
    assert parse_verdict(target) == verdict
    # verdict first: the logprob judge's reading point (prompt + "[[") is followed by the verdict letter
    assert target.startswith(f"{VERDICT_OPENING}{'AB'[verdict]}") == (verdict_first or not explanation.strip())


@pytest.mark.parametrize("verdict", [-1, 2, None, "A"])
def test_target_rejects_bad_verdicts(verdict):
    with pytest.raises(ValueError):
        pairwise_step_target("x", verdict)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Step A is correct. [[A]]", 0),
        ("Step B is correct. [[B]]", 1),
        ("[[a]]", 0),
        ("[[ b ]]", 1),
        ("Verdict: [[B]]\n", 1),
        # both tags: the last one counts (the prompt asks for the verdict at the end)
        ("Choosing [[A]] would ignore the error in A, so [[B]]", 1),
        ("[[B]] ... on reflection [[A]]", 0),
        ("A and B both fine [[A]] [[A]]", 0),
        # single brackets when no double ones
        ("The better step is [A].", 0),
        ("[b]", 1),
        ("[[A]] beats [B]", 0),  # double brackets take precedence
        # worded verdicts
        ("Verdict: B", 1),
        ("My verdict is A.", 0),
        ("final verdict: **Step B**", 1),
        # garbage and empty
        ("", -1),
        (None, -1),
        ("Both steps are equally good.", -1),
        ("[[C]]", -1),
        ("[[AB]]", -1),
        ("A", -1),
        ("[[", -1),
    ],
)
def test_parse_verdict(text, expected):
    assert parse_verdict(text) == expected


# ---------------------------------------------------------------------------------------------------
# Generate mode with a plain callable: both-order logic, consistency, failures


def test_callable_judge_is_a_step_judge_and_defaults_to_generate():
    judge = PairwiseStepJudge(fair_callable)
    assert isinstance(judge, StepJudge)
    assert judge.mode == "generate"
    with pytest.raises(ValueError, match="needs a Generator"):
        PairwiseStepJudge(fair_callable, mode="logprob")
    with pytest.raises(ValueError, match="unknown judge mode"):
        PairwiseStepJudge(ScriptedGenerator(), mode="votes")


def test_fair_judge_both_orders_consistent():
    judge = PairwiseStepJudge(fair_callable)
    verdicts = judge.compare([cmp("q=3 add", "q=1 guess"), cmp("q=0 guess", "q=5 add")])
    assert [v.verdict for v in verdicts] == [0, 1]
    assert all(v.extra["consistent"] is True for v in verdicts)
    assert [v.extra["p_a"] for v in verdicts] == [1.0, 0.0]
    assert all(v.probability is None for v in verdicts)  # votes, not a probability
    assert judge.stats.inconsistent == 0 and judge.stats.failures == 0
    assert judge.stats.judgments == 4  # both orders
    assert judge.stats.consistency == 1.0
    # the raw output keeps both orders' texts
    assert verdicts[0].raw.count("[[") == 2


def test_position_biased_judge_is_inconsistent_and_ties():
    judge = PairwiseStepJudge(always_a)
    verdicts = judge.compare([cmp("q=3", "q=1"), cmp("q=1", "q=3")])
    # "A" in both orders means step_a once and step_b once: the orders cancel
    assert [v.verdict for v in verdicts] == [-1, -1]
    assert all(v.extra["consistent"] is False and v.extra.get("tie") for v in verdicts)
    assert judge.stats.inconsistent == 2 and judge.stats.ties == 2 and judge.stats.failures == 0
    assert judge.stats.consistency == 0.0


def test_without_debias_one_order_and_position_bias_shows():
    judge = PairwiseStepJudge(always_a, debias=False)
    verdicts = judge.compare([cmp("q=3", "q=1"), cmp("q=1", "q=3")])
    assert [v.verdict for v in verdicts] == [0, 0]
    assert all(v.extra["consistent"] is None for v in verdicts)
    assert judge.stats.judgments == 2
    assert judge.stats.consistency is None


def test_unparsable_outputs_fail_without_crashing_and_are_counted():
    outputs = iter(["no idea", "[[B]]", "garbage", "[[A]]", "", "still nothing"])

    def flaky(prompts):
        return [next(outputs) for _ in prompts]

    judge = PairwiseStepJudge(flaky)
    # order: the three original orders first, then the three swapped ones (one call)
    v = judge.compare([cmp("x", "y"), cmp("u", "w"), cmp("r", "s")])
    # pair 0: original unparsable, swapped says A (= step_b first shown) -> step_b better, one order only
    assert v[0].verdict == 1 and v[0].extra["consistent"] is None
    # pair 1: original B, swapped unparsable -> step_b
    assert v[1].verdict == 1
    # pair 2: both unparsable -> failure
    assert v[2].verdict == -1 and v[2].extra["p_a"] is None and not v[2].extra.get("tie")
    assert judge.stats.unparsable == 4
    assert judge.stats.failures == 1
    assert judge.stats.both_orders == 0


def test_rows_without_a_verdict_are_told_apart_ties_from_failures():
    """judge_eval's summary: a position-bound judge (same letter in both orders) ties, an unreadable
    one fails; both count as wrong, and the summary says which it was."""
    from prm_selfreward.judges.base import missing_verdicts
    from prm_selfreward.stages import judge_accuracy

    outputs = iter(["[[A]]", "garbage", "[[A]]", "[[A]]", "garbage", "[[B]]"])
    judge = PairwiseStepJudge(lambda prompts: [next(outputs) for _ in prompts])
    verdicts = judge.compare([cmp("q=3", "q=1"), cmp("q=4", "q=5"), cmp("q=2", "q=0")])
    # pair 0: A both orders (tie); pair 1: unreadable both orders (failure); pair 2: A, then B swapped.
    rows = [{"predicted": v.verdict, "p_a": v.extra["p_a"], "consistent": v.extra["consistent"], "verdict": 0}
            for v in verdicts]
    assert [r["predicted"] for r in rows] == [-1, -1, 0]
    assert missing_verdicts(rows) == {"failures": 1, "ties": 1}
    summary = judge_accuracy(rows)
    assert (summary["correct"], summary["failures"], summary["ties"], summary["consistency"]) == (1, 1, 1, 0.5)


def test_callable_returning_wrong_count_is_an_error():
    judge = PairwiseStepJudge(lambda prompts: ["[[A]]"])
    with pytest.raises(ValueError, match="returned 1 outputs"):
        judge.compare([cmp("a", "b"), cmp("c", "d")])


def test_all_comparisons_in_one_call_or_batch_size_chunks():
    calls = []

    def counting(prompts):
        calls.append(len(prompts))
        return fair_callable(prompts)

    comparisons = [cmp(f"q={i}", f"q={i + 1}") for i in range(5)]
    PairwiseStepJudge(counting).compare(comparisons)
    assert calls == [10]
    calls.clear()
    judge = PairwiseStepJudge(counting, batch_size=4)
    assert [v.verdict for v in judge.compare(comparisons)] == [1] * 5
    assert calls == [4, 4, 2]
    assert judge.stats.model_calls == 3


def test_identical_prompts_are_judged_once():
    """The step search sends both orders itself; with debias on that must not double the work."""
    calls = []

    def counting(prompts):
        calls.append(list(prompts))
        return fair_callable(prompts)

    judge = PairwiseStepJudge(counting)
    verdicts = judge.compare([cmp("q=2", "q=1"), cmp("q=1", "q=2")])
    assert len(calls[0]) == 2
    assert [v.verdict for v in verdicts] == [0, 1]
    # comparing a step with itself ties
    assert judge.compare([cmp("q=1", "q=1")])[0].verdict == -1


def test_win_counting_over_ordered_pairs_matches_the_quality_order():
    """The paper's search scores candidates by wins over all ordered pairs; a fair judge ranks them."""
    steps = ["q=2 b", "q=4 d", "q=1 a", "q=3 c"]
    judge = PairwiseStepJudge(fair_callable)
    pairs = [(i, j) for i in range(4) for j in range(4) if i != j]
    verdicts = judge.compare([cmp(steps[i], steps[j]) for i, j in pairs])
    wins = [0] * 4
    for (i, j), v in zip(pairs, verdicts, strict=True):
        if v.verdict == 0:
            wins[i] += 1
        elif v.verdict == 1:
            wins[j] += 1
    assert wins == [2, 6, 0, 4]
    assert judge.stats.judgments == 12  # 12 distinct ordered prompts, not 24


# ---------------------------------------------------------------------------------------------------
# Generate mode over a Generator


def test_generate_mode_over_a_generator_stops_after_the_verdict():
    seen = []

    def gen(prompt, n, params):
        seen.append(params)
        a, b = shown_steps(prompt)
        tag = "[[A]]" if quality(a) > quality(b) else "[[B]]"
        return [f"Compared the two. {tag} and then rambling [[A]]"]

    g = ScriptedGenerator(generate_fn=gen, template="<user>{message}<model>")
    judge = PairwiseStepJudge(g, mode="generate", max_new_tokens=64)
    verdicts = judge.compare([cmp("q=1", "q=2"), cmp("q=5", "q=2")])
    assert [v.verdict for v in verdicts] == [1, 0]
    assert len(g.generate_calls) == 1 and len(g.generate_calls[0][0]) == 4
    assert g.generate_calls[0][0][0].startswith("<user>") and g.generate_calls[0][0][0].endswith("<model>")
    assert seen[0].stop == ["]]"] and seen[0].greedy and seen[0].max_new_tokens == 64
    assert "rambling" not in verdicts[0].raw


# ---------------------------------------------------------------------------------------------------
# Logprob mode over a scripted Generator


def scripted_logprob_generator(bias: float = 0.0) -> ScriptedGenerator:
    """log P(A) - log P(B) after '[[' = quality(first) - quality(second) + bias (bias: position)."""

    def score(prompt, continuation):
        assert prompt.endswith(VERDICT_OPENING)
        a, b = shown_steps(prompt)
        diff = quality(a) - quality(b) + bias
        lp_a = -math.log1p(math.exp(-diff))
        lp_b = -math.log1p(math.exp(diff))
        return [{"A": lp_a, "B": lp_b}[continuation]]

    return ScriptedGenerator(score_fn=score)


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_logprob_mode_one_score_call_two_continuations_per_order():
    g = scripted_logprob_generator()
    judge = PairwiseStepJudge(g)
    verdicts = judge.compare([cmp("q=1", "q=0"), cmp("q=0", "q=2"), cmp("q=1", "q=1.5")])
    assert len(g.score_calls) == 1
    prompts, conts = g.score_calls[0]
    assert len(prompts) == 12 and conts == ["A", "B"] * 6
    assert [v.verdict for v in verdicts] == [0, 1, 1]
    assert verdicts[0].probability == pytest.approx(sigmoid(1.0))
    assert verdicts[1].extra["p_a"] == pytest.approx(sigmoid(-2.0))
    assert all(v.extra["consistent"] for v in verdicts)


def test_logprob_debias_averages_the_two_orders():
    bias = 1.5  # the model likes whatever is shown first
    judge = PairwiseStepJudge(scripted_logprob_generator(bias))
    (v,) = judge.compare([cmp("q=1", "q=0")])
    p_orig = sigmoid(1 + bias)
    p_swapped = 1 - sigmoid(-1 + bias)  # step_a shown second
    assert v.extra["orders"] == pytest.approx([p_orig, p_swapped])
    assert v.extra["p_a"] == pytest.approx((p_orig + p_swapped) / 2)
    assert v.verdict == 0
    # the bias outweighs the quality gap: each order prefers the step shown first -> inconsistent
    assert v.extra["consistent"] is False
    assert judge.stats.inconsistent == 1
    # without debias the same model answers from one order only
    (single,) = PairwiseStepJudge(scripted_logprob_generator(bias), debias=False).compare([cmp("q=0", "q=1")])
    assert single.verdict == 0 and single.extra["p_a"] == pytest.approx(sigmoid(-1 + bias))


def test_logprob_probabilities_are_softmax_over_a_and_b_only():
    # a model that spreads mass over other tokens: log P(A) = -3, log P(B) = -4
    g = ScriptedGenerator(score_fn=lambda p, c: [{"A": -3.0, "B": -4.0}[c]])
    (v,) = PairwiseStepJudge(g, debias=False).compare([cmp("a", "b")])
    assert v.probability == pytest.approx(math.exp(-3) / (math.exp(-3) + math.exp(-4)))


# ---------------------------------------------------------------------------------------------------
# Likelihood mode over a scripted Generator


def test_likelihood_mode_prefers_the_higher_mean_token_logprob():
    def score(prompt, continuation):
        # two "tokens" per step; mean log-prob = -1 / (1 + quality)
        return [-1.0 / (1 + quality(continuation))] * 2

    g = ScriptedGenerator(score_fn=score, template="<u>{message}<m>")
    judge = PairwiseStepJudge(g, mode="likelihood")
    verdicts = judge.compare(
        [
            cmp("Step 2: q=3", "q=1", previous=["Add 2 and 3."]),
            cmp("q=1", "q=3"),
            cmp("q=2", ""),
            cmp("q=3", "q=2"),
        ]
    )
    assert [v.verdict for v in verdicts] == [0, 1, 0, 0]
    assert verdicts[0].extra["p_a"] == pytest.approx(sigmoid(-1 / 4 + 1 / 2))
    assert len(g.score_calls) == 1
    prompts, conts = g.score_calls[0]
    # the solving prompt through the template, previous steps, then the next marker; steps as bodies
    assert (
        prompts[0].startswith("<u>Let's think step by step")
        and "<m>Step 1: Add 2 and 3.\nStep 2:" in prompts[0]
    )
    # the marker's space goes with the step, as the search generates it
    assert prompts[0].endswith("Step 2:")
    assert conts[0] == " q=3"
    # each distinct (prefix, step) scored once: q=3 and q=1 with the previous step, q=1, q=3 and q=2
    # without (q=3 and q=2 come back in the last comparison); the empty step is not scored
    assert len(prompts) == 5
    assert judge.stats.judgments == 5 and judge.stats.ties == 0


def test_likelihood_tie_is_minus_one_not_failure():
    g = ScriptedGenerator(score_fn=lambda p, c: [-1.0])
    (v,) = PairwiseStepJudge(g, mode="likelihood").compare([cmp("a", "b")])
    assert v.verdict == -1 and v.extra["tie"] and v.extra["p_a"] == 0.5
    assert v.extra["consistent"] is None


# ---------------------------------------------------------------------------------------------------
# TRL-style pairwise judge


def test_trl_judge_signature_returns_indices():
    judge = PairwiseStepJudge(fair_callable)
    result = judge.judge(["Q1", "Q2", "Q3"], [["q=1", "q=2"], ["q=9", "q=2"], ["x", "x"]])
    assert result == [1, 0, -1]


def test_trl_judge_shuffle_order_maps_answers_back():
    shown_first = []

    def record(prompts):
        shown_first.extend(quality(shown_steps(p)[0]) for p in prompts)
        return fair_callable(prompts)

    judge = PairwiseStepJudge(record, debias=False, seed=1)
    pairs = [[f"q=1 bad {i}", f"q=2 good {i}"] for i in range(40)]
    assert judge.judge(["Q"] * 40, pairs, shuffle_order=True) == [1] * 40
    # the good step was shown first in some prompts and second in others
    assert 0 < shown_first.count(2.0) < 40
    shown_first.clear()
    assert judge.judge(["Q"] * 5, pairs[:5], shuffle_order=False) == [1] * 5
    assert shown_first == [1.0] * 5


def test_trl_judge_rejects_non_pairs():
    with pytest.raises(ValueError, match="exactly two"):
        PairwiseStepJudge(fair_callable).judge(["Q"], [["a", "b", "c"]])


# ---------------------------------------------------------------------------------------------------
# GRPO reward function


def grpo_kwargs(**columns):
    """What TRL's GRPOTrainer passes besides prompts/completions (see trainer/grpo_trainer.py)."""
    logged: dict[str, list[float]] = {}
    kwargs = {
        "completion_ids": [[1, 2]] * len(next(iter(columns.values()))) if columns else [],
        "trainer_state": object(),
        "log_extra": lambda column, values: None,
        "log_metric": lambda name, value: logged.setdefault(name, []).append(value),
        **columns,
    }
    return kwargs, logged


def test_reward_is_the_win_rate_within_each_prompt_group():
    reward = as_reward_func(PairwiseStepJudge(fair_callable))
    prompts = ["P1"] * 4 + ["P2"] * 2 + ["P3"]
    completions = ["q=1", "q=4", "q=2", "q=3", "q=7", "q=5", "q=1"]
    kwargs, logged = grpo_kwargs(question=["Q1"] * 4 + ["Q2"] * 2 + ["Q3"])
    rewards = reward(prompts=prompts, completions=completions, **kwargs)
    assert rewards[:4] == pytest.approx([0.0, 1.0, 1 / 3, 2 / 3])
    assert rewards[4:6] == [1.0, 0.0]
    assert rewards[6] is None  # alone in its group
    assert logged == {"step_judge/failure_rate": [0.0], "step_judge/consistency": [1.0]}
    assert reward.__name__ == "step_judge"


def test_reward_uses_probabilities_in_logprob_mode_and_reads_previous_steps():
    g = scripted_logprob_generator()
    reward = as_reward_func(PairwiseStepJudge(g))
    kwargs, _ = grpo_kwargs(previous_steps=[["Step 1: x"], ["Step 1: x"]])
    rewards = reward(["P", "P"], ["q=1", "q=0"], **kwargs)
    assert rewards == pytest.approx([sigmoid(1), sigmoid(-1)])
    assert "Step 1: x" in g.score_calls[0][0][0]
    assert "[Question]\nP\n" in g.score_calls[0][0][0]  # no question column: the prompt is the question


def test_reward_against_a_reference_and_conversational_inputs():
    reward = as_reward_func(PairwiseStepJudge(fair_callable), reference_column="reference")
    prompts = [[{"role": "user", "content": "What is 2 + 3?"}]] * 2
    completions = [[{"role": "assistant", "content": "q=5"}], [{"role": "assistant", "content": "q=1"}]]
    kwargs, _ = grpo_kwargs(reference=["q=3", "q=3"])
    assert reward(prompts, completions, **kwargs) == [1.0, 0.0]
    with pytest.raises(ValueError, match="reference"):
        reward(prompts, completions)


def test_reward_failures_are_none_and_logged():
    reward = as_reward_func(PairwiseStepJudge(lambda prompts: ["?"] * len(prompts)))
    kwargs, logged = grpo_kwargs(question=["Q", "Q"])
    assert reward(["P", "P"], ["a", "b"], **kwargs) == [None, None]
    assert logged["step_judge/failure_rate"] == [1.0]


def test_judge_stats_as_dict():
    stats = JudgeStats(comparisons=3)
    assert stats.as_dict()["comparisons"] == 3 and stats.consistency is None


def test_reward_groups_by_consecutive_blocks_with_group_size():
    # the same prompt drawn twice into one batch: by prompt it is one group of 4, by blocks two of 2
    prompts, completions = ["P"] * 4, ["q=1", "q=2", "q=3", "q=4"]
    merged = as_reward_func(PairwiseStepJudge(fair_callable))(prompts, completions)
    blocks = as_reward_func(PairwiseStepJudge(fair_callable), group_size=2)(prompts, completions)
    assert merged == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert blocks == [0.0, 1.0, 0.0, 1.0]
    with pytest.raises(ValueError):
        as_reward_func(PairwiseStepJudge(fair_callable), group_size=0)


def test_logprob_mode_uses_next_token_logprobs_when_the_backend_has_it():
    class OneRowBackend(ScriptedGenerator):
        def __init__(self):
            super().__init__(score_fn=lambda p, c: pytest.fail("score must not be called"))
            self.next_calls = []

        def next_token_logprobs(self, prompts, tokens):
            self.next_calls.append((list(prompts), list(tokens)))
            out = []
            for p in prompts:
                a, b = shown_steps(p)
                out.append([-1.0, -1.0 - (quality(a) - quality(b))])
            return out

    g = OneRowBackend()
    verdicts = PairwiseStepJudge(g).compare([cmp("q=2", "q=1"), cmp("q=1", "q=3")])
    assert len(g.next_calls) == 1
    prompts, tokens = g.next_calls[0]
    assert tokens == ["A", "B"] and len(prompts) == 4 and all(p.endswith(VERDICT_OPENING) for p in prompts)
    assert verdicts[0].extra["p_a"] == pytest.approx(sigmoid(1))
    assert verdicts[1].extra["p_a"] == pytest.approx(sigmoid(-2))


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=300)
    | st.lists(st.sampled_from(["[[", "]]", "[", "]", "A", "b", " ", "verdict:", "\n"])).map("".join)
)
def test_parse_verdict_never_raises(text):
    assert parse_verdict(text) in (-1, 0, 1)
