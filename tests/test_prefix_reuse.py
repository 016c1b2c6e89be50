"""Shared-prefix reuse in HFGenerator: the planner as a table, and the shared path equal to the plain
path (``share_prefix=False``) for generate, score and next-token log-probs, with mixed prefix lengths,
padding, n samples and Gemma 3's sliding-window layers."""

from __future__ import annotations

import pytest
import torch

from prm_selfreward.models import GenerationParams, HFGenerator
from prm_selfreward.models.hf import plan_shared_prefixes

HEADER = "Let's think step by step and solve the following math problem. Problem: What is 2 + 3? "
PROMPTS = [
    HEADER + "Step 1: 2 + 3 = 5.",
    HEADER + "Step 1: Natalia sold 48/2 = 24 clips in May. Step 2:",
    HEADER + "Step 1:",
    "Which step is better? [[A]] [[B]] Score:",  # shares nothing with the others
    HEADER + "Step 1: 2 + 3 = 5. The final answer is",
    HEADER + "Step 1: 2 + 3 = 5.",  # a duplicate: shares its whole prompt
]
CONTINUATIONS = [" The answer is 5.", " 72", " 2 + 3", " [[A]]", " \\boxed{5}.", " Step 2:"]


pytestmark = pytest.mark.usefixtures("one_thread")




def pair(loaded, **kwargs) -> tuple[HFGenerator, HFGenerator]:
    model, tok = loaded
    return (HFGenerator(model, tok, share_prefix=True, min_shared_tokens=1, **kwargs),
            HFGenerator(model, tok, share_prefix=False, **kwargs))


# ------------------------------------------------------------------------------------------ planner


@pytest.mark.parametrize(
    "rows,limits,expected",
    [
        # identical rows: one prefix, each row keeps its last token
        ([[1, 2, 3, 4], [1, 2, 3, 4]], [3, 3], ([[1, 2, 3]], [0, 0])),
        # a common header, limited by the shorter row
        ([[1, 2, 3, 4, 5], [1, 2, 3, 9]], [4, 3], ([[1, 2, 3]], [0, 0])),
        # two families: each gets its own longer prefix rather than one short common one
        ([[7, 1, 2, 3, 4, 5], [7, 1, 2, 3, 4, 6], [7, 8, 9, 10, 11, 12], [7, 8, 9, 10, 11, 13]],
         [5, 5, 5, 5], ([[7, 8, 9, 10, 11], [7, 1, 2, 3, 4]], [1, 1, 0, 0])),
        # nothing shared: no plan
        ([[1, 2, 3], [4, 5, 6]], [2, 2], None),
        # a row that allows no prefix (a one-token prompt): no plan
        ([[1, 2, 3], [1]], [2, 0], None),
        # a lone row among a pair takes its whole allowance
        ([[1, 2, 3, 4], [1, 2, 3, 5], [9, 9, 9]], [3, 3, 2], ([[9, 9], [1, 2, 3]], [1, 1, 0])),
    ],
)
def test_plan_shared_prefixes(rows, limits, expected):
    assert plan_shared_prefixes(rows, limits) == expected


def test_plan_respects_min_saving():
    rows, limits = [[1, 2, 3, 4], [1, 2, 3, 5]], [3, 3]
    assert plan_shared_prefixes(rows, limits, min_saving=3) is not None  # saves 3 tokens
    assert plan_shared_prefixes(rows, limits, min_saving=4) is None


# ------------------------------------------------------------------------------- equal to plain path


@pytest.mark.parametrize("batch_size", [2, 4, 8])
def test_greedy_generation_identical(loaded, batch_size):
    shared, plain = pair(loaded, batch_size=batch_size)
    params = GenerationParams(max_new_tokens=10)
    a = shared.generate(PROMPTS, params=params)
    b = plain.generate(PROMPTS, params=params)
    assert [[c.text for c in r] for r in a] == [[c.text for c in r] for r in b]
    assert [r[0].completion_tokens for r in a] == [r[0].completion_tokens for r in b]
    assert [r[0].prompt_tokens for r in a] == [r[0].prompt_tokens for r in b]
    assert shared.reused_prefix_tokens > 0 and plain.reused_prefix_tokens == 0


@pytest.mark.parametrize("sample_mode", ["repeat", "num_return_sequences"])
def test_sampled_n_candidates_identical_under_a_seed(loaded, sample_mode):
    """The w candidates of one step: one prompt repeated, its prefix encoded once."""
    shared, plain = pair(loaded, batch_size=8, sample_mode=sample_mode, seed=3)
    params = GenerationParams(max_new_tokens=8, temperature=1.0, top_p=0.95, stop=["Step"])
    a = shared.generate(PROMPTS[:2], n=4, params=params)
    b = plain.generate(PROMPTS[:2], n=4, params=params)
    assert [[c.text for c in r] for r in a] == [[c.text for c in r] for r in b]
    assert [[c.finish_reason for c in r] for r in a] == [[c.finish_reason for c in r] for r in b]
    assert shared.reused_prefix_tokens > 0


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_score_equal_within_fp32_tolerance(loaded, batch_size):
    shared, plain = pair(loaded, batch_size=batch_size)
    a = shared.score(PROMPTS, CONTINUATIONS)
    b = plain.score(PROMPTS, CONTINUATIONS)
    assert [len(x) for x in a] == [len(x) for x in b] and all(a)
    for x, y in zip(a, b, strict=True):
        assert x == pytest.approx(y, abs=1e-4)
    assert (shared.reused_prefix_tokens > 0) == (batch_size > 1)


