"""Step search: build solutions one self-judged step at a time and emit step-level preference pairs.

The process-based self-rewarding procedure (Zhang et al. 2025; DESIGN.md section 1). For each problem,
at step ``l``:

1. sample ``width`` candidate next steps after the prompt ``solve_prompt + "Step 1: ...\\n" ... +
   "Step l:"`` (T=0.5, top_p=0.95), stopping at the next ``Step l+1:`` marker or the end of the
   solution;
2. judge every ordered pair ``(i, j)``, ``i != j``, with the model's own :class:`StepJudge` (both
   positions, ``w(w-1)`` comparisons); ``score_i`` = number of comparisons candidate ``i`` won;
3. best = argmax, worst = argmin; append best to the prefix and emit the pair (prefix, best, worst);
4. if every score ties, discard the previous step and its pair and roll back one step;
5. stop when the appended step states a final answer (a ``\\boxed{}`` or an answer line,
   :func:`~prm_selfreward.steps.has_final_answer`), when the model ended the solution,
   or after ``max_rounds`` rounds, or when the step prompt no longer leaves ``max_step_tokens`` of the
   model's context (``stop_reason="context"``, counted; the judge shortens its own prompts, see
   :meth:`~prm_selfreward.judges.pairwise.PairwiseStepJudge.fitted_prompt`).

Efficiency: :meth:`StepSearch.run` advances many problems in lockstep, so each round costs exactly one
batched ``generator.generate`` call (all active problems' prompts, ``n=width``) and one batched
``judge.compare`` call (all ordered pairs of all active problems). Prompts of one problem share their
prefix, which a backend with prefix caching (vLLM) reuses.

Decisions the paper leaves open (each documented where it is implemented):

- **Tokenisation boundary.** The generation prompt ends with ``"Step l:"`` *without* the trailing
  space, and a candidate is the text after it (``" Natalia sold ..."``). A prompt ending in a space
  makes BPE tokenisers emit a lone space token the model rarely saw, and TRL's DPOTrainer (which
  tokenises prompt+completion together) would then move that boundary and warn that it trains on a
  different context. With the space in the completion the boundary is a clean token boundary, and the
  DPO prompt is byte for byte the text the step was generated after.
- **Canonical completions.** A pair's ``chosen``/``rejected`` is ``" " + body`` plus ``"\\n"`` if the
  step does not end the solution, so ``prompt_l + chosen_l + "Step l+1:" == prompt_(l+1)``. Bodies are
  the sampled text with surrounding whitespace (and a repeated leading marker) removed.
- **Duplicates.** Candidates with the same whitespace-normalised text are judged once (the first
  sampled one represents them); comparisons run over the distinct candidates only, so ``w(w-1)`` is an
  upper bound. If all samples are identical the step is accepted without a pair (the model is sure;
  that is not a tie and does not roll back).
- **Empty candidates** (nothing but whitespace) are not judged. No usable candidate ends the search
  for that problem (``stop_reason="empty"``).
- **Repeats and copies of the question** (``guard_repeats``, on by default; beyond the paper). A
  self-rewarding loop can learn to repeat a step or restate the question: the judge's own likelihood
  favours text it has just seen, and step-DPO on such pairs taught a small model to repeat
  ``The answer is \\boxed{k}`` steps. Texts are compared by :func:`guard_key` (case-folded, whitespace
  collapsed, surrounding ``.,;:!?`` removed). A candidate *repeats* when its text equals an earlier step
  of the same solution (:func:`repeats_step`); it *copies the question* when it contains the whole
  question, or is a piece of the question at least half as long, the shorter side being at least
  :data:`COPY_MIN_CHARS` characters (:func:`copies_question`; short steps such as ``x = 5`` are never
  flagged). Such a candidate is not sent to the judge and scores :data:`GUARDED_SCORE`, below every
  judged candidate: when a judged candidate exists, the best judged one is chosen and the first
  guarded one is the pair's rejected step (``metadata["rejected_guard"]``: ``"repeat"`` or ``"copy"``;
  counted in ``guard_pairs``), ties among the judged ones included, since the pair is sound whatever
  the judge thought; this replaces the tie roll-back and the no-pair "uniform" round. When every
  candidate is guarded, the search of that problem ends (``stop_reason="degenerate"``, counted in
  ``degenerate_stops``), as with no usable candidate. ``repeat_candidates`` and ``copy_candidates``
  count sampled candidates (duplicates included) whether or not the guard is on, so an ablation with
  ``guard_repeats=False`` (such steps judged like any other) still shows how often the model proposes
  them.
- **Loops inside a step** (same guard). A candidate that writes one stretch of text three or more times
  back to back over 64+ characters (:func:`~prm_selfreward.degeneracy.loops`, the evaluation's loop
  monitor: ``= $150 * $80,000 / $80,000 = ...`` until the step's token budget) is guarded the same way
  (``rejected_guard`` ``"loop"``, counted in ``loop_candidates``). A step can loop while repeating no
  earlier step; step-DPO at a high learning rate taught the Qwen showcase's M3 to do so.
- **Where a solution ends.** At the first appended step that states a final answer: a complete,
  non-blank ``\\boxed{}`` or one of the format's answer lines (``The answer is 18``, ``#### 18``,
  ``Final Answer: ...``; :func:`~prm_selfreward.steps.has_final_answer`), so a model that writes its
  answer without a box is not asked for more steps after it. Evaluation grades completions as before.
- **Judge failures** (verdict -1) count as a win for neither candidate.
- **Judges that debias themselves.** The search sends both orders of every pair, as in the paper. A
  judge that also judges both orders per comparison (``PairwiseStepJudge(debias=True)``) costs the
  same, since it judges an identical prompt once, and returns the combined verdict for both orders:
  the scores then count each pair's debiased winner twice, and judge consistency is read from its
  ``PairVerdict.extra["consistent"]``. ``debias=False`` gives the paper's scoring exactly.
- **Ties.** When all distinct candidates score the same: at step 1 there is nothing to roll back, the
  step is re-sampled; otherwise the previous step and its pair are discarded and step ``l-1`` is
  re-sampled. After ``max_rollbacks`` such retries for a problem (step-1 re-samples included), a tie
  keeps the first candidate without emitting a pair: a judge that always prefers the same position
  ties every round, and would otherwise re-sample step 1 until ``max_rounds`` and return no solution.
  Every round counts toward ``max_rounds``, so the search always ends.
  Partial ties pick the lowest-index candidate among the best (and among the worst).
- **Determinism.** Each round's sampling seed is derived from ``config.seed``, the ids of the problems
  in the batch and the round number. A backend that honours ``GenerationParams.seed`` therefore gives
  the same results when the same chunk of problems is run again (resume re-runs whole chunks). The
  Generator interface takes one seed per call, so a problem's samples can depend on which other
  problems share its batch: chunking differently can change outputs. One problem per ``run`` call
  makes every result a function of ``(seed, problem id)`` alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import option
from .degeneracy import loops
from .fingerprint import check_made_by, model_identity, search_made_by, stamp
from .io import JsonlAppender, JsonlErrors, read_jsonl
from .judges.base import PairVerdict, StepComparison, StepJudge
from .models.base import Completion, GenerationParams, Generator, TokenUsage
from .models.budget import PromptBudget
from .prompts import SOLUTION_STOP, solve_prompt
from .records import Problem, StepPair
from .steps import format_steps, guard_key, has_final_answer, next_step_prefix, step_body


@dataclass
class SearchConfig:
    width: int = option(6, minimum=2, help="Candidate next steps sampled per step (the paper's w).")
    temperature: float = option(0.5, minimum=0.0, help="Sampling temperature for candidate steps.")
    top_p: float = option(0.95, minimum=0.0, exclusive_minimum=True, maximum=1.0, help="Nucleus sampling for candidate steps.")
    max_step_tokens: int = option(256, minimum=1, help="Generation budget for one step.")
    max_rounds: int = option(20, minimum=1, help="Rounds (sampled steps, including re-sampled ones) per problem.")
    rollback_on_tie: bool = option(
        True, help="When all candidates tie, discard the previous step and its pair."
    )
    max_rollbacks: int = option(
        5,
        minimum=0, help="Ties per problem answered by a roll-back (or a re-sample at step 1); later ties keep the "
        "first candidate without a pair.",
    )
    few_shot: int = option(0, minimum=0, help="Worked examples in the solving prompt (base models need a few).")
    record_correctness: bool = option(
        False, help="Check finished solutions against the known answer (beyond the paper)."
    )
    drop_wrong: bool = option(
        False, help="Emit no pairs from searches whose solution is wrong (needs answers)."
    )
    min_margin: float = option(0.0, help="Pair builder: keep pairs whose win margin is at least this.")
    lockstep: int = option(4, minimum=1, help="Problems searched together: one generate and one judge call per round.")
    seed: int | None = option(0, help="Base sampling seed; None leaves sampling unseeded.")
    keep_trace: bool = option(True, help="Keep every round's candidates and scores in the result.")
    guard_repeats: bool = option(
        True,
        help="Never choose a candidate step that repeats an earlier step of the solution, copies the "
        "question or loops (one stretch of text 3+ times back to back): it is not judged, ranks below "
        "every judged candidate (so it is the pair's rejected step when a valid one wins), and a round "
        "with nothing else ends the search ('degenerate'). "
        "False judges such steps like any other (ablation); they are counted either way.",
    )

    def __post_init__(self) -> None:
        if self.width < 2:
            raise ValueError(f"search width must be >= 2 (a pair needs two candidates), got {self.width}")
        if self.max_rounds < 1:
            raise ValueError(f"max_rounds must be >= 1, got {self.max_rounds}")
        if self.max_rollbacks < 0:
            raise ValueError(f"max_rollbacks must be >= 0, got {self.max_rollbacks}")
        if self.lockstep < 1:
            raise ValueError(f"lockstep must be >= 1, got {self.lockstep}")


@dataclass
class SearchCounters:
    """What a search did. Per problem on :class:`SearchResult` (as a dict), summed on :class:`StepSearch`."""

    problems: int = 0
    rounds: int = 0
    """Rounds per problem, summed (one sampled step each, re-samples included)."""
    steps: int = 0
    """Steps in the final solutions."""
    pairs: int = 0
    """Pairs kept in the results (discarded ones from roll-backs not counted)."""
    ties: int = 0
    rollbacks: int = 0
    uniform_rounds: int = 0
    """Rounds whose candidates were all identical (step accepted, no pair)."""
    comparisons: int = 0
    """Ordered pairs sent to the judge."""
    judge_failures: int = 0
    judged_orders: int = 0
    """Unordered candidate pairs whose two orders both got a verdict."""
    consistent_orders: int = 0
    """Of those, how many got the same winner in both orders."""
    duplicate_candidates: int = 0
    empty_candidates: int = 0
    truncated_candidates: int = 0
    """Candidates cut by ``max_step_tokens``."""
    prompt_tokens: int = 0
    """Prompt tokens of this problem's generation requests (the judge's are in ``StepSearch.usage``)."""
    generated_tokens: int = 0
    finished: int = 0
    correct: int = 0
    context_stops: int = 0
    """Searches stopped because the step prompt left less than ``max_step_tokens`` of the model's context."""
    repeat_candidates: int = 0
    """Sampled candidates (duplicates included) whose text repeats an earlier step of the same solution
    (:func:`repeats_step`); counted whether or not ``guard_repeats`` withholds them from the judge."""
    copy_candidates: int = 0
    """Sampled candidates (duplicates included) that copy the question (:func:`copies_question`), not
    counted again when they also repeat a step."""
    loop_candidates: int = 0
    """Sampled candidates (duplicates included) that loop inside the step
    (:func:`~prm_selfreward.degeneracy.loops`), not counted again when they also repeat or copy."""
    guard_pairs: int = 0
    """Pairs kept whose rejected step is a guarded candidate (a repeat, a copy or a loop)."""
    degenerate_stops: int = 0
    """Searches ended because every candidate of a round was guarded (``stop_reason="degenerate"``)."""

    def add(self, other: SearchCounters | dict[str, int]) -> None:
        values = other if isinstance(other, dict) else dataclasses.asdict(other)
        for name, value in values.items():
            setattr(self, name, getattr(self, name) + value)

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @property
    def consistency(self) -> float | None:
        """Share of candidate pairs judged the same way in both orders (None if none was)."""
        return self.consistent_orders / self.judged_orders if self.judged_orders else None


