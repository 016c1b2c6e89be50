"""Step search throughput: our lockstep search vs a straightforward baseline, same model, same settings.

Measures step pairs produced per minute and model tokens processed per pair on N GSM8K problems.

- **ours**: :class:`prm_selfreward.search.StepSearch`: all problems in lockstep; per round one batched
  ``generate`` call (every active problem, ``n=w``) and one batched ``judge.compare`` call (every
  ordered pair of every active problem).
- **baseline** (written here, as one would write the paper's loop first): one problem at a time; per
  step one ``generate`` call per candidate and one judge call per ordered pair; no lockstep, no
  batching across candidates or comparisons, no prefix reuse.

Pairs per minute and tokens per pair are the headline figures; per problem-round figures (one round =
``w`` sampled candidates and their ``w(w-1)`` judgments) compare the same unit of work even when a
model yields no pairs (a position-biased judge ties every round). Both use the same scoring rule (wins over ordered pairs, argmax/argmin, all-tie roll-back) and the
same judge (``PairwiseStepJudge``, ``debias=False``: each ordered pair judged once, as in the paper).
The two searches sample differently (batching changes the random stream), so their trajectories and
pair counts differ; the per-pair figures normalise that.

    python benchmarks/bench_search.py --quick                    # embedded model, 2 problems, w=3
    python benchmarks/bench_search.py --model /path/to/tiny --quick
    python benchmarks/bench_search.py -n 8 --width 6             # the paper's width
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from prm_selfreward.judges.base import StepComparison
from prm_selfreward.judges.pairwise import PairwiseStepJudge
from prm_selfreward.models.base import GenerationParams, Generator, TokenUsage
from prm_selfreward.prompts import SOLUTION_STOP, solve_prompt
from prm_selfreward.records import Problem
from prm_selfreward.search import SearchConfig, StepSearch, clean_body, ends_solution, step_prompt


@dataclass
class Measure:
    name: str
    wall_s: float
    pairs: int
    usage: TokenUsage
    rounds: int

    @property
    def pairs_per_min(self) -> float:
        return 60 * self.pairs / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def tokens_per_pair(self) -> float | None:
        return self.usage.total_tokens / self.pairs if self.pairs else None

    @property
    def seconds_per_round(self) -> float:
        return self.wall_s / self.rounds if self.rounds else 0.0


def baseline_search(
    generator: Generator, judge: PairwiseStepJudge, problem: Problem, cfg: SearchConfig
) -> tuple[int, int]:
    """The paper's loop for one problem, written plainly; returns (pairs kept, rounds run)."""
    base = solve_prompt(generator, problem.question, cfg.few_shot)
    steps: list[str] = []
    pair_steps: list[int] = []  # step index of each kept pair
    retries = 0
    rounds = 0
    for round_index in range(cfg.max_rounds):
        rounds += 1
        prompt = step_prompt(base, steps)
        stop = [f"\nStep {len(steps) + 2}:", f"Step {len(steps) + 2}:", *SOLUTION_STOP]
        candidates = []
        for k in range(cfg.width):  # one call per candidate
            seed = None if cfg.seed is None else cfg.seed * 1_000_003 + round_index * 101 + k
            params = GenerationParams(cfg.max_step_tokens, cfg.temperature, cfg.top_p, stop, seed)
            completion = generator.generate([prompt], n=1, params=params)[0][0]
            body = clean_body(completion.text)
            candidates.append((body, ends_solution(completion, body)))
        scores = [0] * cfg.width
        for i in range(cfg.width):  # one call per ordered pair
            for j in range(cfg.width):
                if i == j:
                    continue
                comparison = StepComparison(problem.question, list(steps), candidates[i][0], candidates[j][0])
                verdict = judge.compare([comparison])[0].verdict
                if verdict == 0:
                    scores[i] += 1
                elif verdict == 1:
                    scores[j] += 1
        if len(set(scores)) == 1 and retries < cfg.max_rollbacks:
            retries += 1
            if steps:
                pair_steps = [s for s in pair_steps if s != len(steps)]
                steps.pop()
            continue
        best = scores.index(max(scores))
        if len(set(scores)) > 1:
            pair_steps.append(len(steps) + 1)
        steps.append(candidates[best][0])
        if candidates[best][1] or not candidates[best][0]:
            break
    return len(pair_steps), rounds


