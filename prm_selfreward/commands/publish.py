"""``prm-sr publish RUN_DIR --out DIR``: a run's small artifacts, without benchmark text or weights."""

from __future__ import annotations

from pathlib import Path

import typer

from ..io import check_output_path


def publish_command(
    run_dir: Path = typer.Argument(..., help="The run directory."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write (created; its files are overwritten)."),
) -> None:
    """Copy a run's report, manifest, config, summaries and per-item results (eval completions, judge
    verdicts, step pairs, audits) with every benchmark prompt dropped and no model weights."""
    from rich.console import Console

    from ..publish import publish_run

    check_output_path(out, kind="dir")
    counts = publish_run(run_dir, out)
    line = f"written: {out} ({counts['files']} files, {counts['records']} records)"
    if counts["malformed_lines"]:
        line += f"; {counts['malformed_lines']} malformed line(s) skipped (a stage still running or killed?)"
    Console().print(line, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("publish")(publish_command)
