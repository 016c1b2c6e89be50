"""HFGenerator on the tiny in-process model: batching, n samples, stop strings, finish reasons,
determinism, token accounting, and ``score`` against a direct forward pass."""

from __future__ import annotations

import re

import pytest

from prm_selfreward.errors import UserError
from prm_selfreward.models import GenerationParams, Generator, HFGenerator

PROMPTS = [
    "Step 1: Natalia",
    "Problem: What is 2 + 3? Step 1: 2 + 3 = 5. The final answer is",
    "The answer is",
    "Let's think step by step and solve the following math problem.",
    "0 1 2",
]
GREEDY = GenerationParams(max_new_tokens=16)
SAMPLE = GenerationParams(max_new_tokens=12, temperature=1.0, top_p=0.95)


pytestmark = pytest.mark.usefixtures("one_thread")




def make(loaded, **kwargs) -> HFGenerator:
    model, tokenizer = loaded
    return HFGenerator(model, tokenizer, **kwargs)


def texts(rows):
    return [[c.text for c in row] for row in rows]


def test_is_a_generator_and_exposes_model_and_tokenizer(loaded, tiny_model_dir):
    gen = HFGenerator(str(tiny_model_dir), batch_size=2)
    assert isinstance(gen, Generator)
    assert gen.model is not None and gen.tokenizer is not None
    gen.close()
    assert gen.model is None and gen.tokenizer is None


@pytest.mark.parametrize("sample_mode", ["repeat", "num_return_sequences"])
@pytest.mark.parametrize("batch_size", [2, 3, 16])
def test_greedy_batched_equals_one_at_a_time(loaded, batch_size, sample_mode):
    single = make(loaded, batch_size=1)
    expected = [single.generate([p], params=GREEDY)[0][0] for p in PROMPTS]
    batched = make(loaded, batch_size=batch_size, sample_mode=sample_mode).generate(PROMPTS, params=GREEDY)
    assert [row[0].text for row in batched] == [c.text for c in expected]
    assert [row[0].completion_tokens for row in batched] == [c.completion_tokens for c in expected]
    assert [row[0].prompt_tokens for row in batched] == [c.prompt_tokens for c in expected]


def test_greedy_n_copies_one_computation(loaded):
    gen = make(loaded, batch_size=4)
    rows = gen.generate(PROMPTS[:2], n=3, params=GREEDY)
    assert [len(r) for r in rows] == [3, 3]
    for row in rows:
        assert len({c.text for c in row}) == 1
        assert row[0] is not row[1]  # independent objects: callers may edit one
    # one computed row per prompt
    assert gen.usage.generated_tokens == sum(r[0].completion_tokens for r in rows)


@pytest.mark.parametrize("sample_mode", ["repeat", "num_return_sequences"])
@pytest.mark.parametrize("n,batch_size", [(3, 4), (5, 2), (4, 8)])
def test_n_samples_per_prompt_in_order(loaded, n, batch_size, sample_mode):
    gen = make(loaded, batch_size=batch_size, seed=1, sample_mode=sample_mode)
    rows = gen.generate(PROMPTS, n=n, params=SAMPLE)
    assert [len(r) for r in rows] == [n] * len(PROMPTS)
    for prompt, row in zip(PROMPTS, rows, strict=True):
        prompt_len = len(gen.encode_prompt(prompt))
        assert all(c.prompt_tokens == prompt_len for c in row)
        for c in row:
            if c.finish_reason == "length":
                assert c.completion_tokens == SAMPLE.max_new_tokens
            else:
                assert c.finish_reason == "eos" and c.completion_tokens <= SAMPLE.max_new_tokens
    # a random model at temperature 1 practically never repeats a 12-token sample
    assert all(len({c.text for c in row}) > 1 for row in rows)


