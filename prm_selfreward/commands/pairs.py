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
        ("judge failures", f"{c['judge_failures']} / {c['comparisons']} comparisons"),
        ("judge consistency (both orders)", pct(summary["judge_consistency"])),
        ("model calls", str(summary["usage"]["calls"])),
        ("tokens per pair", num(summary["tokens_per_pair"], "{:.0f}")),
        ("pairs per minute", num(summary["pairs_per_minute"])),
        ("wall time", f"{summary['wall_time_s']:.1f} s"),
    ]


def pairs_command(
    model: str = typer.Option("embedded", "--model", "-m", help="Local directory, hub id, or 'embedded'."),
    problems: str = typer.Option("gsm8k", help="Benchmark to draw problems from (gsm8k, math, ...)."),
    split: str = typer.Option("train", help="Benchmark split (train pools never hold evaluation problems)."),
    limit: int | None = typer.Option(None, help="First N problems of the split."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (a re-run resumes)."),
    width: int = typer.Option(6, help="Candidate steps per step (the paper's w)."),
    mode: str = typer.Option("logprob", help="Judge mode: logprob | generate | likelihood."),
    debias: bool = typer.Option(
        False, help="Let the judge combine both orders itself (default: the paper's ordered-pair wins)."
    ),
    few_shot: int = typer.Option(0, help="Worked examples in the solving prompt (base models need a few)."),
    max_rounds: int = typer.Option(20, help="Rounds per problem."),
    max_step_tokens: int = typer.Option(256, help="Generation budget per step."),
    temperature: float = typer.Option(0.5, help="Sampling temperature for candidate steps."),
    top_p: float = typer.Option(0.95, help="Nucleus sampling for candidate steps."),
    min_margin: float = typer.Option(0.0, help="Keep pairs whose win margin is at least this."),
    record_correctness: bool = typer.Option(False, help="Check finished solutions against the gold answer."),
    drop_wrong: bool = typer.Option(
        False, help="Drop pairs from searches that ended wrong (implies checking)."
    ),
    lockstep: int = typer.Option(4, help="Problems searched together (one generate call per round)."),
    batch_size: int = typer.Option(8, help="Sequences per forward pass (transformers backend)."),
    backend: str = typer.Option("hf", help="hf (transformers) or vllm."),
    data_dir: Path | None = typer.Option(
        None, help="Local benchmark directory (else $PRM_SR_DATA_DIR, else the hub)."
    ),
    seed: int = typer.Option(0, help="Sampling seed."),
    overwrite: bool = typer.Option(
        False, help="Start over instead of resuming an existing OUT/search.jsonl."
    ),
) -> None:
    """Search step by step with the model judging its own candidates; write step-level DPO pairs."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from ..data import load_benchmark
    from ..fingerprint import model_identity
    from ..io import atomic_write_json, check_output_path
    from ..judges.pairwise import MODES, PairwiseStepJudge
    from ..models.loading import load_generator
    from ..pairs import build_step_pairs, write_pair_dataset
    from ..search import SearchConfig, SearchCounters, StepSearch

    if mode not in MODES:
        raise UserError(f"unknown judge mode {mode!r}; choose one of {', '.join(MODES)}")
    try:
        config = SearchConfig(
            width=width,
            temperature=temperature,
            top_p=top_p,
            max_step_tokens=max_step_tokens,
            max_rounds=max_rounds,
            few_shot=few_shot,
            record_correctness=record_correctness,
            drop_wrong=drop_wrong,
            min_margin=min_margin,
            lockstep=lockstep,
            seed=seed,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc

    check_output_path(out, kind="dir")
    out.mkdir(parents=True, exist_ok=True)
    search_path, config_path = out / "search.jsonl", out / "search_config.json"
    settings = {
        "model": model,
        "problems": problems,
        "split": split,
        "mode": mode,
        "debias": debias,
        "search": dataclasses.asdict(config),
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
    selected = load_benchmark(problems, split=split, data_dir=data_dir, limit=limit)
    if not selected:
        raise UserError(f"no problems selected from {problems} ({split})")
    generator = load_generator(model, backend=backend, batch_size=batch_size, seed=seed)
    judge = PairwiseStepJudge(generator, mode=mode, debias=debias, solve_few_shot=few_shot)
    search = StepSearch(generator, judge, config)

    start = time.perf_counter()
    with Progress(
        TextColumn("[bold]search"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("search", total=len(selected), status="")

        def on_chunk(done: int, total: int) -> None:
            bar.update(task, completed=done, status=f"pairs {search.counters.pairs}")

        def on_round(round_index: int, active: int) -> None:
            bar.update(task, status=f"round {round_index}, {active} active, pairs {search.counters.pairs}")

        results = search.run_to_jsonl(
            selected, search_path, on_chunk=on_chunk, on_round=on_round, model=model_identity(model)
        )
    wall = time.perf_counter() - start

    pairs, stats = build_step_pairs(results, min_margin=min_margin, drop_wrong=drop_wrong)
    write_pair_dataset(pairs, out / "pairs.jsonl")
    totals = SearchCounters()
    for r in results:
        totals.add(r.counters)
    c = search.counters
    summary = {
        "problems": len(results),
        "finished": sum(r.finished for r in results),
        "correct": sum(bool(r.correct) for r in results) if (record_correctness or drop_wrong) else None,
        "pairs_emitted": stats.input,
        "pairs_kept": stats.kept,
        "pair_stats": stats.to_dict(),
        "counters": c.to_dict(),
        "all_counters": totals.to_dict(),
        "judge_consistency": totals.consistency,
        "usage": dataclasses.asdict(search.usage),
        "tokens_per_pair": search.usage.total_tokens / c.pairs if c.pairs else None,
        "pairs_per_minute": 60 * c.pairs / wall if wall > 0 and c.problems else None,
        "wall_time_s": wall,
        "resumed": search.resumed,
    }
    atomic_write_json(out / "summary.json", summary)

    table = Table(title=f"step pairs: {model} on {problems}/{split}, w={width}, judge={mode}")
    table.add_column("")
    table.add_column("value", justify="right")
    for name, value in _summary_rows(summary):
        table.add_row(name, value)
    console.print(table)
    console.print(f"pairs in {out / 'pairs.jsonl'}, search results in {search_path}")


def register(app: typer.Typer) -> None:
    app.command("pairs")(pairs_command)
