"""Evaluation stages: benchmark accuracy of a model, and step-judge accuracy on held-out pairs.

Used by the loop (every model of a run) and by ``prm-sr eval`` / ``prm-sr judge``, with the same
configs, so a command and the loop give the same records for the same model and settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..evaluate import EvalConfig, evaluate, resolve_prompting
from ..judges.base import StepComparison, missing_verdicts
from ..judges.pairwise import PairwiseStepJudge, StepJudgeConfig
from ..search import SearchConfig
from ..stats import wilson_interval


def eval_stage(
    generator: Any,
    config: EvalConfig,
    out_dir: str | Path,
    *,
    search: SearchConfig | None = None,
    judge: StepJudgeConfig | None = None,
    data_dir: str | Path | None = None,
    model_name: str = "",
    model_id: str | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Accuracy of ``generator`` on ``config.benchmarks``; writes ``<bench>.jsonl`` + ``summary.json``.

    ``few_shot`` and ``open_step`` ``auto`` are resolved for this model
    (:func:`~prm_selfreward.evaluate.resolve_prompting`) and recorded in the summary. With ``search_width > 0`` solutions are built by the
    step search of ``search`` (its every setting; width and few-shot from ``config``) judged by the
    judge of ``judge``: the same search and judge the run trains with. ``model_id`` names the model in
    the records' fingerprint (default: ``model_name``; see :mod:`prm_selfreward.fingerprint`).
    """
    config = resolve_prompting(config, generator)
    few_shot = int(config.few_shot)
    step_judge = None
    if config.search_width > 0:
        step_judge = PairwiseStepJudge.from_config(generator, judge or StepJudgeConfig(), solve_few_shot=few_shot)
    return evaluate(
        generator, config, out_dir, data_dir=data_dir, model_name=model_name, judge=step_judge,
        search=search, show_progress=show_progress, model_id=model_id,
    )


REQUIRED_JUDGE_FIELDS = ("question", "previous_steps", "step_a", "step_b")


def judge_rows(
    generator: Any, rows: Sequence[dict[str, Any]], config: StepJudgeConfig, solve_few_shot: int = 0
) -> tuple[list[dict[str, Any]], PairwiseStepJudge]:
    """Judge every comparison row (``question``, ``previous_steps``, ``step_a``, ``step_b``); each row comes
    back with ``predicted`` (0, 1 or -1), ``probability``, ``p_a`` and ``consistent`` added, in order."""
    judge = PairwiseStepJudge.from_config(generator, config, solve_few_shot=solve_few_shot)
    return judged(judge, rows), judge


