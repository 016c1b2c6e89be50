"""Every stage command's config-mapped option: default None (the config field decides), help naming the
field's key and default, and the precedence file < --set < option."""

from __future__ import annotations

import inspect

import pytest
import typer
import yaml

import prm_selfreward.cli  # noqa: F401  (registers every command and its options)
from prm_selfreward.cli_options import COMMAND_OPTIONS, describe_default, resolve_command_config
from prm_selfreward.config import ConfigError, field_of
from prm_selfreward.run_config import RunConfig

COMMAND_FUNCTIONS = {}
for _name in ("eval", "pairs", "judge", "iterate"):
    module = __import__(f"prm_selfreward.commands.{_name}", fromlist=["x"])
    COMMAND_FUNCTIONS[_name] = getattr(module, f"{_name}_command")

ROWS = [(command, param, key) for command, options in sorted(COMMAND_OPTIONS.items())
        for param, key in sorted(options.items())]


def test_every_stage_command_maps_options():
    assert {"eval", "pairs", "judge", "iterate"} <= set(COMMAND_OPTIONS)
    assert len(ROWS) >= 35


@pytest.mark.parametrize("command,param,key", ROWS)
def test_option_default_is_the_config_fields(command, param, key):
    info = inspect.signature(COMMAND_FUNCTIONS[command]).parameters[param].default
    assert isinstance(info, typer.models.OptionInfo)
    assert info.default is None, f"{command} --{param} has its own default; the config field {key} must own it"
    field_of(RunConfig, key)  # the key is a real field
    assert f"config: {key}; default: {describe_default(key)})" in info.help


@pytest.mark.parametrize("command", ["eval", "pairs", "judge"])
def test_stage_commands_take_config_and_set(command):
    params = inspect.signature(COMMAND_FUNCTIONS[command]).parameters
    assert "config" in params and "set_" in params


def test_no_options_means_the_config_defaults():
    cfg = resolve_command_config("eval", None, [], {})
    assert cfg.eval == RunConfig().eval and cfg.judge == RunConfig().judge and cfg.model == RunConfig().model


def test_precedence_file_then_set_then_option(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"search": {"width": 3, "max_rounds": 7}, "judge": {"mode": "generate"}}))
    cfg = resolve_command_config("pairs", path, ["search.width=5", "judge.mode=likelihood"], {"width": 4})
    assert cfg.search.width == 4  # the option
    assert cfg.judge.mode == "likelihood"  # --set over the file
    assert cfg.search.max_rounds == 7  # the file over the default


@pytest.mark.parametrize(
    "values,message",
    [
        ({"mode": "votes"}, "--mode (judge.mode: 'votes' is not one of"),
        ({"width": 1}, "--width (search.width: must be at least 2"),
        ({"batch_size": 0}, "--batch-size (model.batch_size: must be at least 1"),
        ({"top_p": 1.5}, "--top-p (search.top_p: must be at most 1.0"),
    ],
)
def test_bad_option_values_name_the_option_and_the_key(values, message):
    with pytest.raises(ConfigError) as exc:
        resolve_command_config("pairs", None, [], values)
    assert message in str(exc.value)
