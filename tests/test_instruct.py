"""Instruction-level self-rewarding: prompt creation and its filters, candidates, pairs, one iteration."""

from __future__ import annotations

import re

import pytest

from prm_selfreward.config import from_dict, to_dict
from prm_selfreward.instruct import (
    FILTER_REASONS,
    InstructIterationConfig,
    SelfInstructConfig,
    build_preference_pairs,
    dpo_records,
    few_shot_message,
    generate_prompts,
    rouge_l,
    rouge_tokens,
    run_instruct_iteration,
    sample_responses,
)
from prm_selfreward.judges.pointwise import ScoreResult
from prm_selfreward.models import Completion, ScriptedGenerator
from prm_selfreward.prompts import SOLVE_INSTRUCTION

SEEDS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did she sell altogether?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
    "Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs. How much more does she need?",
    "Julie is reading a 120-page book. Yesterday, she was able to read 12 pages and today twice as many. How many pages are left?",
    "James writes a 3-page letter to 2 different friends twice a week. How many pages does he write in a year?",
    "Mark has a garden with flowers. He planted plants of three different colors. Ten of them are yellow. How many flowers are there?",
    "Albert is wondering how much pizza he can eat in one day. He buys 2 large pizzas and 2 small pizzas. How many slices does he eat?",
    "Ken created a care package to send to his brother, who was away at boarding school. What was the final weight of the box?",
    "Alexis is applying for a new job and bought a new set of business clothes to wear to the interview. How much did she pay for the shoes?",
    "Tina makes $18.00 an hour. If she works more than 8 hours per shift, she is eligible for overtime. How much money does she make?",
]
NEW = "A farmer keeps 7 goats in each of 5 pens and later buys 9 more goats at a market. How many goats does the farmer own now?"
OTHER = "A train travels 60 kilometres per hour for 3 hours and then 40 kilometres per hour for 2 hours. How far does it travel?"


class QueueGenerator(ScriptedGenerator):
    """Hands out scripted candidate texts in order; texts ending in '<LEN>' finish with reason 'length'."""

    def __init__(self, texts: list[str]):
        self.queue = list(texts)
        super().__init__(self._next)

    def _next(self, prompt, n, params):
        out = [self.queue.pop(0) if self.queue else "" for _ in range(n)]
        return out

    def generate(self, prompts, n=1, params=None):
        rows = super().generate(prompts, n, params)
        for row in rows:
            for i, c in enumerate(row):
                if c.text.endswith("<LEN>"):
                    row[i] = Completion(
                        c.text.removesuffix("<LEN>"), c.prompt_tokens, c.completion_tokens, "length"
                    )
        return rows


def _config(**kw) -> SelfInstructConfig:
    base = dict(samples_per_prompt=2, max_prompts_per_call=1, max_rounds=1, min_words=4, max_words=60)
    base.update(kw)
    return SelfInstructConfig(**base)


@pytest.mark.parametrize(
    "candidate,reason",
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("Problem 11:", "empty"),
        (OTHER + "<LEN>", "truncated"),
        ("Add two numbers.", "too_short"),
        (" ".join(["word"] * 61), "too_long"),
        (SEEDS[1], "copies_seed"),
        ("  " + SEEDS[1].upper().replace(" ", "   "), "copies_seed"),
        (SEEDS[2] + " Answer in dollars and show the work.", "copies_seed"),
        (SEEDS[3].replace("120-page", "300-page"), "near_duplicate_seed"),
        (SEEDS[4].replace("James", "Maria").replace("he", "she"), "near_duplicate_seed"),
        (NEW, "duplicate"),
        (NEW.lower() + "  ", "duplicate"),
        (NEW.replace("goats", "sheep"), "near_duplicate"),
        (OTHER, None),
        ("Problem 11: " + OTHER, None),
    ],
)
def test_each_filter(candidate: str, reason: str | None) -> None:
    gen = QueueGenerator([NEW, candidate])
    kept, stats = generate_prompts(gen, SEEDS, n_new=5, config=_config())
    assert stats.generated == 2
    if reason is None:
        assert kept == [NEW, OTHER]
        assert sum(stats.rejected.values()) == 0
    else:
        assert kept == [NEW]
        assert stats.rejected == {reason: 1}
    assert reason is None or reason in FILTER_REASONS


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ("the cat sat on the mat", "the cat lay on a mat", 2 * 4 / 12),  # LCS: the cat on mat
        ("one two three", "one two three", 1.0),
        ("one two three", "four five six", 0.0),
        ("A B C D", "b d", 2 * 2 / 6),
        ("x = 5, y = 10!", "X 5 Y 10", 1.0),  # punctuation is not a token; case folded
    ],
)
def test_rouge_l_f1(a: str, b: str, expected: float) -> None:
    assert rouge_l(rouge_tokens(a), rouge_tokens(b)) == pytest.approx(expected)


