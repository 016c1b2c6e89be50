"""Hard time limits for sympy: persistent worker processes that are killed when they overrun.

Why processes: sympy can hang inside C code (``10^{10^{10^{10}}}`` builds a 3e10-bit integer while
holding the GIL), so no in-process mechanism can stop it; ``signal.alarm`` (math-verify's approach)
only works on the main thread of the main interpreter and cannot interrupt C code either. A child
process can always be killed.

Why persistent: a fresh interpreter that imports sympy and latex2sympy2_extended costs about a
second; a persistent worker costs one pipe round trip per comparison (~0.1 ms, measured in
``benchmarks/bench_checker.py``) and keeps its parse cache warm. Only comparisons that the in-process
rungs cannot decide are sent here (see :mod:`~prm_selfreward.grading.equivalence`).

What the limit measures: ``timeout`` is CPU seconds spent by the worker on the comparison (read
from ``/proc/<pid>/stat``), with a hard wall-clock cap of ``WALL_FACTOR * timeout``. On a loaded
machine a wall-clock limit alone would turn correct answers into timeouts depending on what else
runs; counting the worker's own CPU keeps verdicts reproducible, and the cap keeps the guarantee
that a call returns. Where ``/proc`` is missing the limit is wall-clock.

How: each :class:`SympyWorker` is ``python -m prm_selfreward.grading._worker`` started with
:mod:`subprocess` (not :mod:`multiprocessing`, so it works from daemonic pool workers and from any
thread), talking pickled tuples over two pipes. The parent waits for the answer with
``Connection.poll(timeout)``; on overrun it SIGKILLs the worker, starts a fresh one in the
background (the next job waits for it to be ready, outside its own deadline) and reports
``timeout``. Workers ask the kernel to kill them when the parent dies (``PR_SET_PDEATHSIG``; all
workers are started from one long-lived thread because the kernel ties that signal to the starting
thread), and cap their address space (:data:`WORKER_MEMORY_BYTES`) so a hostile input fails with
``MemoryError`` (reason ``memory``) rather than exhausting the machine.
"""

from __future__ import annotations

import atexit
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

from .result import Comparison

#: Address-space cap of each worker (``RLIMIT_AS``; an idle worker maps about 65 MiB): a sympy
#: blow-up raises MemoryError in the worker, reported with reason ``memory``, instead of taking the
#: machine's memory. The size cap of :mod:`~prm_selfreward.grading.sympy_compare` refuses most such
#: answers before they are evaluated; this is the backstop.
WORKER_MEMORY_BYTES = 1024**3
#: How long a (re)started worker may take to import sympy and become ready.
STARTUP_TIMEOUT = 120.0
#: Hard wall-clock cap of one comparison, as a multiple of its CPU-time limit.
WALL_FACTOR = 3.0

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (Linux ``/proc``), or None where unavailable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


class WorkerError(RuntimeError):
    """A worker could not be started, or died without answering."""


class _Spawner:
    """One long-lived daemon thread that starts every worker (see the module docstring)."""

    def __init__(self) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def spawn(self, args: list[str], env: dict[str, str], pass_fds: tuple[int, ...]) -> subprocess.Popen:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="prm-sr-grading-spawner", daemon=True)
                self._thread.start()
        reply: queue.Queue = queue.Queue(maxsize=1)
        self._requests.put((args, env, pass_fds, reply))
        result = reply.get()
        if isinstance(result, BaseException):
            raise WorkerError(f"cannot start a grading worker: {result}") from result
        return result

    def _run(self) -> None:
        while True:
            args, env, pass_fds, reply = self._requests.get()
            try:
                proc = subprocess.Popen(
                    args,
                    env=env,
                    pass_fds=pass_fds,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    close_fds=True,
                )
                reply.put(proc)
            except BaseException as exc:  # reported to the caller, never kills the spawner
                reply.put(exc)


_SPAWNER = _Spawner()


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    # The worker must import this very package, even when it is used from a source tree that is
    # only on sys.path (not installed).
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


