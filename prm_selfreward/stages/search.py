"""Search and pair stages of the process-based method: step search with the model as its own judge,
then the step-level pair builder. Used by the loop (``search/M<t>``, ``pairs/M<t>``) and ``prm-sr pairs``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..judges.pairwise import PairwiseStepJudge, StepJudgeConfig
from ..pairs import PairStats, build_step_pairs, write_pair_dataset
from ..records import Problem, StepPair
from ..search import SearchConfig, SearchCounters, SearchResult, StepSearch


def search_stage(
    generator: Any,
    problems: Sequence[Problem],
    search: SearchConfig,
    judge: StepJudgeConfig,
    out_path: str | Path,
    on_chunk: Callable[[int, int], None] | None = None,
    on_round: Callable[[int, int], None] | None = None,
    model: str | None = None,
) -> tuple[list[SearchResult], StepSearch]:
    """Search every problem with ``generator`` writing candidates and judging them itself (the judge's
    solving prompt uses the search's few-shot count); results appended to ``out_path`` chunk by chunk,
    so a re-run resumes. Returns the results of every problem (earlier runs' included) and the search
    (its ``counters``, ``usage`` and ``resumed`` cover this call only). ``model`` names the generator in
    the records' fingerprint (records of another model or other settings in ``out_path`` are an error)."""
    step_judge = PairwiseStepJudge.from_config(generator, judge, solve_few_shot=search.few_shot)
    searcher = StepSearch(generator, step_judge, search)
    results = searcher.run_to_jsonl(list(problems), Path(out_path), on_chunk=on_chunk, on_round=on_round, model=model)
    return results, searcher


def search_summary(results: Sequence[SearchResult]) -> dict[str, Any]:
    """What the searches did, summed over ``results``: every counter, finished and solved solutions,
    and the judge's consistency over candidate pairs judged in both orders."""
    totals = SearchCounters()
    for r in results:
        totals.add(r.counters)
    summary: dict[str, Any] = totals.to_dict()
    summary["finished"] = sum(bool(r.finished) for r in results)
    consistency = totals.consistency
    summary["judge_consistency"] = None if consistency is None else round(consistency, 4)
    checked = [r.correct for r in results if r.correct is not None]
    summary["solved"] = sum(checked) if checked else None
    return summary


def pairs_stage(
    results: Sequence[SearchResult], search: SearchConfig, out_path: str | Path
) -> tuple[list[StepPair], PairStats]:
    """Step-level DPO pairs from search ``results`` (``min_margin`` and ``drop_wrong`` of ``search``),
    written to ``out_path`` as a prompt/chosen/rejected dataset."""
    pairs, stats = build_step_pairs(list(results), min_margin=search.min_margin, drop_wrong=search.drop_wrong)
    write_pair_dataset(pairs, Path(out_path))
    return pairs, stats
