"""The pair audit: do the judge's step pairs point towards correct solutions?

Training problems have known answers, so a step pair can be tested on-policy, which neither paper
does: from the pair's prompt (question + steps 1..l-1, ending in ``Step l:``) followed by the chosen
step, and followed by the rejected step, the model that made the pair (M(t-1)) writes ``rollouts``
sampled completions each; each completion's final answer is checked against the problem's answer
(:func:`prm_selfreward.grading.check`). A pair counts as *above* when the chosen step's success rate
is higher than the rejected step's, *equal*, or *below*; the sign test over above vs below (ties left
out) says whether the judge's preferences beat a coin. A final step (one that states the answer) is
graded as it is, without rollouts: its success rate is 0 or 1.

One generate call per chunk of ``chunk_size`` audited pairs, for every rollout of both their steps
(``n = rollouts`` per prompt), so the backend batches them. Records go to ``iter_<t>/audit.jsonl`` as
each chunk is graded (one per audited pair, with ``row``, its line in ``pairs.jsonl`` counted from 0,
and every rollout's text, extracted answer and verdict, so the audit can be re-graded), the summary to
the manifest. A killed audit resumes: chunks are fixed slices of the sample, each with its own seed,
and a chunk with any record missing is rolled out whole again (only the missing records are
appended), so a resumed audit writes the records of an uninterrupted one; records of another model,
other settings or other pairs are an error (:class:`~prm_selfreward.resumable.ResumableOutput`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import option
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
    chunk_size: int = option(
        16, minimum=1,
        help="Pairs rolled out per generate call; records are written after each chunk, so a killed audit "
        "resumes from the last (part of the rollouts' seeding: changing it starts a new audit).",
    )


OUTCOMES = ("above", "equal", "below")


def sample_indices(total: int, n: int, seed: int) -> list[int]:
    """Indices of ``n`` of ``total`` rows (all when fewer), a seeded sample in file order."""
    if n >= total:
        return list(range(total))
    return sorted(random.Random(seed).sample(range(total), n))


def sample_pairs(rows: Sequence[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` of ``rows`` (all when fewer), a seeded sample kept in file order."""
    return [rows[i] for i in sample_indices(len(rows), n, seed)]


def chunk_seed(seed: int, chunk: int) -> int:
    """The rollout seed of chunk ``chunk`` (the first keeps ``seed``)."""
    return seed + 1_000_003 * chunk


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


SAME_PAIR = ("problem_id", "prompt", "chosen", "rejected")
"""What a record keeps of its pair: a resumed audit checks them against the pair of the same ``row``."""


def _is_final(row: dict[str, Any], side: str) -> bool:
    return bool(row.get("is_final_step" if side == "chosen" else "rejected_is_final_step"))


