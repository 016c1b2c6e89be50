"""Run one training stage on its own, so it can be started by a multi-process launcher::

    python -m prm_selfreward.train dpo --model runs/x/iter_1/model --data runs/x/iter_2/pairs.jsonl \\
        --out runs/x/iter_2/model --set lora=true
    accelerate launch --config_file configs/accelerate/multi_gpu_ddp.yaml -m prm_selfreward.train dpo ...

``sft`` reads ``{prompt, completion}`` JSON Lines, ``dpo`` the pair files :mod:`prm_selfreward.pairs` writes.
``--config`` is a YAML file holding the stage's options (a run config's ``sft:`` / ``dpo:`` section is
picked out when present); ``--set KEY=VALUE`` overrides single options. Prints the TrainResult as JSON
on stdout; the training's progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

from ..config import from_dict, load_yaml, merge, parse_overrides
from ..errors import UserError
from ..io import JsonlErrors, json_dumps, read_jsonl
from .config import DPOTrainConfig, SFTTrainConfig
from .distributed import is_main_process


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m prm_selfreward.train", description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=["sft", "dpo"])
    parser.add_argument("--model", required=True, help="Model directory, 'embedded' or a hub id.")
    parser.add_argument("--data", required=True, help="JSON Lines: SFT records or DPO pairs.")
    parser.add_argument("--out", required=True, help="Directory of the trained model (written atomically).")
    parser.add_argument("--config", help="YAML with the stage's options (or a run config with sft:/dpo:).")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="Option KEY=VALUE.")
    return parser


def stage_config(stage: str, config_path: str | None, overrides: list[str]) -> SFTTrainConfig | DPOTrainConfig:
    data: dict[str, Any] = load_yaml(config_path) if config_path else {}
    if stage in data and isinstance(data[stage], dict):
        data = data[stage]
    data = merge(data, parse_overrides(overrides))
    return from_dict(SFTTrainConfig if stage == "sft" else DPOTrainConfig, data)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if is_main_process() else logging.WARNING, format="%(message)s")
    try:
        config = stage_config(args.stage, args.config, args.overrides)
        if not Path(args.data).is_file():
            raise UserError(f"data file not found: {args.data}")
        errors = JsonlErrors()
        rows = read_jsonl(args.data, errors)
        if errors:
            logging.getLogger(__name__).warning("skipped %s", errors.summary(args.data))
        # stdout carries the TrainResult JSON alone: progress lines (and anything a library prints) go
        # to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            if args.stage == "sft":
                from .sft import train_sft

                result = train_sft(args.model, rows, args.out, config)  # type: ignore[arg-type]
            else:
                from .dpo import train_step_dpo

                result = train_step_dpo(args.model, rows, args.out, config)  # type: ignore[arg-type]
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if is_main_process():
        print(json_dumps(result.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
