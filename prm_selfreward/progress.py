"""Progress of a long loop (evaluation, search, judging, the audit, training) that a person can watch.

On a terminal it is a rich progress bar. Anywhere else (``nohup prm-sr iterate ... > log``, a pipe, a
CI job) a bar does not render, so the same progress is written as plain lines, flushed at once::

    14:02:31 eval gsm8k: started, 64 problems
    14:03:10 eval gsm8k: 16/64 problems (25%), 24.6 problems/min, elapsed 39s, ETA 1m57s
    14:03:40 eval gsm8k: 16/64 problems (25%), 24.6 problems/min, elapsed 1m09s, ETA 1m57s, still working
    14:05:23 eval gsm8k: done, 64/64 problems in 2m52s (22.3 problems/min)

A line is written at the start, each time another 5% of the items is done, at the end (or where an
exception stopped the loop), and, from a background thread, whenever ``interval`` seconds passed without
one (default 30 s; ``$PRM_SR_PROGRESS_INTERVAL`` sets it), so a slow run is never silent long enough to
look hung. The rate counts only the items done since the start: items a resumed stage found done count
in ``done/total`` but not in the rate, so the ETA is the remaining work at this run's speed.

:class:`ProgressReporter` is the one helper every long stage uses; SFT and DPO report their optimizer
steps through it from a transformers ``TrainerCallback`` (:func:`prm_selfreward.train.common.quiet_trainer`).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from .errors import UserError

INTERVAL_ENV = "PRM_SR_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 30.0
STEP_FRACTION = 0.05
"""A line every time another 5% of the items is done (besides the time-based ones)."""


def progress_interval() -> float:
    """Seconds between plain progress lines at the latest: ``$PRM_SR_PROGRESS_INTERVAL`` or 30."""
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"{INTERVAL_ENV}={raw!r} is not a number of seconds above 0 (e.g. 30)")
    return value


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (where a progress bar renders)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_rate(per_second: float, unit: str) -> str:
    """Items per second, or per minute when under one a second (``0.02 steps/s`` reads badly)."""
    if per_second >= 1:
        return f"{per_second:.1f} {unit}/s"
    return f"{60 * per_second:.1f} {unit}/min"


class ProgressReporter:
    """Progress of one loop over ``total`` items: a rich bar on a terminal, plain lines otherwise.

    Use it as a context manager and call :meth:`update` (or :meth:`advance`) as items finish::

        with ProgressReporter("eval gsm8k", len(problems), unit="problems", done=len(reused)) as bar:
            for chunk in chunks:
                ...
                bar.advance(len(chunk))

    ``done``: items already done when the loop starts (a resume); counted in ``done/total``, not in the
    rate. ``stream``: where it goes (default: ``sys.stdout`` at construction; a command writing records
    to stdout passes ``sys.stderr``); it decides the mode: ``"bar"`` when a terminal, ``"lines"``
    otherwise, ``"off"`` when ``enabled`` is false. ``interval``: the longest silence in lines mode
    (default :func:`progress_interval`). ``total`` may be ``None`` (unknown: no percentage, no ETA).
    ``clock`` is for tests.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        unit: str = "items",
        done: int = 0,
        stream: TextIO | None = None,
        interval: float | None = None,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label = label
        self.total = total
        self.unit = unit
        self.done = done
        self.status = ""
        self.stream = stream if stream is not None else sys.stdout
        self.interval = interval if interval is not None else progress_interval()
        self.mode = "off" if not enabled else ("bar" if is_terminal(self.stream) else "lines")
        self._clock = clock
        self._initial = done
        self._start = clock()
        self._last_line = self._start
        self._step = max(1, math.ceil(STEP_FRACTION * total)) if total else 0
        self._next_mark = self._mark_after(done)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: Any = None
        self._task: Any = None
        self._closed = False
        self._search_started = False

    # -- lifecycle ----------------------------------------------------------------------------------

    def __enter__(self) -> ProgressReporter:
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(error=exc_type.__name__ if exc_type is not None else None)

    def start(self) -> None:
        self._start = self._last_line = self._clock()
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
                console=Console(file=self.stream), transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.done, status="")
        elif self.mode == "lines":
            before = f" ({self.done} done before)" if self.done else ""
            size = f", {self.total} {self.unit}" if self.total is not None else ""
            self._write(f"started{size}{before}")
            self._thread = threading.Thread(target=self._heartbeats, name=f"progress {self.label}", daemon=True)
            self._thread.start()

    def close(self, error: str | None = None) -> None:
        """End the report: the bar stops; in lines mode a last line says done (or where ``error``
        stopped it). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._bar.stop()
        elif self.mode == "lines":
            elapsed = self._clock() - self._start
            rate = self._rate(elapsed)
            speed = f" ({format_rate(rate, self.unit)})" if rate else ""
            if error is None:
                self._write(f"done, {self._count()} in {format_duration(elapsed)}{speed}")
            else:
                self._write(f"stopped at {self._count()} after {format_duration(elapsed)} ({error})")

    # -- progress -----------------------------------------------------------------------------------

    def update(self, done: int | None = None, *, advance: int = 0, status: str | None = None) -> None:
        """Set the items done (``done``) or add ``advance`` to them, and/or the status text (e.g.
        ``round 3, 12 active``; shown after the figures). Writes a line when another 5% is done."""
        with self._lock:
            if done is not None:
                self.done = done
            self.done += advance
            if status is not None:
                self.status = status
            if self._bar is not None:
                self._bar.update(self._task, completed=self.done, status=self.status)
                return
            if self.mode != "lines":
                return
            if self._step and self.done >= self._next_mark:
                self._next_mark = self._mark_after(self.done)
                self._write(self._figures())

    def advance(self, n: int = 1) -> None:
        self.update(advance=n)

    def found_done(self, done: int) -> None:
        """Items a resume found already done, before any work: counted in ``done/total``, not in the
        rate (they took no time in this run)."""
        with self._lock:
            self.done = self._initial = done
            self._next_mark = self._mark_after(done)
            if self._bar is not None:
                self._bar.update(self._task, completed=done)
            elif self.mode == "lines" and done:
                self._write(f"resuming, {self._count()} already done")

    def on_search_chunk(self, done: int, total: int) -> None:
        """``StepSearch.run_to_jsonl``'s ``on_chunk``: its first call gives the problems found done."""
        if not self._search_started:
            self._search_started = True
            self.found_done(done)
        else:
            self.update(done)

    def on_search_round(self, round_index: int, active: int) -> None:
        """``StepSearch.run``'s ``on_round``: the lockstep round and the problems still searching."""
        self.update(status=f"round {round_index}, {active} active")

    def heartbeat(self) -> bool:
        """Write a line if ``interval`` seconds passed since the last one (what the background thread
        calls); returns whether it wrote."""
        with self._lock:
            if self.mode != "lines" or self._clock() - self._last_line < self.interval:
                return False
            self._write(self._figures() + ", still working")
            return True

    # -- internals ----------------------------------------------------------------------------------

    def _heartbeats(self) -> None:
        while True:
            with self._lock:  # sleep until `interval` after the last line, whatever wrote it
                remaining = self.interval - (self._clock() - self._last_line)
            if self._stop.wait(timeout=max(remaining, 0.01)):
                return
            self.heartbeat()

    def _mark_after(self, done: int) -> int:
        return (done // self._step + 1) * self._step if self._step else 0

    def _rate(self, elapsed: float) -> float:
        new = self.done - self._initial
        return new / elapsed if elapsed > 0 and new > 0 else 0.0

    def _count(self) -> str:
        return f"{self.done}/{self.total} {self.unit}" if self.total is not None else f"{self.done} {self.unit}"

    def _figures(self) -> str:
        elapsed = self._clock() - self._start
        rate = self._rate(elapsed)
        parts = [self._count() + (f" ({100 * self.done / self.total:.0f}%)" if self.total else "")]
        parts.append(format_rate(rate, self.unit) if rate else f"no {self.unit} done yet")
        parts.append(f"elapsed {format_duration(elapsed)}")
        if self.total is not None:
            parts.append(f"ETA {format_duration((self.total - self.done) / rate)}" if rate else "ETA ?")
        if self.status:
            parts.append(self.status)
        return ", ".join(parts)

    def _write(self, text: str) -> None:
        self._last_line = self._clock()
        try:
            self.stream.write(f"{time.strftime('%H:%M:%S')} {self.label}: {text}\n")
            self.stream.flush()  # a log file is block-buffered: unflushed lines are what made runs look hung
        except (ValueError, OSError):
            pass  # a closed or broken stream must not stop the work it reports on


__all__ = ["INTERVAL_ENV", "ProgressReporter", "format_duration", "format_rate", "is_terminal", "progress_interval"]