class SympyWorker:
    """One worker process: :meth:`compare` runs a job with a hard deadline. Not thread-safe by
    itself; :class:`WorkerPool` hands a worker to one caller at a time."""

    def __init__(self, memory_bytes: int | None = None, max_bits: int | None = None) -> None:
        """``memory_bytes``: the worker's address-space cap (default :data:`WORKER_MEMORY_BYTES`, 0 for
        none); ``max_bits``: override of the sympy size cap (0 turns it off; for tests)."""
        self.memory_bytes = WORKER_MEMORY_BYTES if memory_bytes is None else memory_bytes
        self.max_bits = max_bits
        self._proc: subprocess.Popen | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None
        self._ready = False
        self.restarts = 0

    def start(self) -> None:
        """Start the process (returns at once; :meth:`compare` waits until it is ready)."""
        self.close()
        to_child_r, to_child_w = os.pipe()
        to_parent_r, to_parent_w = os.pipe()
        args = [
            sys.executable,
            "-m",
            "prm_selfreward.grading._worker",
            str(to_child_r),
            str(to_parent_w),
            str(self.memory_bytes),
            *([str(self.max_bits)] if self.max_bits is not None else []),
        ]
        try:
            self._proc = _SPAWNER.spawn(args, _worker_env(), (to_child_r, to_parent_w))
        finally:
            os.close(to_child_r)
            os.close(to_parent_w)
        self._send = Connection(to_child_w, readable=False)
        self._recv = Connection(to_parent_r, writable=False)
        self._ready = False

    def wait_ready(self) -> None:
        """Block until the process has imported sympy and answered ready (raises WorkerError)."""
        if self._proc is None:
            self.start()
        if self._ready:
            return
        assert self._recv is not None
        if not self._recv.poll(STARTUP_TIMEOUT):
            self.close()
            raise WorkerError(f"grading worker not ready after {STARTUP_TIMEOUT:.0f} s")
        try:
            message = self._recv.recv()
        except (EOFError, OSError) as exc:
            self.close()
            raise WorkerError(
                "grading worker died while starting (is sympy/latex2sympy2_extended installed?)"
            ) from exc
        if message != ("ready",):
            self.close()
            raise WorkerError(f"grading worker sent {message!r} instead of ready")
        self._ready = True

    def compare(self, golds: tuple[str, ...], pred: str, timeout: float) -> Comparison:
        """Run rung 3 on one normalised pair; never raises for the job's sake (timeouts and worker
        deaths are verdicts); raises :class:`WorkerError` only if no worker can be started."""
        self.wait_ready()
        assert self._send is not None and self._recv is not None
        assert self._proc is not None
        pid = self._proc.pid
        started = time.monotonic()
        try:
            cpu_start = _cpu_seconds(pid)
            self._send.send((golds, pred))
            while True:
                elapsed = time.monotonic() - started
                cpu_now = _cpu_seconds(pid) if cpu_start is not None else None
                used = cpu_now - cpu_start if cpu_now is not None and cpu_start is not None else elapsed
                # The worker spends at most one CPU second per wall second, so waiting the smaller
                # remaining budget never lets it overspend either limit.
                budget = min(timeout - used, WALL_FACTOR * timeout - elapsed)
                if budget <= 0:
                    self._kill_and_restart()
                    what = (
                        f"{timeout:g} s of CPU"
                        if used >= timeout
                        else f"{WALL_FACTOR * timeout:g} s wall clock"
                    )
                    return Comparison(False, "timeout", f"sympy comparison exceeded {what}")
                if self._recv.poll(budget):
                    break
            status, *payload = self._recv.recv()
        except (EOFError, OSError, BrokenPipeError):
            self._kill_and_restart()
            return Comparison(False, "error", "grading worker died (killed or out of memory)")
        if status == "ok":
            equal, reason, detail = payload
            return Comparison(bool(equal), reason, detail)
        elapsed = time.monotonic() - started
        return Comparison(False, "error", f"{payload[0]} after {elapsed:.2f} s")

    def _kill_and_restart(self) -> None:
        self.restarts += 1
        self.close()
        self.start()  # warms up in the background while the caller goes on

    def close(self) -> None:
        proc, self._proc = self._proc, None
        for conn in (self._send, self._recv):
            if conn is not None:
                try:
                    conn.close()
                except OSError:
                    pass
        self._send = self._recv = None
        self._ready = False
        if proc is not None and proc.poll() is None:
            proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


class WorkerPool:
    """Idle workers kept for reuse; :meth:`acquire` lends one (starting a new one when none is idle).
    At most ``keep`` idle workers are kept; extra ones are closed when returned."""

    def __init__(self, keep: int | None = None):
        self.keep = keep or max(2, os.cpu_count() or 1)
        self._idle: list[SympyWorker] = []
        self._lock = threading.Lock()

    @contextmanager
    def acquire(self) -> Iterator[SympyWorker]:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None:
            worker = SympyWorker()
            worker.start()
        try:
            yield worker
        finally:
            with self._lock:
                if len(self._idle) < self.keep:
                    self._idle.append(worker)
                    worker = None
            if worker is not None:
                worker.close()

    def prestart(self, count: int) -> None:
        """Start ``count`` idle workers now, so their imports overlap with the caller's own work."""
        with self._lock:
            missing = min(count, self.keep) - len(self._idle)
        for _ in range(max(0, missing)):
            worker = SympyWorker()
            worker.start()
            with self._lock:
                self._idle.append(worker)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


_POOL = WorkerPool()
atexit.register(_POOL.close)


def default_pool() -> WorkerPool:
    return _POOL


def run_sympy(golds: tuple[str, ...], pred: str, timeout: float = 5.0) -> Comparison:
    """Rung 3 for one pair on a pooled worker, with a hard deadline of ``timeout`` seconds."""
    try:
        with _POOL.acquire() as worker:
            return worker.compare(golds, pred, timeout)
    except WorkerError as exc:
        return Comparison(False, "error", str(exc))


def shutdown_workers() -> None:
    """Stop every idle worker (they are also stopped at interpreter exit)."""
    _POOL.close()
