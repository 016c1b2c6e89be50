"""``prm-sr report RUN_DIR [RUN_DIR...]``: rebuild report.md / report.png from run directories."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import UserError
from ..io import check_output_path


def report_command(
    run_dirs: list[Path] = typer.Argument(..., help="One run directory, or several to compare side by side."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Where to write (default: the first run dir)."),
) -> None:
    """Rebuild the report of one run, or put several runs side by side."""
    from rich.console import Console

    from ..report import build_report, print_report

    if output is not None:
        check_output_path(output, kind="dir")
    for d in run_dirs:
        if not (d / "manifest.json").exists():
            raise UserError(f"{d} is not a run directory (no manifest.json)")
    path = build_report(*run_dirs, out_dir=output)
    console = Console()
    print_report(console, path)
    png = path.with_suffix(".png")
    console.print(f"written: {path}" + (f" and {png}" if png.exists() else " (no results yet, so no plot)"))


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
