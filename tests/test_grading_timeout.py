"""The hard time limit: hostile inputs return a ``timeout`` verdict within the limit, from the main
thread, from other threads and from daemonic pool workers; a killed worker is replaced."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from prm_selfreward.grading import answers_equal, check, check_batch
from prm_selfreward.grading.timeout import WALL_FACTOR, SympyWorker, default_pool

LIMIT = 1.0  # CPU seconds of the worker; the wall-clock cap is WALL_FACTOR * LIMIT
# Allowance on top of the cap for killing the worker and the pipe round trip on a busy machine;
# the worker's own start-up is excluded by warming it first.
SLACK = 1.5
HARD_CAP = WALL_FACTOR * LIMIT + SLACK

HOSTILE = [
    ("5", "10^{10^{10^{10}}}"),  # a 3e10-bit integer, built in C while holding the GIL
    ("1", "\\sin(10^{10^{10}})"),
    ("5", "9^{9^{9^{9}}}"),
]


def _ready_worker() -> None:
    # Timings below exclude a worker's start-up (the pool hands out the most recently used worker,
    # which may still be restarting after the previous test's timeout).
    with default_pool().acquire() as worker:
        worker.wait_ready()


@pytest.fixture(autouse=True)
def warm_worker():
    _ready_worker()


@pytest.mark.parametrize("gold,pred", HOSTILE)
def test_hostile_input_times_out_within_the_limit(gold, pred):
    started = time.monotonic()
    verdict = check(f"\\boxed{{{pred}}}", gold, timeout=LIMIT)
    elapsed = time.monotonic() - started
    assert (verdict.correct, verdict.reason) == (False, "timeout")
    assert elapsed < HARD_CAP, elapsed


def test_memory_blowup_is_a_verdict():
    # (10^{10^{10}})! hits the worker's address-space cap (MemoryError) or the deadline, never a hang.
    verdict = check("\\boxed{(10^{10^{10}})!}", "5", timeout=LIMIT)
    assert verdict.correct is False
    assert verdict.reason in ("error", "timeout")


def test_the_next_comparison_after_a_timeout_is_right():
    assert check("\\boxed{10^{10^{10^{10}}}}", "5", timeout=LIMIT).reason == "timeout"
    assert answers_equal("\\sqrt{8}", "2\\sqrt{2}") == (True, "equal")
    assert answers_equal("\\sqrt{8}", "3\\sqrt{2}") == (False, "not_equal")


def test_off_the_main_thread():
    results: dict[str, object] = {}

    def grade(name: str, pred: str, gold: str) -> None:
        results[name] = check(pred, gold, timeout=LIMIT)

    threads = [
        threading.Thread(target=grade, args=("hostile", "\\boxed{10^{10^{10^{10}}}}", "5")),
        threading.Thread(target=grade, args=("normal", "\\boxed{(x+1)^2}", "x^2+2x+1")),
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert time.monotonic() - started < 60
    assert results["hostile"].reason == "timeout"
    assert results["normal"].correct is True


def test_inside_a_daemonic_pool_worker():
    # multiprocessing.Pool workers are daemonic: they may not start multiprocessing children.
    # Our workers are plain subprocesses, so grading works there too.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        hostile = pool.apply(check, ("\\boxed{10^{10^{10^{10}}}}", "5"), {"timeout": LIMIT})
        normal = pool.apply(check, ("\\boxed{(x+1)^2}", "x^2+2x+1"))
    assert hostile.reason == "timeout"
    assert normal.correct is True


def test_batch_with_hostile_items_keeps_order_and_finishes():
    items = [
        ("\\boxed{10^{10^{10^{10}}}}", "5", None),
        ("\\boxed{\\sqrt{2}/2}", "\\frac{1}{\\sqrt{2}}", None),
        ("\\boxed{9^{9^{9^{9}}}}", "5", None),
        ("\\boxed{4}", "4", None),
    ]
    started = time.monotonic()
    verdicts = check_batch(items, processes=2, timeout=LIMIT)
    assert time.monotonic() - started < 2 * HARD_CAP + 20  # +20: replacement workers starting
    assert [v.reason for v in verdicts] == ["timeout", "equal", "timeout", "equal"]


def test_a_worker_killed_from_outside_is_an_error_verdict_then_replaced():
    worker = SympyWorker()
    try:
        assert worker.compare(("x+1",), "1+x", timeout=30).equal
        worker._proc.kill()  # noqa: SLF001 - simulate an OOM kill between jobs
        worker._proc.wait()  # noqa: SLF001
        result = worker.compare(("x+1",), "1+x", timeout=30)
        assert (result.equal, result.reason) == (False, "error")
        assert worker.compare(("x+1",), "1+x", timeout=30).equal  # a fresh worker took over
        assert worker.restarts == 1
    finally:
        worker.close()


def test_pool_reuses_idle_workers():
    pool = default_pool()
    with pool.acquire() as first:
        pass
    with pool.acquire() as second:
        assert second is first


ADVERSARIAL = {
    "deep braces": "{" * 20000 + "1" + "}" * 20000,
    "deep frac": "\\frac{" * 450 + "1" + "}{2}" * 450,
    "deep sqrt": "\\sqrt{" * 700 + "2" + "}" * 700,
    "deep parens": "(" * 900 + "1" + ")" * 900,
    "deep set": "\\{" * 45 + "1" + "\\}" * 45,
    "many digits": "9" * 50000,
    "long list": ", ".join(["1"] * 6000),
    "relation chain": "x < " * 400 + "1",
    "plus-minus chain": "1 \\pm " * 300 + "1",
    "answer-is spam": "The answer is " * 20000,
    "dollar spam": "$" * 50000,
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_inputs_return_a_verdict(name):
    # The in-process rungs have no time limit, so inputs are capped in length; nothing may raise.
    text = ADVERSARIAL[name]
    for prediction in (f"\\boxed{{{text}}}", text):
        started = time.monotonic()
        verdict = check(prediction, "5", timeout=LIMIT, whole_text_fallback=True)
        assert verdict.correct is False
        assert verdict.reason in ("not_equal", "parse_error", "no_answer", "timeout", "error")
        assert time.monotonic() - started < HARD_CAP + 5, name


def test_an_in_process_failure_is_a_verdict(monkeypatch):
    import prm_selfreward.grading.equivalence as equivalence

    def broken(text):
        raise RuntimeError("bug")

    monkeypatch.setattr(equivalence, "parse_shape", broken)
    verdict = check("\\boxed{(1, 2)}", "(2, 1)")
    assert (verdict.correct, verdict.reason) == (False, "error")
    assert "RuntimeError: bug" in verdict.detail


# ---------------------------------------------------------------------------------------------------
# Hostile text in the calling process: extraction is linear (it has no time limit of its own).

HOSTILE_TEXT = {
    "minerva spam": "Final Answer: The final answer is ",  # was quadratic: 84 s at 272 KB
    "minerva and dollar": "Final Answer: The final answer is $",
    "answer-is spam": "The answer is ",
    "answer-colon spam": "answer: ",
    "bold answer spam": "**Answer:** ",
    "bare boxes": "\\boxed 5 ",
    "unclosed boxes": "\\boxed{",
    "closed boxes": "\\boxed{1}",
    "dollars": "$",
    "double dollars": "$$",
    "dollar and space": "$ ",
    "escaped dollars": "\\$",
    "unclosed \\(": "\\(",
    "unclosed \\[": "\\[",
    "math spans": "$x$ and ",
    "bold marks": "**",
    "chat tokens": "<|im_end|>",
    "numbers and commas": "1,",
    "variable spans": "n$ $",
    "choice letters": "A is ",
    "approximations": "about $1$ ",
    "step hashes": "Step 1: #### ",
    "inline spans across lines": "$ \n 9 \n ",
    "\\( across lines": "\\( \n",
    "prose copulas": "Answer: The x is ",
    "mixed numbers": "1 1/1 ",
    "decimal commas": "1,2",
    "ellipsis lists": "1, ...",
    "escaped commands": "\\\\frac{1}{2} ",
    "transcript headers": "<|im_start|>user\n",
    "boxes with part labels": "\\boxed{1} for part (a) and ",
    "spaced thousands": " 000",
}
HOSTILE_SIZE = 272_000


@pytest.mark.parametrize("name", sorted(HOSTILE_TEXT))
def test_extraction_is_linear_on_hostile_text(name):
    from prm_selfreward.grading import extract_answer

    unit = HOSTILE_TEXT[name]
    text = unit * (HOSTILE_SIZE // len(unit))
    started = time.monotonic()
    extract_answer(text)
    verdict = check(text, "5", timeout=LIMIT)
    elapsed = time.monotonic() - started
    assert verdict.correct is False
    # Linear work on 272 KB takes well under a second; a quadratic finder takes minutes.
    assert elapsed < 5.0, (name, elapsed)


def test_a_hash_line_of_spaces_is_linear():
    started = time.monotonic()
    check("#### " + " " * HOSTILE_SIZE + "x", "5", benchmark="gsm8k", timeout=LIMIT)
    assert time.monotonic() - started < 5.0


# ---------------------------------------------------------------------------------------------------
# The size cap before sympy evaluates, and the worker's memory cap.


def _vm_peak(worker: SympyWorker) -> int:
    with open(f"/proc/{worker._proc.pid}/status", encoding="ascii") as handle:  # noqa: SLF001
        line = next(line for line in handle if line.startswith("VmPeak:"))
    return int(line.split()[1]) * 1024


@pytest.mark.parametrize("pred", ["(2^{2^{30}})!", "x^{2^{30}} + 1", "10^{10^{8}}", "\\binom{10^{9}}{10^{8}}"])
def test_answers_too_large_to_evaluate_are_refused_before_sympy_builds_them(pred):
    started = time.monotonic()
    with default_pool().acquire() as worker:
        worker.wait_ready()
        result = worker.compare(("5",), pred, timeout=5.0)
        peak = _vm_peak(worker)
    assert (result.equal, result.reason) == (False, "timeout")
    assert "refused before evaluation" in result.detail
    assert time.monotonic() - started < 3.0  # refused at once, not after the 5 s limit
    assert peak < 512 * 1024**2  # nothing was built (an idle worker maps about 65 MiB)


@pytest.mark.parametrize(
    "gold,pred,expected",
    [
        ("\\frac{1}{2004!}", "\\frac{2005 \\cdot 2006}{2006!}", True),  # large but under the cap
        ("2^{2005}", "2 \\cdot 2^{2004}", True),
        ("2^{2005}", "2^{2004}", False),
        ("10^{-9000}", "10^{-8999}/10", True),
    ],
)
def test_large_answers_under_the_cap_are_still_compared(gold, pred, expected):
    assert answers_equal(gold, pred) == (expected, "equal" if expected else "not_equal")


def test_worker_memory_is_capped_and_reported_as_its_own_reason():
    # With the size cap turned off, (2^{2^{30}})! reaches the worker's address-space cap: the job
    # answers reason "memory" and the worker never maps more than its cap (it took 1.9 GB uncapped).
    from prm_selfreward.grading.timeout import WORKER_MEMORY_BYTES

    worker = SympyWorker(max_bits=0)
    try:
        worker.wait_ready()
        result = worker.compare(("5",), "(2^{2^{30}})!", timeout=5.0)
        assert (result.equal, result.reason) == (False, "memory"), result
        assert _vm_peak(worker) <= WORKER_MEMORY_BYTES
        assert worker.compare(("x+1",), "1+x", timeout=30).equal  # the worker goes on
    finally:
        worker.close()
