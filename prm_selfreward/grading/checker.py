"""``check``: extraction + equivalence for one model output; ``check_batch`` for many, in parallel."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .benchmarks import prepare_gold, rules_for
from .equivalence import GOLD_DECIMAL_COMMA_RE, MAX_RAW_CHARS, prepare
from .extract import Extraction, extract_answer
from .normalize import normalize_answer
from .numbers import parse_number
from .result import Comparison
from .timeout import WorkerError, default_pool


@dataclass
class Verdict:
    """The grade of one prediction.

    ``correct``: the extracted answer equals the gold. ``predicted``: the extracted answer text (None
    if none was found). ``gold``: the gold answer (several joined with ", "). ``reason``: a stable
    slug, one of :data:`~prm_selfreward.grading.result.REASONS` (``equal``, ``not_equal``,
    ``no_answer``, ``no_gold``, ``timeout``, ``memory``, ``parse_error``, ``error``). ``detail``: which
    rung decided or what went wrong (free text). ``source``: where the answer was found
    (:data:`~prm_selfreward.grading.extract.Source`, or ``whole_text``).
    """

    correct: bool
    predicted: str | None
    gold: str
    reason: str
    detail: str = ""
    source: str = "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gold_text(gold: str | list[str]) -> str:
    return gold if isinstance(gold, str) else ", ".join(gold)


def _numeric_gold(gold: str | list[str], unit: str | None) -> bool:
    golds = [gold] if isinstance(gold, str) else gold
    return bool(golds) and all(
        len(g) <= MAX_RAW_CHARS and _is_number(normalize_answer(g, unit)) for g in golds
    )


def _is_number(text: str) -> bool:
    return parse_number(text) is not None or GOLD_DECIMAL_COMMA_RE.match(text) is not None  # 1,22 too


def _start(
    prediction_text: str | None,
    gold: Any,
    benchmark: str | None,
    unit: str | None,
    whole_text_fallback: bool = False,
) -> tuple[Verdict, tuple[tuple[str, ...], str] | None]:
    """Extraction and the in-process rungs: a final verdict, or a provisional one plus a sympy job."""
    rules = rules_for(benchmark)
    gold = prepare_gold(gold, benchmark)
    order = rules.order
    numeric = _numeric_gold(gold, unit)
    if not numeric or whole_text_fallback:
        # The last number is read for numeric golds only ("x^2 + 1" does not end in its 1), both as
        # the last resort and where it outranks an earlier math span; never with the whole-text
        # fallback (a bare answer is graded whole, not by its last number).
        order = tuple(s for s in order if s != "last_number")
    extraction: Extraction = extract_answer(prediction_text, order)
    fallback = extraction.source in ("last_number", "none") and not extraction.truncated
    if whole_text_fallback and fallback and prediction_text:
        extraction = Extraction(prediction_text.strip() or None, "none", extraction.all_boxes)
        source = "whole_text"
    else:
        source = extraction.source
    verdict = Verdict(False, extraction.answer, _gold_text(gold), "no_answer", "", source)
    if source == "none" and not numeric and not extraction.truncated:
        only_a_number = extract_answer(prediction_text, rules.order).answer is not None
        verdict.detail = (
            "no answer marker (the last-number fallback is for numeric golds only)"
            if only_a_number
            else "no answer found"
        )
        return verdict, None
    if extraction.answer is None:
        verdict.detail = "truncated \\boxed{" if extraction.truncated else "no answer found"
        return verdict, None
    step = prepare(gold, extraction.answer, unit)
    if isinstance(step, Comparison):
        return _apply(verdict, step), None
    return verdict, step


def _apply(verdict: Verdict, comparison: Comparison) -> Verdict:
    verdict.correct = comparison.equal
    verdict.reason = comparison.reason
    verdict.detail = comparison.detail
    return verdict


def check(
    prediction_text: str | None,
    gold: str | list[str],
    benchmark: str | None = None,
    timeout: float = 5.0,
    unit: str | None = None,
    whole_text_fallback: bool = False,
) -> Verdict:
    """Grade one model output against its gold answer.

    ``gold`` as a list means every answer is required (an unordered list, e.g. OlympiadBench
    ``is_multiple_answer`` items); ``$...$`` wrappers are fine. ``benchmark`` picks the extraction
    order and gold conventions (:mod:`~prm_selfreward.grading.benchmarks`; ValueError if unknown).
    ``unit`` (OlympiadBench's ``unit`` field) is stripped from both answers. The sympy part runs in
    a worker process killed after ``timeout`` CPU seconds (``reason="timeout"``). Safe from any thread.
    Without an answer marker (box, Minerva, ``####``, "the answer is", a math span, bold) the last
    number of the text is its answer, against a numeric gold only (else ``no_answer``).
    ``whole_text_fallback``: when the text has no answer marker, grade the whole text as the answer
    instead of its last number (for inputs that are bare answers, like the CLI's); ``source`` is
    then ``"whole_text"``.
    """
    verdict, job = _start(prediction_text, gold, benchmark, unit, whole_text_fallback)
    if job is None:
        return verdict
    try:
        with default_pool().acquire() as worker:
            return _apply(verdict, worker.compare(job[0], job[1], timeout))
    except WorkerError as exc:
        return _apply(verdict, Comparison(False, "error", str(exc)))


BatchItem = tuple[str | None, Any, str | None] | tuple[str | None, Any, str | None, str | None]


def check_batch(
    items: Sequence[BatchItem],
    processes: int | None = None,
    timeout: float = 5.0,
    whole_text_fallback: bool = False,
) -> list[Verdict]:
    """Grade many ``(prediction_text, gold, benchmark)`` items (an optional 4th element is the
    ``unit``); verdicts come back in input order.

    Extraction and the in-process rungs run here; the comparisons that need sympy are spread over
    ``processes`` worker processes (default: the number of CPUs), each under the ``timeout``.
    ``whole_text_fallback`` as in :func:`check`.
    """
    verdicts: list[Verdict | None] = [None] * len(items)
    jobs: list[tuple[int, Verdict, tuple[tuple[str, ...], str]]] = []
    for index, item in enumerate(items):
        prediction_text, gold, benchmark = item[0], item[1], item[2]
        unit = item[3] if len(item) > 3 else None  # type: ignore[misc]
        verdict, job = _start(prediction_text, gold, benchmark, unit, whole_text_fallback)
        if job is None:
            verdicts[index] = verdict
        else:
            jobs.append((index, verdict, job))
    if jobs:
        width = max(1, min(processes or os.cpu_count() or 1, len(jobs)))
        pending: queue.SimpleQueue = queue.SimpleQueue()
        for job in jobs:
            pending.put(job)

        def drain() -> None:
            try:
                with default_pool().acquire() as worker:
                    while True:
                        try:
                            index, verdict, (golds, pred) = pending.get_nowait()
                        except queue.Empty:
                            return
                        verdicts[index] = _apply(verdict, worker.compare(golds, pred, timeout))
            except WorkerError as exc:
                while True:
                    try:
                        index, verdict, _ = pending.get_nowait()
                    except queue.Empty:
                        return
                    verdicts[index] = _apply(verdict, Comparison(False, "error", str(exc)))

        default_pool().prestart(width)
        threads = [
            threading.Thread(target=drain, name=f"prm-sr-check-{k}", daemon=True) for k in range(width)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return [v for v in verdicts if v is not None]
