"""Benchmark evaluation: solve each problem, check the answer with the sympy checker, summarise.

``evaluate(generator, problems, config, out_path)`` is the library function the iteration loop calls;
``prm-sr eval`` wraps it. Records are appended to ``<out_dir>/<benchmark>.jsonl`` as they are
checked, so a killed evaluation resumes where it stopped (finished problem ids are skipped).

Sampling: greedy by default (as the paper). With ``samples=K > 1`` each problem gets K samples at
``temperature``; ``correct`` is the majority-vote answer's verdict (maj@K) and ``pass@K`` is
reported beside it. With ``search_width=W`` each solution is built step by step with the model's own
pairwise judgments (the paper's test-time scaling; see ``search.py``).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import option
from .fingerprint import check_made_by, eval_made_by, model_identity, stamp
from .io import JsonlAppender, JsonlErrors, atomic_write_json, read_jsonl
from .models.base import GenerationParams, Generator
from .progress import ProgressReporter
from .prompts import MAX_FEW_SHOT, SOLUTION_STOP, STEP_OPENER, solve_prompt
from .records import EvalRecord, Problem
from .stats import wilson_interval

DEFAULT_BENCHMARKS = ["gsm8k", "math500", "olympiadbench"]


AUTO_FEW_SHOT = 3
"""Worked examples ``few_shot: auto`` gives a base model (embedded:gemma-3-270m, a base model, solves 0 of
20 GSM8K problems zero-shot and 7 of 100 with three examples); a chat model (its tokenizer has a chat
template) and a model trained on the step format get none."""


@dataclass
class EvalConfig:
    benchmarks: list[str] = option(DEFAULT_BENCHMARKS, help="Benchmarks to evaluate every model on.")
    limit: dict[str, int] = option(
        {}, minimum=1,
        help="Problems per benchmark (first N, in file order); a benchmark not named is evaluated in full.",
    )
    few_shot: int | str = option(
        "auto",
        help="Worked examples before the problem (0-4), or auto: 3 for a base model, 0 for a chat model "
        "(its tokenizer has a chat template) and for a model this toolkit trained (it learnt the step format in SFT).",
    )
    open_step: bool | str = option(
        "auto",
        help="Open the answer with 'Step 1:' (the prompt ends with it; the recorded completion starts with it), "
        "as the step search does; auto: on for a chat model, whose reply otherwise often starts in prose.",
    )
    max_new_tokens: int = option(512, minimum=1, help="Generation budget per solution.")
    samples: int = option(1, minimum=1, help="Samples per problem; >1 reports maj@K (as `correct`) and pass@K.")
    temperature: float = option(0.7, minimum=0.0, help="Sampling temperature when samples > 1 (greedy otherwise).")
    top_p: float = option(0.95, minimum=0.0, exclusive_minimum=True, maximum=1.0, help="Nucleus sampling when samples > 1.")
    search_width: int = option(
        0, minimum=0,
        help="If > 0, build solutions step by step with W self-judged candidates (the run's search and "
        "judge settings apply, with this width).",
    )
    chunk_size: int = option(16, minimum=1, help="Problems per generate call (records are written after each chunk).")
    seed: int = option(0, help="Sampling seed.")
    check_timeout: float = option(5.0, minimum=0.0, exclusive_minimum=True, help="Seconds allowed per answer comparison.")

    def __post_init__(self) -> None:
        if isinstance(self.few_shot, str) and self.few_shot != "auto":
            raise ValueError(f"few_shot must be a number of examples or 'auto', got {self.few_shot!r}")
        if isinstance(self.open_step, str) and self.open_step != "auto":
            raise ValueError(f"open_step must be true, false or 'auto', got {self.open_step!r}")
        if isinstance(self.few_shot, int) and not 0 <= self.few_shot <= MAX_FEW_SHOT:
            raise ValueError(f"few_shot must be between 0 and {MAX_FEW_SHOT}, got {self.few_shot}")
        if self.search_width == 1:
            raise ValueError("search_width must be 0 (off) or at least 2 (a comparison needs two candidates)")


def resolve_few_shot(few_shot: int | str, model: str, chat: bool = False) -> int:
    """The worked-example count for ``model``: ``few_shot`` itself, or for ``auto`` none when the model
    is a chat model (``chat``: :func:`prm_selfreward.prompts.is_chat`) or a directory this toolkit
    trained (SFT taught it the step format), and :data:`AUTO_FEW_SHOT` else."""
    if few_shot != "auto":
        return int(few_shot)
    from .train.common import is_trained_model

    return 0 if chat or (model and is_trained_model(model)) else AUTO_FEW_SHOT


def resolve_open_step(open_step: bool | str, chat: bool) -> bool:
    """``open_step`` itself, or for ``auto`` whether the model is a chat model."""
    return chat if open_step == "auto" else bool(open_step)


def resolve_prompting(config: EvalConfig, generator: Any) -> EvalConfig:
    """``config`` with ``few_shot`` and ``open_step`` resolved for ``generator`` (``auto`` replaced)."""
    from dataclasses import replace

    from .prompts import is_chat

    chat = is_chat(generator)
    return replace(
        config,
        few_shot=resolve_few_shot(config.few_shot, getattr(generator, "name", "") or "", chat),
        open_step=resolve_open_step(config.open_step, chat),
    )


def majority_answer(
    predictions: Sequence[str | None], same: Callable[[str, str], bool]
) -> tuple[int | None, int]:
    """Index of a representative of the largest group of equivalent predictions, and the group size.

    Groups by the checker's equivalence (``same``), not string equality, so ``0.5`` and ``\\frac12``
    vote together. Ties go to the group seen first; ``None`` predictions never vote.
    """
    groups: list[list[int]] = []
    for i, pred in enumerate(predictions):
        if pred is None:
            continue
        for group in groups:
            if same(predictions[group[0]], pred):  # type: ignore[arg-type]
                group.append(i)
                break
        else:
            groups.append([i])
    if not groups:
        return None, 0
    best = max(groups, key=len)  # max keeps the first of equal-sized groups
    return best[0], len(best)


def count_steps(solution: str) -> int:
    from .steps import split_steps

    return len([s for s in split_steps(solution, format="auto") if s.strip()])


def _grade(completion: str, problem: Problem, timeout: float):
    from .grading import check

    return check(completion, problem.answers, benchmark=problem.benchmark, timeout=timeout,
                 unit=problem.metadata.get("unit") or None)


def _record(
    problem: Problem, prompt: str, texts: list[str], tokens: list[int], config: EvalConfig,
    made_by: dict[str, Any],
) -> EvalRecord:
    from .grading import answers_equal

    verdicts = [_grade(text, problem, config.check_timeout) for text in texts]
    if len(texts) == 1:
        chosen = 0
        samples: list[dict[str, Any]] = []
    else:
        preds = [v.predicted for v in verdicts]
        idx, _ = majority_answer(preds, lambda a, b: answers_equal(a, b, timeout=config.check_timeout)[0])
        chosen = 0 if idx is None else idx
        samples = [
            {"completion": t, "predicted": v.predicted, "correct": v.correct, "reason": v.reason, "tokens": n}
            for t, v, n in zip(texts, verdicts, tokens, strict=True)
        ]
    v = verdicts[chosen]
    return EvalRecord(
        id=problem.id,
        prompt=prompt,
        completion=texts[chosen],
        predicted=v.predicted,
        gold=list(problem.answers),
        correct=bool(v.correct),
        reason=v.reason,
        tokens=tokens[chosen],
        benchmark=problem.benchmark,
        samples=samples,
        **stamp({}, made_by),
    )


def regrade(record: EvalRecord, problem: Problem, config: EvalConfig, made_by: dict[str, Any]) -> EvalRecord:
    """``record`` graded again from its completion(s) against ``problem`` with today's checker: what a
    resumed evaluation does with the records it reuses, so one stage's records share one checker even
    when the checker improved between two attempts (the record's prompt and fingerprint are kept)."""
    if record.samples:
        texts = [str(s["completion"]) for s in record.samples]
        tokens = [int(s.get("tokens", 0)) for s in record.samples]
    else:
        texts, tokens = [record.completion], [record.tokens]
    return _record(problem, record.prompt, texts, tokens, config, made_by)


def _solve_chunk(
    generator: Generator, problems: list[Problem], config: EvalConfig, judge: Any = None, search: Any = None
) -> list[tuple[str, list[str], list[int]]]:
    """(prompt, texts, token counts) per problem: plain sampling, or step search when configured."""
    config = resolve_prompting(config, generator)
    opener = STEP_OPENER if config.open_step else ""
    prompts = [solve_prompt(generator, p.question, int(config.few_shot)) + opener for p in problems]
    if config.search_width > 0:
        from .search import solve_with_search

        results = solve_with_search(generator, judge, problems, search)
        return [
            (prompt, [r.solution], [r.counters.get("generated_tokens", 0)])
            for prompt, r in zip(prompts, results, strict=True)
        ]
    sampled = config.samples > 1
    params = GenerationParams(
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature if sampled else 0.0,
        top_p=config.top_p if sampled else 1.0,
        stop=list(SOLUTION_STOP),
        seed=config.seed,
    )
    outputs = generator.generate(prompts, n=config.samples, params=params)
    # The opener is part of the answer: the recorded completion is the whole solution, "Step 1: ...".
    return [
        (prompt.removesuffix(opener) if opener else prompt, [opener + c.text for c in comps],
         [c.completion_tokens for c in comps])
        for prompt, comps in zip(prompts, outputs, strict=True)
    ]


@dataclass
class BenchmarkSummary:
    benchmark: str
    total: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    no_answer: int
    timeouts: int
    avg_steps: float
    avg_tokens: float
    pass_at_k: float | None
    samples: int
    wall_time_s: float
    resumed: dict[str, int] = field(default_factory=dict)
    """What a resume found: ``records`` reused, ``torn_tail_kept`` (a complete last record whose
    newline a kill cut off, kept), ``torn_tail_cut`` (a partial last line, removed) and other
    ``malformed_lines`` skipped."""
    repeated_step: int = 0
    """Completions that repeat a step (:func:`~prm_selfreward.degeneracy.repeats_a_step`)."""
    repeated_step_share: float | None = None
    looping: int = 0
    """Completions that loop: one stretch of text written again and again (:func:`~prm_selfreward.degeneracy.loops`)."""
    looping_share: float | None = None
    several_answers: int = 0
    """Completions that state more than one distinct final answer
    (:func:`~prm_selfreward.degeneracy.several_answers`)."""
    several_answers_share: float | None = None
    degenerate_completions: int = 0
    """Completions that do any of these (repeat a step, loop or state several answers)."""
    degenerate_right: int = 0
    """Of those, the ones graded right: at most this many right answers can come from degeneracy."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarise(benchmark: str, records: list[EvalRecord], samples: int, wall_time_s: float) -> BenchmarkSummary:
    from .degeneracy import degeneracy

    total = len(records)
    degenerate = degeneracy([r.completion for r in records], [r.correct for r in records])
    correct = sum(r.correct for r in records)
    low, high = wilson_interval(correct, total)
    pass_k = None
    if samples > 1 and total:
        pass_k = sum(any(s["correct"] for s in r.samples) for r in records) / total
    return BenchmarkSummary(
        benchmark=benchmark,
        total=total,
        correct=correct,
        accuracy=correct / total if total else 0.0,
        ci_low=low,
        ci_high=high,
        no_answer=sum(r.reason.startswith("no_answer") for r in records),
        timeouts=sum(r.reason.startswith("timeout") for r in records),
        avg_steps=sum(count_steps(r.completion) for r in records) / total if total else 0.0,
        avg_tokens=sum(r.tokens for r in records) / total if total else 0.0,
        pass_at_k=pass_k,
        samples=samples,
        wall_time_s=wall_time_s,
        repeated_step=degenerate.repeated_step,
        repeated_step_share=degenerate.repeated_step_share,
        looping=degenerate.looping or 0,
        looping_share=degenerate.looping_share,
        several_answers=degenerate.several_answers,
        several_answers_share=degenerate.several_answers_share,
        degenerate_completions=degenerate.degenerate_completions or 0,
        degenerate_right=degenerate.degenerate_right or 0,
    )


def evaluate_benchmark(
    generator: Generator,
    problems: list[Problem],
    config: EvalConfig,
    out_path: str | Path,
    judge: Any = None,
    progress_label: str | None = None,
    search: Any = None,
    made_by: dict[str, Any] | None = None,
) -> BenchmarkSummary:
    """Evaluate ``problems`` (one benchmark), appending records to ``out_path``; resumes by problem id.

    Every record carries ``made_by`` (default: :func:`~prm_selfreward.fingerprint.eval_made_by` of
    ``config`` with no model name) and its fingerprint; records already in ``out_path`` from another
    model or other settings raise :class:`~prm_selfreward.fingerprint.StaleOutputError` before any
    generation. A torn last line is kept if complete, cut otherwise (counted in ``resumed``).
    With ``progress_label`` the problems' progress is reported under it (:class:`~prm_selfreward.progress.ProgressReporter`:
    a bar on a terminal, plain lines in a log). Returns the summary over every problem of ``problems`` (earlier runs' records included).
    """
    out_path = Path(out_path)
    made_by = made_by if made_by is not None else eval_made_by(config, "")
    start = time.perf_counter()
    done: dict[str, EvalRecord] = {}
    errors = JsonlErrors()
    regraded = 0
    if out_path.exists():
        rows = read_jsonl(out_path, errors)
        check_made_by(out_path, rows, made_by)
        by_id = {p.id: p for p in problems}
        for row in rows:
            rec = EvalRecord.from_dict(row)
            if rec.id in by_id:  # graded again: the completions are reused, the verdict is today's checker's
                again = regrade(rec, by_id[rec.id], config, made_by)
                regraded += (again.correct, again.predicted) != (rec.correct, rec.predicted)
                rec = again
            done[rec.id] = rec
    wanted = {p.id for p in problems}
    todo = [p for p in problems if p.id not in done]
    reporter = ProgressReporter(progress_label or "", len(problems), unit="problems",
                                done=len(problems) - len(todo), enabled=progress_label is not None)
    with JsonlAppender(out_path) as out, reporter:
        for i in range(0, len(todo), max(1, config.chunk_size)):
            chunk = todo[i : i + config.chunk_size]
            for problem, (prompt, texts, tokens) in zip(
                chunk, _solve_chunk(generator, chunk, config, judge, search), strict=True
            ):
                rec = _record(problem, prompt, texts, tokens, config, made_by)
                out.append(rec.to_dict())
                done[rec.id] = rec
            reporter.advance(len(chunk))
    records = [done[p.id] for p in problems if p.id in wanted]
    benchmark = problems[0].benchmark if problems else ""
    summary = summarise(benchmark, records, config.samples, time.perf_counter() - start)
    summary.resumed = {
        "records": len(problems) - len(todo),
        "regraded_changed": regraded,
        **out.repair.to_dict(),
        "malformed_lines": len(errors) - out.repair.cut,
    }
    return summary


def select_problems(name: str, config: EvalConfig, data_dir: str | Path | None) -> list[Problem]:
    from .data import load_benchmark

    return load_benchmark(name, split="test", data_dir=data_dir, limit=config.limit.get(name))


def environment_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("prm-selfreward", "torch", "transformers", "trl", "peft", "sympy", "latex2sympy2_extended"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def evaluate(
    generator: Generator,
    config: EvalConfig,
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    model_name: str = "",
    judge: Any = None,
    search: Any = None,
    show_progress: bool = True,
    model_id: str | None = None,
) -> dict[str, Any]:
    """Evaluate on every configured benchmark; writes ``<bench>.jsonl`` and ``summary.json`` in ``out_dir``.

    ``config.few_shot`` and ``config.open_step`` ``auto`` are resolved for ``generator``
    (:func:`resolve_prompting`). With
    ``config.search_width > 0``, ``search`` (a :class:`~prm_selfreward.search.SearchConfig`, default: the
    defaults; its width, few-shot and seed are the eval's) and ``judge`` (a step judge, default: one from the default
    :class:`~prm_selfreward.judges.pairwise.StepJudgeConfig`) build the solutions;
    :func:`prm_selfreward.stages.eval_stage` passes the run's.

    ``model_id`` names the model in the records' fingerprint (default: ``model_name``, a local path
    resolved); records in ``out_dir`` made by another model or other generation settings raise
    :class:`~prm_selfreward.fingerprint.StaleOutputError` naming the difference, before any generation.
    """
    from dataclasses import replace

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = resolve_prompting(config, generator)
    if config.search_width > 0:
        from .search import SearchConfig

        # The eval's width, few-shot and seed; every other search setting from ``search``.
        search = replace(search or SearchConfig(), width=config.search_width, few_shot=int(config.few_shot),
                         seed=config.seed)
        if judge is None:
            from .judges.pairwise import PairwiseStepJudge, StepJudgeConfig

            judge = PairwiseStepJudge.from_config(generator, StepJudgeConfig(), solve_few_shot=int(config.few_shot))
    start = time.perf_counter()
    made_by = eval_made_by(config, model_identity(model_id if model_id is not None else model_name), search, judge)
    summaries: dict[str, Any] = {}
    for name in config.benchmarks:  # every benchmark's old records, before the first is generated
        path = out_dir / f"{name}.jsonl"
        if path.exists():
            check_made_by(path, read_jsonl(path), made_by)
    problem_sets = {name: select_problems(name, config, data_dir) for name in config.benchmarks}
    for name, problems in problem_sets.items():
        summary = evaluate_benchmark(
            generator, problems, config, out_dir / f"{name}.jsonl", judge,
            progress_label=" ".join(x for x in ("eval", Path(model_name).name, name) if x) if show_progress else None,
            search=search, made_by=made_by,
        )
        summaries[name] = summary.to_dict()
    result = {
        "model": model_name,
        "benchmarks": summaries,
        "config": dict(config.__dict__),
        "few_shot": config.few_shot,
        "versions": environment_versions(),
        "wall_time_s": time.perf_counter() - start,
    }
    atomic_write_json(out_dir / "summary.json", result)
    return result


def summary_table(result: dict[str, Any], title: str = "Evaluation"):
    """A rich table of an :func:`evaluate` result."""
    from rich.table import Table

    shots = result.get("few_shot")
    table = Table(title=f"{title}: {result.get('model', '')}" + (f" ({shots}-shot)" if shots is not None else ""))
    sampled = any(s["pass_at_k"] is not None for s in result["benchmarks"].values())
    columns = ["benchmark", "n", "accuracy", "95% CI"] + (["pass@K"] if sampled else [])
    for col in columns + ["no ans.", "steps", "tokens", "time"]:
        table.add_column(col, justify="left" if col == "benchmark" else "right", no_wrap=True)
    for name, s in result["benchmarks"].items():
        cells = [name, str(s["total"]), f"{100 * s['accuracy']:.1f}%",
                 f"{100 * s['ci_low']:.1f}-{100 * s['ci_high']:.1f}"]
        if sampled:
            cells.append("-" if s["pass_at_k"] is None else f"{100 * s['pass_at_k']:.1f}%")
        cells += [str(s["no_answer"]), f"{s['avg_steps']:.1f}", f"{s['avg_tokens']:.0f}", f"{s['wall_time_s']:.0f}s"]
        table.add_row(*cells)
    return table
