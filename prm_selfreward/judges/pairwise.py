"""The pairwise step judge, and adapters that plug it into other pipelines (TRL, your own loop).

:class:`PairwiseStepJudge` implements :class:`~prm_selfreward.judges.base.StepJudge`: given the
question, the steps so far and two candidate next steps, which candidate is better. Three modes:

``logprob`` (default for a Generator)
    The judge prompt of :mod:`.prompts` followed by ``"[["``; the model's log-probabilities of ``A``
    and ``B`` as the continuation, softmaxed over the two, give ``P(A better)``. One ``score`` call
    for all comparisons (two continuations per ordered comparison); no text is generated. A backend
    with the optional method ``next_token_logprobs(prompts, tokens) -> list[list[float]]`` (log-prob
    of each single-token text in ``tokens`` as the next token after each prompt) is asked that instead:
    one row per ordered comparison instead of two.
``generate`` (the paper's; the only mode for a plain callable)
    The model writes a short explanation and the verdict; :func:`~.prompts.parse_verdict` reads it.
    One ``generate`` call for all comparisons. An unparsable output is a failed judgment (-1).
``likelihood`` (beyond the paper; no judge prompt)
    The step with the higher mean token log-probability as the continuation of the solving prompt
    (:func:`~prm_selfreward.prompts.solve_prompt`), the previous steps and ``Step l:`` wins;
    ``P(A better) = sigmoid(mean_A - mean_B)``. One ``score`` call. Position plays no role.

Position debiasing (``debias=True``, the default, for ``logprob`` and ``generate``): every
comparison is judged in both orders, A/B and B/A, in the same model call. The two orders are combined
by averaging ``P(step_a better)`` over the orders that gave an answer (in ``generate`` mode an order
gives 1 or 0). Verdict: 0 if the average is above 0.5, 1 if below, -1 if exactly 0.5 (a tie: the two
orders cancel, counted in ``stats.ties``) or if no order gave an answer (a failure, counted in
``stats.failures``). ``extra["consistent"]`` is True when both orders prefer the same step, False
when they disagree, None when fewer than two orders answered (or the mode has no positions).
Prompt budgets: every judge prompt is fitted to the judge model's context before a call
(:meth:`PairwiseStepJudge.fitted_prompt`): the earliest previous steps give way, behind an elision
marker, to keep the question, both candidates and the verdict's room; a prompt that cannot fit even so
is not sent and its order has no answer. Both are counted in :class:`JudgeStats`.
Every verdict carries ``extra["p_a"]``: ``P(step_a better)`` (None on failure; in ``generate`` mode
the share of answered orders that chose step_a). ``probability`` is the probability of the verdict
given (``logprob`` and ``likelihood`` modes; None in ``generate`` mode).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..config import option
from ..models.base import GenerationParams, Generator
from ..models.budget import PromptBudget
from ..prompts import solve_prompt
from ..steps import next_step_prefix, step_body
from .base import PairVerdict, StepComparison
from .prompts import VERDICT_LABELS, VERDICT_OPENING, pairwise_step_message, parse_verdict

MODES = ("logprob", "generate", "likelihood")


@dataclass
class StepJudgeConfig:
    """How the pairwise step judge is built: the run config's ``judge:`` section, the ``--mode``/
    ``--debias``/... options of ``prm-sr judge``, ``prm-sr pairs`` and ``prm-sr eval``, and the judge of
    the loop's search, held-out evaluation and eval's test-time search all read this one class
    (:meth:`PairwiseStepJudge.from_config`)."""

    mode: str = option("logprob", help="Pairwise step judge mode: logprob | generate | likelihood.", choices=MODES)
    debias: bool = option(
        True,
        help="Judge both orders of every comparison and combine them. The step search sends both orders "
        "itself, so there it only changes how a candidate's wins are counted (combined verdicts instead of "
        "the paper's raw ordered-pair wins).",
    )
    max_new_tokens: int = option(256, help="Explanation + verdict budget in generate mode.", minimum=1)
    batch_size: int | None = option(
        None, help="Judge prompts per model call; none: all in one call (the backend still batches).", minimum=1
    )
    solve_few_shot: int | None = option(
        None,
        help="likelihood mode: worked examples in the solving prompt; none: the same as the solutions "
        "being judged were written with (search.few_shot in the search, eval's few-shot in eval).",
        minimum=0,
    )

JudgeCallable = Callable[[list[str]], list[str]]
"""A plain judge for tests and external services: judge prompts in, raw judge outputs out."""


@dataclass
class JudgeStats:
    """Counters over the judge's lifetime (reset with ``judge.stats = JudgeStats()``)."""

    comparisons: int = 0
    """Comparisons asked for (one :class:`StepComparison` each)."""
    judgments: int = 0
    """Model judgments made: distinct judge prompts (two per comparison with ``debias``; a prompt that
    occurs twice in one call is judged once), or distinct scored steps in ``likelihood`` mode."""
    unparsable: int = 0
    """Single-order outputs that could not be parsed (``generate`` mode)."""
    failures: int = 0
    """Comparisons whose verdict is -1 because no order gave an answer."""
    ties: int = 0
    """Comparisons whose verdict is -1 because the two orders (or the two likelihoods) cancelled exactly."""
    inconsistent: int = 0
    """Comparisons whose two orders preferred different steps."""
    model_calls: int = 0
    """Generator (or callable) calls made."""

    both_orders: int = 0
    """Comparisons answered in both orders (the base of ``consistency``)."""
    elided_prompts: int = 0
    """Distinct judge prompts shortened to fit the model's context: their earliest previous steps left
    out, an elision marker in their place (see :meth:`PairwiseStepJudge.fitted_prompt`)."""
    elided_steps: int = 0
    """Previous steps left out of those prompts, summed."""
    skipped_too_long: int = 0
    """Distinct judge prompts (``likelihood`` mode: scored steps) that do not fit the context even with
    no previous step: not sent; their order has no answer (a comparison with no answered order fails)."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def consistency(self) -> float | None:
        """Share of the comparisons answered in both orders whose two orders preferred the same step."""
        return None if self.both_orders == 0 else 1.0 - self.inconsistent / self.both_orders


class _CallableBackend:
    """Wraps a plain callable so it can be asked the way a Generator's ``generate`` is."""

    def __init__(self, fn: JudgeCallable):
        self.fn = fn

    def outputs(self, prompts: list[str]) -> list[str]:
        out = list(self.fn(list(prompts)))
        if len(out) != len(prompts):
            raise ValueError(f"the judge callable returned {len(out)} outputs for {len(prompts)} prompts")
        return [o if isinstance(o, str) else "" for o in out]


