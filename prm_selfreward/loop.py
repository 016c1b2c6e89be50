"""The iteration: M0 -> M1 (SFT on IFT + EFT seeds) -> M2 -> M3 ... (DPO on the model's own pairs).

Reads like DESIGN.md section 1, one stage per call; the details are one level down.

    M0 = base model                                   evaluate(M0)
    seed = IFT + EFT from problems with known answers
    M1 = SFT(M0, seed)                                evaluate(M1)
    for t = 2 .. iterations + 1:
        problems = sample training problems (never evaluation problems)
        pairs    = step search with M(t-1) as generator and judge      (task "math")
                   or self-instruct + 5-point self-scores              (task "instruct")
        M(t)     = DPO(M(t-1), pairs)                 evaluate(M(t))
        report

Every stage goes through :class:`~prm_selfreward.runs.Manifest`, so ``--resume`` skips finished stages
and restarts an interrupted one cleanly.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError, from_dict, load_yaml, merge, option, to_dict
from .data.seed import SeedConfig
from .data.seed_instruct import InstructSeedConfig
from .errors import UserError
from .evaluate import EvalConfig, environment_versions, evaluate
from .instruct import InstructIterationConfig
from .io import read_jsonl, write_jsonl
from .records import Problem
from .runs import Manifest
from .search import SearchConfig
from .train.config import DPOTrainConfig, SFTTrainConfig

TASKS = ("math", "instruct")


@dataclass
class ModelConfig:
    name: str = option("embedded", help="Base model M0: a local directory, a hub id, or 'embedded'.")
    backend: str = option("hf", help="Generation backend: hf (transformers) or vllm.")
    batch_size: int = option(8, help="Sequences per forward pass (transformers backend).")
    dtype: str = option("float32", help="float32 on CPU; bfloat16 on GPU.")
    device: str = option("cpu", help="cpu, cuda, or auto.")
    tensor_parallel_size: int = option(1, help="vLLM tensor parallelism.")
    trim_vocab: bool = option(
        False,
        help="Start from a vocabulary-trimmed copy of the base model (prm-sr trim-vocab; corpus: the data "
        "directory and the package's prompts), cached beside the model. Same tokens for all known text, a "
        "much smaller output layer: faster on CPU.",
    )


@dataclass
class JudgeConfig:
    mode: str = option("logprob", help="Pairwise step judge mode: logprob | generate | likelihood.")
    debias: bool = option(True, help="Judge both orders and combine (position debiasing).")
    heldout_limit: int = option(100, help="Held-out EFT pairs scored per model (step-judge accuracy); 0 = all.")


@dataclass
class RunConfig:
    task: str = option("math", help="math (process-based, step-DPO) or instruct (instruction-level).")
    model: ModelConfig = option(default_factory=ModelConfig, help="The base model and how to run it.")
    iterations: int = option(2, help="DPO iterations after M1 (2 gives M2 and M3).")
    problems_per_iteration: list[int] = option(
        [8, 12], help="Training problems searched per DPO iteration; the last value repeats."
    )
    train_sources: list[str] = option(["gsm8k"], help="Training pools: gsm8k (train split), math (MATH minus MATH-500).")
    data_dir: str | None = option(None, help="Local benchmark directory (else $PRM_SR_DATA_DIR, else the hub).")
    seed: int = option(
        0, help="Seed for sampling training problems and for the generators; each stage has its own seed too."
    )
    seed_data: SeedConfig = option(default_factory=SeedConfig, help="IFT/EFT seed data (task math).")
    instruct_seed: InstructSeedConfig = option(
        default_factory=InstructSeedConfig, help="IFT + 5-point judge EFT seed data (task instruct)."
    )
    sft: SFTTrainConfig = option(default_factory=SFTTrainConfig, help="SFT of M0 into M1.")
    dpo: DPOTrainConfig = option(default_factory=DPOTrainConfig, help="DPO of M(t) into M(t+1).")
    search: SearchConfig = option(default_factory=SearchConfig, help="Step search (task math).")
    judge: JudgeConfig = option(default_factory=JudgeConfig, help="Pairwise step judge.")
    instruct: InstructIterationConfig = option(
        default_factory=InstructIterationConfig, help="Self-instruct and 5-point judging (task instruct)."
    )
    eval: EvalConfig = option(default_factory=EvalConfig, help="Benchmarks evaluated after every model.")
    train_launcher: str | None = option(
        None,
        help="Run each training stage as a subprocess under this launcher, e.g. 'accelerate launch "
        "--config_file configs/accelerate/deepspeed_zero3.yaml' (multi-GPU); none: train in this process.",
    )

    def problems_for(self, t: int) -> int:
        """Problems searched to train M(t), t >= 2."""
        sizes = self.problems_per_iteration or [0]
        return sizes[min(t - 2, len(sizes) - 1)]


CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def default_config_path(smoke: bool = False) -> Path:
    """The embedded-model CPU config in the repository's ``configs/`` (an editable install, as the
    README's quick start makes; other installs pass ``--config``)."""
    return CONFIG_DIR / ("cpu-smoke.yaml" if smoke else "cpu-default.yaml")