@dataclass
class SearchResult:
    """One problem's search: the solution it built and the pairs it emitted."""

    problem_id: str
    question: str
    steps: list[str]
    """Step bodies (no ``Step n:`` markers), in order."""
    pairs: list[StepPair]
    finished: bool
    """True when the solution ended (final answer or the model stopped), False at the round cap."""
    stop_reason: str
    """``final_answer`` | ``model_ended`` | ``max_rounds`` | ``empty`` | ``context`` (the prompt left no
    room for another whole step in the model's context) | ``degenerate`` (every candidate of a round
    repeated an earlier step, copied the question or looped, ``guard_repeats``)."""
    solution: str
    """The solution in canonical form, ``"Step 1: ...\\nStep 2: ..."``."""
    final_answer: str | None = None
    correct: bool | None = None
    """Set when ``record_correctness`` and the problem has gold answers."""
    counters: dict[str, int] = field(default_factory=dict)
    trace: list[dict[str, Any]] = field(default_factory=list)
    """Per round: step index, candidates, scores, best/worst and what happened (``keep_trace``)."""
    made_by: dict[str, Any] = field(default_factory=dict)
    """Model, search and judge settings that produced the result (``run_to_jsonl``; see ``fingerprint.py``)."""
    fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["pairs"] = [p.to_dict() for p in self.pairs]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchResult:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"SearchResult: unknown field(s) {', '.join(unknown)}")
        data = dict(data)
        data["pairs"] = [StepPair.from_dict(p) for p in data.get("pairs", [])]
        return cls(**data)


