"""``prm-sr iterate [--task math|instruct]``: the whole self-rewarding loop, resumable.

``--config`` defaults to the embedded CPU config (``--smoke``: the smoke config); ``--task``,
``--model``, ``--iterations``, ``--data-dir`` and ``--set`` override it (a task named in the file stands
unless ``--task`` is given). With ``--resume`` the run's saved config is used, and the options given
change it (recorded in ``manifest.json``'s ``config_changes``); a ``--config`` file that differs from it
is named in a warning, setting by setting, and not applied.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..cli_options import config_option, given_overrides, set_option

C = "iterate"


def iterate_command(
    task: str | None = config_option(C, "task", "task", "--task"),
    config: Path | None = typer.Option(None, "--config", "-c", help="Run config YAML (default: the embedded CPU config)."),
    iterations: int | None = config_option(C, "iterations", "iterations", "--iterations"),
    run_dir: Path | None = typer.Option(None, help="Run directory (default runs/<task>[-smoke])."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run-dir, skipping finished stages."),
    smoke: bool = typer.Option(False, "--smoke", help="Smallest sizes that exercise every stage (minutes)."),
    model: str | None = config_option(C, "model", "model.name", "--model"),
    data_dir: Path | None = config_option(C, "data_dir", "data_dir", "--data-dir"),
    set_: list[str] = set_option(),
) -> None:
    """M0 -> M1 (SFT on IFT+EFT seeds) -> M2, M3 ... (DPO on self-judged pairs), evaluating every model."""
    from rich.console import Console

    from ..config import merge, parse_overrides
    from ..data import resolve_data_dir
    from ..io import check_output_path
    from ..loop import ignored_file_settings, iterate, prepare_run_dir
    from ..report import build_report, print_report
    from ..run_config import default_config_path, load_run_config

    console = Console()
    overrides = merge(parse_overrides(set_), given_overrides(C, dict(locals())))
    if data_dir is None:
        resolved = resolve_data_dir(None)  # $PRM_SR_DATA_DIR
        if resolved is not None:
            overrides.setdefault("data_dir", str(resolved))
    cfg = load_run_config(config or default_config_path(smoke), overrides)
    run_dir = run_dir or Path("runs") / (f"{cfg.task}-smoke" if smoke else cfg.task)
    check_output_path(run_dir, kind="dir")
    file_cfg, cfg = cfg, prepare_run_dir(run_dir, cfg, resume, overrides=overrides)
    ignored = ignored_file_settings(file_cfg, cfg) if resume and config is not None else {}
    if ignored:
        shown = "; ".join(f"{k}: {theirs!r} in the run, {ours!r} in the file" for k, (theirs, ours) in list(ignored.items())[:6])
        more = f" (+{len(ignored) - 6} more)" if len(ignored) > 6 else ""
        console.print(f"[yellow]warning:[/] --resume keeps the run's saved config; {config} differs in {shown}{more}. "
                      "To change a setting of the run, pass --set KEY=VALUE (recorded in manifest.json's config_changes).")
    console.print(f"[bold]prm-sr iterate[/] task={cfg.task} model={cfg.model.name} run_dir={run_dir}")
    iterate(cfg, run_dir, log=console.print)
    report = build_report(run_dir)
    print_report(console, report)
    console.print(f"report: {report} and {report.with_suffix('.png')}")


def register(app: typer.Typer) -> None:
    app.command("iterate")(iterate_command)