def load_run_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    data = load_yaml(path) if path else {}
    if overrides:
        data = merge(data, overrides)
    config = from_dict(RunConfig, data)
    if config.task not in TASKS:
        raise ConfigError(f"task: {config.task!r} is not one of {', '.join(TASKS)}")
    return config


# --------------------------------------------------------------------------------------------- helpers


def train_stage_name(t: int) -> str:
    """The manifest name of the stage that makes M(t)."""
    return "train/M1 (SFT)" if t == 1 else f"train/M{t} (DPO)"


class Run:
    """State shared by the stages of one run: directory, config, manifest, console, current generator."""

    def __init__(self, run_dir: Path, config: RunConfig, log: Callable[[str], None]):
        self.dir = run_dir
        self.config = config
        self.manifest = Manifest.load(run_dir)
        self.log = log
        self._generator: Any = None
        self._generator_spec: str | None = None
        self._base_spec: str | None = None

    def iter_dir(self, t: int) -> Path:
        path = self.dir / f"iter_{t}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def model_spec(self, t: int) -> str:
        """Where M(t) lives: the base model, a trained directory, or M(t-1)'s when training was skipped."""
        if t == 0:
            return self.base_model_spec()
        result = self.manifest.result(train_stage_name(t))
        if isinstance(result, dict) and result.get("skipped"):
            return str(result["model"])
        return str(self.dir / f"iter_{t}" / "model")

    def base_model_spec(self) -> str:
        """M0: the configured model, or its vocabulary-trimmed copy (made once, cached) with ``trim_vocab``."""
        if self._base_spec is None:
            m = self.config.model
            if m.trim_vocab:
                from .models.embedded import trimmed_model_dir

                self._base_spec = str(trimmed_model_dir(m.name, data_dir=self.config.data_dir))
            else:
                self._base_spec = m.name
        return self._base_spec

    def generator(self, t: int):
        """The generator for M(t), loaded once and kept while consecutive stages use the same model."""
        from .models import load_generator

        spec = self.model_spec(t)
        if self._generator_spec != spec:
            self.release()
            m = self.config.model
            self._generator = load_generator(
                spec, backend=m.backend, batch_size=m.batch_size, dtype=m.dtype, device=m.device,
                seed=self.config.seed, tensor_parallel_size=m.tensor_parallel_size,
            )
            self._generator_spec = spec
        return self._generator

    def release(self) -> None:
        """Free the generator before training (the trainer loads its own copy)."""
        if self._generator is not None and hasattr(self._generator, "close"):
            self._generator.close()
        self._generator = None
        self._generator_spec = None
        gc.collect()

    def stage(self, name: str, fn: Callable[[], Any]) -> Any:
        return self.manifest.run(name, fn, self.log)


# ---------------------------------------------------------------------------------------------- stages


def evaluate_model(run: Run, t: int) -> dict[str, Any]:
    """Accuracy of M(t) on the configured benchmarks (resumes per problem)."""
    result = evaluate(
        run.generator(t), run.config.eval, run.iter_dir(t) / "eval",
        data_dir=run.config.data_dir, model_name=f"M{t}",
    )
    return {name: {k: s[k] for k in ("accuracy", "ci_low", "ci_high", "total", "avg_steps", "avg_tokens")}
            for name, s in result["benchmarks"].items()}


