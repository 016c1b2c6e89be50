"""Pairwise step-judge throughput and agreement: logprob vs generate (vs likelihood), batched vs one at a time.

For each mode, the same comparisons are judged twice: all in one ``compare`` call (batched, as the step
search sends them) and one ``compare`` call per comparison (the baseline). Printed per run: wall time,
comparisons per second, model calls, model tokens per comparison (prompt + generated + scored, from the
generator's ``usage``) and the speed-up of batching. Then each mode's accuracy against the labels and
the agreement between modes on the same comparisons.

Comparisons come from ``--input`` (records with question, previous_steps, step_a, step_b and a
``label`` or EFT ``verdict``), else from the held-out EFT set built by ``prm_selfreward.data.seed``
from the GSM8K training pool (``--data-dir``, default $PRM_SR_DATA_DIR or ../shared/data).

    python benchmarks/bench_judge.py --limit 16 --generate-limit 8            # the embedded model
    python benchmarks/bench_judge.py --model path/to/model --limit 100 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prm_selfreward.judges import PairwiseStepJudge, StepComparison
from prm_selfreward.judges.pairwise import MODES


@dataclass
class Run:
    mode: str
    batched: bool
    comparisons: int
    seconds: float
    calls: int
    tokens: int
    verdicts: list[int] = field(default_factory=list)
    consistent: list[bool | None] = field(default_factory=list)
    label: str = ""

    @property
    def consistency(self) -> str:
        known = [c for c in self.consistent if c is not None]
        return f"{sum(known)}/{len(known)}" if known else "-"

    @property
    def per_second(self) -> float:
        return self.comparisons / self.seconds if self.seconds > 0 else float("inf")

    @property
    def tokens_per_comparison(self) -> float:
        return self.tokens / self.comparisons if self.comparisons else 0.0


def load_records(args: argparse.Namespace) -> list[dict[str, Any]]:
    from prm_selfreward.io import JsonlErrors, read_jsonl

    if args.input:
        errors = JsonlErrors()
        rows = read_jsonl(args.input, errors, required=("question", "previous_steps", "step_a", "step_b"))
        if errors:
            print(errors.summary(args.input), file=sys.stderr)
    else:
        from prm_selfreward.data.seed import SeedConfig, build_seed_data

        data_dir = args.data_dir or (Path(__file__).resolve().parents[2] / "shared" / "data")
        with tempfile.TemporaryDirectory() as tmp:
            config = SeedConfig(ift_examples=0, eft_train_pairs=0, eft_heldout_pairs=max(args.limit, 1))
            build_seed_data(config, data_dir, tmp)
            rows = read_jsonl(Path(tmp) / "eft_heldout.jsonl")
    for row in rows:
        if "label" not in row and row.get("verdict") in (0, 1):
            row["label"] = row["verdict"]
    return rows[: args.limit]


def measure(
    generator: Any, mode: str, comparisons: list[StepComparison], batched: bool, label: str = "", **kw: Any
) -> Run:
    judge = PairwiseStepJudge(generator, mode=mode, **kw)
    before = generator.usage.snapshot()
    start = time.perf_counter()
    if batched:
        verdicts = judge.compare(comparisons)
    else:
        verdicts = [judge.compare([c])[0] for c in comparisons]
    seconds = time.perf_counter() - start
    used = generator.usage - before
    return Run(
        mode,
        batched,
        len(comparisons),
        seconds,
        used.calls,
        used.total_tokens,
        [v.verdict for v in verdicts],
        [v.extra.get("consistent") for v in verdicts],
        label or f"{mode} {'batched' if batched else 'one-at-a-time'}",
    )


class TwoRowLogprob:
    """A generator without ``next_token_logprobs``: the logprob judge then scores ``A`` and ``B`` as two
    ``score`` rows per judge prompt, the path of a backend that lacks the optional method. The baseline
    for what reading both off one forward pass saves (HFGenerator has the method)."""

    def __init__(self, generator: Any):
        self.inner = generator
        self.usage = generator.usage

    def format_prompt(self, message: str) -> str:
        return self.inner.format_prompt(message)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.generate(*args, **kwargs)

    def score(self, prompts: Any, continuations: Any) -> Any:
        return self.inner.score(prompts, continuations)


def accuracy(verdicts: list[int], labels: list[int | None]) -> str:
    pairs = [(v, y) for v, y in zip(verdicts, labels, strict=False) if y in (0, 1)]
    if not pairs:
        return "-"
    right = sum(v == y for v, y in pairs)
    failed = sum(v == -1 for v, _ in pairs)
    return f"{right / len(pairs):.1%} ({right}/{len(pairs)}, {failed} no verdict)"


def agreement(a: list[int], b: list[int]) -> str:
    n = min(len(a), len(b))
    if n == 0:
        return "-"
    same = sum(a[i] == b[i] for i in range(n))
    return f"{same / n:.1%} ({same}/{n})"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default="embedded", help="Model spec for load_generator (default: embedded)."
    )
    parser.add_argument(
        "--input", type=Path, help="Comparison records (JSON Lines); default: held-out EFT set."
    )
    parser.add_argument("--data-dir", type=Path, help="Benchmark data directory for the held-out EFT set.")
    parser.add_argument("--limit", type=int, default=16, help="Comparisons for logprob and likelihood.")
    parser.add_argument("--generate-limit", type=int, default=8, help="Comparisons for generate mode (slow).")
    parser.add_argument("--modes", default="logprob,generate,likelihood", help="Comma-separated judge modes.")
    parser.add_argument("--batch-size", type=int, default=8, help="Rows per forward pass of the backend.")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="generate mode: explanation budget.")
    parser.add_argument("--no-single", action="store_true", help="Skip the one-at-a-time baseline.")
    parser.add_argument(
        "--two-row",
        action="store_true",
        help="Also logprob with A and B as two scored rows (a backend without next_token_logprobs).",
    )
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in modes if m not in MODES]
    if bad:
        parser.error(f"unknown mode(s) {', '.join(bad)}")

    import torch
    from rich.console import Console
    from rich.table import Table

    from prm_selfreward.models import load_generator

    console = Console(width=140)
    rows = load_records(args)
    comparisons = [StepComparison(r["question"], r["previous_steps"], r["step_a"], r["step_b"]) for r in rows]
    labels = [r.get("label") for r in rows]
    t0 = time.perf_counter()
    generator = load_generator(args.model, batch_size=args.batch_size)
    load_seconds = time.perf_counter() - t0
    console.print(
        f"model {args.model} loaded in {load_seconds:.1f} s; {len(comparisons)} comparisons; "
        f"torch threads {torch.get_num_threads()}; backend batch size {args.batch_size}"
    )

    # Warm-up (first-call allocation and kernel selection), not measured.
    PairwiseStepJudge(generator, mode="likelihood").compare(comparisons[:1])
    runs: list[Run] = []
    for mode in modes:
        subset = comparisons[: args.generate_limit] if mode == "generate" else comparisons
        kw = {"max_new_tokens": args.max_new_tokens} if mode == "generate" else {}
        runs.append(measure(generator, mode, subset, batched=True, **kw))
        if not args.no_single:
            runs.append(measure(generator, mode, subset, batched=False, **kw))
        if mode == "logprob" and args.two_row:
            runs.append(
                measure(TwoRowLogprob(generator), mode, subset, batched=True, label="logprob two-row batched")
            )

    table = Table(
        title="pairwise step judge: throughput (debias on: both orders per comparison; "
        "speed-up vs the same mode one comparison per call)"
    )
    columns = ("run", "calls", "comparisons", "seconds", "comparisons/s", "tokens/comparison", "consistent")
    for col in (*columns, "speed-up"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for run in runs:
        base = next((r for r in runs if r.mode == run.mode and not r.batched), None)
        ratio = f"{run.per_second / base.per_second:.2f}x" if base else "-"
        table.add_row(
            run.label,
            str(run.calls),
            str(run.comparisons),
            f"{run.seconds:.1f}",
            f"{run.per_second:.3f}",
            f"{run.tokens_per_comparison:.0f}",
            run.consistency,
            ratio,
        )
    console.print(table)

    batched = {r.mode: r for r in runs if r.batched and r.label.endswith(f"{r.mode} batched")}
    quality = Table(title="accuracy against the labels, and agreement between modes (batched runs)")
    quality.add_column("mode")
    quality.add_column("accuracy", justify="right")
    for other in batched:
        quality.add_column(f"agrees with {other}", justify="right")
    for mode, run in batched.items():
        quality.add_row(
            mode,
            accuracy(run.verdicts, labels),
            *(agreement(run.verdicts, o.verdicts) for o in batched.values()),
        )
    console.print(quality)
    consistency = {
        mode: [
            b == s
            for b, s in zip(
                run.verdicts, next(r for r in runs if r.mode == mode and not r.batched).verdicts, strict=True
            )
        ]
        for mode, run in batched.items()
        if not args.no_single
    }
    for mode, same in consistency.items():
        console.print(f"{mode}: batched and one-at-a-time verdicts identical for {sum(same)}/{len(same)}")
    two_row = next((r for r in runs if r.label == "logprob two-row batched"), None)
    if two_row is not None and "logprob" in batched:
        same = sum(a == b for a, b in zip(two_row.verdicts, batched["logprob"].verdicts, strict=True))
        console.print(f"logprob: one-row and two-row verdicts identical for {same}/{len(two_row.verdicts)}")

    result = {
        "model": args.model,
        "load_seconds": load_seconds,
        "runs": [
            {
                "run": r.label,
                "mode": r.mode,
                "batched": r.batched,
                "comparisons": r.comparisons,
                "seconds": r.seconds,
                "calls": r.calls,
                "tokens": r.tokens,
                "comparisons_per_second": r.per_second,
                "tokens_per_comparison": r.tokens_per_comparison,
                "verdicts": r.verdicts,
                "consistent": r.consistent,
            }
            for r in runs
        ],
        "labels": labels,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
