"""Wall time per stage of one step-DPO iteration, and how it grows with problems per iteration.

Runs the loop's own stage functions (sample problems -> step search -> pairs -> step-DPO, optionally
the evaluation of the new model) for N, 2N and 4N training problems, each in a fresh run directory,
with the base model standing in for M(t-1) (the SFT stage is not part of an iteration). Prints a
table of seconds per stage with the ratio to the 1x run measured in the same invocation.

    python benchmarks/bench_iteration.py --data-dir ../shared/data              # embedded, N = 2
    python benchmarks/bench_iteration.py --model /path/to/model --problems 4 --scales 1 2
    python benchmarks/bench_iteration.py --quick                                 # N = 1, scales 1 2
    python benchmarks/bench_iteration.py --quick --trim-vocab off                # the full vocabulary
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import prm_selfreward.loop as loop
import prm_selfreward.stages.run as S

STAGES = ("problems", "search", "pairs", "train", "eval")


def one_iteration(config: loop.RunConfig, run_dir: Path, with_eval: bool) -> dict[str, float]:
    run = loop.RunContext(run_dir, config, log=lambda msg: None)
    # M1 is the base model here: mark the SFT stage as standing aside, as the loop does for an
    # iteration without pairs, so model_spec(1) resolves to the base model.
    run.manifest.stages[loop.train_stage_name(1)] = {
        "status": "done", "result": {"skipped": "benchmark: base model as M1", "model": run.base_model_spec()}}
    run.manifest.save()
    times: dict[str, float] = {}
    steps = [
        ("problems", lambda: S.sample_problems(run, 2)),
        ("search", lambda: S.search_steps(run, 2)),
        ("pairs", lambda: S.build_pairs(run, 2)),
        ("train", lambda: S.train_dpo(run, 2)),
    ]
    if with_eval:
        steps.append(("eval", lambda: S.evaluate_model(run, 2)))
    results = {}
    for name, fn in steps:
        start = time.perf_counter()
        results[name] = fn()
        times[name] = time.perf_counter() - start
    run.release()
    times["pairs_made"] = float(results["pairs"]["pairs"])
    times["generated_tokens"] = float(results["search"].get("generated_tokens", 0))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(loop.default_config_path()), help="Run config (default: CPU default).")
    parser.add_argument("--model", default=None, help="Model (default: the config's, i.e. embedded).")
    parser.add_argument("--data-dir", default=os.environ.get("PRM_SR_DATA_DIR"), help="Benchmark directory.")
    parser.add_argument("--problems", type=int, default=2, help="N: training problems of the 1x run.")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 2, 4], help="Multiples of N to run.")
    parser.add_argument("--with-eval", action="store_true", help="Also time the evaluation of M(t).")
    parser.add_argument("--quick", action="store_true", help="N = 1, scales 1 2, tiny eval.")
    parser.add_argument("--json", default=None, help="Also write the numbers here.")
    parser.add_argument("--trim-vocab", choices=["config", "on", "off"], default="config",
                        help="model.trim_vocab: as the config says (on in the CPU configs), or forced on/off.")
    args = parser.parse_args()
    if args.quick:
        args.problems, args.scales = 1, [1, 2]

    overrides: dict = {"data_dir": args.data_dir}
    if args.model:
        overrides["model"] = {"name": args.model}
    if args.trim_vocab != "config":
        overrides.setdefault("model", {})["trim_vocab"] = args.trim_vocab == "on"
    rows = {}
    for scale in args.scales:
        overrides["problems_per_iteration"] = [args.problems * scale]
        config = loop.load_run_config(args.config, overrides)
        with tempfile.TemporaryDirectory(prefix=f"bench-iter-{scale}x-") as tmp:
            rows[scale] = one_iteration(config, Path(tmp), args.with_eval)
        Console().print(f"{scale}x ({args.problems * scale} problems): {json.dumps(rows[scale])}")

    base = rows[args.scales[0]]
    table = Table(title=f"One step-DPO iteration, {config.model.name}, N = {args.problems} problems")
    table.add_column("stage")
    for scale in args.scales:
        table.add_column(f"{scale}x: s (ratio)", justify="right")
    shown = [s for s in STAGES if s in base] + ["total"]
    for row in rows.values():
        row["total"] = sum(row[s] for s in STAGES if s in row)
    for stage in shown + ["pairs_made", "generated_tokens"]:
        cells = []
        for scale in args.scales:
            value, ref = rows[scale][stage], base[stage]
            ratio = f" ({value / ref:.2f}x)" if ref else ""
            cells.append(f"{value:.0f}{ratio}" if stage in shown else f"{value:.0f}")
        table.add_row(stage, *cells)
    Console().print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({str(k): v for k, v in rows.items()}, indent=2))


if __name__ == "__main__":
    main()