def _audit_chunk(
    generator: Any, chunk: list[tuple[int, dict[str, Any]]], by_id: dict[str, Problem], config: AuditConfig,
    seed: int,
) -> list[dict[str, Any]]:
    """The records of one chunk of (row index, pair): one generate call for its rollouts, then grading."""
    k = config.rollouts
    to_roll = [(i, r, side) for i, r in chunk for side in ("chosen", "rejected") if not _is_final(r, side)]
    params = GenerationParams(max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                              top_p=config.top_p, stop=list(SOLUTION_STOP), seed=seed)
    completions: dict[tuple[int, str], list[str]] = {}
    if to_roll:
        outputs = generator.generate([r["prompt"] + r[side] for _, r, side in to_roll], n=k, params=params)
        for (i, r, side), outs in zip(to_roll, outputs, strict=True):
            completions[(i, side)] = [r[side] + c.text for c in outs]
    records = []
    for i, r in chunk:
        problem = by_id[r["problem_id"]]
        record: dict[str, Any] = {"row": i, "problem_id": r["problem_id"], "step_index": r.get("step_index"),
                                  "prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}
        rates = {}
        for side in ("chosen", "rejected"):
            texts = [r[side]] if _is_final(r, side) else completions[(i, side)]
            graded = [{"text": t, **_grade(t, problem, config.check_timeout)} for t in texts]
            rates[side] = sum(g["correct"] for g in graded) / len(graded)
            record[f"{side}_rollouts"] = graded
            record[f"{side}_rate"] = rates[side]
        record["outcome"] = outcome(rates["chosen"], rates["rejected"])
        records.append(record)
    return records


def audit_pairs(
    generator: Any,
    rows: Sequence[dict[str, Any]],
    problems: Sequence[Problem],
    config: AuditConfig,
    out_path: str | Path | None = None,
    *,
    model: str | None = None,
    progress_label: str | None = "audit",
) -> dict[str, Any]:
    """Audit a sample of the step-pair ``rows`` (``pairs.jsonl`` rows: prompt, chosen, rejected,
    is_final_step, rejected_is_final_step, problem_id) with ``generator``; ``problems`` give the answers.

    Pairs whose problem has no answer are skipped (counted in ``no_answer``). With ``out_path`` one
    record per audited pair is appended as each chunk is graded, and a re-run resumes (module
    docstring; ``model`` names the generator in the records' fingerprint, default its name; what was
    reused is in the summary's ``resumed``). Progress is reported under ``progress_label`` (None: not).
    Returns the summary: pairs audited, rollouts per step, above / equal / below counts, the sign-test
    p-value of above vs below, and the mean success rates of the chosen and rejected steps with their
    Wilson intervals (over all their rollouts)."""
    from .fingerprint import audit_made_by, model_identity
    from .progress import ProgressReporter
    from .resumable import ResumableOutput

    by_id = {p.id: p for p in problems}
    sample = sample_indices(len(rows), config.pairs, config.seed)
    usable = [(i, rows[i]) for i in sample if rows[i].get("problem_id") in by_id and by_id[rows[i]["problem_id"]].answers]
    output = None
    done: dict[Any, dict[str, Any]] = {}
    if out_path is not None:
        name = model if model is not None else getattr(generator, "name", "") or type(generator).__name__
        output = ResumableOutput(out_path, audit_made_by(config, model_identity(name)), "row", dict(usable),
                                 same=SAME_PAIR)
        done = output.done
    chunks = [usable[j : j + config.chunk_size] for j in range(0, len(usable), config.chunk_size)]
    reporter = ProgressReporter(progress_label or "", len(usable), unit="pairs",
                                done=sum(i in done for i, _ in usable), enabled=progress_label is not None)
    with output if output is not None else nullcontext(), reporter:
        for j, chunk in enumerate(chunks):
            missing = [i for i, _ in chunk if i not in done]
            if not missing:
                continue
            for record in _audit_chunk(generator, chunk, by_id, config, chunk_seed(config.seed, j)):
                if record["row"] in done:
                    continue  # kept from the killed run; the same rollouts were drawn again
                if output is not None:
                    output.append(record)
                else:
                    done[record["row"]] = record
            reporter.advance(len(missing))
    records = [done[i] for i, _ in usable]
    k = config.rollouts
    counts = dict.fromkeys(OUTCOMES, 0)
    successes = {"chosen": 0, "rejected": 0}
    trials = {"chosen": 0, "rejected": 0}
    for (_, r), record in zip(usable, records, strict=True):
        counts[record["outcome"]] += 1
        for side in ("chosen", "rejected"):
            graded = record[f"{side}_rollouts"]
            # A final step is one deterministic outcome; count it k times so both sides weigh the same.
            weight = k if _is_final(r, side) else 1
            successes[side] += sum(g["correct"] for g in graded) * weight
            trials[side] += len(graded) * weight
    summary: dict[str, Any] = {"pairs": len(records), "rollouts": k, "no_answer": len(sample) - len(usable),
                               **counts, "sign_p": sign_test_p(counts["above"], counts["below"])}
    for side in ("chosen", "rejected"):
        low, high = wilson_interval(successes[side], trials[side])
        summary[f"{side}_success"] = successes[side] / trials[side] if trials[side] else None
        summary[f"{side}_ci"] = [low, high]
    if output is not None and output.resumed["records"]:
        summary["resumed"] = output.resumed
    return summary
