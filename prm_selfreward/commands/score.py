"""``prm-sr score --input responses.jsonl --model M``: the pointwise 5-point judge on its own.

Each input record needs the user's question (``prompt``, or ``question``) and a ``response``; the
output holds every well-formed record, in input order, with ``score`` (mean of the parsable judge
samples, ``null`` if none) and ``samples`` added. Malformed lines are reported with their line numbers
and skipped, never fatal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..errors import UserError
from ..io import JsonlErrors, check_output_path, iter_jsonl, write_jsonl


def read_score_inputs(path: Path, errors: JsonlErrors) -> list[tuple[dict[str, Any], str, str]]:
    """``(record, question, response)`` for each usable line; the others go to ``errors``."""
    out = []
    for number, record in iter_jsonl(path, errors):
        question = record.get("prompt", record.get("question"))
        response = record.get("response")
        if not isinstance(question, str) or not isinstance(response, str):
            errors.errors.append((number, "needs string fields 'prompt' (or 'question') and 'response'"))
            continue
        out.append((record, question, response))
    return out


def score_command(
    input: Path = typer.Option(
        ..., "--input", "-i", help="JSON Lines with prompt (or question) and response."
    ),
    model: str = typer.Option("embedded", "--model", "-m", help="Local directory, hub id, or 'embedded'."),
    samples: int = typer.Option(3, help="Judge samples per response, averaged (the paper: 3)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Output JSON Lines (default: INPUT with .scored.jsonl)."
    ),
    template: Path | None = typer.Option(None, help="Judge prompt file with {prompt} and {response}."),
    score_pattern: str | None = typer.Option(None, help="Regex with one group for the score (last match)."),
    temperature: float = typer.Option(0.7, help="Judge sampling temperature."),
    top_p: float = typer.Option(0.9, help="Judge nucleus sampling."),
    max_new_tokens: int = typer.Option(192, help="Judge output budget (justification + score)."),
    batch_size: int = typer.Option(8, help="Sequences per forward pass (transformers backend)."),
    chunk_size: int = typer.Option(64, help="Records per judge call (progress granularity)."),
    keep_raw: bool = typer.Option(
        False, "--keep-raw", help="Also write the judge's raw outputs ('judge_raw')."
    ),
    backend: str = typer.Option("hf", help="hf (transformers) or vllm."),
    seed: int = typer.Option(0, help="Sampling seed."),
) -> None:
    """Score responses with the additive 5-point LLM-as-a-judge prompt; prints a summary."""
    from rich.console import Console
    from rich.table import Table

    from ..judges.pointwise import DEFAULT_SCORE_PATTERN, PointwiseJudge, compile_score_pattern, load_template
    from ..models import config as model_config
    from ..progress import ProgressReporter

    if not input.is_file():
        raise UserError(f"input file not found: {input}")
    if samples < 1 or chunk_size < 1:
        raise UserError("--samples and --chunk-size must be at least 1")
    output = output or input.with_name(input.name.removesuffix(".jsonl") + ".scored.jsonl")
    if output.resolve() == input.resolve():
        raise UserError("--output must differ from --input")
    check_output_path(output)
    console = Console(stderr=True)
    errors = JsonlErrors()
    items = read_score_inputs(input, errors)
    if errors:
        console.print(f"[yellow]skipped[/] {errors.summary(input)}", highlight=False)
    template_text = load_template(template) if template is not None else None
    pattern = score_pattern or DEFAULT_SCORE_PATTERN

    compile_score_pattern(pattern)  # a bad regex fails before the model load, not after
    generator = model_config.load_generator(model, backend=backend, batch_size=batch_size, seed=seed)
    judge = PointwiseJudge(
        generator,
        template=template_text,
        score_pattern=pattern,
        samples=samples,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
    )
    rows = []
    with ProgressReporter("score", len(items), unit="records") as progress:
        for start in range(0, len(items), chunk_size):
            chunk = items[start : start + chunk_size]
            results = judge.score([q for _, q, _ in chunk], [r for _, _, r in chunk])
            for (record, _, _), result in zip(chunk, results, strict=True):
                row = dict(record)
                row["score"] = result.mean
                row["samples"] = result.samples
                if keep_raw:
                    row["judge_raw"] = result.raw
                rows.append(row)
            progress.advance(len(chunk))
    write_jsonl(output, rows)

    scored = [r["score"] for r in rows if r["score"] is not None]
    unparsable = sum(1 for r in rows for s in r["samples"] if s is None)
    table = Table(title=f"pointwise judge: {model}", show_header=False)
    table.add_row("records scored", str(len(rows)))
    table.add_row("malformed lines skipped", str(len(errors)))
    table.add_row("judge samples", str(len(rows) * samples))
    table.add_row("unparsable samples", str(unparsable))
    table.add_row("records without a score", str(len(rows) - len(scored)))
    table.add_row("mean score", f"{sum(scored) / len(scored):.3f}" if scored else "-")
    Console().print(table)
    Console().print(f"written to {output}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("score")(score_command)
