"""Command options that are config fields: one owner for every default.

A stage command's option that sets a config field is declared with :func:`config_option`: its default
is ``None`` ("not given") and its help text ends with the config key and the field's default, read from
the dataclass. Given options become overrides on top of ``--config FILE`` and ``--set KEY=VALUE`` (in
that order: file, then ``--set``, then explicit options), so ``prm-sr eval`` with no options runs exactly
what a config file without an ``eval:`` section runs. ``tests/test_cli_options.py`` checks every
command's options against :data:`COMMAND_OPTIONS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from .config import ConfigError, field_of, merge, parse_overrides, set_key

COMMAND_OPTIONS: dict[str, dict[str, str]] = {}
"""command name -> {parameter name: dotted config key}, filled by :func:`config_option` users."""
_FLAGS: dict[tuple[str, str], str] = {}
"""(command, dotted key) -> the option's flag, to name it in errors."""


def _run_config_cls() -> type:
    from .run_config import RunConfig

    return RunConfig


def describe_default(key: str) -> str:
    _, _, default = field_of(_run_config_cls(), key)
    return "none" if default is None else repr(default) if isinstance(default, str) else str(default)


def config_option(command: str, param: str, key: str, *flags: str, help: str | None = None) -> Any:
    """A typer option for config field ``key`` of the run config (default ``None``: the config decides)."""
    f, _, _ = field_of(_run_config_cls(), key)
    COMMAND_OPTIONS.setdefault(command, {})[param] = key
    if flags:
        _FLAGS[(command, key)] = flags[0].split("/")[0]
    text = help or f.metadata.get("help", "")
    return typer.Option(None, *flags, help=f"{text} (config: {key}; default: {describe_default(key)})")


CONFIG_FILE_HELP = "Run config YAML (the file `prm-sr iterate --config` takes); its sections apply here."
SET_HELP = "Config override KEY=VALUE (e.g. --set search.width=4); repeatable; explicit options win over it."


def config_file_option() -> Any:
    return typer.Option(None, "--config", "-c", help=CONFIG_FILE_HELP)


def set_option() -> Any:
    return typer.Option([], "--set", help=SET_HELP)


def given_overrides(command: str, values: dict[str, Any]) -> dict[str, Any]:
    """The overrides of the options of ``command`` that were given (not None), as a nested dict."""
    out: dict[str, Any] = {}
    for param, key in COMMAND_OPTIONS.get(command, {}).items():
        value = values.get(param)
        if value is None:
            continue
        if isinstance(value, Path):
            value = str(value)
        set_key(out, key, value)
    return out


def _given_keys(command: str, values: dict[str, Any]) -> set[str]:
    return {key for param, key in COMMAND_OPTIONS.get(command, {}).items() if values.get(param) is not None}


def resolve_command_config(
    command: str, config_file: Path | None, set_items: list[str], values: dict[str, Any],
    extra: dict[str, Any] | None = None, data_for: list[str] | None = None,
) -> Any:
    """The run config a stage command runs with: defaults <- ``config_file`` <- ``--set`` <- options
    <- ``extra`` (what the command derives itself, e.g. ``eval.benchmarks`` from its arguments). The data
    directory must hold the files of the benchmarks in ``data_for`` (those the command reads). Raises
    :class:`ConfigError` (one line, before any model loads) for an unknown key or a bad value."""
    from .data import resolve_data_dir
    from .run_config import load_run_config, validate_run_config

    overrides = merge(parse_overrides(set_items), given_overrides(command, values))
    if extra:
        overrides = merge(overrides, extra)
    try:
        config = load_run_config(config_file, overrides)
    except ConfigError as exc:
        key = str(exc).split(":", 1)[0]
        flag = _FLAGS.get((command, key))
        if flag is not None and key in _given_keys(command, values):
            raise ConfigError(f"{flag} ({exc})") from exc
        raise
    if config.data_dir is None:
        resolved = resolve_data_dir(None)
        if resolved is not None:
            config.data_dir = str(resolved)
    validate_run_config(config, data_for=data_for if data_for is not None else [])
    return config


__all__ = [
    "COMMAND_OPTIONS",
    "ConfigError",
    "config_file_option",
    "config_option",
    "given_overrides",
    "resolve_command_config",
    "set_option",
]