# ---------------------------------------------------------------------------------------------------
# Pure pieces: prompts, candidates, scores.


def step_prompt(base_prompt: str, previous_steps: Sequence[str]) -> str:
    """The prompt step ``len(previous_steps) + 1`` is generated after: ``base_prompt``, the previous
    steps in canonical form, then ``"Step l:"`` without its trailing space (see the module docstring:
    the space belongs to the completion so the prompt ends on a token boundary)."""
    return base_prompt + next_step_prefix(previous_steps).removesuffix(" ")


def step_completion(body: str, final: bool) -> str:
    """A step as the completion of :func:`step_prompt`: ``" body"``, plus ``"\\n"`` if more steps follow."""
    return " " + body + ("" if final else "\n")


def normalise(text: str) -> str:
    """Whitespace-normalised text: what counts as "the same step"."""
    return " ".join(text.split())


COPY_MIN_CHARS = 20
"""The shortest overlap (in characters of :func:`guard_key` text) that counts as copying the question:
a short step such as "x = 5" that happens to occur in the question is no copy."""

GUARDED_SCORE = -1
"""The score of a guarded candidate: below every judged one (wins are never negative)."""


def repeats_step(body: str, previous_steps: Sequence[str]) -> bool:
    """Whether ``body`` is, by :func:`guard_key`, the same text as one of ``previous_steps``."""
    key = guard_key(body)
    return bool(key) and any(key == guard_key(p) for p in previous_steps)


