"""The transformers backend: :class:`HFGenerator` (CPU and GPU).

Generation is batched with left padding; rows are sorted by prompt length so a batch pads little.
``n`` samples per prompt are separate rows (the prompt repeated; see ``sample_mode``); greedy
decoding computes one row per prompt and copies it ``n`` times, since every greedy sample is the same.
Stop strings end each row on its own as soon as its generated text contains one (a finished row takes
no more of its budget; it is padded until the batch ends); the text is then cut at the first stop
string, which is excluded. Matching is on the decoded tail of the generated tokens only (as vLLM
does), by a small stopping criterion of ours: transformers' ``stop_strings`` preprocesses the whole
vocabulary on every ``generate`` call (its cache misses because ``get_vocab()`` order varies), about
5 s per call with Gemma's 262k-token vocabulary, while decoding a few tail tokens per step is free.

Scoring runs the decoder once per batch and projects onto the vocabulary only at the continuation
positions (``logits_to_keep`` with a boolean mask): with a 262k-token vocabulary the output layer is
most of the cost, and most positions of a scored sequence are prompt.

Shared prefixes (``share_prefix``, on by default): within one batch, rows that start with the same
tokens (the w candidates of one step, the judge prompts of one round, an eval batch's few-shot header)
have that prefix encoded once. :func:`plan_shared_prefixes` groups the batch's rows (sorted by token
ids, cut where it saves the most tokens); the distinct prefixes run in one left-padded forward into a
transformers ``DynamicCache`` (built from the model config, so Gemma 3's sliding-window layers get
their own cache layers), ``batch_select_indices`` gives each row its prefix's cache, and the rest of
each row runs on top of it (``generate`` with the cache, or a forward with explicit positions). Rows
are laid out ``[pad, prefix, pad, rest]`` with the attention mask and positions counting real tokens
only, so every row computes what the unshared path computes, up to float rounding. ``score`` and
``next_token_logprobs`` order rows by token ids instead of by length, so that rows sharing a prefix
land in one batch.

Sampling is deterministic under a seed on CPU: every ``generate`` call draws from its own seeded RNG
(``params.seed`` when given, else derived from the generator's ``seed`` and a call counter), so a
run with the same calls reproduces, independent of other code using torch's global RNG. Results do
depend on ``batch_size`` when sampling (rows share the RNG stream), not under greedy decoding.
"""

from __future__ import annotations

import gc
import inspect
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import UserError
from . import tokens
from .base import Completion, GenerationParams, TokenUsage, truncate_at_stop
from .budget import generation_room

SAMPLE_MODES = ("repeat", "num_return_sequences")