def test_few_shot_prompts_mix_seeds_and_generated() -> None:
    fresh = [
        "Tom has 3 red boxes holding 5 marbles each. How many marbles does Tom hold?",
        "A bakery bakes 40 loaves every morning and sells 31. How many loaves remain unsold each day?",
        "Sara swims 12 laps on Monday and twice that on Friday. How far did she swim in laps?",
        "Each bus carries 52 pupils and the school has 9 buses. How many pupils ride in total?",
    ]
    # round 1: two few-shot prompts x 2 samples, two of them rejected; round 2 needs the other two
    gen = QueueGenerator([fresh[0], fresh[1], SEEDS[0], "", fresh[2], fresh[3]])
    config = _config(max_rounds=2, samples_per_prompt=2, max_prompts_per_call=4, oversample=1.0)
    kept, stats = generate_prompts(gen, SEEDS, n_new=4, config=config)
    assert kept == fresh
    assert stats.calls == len(gen.generate_calls) == 2
    (round1, n1), (round2, n2) = gen.generate_calls
    assert n1 == n2 == 2
    assert len(round1) == 2 and len(round2) == 1  # 4 needed / 2 per prompt, then 2 needed / 2
    pattern = re.compile(r"^Problem (\d+): (.*)$", re.MULTILINE)
    for message in round1:
        examples = [text for _, text in pattern.findall(message)]
        assert len(examples) == 8 and all(e in SEEDS for e in examples)  # nothing generated yet: 8 seeds
        assert message.rstrip().endswith("Problem 9:")
    examples = [text for _, text in pattern.findall(round2[0])]
    assert len(examples) == 8
    assert sum(e in SEEDS for e in examples) == 6 and sum(e in fresh[:2] for e in examples) == 2


def test_sampling_params_follow_the_paper_by_default() -> None:
    seen = []

    def generate(prompt, n, params):
        seen.append((n, params))
        return [OTHER] * n

    generate_prompts(ScriptedGenerator(generate), SEEDS, n_new=1)
    n, params = seen[0]
    assert params.temperature == 0.6 and params.top_p == 0.9
    assert n == SelfInstructConfig().samples_per_prompt
    assert "\n\n" in params.stop and "\nProblem " in params.stop


def test_stops_at_target_and_accounts_for_every_sample() -> None:
    later = [
        "Each bus carries 52 pupils and the school has 9 buses. How many pupils ride in total?",
        "Sara swims 12 laps on Monday and twice that on Friday. How many laps did she swim?",
        "A bakery bakes 40 loaves every morning and sells 31. How many loaves remain unsold?",
    ]
    texts = [OTHER, NEW, SEEDS[0], OTHER, "short one", *later]
    gen = QueueGenerator(texts)
    kept, stats = generate_prompts(gen, SEEDS, n_new=2, config=_config(samples_per_prompt=8, max_rounds=3))
    assert kept == [OTHER, NEW]
    assert stats.calls == 1
    assert stats.generated == 8
    assert stats.kept == 2
    assert stats.generated == stats.kept + sum(stats.rejected.values()) + stats.unused
    assert stats.rejected == {"copies_seed": 1, "duplicate": 1, "too_short": 1}
    assert stats.unused == 3  # passed the filters after the target was reached
    assert set(stats.to_dict()["rejected"]) == set(FILTER_REASONS)


def test_gives_up_after_max_rounds() -> None:
    gen = ScriptedGenerator(lambda p, n, params: [SEEDS[0]] * n)
    kept, stats = generate_prompts(gen, SEEDS, n_new=3, config=_config(max_rounds=3))
    assert kept == []
    assert stats.calls == 3
    assert stats.rejected == {"copies_seed": stats.generated}


