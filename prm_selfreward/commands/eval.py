"""``prm-sr eval [BENCH...]``: greedy (or maj@K, or step-search) accuracy with the sympy checker.

Options are the run config's ``eval``/``model``/``search``/``judge`` fields (see :mod:`..cli_options`);
the evaluation is the loop's own stage (:func:`prm_selfreward.stages.eval_stage`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..cli_options import config_file_option, config_option, resolve_command_config, set_option
from ..errors import UserError
from ..io import check_output_path

C = "eval"


def _few_shot(value: str | None) -> int | str | None:
    if value is None or value == "auto":
        return value
    try:
        return int(value)
    except ValueError as exc:
        raise UserError(f"--few-shot must be a number of examples or 'auto', not {value!r}") from exc


def eval_command(
    benchmarks: list[str] | None = typer.Argument(
        None, help="gsm8k, math, math500, olympiadbench, gaokao2023en, aime24, amc23 (default: eval.benchmarks)."
    ),
    model: str | None = config_option(C, "model", "model.name", "--model", "-m"),
    limit: int | None = typer.Option(None, help="First N problems of each benchmark (sets eval.limit for each)."),
    samples: int | None = config_option(C, "samples", "eval.samples", "--samples"),
    temperature: float | None = config_option(C, "temperature", "eval.temperature", "--temperature"),
    max_new_tokens: int | None = config_option(C, "max_new_tokens", "eval.max_new_tokens", "--max-new-tokens"),
    few_shot: str | None = config_option(C, "few_shot", "eval.few_shot", "--few-shot"),
    search_width: int | None = config_option(C, "search_width", "eval.search_width", "--search-width"),
    judge_mode: str | None = config_option(C, "judge_mode", "judge.mode", "--judge-mode"),
    batch_size: int | None = config_option(C, "batch_size", "model.batch_size", "--batch-size"),
    backend: str | None = config_option(C, "backend", "model.backend", "--backend"),
    data_dir: Path | None = config_option(C, "data_dir", "data_dir", "--data-dir"),
    seed: int | None = config_option(C, "seed", "eval.seed", "--seed"),
    output: Path = typer.Option(Path("runs/eval"), "--output", "-o", help="Output directory (re-runs resume)."),
    config: Path | None = config_file_option(),
    set_: list[str] = set_option(),
) -> None:
    """Evaluate a model on math benchmarks; writes <bench>.jsonl and summary.json, prints a table."""
    from rich.console import Console

    from ..models.config import load_generator_from_config
    from ..stages import eval_stage

    values = dict(locals())
    values["few_shot"] = _few_shot(few_shot)
    extra: dict = {}
    if benchmarks:
        extra["eval"] = {"benchmarks": list(benchmarks)}
    cfg = resolve_command_config(C, config, set_, values, extra, data_for=list(benchmarks or []) or None)
    if not benchmarks:
        from ..run_config import validate_run_config

        validate_run_config(cfg, data_for=cfg.eval.benchmarks)
    check_output_path(output, kind="dir")
    if limit is not None:
        from ..config import ConfigError

        if limit < 1:
            raise ConfigError(f"--limit: must be at least 1, got {limit}")
        cfg.eval.limit = {b: limit for b in cfg.eval.benchmarks}
    console = Console()
    generator = load_generator_from_config(cfg.model, seed=cfg.seed)
    result = eval_stage(
        generator, cfg.eval, output, search=cfg.search, judge=cfg.judge, data_dir=cfg.data_dir,
        model_name=cfg.model.name,
    )
    from ..evaluate import summary_table

    console.print(summary_table(result))
    console.print(f"records and summary.json in {output} ({result['few_shot']}-shot)")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
