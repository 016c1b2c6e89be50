"""The pair audit: do the judge's step pairs point towards correct solutions?

Training problems have known answers, so a step pair can be tested on-policy, which neither paper
does: from the pair's prompt (question + steps 1..l-1, ending in ``Step l:``) followed by the chosen
step, and followed by the rejected step, the model that made the pair (M(t-1)) writes ``rollouts``
sampled completions each; each completion's final answer is checked against the problem's answer
(:func:`prm_selfreward.grading.check`). A pair counts as *above* when the chosen step's success rate
is higher than the rejected step's, *equal*, or *below*; the sign test over above vs below (ties left
out) says whether the judge's preferences beat a coin. A final step (one that states the answer) is
graded as it is, without rollouts: its success rate is 0 or 1.

One generate call for every rollout of every audited pair (``n = rollouts`` per prompt), so the
backend batches them. Records go to ``iter_<t>/audit.jsonl`` (one per audited pair, with every
rollout's text, extracted answer and verdict, so the audit can be re-graded), the summary to the
manifest.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import option
from .io import write_jsonl
from .models.base import GenerationParams
from .prompts import SOLUTION_STOP
from .records import Problem
from .stats import sign_test_p, wilson_interval


@dataclass
class AuditConfig:
    """The optional pair audit after each ``pairs/M<t>`` stage (the run config's ``audit:`` section)."""

    pairs: int = option(0, minimum=0, help="Step pairs of each iteration audited (a seeded sample); 0 = no audit stage.")
    rollouts: int = option(4, minimum=1, help="Sampled completions from prefix + chosen and from prefix + rejected each.")
    temperature: float = option(0.7, minimum=0.0, exclusive_minimum=True, help="Rollout sampling temperature.")
    top_p: float = option(0.95, minimum=0.0, exclusive_minimum=True, maximum=1.0, help="Rollout nucleus sampling.")
    max_new_tokens: int = option(256, minimum=1, help="Generation budget of one rollout (the rest of a solution).")
    seed: int = option(0, help="Seed of the pair sample and of the rollouts.")
    check_timeout: float = option(5.0, minimum=0.0, exclusive_minimum=True, help="Seconds allowed per answer comparison.")


OUTCOMES = ("above", "equal", "below")


def sample_pairs(rows: Sequence[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` of ``rows`` (all when fewer), a seeded sample kept in file order."""
    if n >= len(rows):
        return list(rows)
    picked = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in picked]


def outcome(chosen_rate: float, rejected_rate: float) -> str:
    """``above`` / ``equal`` / ``below``: the chosen step's success rate against the rejected one's."""
    if chosen_rate > rejected_rate:
        return "above"
    return "below" if chosen_rate < rejected_rate else "equal"


def _grade(text: str, problem: Problem, timeout: float) -> dict[str, Any]:
    from .grading import check

    v = check(text, problem.answers, benchmark=problem.benchmark, timeout=timeout,
              unit=problem.metadata.get("unit") or None)
    return {"predicted": v.predicted, "correct": bool(v.correct), "reason": v.reason}


def audit_pairs(
    generator: Any,
    rows: Sequence[dict[str, Any]],
    problems: Sequence[Problem],
    config: AuditConfig,
    out_path: str | Path | None = None,
) -> dict[str, Any]:
    """Audit a sample of the step-pair ``rows`` (``pairs.jsonl`` rows: prompt, chosen, rejected,
    is_final_step, rejected_is_final_step, problem_id) with ``generator``; ``problems`` give the answers.

    Pairs whose problem has no answer are skipped (counted in ``no_answer``). Writes one record per
    audited pair to ``out_path`` when given. Returns the summary: pairs audited, rollouts per step,
    above / equal / below counts, the sign-test p-value of above vs below, and the mean success rates
    of the chosen and rejected steps with their Wilson intervals (over all their rollouts)."""
    by_id = {p.id: p for p in problems}
    sample = sample_pairs(rows, config.pairs, config.seed)
    usable = [r for r in sample if r.get("problem_id") in by_id and by_id[r["problem_id"]].answers]
    k = config.rollouts
    sides = [(r, side) for r in usable for side in ("chosen", "rejected")]
    final = {(id(r), side): bool(r.get("is_final_step" if side == "chosen" else "rejected_is_final_step"))
             for r, side in sides}
    to_roll = [(r, side) for r, side in sides if not final[(id(r), side)]]
    params = GenerationParams(max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                              top_p=config.top_p, stop=list(SOLUTION_STOP), seed=config.seed)
    completions: dict[tuple[int, str], list[str]] = {}
    if to_roll:
        outputs = generator.generate([r["prompt"] + r[side] for r, side in to_roll], n=k, params=params)
        for (r, side), outs in zip(to_roll, outputs, strict=True):
            completions[(id(r), side)] = [r[side] + c.text for c in outs]
    records: list[dict[str, Any]] = []
    counts = dict.fromkeys(OUTCOMES, 0)
    successes = {"chosen": 0, "rejected": 0}
    trials = {"chosen": 0, "rejected": 0}
    for r in usable:
        problem = by_id[r["problem_id"]]
        record: dict[str, Any] = {"problem_id": r["problem_id"], "step_index": r.get("step_index"),
                                  "prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}
        rates = {}
        for side in ("chosen", "rejected"):
            texts = [r[side]] if final[(id(r), side)] else completions[(id(r), side)]
            graded = [{"text": t, **_grade(t, problem, config.check_timeout)} for t in texts]
            wins = sum(g["correct"] for g in graded)
            rates[side] = wins / len(graded)
            # A final step is one deterministic outcome; count it k times so both sides weigh the same.
            weight = k if final[(id(r), side)] else 1
            successes[side] += wins * weight
            trials[side] += len(graded) * weight
            record[f"{side}_rollouts"] = graded
            record[f"{side}_rate"] = rates[side]
        record["outcome"] = outcome(rates["chosen"], rates["rejected"])
        counts[record["outcome"]] += 1
        records.append(record)
    if out_path is not None:
        write_jsonl(out_path, records)
    summary: dict[str, Any] = {"pairs": len(records), "rollouts": k, "no_answer": len(sample) - len(usable),
                               **counts, "sign_p": sign_test_p(counts["above"], counts["below"])}
    for side in ("chosen", "rejected"):
        low, high = wilson_interval(successes[side], trials[side])
        summary[f"{side}_success"] = successes[side] / trials[side] if trials[side] else None
        summary[f"{side}_ci"] = [low, high]
    return summary