def test_deterministic_given_seed() -> None:
    def run(seed):
        gen = ScriptedGenerator(lambda p, n, params: [f"{OTHER} Variant {len(p) % 97}."] * n)
        generate_prompts(gen, SEEDS, n_new=1, config=SelfInstructConfig(seed=seed, samples_per_prompt=1))
        return gen.generate_calls

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_no_seeds_is_an_error() -> None:
    with pytest.raises(ValueError):
        generate_prompts(ScriptedGenerator(lambda p, n, params: [""] * n), ["  "], n_new=1)


def test_few_shot_message_layout() -> None:
    config = SelfInstructConfig(instruction="Write a new task.", label="Task")
    message = few_shot_message(["first\n task", "second"], config)
    assert message == "Write a new task.\n\nTask 1: first task\n\nTask 2: second\n\nTask 3:"


# ---------------------------------------------------------------------------------------------------
# Candidates


def test_sample_responses_math_uses_step_prompt_in_one_call() -> None:
    seen = []

    def generate(prompt, n, params):
        seen.append(params)
        return [f"Step 1: answer {k}\nProblem: next one" for k in range(n)]

    gen = ScriptedGenerator(generate, template="<u>{message}</u>")
    out = sample_responses(gen, ["What is 2+3?", "What is 4*4?"], n=4)
    assert len(gen.generate_calls) == 1
    prompts, n = gen.generate_calls[0]
    assert n == 4
    assert all(p.startswith("<u>" + SOLVE_INSTRUCTION) for p in prompts)
    assert "Problem: What is 4*4?\nSolution:" in prompts[1]
    assert out == [[f"Step 1: answer {k}" for k in range(4)]] * 2  # cut at the stop string
    assert seen[0].temperature == 0.7 and seen[0].top_p == 0.9


def test_sample_responses_general_task() -> None:
    gen = ScriptedGenerator(lambda p, n, params: [" reply "] * n, template="<u>{message}</u>")
    out = sample_responses(gen, ["Write a haiku."], n=2, task="general")
    assert gen.generate_calls[0][0] == ["<u>Write a haiku.</u>"]
    assert out == [["reply", "reply"]]
    with pytest.raises(ValueError):
        sample_responses(gen, ["x"], task="poetry")


# ---------------------------------------------------------------------------------------------------
# Pairs


@pytest.mark.parametrize(
    "scores,expected,counter",
    [
        ([4.0, 2.0, 3.0, 1.0], (0, 3), None),
        ([1.0, 5.0, 3.0, 2.0], (1, 0), None),
        ([3.0, 3.0, 3.0, 3.0], None, "ties"),
        ([13 / 3, 13 / 3], None, "ties"),
        ([None, None, 4.0, None], None, "too_few_scores"),
        ([None, None, None, None], None, "too_few_scores"),
        ([None, 2.0, None, 5.0], (3, 1), None),
        ([5.0, 5.0, 1.0, 1.0], (0, 2), None),  # first of equal best / worst
        ([2.5, 4.0 + 1 / 3, 2.5, 4.0], (1, 0), None),
    ],
)
def test_pairs_highest_vs_lowest(scores, expected, counter) -> None:
    responses = [f"response {j}" for j in range(len(scores))]
    pairs, stats = build_preference_pairs(["prompt"], [responses], [scores])
    if expected is None:
        assert pairs == []
        assert getattr(stats, counter) == 1
        return
    (pair,) = pairs
    best, worst = expected
    assert (pair.chosen, pair.rejected) == (responses[best], responses[worst])
    assert (pair.chosen_score, pair.rejected_score) == (scores[best], scores[worst])
    assert pair.prompt == "prompt"
    assert stats.pairs == 1 and stats.ties == stats.too_few_scores == 0


def test_pairs_with_score_results_and_stats() -> None:
    def r(*samples):
        return ScoreResult.from_samples(list(samples), [""] * len(samples))

    prompts = ["p0", "p1", "p2", "p3"]
    responses = [["a", "b"], ["c", "d"], ["same", "same "], ["e", "f"]]
    scores = [[r(5.0, 4.0), r(2.0, None)], [r(3.0), r(3.0)], [r(5.0), r(1.0)], [r(None), r(4.0)]]
    pairs, stats = build_preference_pairs(
        prompts, responses, scores, prompt_ids=["i0", "i1", "i2", "i3"], questions=["q0", "q1", "q2", "q3"]
    )
    assert [(p.prompt, p.chosen, p.rejected, p.prompt_id) for p in pairs] == [("p0", "a", "b", "i0")]
    assert pairs[0].chosen_score == 4.5 and pairs[0].rejected_score == 2.0
    assert pairs[0].metadata == {"scores": [4.5, 2.0], "question": "q0"}
    assert stats.to_dict() == {
        "prompts": 4,
        "pairs": 1,
        "ties": 1,
        "too_few_scores": 1,
        "identical_responses": 1,
        "mean_chosen": 4.5,
        "mean_rejected": 2.0,
    }


