"""``prm-sr plan --config C [--set KEY=VALUE ...]``: what a run will ask of the machines, without a GPU.

Resolves the config as ``prm-sr iterate`` does, reads the model's ``config.json`` (a local directory,
the hub cache, or the shipped table of the paper configs' models) and prints, per stage, where it runs,
the estimated GPU memory per device and the longest prompt against the context (see
:mod:`prm_selfreward.plan`). Exits 2, naming what does not fit, when something cannot.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..cli_options import set_option


def plan_command(
    config: Path = typer.Option(..., "--config", "-c", help="Run config YAML to plan (the file `prm-sr iterate` takes)."),
    set_: list[str] = set_option(),
    question_tokens: int = typer.Option(512, "--question-tokens", min=1, help="Tokens a question is counted at."),
) -> None:
    """Plan a run: GPUs, launchers, memory per device and prompt lengths per stage; fails where it cannot fit."""
    from rich.console import Console

    from ..cluster import check_training_launch
    from ..config import parse_overrides
    from ..errors import UserError
    from ..plan import build_plan, format_plan
    from ..run_config import CONFIG_DIR, load_run_config

    cfg = load_run_config(config, parse_overrides(set_))
    check_training_launch(cfg)
    plan = build_plan(cfg, question_tokens=question_tokens, base_dir=CONFIG_DIR.parent)
    console = Console(soft_wrap=True, highlight=False)
    for line in format_plan(plan):
        console.print(line, markup=False)
    if not plan.ok():
        raise UserError(f"{config}: {len(plan.problems)} thing(s) cannot fit (listed above)")


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_command)