def test_score_matches_a_direct_forward(loaded):
    """Not only equal to the plain path: equal to the model's own log-softmax on the whole sequence."""
    model, tok = loaded
    shared, _ = pair(loaded, batch_size=8)
    got = shared.score(PROMPTS, CONTINUATIONS)
    for p, c, lps in zip(PROMPTS, CONTINUATIONS, got, strict=True):
        p_ids, c_ids = shared.encode_prompt(p), shared.encode_continuation(c)
        with torch.no_grad():
            logits = model(torch.tensor([p_ids + c_ids])).logits[0].float()
        want = torch.log_softmax(logits, -1)[len(p_ids) - 1 : -1].gather(1, torch.tensor(c_ids)[:, None])[:, 0]
        assert lps == pytest.approx(want.tolist(), abs=1e-4)


@pytest.mark.parametrize("batch_size", [2, 8])
def test_next_token_logprobs_equal_within_fp32_tolerance(loaded, batch_size):
    judge_prompts = [p + " [[" for p in PROMPTS]  # the logprob judge: A or B after "[["
    shared, plain = pair(loaded, batch_size=batch_size)
    a = shared.next_token_logprobs(judge_prompts, ["A", "B"])
    b = plain.next_token_logprobs(judge_prompts, ["A", "B"])
    for x, y in zip(a, b, strict=True):
        assert x == pytest.approx(y, abs=1e-4)
    assert shared.reused_prefix_tokens > 0


def test_sliding_window_layers_with_a_prefix_longer_than_the_window(tiny_model_dir):
    """Gemma 3's sliding layers keep only the last window - 1 tokens of the prefix cache; the rest of
    each row must still see exactly its window. Rows of equal length (no padding): equal to plain."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(
        tiny_model_dir, sliding_window=6, layer_types=["sliding_attention", "full_attention"]
    ).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    shared = HFGenerator(model, tok, batch_size=4, min_shared_tokens=1, seed=5)
    plain = HFGenerator(model, tok, batch_size=4, share_prefix=False, seed=5)
    prompt = HEADER + "Step 1: 2 + 3 = 5."
    assert len(shared.encode_prompt(prompt)) > 3 * 6
    conts = [" The answer is 5.", " The answer is 6.", " So 2 + 3 = 5.", " Step 2: 5 clips"]
    a = shared.score([prompt] * 4, conts)
    b = plain.score([prompt] * 4, conts)
    for x, y in zip(a, b, strict=True):
        assert x == pytest.approx(y, abs=1e-4)
    params = GenerationParams(max_new_tokens=10, temperature=1.0, top_p=1.0)
    assert [[c.text for c in r] for r in shared.generate([prompt], n=4, params=params)] == [
        [c.text for c in r] for r in plain.generate([prompt], n=4, params=params)
    ]
    greedy = GenerationParams(max_new_tokens=10)
    assert shared.generate([prompt], params=greedy)[0][0].text == plain.generate([prompt], params=greedy)[0][0].text


@pytest.mark.slow
def test_embedded_model_prefix_reuse_equals_plain_path(data_dir):
    """The real Gemma 3 config (sliding and full layers, its cache classes): judge log-probs and greedy
    generation with a shared few-shot header."""
    from prm_selfreward.data import load_benchmark
    from prm_selfreward.judges.prompts import VERDICT_OPENING, pairwise_step_message
    from prm_selfreward.prompts import solve_message

    problems = load_benchmark("gsm8k", data_dir=data_dir)[:3]
    model = HFGenerator("embedded", batch_size=4, share_prefix=False)
    shared = HFGenerator(model.model, model.tokenizer, batch_size=4)
    q = problems[0].question
    judge = [pairwise_step_message(q, ["Step 1: She sold 48 clips."], a, b) + VERDICT_OPENING
             for a, b in [("24 clips in May.", "48 clips in May."), ("48 clips in May.", "24 clips in May."),
                          ("72 in all.", "24 clips in May."), ("24 clips in May.", "72 in all.")]]
    a = shared.next_token_logprobs(judge, ["A", "B"])
    b = model.next_token_logprobs(judge, ["A", "B"])
    for x, y in zip(a, b, strict=True):
        assert x == pytest.approx(y, abs=1e-4)
    prompts = [solve_message(p.question, few_shot=1) for p in problems]
    params = GenerationParams(max_new_tokens=16)
    assert [r[0].text for r in shared.generate(prompts, params=params)] == [
        r[0].text for r in model.generate(prompts, params=params)
    ]
    assert shared.reused_prefix_tokens > 0