def test_pairs_reject_misaligned_input() -> None:
    with pytest.raises(ValueError):
        build_preference_pairs(["p"], [["a", "b"]], [[1.0]])
    with pytest.raises(ValueError):
        build_preference_pairs(["p", "q"], [["a", "b"]], [[1.0, 2.0]])


def test_dpo_records_keep_eos() -> None:
    pairs, _ = build_preference_pairs(["p"], [["good", "bad"]], [[5.0, 1.0]])
    assert dpo_records(pairs) == [
        {
            "prompt": "p",
            "chosen": "good",
            "rejected": "bad",
            "chosen_score": 5.0,
            "rejected_score": 1.0,
            "is_final_step": True,
        }
    ]


# ---------------------------------------------------------------------------------------------------
# One iteration, scripted


def _self_rewarding_model(response_scores: dict[str, str]) -> ScriptedGenerator:
    """Writes new problems, answers them and judges its answers, by the kind of prompt it gets."""
    new_problems = iter(
        [OTHER, NEW, "What is the sum of the first ten positive odd integers, written out in full?"]
    )

    def generate(prompt, n, params):
        if prompt.startswith("Below are some math problems"):
            return [next(new_problems, "") for _ in range(n)]
        if prompt.startswith(SOLVE_INSTRUCTION):
            return [f"Step 1: candidate {k}" for k in range(n)]
        if prompt.startswith("Review the user's question"):
            response = re.search(r"<response>(.*?)</response>", prompt, re.S).group(1)
            question = re.search(r"User: (.*?)\n<response>", prompt, re.S).group(1)
            key = f"{question[:5]}|{response}"
            return [response_scores.get(key, "Score: 3")] * n
        raise AssertionError(prompt[:80])

    return ScriptedGenerator(generate)


def test_run_instruct_iteration_scripted() -> None:
    scores = {
        # OTHER: a clear best and worst
        "A tra|Step 1: candidate 2": "Score: 5",
        "A tra|Step 1: candidate 0": "Score: 1",
        # NEW: one unparsable judge output, a clear best, the rest 3
        "A far|Step 1: candidate 1": "no score here",
        "A far|Step 1: candidate 3": "**Score:** 4",
    }
    # the third problem gets "Score: 3" for everything: a tie
    gen = _self_rewarding_model(scores)
    config = from_dict(
        InstructIterationConfig,
        {
            "n_prompts": 3,
            "n_responses": 4,
            "self_instruct": {"samples_per_prompt": 3, "max_prompts_per_call": 1},
            "judge": {"samples": 2},
        },
    )
    pairs, stats = run_instruct_iteration(gen, SEEDS, config)
    assert stats.prompts == [
        OTHER,
        NEW,
        "What is the sum of the first ten positive odd integers, written out in full?",
    ]
    assert stats.prompts_kept == 3 and stats.prompts_generated == 3
    assert stats.responses == 12 and stats.judge_samples == 24
    assert stats.unparsable_scores == 2 and stats.unscored_responses == 1
    assert stats.pairs == 2 and stats.ties == 1 and stats.too_few_scores == 0
    # means: [1, 3, 5, 3] + [3, None, 3, 4] + [3, 3, 3, 3]
    assert stats.mean_score == pytest.approx(34 / 11)
    assert stats.model_calls == 3  # prompts, responses, judge: one batched call each
    assert [(p.chosen, p.rejected, p.chosen_score, p.rejected_score) for p in pairs] == [
        ("Step 1: candidate 2", "Step 1: candidate 0", 5.0, 1.0),
        ("Step 1: candidate 3", "Step 1: candidate 0", 4.0, 3.0),
    ]
    assert pairs[0].prompt.startswith(SOLVE_INSTRUCTION) and pairs[0].prompt.endswith(
        f"Problem: {OTHER}\nSolution:\n"
    )
    assert pairs[0].metadata["question"] == OTHER
    assert len(stats.judgments) == 12 and stats.judgments[5]["samples"] == [None, None]
    summary = stats.summary()
    assert "prompts" not in summary and "judgments" not in summary
    assert to_dict(stats) == summary
    assert summary["prompt_filters"]["kept"] == 3


