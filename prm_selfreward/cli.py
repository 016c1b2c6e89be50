"""``prm-sr``: the command-line entry point.

Each subcommand lives in ``prm_selfreward/commands/<name>.py`` and exposes ``register(app)``; heavy
imports (torch, transformers) happen inside the command bodies so ``prm-sr check`` starts fast.
User errors (:class:`~prm_selfreward.errors.UserError`) print one line and exit 2, no traceback.
The package's log lines (training loss per logged step, skipped records, seed-data shortfalls) go to stderr
at INFO; ``PRM_SR_LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR) changes the level.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer
from rich.console import Console

from .errors import UserError

app = typer.Typer(
    name="prm-sr",
    help="Self-rewarding language-model training for math reasoning (instruction-level and step-wise).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMANDS = ["check", "eval", "split", "judge", "pairs", "score", "iterate", "report", "publish", "restore", "plan", "trim_vocab"]

for _name in COMMANDS:
    importlib.import_module(f"prm_selfreward.commands.{_name}").register(app)


LOG_LEVEL_ENV = "PRM_SR_LOG_LEVEL"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def configure_logging() -> None:
    """Show the package's log records on stderr (through rich, beside the progress bars).

    Without this, Python's last-resort handler shows only warnings, so a long training stage printed nothing
    between its progress bar and its end. Only the ``prm_selfreward`` logger is configured: libraries keep
    their own levels. Calling it again replaces the handler instead of adding a second one.
    """
    from rich.logging import RichHandler

    name = os.environ.get(LOG_LEVEL_ENV, "INFO").strip().upper() or "INFO"
    if name not in _LOG_LEVELS:
        raise UserError(f"{LOG_LEVEL_ENV}={name!r} is not a log level; use one of {', '.join(_LOG_LEVELS)}")
    logger = logging.getLogger("prm_selfreward")
    for handler in [h for h in logger.handlers if getattr(h, "_prm_sr", False)]:
        logger.removeHandler(handler)
    handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False)
    handler._prm_sr = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(name)


def main(argv: list[str] | None = None) -> None:
    try:
        configure_logging()
        app(args=argv, standalone_mode=True)
    except UserError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
