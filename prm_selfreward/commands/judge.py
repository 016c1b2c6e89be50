"""``prm-sr judge --input pairs.jsonl --model M``: pairwise step judgments for a file of comparisons.

Each input record needs ``question``, ``previous_steps`` (a list of strings), ``step_a`` and
``step_b``; an optional ``label`` (0: step_a is better, 1: step_b) makes the command print accuracy.
Every well-formed record is written back, in input order, with ``verdict`` (0, 1 or -1),
``probability`` and ``consistent`` added. EFT records (``eft_heldout.jsonl`` of the seed data) carry
their gold answer as ``verdict``; when a record has no ``label``, its input ``verdict`` (0 or 1) is
kept as ``label`` before the judge's verdict replaces it, so the held-out set works as it is. Malformed lines are reported with their line numbers and
skipped.

Comparisons are judged ``--chunk-size`` at a time and written as they are judged. With ``--output``
the file is resumable: a killed run keeps every judged chunk, and a re-run judges only the records
not yet there (:func:`prm_selfreward.stages.judge_rows_to_jsonl`: records made by another model or
judge setting, or for another input, are an error; ``--overwrite`` starts over). Progress lines go
to stdout, or to stderr when the records do.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from ..cli_options import config_file_option, config_option, resolve_command_config, set_option
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


def _output_row(row: dict[str, Any]) -> dict[str, Any]:
    """A judged row as the command writes it: the judge's verdict as ``verdict``, no ``p_a``."""
    row = dict(row)
    row["verdict"] = row.pop("predicted")
    row.pop("p_a", None)
    return row


C = "judge"


def judge_command(
    input: Path = typer.Option(
        ..., "--input", "-i", help="JSON Lines: question, previous_steps, step_a, step_b[, label]."
    ),
    model: str | None = config_option(C, "model", "model.name", "--model", "-m"),
    mode: str | None = config_option(C, "mode", "judge.mode", "--mode"),
    output: Path | None = typer.Option(None, "--output", "-o", help="Output JSON Lines (default: stdout)."),
    batch_size: int | None = config_option(C, "batch_size", "model.batch_size", "--batch-size"),
    debias: bool | None = config_option(C, "debias", "judge.debias", "--debias/--no-debias"),
    max_new_tokens: int | None = config_option(C, "max_new_tokens", "judge.max_new_tokens", "--max-new-tokens"),
    solve_few_shot: int | None = config_option(C, "solve_few_shot", "judge.solve_few_shot", "--solve-few-shot"),
    backend: str | None = config_option(C, "backend", "model.backend", "--backend"),
    chunk_size: int = typer.Option(
        32, "--chunk-size", min=1, help="Comparisons per judge call; records are written after each."
    ),
    overwrite: bool = typer.Option(False, help="Start over instead of resuming an existing --output."),
    config: Path | None = config_file_option(),
    set_: list[str] = set_option(),
) -> None:
    """Judge which of two candidate next steps is better, for each record of a JSON Lines file."""
    from rich.console import Console

    from ..fingerprint import model_identity
    from ..io import JsonlErrors, iter_jsonl, json_dumps
    from ..judges.pairwise import PairwiseStepJudge
    from ..models.config import load_generator_from_config
    from ..progress import ProgressReporter
    from ..stages import judge_rows_to_jsonl, judged

    console = Console(stderr=True, soft_wrap=True)
    cfg = resolve_command_config(C, config, set_, dict(locals()))
    if not input.is_file():
        raise UserError(f"input file {str(input)!r} does not exist")
    if output is not None:
        check_output_path(output)
        if output.exists() and output.resolve() == input.resolve():
            raise UserError("--output must differ from --input")

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

    generator = load_generator_from_config(cfg.model, seed=cfg.seed)
    label = f"judge {cfg.judge.mode}"
    if output is not None:
        if overwrite:
            output.unlink(missing_ok=True)
        # Each row carries its input line (skipped lines make output row i differ from input line i); it
        # is also the key a resumed run matches records by.
        out_rows, judge, resumed = judge_rows_to_jsonl(
            generator, rows, cfg.judge, output, keys=lines, key="input_line", shape=_output_row,
            solve_few_shot=cfg.search.few_shot, model=model_identity(cfg.model.name), chunk_size=chunk_size,
            progress_label=label,
        )
        reused = f" ({resumed['records']} found done and kept)" if resumed["records"] else ""
        console.print(f"wrote {len(out_rows)} judgment(s) to {output}{reused}", highlight=False)
    else:
        judge = PairwiseStepJudge.from_config(generator, cfg.judge, solve_few_shot=cfg.search.few_shot)
        out_rows = []
        # Records stream to stdout as they are judged; progress goes to stderr, out of their way.
        with ProgressReporter(label, len(rows), unit="comparisons", stream=sys.stderr) as bar:
            for start in range(0, len(rows), chunk_size):
                chunk = judged(judge, rows[start : start + chunk_size])
                for r, n in zip(chunk, lines[start : start + chunk_size], strict=True):
                    row = {**_output_row(r), "input_line": n}
                    sys.stdout.write(json_dumps(row) + "\n")
                    out_rows.append(row)
                sys.stdout.flush()
                bar.advance(len(chunk))

    stats = judge.stats
    consistency = f", consistency {stats.consistency:.1%}" if stats.consistency is not None else ""
    console.print(
        f"{stats.comparisons} comparison(s) judged in this run: {stats.failures} failed, {stats.ties} tied, "
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
