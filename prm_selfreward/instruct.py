"""Instruction-level self-rewarding (Yuan et al. 2024, arXiv 2401.10020), one iteration's data stage.

The algorithm, as DESIGN.md section 1 gives it, one function per step:

1. :func:`generate_prompts` - new prompts, few-shot from seed prompts (8-shot: 6 seed + 2 already
   generated, T=0.6, top_p=0.9), filtered for duplicates, near-duplicates (ROUGE-L), copies of a
   seed and length. For math the seeds are training problems and the new prompts new problems.
2. :func:`sample_responses` - N candidate responses per prompt (4, T=0.7, top_p=0.9), one batched call.
3. :class:`~prm_selfreward.judges.pointwise.PointwiseJudge` - the model scores its own responses with
   the additive 5-point prompt, 3 samples averaged.
4. :func:`build_preference_pairs` - highest vs lowest mean score; ties and prompts with fewer than two
   scored responses are discarded.

:func:`run_instruct_iteration` chains them; the iteration loop calls it as one stage and trains DPO on
the pairs (whole responses, EOS kept: :func:`dpo_records`).
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import Indel

from .config import option
from .judges.pointwise import PointwiseJudge, PointwiseJudgeConfig, ScoreResult
from .models.base import GenerationParams, Generator
from .prompts import SOLUTION_STOP, solve_prompt
from .records import PreferencePair
from .train.config import DPOTrainConfig

# --------------------------------------------------------------------------------------------------
# 1. Self-instruction creation


@dataclass
class SelfInstructConfig:
    instruction: str = option(
        "Below are some math problems. Write one new problem of the same kind that is different from all "
        "of them. It must be self-contained and have a single final answer.",
        help="The header of the few-shot prompt (for general instructions, e.g. 'Below are some tasks ...').",
    )
    label: str = option("Problem", help="Each example is written as '<label> <k>: <text>'.")
    n_seed_shots: int = option(6, help="Seed prompts shown per few-shot prompt (the paper: 6).")
    n_generated_shots: int = option(
        2,
        help="Previously generated prompts shown per few-shot prompt (the paper: 2); seeds fill in until "
        "enough have been generated.",
    )
    temperature: float = option(0.6, help="Sampling temperature for new prompts (the paper: 0.6).")
    top_p: float = option(0.9, help="Nucleus sampling for new prompts (the paper: 0.9).")
    max_new_tokens: int = option(
        160, help="Token budget of one new prompt; a prompt that hits it is dropped."
    )
    samples_per_prompt: int = option(8, help="Samples drawn per few-shot prompt (n of the generate call).")
    max_prompts_per_call: int = option(32, help="Few-shot prompts sent in one batched generate call.")
    oversample: float = option(
        2.0, help="Ask for this many times the prompts still needed per round (filters reject many)."
    )
    max_rounds: int = option(8, help="Generate calls before giving up with fewer prompts than asked.")
    drop_truncated: bool = option(
        True, help="Drop prompts that hit max_new_tokens (likely cut mid-sentence)."
    )
    min_words: int = option(4, help="Shorter prompts (in words) are dropped.")
    max_words: int = option(200, help="Longer prompts (in words) are dropped.")
    max_rouge_l: float = option(
        0.7,
        help="Near-duplicate threshold: ROUGE-L F1 >= this against a seed or a kept prompt (Self-Instruct: 0.7).",
    )
    seed: int = option(0, help="Seed for choosing the few-shot examples and sampling.")


FILTER_REASONS = (
    "empty",
    "truncated",
    "too_short",
    "too_long",
    "copies_seed",
    "near_duplicate_seed",
    "duplicate",
    "near_duplicate",
)


@dataclass
class FilterStats:
    """What happened to every sampled prompt: ``generated == kept + sum(rejected) + unused``."""

    generated: int = 0
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    unused: int = 0
    """Prompts that passed the filters after the target was already reached."""
    calls: int = 0

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated": self.generated,
            "kept": self.kept,
            "rejected": {r: self.rejected.get(r, 0) for r in FILTER_REASONS},
            "unused": self.unused,
            "calls": self.calls,
        }


_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def rouge_tokens(text: str) -> list[str]:
    """Tokens as rouge-score's default tokenizer makes them: lower case, runs of [a-z0-9] (no stemming)."""
    return _NON_ALNUM.sub(" ", text.lower()).split()


