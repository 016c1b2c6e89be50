"""Regenerate the option blocks of docs/cli.md for the stage commands: python docs/_gen_cli.py iterate|eval|judge|pairs"""

import inspect
import sys

import typer

import prm_selfreward.cli  # noqa: F401
from prm_selfreward.cli_options import COMMAND_OPTIONS

command = sys.argv[1]
fn = getattr(__import__(f"prm_selfreward.commands.{command}", fromlist=["x"]), f"{command}_command")
print("| option | config key | meaning |")
print("|---|---|---|")
for name, param in inspect.signature(fn).parameters.items():
    info = param.default
    if isinstance(info, typer.models.ArgumentInfo):
        print(f"| `{name.upper()}...` | | {info.help} |")
        continue
    if not isinstance(info, typer.models.OptionInfo):
        continue
    flags = ", ".join(f"`{f}`" for f in info.param_decls) or f"`--{name.replace('_', '-')}`"
    key = COMMAND_OPTIONS.get(command, {}).get(name)
    text = (info.help or "").replace("|", "/")
    if key is None and info.default not in (None, ...) and not isinstance(info.default, list):
        text += f" (default: {info.default})"
    print(f"| {flags} | {f'`{key}`' if key else ''} | {text} |")
