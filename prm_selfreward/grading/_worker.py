"""Entry point of a grading worker process:
``python -m prm_selfreward.grading._worker RFD WFD MEM [MAX_BITS]``.

Reads ``(golds, pred)`` jobs from fd RFD, answers ``("ok", equal, reason, detail)`` or
``("error", message)`` on fd WFD, until end of input. MEM caps the process's address space
(``RLIMIT_AS``, 0 for none): a job that reaches it answers reason ``memory``. MAX_BITS overrides the
size cap of :mod:`~prm_selfreward.grading.sympy_compare` (0 turns it off; for tests). See
:mod:`prm_selfreward.grading.timeout`.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection


def _die_with_parent() -> None:
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except Exception:  # noqa: S110 - not Linux: the worker still exits at end of input
        pass


def _limit_memory(limit: int) -> None:
    if limit <= 0:
        return
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except Exception:  # noqa: S110 - no resource module or limit refused: run without a cap
        pass


def main(argv: list[str]) -> int:
    rfd, wfd, mem = int(argv[0]), int(argv[1]), int(argv[2])
    _die_with_parent()
    _limit_memory(mem)
    recv = Connection(rfd, writable=False)
    send = Connection(wfd, readable=False)
    from prm_selfreward.grading import sympy_compare
    from prm_selfreward.grading.sympy_compare import compare_normalized, warm_up

    if len(argv) > 3:
        sympy_compare.MAX_BITS = int(argv[3]) or float("inf")  # type: ignore[assignment]

    warm_up(stop=lambda: True)  # imports done; the parser is built on the first comparison below
    compare_normalized(("\\frac{1}{2}",), "0.5")
    send.send(("ready",))
    # Warm the rest while idle; the first job that arrives interrupts it (the caller's CPU budget
    # pays for at most the one warm-up comparison in progress).
    warm_up(stop=lambda: recv.poll(0))
    while True:
        try:
            golds, pred = recv.recv()
        except (EOFError, OSError):
            return 0
        try:
            equal, reason, detail = compare_normalized(golds, pred)
            reply: tuple = ("ok", equal, reason, detail)
        except MemoryError:
            cap = f"{mem / 2**20:.0f} MiB" if mem > 0 else "the machine's memory"
            reply = ("ok", False, "memory", f"MemoryError: the worker's memory cap ({cap}) was reached")
        except RecursionError:
            reply = ("error", "RecursionError")
        except Exception as exc:
            reply = ("error", f"{type(exc).__name__}: {str(exc)[:200]}")
        try:
            send.send(reply)
        except (BrokenPipeError, OSError):
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