@pytest.mark.parametrize("sample_mode", ["repeat", "num_return_sequences"])
def test_samples_belong_to_their_prompt(loaded, sample_mode):
    """Near-zero temperature samples are the greedy text: each lands in its own prompt's row."""
    greedy = [row[0].text for row in make(loaded, batch_size=8).generate(PROMPTS, params=GREEDY)]
    cold = GenerationParams(max_new_tokens=GREEDY.max_new_tokens, temperature=1e-4)
    rows = make(loaded, batch_size=4, seed=0, sample_mode=sample_mode).generate(PROMPTS, n=3, params=cold)
    assert texts(rows) == [[g] * 3 for g in greedy]


def test_sampling_deterministic_under_seed(loaded):
    import torch

    a = make(loaded, batch_size=4, seed=7)
    b = make(loaded, batch_size=4, seed=7)
    c = make(loaded, batch_size=4, seed=8)
    state = torch.get_rng_state()
    first_a, first_b, first_c = (g.generate(PROMPTS, n=2, params=SAMPLE) for g in (a, b, c))
    assert torch.equal(torch.get_rng_state(), state), "the global torch RNG must not be consumed"
    assert texts(first_a) == texts(first_b)
    assert texts(first_a) != texts(first_c)
    # successive calls continue the stream (not the same samples again), reproducibly
    second_a, second_b = a.generate(PROMPTS, n=2, params=SAMPLE), b.generate(PROMPTS, n=2, params=SAMPLE)
    assert texts(second_a) == texts(second_b) != texts(first_a)


def test_per_call_seed_repeats_exactly(loaded):
    gen = make(loaded, batch_size=4)
    params = GenerationParams(max_new_tokens=10, temperature=1.0, seed=123)
    assert texts(gen.generate(PROMPTS, n=2, params=params)) == texts(
        gen.generate(PROMPTS, n=2, params=params)
    )


def _stop_candidates(text: str) -> list[str]:
    """ASCII substrings of a greedy text that make good stop strings (not at its very start)."""
    return [m.group(0) for m in re.finditer(r"[A-Za-z0-9 ]{2,3}", text) if m.start() > 0]


@pytest.fixture(scope="module")
def reference(loaded):
    """Greedy 16-token continuations without stop strings, and a stop string inside each."""
    gen = make(loaded, batch_size=8)
    ref = [row[0] for row in gen.generate(PROMPTS, params=GREEDY)]
    stops = {}
    for prompt, comp in zip(PROMPTS, ref, strict=True):
        cands = _stop_candidates(comp.text)
        if cands:
            stops[prompt] = cands[0]
    assert len(stops) >= 2, (
        f"tiny model texts have too few ASCII runs for stop tests: {[c.text for c in ref]}"
    )
    return ref, stops


def test_stop_string_cuts_and_is_excluded(loaded, reference):
    ref, stops = reference
    gen = make(loaded, batch_size=8)
    for prompt, comp in zip(PROMPTS, ref, strict=True):
        if prompt not in stops:
            continue
        stop = stops[prompt]
        out = gen.generate([prompt], params=GenerationParams(max_new_tokens=16, stop=[stop]))[0][0]
        assert out.finish_reason == "stop" and out.stop_string == stop
        assert out.text == comp.text[: comp.text.find(stop)]
        assert stop not in out.text


def test_long_stop_string_spanning_many_tokens(loaded, reference):
    ref, _ = reference
    gen = make(loaded, batch_size=8)
    cases = [
        (p, m.group(0))
        for p, c in zip(PROMPTS, ref, strict=True)
        for m in re.finditer(r"[ -~]{6,}", c.text)
        if m.start() > 0
    ]
    assert cases, f"no long printable run in {[c.text for c in ref]}"
    prompt, stop = cases[0]
    text = ref[PROMPTS.index(prompt)].text
    assert len(gen.encode_continuation(stop)) > 1
    out = gen.generate([prompt], params=GenerationParams(max_new_tokens=16, stop=[stop]))[0][0]
    assert (out.finish_reason, out.stop_string, out.text) == ("stop", stop, text[: text.find(stop)])