def _is_generator(obj: Any) -> bool:
    return all(hasattr(obj, name) for name in ("generate", "score", "format_prompt"))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


class PairwiseStepJudge:
    """Pairwise step judge over a :class:`~prm_selfreward.models.base.Generator` or a plain callable.

    ``model``: a Generator, or a callable ``(list[str] judge prompts) -> list[str] outputs`` (then
    only ``generate`` mode applies; the prompts are the bare messages, no chat template).
    ``mode``: ``logprob`` | ``generate`` | ``likelihood`` (module docstring); default ``logprob`` for a
    Generator, ``generate`` for a callable. ``debias``: judge both orders (module docstring).
    ``batch_size``: at most this many prompts per model call (None: all in one call; the backend
    still batches its forward passes by its own ``batch_size``). ``max_new_tokens``: explanation +
    verdict budget in ``generate`` mode. ``solve_few_shot``: worked examples in the solving prompt of
    ``likelihood`` mode. ``seed``: the order shuffling of :meth:`judge` without ``debias``.
    """

    def __init__(
        self,
        model: Generator | JudgeCallable,
        mode: str | None = None,
        debias: bool = True,
        batch_size: int | None = None,
        max_new_tokens: int = 256,
        solve_few_shot: int = 0,
        seed: int = 0,
    ):
        self.generator: Generator | None = model if _is_generator(model) else None  # type: ignore[assignment]
        if self.generator is None and not callable(model):
            raise TypeError("PairwiseStepJudge needs a Generator or a callable (list[str]) -> list[str]")
        self.callable = None if self.generator is not None else _CallableBackend(model)  # type: ignore[arg-type]
        mode = mode or ("logprob" if self.generator is not None else "generate")
        if mode not in MODES:
            raise ValueError(f"unknown judge mode {mode!r}; choose one of {', '.join(MODES)}")
        if self.generator is None and mode != "generate":
            raise ValueError(
                f"mode {mode!r} needs a Generator (it scores tokens); a callable supports 'generate'"
            )
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.mode = mode
        self.debias = debias
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.solve_few_shot = solve_few_shot
        self.stats = JudgeStats()
        self._rng = random.Random(seed)
        self.budget = PromptBudget.of(self.generator)
        """The judge model's context (unbounded for a callable): prompts are fitted to it before a call."""

    @classmethod
    def from_config(
        cls, model: Generator | JudgeCallable, config: StepJudgeConfig, solve_few_shot: int = 0, seed: int = 0
    ) -> PairwiseStepJudge:
        """The judge ``config`` describes. ``solve_few_shot`` is the few-shot count of the prompt the
        judged steps were generated after; ``config.solve_few_shot``, when set, overrides it."""
        few_shot = solve_few_shot if config.solve_few_shot is None else config.solve_few_shot
        return cls(
            model, mode=config.mode, debias=config.debias, batch_size=config.batch_size,
            max_new_tokens=config.max_new_tokens, solve_few_shot=few_shot, seed=seed,
        )

    # -- prompts -----------------------------------------------------------------------------------

    def judge_prompt(self, comparison: StepComparison) -> str:
        """The full judge prompt for one ordered comparison (chat template applied for a Generator)."""
        message = pairwise_step_message(
            comparison.question, comparison.previous_steps, comparison.step_a, comparison.step_b
        )
        return self.generator.format_prompt(message) if self.generator is not None else message

    def fitted_prompt(self, comparison: StepComparison) -> tuple[str | None, int]:
        """(the judge prompt that fits the model's context, previous steps left out of it).

        The question, both candidates and the instruction always stay; when the whole prompt leaves
        less room than the verdict needs (``max_new_tokens`` in ``generate`` mode, one token after
        ``"[["`` in ``logprob`` mode), the earliest previous steps are left out, as few as fit, and
        an elision marker stands in their place: the latest steps matter most for the next one.
        ``(None, 0)`` when even no previous step fits."""
        full = self.judge_prompt(comparison)
        if not self.budget.bounded:
            return full, 0
        suffix = VERDICT_OPENING if self.mode == "logprob" else ""
        reserve = self.max_new_tokens if self.mode == "generate" else 1
        previous = list(comparison.previous_steps)

        def keeping(k: int) -> str:  # the prompt with only the last k previous steps
            kept = previous[len(previous) - k :] if k else []
            message = pairwise_step_message(
                comparison.question, kept, comparison.step_a, comparison.step_b, omitted=len(previous) - k
            )
            return self.generator.format_prompt(message) if self.generator is not None else message

        if self.budget.fits(full + suffix, reserve):
            return full, 0
        if not previous or not self.budget.fits(keeping(0) + suffix, reserve):
            return None, 0
        low, high = 0, len(previous) - 1  # the most steps that fit: fitting is monotone in k
        while low < high:
            mid = (low + high + 1) // 2
            if self.budget.fits(keeping(mid) + suffix, reserve):
                low = mid
            else:
                high = mid - 1
        return keeping(low), len(previous) - low

    def solving_prefix(self, comparison: StepComparison) -> str:
        """``likelihood`` mode: the solving prompt, the previous steps and the next ``Step l:`` marker.

        The marker's trailing space is left to the scored text (``" " + body``), as the step search
        generates it: the prompt then ends on a token boundary that the model has seen in training."""
        prompt = solve_prompt(self.generator, comparison.question, few_shot=self.solve_few_shot)
        return prompt + next_step_prefix(comparison.previous_steps).removesuffix(" ")

    # -- StepJudge -----------------------------------------------------------------------------------

    def compare(self, comparisons: Sequence[StepComparison]) -> list[PairVerdict]:
        """One verdict per comparison, in order; all of them judged in as few model calls as the
        ``batch_size`` allows (one by default). Never raises on unparsable output (-1, counted)."""
        comparisons = list(comparisons)
        if not comparisons:
            return []
        self.stats.comparisons += len(comparisons)
        if self.mode == "likelihood":
            return self._compare_likelihood(comparisons)
        orders = [(c, False) for c in comparisons]
        if self.debias:
            orders += [(c, True) for c in comparisons]
        views = [
            StepComparison(c.question, c.previous_steps, c.step_b, c.step_a) if swap else c
            for c, swap in orders
        ]
        # Identical judge prompts are judged once: a caller that already sends both orders of a pair
        # (the step search does) costs no more with debias on, and the verdict is deterministic anyway.
        prompts = [self.judge_prompt(v) for v in views]
        # Each distinct prompt is fitted to the context once (fitting can only shorten it).
        fitted: dict[str, str | None] = {}
        for prompt, view in zip(prompts, views, strict=True):
            if prompt not in fitted:
                fitted[prompt], omitted = self.fitted_prompt(view) if self.budget.bounded else (prompt, 0)
                if fitted[prompt] is None:
                    self.stats.skipped_too_long += 1
                elif omitted:
                    self.stats.elided_prompts += 1
                    self.stats.elided_steps += omitted
        unique = list(dict.fromkeys(f for f in fitted.values() if f is not None))
        at = {p: i for i, p in enumerate(unique)}
        self.stats.judgments += len(unique)
        if not unique:
            p_unique, raw_unique = [], []
        elif self.mode == "logprob":
            p_unique, raw_unique = self._logprob_first(unique), [None] * len(unique)
        else:
            p_unique, raw_unique = self._generate_first(unique)
        p_first = [None if fitted[p] is None else p_unique[at[fitted[p]]] for p in prompts]
        raws = [None if fitted[p] is None else raw_unique[at[fitted[p]]] for p in prompts]
        n = len(comparisons)
        out = []
        for k in range(n):
            # P(step_a better) per order: in the swapped view step_a is shown second.
            p_orders = [p_first[k]]
            raw = [raws[k]]
            if self.debias:
                p_b_first = p_first[n + k]
                p_orders.append(None if p_b_first is None else 1.0 - p_b_first)
                raw.append(raws[n + k])
            out.append(self._combine(p_orders, raw))
        return out

    def _combine(self, p_orders: list[float | None], raw: list[str | None]) -> PairVerdict:
        answered = [p for p in p_orders if p is not None]
        extra: dict[str, Any] = {"p_a": None, "orders": p_orders, "consistent": None}
        raw_text = raw[0]
        if len(raw) == 2 and any(r is not None for r in raw):  # generate mode: both orders' outputs
            raw_text = "\n=====\n".join(r or "" for r in raw)
        if not answered:
            self.stats.failures += 1
            return PairVerdict(-1, None, raw_text, extra)
        p_a = sum(answered) / len(answered)
        extra["p_a"] = p_a
        if len(answered) == 2:
            self.stats.both_orders += 1
            first, second = (p > 0.5 if p != 0.5 else None for p in answered)
            extra["consistent"] = first is not None and first == second
            if not extra["consistent"]:
                self.stats.inconsistent += 1
        if p_a == 0.5:
            self.stats.ties += 1
            extra["tie"] = True
            return PairVerdict(-1, 0.5 if self.mode == "logprob" else None, raw_text, extra)
        verdict = 0 if p_a > 0.5 else 1
        # generate mode has votes, not a probability: p_a (the share of orders for step_a) stays in extra
        probability = max(p_a, 1.0 - p_a) if self.mode == "logprob" else None
        return PairVerdict(verdict, probability, raw_text, extra)

    def _chunks(self, items: list[Any]) -> list[list[Any]]:
        size = self.batch_size or max(len(items), 1)
        return [items[i : i + size] for i in range(0, len(items), size)]

    def _logprob_first(self, prompts: list[str]) -> list[float | None]:
        """P(the step shown first is better) per judge prompt, from the A/B token log-probabilities."""
        assert self.generator is not None
        out: list[float | None] = []
        # A backend that can read several next-token log-probs off one forward pass saves half the
        # work (the A and B rows share their prompt); any Generator can do it with two score rows.
        next_token = getattr(self.generator, "next_token_logprobs", None)
        for chunk in self._chunks(prompts):
            self.stats.model_calls += 1
            if callable(next_token):
                rows = next_token([p + VERDICT_OPENING for p in chunk], list(VERDICT_LABELS))
                pairs = [(row[0], row[1]) for row in rows]
            else:
                scored_prompts = [p + VERDICT_OPENING for p in chunk for _ in VERDICT_LABELS]
                continuations = [label for _ in chunk for label in VERDICT_LABELS]
                scores = self.generator.score(scored_prompts, continuations)
                pairs = [(sum(scores[2 * k]), sum(scores[2 * k + 1])) for k in range(len(chunk))]
            for lp_a, lp_b in pairs:
                if not (math.isfinite(lp_a) or math.isfinite(lp_b)):
                    out.append(None)
                    continue
                out.append(_sigmoid(lp_a - lp_b) if math.isfinite(lp_a - lp_b) else float(lp_a > lp_b))
        return out

    def _generate_first(self, prompts: list[str]) -> tuple[list[float | None], list[str | None]]:
        """(1.0 / 0.0 / None per prompt for first shown better / second / unparsable, raw outputs)."""
        texts: list[str] = []
        for chunk in self._chunks(prompts):
            self.stats.model_calls += 1
            if self.callable is not None:
                texts += self.callable.outputs(chunk)
                continue
            assert self.generator is not None
            # Stopping at "]]" saves the tokens a model spends after its verdict; the stop string is
            # cut from the text, so it is put back for the parser.
            params = GenerationParams(max_new_tokens=self.max_new_tokens, temperature=0.0, stop=["]]"])
            for row in self.generator.generate(chunk, n=1, params=params):
                c = row[0]
                texts.append(c.text + (c.stop_string or ""))
        probs: list[float | None] = []
        for text in texts:
            verdict = parse_verdict(text)
            if verdict == -1:
                self.stats.unparsable += 1
                probs.append(None)
            else:
                probs.append(1.0 if verdict == 0 else 0.0)
        return probs, list(texts)

    def _compare_likelihood(self, comparisons: list[StepComparison]) -> list[PairVerdict]:
        assert self.generator is not None
        # Each distinct (prefix, step) is scored once, however many comparisons it appears in.
        keys: list[tuple[str, str] | None] = []
        too_long: set[tuple[str, str]] = set()
        for c in comparisons:
            prefix = self.solving_prefix(c)
            for step in (c.step_a, c.step_b):
                body = step_body(step)
                key = (prefix, " " + body) if body else None  # an empty step loses (mean -inf)
                if key is not None and key not in too_long and not self.budget.fits(prefix + key[1], 0):
                    too_long.add(key)
                keys.append(key)
        self.stats.skipped_too_long += len(too_long)
        unique = list(dict.fromkeys(k for k in keys if k is not None and k not in too_long))
        self.stats.judgments += len(unique)
        mean_of: dict[tuple[str, str], float] = {}
        for chunk in self._chunks(unique):
            self.stats.model_calls += 1
            scores = self.generator.score([k[0] for k in chunk], [k[1] for k in chunk])
            for key, lps in zip(chunk, scores, strict=True):
                mean_of[key] = sum(lps) / len(lps) if lps else -math.inf
        means = [
            [mean_of[k] if k is not None and k not in too_long else -math.inf for k in keys[2 * i : 2 * i + 2]]
            for i in range(len(comparisons))
        ]
        out = []
        for i, (mean_a, mean_b) in enumerate(means):
            extra: dict[str, Any] = {"mean_logprob": [mean_a, mean_b], "consistent": None}
            if any(k in too_long for k in keys[2 * i : 2 * i + 2] if k is not None):
                self.stats.failures += 1  # a step that cannot be scored in the context: no verdict
                out.append(PairVerdict(-1, None, None, {**extra, "p_a": None, "too_long": True}))
                continue
            if mean_a == mean_b:  # equal, or both empty
                self.stats.ties += 1
                extra.update(p_a=0.5, tie=True)
                out.append(PairVerdict(-1, 0.5, None, extra))
                continue
            diff = mean_a - mean_b
            p_a = _sigmoid(diff) if math.isfinite(diff) else float(diff > 0)
            extra["p_a"] = p_a
            verdict = 0 if diff > 0 else 1
            out.append(PairVerdict(verdict, max(p_a, 1.0 - p_a), None, extra))
        return out

    # -- TRL-style pairwise judge --------------------------------------------------------------------

    def judge(
        self,
        prompts: list[str],
        completions: list[list[str]],
        shuffle_order: bool = True,
        previous_steps: list[list[str]] | None = None,
    ) -> list[int]:
        """TRL's ``BasePairwiseJudge.judge`` signature: for each prompt, the index (0 or 1) of the better
        of its two completions, -1 when the judge failed or tied.

        ``prompts[i]`` is the question; ``completions[i]`` the two candidate next steps;
        ``previous_steps[i]`` the steps so far (default: none, i.e. each completion is judged as a
        first step, which for whole answers means the whole answer). ``shuffle_order`` randomly swaps
        each pair before judging (and maps the answer back), as TRL's judges did against position bias;
        with ``debias`` both orders are judged anyway, so it changes nothing then.
        """
        if len(prompts) != len(completions):
            raise ValueError(f"judge: {len(prompts)} prompts but {len(completions)} completion pairs")
        if any(len(pair) != 2 for pair in completions):
            raise ValueError("judge: each entry of completions must hold exactly two completions")
        previous = previous_steps or [[] for _ in prompts]
        flips = [shuffle_order and not self.debias and self._rng.random() < 0.5 for _ in prompts]
        comparisons = [
            StepComparison(q, list(prev), *(reversed(pair) if flip else pair))
            for q, pair, prev, flip in zip(prompts, completions, previous, flips, strict=True)
        ]
        verdicts = self.compare(comparisons)
        return [
            v.verdict if v.verdict == -1 or not flip else 1 - v.verdict
            for v, flip in zip(verdicts, flips, strict=True)
        ]


