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
from ..io import write_jsonl
from ..judges.base import StepComparison
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
    comparisons = [StepComparison(r["question"], r["previous_steps"], r["step_a"], r["step_b"]) for r in rows]
    verdicts = judge.compare(comparisons)
    out = [
        {**row, "predicted": v.verdict, "probability": v.probability, "p_a": v.extra.get("p_a"),
         "consistent": v.extra.get("consistent")}
        for row, v in zip(rows, verdicts, strict=True)
    ]
    return out, judge


def judge_accuracy(rows: Sequence[dict[str, Any]], label_key: str = "verdict") -> dict[str, Any]:
    """Accuracy of ``predicted`` against ``label_key`` (a -1 verdict counts as wrong), with its Wilson
    interval, failures and the share of rows judged the same in both orders."""
    labelled = [r for r in rows if r.get(label_key) in (0, 1)]
    n = len(labelled)
    correct = sum(r["predicted"] == r[label_key] for r in labelled)
    consistent = [r["consistent"] for r in labelled if r.get("consistent") is not None]
    low, high = wilson_interval(correct, n)
    return {
        "accuracy": correct / n if n else 0.0, "ci_low": low, "ci_high": high, "total": n, "correct": correct,
        "failures": sum(r["predicted"] == -1 for r in labelled),
        "consistency": sum(consistent) / len(consistent) if consistent else None,
    }


def judge_eval_stage(
    generator: Any,
    rows: Sequence[dict[str, Any]],
    config: StepJudgeConfig,
    out_path: str | Path | None = None,
    solve_few_shot: int = 0,
) -> dict[str, Any]:
    """Step-judge accuracy of ``generator`` on held-out EFT rows (gold in ``verdict``), the paper's
    Table 3; writes the judged rows to ``out_path`` when given."""
    out, _ = judge_rows(generator, rows, config, solve_few_shot)
    if out_path is not None:
        write_jsonl(out_path, out)
    summary = judge_accuracy(out)
    summary.pop("correct")
    return summary


def judge_eval_modes_stage(
    generator: Any,
    rows: Sequence[dict[str, Any]],
    config: StepJudgeConfig,
    modes: Sequence[str],
    out_path: Callable[[str], str | Path],
    generate_limit: int = 0,
    solve_few_shot: int = 0,
) -> dict[str, Any]:
    """:func:`judge_eval_stage` in every mode of ``modes`` on the same ``rows`` (``generate`` on the
    first ``generate_limit`` only, when > 0), each mode's judged rows written to ``out_path(mode)``.

    Returns the summary of ``config.mode`` (the search's judge) with ``mode`` and ``modes``: each mode's
    summary (accuracy with its Wilson interval, total, failures, position consistency)."""
    by_mode: dict[str, Any] = {}
    for mode in dict.fromkeys([config.mode, *modes]):
        mine = list(rows[:generate_limit]) if mode == "generate" and generate_limit else list(rows)
        by_mode[mode] = judge_eval_stage(
            generator, mine, replace(config, mode=mode), out_path(mode), solve_few_shot=solve_few_shot
        )
    return {**by_mode[config.mode], "mode": config.mode, "modes": by_mode}
