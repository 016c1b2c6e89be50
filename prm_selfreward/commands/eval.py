"""``prm-sr eval BENCH [BENCH...]``: greedy (or maj@K, or step-search) accuracy with the sympy checker."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import UserError
from ..io import check_output_path


def eval_command(
    benchmarks: list[str] = typer.Argument(..., help="gsm8k, math, math500, olympiadbench, gaokao2023en, aime24, amc23"),
    model: str = typer.Option("embedded", "--model", "-m", help="Local directory, hub id, or 'embedded'."),
    limit: int | None = typer.Option(None, help="First N problems of each benchmark."),
    samples: int = typer.Option(1, help="Samples per problem (>1: maj@K and pass@K)."),
    temperature: float = typer.Option(0.7, help="Sampling temperature when --samples > 1."),
    batch_size: int = typer.Option(8, help="Sequences per forward pass (transformers backend)."),
    max_new_tokens: int = typer.Option(512, help="Generation budget per solution."),
    few_shot: int = typer.Option(0, help="Worked examples before the problem (base models need a few)."),
    search_width: int = typer.Option(0, help="Build solutions step by step with W self-judged candidates."),
    judge_mode: str = typer.Option("logprob", help="Step-judge mode for --search-width: logprob|generate|likelihood."),
    data_dir: Path | None = typer.Option(None, help="Local benchmark directory (else $PRM_SR_DATA_DIR, else the hub)."),
    output: Path = typer.Option(Path("runs/eval"), "--output", "-o", help="Output directory (re-runs resume)."),
    backend: str = typer.Option("hf", help="hf (transformers) or vllm."),
    seed: int = typer.Option(0, help="Sampling seed."),
) -> None:
    """Evaluate a model on math benchmarks; writes <bench>.jsonl and summary.json, prints a table."""
    from rich.console import Console

    from ..data import BENCHMARKS, resolve_data_dir
    from ..evaluate import EvalConfig, evaluate, summary_table
    from ..models import load_generator

    unknown = [b for b in benchmarks if b not in BENCHMARKS]
    if unknown:
        raise UserError(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if backend not in ("hf", "vllm"):
        raise UserError(f"--backend must be hf or vllm, not {backend!r}")
    check_output_path(output, kind="dir")
    config = EvalConfig(
        benchmarks=list(benchmarks),
        limit={b: limit for b in benchmarks} if limit else {},
        few_shot=few_shot,
        max_new_tokens=max_new_tokens,
        samples=samples,
        temperature=temperature,
        search_width=search_width,
        judge_mode=judge_mode,
        seed=seed,
        chunk_size=max(batch_size, 1),
    )
    console = Console()
    generator = load_generator(model, backend=backend, batch_size=batch_size, seed=seed)
    result = evaluate(generator, config, output, data_dir=resolve_data_dir(data_dir), model_name=model)
    console.print(summary_table(result))
    console.print(f"records and summary.json in {output}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