def copies_question(body: str, question: str, min_chars: int = COPY_MIN_CHARS) -> bool:
    """Whether ``body`` copies ``question`` (both by :func:`guard_key`): the step contains the whole
    question, or the step is a piece of the question at least half as long as it. Either way the
    shorter text must be at least ``min_chars`` long, so short steps and short questions are never
    flagged by chance ("x = 5" in "Find x if x = 5 + y")."""
    step, q = guard_key(body), guard_key(question)
    if not step or not q or min(len(step), len(q)) < min_chars:
        return False
    return q in step or (step in q and 2 * len(step) >= len(q))


def clean_body(text: str) -> str:
    """A sampled step's body: surrounding whitespace and any leading ``Step n:`` marker(s) removed, so
    that :func:`format_steps` reproduces it unchanged."""
    body = step_body(text)
    while step_body(body) != body:
        body = step_body(body)
    return body


def ends_solution(completion: Completion, body: str) -> bool:
    """Whether this candidate is the last step: it states a final answer (a complete ``\\boxed{}`` or an
    answer line such as ``The answer is 18``, ``#### 18``, ``Final Answer: ...``; see
    :func:`~prm_selfreward.steps.has_final_answer`), the model emitted end-of-sequence, or it stopped
    where a base model starts the next problem."""
    if has_final_answer(body):
        return True
    if completion.finish_reason == "eos":
        return True
    return completion.finish_reason == "stop" and completion.stop_string in SOLUTION_STOP


def win_scores(n: int, verdicts: dict[tuple[int, int], int]) -> list[int]:
    """Wins per candidate from ordered-pair verdicts ``{(i, j): v}`` (0: i won, 1: j won, -1: nobody)."""
    scores = [0] * n
    for (i, j), v in verdicts.items():
        if v == 0:
            scores[i] += 1
        elif v == 1:
            scores[j] += 1
    return scores


def pick_best_worst(scores: Sequence[int]) -> tuple[int, int] | None:
    """(best, worst) indices, lowest index first among equals; None when every score ties."""
    if len(set(scores)) <= 1:
        return None
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    worst = min(range(len(scores)), key=lambda i: (scores[i], i))
    return best, worst


def order_consistency(n: int, verdicts: dict[tuple[int, int], int]) -> tuple[int, int]:
    """(unordered pairs with both orders judged, of which same winner both ways)."""
    judged = consistent = 0
    for i in range(n):
        for j in range(i + 1, n):
            a, b = verdicts.get((i, j), -1), verdicts.get((j, i), -1)
            if a == -1 or b == -1:
                continue
            judged += 1
            winner_ij = i if a == 0 else j
            winner_ji = j if b == 0 else i
            consistent += winner_ij == winner_ji
    return judged, consistent


