"""``prm-sr iterate --task math|instruct``: the whole self-rewarding loop, resumable."""

from __future__ import annotations

from pathlib import Path

import typer


def iterate_command(
    task: str = typer.Option("math", help="math (process-based step-DPO) or instruct (instruction-level)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Run config YAML (default: the embedded CPU config)."),
    iterations: int | None = typer.Option(None, help="DPO iterations after M1 (overrides the config)."),
    run_dir: Path | None = typer.Option(None, help="Run directory (default runs/<task>[-smoke])."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run-dir, skipping finished stages."),
    smoke: bool = typer.Option(False, "--smoke", help="Smallest sizes that exercise every stage (minutes)."),
    model: str | None = typer.Option(None, help="Base model M0 (overrides model.name)."),
    data_dir: Path | None = typer.Option(None, help="Local benchmark directory (else $PRM_SR_DATA_DIR)."),
    set_: list[str] = typer.Option([], "--set", help="Config override KEY=VALUE, e.g. --set search.width=4."),
) -> None:
    """M0 -> M1 (SFT on IFT+EFT seeds) -> M2, M3 ... (DPO on self-judged pairs), evaluating every model."""
    from rich.console import Console

    from ..config import merge, parse_overrides
    from ..data import resolve_data_dir
    from ..io import check_output_path
    from ..loop import default_config_path, iterate, load_run_config, prepare_run_dir
    from ..report import build_report, print_report

    console = Console()
    overrides = parse_overrides(set_)
    overrides = merge(overrides, {"task": task})
    if iterations is not None:
        overrides["iterations"] = iterations
    if model:
        overrides = merge(overrides, {"model": {"name": model}})
    resolved = resolve_data_dir(data_dir)
    if resolved is not None:
        overrides["data_dir"] = str(resolved)
    cfg = load_run_config(config or default_config_path(smoke), overrides)
    run_dir = run_dir or Path("runs") / (f"{task}-smoke" if smoke else task)
    check_output_path(run_dir, kind="dir")
    cfg = prepare_run_dir(run_dir, cfg, resume)
    console.print(f"[bold]prm-sr iterate[/] task={cfg.task} model={cfg.model.name} run_dir={run_dir}")
    iterate(cfg, run_dir, log=console.print)
    report = build_report(run_dir)
    print_report(console, report)
    console.print(f"report: {report} and {report.with_suffix('.png')}")


def register(app: typer.Typer) -> None:
    app.command("iterate")(iterate_command)