def test_stopped_row_uses_only_the_tokens_up_to_its_stop(loaded, reference):
    """completion_tokens is the first k at which the greedy text contains the stop string."""
    ref, stops = reference
    gen = make(loaded, batch_size=8)
    prompt, stop = next(iter(stops.items()))
    out = gen.generate([prompt], params=GenerationParams(max_new_tokens=16, stop=[stop]))[0][0]
    k = out.completion_tokens
    assert k < 16
    at_k = gen.generate([prompt], params=GenerationParams(max_new_tokens=k))[0][0].text
    before = gen.generate([prompt], params=GenerationParams(max_new_tokens=k - 1))[0][0].text if k > 1 else ""
    assert stop in at_k and stop not in before


def test_rows_stop_independently_in_a_batch(loaded, reference):
    """One row's stop ends only that row; the others continue to their own end, unchanged."""
    ref, stops = reference
    prompt, stop = next(iter(stops.items()))
    others = [p for p, c in zip(PROMPTS, ref, strict=True) if stop not in c.text]
    assert others, "need a prompt whose greedy text lacks the stop string"
    gen = make(loaded, batch_size=8)
    rows = gen.generate([prompt, *others], params=GenerationParams(max_new_tokens=16, stop=[stop]))
    assert rows[0][0].finish_reason == "stop"
    by_prompt = dict(zip(PROMPTS, ref, strict=True))
    for p, row in zip(others, rows[1:], strict=True):
        assert row[0].text == by_prompt[p].text
        assert row[0].finish_reason == "length" and row[0].completion_tokens == 16
    assert gen.usage.generated_tokens == sum(r[0].completion_tokens for r in rows)


def test_earliest_of_several_stop_strings_wins(loaded, reference):
    ref, stops = reference
    gen = make(loaded, batch_size=8)
    prompt = next(p for p in PROMPTS if len(_stop_candidates(ref[PROMPTS.index(p)].text)) >= 2)
    text = ref[PROMPTS.index(prompt)].text
    first, later = sorted(_stop_candidates(text), key=text.find)[:1] + [_stop_candidates(text)[-1]]
    if text.find(first) == text.find(later):
        pytest.fail("stop candidates coincide")
    out = gen.generate([prompt], params=GenerationParams(max_new_tokens=16, stop=[later, first]))[0][0]
    assert out.stop_string == first and out.text == text[: text.find(first)]


def test_sampled_rows_with_stops_never_contain_them(loaded):
    stops = [" ", "e"]  # frequent in the tiny model's output: most rows stop, at different steps
    gen = make(loaded, batch_size=4, seed=3)
    rows = gen.generate(PROMPTS, n=3, params=GenerationParams(max_new_tokens=12, temperature=1.0, stop=stops))
    reasons = set()
    for row in rows:
        for c in row:
            reasons.add(c.finish_reason)
            assert not any(s in c.text for s in stops)
            assert (c.finish_reason == "stop") == (c.stop_string in stops)
            assert c.completion_tokens <= 12
    assert "stop" in reasons


def test_finish_reason_eos(loaded, tiny_model_dir):
    """Declare the token greedy decoding emits at step p an EOS: generation ends there with "eos"."""
    import torch

    from prm_selfreward.models import load_model_and_tokenizer

    model, _ = loaded
    plain = make(loaded, batch_size=2)
    prompt = PROMPTS[0]
    enc = torch.tensor([plain.encode_prompt(prompt)])
    with torch.inference_mode():
        out = model.generate(input_ids=enc, max_new_tokens=16, do_sample=False, pad_token_id=plain.pad_id)
    gen_ids = out[0, enc.shape[1] :].tolist()
    p = next(i for i in range(2, len(gen_ids)) if gen_ids[i] not in gen_ids[:i])

    model2, tok2 = load_model_and_tokenizer(tiny_model_dir)
    model2.generation_config.eos_token_id = [tok2.eos_token_id, gen_ids[p]]
    with HFGenerator(model2, tok2, batch_size=2) as gen:
        comp = gen.generate([prompt], params=GREEDY)[0][0]
        assert comp.finish_reason == "eos" and comp.stop_string is None
        assert comp.completion_tokens == p + 1  # the EOS token was generated, so it counts
        assert comp.text == plain.generate([prompt], params=GenerationParams(max_new_tokens=p))[0][0].text
    assert plain.generate([prompt], params=GREEDY)[0][0].finish_reason == "length"