def rouge_l(a: Sequence[str], b: Sequence[str]) -> float:
    """ROUGE-L F1 of two token lists.

    With LCS length l, P = l/|a| and R = l/|b|, so F1 = 2l/(|a|+|b|), which is exactly rapidfuzz's
    normalised Indel similarity (Indel distance = |a|+|b|-2l), computed in C++.
    """
    return float(Indel.normalized_similarity(a, b))


def _normalise(text: str) -> str:
    return " ".join(text.split()).lower()


class _TokenCodec:
    """Maps each distinct token to one character, so a token list becomes a string: rapidfuzz's
    string path is about 5x faster than its path for lists of strings, and LCS over the characters is
    LCS over the tokens."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def encode(self, tokens: Sequence[str]) -> str:
        chars = []
        for token in tokens:
            code = 0x100 + self.ids.setdefault(token, len(self.ids))
            if code >= 0xD800:  # skip the surrogate block: not valid characters on their own
                code += 0x800
            chars.append(chr(code))
        return "".join(chars)


class _Pool:
    """Kept prompts: exact (normalised text) and ROUGE-L near-duplicate lookups, one at a time (the
    pool grows as candidates are accepted)."""

    def __init__(self, codec: _TokenCodec):
        self.codec = codec
        self.keys: set[str] = set()
        self.encoded: list[str] = []

    def add(self, text: str) -> None:
        self.keys.add(_normalise(text))
        self.encoded.append(self.codec.encode(rouge_tokens(text)))

    def __contains__(self, text: str) -> bool:
        return _normalise(text) in self.keys

    def near(self, encoded: str, threshold: float) -> bool:
        """Whether some member has ROUGE-L F1 >= ``threshold`` with the encoded token string."""
        if not self.encoded or not encoded:
            return False
        hit = process.extractOne(
            encoded, self.encoded, scorer=Indel.normalized_similarity, score_cutoff=threshold
        )
        return hit is not None


class _SeedIndex:
    """The seed prompts, indexed for the copy and near-duplicate filters of a whole round at once
    (seeds do not change, so a round's candidates are checked against them in one batched call)."""

    _PREFIX = 4  # words that index a seed for "the candidate contains this seed"

    def __init__(self, codec: _TokenCodec, seeds: Sequence[str]):
        self.codec = codec
        self.keys = [_normalise(s) for s in seeds]
        # One substring search finds a candidate inside any seed (padded: whole words only).
        self.joined = "\n".join(f" {key} " for key in self.keys)
        self.by_prefix: dict[tuple[str, ...], list[str]] = {}
        for key in self.keys:
            self.by_prefix.setdefault(tuple(key.split()[: self._PREFIX]), []).append(key)
        self.encoded = [codec.encode(rouge_tokens(s)) for s in seeds]

    def copies(self, text: str) -> bool:
        """Equal to a seed, a piece of one, or containing a whole seed (on word boundaries)."""
        norm = _normalise(text)
        if f" {norm} " in self.joined:
            return True
        words = norm.split()
        for i in range(len(words)):
            for key in self.by_prefix.get(tuple(words[i : i + self._PREFIX]), ()):
                if f" {key} " in f" {norm} ":
                    return True
        return False

    def near(self, encoded: Sequence[str], threshold: float) -> list[bool]:
        """For each encoded candidate: ROUGE-L F1 >= ``threshold`` with some seed."""
        if not encoded:
            return []
        scores = process.cdist(
            encoded, self.encoded, scorer=Indel.normalized_similarity, score_cutoff=threshold, workers=-1
        )
        return [bool(row.max() >= threshold) for row in scores]


def few_shot_message(examples: Sequence[str], config: SelfInstructConfig) -> str:
    """The few-shot prompt: header, numbered examples, then the open slot for the next one."""
    lines = [config.instruction.strip(), ""]
    for k, text in enumerate(examples, start=1):
        lines += [f"{config.label} {k}: {' '.join(text.split())}", ""]
    lines.append(f"{config.label} {len(examples) + 1}:")
    return "\n".join(lines)


def _clean_candidate(text: str, label: str) -> str:
    text = text.strip()
    # A chat model may repeat the slot's label ("Problem 9: ...") before the prompt itself.
    text = re.sub(rf"^{re.escape(label)}\s*\d*\s*:\s*", "", text, flags=re.IGNORECASE)
    return text.strip()


def _seed_filter(
    texts: Sequence[str], finish_reasons: Sequence[str], seeds: _SeedIndex, config: SelfInstructConfig
) -> list[str | None]:
    """The filters that do not depend on the prompts kept so far, for a round's candidates at once."""
    reasons: list[str | None] = []
    for text, finish in zip(texts, finish_reasons, strict=True):
        words = len(text.split())
        if not text:
            reasons.append("empty")
        elif finish == "length" and config.drop_truncated:
            reasons.append("truncated")
        elif words < config.min_words:
            reasons.append("too_short")
        elif words > config.max_words:
            reasons.append("too_long")
        elif seeds.copies(text):
            reasons.append("copies_seed")
        else:
            reasons.append(None)
    todo = [i for i, r in enumerate(reasons) if r is None]
    near = seeds.near([seeds.codec.encode(rouge_tokens(texts[i])) for i in todo], config.max_rouge_l)
    for i, is_near in zip(todo, near, strict=True):
        if is_near:
            reasons[i] = "near_duplicate_seed"
    return reasons


def generate_prompts(
    generator: Generator, seed_prompts: Sequence[str], n_new: int, config: SelfInstructConfig | None = None
) -> tuple[list[str], FilterStats]:
    """Generate up to ``n_new`` new prompts few-shot from ``seed_prompts``; returns them and the counts.

    Each round sends one batched generate call: several few-shot prompts (each with ``n_seed_shots``
    random seeds and ``n_generated_shots`` prompts kept so far, shuffled), ``samples_per_prompt`` samples
    each. A candidate is dropped, first reason wins, when it is empty, hit the token budget
    (``truncated``), is too short or long, equals or contains a seed (``copies_seed``), has ROUGE-L >=
    ``max_rouge_l`` against a seed (``near_duplicate_seed``), equals a kept prompt (``duplicate``) or is
    that close to one (``near_duplicate``). Returns fewer than ``n_new`` when ``max_rounds`` run out.
    """
    config = config or SelfInstructConfig()
    seeds = [s.strip() for s in seed_prompts if s and s.strip()]
    if not seeds:
        raise ValueError("generate_prompts: no seed prompts")
    rng = random.Random(config.seed)
    codec = _TokenCodec()
    seed_index = _SeedIndex(codec, seeds)
    kept_pool = _Pool(codec)
    kept: list[str] = []
    stats = FilterStats()
    params = GenerationParams(
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        top_p=config.top_p,
        stop=[f"\n{config.label} ", "\n\n"],
        seed=config.seed,
    )
    shots = config.n_seed_shots + config.n_generated_shots
    for round_index in range(config.max_rounds):
        if len(kept) >= n_new:
            break
        needed = n_new - len(kept)
        n_calls = math.ceil(needed * config.oversample / config.samples_per_prompt)
        n_calls = max(1, min(config.max_prompts_per_call, n_calls))
        messages = []
        for _ in range(n_calls):
            generated = rng.sample(kept, min(config.n_generated_shots, len(kept)))
            from_seeds = rng.sample(seeds, min(len(seeds), shots - len(generated)))
            examples = from_seeds + generated
            rng.shuffle(examples)
            messages.append(generator.format_prompt(few_shot_message(examples, config)))
        if params.seed is not None:
            params.seed = config.seed + round_index
        outputs = generator.generate(messages, n=config.samples_per_prompt, params=params)
        stats.calls += 1
        completions = [c for row in outputs for c in row]
        texts = [_clean_candidate(c.text, config.label) for c in completions]
        reasons = _seed_filter(texts, [c.finish_reason for c in completions], seed_index, config)
        stats.generated += len(texts)
        for text, reason in zip(texts, reasons, strict=True):
            if reason is None and text in kept_pool:
                reason = "duplicate"
            elif reason is None and kept_pool.near(codec.encode(rouge_tokens(text)), config.max_rouge_l):
                reason = "near_duplicate"
            if reason is not None:
                stats.reject(reason)
            elif len(kept) >= n_new:
                stats.unused += 1
            else:
                kept.append(text)
                kept_pool.add(text)
    stats.kept = len(kept)
    return kept, stats


# --------------------------------------------------------------------------------------------------
# 2. Candidate responses


def response_prompt(generator: Generator | None, prompt: str, task: str = "math", few_shot: int = 0) -> str:
    """The text a response is generated after: the step-format solving prompt for ``task="math"``,
    the prompt through the model's chat template for ``task="general"``."""
    if task == "math":
        return solve_prompt(generator, prompt, few_shot)
    if task == "general":
        return generator.format_prompt(prompt) if generator is not None else prompt
    raise ValueError(f"unknown task {task!r} (expected 'math' or 'general')")


def sample_responses(
    generator: Generator,
    prompts: Sequence[str],
    n: int = 4,
    temperature: float = 0.7,
    top_p: float = 0.9,
    max_new_tokens: int = 256,
    task: str = "math",
    few_shot: int = 0,
    seed: int | None = None,
) -> list[list[str]]:
    """``n`` sampled responses per prompt, in one batched generate call, in prompt order."""
    if not prompts:
        return []
    stop = list(SOLUTION_STOP) if task == "math" else []
    params = GenerationParams(
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, stop=stop, seed=seed
    )
    texts = [response_prompt(generator, p, task, few_shot) for p in prompts]
    outputs = generator.generate(texts, n=n, params=params)
    return [[c.text.strip() for c in row] for row in outputs]


# --------------------------------------------------------------------------------------------------
# 4. Preference pairs


@dataclass
class PairStats:
    prompts: int = 0
    pairs: int = 0
    ties: int = 0
    """Prompts whose highest and lowest mean scores are equal (the paper discards them)."""
    too_few_scores: int = 0
    """Prompts with fewer than two responses that received a valid score."""
    identical_responses: int = 0
    """Prompts whose best and worst responses are the same text (no preference to learn)."""
    mean_chosen: float | None = None
    mean_rejected: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _mean_of(score: ScoreResult | float | None) -> float | None:
    return score.mean if isinstance(score, ScoreResult) else score


def build_preference_pairs(
    prompts: Sequence[str],
    responses: Sequence[Sequence[str]],
    scores: Sequence[Sequence[ScoreResult | float | None]],
    prompt_ids: Sequence[str] | None = None,
    questions: Sequence[str] | None = None,
) -> tuple[list[PreferencePair], PairStats]:
    """One pair per prompt: the highest-scored response (chosen) against the lowest (rejected).

    ``scores[i][j]`` is response j's mean score (a :class:`ScoreResult` or a number; ``None`` for no
    valid score). Responses without a score are ignored; a prompt with fewer than two scored responses,
    or whose best and worst scores tie, or whose best and worst are the same text, gives no pair (each
    counted). Among equal best (or worst) scores the first response wins, so the result is
    deterministic. ``prompt`` of each pair is ``prompts[i]`` verbatim: pass the exact text the responses
    were generated after, so DPO trains on the context the model saw.
    """
    if not (len(prompts) == len(responses) == len(scores)):
        raise ValueError("build_preference_pairs: prompts, responses and scores differ in length")
    stats = PairStats(prompts=len(prompts))
    pairs: list[PreferencePair] = []
    for i, (prompt, row, row_scores) in enumerate(zip(prompts, responses, scores, strict=True)):
        if len(row) != len(row_scores):
            raise ValueError(f"prompt {i}: {len(row)} responses but {len(row_scores)} scores")
        valid = [(j, m) for j, s in enumerate(row_scores) if (m := _mean_of(s)) is not None]
        if len(valid) < 2:
            stats.too_few_scores += 1
            continue
        best = max(valid, key=lambda item: item[1])
        worst = min(valid, key=lambda item: item[1])
        if best[1] == worst[1]:
            stats.ties += 1
            continue
        if row[best[0]].strip() == row[worst[0]].strip():
            stats.identical_responses += 1
            continue
        metadata: dict[str, Any] = {"scores": [_mean_of(s) for s in row_scores]}
        if questions is not None:
            metadata["question"] = questions[i]
        pairs.append(
            PreferencePair(
                prompt=prompt,
                chosen=row[best[0]],
                rejected=row[worst[0]],
                chosen_score=best[1],
                rejected_score=worst[1],
                prompt_id=prompt_ids[i] if prompt_ids is not None else str(i),
                metadata=metadata,
            )
        )
    stats.pairs = len(pairs)
    if pairs:
        stats.mean_chosen = sum(p.chosen_score for p in pairs) / len(pairs)
        stats.mean_rejected = sum(p.rejected_score for p in pairs) / len(pairs)
    return pairs, stats


def dpo_records(pairs: Sequence[PreferencePair]) -> list[dict[str, Any]]:
    """Rows for the DPO trainer: standard DPO on whole responses, so ``is_final_step=True`` (EOS kept)."""
    return [
        {
            "prompt": p.prompt,
            "chosen": p.chosen,
            "rejected": p.rejected,
            "chosen_score": p.chosen_score,
            "rejected_score": p.rejected_score,
            "is_final_step": True,
        }
        for p in pairs
    ]


# --------------------------------------------------------------------------------------------------
# The whole data stage of one iteration


@dataclass
class InstructDPOConfig(DPOTrainConfig):
    """DPO of the instruction-level method (Yuan et al. 2024): its own learning rate, not step-DPO's."""

    learning_rate: float = option(
        1e-6, minimum=0.0, exclusive_minimum=True, help="Peak learning rate (Yuan et al.: 1e-6)."
    )
    beta: float = option(0.1, minimum=0.0, exclusive_minimum=True, help="DPO beta (Yuan et al.: 0.1).")


@dataclass
class InstructIterationConfig:
    n_prompts: int = option(64, minimum=1, help="New prompts to create per iteration.")
    prompt_model: str | None = option(
        None,
        help="Who writes the new prompts: none, the model being trained (self-instruct); or a fixed model "
        "(a model spec), as in the paper's main setting (Llama 2-Chat 70B, 8-shot).",
    )
    n_responses: int = option(4, minimum=2, help="Candidate responses per prompt (the paper: 4).")
    response_temperature: float = option(0.7, help="Sampling temperature of the candidates (the paper: 0.7).")
    response_top_p: float = option(0.9, help="Nucleus sampling of the candidates (the paper: 0.9).")
    response_max_new_tokens: int = option(256, minimum=1, help="Token budget of one candidate response.")
    task: str = option("math", choices=("math", "general"), help="'math': step-format solving prompt; 'general': the prompt as is.")
    response_few_shot: int = option(0, minimum=0, help="Worked examples before a math prompt (base models need ~3).")
    self_instruct: SelfInstructConfig = option(
        default_factory=SelfInstructConfig, help="Self-instruction creation (few-shot new prompts)."
    )
    judge: PointwiseJudgeConfig = option(
        default_factory=PointwiseJudgeConfig, help="The pointwise 5-point judge (samples averaged)."
    )
    seed: int = option(0, help="Seed of the response sampling (the prompt and judge stages have their own).")
    dpo: InstructDPOConfig = option(
        default_factory=InstructDPOConfig,
        help="DPO of M(t) into M(t+1) for task instruct (the top-level dpo section is the math task's step-DPO).",
    )


@dataclass
class InstructIterationStats:
    prompts_requested: int = 0
    prompts_generated: int = 0
    prompts_kept: int = 0
    prompt_filters: dict[str, Any] = field(default_factory=dict)
    responses: int = 0
    judge_samples: int = 0
    unparsable_scores: int = 0
    """Judge samples whose score could not be read (excluded from the means)."""
    unscored_responses: int = 0
    """Responses with no parsable judge sample at all."""
    mean_score: float | None = None
    """Mean over the responses that received a score."""
    pairs: int = 0
    ties: int = 0
    too_few_scores: int = 0
    identical_responses: int = 0
    model_calls: int = 0
    generated_tokens: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Intermediate records, kept off the dataclass fields so ``asdict``/``to_dict`` gives only the
        # small numbers a manifest or report holds.
        self.prompts: list[str] = []
        """The kept prompts (for ``problems.jsonl``)."""
        self.judgments: list[dict[str, Any]] = []
        """One row per response: prompt, response, score, samples, raw judge outputs."""

    def summary(self) -> dict[str, Any]:
        """The small numbers a report shows (``dataclasses.asdict`` gives the same)."""
        return dataclasses.asdict(self)


def run_instruct_iteration(
    generator: Generator,
    seed_prompts: Sequence[str],
    config: InstructIterationConfig | None = None,
    new_prompts: tuple[list[str], FilterStats] | None = None,
) -> tuple[list[PreferencePair], InstructIterationStats]:
    """New prompts -> candidate responses -> self-judged scores -> preference pairs, with ``generator``
    as the model being trained, the prompt author and the judge (the self-rewarding setting).

    ``new_prompts``: prompts another model already wrote (``config.prompt_model``, the paper's main
    setting; see :func:`generate_prompts`) with their filter stats; then ``generator`` writes none.
    Never fails on judge output it cannot parse (those samples are counted). Returns the DPO pairs and
    the stats a report shows; ``stats.prompts`` and ``stats.judgments`` hold the intermediate records.
    """
    config = config or InstructIterationConfig()
    stats = InstructIterationStats(prompts_requested=config.n_prompts)
    start_usage = generator.usage.snapshot()

    clock = time.perf_counter()
    if new_prompts is None:
        prompts, filters = generate_prompts(generator, seed_prompts, config.n_prompts, config.self_instruct)
    else:
        prompts, filters = new_prompts
    stats.seconds["prompts"] = time.perf_counter() - clock
    stats.prompts = prompts
    stats.prompts_generated = filters.generated
    stats.prompts_kept = filters.kept
    stats.prompt_filters = filters.to_dict()

    clock = time.perf_counter()
    responses = sample_responses(
        generator,
        prompts,
        n=config.n_responses,
        temperature=config.response_temperature,
        top_p=config.response_top_p,
        max_new_tokens=config.response_max_new_tokens,
        task=config.task,
        few_shot=config.response_few_shot,
        seed=config.seed,
    )
    stats.seconds["responses"] = time.perf_counter() - clock
    stats.responses = sum(len(r) for r in responses)

    clock = time.perf_counter()
    judge = PointwiseJudge.from_config(generator, config.judge)
    flat_prompts = [p for p, row in zip(prompts, responses, strict=True) for _ in row]
    flat_responses = [r for row in responses for r in row]
    flat_scores = judge.score(flat_prompts, flat_responses)
    stats.seconds["judge"] = time.perf_counter() - clock
    scores: list[list[ScoreResult]] = []
    cursor = 0
    for row in responses:
        scores.append(flat_scores[cursor : cursor + len(row)])
        cursor += len(row)
    stats.judge_samples = sum(len(s.samples) for s in flat_scores)
    stats.unparsable_scores = sum(s.unparsable for s in flat_scores)
    means = [s.mean for s in flat_scores if s.mean is not None]
    stats.unscored_responses = len(flat_scores) - len(means)
    stats.mean_score = sum(means) / len(means) if means else None
    stats.judgments = [
        {"prompt": p, "response": r, "score": s.mean, "samples": s.samples, "raw": s.raw}
        for p, r, s in zip(flat_prompts, flat_responses, flat_scores, strict=True)
    ]

    generation_prompts = [
        response_prompt(generator, p, config.task, config.response_few_shot) for p in prompts
    ]
    pairs, pair_stats = build_preference_pairs(generation_prompts, responses, scores, questions=prompts)
    stats.pairs = pair_stats.pairs
    stats.ties = pair_stats.ties
    stats.too_few_scores = pair_stats.too_few_scores
    stats.identical_responses = pair_stats.identical_responses

    used = generator.usage - start_usage
    stats.model_calls = used.calls
    stats.generated_tokens = used.generated_tokens
    return pairs, stats