def round_seed(seed: int | None, problem_ids: Sequence[str], round_index: int) -> int | None:
    """A sampling seed for one lockstep round, a pure function of its inputs (stable across runs)."""
    if seed is None:
        return None
    key = "\x1f".join([str(seed), str(round_index), *problem_ids]).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFFFFFF


def _extract_answer(text: str) -> str | None:
    from .grading.extract import extract_answer

    return extract_answer(text).answer


def _check(solution: str, problem: Problem) -> bool:
    """Whether ``solution`` answers ``problem`` (the project's answer checker, as evaluation uses it)."""
    from .grading import BENCHMARKS, check

    benchmark = problem.benchmark if problem.benchmark in BENCHMARKS else None  # else the default rules
    verdict = check(solution, problem.answers, benchmark=benchmark, unit=problem.metadata.get("unit") or None)
    return bool(verdict.correct)


# ---------------------------------------------------------------------------------------------------
# The search.


@dataclass
class _Candidate:
    body: str
    final: bool
    duplicate_of: int | None = None
    guard: str | None = None
    """``"repeat"`` (repeats an earlier step), ``"copy"`` (copies the question) or ``"loop"`` (loops
    inside the step), else None."""


@dataclass
class _ProblemState:
    problem: Problem
    base_prompt: str
    steps: list[str] = field(default_factory=list)
    pairs: list[StepPair] = field(default_factory=list)
    rounds: int = 0
    tie_retries: int = 0
    done: bool = False
    stop_reason: str = ""
    counters: SearchCounters = field(default_factory=SearchCounters)
    trace: list[dict[str, Any]] = field(default_factory=list)
    # Set during a round:
    prompt: str = ""
    candidates: list[_Candidate] = field(default_factory=list)
    distinct: list[int] = field(default_factory=list)
    """Distinct candidates the judge compares."""
    guarded: list[int] = field(default_factory=list)
    """Distinct candidates held back by ``guard_repeats`` (not judged, ranked last)."""