# ---------------------------------------------------------------------------------------------------
# TRL GRPO reward function


def _as_text(item: Any) -> str:
    """A completion or prompt as text: a string as is; a conversation (list of messages) as the
    content of its last message (the completion, or the user's question)."""
    if isinstance(item, str):
        return item
    if isinstance(item, list) and item and isinstance(item[-1], dict):
        content = item[-1].get("content", "")
        if isinstance(content, list):  # multimodal content parts
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    return "" if item is None else str(item)


class StepJudgeReward:
    """A reward function for TRL's ``GRPOTrainer(reward_funcs=...)``, built by :func:`as_reward_func`.

    Called as ``reward(prompts, completions, **kwargs) -> list[float | None]`` with one reward per
    completion. TRL passes the dataset's other columns as keyword lists; this reads
    ``question_column`` and ``previous_steps_column`` when present (else the question is the prompt's
    text and there are no previous steps) and ``reference_column`` when configured.

    Score: **win rate within the group**. Completions with the same prompt, question and previous
    steps form a group (GRPO's ``num_generations`` samples of one prompt; when the same prompt was
    drawn twice into one batch, its two groups merge, which only adds opponents). With ``group_size``
    set (use GRPO's ``num_generations``), groups are instead the consecutive blocks of that size, as
    TRL lays the batch out. Every unordered pair in a group is judged once, which with ``debias``
    means both orders, i.e. the paper's ``w(w-1)`` ordered judgments. A completion's reward is the mean over its opponents of ``P(it is better)`` (1/0 in
    ``generate`` mode, 0.5 for a tie), in [0, 1]; failed comparisons are left out of the mean.
    A completion alone in its group, or whose every comparison failed, gets None (TRL: NaN).
    With ``reference_column``: the reward is instead ``P(completion better than the reference)``.
    Every call makes one ``judge.compare`` call (all groups batched). When TRL passes ``log_metric``,
    the batch's judge consistency and failure rate are logged as ``step_judge/consistency`` and
    ``step_judge/failure_rate``.
    """

    def __init__(
        self,
        judge: PairwiseStepJudge,
        question_column: str = "question",
        previous_steps_column: str = "previous_steps",
        reference_column: str | None = None,
        name: str = "step_judge",
        group_size: int | None = None,
    ):
        if group_size is not None and group_size < 1:
            raise ValueError(f"group_size must be at least 1, got {group_size}")
        self.judge = judge
        self.group_size = group_size
        self.question_column = question_column
        self.previous_steps_column = previous_steps_column
        self.reference_column = reference_column
        self.__name__ = name  # TRL names the reward's log columns after it

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        n = len(completions)
        questions = kwargs.get(self.question_column) or [_as_text(p) for p in prompts]
        previous = kwargs.get(self.previous_steps_column) or [[] for _ in range(n)]
        texts = [_as_text(c) for c in completions]
        if len(questions) != n or len(previous) != n:
            raise ValueError(
                "reward function: the question/previous-steps columns do not match the completions"
            )
        before = self.judge.stats.as_dict()
        if self.reference_column is not None:
            references = kwargs.get(self.reference_column)
            if references is None:
                raise ValueError(f"reward function: no {self.reference_column!r} column in the batch")
            comparisons = [
                StepComparison(str(questions[i]), list(previous[i] or []), texts[i], _as_text(references[i]))
                for i in range(n)
            ]
            rewards: list[float | None] = [v.extra.get("p_a") for v in self.judge.compare(comparisons)]
        else:
            rewards = self._group_win_rates(prompts, questions, previous, texts)
        self._log(kwargs.get("log_metric"), before)
        return rewards

    def _group_win_rates(
        self, prompts: list[Any], questions: list[Any], previous: list[Any], texts: list[str]
    ) -> list[float | None]:
        groups: dict[Any, list[int]] = {}
        for i in range(len(texts)):
            if self.group_size is not None:
                key: Any = i // self.group_size
            else:
                key = (_as_text(prompts[i]), str(questions[i]), tuple(previous[i] or []))
            groups.setdefault(key, []).append(i)
        pairs = [(g[x], g[y]) for g in groups.values() for x in range(len(g)) for y in range(x + 1, len(g))]
        comparisons = [
            StepComparison(str(questions[i]), list(previous[i] or []), texts[i], texts[j]) for i, j in pairs
        ]
        verdicts = self.judge.compare(comparisons)
        wins: list[list[float]] = [[] for _ in texts]
        for (i, j), v in zip(pairs, verdicts, strict=True):
            p_a = v.extra.get("p_a")
            if p_a is None:
                continue
            wins[i].append(p_a)
            wins[j].append(1.0 - p_a)
        return [sum(w) / len(w) if w else None for w in wins]

    def _log(self, log_metric: Callable[[str, float], None] | None, before: dict[str, int]) -> None:
        if log_metric is None:
            return
        now = self.judge.stats.as_dict()
        delta = {k: now[k] - before[k] for k in now}
        if delta["comparisons"]:
            log_metric("step_judge/failure_rate", delta["failures"] / delta["comparisons"])
            if delta["both_orders"]:
                log_metric("step_judge/consistency", 1.0 - delta["inconsistent"] / delta["both_orders"])


def as_reward_func(
    judge: PairwiseStepJudge,
    question_column: str = "question",
    previous_steps_column: str = "previous_steps",
    reference_column: str | None = None,
    name: str = "step_judge",
    group_size: int | None = None,
) -> StepJudgeReward:
    """A TRL GRPO reward function ``(prompts, completions, **kwargs) -> list[float | None]`` backed by
    ``judge`` (see :class:`StepJudgeReward` for how the score is derived)."""
    return StepJudgeReward(judge, question_column, previous_steps_column, reference_column, name, group_size)


__all__ = ["MODES", "JudgeStats", "PairwiseStepJudge", "StepJudgeReward", "as_reward_func"]