def evaluate_judge(run: Run, t: int) -> dict[str, Any]:
    """Step-judge accuracy of M(t) on the held-out EFT pairs (the paper's Table 3)."""
    if run.config.task == "instruct":
        from .data.seed_instruct import load_heldout
        from .judges.pointwise import PointwiseJudge, judge_agreement

        heldout = load_heldout(run.dir / "seed")
        limit = run.config.judge.heldout_limit
        heldout = heldout[:limit] if limit else heldout
        judge = PointwiseJudge.from_config(run.generator(t), run.config.instruct.judge)
        return judge_agreement(judge, heldout).to_dict()

    from .judges.base import StepComparison
    from .judges.pairwise import PairwiseStepJudge

    rows = read_jsonl(run.dir / "seed" / "eft_heldout.jsonl")
    limit = run.config.judge.heldout_limit
    rows = rows[:limit] if limit else rows
    judge = PairwiseStepJudge(run.generator(t), mode=run.config.judge.mode, debias=run.config.judge.debias)
    comparisons = [StepComparison(r["question"], r["previous_steps"], r["step_a"], r["step_b"]) for r in rows]
    verdicts = judge.compare(comparisons)
    out = []
    for row, v in zip(rows, verdicts, strict=True):
        out.append({**row, "predicted": v.verdict, "probability": v.probability,
                    "consistent": v.extra.get("consistent")})
    write_jsonl(run.iter_dir(t) / "judge_eval.jsonl", out)
    n = len(out)
    correct = sum(r["predicted"] == r["verdict"] for r in out)
    failures = sum(r["predicted"] == -1 for r in out)
    consistent = [r["consistent"] for r in out if r["consistent"] is not None]
    from .evaluate import wilson_interval

    low, high = wilson_interval(correct, n)
    return {"accuracy": correct / n if n else 0.0, "ci_low": low, "ci_high": high, "total": n,
            "failures": failures, "consistency": sum(consistent) / len(consistent) if consistent else None}


def build_seed(run: Run) -> dict[str, Any]:
    from .data.seed import build_seed_data

    if run.config.task == "instruct":
        from .data.seed_instruct import build_instruct_seed

        summary = build_instruct_seed(
            run.config.instruct_seed, run.config.data_dir, run.dir / "seed", exclude=evaluation_problems(run)
        )
        ift = build_seed_data(run.config.seed_data, run.config.data_dir, run.dir / "seed")
        return {"judge_eft": summary, "ift": _seed_result(ift)}

    return _seed_result(build_seed_data(run.config.seed_data, run.config.data_dir, run.dir / "seed"))


def _seed_result(summary: Any) -> dict[str, Any]:
    """The seed summary for the manifest, without the long id list (it stays in seed/summary.json)."""
    return {k: v for k, v in to_dict(summary).items() if k != "heldout_problem_ids"}


def sft_records(run: Run) -> list[dict[str, Any]]:
    """IFT solutions plus the task's judge EFT records, as prompt/completion rows."""
    seed_dir = run.dir / "seed"
    ift = [{"prompt": r["prompt"], "completion": r["completion"]} for r in read_jsonl(seed_dir / "ift.jsonl")]
    if run.config.task == "instruct":
        from .data.seed_instruct import sft_records as instruct_sft_records

        return ift + instruct_sft_records(seed_dir)
    from .data.seed import eft_to_sft

    return ift + eft_to_sft(read_jsonl(seed_dir / "eft_train.jsonl"))


def training_command(
    launcher: str, stage: str, model: str, data: Path, out: Path, config_file: Path
) -> list[str]:
    """The subprocess that trains one stage under a multi-process launcher (``train_launcher``)."""
    import shlex

    return [*shlex.split(launcher), "-m", "prm_selfreward.train", stage,
            "--model", model, "--data", str(data), "--out", str(out), "--config", str(config_file)]