class StepSearch:
    """The step search over a :class:`Generator` (the policy) and a :class:`StepJudge` (usually the same
    model judging itself).

    ``run`` may be called many times (e.g. on chunks of a problem list); ``counters`` and ``usage``
    accumulate over calls. ``usage`` is measured from the generator's (and, if it has a different one,
    the judge's ``generator``) :class:`TokenUsage` deltas, so it includes the judge's model calls.
    """

    def __init__(self, generator: Generator, judge: StepJudge, config: SearchConfig | None = None):
        self.generator = generator
        self.judge = judge
        self.config = config or SearchConfig()
        self.counters = SearchCounters()
        self.budget = PromptBudget.of(generator)
        """The generator's context: a step prompt must leave ``max_step_tokens`` of it."""
        self.usage = TokenUsage()
        self.lockstep_rounds = 0
        """Batched rounds (each: one generate call, one compare call)."""
        self.resumed: dict[str, int] = {}
        """What the last ``run_to_jsonl`` found on disk: ``records`` reused, ``torn_tail_kept``,
        ``torn_tail_cut`` and ``malformed_lines``."""

    # -- accounting ---------------------------------------------------------------------------------

    def _usage_sources(self) -> list[Any]:
        sources = [self.generator]
        other = getattr(self.judge, "generator", None)
        if other is not None and other is not self.generator and hasattr(other, "usage"):
            sources.append(other)
        return sources

    def _snapshot(self) -> list[TokenUsage]:
        return [s.usage.snapshot() for s in self._usage_sources()]

    def _account(self, before: list[TokenUsage]) -> None:
        for source, start in zip(self._usage_sources(), before, strict=True):
            self.usage = self.usage + (source.usage - start)

    # -- the loop -----------------------------------------------------------------------------------

    def run(
        self,
        problems: Sequence[Problem],
        on_round: Callable[[int, int], None] | None = None,
    ) -> list[SearchResult]:
        """Search all ``problems`` in lockstep; one result per problem, in input order.

        ``on_round(round_index, active_problems)`` is called after each batched round (progress bars).
        Problem ids should be unique within a call (they seed the sampling).
        """
        cfg = self.config
        states = [
            _ProblemState(problem=p, base_prompt=solve_prompt(self.generator, p.question, cfg.few_shot))
            for p in problems
        ]
        ids = [p.id for p in problems]
        round_index = 0
        before = self._snapshot()
        try:
            while True:
                active = [s for s in states if not s.done]
                if not active:
                    break
                self._round(active, round_seed(cfg.seed, ids, round_index))
                round_index += 1
                self.lockstep_rounds += 1
                if on_round is not None:
                    on_round(round_index, sum(not s.done for s in states))
        finally:
            self._account(before)
        results = [self._finish(s) for s in states]
        for r in results:
            self.counters.add(r.counters)
        return results

    def run_to_jsonl(
        self,
        problems: Sequence[Problem],
        path: str | os.PathLike[str],
        chunk_size: int | None = None,
        on_chunk: Callable[[int, int], None] | None = None,
        on_round: Callable[[int, int], None] | None = None,
        model: str | None = None,
    ) -> list[SearchResult]:
        """Resumable search: results are appended to the JSON Lines file ``path`` chunk by chunk and
        problems already there are not searched again; returns one result per problem, in order.

        Chunks are fixed slices of ``problems`` (``chunk_size`` each, default ``config.lockstep``)
        whatever was done before, and a chunk with any problem missing is searched whole again (only
        the missing results are appended), so a resumed run sees the same batches, hence the same
        seeds, as an uninterrupted one. ``on_chunk(done, total)`` reports progress in problems.

        Every result carries ``made_by`` (``model``, default the generator's ``name``; the search
        settings; the judge's) and its fingerprint: results in ``path`` made by anything else raise
        :class:`~prm_selfreward.fingerprint.StaleOutputError` naming the difference, before any
        search. A malformed line is skipped and its problem searched again; a torn last line is kept
        when complete (its newline restored), cut otherwise; both counted in ``self.resumed``.
        """
        chunk_size = chunk_size or self.config.lockstep
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        path = Path(path)
        if model is None:
            model = model_identity(getattr(self.generator, "name", "") or "")
        made_by = search_made_by(self.config, self.judge, self.generator, model)
        wanted = {p.id for p in problems}
        done: dict[str, SearchResult] = {}
        errors = JsonlErrors()
        if path.exists():
            rows = read_jsonl(path, errors)
            check_made_by(path, rows, made_by)
            for row in rows:
                try:
                    result = SearchResult.from_dict(row)
                except (TypeError, ValueError):
                    errors.errors.append((0, "not a search result"))
                    continue
                if result.problem_id in wanted:
                    done[result.problem_id] = result
        total = len(problems)
        reused = sum(p.id in done for p in problems)
        with JsonlAppender(path) as out:
            self.resumed = {"records": reused, **out.repair.to_dict(),
                            "malformed_lines": len(errors) - out.repair.cut}
            if on_chunk is not None:
                on_chunk(reused, total)
            for start in range(0, total, chunk_size):
                chunk = list(problems[start : start + chunk_size])
                if all(p.id in done for p in chunk):
                    continue
                for result in self.run(chunk, on_round=on_round):
                    if result.problem_id not in done:
                        result.made_by = dict(made_by)
                        result.fingerprint = stamp({}, made_by)["fingerprint"]
                        done[result.problem_id] = result
                        out.append(result.to_dict())
                if on_chunk is not None:
                    on_chunk(sum(p.id in done for p in problems), total)
        return [done[p.id] for p in problems]

    def _round(self, active: list[_ProblemState], seed: int | None) -> None:
        cfg = self.config
        for s in active:
            s.prompt = step_prompt(s.base_prompt, s.steps)
            room = self.budget.room(s.prompt)
            if room is not None and room < cfg.max_step_tokens:
                # The prompt no longer leaves room for a whole step: the solution ends here, counted.
                s.done, s.stop_reason = True, "context"
                s.counters.context_stops += 1
        active = [s for s in active if not s.done]
        if not active:
            return
        for s in active:
            s.rounds += 1
            s.counters.rounds += 1
        params = GenerationParams(
            max_new_tokens=cfg.max_step_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            stop=[],  # set per round below
            seed=seed,
        )
        # One stop list for the whole batch: each problem's next marker. A marker of another problem's
        # step number can cut a step early only if the model writes "Step k:" with the wrong k, which
        # is then a malformed step anyway (it would otherwise run into the next step).
        markers = sorted({len(s.steps) + 2 for s in active})
        params.stop = (
            [f"\nStep {k}:" for k in markers] + [f"Step {k}:" for k in markers] + list(SOLUTION_STOP)
        )
        outputs = self.generator.generate([s.prompt for s in active], n=cfg.width, params=params)
        if len(outputs) != len(active):
            raise RuntimeError(f"generator returned {len(outputs)} rows for {len(active)} prompts")

        comparisons: list[StepComparison] = []
        owners: list[tuple[_ProblemState, int, int]] = []
        for s, completions in zip(active, outputs, strict=True):
            self._collect_candidates(s, completions)
            for a in s.distinct:
                for b in s.distinct:
                    if a != b:
                        comparisons.append(
                            StepComparison(
                                s.problem.question, list(s.steps), s.candidates[a].body, s.candidates[b].body
                            )
                        )
                        owners.append((s, a, b))
        verdicts: list[PairVerdict] = self.judge.compare(comparisons) if comparisons else []
        if len(verdicts) != len(comparisons):
            raise RuntimeError(f"judge returned {len(verdicts)} verdicts for {len(comparisons)} comparisons")
        by_problem: dict[int, dict[tuple[int, int], int]] = {id(s): {} for s in active}
        own_orders: dict[int, list[bool | None]] = {id(s): [] for s in active}
        for (s, a, b), v in zip(owners, verdicts, strict=True):
            by_problem[id(s)][(a, b)] = v.verdict if v.verdict in (0, 1) else -1
            if a < b:
                own_orders[id(s)].append(v.extra.get("consistent"))
        for s in active:
            self._advance(s, by_problem[id(s)], own_orders[id(s)])

    def _collect_candidates(self, s: _ProblemState, completions: list[Completion]) -> None:
        s.candidates, s.distinct, s.guarded = [], [], []
        seen: dict[str, int] = {}
        for c in completions:
            s.counters.prompt_tokens += c.prompt_tokens
            s.counters.generated_tokens += c.completion_tokens
            if c.finish_reason == "length":
                s.counters.truncated_candidates += 1
            body = clean_body(c.text)
            cand = _Candidate(body=body, final=ends_solution(c, body))
            index = len(s.candidates)
            s.candidates.append(cand)
            if not body:
                s.counters.empty_candidates += 1
                continue
            if repeats_step(body, s.steps):
                cand.guard = "repeat"
                s.counters.repeat_candidates += 1
            elif copies_question(body, s.problem.question):
                cand.guard = "copy"
                s.counters.copy_candidates += 1
            elif loops(body):
                cand.guard = "loop"
                s.counters.loop_candidates += 1
            key = normalise(body)
            if key in seen:
                cand.duplicate_of = seen[key]
                s.counters.duplicate_candidates += 1
                continue
            seen[key] = index
            if cand.guard is not None and self.config.guard_repeats:
                s.guarded.append(index)
            else:
                s.distinct.append(index)

    def _advance(
        self, s: _ProblemState, verdicts: dict[tuple[int, int], int], own_orders: list[bool | None]
    ) -> None:
        """Score this round's candidates for one problem and extend, roll back or stop its search.

        ``own_orders``: per unordered pair, the judge's own both-orders consistency
        (``PairVerdict.extra["consistent"]``) when it debiases internally, else None."""
        cfg = self.config
        distinct = s.distinct
        step_index = len(s.steps) + 1
        local = {(distinct.index(a), distinct.index(b)): v for (a, b), v in verdicts.items()}
        scores = win_scores(len(distinct), local)
        s.counters.comparisons += len(verdicts)
        s.counters.judge_failures += sum(v == -1 for v in verdicts.values())
        if any(c is not None for c in own_orders):
            # The judge ran both orders per comparison itself and returned the combined verdict, so
            # our two ordered verdicts mirror each other by construction; its own flag is the signal.
            judged = sum(c is not None for c in own_orders)
            consistent = sum(c is True for c in own_orders)
        else:
            judged, consistent = order_consistency(len(distinct), local)
        s.counters.judged_orders += judged
        s.counters.consistent_orders += consistent
        trace: dict[str, Any] = {
            "round": s.rounds,
            "step_index": step_index,
            "candidates": [c.body for c in s.candidates],
            "distinct": list(distinct),
            "scores": scores,
        }
        guarded = s.guarded
        if guarded:
            trace["guarded"] = list(guarded)
            trace["guards"] = [s.candidates[g].guard for g in guarded]

        if not distinct:
            s.done, s.stop_reason = True, "degenerate" if guarded else "empty"
            trace["action"] = s.stop_reason
            if guarded:
                s.counters.degenerate_stops += 1
        elif guarded:
            # Every judged candidate beats every guarded one, so the best judged candidate is chosen
            # (lowest index among equals, ties included: the pair is sound whatever the judge thought)
            # and the first guarded candidate is rejected: the pair teaches "do not repeat".
            best = max(range(len(distinct)), key=lambda i: (scores[i], -i))
            trace["best"], trace["worst"] = distinct[best], guarded[0]
            trace["action"] = "guard_pair"
            self._append(s, distinct[best], guarded[0], (scores[best], GUARDED_SCORE, len(distinct)))
        elif len(distinct) == 1:
            s.counters.uniform_rounds += 1
            trace["action"] = "uniform"
            self._append(s, distinct[0], None, None)
        else:
            picked = pick_best_worst(scores)
            if picked is None:
                s.counters.ties += 1
                if cfg.rollback_on_tie and s.tie_retries < cfg.max_rollbacks:
                    s.tie_retries += 1
                    trace["action"] = "tie_rollback" if s.steps else "tie_resample"
                    if s.steps:
                        s.counters.rollbacks += 1
                        discarded = len(s.steps)
                        s.steps.pop()
                        s.pairs = [p for p in s.pairs if p.step_index != discarded]
                else:
                    trace["action"] = "tie_keep_first"
                    self._append(s, distinct[0], None, None)
            else:
                best, worst = picked
                trace["best"], trace["worst"] = distinct[best], distinct[worst]
                trace["action"] = "pair"
                self._append(s, distinct[best], distinct[worst], (scores[best], scores[worst], len(distinct)))

        if not s.done and s.rounds >= cfg.max_rounds:
            s.done, s.stop_reason = True, "max_rounds"
        if cfg.keep_trace:
            s.trace.append(trace)

    def _append(
        self, s: _ProblemState, best: int, worst: int | None, scored: tuple[int, int, int] | None
    ) -> None:
        chosen = s.candidates[best]
        step_index = len(s.steps) + 1
        if worst is not None and scored is not None:
            rejected = s.candidates[worst]
            best_score, worst_score, n_distinct = scored
            s.pairs.append(
                StepPair(
                    prompt=s.prompt,
                    chosen=step_completion(chosen.body, chosen.final),
                    rejected=step_completion(rejected.body, rejected.final),
                    problem_id=s.problem.id,
                    step_index=step_index,
                    chosen_score=float(best_score),
                    rejected_score=float(worst_score),
                    is_final_step=chosen.final,
                    metadata={
                        "round": s.rounds,
                        "rejected_is_final_step": rejected.final,
                        "candidates": n_distinct,
                        "max_score": 2 * (n_distinct - 1),
                        **({"rejected_guard": rejected.guard} if worst in s.guarded else {}),
                    },
                )
            )
        s.steps.append(chosen.body)
        if chosen.final:
            s.done = True
            s.stop_reason = "final_answer" if has_final_answer(chosen.body) else "model_ended"

    def _finish(self, s: _ProblemState) -> SearchResult:
        cfg = self.config
        solution = format_steps(s.steps)
        finished = s.stop_reason in ("final_answer", "model_ended")
        final_answer = _extract_answer(solution) if s.steps else None
        correct: bool | None = None
        if (cfg.record_correctness or cfg.drop_wrong) and s.problem.answers:
            correct = finished and final_answer is not None and _check(solution, s.problem)
        pairs = s.pairs
        if correct is not None:
            for p in pairs:
                p.metadata["solution_correct"] = correct
        if cfg.drop_wrong and correct is False:
            pairs = []
        s.counters.problems = 1
        s.counters.steps = len(s.steps)
        s.counters.pairs = len(pairs)
        s.counters.guard_pairs = sum("rejected_guard" in p.metadata for p in pairs)
        s.counters.finished = int(finished)
        s.counters.correct = int(bool(correct))
        return SearchResult(
            problem_id=s.problem.id,
            question=s.problem.question,
            steps=list(s.steps),
            pairs=pairs,
            finished=finished,
            stop_reason=s.stop_reason,
            solution=solution,
            final_answer=final_answer,
            correct=correct,
            counters=s.counters.to_dict(),
            trace=s.trace,
        )


def solve_with_search(
    generator: Generator,
    judge: StepJudge,
    problems: Sequence[Problem],
    config: SearchConfig | None = None,
) -> list[SearchResult]:
    """Test-time scaling (the paper's inference use): build each solution step by step, keeping the
    self-judged best of ``config.width`` candidates. ``result.solution`` is the full canonical text;
    its pairs come for free."""
    return StepSearch(generator, judge, config).run(problems)


__all__ = [
    "SearchConfig",
    "SearchCounters",
    "SearchResult",
    "StepSearch",
    "COPY_MIN_CHARS",
    "GUARDED_SCORE",
    "clean_body",
    "copies_question",
    "ends_solution",
    "guard_key",
    "normalise",
    "order_consistency",
    "pick_best_worst",
    "repeats_step",
    "round_seed",
    "solve_with_search",
    "step_completion",
    "step_prompt",
    "win_scores",
]