def test_max_length_clips_the_budget_and_skips_full_prompts(loaded):
    gen = make(loaded, batch_size=2, max_length=12)
    prompt_len = len(gen.encode_prompt(PROMPTS[0]))
    assert prompt_len < 12 and gen.context_length == 12 and gen.count_tokens(PROMPTS[0]) == prompt_len
    comp = gen.generate([PROMPTS[0]], params=GenerationParams(max_new_tokens=50))[0][0]
    assert comp.finish_reason == "length" and comp.completion_tokens == 12 - prompt_len
    assert gen.count_tokens(PROMPTS[3]) >= 12
    # A prompt that fills the context is not sent (never a crash); the batch's other prompts are.
    rows = gen.generate([PROMPTS[3], PROMPTS[0]], n=2, params=GenerationParams(max_new_tokens=3))
    assert [(c.text, c.completion_tokens, c.finish_reason) for c in rows[0]] == [("", 0, "length")] * 2
    assert all(c.completion_tokens > 0 for c in rows[1])
    assert gen.usage.skipped_prompts == 1


def test_usage_accounting(loaded):
    gen = make(loaded, batch_size=3, seed=0)
    rows = gen.generate(PROMPTS[:3], n=2, params=SAMPLE)
    prompt_lens = [len(gen.encode_prompt(p)) for p in PROMPTS[:3]]
    assert gen.usage.calls == 1
    assert gen.usage.prompt_tokens == 2 * sum(prompt_lens)
    assert gen.usage.generated_tokens == sum(c.completion_tokens for row in rows for c in row)
    before = gen.usage.snapshot()
    gen.score(PROMPTS[:2], [" 2 + 3 = 5", " 7"])
    delta = gen.usage - before
    assert delta.calls == 1 and delta.generated_tokens == 0
    assert delta.prompt_tokens == sum(prompt_lens[:2])
    assert delta.scored_tokens == sum(len(gen.encode_continuation(c)) for c in [" 2 + 3 = 5", " 7"])


# -- score ---------------------------------------------------------------------------------------

SCORE_CASES = [
    ("Step 1: Natalia", " sold 48/2 = 24 clips in May."),
    ("What is 2 + 3?", " 5"),
    ("Problem: What is 2 + 3? Step 1: 2 + 3 = 5. The final answer is", " \\boxed{5}."),
    ("0", " 1 2 3 4 5 6 7 8 9"),
    ("The answer is", ""),
]


def direct_logprobs(model, tokenizer, prompt: str, continuation: str) -> list[float]:
    """One unbatched, unpadded full forward pass: log-softmax at the continuation positions."""
    import torch

    p_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    c_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + c_ids])
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    return [logprobs[len(p_ids) - 1 + k, t].item() for k, t in enumerate(c_ids)]


@pytest.mark.parametrize("masked", [None, False])
@pytest.mark.parametrize("batch_size,budget", [(1, 512), (8, 512), (8, 6)])
def test_score_equals_direct_forward(loaded, batch_size, budget, masked):
    """Both output-layer paths: the boolean-mask ``logits_to_keep`` (None: detected) and the
    column-index fallback for models without it (False)."""
    model, tokenizer = loaded
    gen = make(loaded, batch_size=batch_size, score_token_budget=budget)
    gen._masked_logits = masked
    got = gen.score([p for p, _ in SCORE_CASES], [c for _, c in SCORE_CASES])
    for (prompt, cont), lps in zip(SCORE_CASES, got, strict=True):
        want = direct_logprobs(model, tokenizer, prompt, cont)
        assert len(lps) == len(want) == len(tokenizer(cont, add_special_tokens=False)["input_ids"])
        assert lps == pytest.approx(want, abs=1e-4)
        assert all(lp <= 0 for lp in lps)


