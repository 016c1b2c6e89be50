"""``prm-sr check``: grade one answer, or a JSON Lines file of them, with the sympy answer checker.

One pair::

    prm-sr check '\\frac{1}{2}' '0.5'                 # exit 0: equal
    prm-sr check 18 'She makes $18.\\n#### 18' --benchmark gsm8k

A file: each line ``{"gold": ..., "prediction": ..., "benchmark": optional, "unit": optional}``::

    prm-sr check --input cases.jsonl --output graded.jsonl

The prediction may be a whole solution (the answer is extracted: box, Minerva, ``####``, "the
answer is", the last math span or bold answer) or a bare answer: when no answer marker is found the
whole prediction is the answer (never its last number). Exit codes: one pair 0 equal / 1 not equal; a file 0 once written;
2 for user errors (bad path, unknown benchmark, bad arguments).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import typer

from ..errors import UserError
from ..io import check_output_path


def _check_one(gold: str, prediction: str, benchmark: str | None, unit: str | None, timeout: float) -> None:
    from rich.console import Console

    from ..grading import check

    try:
        verdict = check(
            prediction, gold, benchmark=benchmark, timeout=timeout, unit=unit, whole_text_fallback=True
        )
    except ValueError as exc:  # unknown benchmark
        raise UserError(str(exc)) from exc
    console = Console(highlight=False)
    mark = "[bold green]equal[/]" if verdict.correct else f"[bold red]{verdict.reason}[/]"
    console.print(f"{mark}  ({verdict.detail})", markup=True)
    console.print(f"  predicted: {verdict.predicted!r} (from {verdict.source})", markup=False)
    console.print(f"  gold:      {verdict.gold!r}", markup=False)
    raise typer.Exit(0 if verdict.correct else 1)


def _gold_ok(value: Any) -> bool:
    scalar = (str, int, float)
    return (isinstance(value, scalar) and not isinstance(value, bool)) or (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, scalar) and not isinstance(v, bool) for v in value)
    )


def read_cases(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, str]]]:
    """Well-formed records with their line numbers, and ``(line, problem)`` for the malformed ones."""
    from ..grading import rules_for
    from ..io import JsonlErrors, iter_jsonl

    errors = JsonlErrors()
    records: list[tuple[int, dict[str, Any]]] = []
    for number, record in iter_jsonl(path, errors, required=("gold", "prediction")):
        problem = None
        if not _gold_ok(record["gold"]):
            problem = "'gold' must be a string, a number or a non-empty list of them"
        elif record["prediction"] is not None and not isinstance(record["prediction"], str):
            problem = "'prediction' must be a string or null"
        elif record.get("unit") is not None and not isinstance(record["unit"], str):
            problem = "'unit' must be a string or null"
        else:
            try:
                rules_for(record.get("benchmark"))
            except (ValueError, AttributeError) as exc:
                problem = str(exc)
        if problem:
            errors.errors.append((number, problem))
        else:
            records.append((number, record))
    return records, sorted(errors.errors)


def _check_file(input: Path, output: Path | None, processes: int | None, timeout: float) -> None:
    from rich.console import Console

    from .. import grading
    from ..io import json_dumps, write_jsonl

    check_batch = grading.check_batch  # looked up at call time (tests replace it)

    if not input.is_file():
        raise UserError(f"input file {str(input)!r} does not exist")
    if output is not None:
        check_output_path(output)
    err = Console(stderr=True, highlight=False)
    records, malformed = read_cases(input)
    for number, problem in malformed[:20]:
        err.print(f"skipped line {number}: {problem}", markup=False)
    if len(malformed) > 20:
        err.print(f"skipped {len(malformed) - 20} more malformed line(s)", markup=False)

    started = time.perf_counter()
    verdicts: list[Any] = []
    stopped: BaseException | None = None
    try:
        items = [(r["prediction"], r["gold"], r.get("benchmark"), r.get("unit")) for _, r in records]
        verdicts = check_batch(items, processes=processes, timeout=timeout, whole_text_fallback=True)
        # Each row carries its input line: skipped lines make output row i differ from input line i.
        rows = [
            {
                **record,
                "input_line": number,
                "correct": verdict.correct,
                "reason": verdict.reason,
                "predicted": verdict.predicted,
                "detail": verdict.detail,
            }
            for (number, record), verdict in zip(records, verdicts, strict=True)
        ]
        if output is None:
            for row in rows:
                sys.stdout.write(json_dumps(row) + "\n")
            sys.stdout.flush()
        else:
            write_jsonl(output, rows)
        _print_table(input, records, verdicts, Console(stderr=output is None))
    except BaseException as exc:
        stopped = exc
        raise
    finally:
        # The summary is printed whatever happens, so a failed or interrupted batch still says what
        # was read, skipped and graded.
        elapsed = time.perf_counter() - started
        rate = len(verdicts) / elapsed if elapsed > 0 else float("inf")
        where = f"-> {output}" if output is not None else "-> stdout"
        if stopped is not None:
            where = f"(stopped: {type(stopped).__name__}{': ' + str(stopped) if str(stopped) else ''}; "
            where += "interrupted, nothing written)"
        Console(stderr=output is None or stopped is not None).print(
            f"{len(verdicts)} graded in {elapsed:.2f} s ({rate:.0f}/s), "
            f"{len(malformed)} malformed line(s) skipped {where}",
            highlight=False,
        )


def _print_table(input: Path, records: list[tuple[int, dict[str, Any]]], verdicts: list[Any], summary: Any) -> None:
    from rich.table import Table

    by_bench: dict[str, Counter] = {}
    for (_, record), verdict in zip(records, verdicts, strict=True):
        counts = by_bench.setdefault(record.get("benchmark") or "-", Counter())
        counts["n"] += 1
        counts["correct"] += verdict.correct
        counts[verdict.reason] += 1
    table = Table(title=f"prm-sr check: {input.name}")
    for name, justify in [
        ("benchmark", "left"),
        ("n", "right"),
        ("correct", "right"),
        ("accuracy", "right"),
        ("other verdicts", "left"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    total: Counter = Counter()
    rows_by_bench = sorted(by_bench.items())
    if len(by_bench) > 1:
        for _, counts in rows_by_bench:
            total.update(counts)
        rows_by_bench.append(("all", total))
    for bench, counts in rows_by_bench:
        others = ", ".join(
            f"{r} {counts[r]}" for r in sorted(counts) if r not in ("n", "correct", "equal") and counts[r]
        )
        table.add_row(
            bench, str(counts["n"]), str(counts["correct"]), f"{counts['correct'] / counts['n']:.1%}", others
        )
    summary.print(table)


def check_command(
    gold: str | None = typer.Argument(None, help="Gold answer (LaTeX or plain; $...$ is fine)."),
    prediction: str | None = typer.Argument(
        None, help="Predicted answer, or a whole solution to extract it from."
    ),
    benchmark: str | None = typer.Option(
        None, "--benchmark", "-b", help="gsm8k, math, math500, olympiadbench, gaokao2023en, aime24, amc23."
    ),
    unit: str | None = typer.Option(None, help="Unit stripped from both answers (OlympiadBench 'unit')."),
    input: Path | None = typer.Option(
        None, "--input", "-i", help="JSON Lines of {gold, prediction[, benchmark, unit]}."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Where --input results go (default: stdout)."
    ),
    processes: int | None = typer.Option(None, help="Worker processes for --input (default: CPU count)."),
    timeout: float = typer.Option(
        5.0, help="CPU seconds allowed per sympy comparison (a timeout is not equal)."
    ),
) -> None:
    """Decide whether PREDICTION reaches GOLD (exit 0 equal, 1 not), or grade a --input file."""
    if timeout <= 0:
        raise UserError("--timeout must be positive")
    if input is not None:
        if gold is not None or prediction is not None:
            raise UserError("give either GOLD PREDICTION or --input, not both")
        if benchmark is not None or unit is not None:
            raise UserError("with --input, put 'benchmark' and 'unit' in each record")
        _check_file(input, output, processes, timeout)
        return
    if gold is None or prediction is None:
        raise UserError("give GOLD and PREDICTION, or --input FILE")
    if output is not None:
        raise UserError("--output goes with --input")
    _check_one(gold, prediction, benchmark, unit, timeout)


def register(app: typer.Typer) -> None:
    app.command("check")(check_command)
