"""``prm-sr pairs``: step search with the model as its own judge, then the step-level pair builder.

Writes ``OUT/search.jsonl`` (one :class:`~prm_selfreward.search.SearchResult` per problem, appended
chunk by chunk, so a re-run resumes), ``OUT/pairs.jsonl`` (the DPO dataset), ``OUT/search_config.json``
and ``OUT/summary.json``, and prints a summary table.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import typer

from ..cli_options import config_file_option, config_option, resolve_command_config, set_option
from ..errors import UserError


def _summary_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    def num(x: float | None, fmt: str = "{:.1f}") -> str:
        return "n/a" if x is None else fmt.format(x)

    c = summary["counters"]
    return [
        ("problems searched (this run)", str(c["problems"])),
        ("problems in output", str(summary["problems"])),
        ("finished solutions", f"{summary['finished']} / {summary['problems']}"),
        ("pairs emitted", str(summary["pairs_emitted"])),
        ("pairs kept (pairs.jsonl)", str(summary["pairs_kept"])),
        ("  of which final steps", str(summary["pair_stats"]["final_steps"])),
        ("ties (all candidates equal)", str(c["ties"])),
        ("roll-backs", str(c["rollbacks"])),
        ("guarded: repeat / copy / loop",
         f"{c['repeat_candidates']} / {c['copy_candidates']} / {c['loop_candidates']}"),
        ("pairs rejecting a guarded step", str(c["guard_pairs"])),
        ("degenerate stops (all guarded)", str(c["degenerate_stops"])),
        ("judge failures", f"{c['judge_failures']} / {c['comparisons']} comparisons"),
        ("judge consistency (both orders)", pct(summary["judge_consistency"])),
        ("model calls", str(summary["usage"]["calls"])),
        ("tokens per pair", num(summary["tokens_per_pair"], "{:.0f}")),
        ("pairs per minute", num(summary["pairs_per_minute"])),
        ("wall time", f"{summary['wall_time_s']:.1f} s"),
    ]


C = "pairs"


def pairs_command(
    model: str | None = config_option(C, "model", "model.name", "--model", "-m"),
    problems: str = typer.Option("gsm8k", help="Benchmark to draw problems from (gsm8k, math, ...)."),
    split: str = typer.Option("train", help="Benchmark split (train pools never hold evaluation problems)."),
    limit: int | None = typer.Option(None, help="First N problems of the split."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (a re-run resumes)."),
    width: int | None = config_option(C, "width", "search.width", "--width"),
    mode: str | None = config_option(C, "mode", "judge.mode", "--mode"),
    debias: bool | None = config_option(C, "debias", "judge.debias", "--debias/--no-debias"),
    few_shot: int | None = config_option(C, "few_shot", "search.few_shot", "--few-shot"),
    max_rounds: int | None = config_option(C, "max_rounds", "search.max_rounds", "--max-rounds"),
    max_step_tokens: int | None = config_option(C, "max_step_tokens", "search.max_step_tokens", "--max-step-tokens"),
    temperature: float | None = config_option(C, "temperature", "search.temperature", "--temperature"),
    top_p: float | None = config_option(C, "top_p", "search.top_p", "--top-p"),
    min_margin: float | None = config_option(C, "min_margin", "search.min_margin", "--min-margin"),
    record_correctness: bool | None = config_option(
        C, "record_correctness", "search.record_correctness", "--record-correctness/--no-record-correctness"
    ),
    drop_wrong: bool | None = config_option(C, "drop_wrong", "search.drop_wrong", "--drop-wrong/--no-drop-wrong"),
    lockstep: int | None = config_option(C, "lockstep", "search.lockstep", "--lockstep"),
    batch_size: int | None = config_option(C, "batch_size", "model.batch_size", "--batch-size"),
    backend: str | None = config_option(C, "backend", "model.backend", "--backend"),
    data_dir: Path | None = config_option(C, "data_dir", "data_dir", "--data-dir"),
    seed: int | None = config_option(C, "seed", "search.seed", "--seed"),
    overwrite: bool = typer.Option(
        False, help="Start over instead of resuming an existing OUT/search.jsonl."
    ),
    config: Path | None = config_file_option(),
    set_: list[str] = set_option(),
) -> None:
    """Search step by step with the model judging its own candidates; write step-level DPO pairs."""
    from rich.console import Console
    from rich.table import Table

    from ..data import load_benchmark
    from ..fingerprint import model_identity
    from ..io import atomic_write_json, check_output_path
    from ..models.config import load_generator_from_config
    from ..progress import ProgressReporter
    from ..stages import pairs_stage, search_stage, search_summary

    cfg = resolve_command_config(C, config, set_, dict(locals()), data_for=[problems])
    search_config = cfg.search
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")

    check_output_path(out, kind="dir")
    out.mkdir(parents=True, exist_ok=True)
    search_path, config_path = out / "search.jsonl", out / "search_config.json"
    settings = {
        "model": cfg.model.name,
        "problems": problems,
        "split": split,
        "judge": dataclasses.asdict(cfg.judge),
        "search": dataclasses.asdict(search_config),
    }
    if overwrite:
        search_path.unlink(missing_ok=True)
    elif search_path.exists() and config_path.exists():
        previous = json.loads(config_path.read_text(encoding="utf-8"))
        if previous != settings:
            changed = sorted(k for k in settings if previous.get(k) != settings[k])
            raise UserError(
                f"{search_path} was made with other settings ({', '.join(changed)}); "
                "use another --out or --overwrite"
            )
    atomic_write_json(config_path, settings)

    console = Console()
    selected = load_benchmark(problems, split=split, data_dir=cfg.data_dir, limit=limit)
    if not selected:
        raise UserError(f"no problems selected from {problems} ({split})")
    generator = load_generator_from_config(cfg.model, seed=cfg.seed)

    start = time.perf_counter()
    with ProgressReporter(f"search {problems}/{split}", len(selected), unit="problems") as bar:
        results, search = search_stage(
            generator, selected, search_config, cfg.judge, search_path, on_chunk=bar.on_search_chunk,
            on_round=bar.on_search_round, model=model_identity(cfg.model.name),
        )
    wall = time.perf_counter() - start

    pairs, stats = pairs_stage(results, search_config, out / "pairs.jsonl")
    totals = search_summary(results)
    c = search.counters
    summary = {
        "problems": len(results),
        "finished": totals["finished"],
        "correct": totals["solved"] if (search_config.record_correctness or search_config.drop_wrong) else None,
        "pairs_emitted": stats.input,
        "pairs_kept": stats.kept,
        "pair_stats": stats.to_dict(),
        "counters": c.to_dict(),
        "all_counters": {k: v for k, v in totals.items() if k not in ("finished", "judge_consistency", "solved")},
        "judge_consistency": totals["judge_consistency"],
        "usage": dataclasses.asdict(search.usage),
        "tokens_per_pair": search.usage.total_tokens / c.pairs if c.pairs else None,
        "pairs_per_minute": 60 * c.pairs / wall if wall > 0 and c.problems else None,
        "wall_time_s": wall,
        "resumed": search.resumed,
    }
    atomic_write_json(out / "summary.json", summary)

    table = Table(title=f"step pairs: {cfg.model.name} on {problems}/{split}, w={search_config.width}, judge={cfg.judge.mode}")
    table.add_column("")
    table.add_column("value", justify="right")
    for name, value in _summary_rows(summary):
        table.add_row(name, value)
    console.print(table)
    console.print(f"pairs in {out / 'pairs.jsonl'}, search results in {search_path}")


def register(app: typer.Typer) -> None:
    app.command("pairs")(pairs_command)
