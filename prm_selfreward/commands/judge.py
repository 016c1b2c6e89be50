"""``prm-sr judge --input pairs.jsonl --model M``: pairwise step judgments for a file of comparisons.

Each input record needs ``question``, ``previous_steps`` (a list of strings), ``step_a`` and
``step_b``; an optional ``label`` (0: step_a is better, 1: step_b) makes the command print accuracy.
Every well-formed record is written back, in input order, with ``verdict`` (0, 1 or -1),
``probability`` and ``consistent`` added. EFT records (``eft_heldout.jsonl`` of the seed data) carry
their gold answer as ``verdict``; when a record has no ``label``, its input ``verdict`` (0 or 1) is
kept as ``label`` before the judge's verdict replaces it, so the held-out set works as it is. Malformed lines are reported with their line numbers and
skipped. All comparisons go to the judge in one ``compare`` call (the judge chunks by --batch-size).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from ..errors import UserError
from ..io import check_output_path

REQUIRED = ("question", "previous_steps", "step_a", "step_b")


def _check_record(obj: dict[str, Any]) -> str | None:
    """Why ``obj`` is not a usable comparison record, or None."""
    for key in ("question", "step_a", "step_b"):
        if not isinstance(obj[key], str):
            return f"{key} must be a string"
    prev = obj["previous_steps"]
    if not isinstance(prev, list) or not all(isinstance(s, str) for s in prev):
        return "previous_steps must be a list of strings"
    if "label" in obj and obj["label"] not in (0, 1, None):
        return "label must be 0, 1 or null"
    return None


def accuracy_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy over labelled rows (a -1 verdict counts as wrong), and how many were failures."""
    labelled = [r for r in rows if r.get("label") in (0, 1)]
    correct = sum(r["verdict"] == r["label"] for r in labelled)
    return {
        "labelled": len(labelled),
        "correct": correct,
        "accuracy": correct / len(labelled) if labelled else None,
        "failed": sum(r["verdict"] == -1 for r in labelled),
    }


def judge_command(
    input: Path = typer.Option(
        ..., "--input", "-i", help="JSON Lines: question, previous_steps, step_a, step_b[, label]."
    ),
    model: str = typer.Option("embedded", "--model", "-m", help="Local directory, hub id, or 'embedded'."),
    mode: str = typer.Option("logprob", help="logprob | generate | likelihood (see docs/step-judge.md)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Output JSON Lines (default: stdout)."),
    batch_size: int = typer.Option(8, help="Sequences per forward pass."),
    debias: bool = typer.Option(True, help="Judge both orders and combine (logprob, generate)."),
    max_new_tokens: int = typer.Option(256, help="Explanation + verdict budget in generate mode."),
    backend: str = typer.Option("hf", help="hf (transformers) or vllm."),
) -> None:
    """Judge which of two candidate next steps is better, for each record of a JSON Lines file."""
    from rich.console import Console

    from ..io import JsonlErrors, iter_jsonl, json_dumps, write_jsonl
    from ..judges.base import StepComparison
    from ..judges.pairwise import MODES, PairwiseStepJudge
    from ..models.loading import load_generator

    console = Console(stderr=True, soft_wrap=True)
    if mode not in MODES:
        raise UserError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if not input.is_file():
        raise UserError(f"input file {str(input)!r} does not exist")
    if output is not None:
        check_output_path(output)

    errors = JsonlErrors()
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for number, obj in iter_jsonl(input, errors, required=REQUIRED):
        problem = _check_record(obj)
        if problem is not None:
            errors.errors.append((number, problem))
            continue
        if "label" not in obj and obj.get("verdict") in (0, 1):
            obj["label"] = obj["verdict"]  # an EFT record: its verdict is the gold answer
        rows.append(obj)
        lines.append(number)
    errors.errors.sort()
    if errors:
        console.print(f"[yellow]skipped[/] {errors.summary(input)}", highlight=False)
    if not rows:
        raise UserError(f"no usable records in {input} (each needs {', '.join(REQUIRED)})")

    generator = load_generator(model, backend=backend, batch_size=batch_size)
    judge = PairwiseStepJudge(generator, mode=mode, debias=debias, max_new_tokens=max_new_tokens)
    comparisons = [StepComparison(r["question"], r["previous_steps"], r["step_a"], r["step_b"]) for r in rows]
    with console.status(f"judging {len(rows)} comparison(s) ({mode})"):
        verdicts = judge.compare(comparisons)
    # Each row carries its input line: skipped lines make output row i differ from input line i.
    out_rows = [
        {**r, "input_line": n, "verdict": v.verdict, "probability": v.probability,
         "consistent": v.extra.get("consistent")}
        for r, n, v in zip(rows, lines, verdicts, strict=True)
    ]
    if output is not None:
        write_jsonl(output, out_rows)
        console.print(f"wrote {len(out_rows)} judgment(s) to {output}", highlight=False)
    else:
        for row in out_rows:
            sys.stdout.write(json_dumps(row) + "\n")
        sys.stdout.flush()

    stats = judge.stats
    consistency = f", consistency {stats.consistency:.1%}" if stats.consistency is not None else ""
    console.print(
        f"{stats.comparisons} comparison(s): {stats.failures} failed, {stats.ties} tied, "
        f"{stats.inconsistent} inconsistent{consistency}",
        highlight=False,
    )
    summary = accuracy_summary(out_rows)
    if summary["labelled"]:
        console.print(
            f"accuracy {summary['accuracy']:.1%} ({summary['correct']}/{summary['labelled']} labelled; "
            f"{summary['failed']} without a verdict)",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    app.command("judge")(judge_command)
