"""Pointwise LLM-as-a-judge: the additive 5-point prompt of instruction-level self-rewarding.

Yuan et al. 2024 (arXiv 2401.10020, Figure 2) score each candidate response with the model itself: the
prompt lists five criteria, each worth one point, asks for a short justification and a closing
``Score: <total points>``. The score is sampled several times (3 in the paper) and averaged.

The template (``prompts/judge_5point.txt`` by default, any file with ``{prompt}`` and ``{response}``
placeholders otherwise) and the score regex are configurable, as peers allow. Parsing never raises: a
sample whose score cannot be read is ``None``, counted and left out of the mean.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from ..config import option
from ..errors import UserError
from ..models.base import GenerationParams, Generator

DEFAULT_SCORE_PATTERN = r"Score:\s*(\d+(?:\.\d+)?)"
"""Captures any number after ``Score:``; the range check (0..5) then rejects ``Score: 10`` or ``7``
instead of the regex silently reading ``10`` as ``1``."""

SCORE_RANGE = (0.0, 5.0)
_PLACEHOLDER = re.compile(r"\{(prompt|response)\}")
# Markdown emphasis around the label ("**Score:** 5", "__Score:__ 5") is common in chat-model output; it
# is removed before matching so the regex can stay about the score itself (single underscores stay: a
# custom pattern may name "final_score").
_EMPHASIS = re.compile(r"\*{1,3}|_{2,3}")


def default_template() -> str:
    """The packaged 5-point prompt (the paper's criteria, ``prompts/judge_5point.txt``)."""
    return resources.files("prm_selfreward.prompts").joinpath("judge_5point.txt").read_text(encoding="utf-8")


def load_template(path: str | Path) -> str:
    """Read a judge template file; it must contain both ``{prompt}`` and ``{response}``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"judge template not found: {path}")
    text = path.read_text(encoding="utf-8")
    check_template(text, str(path))
    return text


def check_template(template: str, name: str = "judge template") -> None:
    found = set(_PLACEHOLDER.findall(template))
    missing = sorted({"prompt", "response"} - found)
    if missing:
        raise UserError(f"{name}: missing placeholder(s) {', '.join('{' + m + '}' for m in missing)}")


def judge_message(template: str, prompt: str, response: str) -> str:
    """Fill ``template`` in one pass, so braces inside the texts (``\\boxed{5}``, or a literal
    ``{response}`` in a question) are never themselves substituted."""
    values = {"prompt": prompt.strip(), "response": response.strip()}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def compile_score_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a score regex (case-insensitive); it needs exactly one capture group: the number."""
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise UserError(f"score pattern {pattern!r}: not a valid regex ({exc})") from exc
    if compiled.groups != 1:
        raise UserError(f"score pattern {pattern!r}: needs exactly one capture group (the score)")
    return compiled


def parse_score(
    text: str,
    pattern: str | re.Pattern[str] = DEFAULT_SCORE_PATTERN,
    score_range: tuple[float, float] = SCORE_RANGE,
) -> float | None:
    """The score a judge output concludes with, or ``None``.

    The *last* match counts (the prompt asks to conclude with the score; earlier mentions are part of
    the justification). A match outside ``score_range`` or not a number gives ``None``.
    """
    regex = compile_score_pattern(pattern) if isinstance(pattern, str) else pattern
    matches = list(regex.finditer(_EMPHASIS.sub("", text)))
    if not matches:
        return None
    try:
        value = float(matches[-1].group(1))
    except (TypeError, ValueError):
        return None
    low, high = score_range
    return value if low <= value <= high else None


@dataclass
class ScoreResult:
    """The judge's verdict on one response: ``samples`` (``None`` where unparsable), their mean over the
    parsable ones (``None`` when there are none) and the raw judge outputs."""

    mean: float | None
    samples: list[float | None]
    raw: list[str] = field(default_factory=list)

    @property
    def unparsable(self) -> int:
        return sum(1 for s in self.samples if s is None)

    @classmethod
    def from_samples(cls, samples: list[float | None], raw: list[str]) -> ScoreResult:
        valid = [s for s in samples if s is not None]
        return cls(sum(valid) / len(valid) if valid else None, samples, raw)


@dataclass
class PointwiseJudgeConfig:
    samples: int = option(3, minimum=1, help="Judge samples per response, averaged (the paper: 3).")
    temperature: float = option(
        0.7,
        help="Sampling temperature of the judge; > 0 so the samples differ (the paper does not state it).",
    )
    top_p: float = option(0.9, help="Nucleus sampling of the judge.")
    max_new_tokens: int = option(192, minimum=1, help="Budget for the justification (up to 100 words) and the score.")
    template_file: str | None = option(
        None, help="Judge prompt template with {prompt} and {response}; default: the paper's 5-point prompt."
    )
    score_pattern: str = option(
        DEFAULT_SCORE_PATTERN, help="Regex with one capture group for the score; the last match counts."
    )
    stop: list[str] = option(
        ["\nUser:", "\nReview the user's question"],
        help="Stop strings: where a base model would start inventing the next review.",
    )
    seed: int | None = option(None, help="Sampling seed for the judge calls (deterministic backends).")


class PointwiseJudge:
    """Score responses with the additive 5-point prompt, ``samples`` times each, in one batched call.

    ``score(prompts, responses)`` returns one :class:`ScoreResult` per response. ``prompts`` are the
    user's questions as a user would write them (not a few-shot solving prompt).
    """

    def __init__(
        self,
        generator: Generator,
        template: str | None = None,
        score_pattern: str = DEFAULT_SCORE_PATTERN,
        samples: int = 3,
        temperature: float = 0.7,
        top_p: float = 0.9,
        max_new_tokens: int = 192,
        stop: Sequence[str] = ("\nUser:", "\nReview the user's question"),
        seed: int | None = None,
    ):
        if samples < 1:
            raise UserError(f"judge samples must be >= 1, got {samples}")
        self.generator = generator
        self.template = template if template is not None else default_template()
        check_template(self.template)
        self.pattern = compile_score_pattern(score_pattern)
        self.samples = samples
        self.params = GenerationParams(
            max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, stop=list(stop), seed=seed
        )

    @classmethod
    def from_config(cls, generator: Generator, config: PointwiseJudgeConfig) -> PointwiseJudge:
        template = load_template(config.template_file) if config.template_file else None
        return cls(
            generator,
            template=template,
            score_pattern=config.score_pattern,
            samples=config.samples,
            temperature=config.temperature,
            top_p=config.top_p,
            max_new_tokens=config.max_new_tokens,
            stop=config.stop,
            seed=config.seed,
        )

    def message(self, prompt: str, response: str) -> str:
        """The judge's user message for one (question, response); what EFT seed data trains on."""
        return judge_message(self.template, prompt, response)

    def parse(self, text: str) -> float | None:
        return parse_score(text, self.pattern)

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> list[ScoreResult]:
        if len(prompts) != len(responses):
            raise ValueError(f"score: {len(prompts)} prompts but {len(responses)} responses")
        if not prompts:
            return []
        texts = [
            self.generator.format_prompt(self.message(p, r)) for p, r in zip(prompts, responses, strict=True)
        ]
        outputs = self.generator.generate(texts, n=self.samples, params=self.params)
        results = []
        for row in outputs:
            raw = [c.text for c in row]
            results.append(ScoreResult.from_samples([self.parse(t) for t in raw], raw))
        return results


# --------------------------------------------------------------------------------------------------
# Judge accuracy on pairs of known order (the paper's "reward model accuracy")


class OrderedPair(Protocol):
    """What :func:`judge_agreement` reads from a test pair (e.g. ``seed_instruct.JudgePair``)."""

    question: str
    better: str
    worse: str


class _Scorer(Protocol):
    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> list[ScoreResult]: ...


@dataclass
class JudgeAgreement:
    accuracy: float
    """Pairs where the judge scored the better response strictly higher, over all pairs."""
    ci_low: float
    ci_high: float
    """95% Wilson interval of ``accuracy``."""
    total: int
    correct: int
    ties: int
    failures: int
    """Pairs where either response got no parsable score (counted as wrong)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def judge_agreement(judge: _Scorer, pairs: Sequence[OrderedPair]) -> JudgeAgreement:
    """Score every distinct (question, response) of ``pairs`` in one ``judge.score`` call and count the
    pairs ordered correctly. Ties and unscored pairs count as wrong (a judge that cannot separate two
    responses gives DPO no pair either)."""
    from ..stats import wilson_interval

    keys: dict[tuple[str, str], int] = {}
    for pair in pairs:
        for response in (pair.better, pair.worse):
            keys.setdefault((pair.question, response), len(keys))
    items = list(keys)
    results = judge.score([q for q, _ in items], [r for _, r in items]) if items else []
    correct = ties = failures = 0
    for pair in pairs:
        hi = results[keys[(pair.question, pair.better)]].mean
        lo = results[keys[(pair.question, pair.worse)]].mean
        if hi is None or lo is None:
            failures += 1
        elif hi > lo:
            correct += 1
        elif hi == lo:
            ties += 1
    n = len(pairs)
    low, high = wilson_interval(correct, n)
    return JudgeAgreement(correct / n if n else 0.0, low, high, n, correct, ties, failures)


def pairwise_accuracy(judge: _Scorer, pairs: Sequence[OrderedPair]) -> float:
    """Fraction of ``pairs`` the judge orders correctly (ties and unscored count as wrong)."""
    return judge_agreement(judge, pairs).accuracy