class HFGenerator:
    """A :class:`~prm_selfreward.models.base.Generator` over a transformers causal LM.

    ``model_or_path``: a loaded ``PreTrainedModel`` (then ``tokenizer`` is required) or a model spec
    (``embedded``, a local directory, a hub id; see :mod:`.loading`). ``batch_size``: rows (sequences)
    per forward pass. ``max_length``: prompt + completion tokens allowed per row (default: the model's
    ``max_position_embeddings``); a row whose prompt leaves less than ``max_new_tokens`` room gets
    what is left and finishes with ``"length"``; a prompt that fills it entirely is not sent: its
    completions are empty, ``"length"``, counted in ``usage.skipped_prompts`` (see :mod:`.budget`).
    ``sample_mode``: how ``n > 1`` samples are batched: ``"repeat"`` (the prompt as ``n`` rows) or
    ``"num_return_sequences"`` (transformers expands each prompt itself); both compute the same thing.
    ``share_prefix``: encode a prefix shared by rows of a batch once and reuse its KV cache (see the
    module docstring); a batch shares only when that saves at least ``min_shared_tokens`` tokens.
    """

    def __init__(
        self,
        model_or_path: Any,
        tokenizer: Any = None,
        batch_size: int = 8,
        device: str = "cpu",
        dtype: str = "float32",
        seed: int | None = None,
        max_length: int | None = None,
        sample_mode: str = "repeat",
        score_token_budget: int = 512,
        share_prefix: bool = True,
        min_shared_tokens: int = 16,
    ):
        if batch_size < 1:
            raise UserError(f"batch_size must be at least 1, got {batch_size}")
        if sample_mode not in SAMPLE_MODES:
            raise UserError(f"sample_mode must be one of {', '.join(SAMPLE_MODES)}, got {sample_mode!r}")
        from .loading import load_model_and_tokenizer, resolve_device

        device = resolve_device(device)
        if isinstance(model_or_path, str | os.PathLike):
            model, loaded_tok = load_model_and_tokenizer(model_or_path, dtype=dtype, device=device)
            tokenizer = tokenizer or loaded_tok
            self.name = os.fspath(model_or_path)
        else:
            if tokenizer is None:
                raise ValueError("HFGenerator: pass the tokenizer together with a loaded model")
            model = model_or_path
            if getattr(model, "hf_device_map", None) is None:  # leave accelerate-dispatched models alone
                model.to(device)
            model.eval()
            self.name = getattr(model.config, "_name_or_path", "") or type(model).__name__
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = batch_size
        self.seed = seed
        self.sample_mode = sample_mode
        self.score_token_budget = score_token_budget
        """Continuation tokens projected onto the vocabulary per forward in ``score`` (bounds memory)."""
        text_config = model.config.get_text_config()
        self.max_length = max_length or getattr(text_config, "max_position_embeddings", None)
        self.share_prefix = share_prefix
        self.min_shared_tokens = min_shared_tokens
        self.reused_prefix_tokens = 0
        """Prompt tokens not encoded thanks to shared prefixes (all calls so far)."""
        self.usage = TokenUsage()
        self._generate_calls = 0
        self._masked_logits: bool | None = None  # whether forward() takes a boolean logits_to_keep

        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if self.pad_id is None:
            raise UserError(f"the tokenizer of {self.name!r} has neither a pad nor an eos token")
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        self.eos_ids = eos_ids

    # -- prompts -------------------------------------------------------------------------------

    def format_prompt(self, message: str) -> str:
        """The chat template with the generation prompt when the tokenizer has one, else ``message``."""
        return tokens.format_prompt(self.tokenizer, message)

    def encode_prompt(self, text: str) -> list[int]:
        """Token ids of a prompt (BOS added unless the text already starts with it; see :mod:`.tokens`)."""
        return tokens.encode_prompt(self.tokenizer, text)

    @property
    def context_length(self) -> int | None:
        """Prompt + completion tokens per row (``max_length``), for :class:`~.budget.PromptBudget`."""
        return self.max_length

    def count_tokens(self, text: str) -> int:
        return len(self.encode_prompt(text))

    def encode_continuation(self, text: str) -> list[int]:
        return tokens.encode_continuation(self.tokenizer, text)

    # -- generation ----------------------------------------------------------------------------

    def generate(
        self, prompts: Sequence[str], n: int = 1, params: GenerationParams | None = None
    ) -> list[list[Completion]]:
        """``n`` completions per prompt, in prompt order (see the module docstring for batching)."""
        import torch

        params = params or GenerationParams()
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        prompts = list(prompts)
        self._generate_calls += 1
        if not prompts:
            return []
        self.usage.calls += 1
        encoded = [self.encode_prompt(p) for p in prompts]
        budgets = [generation_room(self.max_length, len(ids), params.max_new_tokens) for ids in encoded]

        copies = 1 if params.greedy else n  # greedy samples are all equal: compute one, copy it
        results: list[list[Completion]] = [[] for _ in prompts]
        for i in (i for i, b in enumerate(budgets) if b == 0):  # no room: not sent, counted (budget.py)
            results[i] = [Completion("", len(encoded[i]), 0, "length") for _ in range(copies)]
            self.usage.skipped_prompts += 1
        order = sorted((i for i, b in enumerate(budgets) if b > 0), key=lambda i: -len(encoded[i]))
        with self._rng(params), torch.inference_mode():
            for rows, per_prompt in self._plan(order, copies):
                outs = self._generate_batch(
                    [encoded[i] for i in rows], [budgets[i] for i in rows], per_prompt, params
                )
                for k, i in enumerate(rows):
                    for gen_ids, stop_len in outs[k * per_prompt : (k + 1) * per_prompt]:
                        comp = self._finish(len(encoded[i]), gen_ids, stop_len, budgets[i], params.stop)
                        results[i].append(comp)
                        self.usage.prompt_tokens += len(encoded[i])
                        self.usage.generated_tokens += comp.completion_tokens
        if copies != n:
            results = [[_copy(row[0]) for _ in range(n)] for row in results]
        return results

    def _plan(self, order: list[int], copies: int) -> Iterator[tuple[list[int], int]]:
        """Batches as (prompt indices, samples per prompt) with at most ``batch_size`` rows each."""
        if self.sample_mode == "repeat" or copies == 1:
            flat = [i for i in order for _ in range(copies)]
            for start in range(0, len(flat), self.batch_size):
                yield flat[start : start + self.batch_size], 1
            return
        # num_return_sequences: a prompt's samples in chunks of at most batch_size; prompts whose
        # chunks have the same size share a batch.
        chunks = []
        for i in order:
            left = copies
            while left:
                size = min(left, self.batch_size)
                chunks.append((i, size))
                left -= size
        chunks.sort(key=lambda c: -c[1])  # stable: prompts stay longest-first within a size
        batch: list[int] = []
        size = 0
        for i, s in chunks:
            if batch and (s != size or (len(batch) + 1) * s > self.batch_size):
                yield batch, size
                batch = []
            batch.append(i)
            size = s
        if batch:
            yield batch, size

    def _generate_batch(
        self, rows: list[list[int]], budgets: list[int], per_prompt: int, params: GenerationParams
    ) -> list[tuple[list[int], int | None]]:
        """Generated ids per output row (``per_prompt`` rows per input row, in order), each with the
        number of tokens after which its text contained a stop string (None if it never did)."""
        import torch

        kwargs: dict[str, Any] = {
            "max_new_tokens": max(budgets),
            "num_return_sequences": per_prompt,
            "pad_token_id": self.pad_id,
        }
        plan = self._plan_prefixes(rows, [len(r) - 1 for r in rows])
        if plan is None:
            width = max(len(r) for r in rows)
            input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            attention = torch.zeros((len(rows), width), dtype=torch.long)
            for k, ids in enumerate(rows):  # left padding: generation continues from the right edge
                input_ids[k, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
                attention[k, width - len(ids) :] = 1
        else:
            # [pad, prefix | pad, rest]: generate feeds only the columns after the cache and takes
            # positions from the attention mask, so the padding in the middle is invisible.
            prefixes, groups = plan
            cache, prefix_ids, prefix_mask = self._encode_prefixes(prefixes)
            cache.batch_select_indices(torch.tensor([g for g in groups for _ in range(per_prompt)]))
            rests = [r[len(prefixes[g]) :] for r, g in zip(rows, groups, strict=True)]
            rest_width = max(len(r) for r in rests)
            width = prefix_ids.shape[1] + rest_width
            index = torch.tensor(groups)
            input_ids = torch.cat([prefix_ids[index], torch.full((len(rows), rest_width), self.pad_id)], dim=1)
            attention = torch.cat([prefix_mask[index], torch.zeros((len(rows), rest_width), dtype=torch.long)], dim=1)
            for k, rest in enumerate(rests):
                input_ids[k, width - len(rest) :] = torch.tensor(rest, dtype=torch.long)
                attention[k, width - len(rest) :] = 1
            kwargs[self._cache_kwarg()] = cache
        if params.greedy:
            kwargs["do_sample"] = False
        else:
            # top_k=0 switches off transformers' default top-k of 50: plain temperature + nucleus
            # sampling, as GenerationParams (and vLLM) mean it.
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        stops = [s for s in params.stop if s]
        criterion = _stop_on_text(self.tokenizer, stops, width) if stops else None
        if criterion is not None:
            kwargs["stopping_criteria"] = [criterion]
        out = self.model.generate(
            input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device), **kwargs
        )
        stopped_at = criterion.stopped_at if criterion is not None else {}
        return [(ids, stopped_at.get(k)) for k, ids in enumerate(out[:, width:].tolist())]

    def _finish(
        self, prompt_len: int, gen: list[int], stop_len: int | None, budget: int, stop: Sequence[str]
    ) -> Completion:
        """One row's generated ids -> Completion: cut at a stop string, at EOS, at the budget.

        ``stop_len``: how many tokens the row had generated when its text first contained a stop
        string (None if it never did).
        """
        if stop_len is not None and stop_len <= budget:
            text, stop_string = truncate_at_stop(self._decode(gen[:stop_len]), stop)
            if stop_string is not None:
                return Completion(text, prompt_len, stop_len, "stop", stop_string)
        gen = gen[:budget]
        eos_at = next((k for k, t in enumerate(gen) if t in self.eos_ids), None)
        body = gen if eos_at is None else gen[:eos_at]
        text = self._decode(body)
        cut, stop_string = truncate_at_stop(text, stop)
        if stop_string is not None:  # only if a stop string appeared that the tail check missed
            return Completion(cut, prompt_len, self._tokens_until_stop(body, stop), "stop", stop_string)
        if eos_at is not None:
            return Completion(text, prompt_len, eos_at + 1, "eos")
        return Completion(text, prompt_len, len(body), "length")

    def _decode(self, ids: list[int]) -> str:
        # no clean-up of tokenization spaces: it would change the text that stop strings are matched in
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _tokens_until_stop(self, ids: list[int], stop: Sequence[str]) -> int:
        """The fewest leading tokens of ``ids`` whose text contains a stop string (binary search)."""
        lo, hi = 1, len(ids)
        while lo < hi:
            mid = (lo + hi) // 2
            if truncate_at_stop(self._decode(ids[:mid]), stop)[1] is not None:
                hi = mid
            else:
                lo = mid + 1
        return hi

    @contextmanager
    def _rng(self, params: GenerationParams) -> Iterator[None]:
        """A private, seeded RNG for one call (torch's global RNG state is restored afterwards)."""
        import torch

        if params.greedy or (params.seed is None and self.seed is None):
            yield
            return
        seed = (
            params.seed if params.seed is not None else (self.seed * 1_000_003 + self._generate_calls) % 2**63
        )
        devices = [self.model.device] if self.model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    # -- scoring -------------------------------------------------------------------------------

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[list[float]]:
        """Per-token log-probabilities of each continuation given its prompt.

        Prompt and continuation are tokenised separately (the prompt with BOS, the continuation
        without) and their ids concatenated, so the continuation's first token starts exactly at the
        boundary. An empty continuation scores ``[]``.
        """
        import torch

        if len(prompts) != len(continuations):
            raise ValueError(f"score: {len(prompts)} prompts but {len(continuations)} continuations")
        if not prompts:
            return []
        self.usage.calls += 1
        pairs = [
            (self.encode_prompt(p), self.encode_continuation(c))
            for p, c in zip(prompts, continuations, strict=True)
        ]
        for p_ids, c_ids in pairs:
            if not p_ids and c_ids:
                raise ValueError(
                    "score: an empty prompt without a BOS token gives the first token no context"
                )
            self.usage.prompt_tokens += len(p_ids)
            self.usage.scored_tokens += len(c_ids)
        results: list[list[float]] = [[] for _ in pairs]
        order = [i for i in self._score_order(pairs) if pairs[i][1]]
        with torch.inference_mode():
            for batch in self._score_batches(order, pairs):
                for i, lps in zip(batch, self._score_batch([pairs[i] for i in batch]), strict=True):
                    results[i] = lps
        return results

    def next_token_logprobs(self, prompts: Sequence[str], tokens: Sequence[str]) -> list[list[float]]:
        """Log-probability of each single-token text in ``tokens`` as the next token after each prompt.

        One forward pass per prompt reads every candidate off the same next-token distribution (the
        logprob judge's ``A`` and ``B``), where :meth:`score` would need a row per candidate. Equal to
        ``score([p] * len(tokens), tokens)`` summed per row; raises ValueError for a text that is not
        exactly one token.
        """
        import torch

        ids = []
        for text in tokens:
            encoded = self.encode_continuation(text)
            if len(encoded) != 1:
                raise ValueError(f"next_token_logprobs: {text!r} is {len(encoded)} tokens, not one")
            ids.append(encoded[0])
        if not prompts:
            return []
        self.usage.calls += 1
        pairs = [(self.encode_prompt(p), [ids[0]]) for p in prompts]
        for p_ids, _ in pairs:
            if not p_ids:
                raise ValueError("next_token_logprobs: an empty prompt without a BOS token has no next token")
            self.usage.prompt_tokens += len(p_ids)
            self.usage.scored_tokens += len(ids)
        results: list[list[float]] = [[] for _ in pairs]
        order = self._score_order(pairs)
        columns = torch.tensor(ids, dtype=torch.long)
        with torch.inference_mode():
            for batch in self._score_batches(order, pairs):
                logits = self._last_logits([pairs[i][0] for i in batch])
                picked = torch.log_softmax(logits.float(), dim=-1)[:, columns.to(logits.device)].tolist()
                for i, row in zip(batch, picked, strict=True):
                    results[i] = row
        return results

    def _last_logits(self, prompts: list[list[int]]) -> Any:
        """Logits (len(prompts), vocab) at each prompt's last position, right-padded in one forward."""
        return self._forward_rows(prompts, [len(p) for p in prompts], [(len(p) - 1, len(p)) for p in prompts])

    def _score_order(self, pairs: list[tuple[list[int], list[int]]]) -> list[int]:
        """Row order for scoring: by token ids when sharing prefixes (rows with a common prefix end up
        in one batch), else longest first (least padding)."""
        if self.share_prefix:
            return sorted(range(len(pairs)), key=lambda i: pairs[i][0] + pairs[i][1])
        return sorted(range(len(pairs)), key=lambda i: -sum(map(len, pairs[i])))

    def _forward_rows(
        self, rows: list[list[int]], prompt_lens: list[int], keep: list[tuple[int, int]]
    ) -> Any:
        """Logits at positions ``keep[k] = (start, end)`` of each row, row after row: (num_kept, vocab).

        A row's first ``prompt_lens[k] - 1`` tokens may come from a shared prefix cache (``keep`` starts
        at or after the last prompt token). Rows are right-padded: real tokens sit where an unpadded
        forward puts them, and causal attention never lets them see the padding after them.
        """
        import torch

        plan = self._plan_prefixes(rows, [n - 1 for n in prompt_lens])
        offsets = [0] * len(rows)
        extra: dict[str, Any] = {}
        prefix_mask = None
        if plan is not None:
            prefixes, groups = plan
            cache, _, prefix_mask = self._encode_prefixes(prefixes)
            cache.batch_select_indices(torch.tensor(groups))
            offsets = [len(prefixes[g]) for g in groups]
            prefix_mask = prefix_mask[torch.tensor(groups)]
            extra[self._cache_kwarg()] = cache
        width = max(len(r) - o for r, o in zip(rows, offsets, strict=True))
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for k, (ids, o, (start, end)) in enumerate(zip(rows, offsets, keep, strict=True)):
            input_ids[k, : len(ids) - o] = torch.tensor(ids[o:], dtype=torch.long)
            attention[k, : len(ids) - o] = 1
            mask[k, start - o : end - o] = True
        if prefix_mask is not None:
            attention = torch.cat([prefix_mask, attention], dim=1)
            positions = torch.tensor(offsets)[:, None] + torch.arange(width)[None, :]
            extra["position_ids"] = positions.to(self.device)
        input_ids, attention, mask = (t.to(self.device) for t in (input_ids, attention, mask))
        return self._logits_at(input_ids, attention, mask, **extra)

    # -- shared prefixes ---------------------------------------------------------------------

    def _plan_prefixes(self, rows: list[list[int]], limits: list[int]) -> tuple[list[list[int]], list[int]] | None:
        if not self.share_prefix or len(rows) < 2:
            return None
        plan = plan_shared_prefixes(rows, limits, self.min_shared_tokens)
        if plan is not None:
            prefixes, groups = plan
            self.reused_prefix_tokens += sum(len(prefixes[g]) for g in groups) - sum(map(len, prefixes))
        return plan

    def _cache_kwarg(self) -> str:
        """The forward/generate keyword for a cache: ``cache`` (transformers >= 5.2x) or ``past_key_values``."""
        return "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    def _encode_prefixes(self, prefixes: list[list[int]]) -> tuple[Any, Any, Any]:
        """(DynamicCache, ids, attention mask) of the distinct prefixes, encoded in one left-padded forward.

        The cache is built from the model config, so sliding-window layers (Gemma 3) get sliding cache
        layers exactly as ``generate`` would make them; positions count real tokens only.
        """
        import torch
        from transformers import DynamicCache

        width = max(len(p) for p in prefixes)
        ids = torch.full((len(prefixes), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prefixes), width), dtype=torch.long)
        for k, p in enumerate(prefixes):
            ids[k, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[k, width - len(p) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        self.model(
            input_ids=ids.to(self.device), attention_mask=mask.to(self.device), position_ids=positions.to(self.device),
            use_cache=True, logits_to_keep=1, **{self._cache_kwarg(): cache},
        )
        return cache, ids, mask

    def _score_batches(
        self, order: list[int], pairs: list[tuple[list[int], list[int]]]
    ) -> Iterator[list[int]]:
        batch: list[int] = []
        tokens = 0
        for i in order:
            c = len(pairs[i][1])
            if batch and (len(batch) == self.batch_size or tokens + c > self.score_token_budget):
                yield batch
                batch, tokens = [], 0
            batch.append(i)
            tokens += c
        if batch:
            yield batch

    def _score_batch(self, pairs: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        import torch

        rows = [p + c for p, c in pairs]
        # position t predicts token t + 1: the continuation's tokens are predicted from len(p) - 1 on
        keep = [(len(p) - 1, len(p) + len(c) - 1) for p, c in pairs]
        logits = self._forward_rows(rows, [len(p) for p, _ in pairs], keep)
        targets = [t for _, c in pairs for t in c]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        picked = logprobs.gather(1, torch.tensor(targets, device=logits.device)[:, None])[:, 0].tolist()
        out, start = [], 0
        for _, c in pairs:
            out.append(picked[start : start + len(c)])
            start += len(c)
        return out

    def _logits_at(self, input_ids: Any, attention: Any, keep: Any, **extra: Any) -> Any:
        """Logits (num_kept, vocab) at the ``keep`` positions, without projecting the rest.

        Models whose forward slices with ``slice_logits_to_keep`` (transformers >= 5.20) take the
        boolean mask itself; others get the columns any row needs as a 1-D index tensor.
        """
        import torch

        if (
            self._masked_logits is not False
            and "logits_to_keep" in inspect.signature(self.model.forward).parameters
        ):
            try:
                logits = self.model(
                    input_ids=input_ids, attention_mask=attention, logits_to_keep=keep, **self._fresh(extra)
                ).logits
            except (IndexError, RuntimeError, TypeError):
                logits = None
            self._masked_logits = (
                logits is not None and logits.dim() == 2 and logits.shape[0] == int(keep.sum())
            )
            if self._masked_logits:
                return logits
        columns = torch.nonzero(keep.any(dim=0))[:, 0]
        if "logits_to_keep" in inspect.signature(self.model.forward).parameters:
            logits = self.model(
                input_ids=input_ids, attention_mask=attention, logits_to_keep=columns, **extra
            ).logits
        else:
            logits = self.model(input_ids=input_ids, attention_mask=attention, **extra).logits[:, columns]
        return logits[keep[:, columns]]

    def _fresh(self, extra: dict[str, Any]) -> dict[str, Any]:
        """``extra`` with a copy of its cache, when the first (probing) forward may be retried: a forward
        appends to the cache it is given."""
        import copy

        key = self._cache_kwarg()
        if self._masked_logits is None and key in extra:
            return {**extra, key: copy.deepcopy(extra[key])}
        return extra

    # -- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Drop the model and tokenizer and free their memory (the generator is unusable afterwards)."""
        import torch

        cuda = getattr(getattr(self, "model", None), "device", None)
        self.model = None
        self.tokenizer = None
        gc.collect()
        if cuda is not None and cuda.type == "cuda":
            torch.cuda.empty_cache()

    def __enter__(self) -> HFGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def plan_shared_prefixes(
    rows: Sequence[Sequence[int]], limits: Sequence[int], min_saving: int = 1
) -> tuple[list[list[int]], list[int]] | None:
    """How rows of one batch share prefixes: (distinct prefixes, the prefix index of each row).

    ``limits[k]``: the longest prefix row k may take from a cache (its last prompt token must be
    computed with the row, since its logits are needed). Rows sorted by token ids are cut into runs
    (dynamic programming over the cut points) minimising the tokens encoded: each run's prefix once,
    plus every row's remainder. A run's prefix is the common prefix of its rows (at most their
    limits); a lone row takes its whole allowance. None when sharing saves fewer than ``min_saving``
    tokens or some row allows no prefix at all.
    """
    n = len(rows)
    if n == 0 or min(limits) < 1:
        return None
    order = sorted(range(n), key=lambda k: list(rows[k]))

    def common(a: Sequence[int], b: Sequence[int]) -> int:
        m = 0
        for x, y in zip(a, b, strict=False):
            if x != y:
                break
            m += 1
        return m

    adjacent = [common(rows[order[i]], rows[order[i + 1]]) for i in range(n - 1)]
    inf = float("inf")
    best: list[float] = [0.0] + [inf] * n
    cut = [0] * (n + 1)
    size = [0] * (n + 1)  # prefix length of the run ending at j
    for j in range(1, n + 1):
        shared, limit, total = inf, inf, 0
        for i in range(j - 1, -1, -1):  # the run order[i:j]
            limit = min(limit, limits[order[i]])
            total += len(rows[order[i]])
            if i < j - 1:
                shared = min(shared, adjacent[i])
            prefix = int(min(shared, limit))
            if prefix < 1:
                break  # a longer run only shares less
            cost = best[i] + prefix + total - (j - i) * prefix
            if cost < best[j]:
                best[j], cut[j], size[j] = cost, i, prefix
    saving = sum(len(r) for r in rows) - best[n]
    if saving < min_saving:
        return None
    prefixes: list[list[int]] = []
    groups = [0] * n
    j = n
    while j > 0:
        i = cut[j]
        for k in order[i:j]:
            groups[k] = len(prefixes)
        prefixes.append(list(rows[order[i]][: size[j]]))
        j = i
    return prefixes, groups


def _copy(c: Completion) -> Completion:
    return Completion(c.text, c.prompt_tokens, c.completion_tokens, c.finish_reason, c.stop_string)


_STOP_CLASS: Any = None


def _stop_on_text(tokenizer: Any, stops: list[str], prompt_width: int) -> Any:
    """A transformers ``StoppingCriteria`` that ends a row once its generated text contains a stop string.

    Each step decodes only the last few generated tokens of each row: enough tokens that a stop string
    completed by the newest token lies wholly inside them (every ordinary token decodes to at least one
    byte), plus a margin, so that a tokenizer stripping the leading space of decoded text cannot hide
    the stop's first character and a few special tokens (decoded to nothing) do not push it out of
    view. A stop string earlier in the window would have ended the row already. It records in ``stopped_at[row]`` the number of generated tokens at that point.
    """
    global _STOP_CLASS
    if _STOP_CLASS is None:
        import torch
        from transformers import StoppingCriteria

        class StopOnText(StoppingCriteria):
            def __init__(self, tokenizer: Any, stops: list[str], prompt_width: int):
                self.tokenizer = tokenizer
                self.stops = stops
                self.prompt_width = prompt_width
                self.window = max(len(s.encode("utf-8")) for s in stops) + 4
                self.stopped_at: dict[int, int] = {}

            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                generated = input_ids.shape[1] - self.prompt_width
                tails = input_ids[:, max(self.prompt_width, input_ids.shape[1] - self.window) :].tolist()
                done = []
                for row, ids in enumerate(tails):
                    if row not in self.stopped_at:
                        text = self.tokenizer.decode(
                            ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
                        )
                        if any(s in text for s in self.stops):
                            self.stopped_at[row] = generated
                    done.append(row in self.stopped_at)
                return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

        _STOP_CLASS = StopOnText
    return _STOP_CLASS(tokenizer, stops, prompt_width)
