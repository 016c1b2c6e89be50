"""``prm-sr restore PUBLISHED --run-dir DIR``: a resumable run directory rebuilt from its published folder."""

from __future__ import annotations

from pathlib import Path

import typer

from ..io import check_output_path


def restore_command(
    published: Path = typer.Argument(..., help="A folder written by `prm-sr publish`."),
    run_dir: Path = typer.Option(..., "--run-dir", help="The run directory to lay out (must not hold a run)."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Benchmark data on this machine (default: $PRM_SR_DATA_DIR, else the run's)."),
    redo: str | None = typer.Option(
        None, "--redo", help="Drop this stage (e.g. train/M1) and every stage after it, so that `iterate --resume` "
        "does them again (with its --set changes): an ablation reusing the stages before it."),
) -> None:
    """Rebuild a run from its published records and LoRA adapters (seed data, training problems and the
    held-out judge rows are built again from the data and checked against the published ones), so that
    `prm-sr iterate --resume --run-dir DIR` continues it; stages it cannot rebuild run again."""
    from rich.console import Console

    from ..data import resolve_data_dir
    from ..restore import restore_run

    console = Console()
    check_output_path(run_dir, kind="dir")
    resolved = resolve_data_dir(data_dir)
    counts = restore_run(published, run_dir, data_dir=str(resolved) if resolved else None,
                         log=lambda msg: console.print(msg, highlight=False), redo=redo)
    console.print(f"restored {len(counts['restored'])} stage(s) into {run_dir}"
                  + (f"; to run again: {', '.join(counts['dropped'])}" if counts["dropped"] else ""),
                  highlight=False)
    console.print(f"continue with: prm-sr iterate --resume --run-dir {run_dir}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("restore")(restore_command)