def test_score_projects_onto_the_vocabulary_only_at_continuation_positions(loaded):
    model, tokenizer = loaded
    gen = make(loaded, batch_size=8)
    rows = []
    handle = model.lm_head.register_forward_hook(lambda mod, args, out: rows.append(args[0].shape))
    try:
        gen.score([p for p, _ in SCORE_CASES], [c for _, c in SCORE_CASES])
    finally:
        handle.remove()
    n_cont = sum(len(tokenizer(c, add_special_tokens=False)["input_ids"]) for _, c in SCORE_CASES)
    assert gen._masked_logits is True
    assert sum(s.numel() // s[-1] for s in rows) == n_cont


def test_score_rejects_mismatched_lengths(loaded):
    with pytest.raises(ValueError, match="continuations"):
        make(loaded).score(["a", "b"], ["c"])


# -- prompts -------------------------------------------------------------------------------------


def test_format_prompt_plain_without_chat_template(loaded):
    gen = make(loaded)
    assert gen.format_prompt("What is 2 + 3?") == "What is 2 + 3?"


def test_format_prompt_uses_chat_template_without_doubling_bos(tiny_model_dir):
    from transformers import AutoTokenizer

    from prm_selfreward.models import load_model_and_tokenizer

    model, _ = load_model_and_tokenizer(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = (
        "{{ bos_token }}{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    gen = HFGenerator(model, tokenizer)
    text = gen.format_prompt("What is 2 + 3?")
    assert text == "<bos><user>What is 2 + 3?<assistant>"
    ids = gen.encode_prompt(text)
    assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id


def test_constructor_errors(loaded):
    model, tokenizer = loaded
    with pytest.raises(ValueError, match="tokenizer"):
        HFGenerator(model)
    with pytest.raises(UserError, match="batch_size"):
        HFGenerator(model, tokenizer, batch_size=0)
    with pytest.raises(UserError, match="sample_mode"):
        HFGenerator(model, tokenizer, sample_mode="beam")


@pytest.mark.parametrize("masked", [None, False])
def test_next_token_logprobs_equal_direct_forward_and_score(loaded, masked):
    """The judge's one-forward read of A and B: same numbers as a direct forward pass and as two
    scored rows, one row per prompt, prompts of different lengths batched together."""
    model, tokenizer = loaded
    gen = make(loaded, batch_size=3)
    gen._masked_logits = masked
    prompts = [p for p, _ in SCORE_CASES] + ["Which step is better? [["]
    tokens = ["A", "B"]
    assert all(len(tokenizer(t, add_special_tokens=False)["input_ids"]) == 1 for t in tokens)
    calls = gen.usage.calls
    got = gen.next_token_logprobs(prompts, tokens)
    assert gen.usage.calls == calls + 1
    scored = gen.score([p for p in prompts for _ in tokens], [t for _ in prompts for t in tokens])
    for k, (prompt, row) in enumerate(zip(prompts, got, strict=True)):
        want = [direct_logprobs(model, tokenizer, prompt, t)[0] for t in tokens]
        assert row == pytest.approx(want, abs=1e-4)
        assert row == pytest.approx([sum(scored[2 * k]), sum(scored[2 * k + 1])], abs=1e-4)


def test_next_token_logprobs_rejects_multi_token_text(loaded):
    with pytest.raises(ValueError, match="not one"):
        make(loaded).next_token_logprobs(["a"], ["Step 1: a long text"])