def train_stage(run: Run, stage: str, model: str, rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Train M(t) from ``model`` on ``rows`` (SFT records or DPO pairs) into ``out``.

    A model directory already marked complete is kept (a kill after the save but before the manifest
    update). With ``train_launcher`` the stage runs as ``python -m prm_selfreward.train`` under the
    launcher (all GPUs train; generation stays in this process); otherwise in this process.
    """
    from .train import is_trained_model, read_train_result

    if is_trained_model(out):
        return read_train_result(out).to_dict()
    run.release()
    config = run.config.sft if stage == "sft" else run.config.dpo
    if run.config.train_launcher:
        import subprocess

        from .io import atomic_write_text

        data = out.parent / f"{stage}_data.jsonl"
        config_file = out.parent / f"{stage}_config.yaml"
        write_jsonl(data, rows)
        atomic_write_text(config_file, yaml.safe_dump(to_dict(config), sort_keys=False))
        cmd = training_command(run.config.train_launcher, stage, model, data, out, config_file)
        run.log(f"[dim]$ {' '.join(cmd)}[/]")
        if subprocess.run(cmd, check=False).returncode != 0:
            raise UserError(f"training stage {stage} failed under the launcher: {' '.join(cmd)}")
        return read_train_result(out).to_dict()
    if stage == "sft":
        from .train import train_sft

        return train_sft(model, rows, out, config).to_dict()
    from .train import train_step_dpo

    return train_step_dpo(model, rows, out, config).to_dict()


def train_m1(run: Run) -> dict[str, Any]:
    return train_stage(run, "sft", run.model_spec(0), sft_records(run), run.dir / "iter_1" / "model")


def sample_problems(run: Run, t: int) -> dict[str, Any]:
    """Training problems for iteration t: from the training pools, never an evaluation problem,
    never one used by an earlier iteration."""
    from .data import training_problems

    pool = training_problems(run.config.train_sources, run.config.data_dir, exclude=evaluation_problems(run))
    used = set()
    for s in range(2, t):
        path = run.dir / f"iter_{s}" / "problems.jsonl"
        if path.exists():
            used |= {r["id"] for r in read_jsonl(path)}
    # The held-out judge problems stay unseen by training, as the seed builder kept them.
    seed_summary = run.dir / "seed" / "summary.json"
    if seed_summary.exists():
        import json

        used |= set(json.loads(seed_summary.read_text(encoding="utf-8")).get("heldout_problem_ids", []))
    pool = [p for p in pool if p.id not in used]
    n = min(run.config.problems_for(t), len(pool))
    chosen = random.Random(run.config.seed * 1000 + t).sample(pool, n)
    write_jsonl(run.iter_dir(t) / "problems.jsonl", [p.to_dict() for p in chosen])
    return {"problems": n}


def evaluation_problems(run: Run) -> list[Problem]:
    """Every problem the run evaluates on: training data must never contain one."""
    from .evaluate import select_problems

    return [p for name in run.config.eval.benchmarks for p in select_problems(name, run.config.eval, run.config.data_dir)]


def load_problems(run: Run, t: int) -> list[Problem]:
    return [Problem.from_dict(r) for r in read_jsonl(run.dir / f"iter_{t}" / "problems.jsonl")]


def search_steps(run: Run, t: int) -> dict[str, Any]:
    """Step search with M(t-1) as generator and judge; results appended per chunk (resumable)."""
    from rich.progress import Progress

    from .judges.pairwise import PairwiseStepJudge
    from .search import StepSearch

    problems = load_problems(run, t)
    generator = run.generator(t - 1)
    judge = PairwiseStepJudge(generator, mode=run.config.judge.mode, debias=run.config.judge.debias)
    search = StepSearch(generator, judge, run.config.search)
    with Progress() as bar:
        task = bar.add_task(f"search with M{t - 1}", total=len(problems))
        results = search.run_to_jsonl(
            problems, run.iter_dir(t) / "search.jsonl",
            on_chunk=lambda done, total: bar.update(task, completed=done),
        )
    totals: dict[str, Any] = {}
    for r in results:
        for key, value in r.counters.items():
            totals[key] = totals.get(key, 0) + value
    totals["finished"] = sum(bool(r.finished) for r in results)
    judged = totals.get("judged_orders", 0)
    totals["judge_consistency"] = round(totals.get("consistent_orders", 0) / judged, 4) if judged else None
    checked = [r.correct for r in results if r.correct is not None]
    totals["solved"] = sum(checked) if checked else None
    return totals


def build_pairs(run: Run, t: int) -> dict[str, Any]:
    from .pairs import build_step_pairs, write_pair_dataset
    from .search import SearchResult

    results = [SearchResult.from_dict(r) for r in read_jsonl(run.dir / f"iter_{t}" / "search.jsonl")]
    pairs, stats = build_step_pairs(
        results, min_margin=run.config.search.min_margin, drop_wrong=run.config.search.drop_wrong
    )
    write_pair_dataset(pairs, run.iter_dir(t) / "pairs.jsonl")
    return {"pairs": stats.kept, **to_dict(stats)}


def instruct_pairs(run: Run, t: int) -> dict[str, Any]:
    """Task instruct: self-instruct prompts, N responses, 5-point self-scores, best-vs-worst pairs."""
    from .instruct import dpo_records, run_instruct_iteration

    seeds = [p.question for p in load_problems(run, t)]
    pairs, stats = run_instruct_iteration(run.generator(t - 1), seeds, run.config.instruct)
    out = run.iter_dir(t)
    write_jsonl(out / "prompts.jsonl", [{"prompt": p} for p in stats.prompts])
    write_jsonl(out / "judgments.jsonl", stats.judgments)
    write_jsonl(out / "pairs.jsonl", dpo_records(pairs))
    return stats.summary()


def train_dpo(run: Run, t: int) -> dict[str, Any]:
    """DPO of M(t-1) on iteration t's pairs. With no pair to learn from (a model whose judgments
    never separate its candidates), M(t) is M(t-1): recorded, reported, and the loop goes on."""
    rows = read_jsonl(run.dir / f"iter_{t}" / "pairs.jsonl")
    if not rows:
        run.log(f"[yellow]iteration {t}: no preference pairs; M{t} is M{t - 1} (see pairs/M{t} in manifest.json)[/]")
        return {"skipped": "no preference pairs", "model": run.model_spec(t - 1)}
    return train_stage(run, "dpo", run.model_spec(t - 1), rows, run.dir / f"iter_{t}" / "model")


def write_report(run: Run) -> None:
    from .report import build_report

    build_report(run.dir)


# ------------------------------------------------------------------------------------------------ loop


def iterate(config: RunConfig, run_dir: str | Path, log: Callable[[str], None] = print) -> Path:
    """Run (or resume) the whole loop in ``run_dir``; returns the run directory."""
    run = Run(Path(run_dir), config, log)
    run.manifest.data.setdefault("versions", environment_versions())
    run.manifest.data.setdefault("seed", config.seed)
    run.manifest.data.setdefault("created", time.time())
    run.manifest.save()

    run.stage("eval/M0", lambda: evaluate_model(run, 0))
    run.stage("seed", lambda: build_seed(run))
    run.stage("judge_eval/M0", lambda: evaluate_judge(run, 0))
    run.stage(train_stage_name(1), lambda: train_m1(run))
    run.stage("eval/M1", lambda: evaluate_model(run, 1))
    run.stage("judge_eval/M1", lambda: evaluate_judge(run, 1))
    write_report(run)

    for t in range(2, config.iterations + 2):
        run.stage(f"problems/M{t}", lambda t=t: sample_problems(run, t))
        if config.task == "math":
            run.stage(f"search/M{t}", lambda t=t: search_steps(run, t))
            run.stage(f"pairs/M{t}", lambda t=t: build_pairs(run, t))
        else:
            run.stage(f"pairs/M{t}", lambda t=t: instruct_pairs(run, t))
        run.stage(train_stage_name(t), lambda t=t: train_dpo(run, t))
        run.stage(f"eval/M{t}", lambda t=t: evaluate_model(run, t))
        run.stage(f"judge_eval/M{t}", lambda t=t: evaluate_judge(run, t))
        write_report(run)

    run.release()
    run.manifest.data["status"] = "finished"
    run.manifest.save()
    return run.dir


def prepare_run_dir(run_dir: Path, config: RunConfig, resume: bool) -> RunConfig:
    """New run: write config.yaml. Resume: read it back (the run's config wins over the CLI's)."""
    config_path = run_dir / "config.yaml"
    if config_path.exists():
        if not resume:
            raise UserError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --run-dir")
        saved = load_run_config(config_path)
        if saved.iterations < config.iterations:
            saved.iterations = config.iterations  # resuming may extend a run by more iterations
        return saved
    from .io import atomic_write_text

    atomic_write_text(config_path, yaml.safe_dump(to_dict(config), sort_keys=False))
    return config