def judged(judge: PairwiseStepJudge, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` judged in one ``compare`` call, each with ``predicted``, ``probability``, ``p_a`` and
    ``consistent`` added, and in ``generate`` mode ``judgment``: what the judge wrote (both orders,
    separated by a ``=====`` line), so an unparsable verdict (``predicted`` -1) can be read."""
    comparisons = [StepComparison(r["question"], r["previous_steps"], r["step_a"], r["step_b"]) for r in rows]
    return [
        {**row, "predicted": v.verdict, "probability": v.probability, "p_a": v.extra.get("p_a"),
         "consistent": v.extra.get("consistent"), **({"judgment": v.raw} if v.raw is not None else {})}
        for row, v in zip(rows, judge.compare(comparisons), strict=True)
    ]


JUDGE_CHUNK = 32
"""Comparisons per judge call when judging to a file: the records are written after each chunk."""


def judge_rows_to_jsonl(
    generator: Any,
    rows: Sequence[dict[str, Any]],
    config: StepJudgeConfig,
    out_path: str | Path,
    *,
    keys: Sequence[int] | None = None,
    key: str = "row",
    shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    solve_few_shot: int = 0,
    model: str | None = None,
    chunk_size: int = JUDGE_CHUNK,
    progress_label: str | None = "judge",
    progress_stream: Any = None,
) -> tuple[list[dict[str, Any]], PairwiseStepJudge, dict[str, int]]:
    """:func:`judge_rows` written as it goes and resumable: ``rows`` are judged ``chunk_size`` at a
    time, each judged row appended to ``out_path`` (``shape``-d into the record written, default as
    is) with ``key`` set to its key (``keys``, default its index) plus ``made_by`` and ``fingerprint``.

    A re-run reuses the records already there (:class:`~prm_selfreward.resumable.ResumableOutput`):
    made by another model or judge setting (:func:`~prm_selfreward.fingerprint.judge_made_by`;
    ``model`` names the model, default the generator's name) or for another input item they raise
    :class:`~prm_selfreward.fingerprint.StaleOutputError`; a torn tail is kept or cut. Verdicts do not
    depend on the chunking, so a resumed run gives an uninterrupted run's records. Progress goes
    under ``progress_label`` (None: no report) to ``progress_stream`` (default stdout).

    Returns every record in the order of ``rows`` (reused ones included), the judge (its ``stats``
    cover this call) and ``resumed`` (records reused, torn tails kept / cut, malformed lines)."""
    from ..fingerprint import judge_made_by, model_identity
    from ..progress import ProgressReporter
    from ..resumable import ResumableOutput

    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    keys = list(range(len(rows))) if keys is None else list(keys)
    if len(set(keys)) != len(keys) or len(keys) != len(rows):
        raise ValueError("keys must give every row its own key")
    shape = shape or (lambda r: r)
    judge = PairwiseStepJudge.from_config(generator, config, solve_few_shot=solve_few_shot)
    model = model_identity(model if model is not None else getattr(generator, "name", "") or type(generator).__name__)
    items = {k: r for k, r in zip(keys, rows, strict=True)}
    output = ResumableOutput(out_path, judge_made_by(judge, model), key, items, same=REQUIRED_JUDGE_FIELDS)
    todo = [(k, r) for k, r in items.items() if k not in output.done]
    reporter = ProgressReporter(progress_label or "", len(rows), unit="comparisons", done=len(rows) - len(todo),
                                enabled=progress_label is not None, stream=progress_stream)
    with output, reporter:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            for (k, _), row in zip(chunk, judged(judge, [r for _, r in chunk]), strict=True):
                output.append({**shape(row), key: k})
            reporter.advance(len(chunk))
    return [output.done[k] for k in keys], judge, output.resumed


def judge_accuracy(rows: Sequence[dict[str, Any]], label_key: str = "verdict") -> dict[str, Any]:
    """Accuracy of ``predicted`` against ``label_key`` (a -1 verdict counts as wrong), with its Wilson
    interval, the rows without a verdict (``failures``: no order answered; ``ties``: the two orders
    cancelled, :func:`~prm_selfreward.judges.base.missing_verdicts`) and the share of rows judged the
    same in both orders."""
    labelled = [r for r in rows if r.get(label_key) in (0, 1)]
    n = len(labelled)
    correct = sum(r["predicted"] == r[label_key] for r in labelled)
    consistent = [r["consistent"] for r in labelled if r.get("consistent") is not None]
    low, high = wilson_interval(correct, n)
    return {
        "accuracy": correct / n if n else 0.0, "ci_low": low, "ci_high": high, "total": n, "correct": correct,
        **missing_verdicts(labelled),
        "consistency": sum(consistent) / len(consistent) if consistent else None,
    }


def judge_eval_stage(
    generator: Any,
    rows: Sequence[dict[str, Any]],
    config: StepJudgeConfig,
    out_path: str | Path | None = None,
    solve_few_shot: int = 0,
    *,
    model: str | None = None,
    chunk_size: int = JUDGE_CHUNK,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Step-judge accuracy of ``generator`` on held-out EFT rows (gold in ``verdict``), the paper's
    Table 3. With ``out_path`` the judged rows (each with ``row``, its index in ``rows``) are appended
    as they are judged and a re-run resumes (:func:`judge_rows_to_jsonl`; ``resumed`` in the summary
    says what it reused); without, they are judged in memory."""
    resumed: dict[str, int] | None = None
    if out_path is None:
        out, _ = judge_rows(generator, rows, config, solve_few_shot)
    else:
        out, _, resumed = judge_rows_to_jsonl(
            generator, rows, config, out_path, solve_few_shot=solve_few_shot, model=model, chunk_size=chunk_size,
            progress_label=f"judge_eval {config.mode}" if show_progress else None,
        )
    summary = judge_accuracy(out)
    summary.pop("correct")
    if resumed is not None and resumed["records"]:
        summary["resumed"] = resumed
    return summary


def judge_eval_modes_stage(
    generator: Any,
    rows: Sequence[dict[str, Any]],
    config: StepJudgeConfig,
    modes: Sequence[str],
    out_path: Callable[[str], str | Path],
    generate_limit: int = 0,
    solve_few_shot: int = 0,
    *,
    model: str | None = None,
    chunk_size: int = JUDGE_CHUNK,
    show_progress: bool = True,
) -> dict[str, Any]:
    """:func:`judge_eval_stage` in every mode of ``modes`` on the same ``rows`` (``generate`` on the
    first ``generate_limit`` only, when > 0), each mode's judged rows written to ``out_path(mode)``.

    Returns the summary of ``config.mode`` (the search's judge) with ``mode`` and ``modes``: each mode's
    summary (accuracy with its Wilson interval, total, failures, position consistency)."""
    by_mode: dict[str, Any] = {}
    for mode in dict.fromkeys([config.mode, *modes]):
        mine = list(rows[:generate_limit]) if mode == "generate" and generate_limit else list(rows)
        by_mode[mode] = judge_eval_stage(
            generator, mine, replace(config, mode=mode), out_path(mode), solve_few_shot=solve_few_shot,
            model=model, chunk_size=chunk_size, show_progress=show_progress,
        )
    return {**by_mode[config.mode], "mode": config.mode, "modes": by_mode}