def test_a_fixed_model_writes_the_prompts_and_the_trained_model_none() -> None:
    """The paper's main setting: prompts from a fixed author; the model being trained answers and judges."""
    author = _self_rewarding_model({})
    config = from_dict(InstructIterationConfig, {"n_prompts": 2, "n_responses": 2, "judge": {"samples": 1},
                                                 "self_instruct": {"samples_per_prompt": 2, "max_prompts_per_call": 1},
                                                 "prompt_model": "a-fixed-model"})
    written = generate_prompts(author, SEEDS, config.n_prompts, config.self_instruct)
    trained = _self_rewarding_model({"A tra|Step 1: candidate 1": "Score: 5"})
    pairs, stats = run_instruct_iteration(trained, SEEDS, config, new_prompts=written)
    assert stats.prompts == [OTHER, NEW] == written[0]
    asked = [p for prompts, _ in trained.generate_calls for p in prompts]
    assert not any(p.startswith("Below are some math problems") for p in asked)
    assert stats.model_calls == 2  # responses and judge only
    assert [p.metadata["question"] for p in pairs] == [OTHER]


def test_instruct_dpo_has_its_own_settings(tmp_path, monkeypatch) -> None:
    """Task instruct trains with Yuan et al.'s DPO (lr 1e-6, beta 0.1), not the math task's step-DPO block."""
    import prm_selfreward.train as train
    from prm_selfreward.run_config import load_run_config
    from prm_selfreward.stages.context import RunContext
    from prm_selfreward.stages.run import train_stage

    seen = []
    monkeypatch.setattr(train, "train_step_dpo", lambda model, rows, out, config: seen.append(config) or
                        type("R", (), {"to_dict": lambda self: {}})())
    for task, lr in (("instruct", 1e-6), ("math", 5e-7)):
        run = RunContext(tmp_path / task, load_run_config(None, {"task": task}))
        train_stage(run, "dpo", "embedded", [{"prompt": "p", "chosen": "a", "rejected": "b"}], 2)
        assert (seen[-1].learning_rate, seen[-1].beta) == (lr, 0.1)


def test_iteration_config_rejects_unknown_keys() -> None:
    from prm_selfreward.config import ConfigError

    with pytest.raises(ConfigError, match="judge.sample"):
        from_dict(InstructIterationConfig, {"judge": {"sample": 3}})


def test_truncated_prompts_can_be_kept() -> None:
    gen = QueueGenerator([OTHER + "<LEN>"])
    kept, stats = generate_prompts(
        gen, SEEDS, n_new=1, config=_config(samples_per_prompt=1, drop_truncated=False)
    )
    assert kept == [OTHER] and stats.rejected == {}


# ---------------------------------------------------------------------------------------------------
# One iteration on the tiny in-process model (random weights: its judge output is garbage)


def test_run_instruct_iteration_tiny_model(tiny_model_dir) -> None:
    from prm_selfreward.models.hf import HFGenerator

    generator = HFGenerator(str(tiny_model_dir), batch_size=16, seed=0)
    config = from_dict(
        InstructIterationConfig,
        {
            "n_prompts": 2,
            "n_responses": 2,
            "response_max_new_tokens": 12,
            "self_instruct": {
                "samples_per_prompt": 4,
                "max_rounds": 2,
                "max_new_tokens": 12,
                "min_words": 1,
                "drop_truncated": False,
            },
            "judge": {"samples": 2, "max_new_tokens": 12},
        },
    )
    pairs, stats = run_instruct_iteration(generator, SEEDS[:8], config)
    assert stats.prompts_generated == stats.prompt_filters["generated"] > 0
    assert 0 < stats.prompts_kept <= 2
    assert stats.responses == 2 * stats.prompts_kept
    assert stats.judge_samples == 2 * stats.responses
    assert stats.unparsable_scores > 0
    assert stats.unparsable_scores == sum(s is None for j in stats.judgments for s in j["samples"])
    assert (
        stats.pairs == len(pairs)
        and stats.pairs + stats.ties + stats.too_few_scores + stats.identical_responses == stats.prompts_kept
    )
    assert stats.model_calls >= 3 and stats.generated_tokens > 0
