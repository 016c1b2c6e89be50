"""The trimmed vocabulary and shared-prefix reuse, measured: full vs trimmed embedded model.

Sections (ratios are against the full model in the same run; each measurement runs in its own
subprocess so its peak memory, ``ru_maxrss``, is its own):

- ``tokenize``: on benchmarks held out of the corpus (the keep set is built without them), how often a
  text tokenizes exactly as with the full tokenizer and how many more tokens it takes; corpus-only vs
  corpus + every plain-ASCII token, with the kept vocabulary size.
- ``generate``: sampled tokens/s at batch 1 and 8 (no prefix sharing, so only the vocabulary differs).
- ``judge``: pairwise step-judge comparisons/s in logprob mode (both orders): full, trimmed, trimmed with
  shared-prefix reuse; with the verdict agreement against the full model.
- ``train``: SFT and DPO seconds per optimizer step (full fine-tune, as the CPU configs train).

    python benchmarks/bench_trim.py --size small          # a few minutes
    python benchmarks/bench_trim.py --size medium --sections generate,judge
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SIZES = {
    "small": {"gen_tokens": 24, "judge": 8, "train_steps": 2, "heldout": ["svamp"]},
    "medium": {"gen_tokens": 64, "judge": 24, "train_steps": 4, "heldout": ["svamp", "aime24", "amc23"]},
    "large": {"gen_tokens": 128, "judge": 64, "train_steps": 8, "heldout": ["svamp", "aime24", "amc23", "gaokao2023en"]},
}
PROBLEMS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
    "Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs. "
    "Her parents decided to give her $15 for that purpose, and her grandparents twice as much as her parents.",
    "Find the value of x such that 3x + 7 = 22.",
    "A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total does it take?",
    "James writes a 3-page letter to 2 different friends twice a week. How many pages does he write a year?",
    "Mark has a garden with flowers. He planted plants of three different colors in it.",
    "Albert is wondering how much pizza he can eat in one day. He buys 2 large pizzas and 2 small pizzas.",
]


def data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir or os.environ.get("PRM_SR_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")


# ------------------------------------------------------------------------------------------ workers


def work_tokenize(args: argparse.Namespace) -> dict[str, Any]:
    from tokenizers import Tokenizer

    from prm_selfreward.models.loading import resolve_model_path
    from prm_selfreward.models.trim import keep_set, package_texts, texts_from_file, trimmed_tokenizer

    full = Tokenizer.from_file(str(resolve_model_path("embedded") / "tokenizer.json"))
    root = data_dir(args)
    rows = []
    for held in SIZES[args.size]["heldout"]:
        corpus = [t for f in sorted(root.rglob("*.jsonl")) if f.parent.name != held for t in texts_from_file(f)]
        corpus += package_texts()
        heldout = [t for f in sorted((root / held).glob("*.jsonl")) for t in texts_from_file(f)]
        a = full.encode_batch(heldout, add_special_tokens=False)
        for keep_ascii in (False, True):
            start = time.perf_counter()
            kept, _ = keep_set(full, corpus, keep_ascii=keep_ascii)
            trim = trimmed_tokenizer(full, kept)
            b = trim.encode_batch(heldout, add_special_tokens=False)
            rows.append({
                "heldout": held, "keep": "corpus+ascii" if keep_ascii else "corpus", "kept": len(kept),
                "texts": len(heldout),
                "identical_texts": sum(x.tokens == y.tokens for x, y in zip(a, b, strict=True)) / len(heldout),
                "token_ratio": sum(len(y.ids) for y in b) / sum(len(x.ids) for x in a),
                "lossless": all(trim.decode(y.ids) == t for y, t in zip(b, heldout, strict=True)),
                "build_s": round(time.perf_counter() - start, 1),
            })
    return {"rows": rows}


def work_generate(args: argparse.Namespace) -> dict[str, Any]:
    from prm_selfreward.models import GenerationParams, HFGenerator
    from prm_selfreward.prompts import solve_message

    gen = HFGenerator(args.model, batch_size=8, seed=0, share_prefix=False)
    params = GenerationParams(max_new_tokens=SIZES[args.size]["gen_tokens"], temperature=1.0, top_p=1.0)
    prompts = [solve_message(p) for p in PROBLEMS]
    out = {}
    for batch in (1, 8):
        gen.batch_size = batch
        gen.generate(prompts[:1], params=GenerationParams(max_new_tokens=2))  # warm-up
        before = gen.usage.generated_tokens
        start = time.perf_counter()
        gen.generate(prompts[:batch], params=params)
        out[f"tok_s_b{batch}"] = (gen.usage.generated_tokens - before) / (time.perf_counter() - start)
    return out


def judge_comparisons(args: argparse.Namespace, n: int) -> list[Any]:
    from prm_selfreward.data.seed import SeedConfig, build_seed_data
    from prm_selfreward.io import read_jsonl
    from prm_selfreward.judges.base import StepComparison

    with tempfile.TemporaryDirectory() as tmp:
        build_seed_data(SeedConfig(ift_examples=0, eft_train_pairs=0, eft_heldout_pairs=n), data_dir(args), tmp)
        rows = read_jsonl(Path(tmp) / "eft_heldout.jsonl")
    return [StepComparison(r["question"], r["previous_steps"], r["step_a"], r["step_b"]) for r in rows[:n]]


def work_judge(args: argparse.Namespace) -> dict[str, Any]:
    from prm_selfreward.judges.pairwise import PairwiseStepJudge
    from prm_selfreward.models import HFGenerator

    comparisons = judge_comparisons(args, SIZES[args.size]["judge"])
    # The search judges every ordered pair of one step's w candidates: comparisons of one question
    # and prefix; repeat each comparison's context with the other candidates to form such rounds.
    rounds = []
    for c in comparisons:
        steps = [c.step_a, c.step_b]
        rounds += [type(c)(c.question, c.previous_steps, a, b) for a in steps for b in steps if a != b]
    gen = HFGenerator(args.model, batch_size=8, share_prefix=args.share_prefix)
    judge = PairwiseStepJudge(gen, mode="logprob")
    judge.compare(rounds[:1])  # warm-up
    start = time.perf_counter()
    verdicts = judge.compare(rounds)
    seconds = time.perf_counter() - start
    return {"comparisons": len(rounds), "per_s": len(rounds) / seconds, "verdicts": [v.verdict for v in verdicts],
            "reused_prefix_tokens": gen.reused_prefix_tokens, "prompt_tokens": gen.usage.prompt_tokens}


def work_train(args: argparse.Namespace) -> dict[str, Any]:
    from prm_selfreward.data.seed import SeedConfig, build_seed_data
    from prm_selfreward.io import read_jsonl
    from prm_selfreward.train.config import DPOTrainConfig, SFTTrainConfig
    from prm_selfreward.train.dpo import build_step_dpo_trainer
    from prm_selfreward.train.sft import build_sft_trainer

    steps = SIZES[args.size]["train_steps"]
    common = {"device": "cpu", "batch_size": 4, "per_device_batch_size": 4, "max_steps": steps,
              "learning_rate": 1e-5, "max_length": 512, "freeze_embeddings": True}  # as the CPU configs train
    with tempfile.TemporaryDirectory() as tmp:
        build_seed_data(SeedConfig(ift_examples=4 * steps, eft_train_pairs=0, eft_heldout_pairs=0), data_dir(args), tmp)
        records = [{"prompt": r["prompt"], "completion": r["completion"]} for r in read_jsonl(Path(tmp) / "ift.jsonl")]
        trainer = build_sft_trainer(args.model, records, SFTTrainConfig(**common), Path(tmp) / "sft")[0]
        start = time.perf_counter()
        trainer.train()
        sft = (time.perf_counter() - start) / steps
        del trainer
        pairs = [{"prompt": r["prompt"] + "Step 1:", "chosen": " " + r["completion"].split("\n")[0],
                  "rejected": " The answer is \\boxed{0}.", "is_final_step": False} for r in records]
        trainer = build_step_dpo_trainer(args.model, pairs, DPOTrainConfig(**common, precompute_ref_log_probs=False),
                                         Path(tmp) / "dpo")[0]
        start = time.perf_counter()
        trainer.train()
        dpo = (time.perf_counter() - start) / steps
    return {"sft_s_step": sft, "dpo_s_step": dpo}


WORKERS = {"tokenize": work_tokenize, "generate": work_generate, "judge": work_judge, "train": work_train}


def run_worker(args: argparse.Namespace, section: str, model: str, share_prefix: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", section, "--model", model, "--size", args.size]
    if share_prefix:
        cmd.append("--share-prefix")
    if args.data_dir:
        cmd += ["--data-dir", str(args.data_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=list(SIZES), default="small")
    parser.add_argument("--sections", default="tokenize,generate,judge,train")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--repeat", type=int, default=1, help="generate: interleaved runs per model, best kept.")
    parser.add_argument("--ascii-model", type=Path, help="generate: also a corpus+ASCII trimmed model "
                        "(prm-sr trim-vocab embedded --keep-ascii --out DIR).")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="embedded", help=argparse.SUPPRESS)
    parser.add_argument("--share-prefix", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        import torch

        torch.set_num_threads(int(os.environ.get("PRM_SR_THREADS", "2")))
        result = WORKERS[args.worker](args)
        result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return result

    from prm_selfreward.models.loading import resolve_model_path
    from prm_selfreward.models.trim import trimmed_model_dir

    full = str(resolve_model_path("embedded"))
    trimmed = str(trimmed_model_dir("embedded", data_dir=data_dir(args)))
    sections = args.sections.split(",")
    results: dict[str, Any] = {"size": args.size}
    if "tokenize" in sections:
        results["tokenize"] = run_worker(args, "tokenize", full)
        print("held-out tokenization (keep set built without the held-out benchmark)")
        for r in results["tokenize"]["rows"]:
            print(f"  {r['heldout']:<14} {r['keep']:<13} kept {r['kept']:>7,}  identical texts {r['identical_texts']:6.1%}"
                  f"  tokens x{r['token_ratio']:.4f}  lossless {r['lossless']}  ({r['build_s']} s)")
    if "generate" in sections:
        models = {"full": full, "trimmed": trimmed, **({"trimmed+ascii": str(args.ascii_model)} if args.ascii_model else {})}
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in models}
        for _ in range(args.repeat):  # interleaved, best of N: a shared machine slows runs unevenly
            for name, path in models.items():
                runs[name].append(run_worker(args, "generate", path))
        best = {name: {k: max(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
        results["generate"] = best
        for name, r in best.items():
            print(f"generate {name:<14} batch 1 {r['tok_s_b1']:6.1f} tok/s x{r['tok_s_b1'] / best['full']['tok_s_b1']:.2f}"
                  f"   batch 8 {r['tok_s_b8']:6.1f} tok/s x{r['tok_s_b8'] / best['full']['tok_s_b8']:.2f}"
                  f"   peak MiB {r['peak_mib']:.0f}")
    if "judge" in sections:
        runs = {"full": run_worker(args, "judge", full), "trimmed": run_worker(args, "judge", trimmed),
                "trimmed+prefix": run_worker(args, "judge", trimmed, share_prefix=True)}
        results["judge"] = runs
        base = runs["full"]
        for name, r in runs.items():
            agree = sum(x == y for x, y in zip(r["verdicts"], base["verdicts"], strict=True)) / len(base["verdicts"])
            print(f"judge logprob {name:<15} {r['per_s']:.2f} comparisons/s x{r['per_s'] / base['per_s']:.2f}"
                  f"  agreement with full {agree:.0%}  reused prefix tokens {r['reused_prefix_tokens']}"
                  f"/{r['prompt_tokens']}  peak MiB {r['peak_mib']:.0f}")
    if "train" in sections:
        a, b = run_worker(args, "train", full), run_worker(args, "train", trimmed)
        results["train"] = {"full": a, "trimmed": b}
        for k in ("sft_s_step", "dpo_s_step"):
            print(f"{k}: full {a[k]:.2f} s, trimmed {b[k]:.2f} s, x{a[k] / b[k]:.2f}")
        print(f"  peak MiB: full {a['peak_mib']:.0f}, trimmed {b['peak_mib']:.0f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