def measure(name: str, generator: Generator, fn) -> tuple[Measure, object]:
    before = generator.usage.snapshot()
    start = time.perf_counter()
    pairs, rounds, extra = fn()
    wall = time.perf_counter() - start
    return Measure(name, wall, pairs, generator.usage - before, rounds), extra


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded", help="Model spec (embedded, a directory, a hub id).")
    parser.add_argument("-n", "--problems", type=int, default=4, help="GSM8K problems.")
    parser.add_argument("--width", type=int, default=4)
    parser.add_argument("--max-rounds", type=int, default=4)
    parser.add_argument("--max-step-tokens", type=int, default=48)
    parser.add_argument("--mode", default="logprob", choices=["logprob", "generate", "likelihood"])
    parser.add_argument("--few-shot", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16, help="HF rows per forward pass.")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--split", default="train")
    parser.add_argument("--quick", action="store_true", help="2 problems, w=3, 2 rounds, 24-token steps.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.problems, args.width, args.max_rounds, args.max_step_tokens = 2, 3, 2, 24

    from rich.console import Console
    from rich.table import Table

    from prm_selfreward.data import load_benchmark
    from prm_selfreward.models import load_generator

    console = Console()
    problems = load_benchmark("gsm8k", split=args.split, data_dir=args.data_dir, limit=args.problems)
    generator = load_generator(args.model, batch_size=args.batch_size, seed=args.seed)
    cfg = SearchConfig(
        width=args.width,
        max_rounds=args.max_rounds,
        max_step_tokens=args.max_step_tokens,
        few_shot=args.few_shot,
        lockstep=len(problems),
        seed=args.seed,
        keep_trace=False,
    )
    judge = PairwiseStepJudge(generator, mode=args.mode, debias=False, solve_few_shot=args.few_shot)
    generator.generate(["warm-up"], n=1, params=GenerationParams(max_new_tokens=2))

    def run_ours():
        search = StepSearch(generator, judge, cfg)
        results = search.run(problems)
        return sum(len(r.pairs) for r in results), search.counters.rounds, search

    def run_baseline():
        done = [baseline_search(generator, judge, p, cfg) for p in problems]
        return sum(d[0] for d in done), sum(d[1] for d in done), None

    ours, search = measure("ours (lockstep, batched)", generator, run_ours)
    base, _ = measure("baseline (per candidate / per pair)", generator, run_baseline)

    def fmt(x: float | None, spec: str = "{:.1f}") -> str:
        return "n/a" if x is None else spec.format(x)

    def ratio(a: float | None, b: float | None) -> str:
        return "n/a" if not a or not b else f"{a / b:.2f}x"

    table = Table(
        title=f"step search: {args.model}, {len(problems)} GSM8K problems, w={args.width}, "
        f"judge={args.mode}, rounds<={args.max_rounds}, step<={args.max_step_tokens} tok"
    )
    for col in ("metric", "ours", "baseline", "ours / baseline"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    rows = [
        ("wall time (s)", ours.wall_s, base.wall_s, "{:.1f}"),
        ("pairs", ours.pairs, base.pairs, "{:.0f}"),
        ("pairs per minute", ours.pairs_per_min, base.pairs_per_min, "{:.2f}"),
        ("model calls", ours.usage.calls, base.usage.calls, "{:.0f}"),
        ("tokens processed", ours.usage.total_tokens, base.usage.total_tokens, "{:.0f}"),
        ("tokens per pair", ours.tokens_per_pair, base.tokens_per_pair, "{:.0f}"),
        ("problem-rounds", ours.rounds, base.rounds, "{:.0f}"),
        ("seconds per problem-round", ours.seconds_per_round, base.seconds_per_round, "{:.1f}"),
        (
            "tokens per problem-round",
            ours.usage.total_tokens / max(ours.rounds, 1),
            base.usage.total_tokens / max(base.rounds, 1),
            "{:.0f}",
        ),
        (
            "model calls per pair",
            ours.usage.calls / ours.pairs if ours.pairs else None,
            base.usage.calls / base.pairs if base.pairs else None,
            "{:.1f}",
        ),
    ]
    for name, a, b, spec in rows:
        table.add_row(name, fmt(a, spec), fmt(b, spec), ratio(a, b))
    console.print(table)
    c = search.counters
    console.print(
        f"ours: {c.rounds} problem-rounds in {search.lockstep_rounds} lockstep rounds, ties {c.ties}, "
        f"roll-backs {c.rollbacks}, judge consistency "
        f"{'n/a' if c.consistency is None else f'{100 * c.consistency:.0f}%'}"
    )


if __name__ == "__main__":
    main()
