"""The loop's stages: each a function of (run context, t) that reads the run's records, calls the
stage core (:mod:`.evaluation`, :mod:`.search`, ``train/``, ``data/``) with the run's configs, writes
its records where :class:`~prm_selfreward.layout.RunLayout` says and returns the manifest's result.
"""

from __future__ import annotations

import json
import random
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ..config import to_dict
from ..errors import UserError
from ..io import atomic_write_text, read_jsonl, write_jsonl
from ..records import Problem
from .context import RunContext
from .evaluation import eval_stage, judge_eval_modes_stage, judge_rows
from .search import pairs_stage, search_stage, search_summary

EVAL_KEYS = ("accuracy", "ci_low", "ci_high", "total", "avg_steps", "avg_tokens", "resumed",
             "repeated_step", "repeated_step_share", "looping", "looping_share", "several_answers",
             "several_answers_share", "degenerate_completions", "degenerate_right")


def model_id(run: RunContext, t: int) -> str:
    """How M(t)'s records name it (their fingerprint): the base model for M0; inside the run, ``M<t>``,
    so a moved run directory still resumes."""
    from ..fingerprint import model_identity

    if t > 0:
        return f"M{t}"
    base = model_identity(run.config.model.name)
    return base + " (trimmed vocabulary)" if run.config.model.trim_vocab else base


def evaluate_model(run: RunContext, t: int) -> dict[str, Any]:
    """Accuracy of M(t) on the configured benchmarks (resumes per problem)."""
    c = run.config
    if c.cluster.data_parallel_size > 1:
        from ..parallel import EnginePool, parallel_eval

        run.release()  # the engines need the GPUs this process would hold
        with EnginePool(c.model, c.cluster, run.model_spec(t), c.seed) as pool:
            result = parallel_eval(pool, c.eval, run.layout.eval_dir(t), search=c.search, judge=c.judge,
                                   data_dir=c.data_dir, model_name=f"M{t}", model_id=model_id(run, t))
    else:
        result = eval_stage(
            run.generator(t), c.eval, run.layout.eval_dir(t), search=c.search, judge=c.judge,
            data_dir=c.data_dir, model_name=f"M{t}", model_id=model_id(run, t),
        )
    out: dict[str, Any] = {name: {k: s[k] for k in EVAL_KEYS} for name, s in result["benchmarks"].items()}
    return out


def heldout_rows(run: RunContext) -> list[dict[str, Any]]:
    """The held-out EFT pairs every model's step judge is scored on (the first ``judge_eval.limit``)."""
    rows = read_jsonl(run.layout.eft_heldout)
    limit = run.config.judge_eval.limit
    return rows[:limit] if limit else rows


def evaluate_judge(run: RunContext, t: int) -> dict[str, Any]:
    """Step-judge accuracy of M(t) on the held-out EFT pairs (the paper's Table 3) in ``judge.mode`` and
    every mode of ``judge_eval.modes``; task instruct: agreement of the 5-point judge with the held-out
    response pairs."""
    if run.config.task == "instruct":
        from ..data.seed_instruct import load_heldout
        from ..judges.pointwise import PointwiseJudge, judge_agreement

        heldout = load_heldout(run.layout.seed_dir)
        limit = run.config.judge_eval.limit
        heldout = heldout[:limit] if limit else heldout
        judge = PointwiseJudge.from_config(run.generator(t), run.config.instruct.judge)
        return judge_agreement(judge, heldout).to_dict()
    c = run.config
    return judge_eval_modes_stage(
        run.generator(t), heldout_rows(run), c.judge, c.judge_eval.modes,
        lambda mode: run.layout.judge_eval(t, mode, primary=c.judge.mode),
        generate_limit=c.judge_eval.generate_limit, solve_few_shot=c.search.few_shot,
        model=model_id(run, t), chunk_size=c.judge_eval.chunk_size,
    )


def select_judge(run: RunContext, t: int) -> dict[str, Any]:
    """The judge mode of M(t)'s search, chosen on M(t-1)'s held-out figures and copy probes
    (:mod:`prm_selfreward.judges.selection`)."""
    from ..judges.selection import copy_preference, copy_probes, select_mode

    c = run.config
    figures = (run.manifest.result(f"judge_eval/M{t - 1}") or {}).get("modes") or {}
    probes = copy_probes(heldout_rows(run), c.judge_eval.probe_pairs)

    def probe(mode: str) -> dict[str, Any]:
        judged, _ = judge_rows(run.generator(t - 1), probes, replace(c.judge, mode=mode), c.search.few_shot)
        return copy_preference(judged)

    return select_mode(figures, probe, primary=c.judge.mode, guards=c.search.guard_repeats)


def search_judge(run: RunContext, t: int) -> Any:
    """The judge config of M(t)'s search: ``judge`` with the mode ``judge_select/M<t>`` chose, if it ran."""
    chosen = run.manifest.result(f"judge_select/M{t}")
    if isinstance(chosen, dict) and chosen.get("mode"):
        return replace(run.config.judge, mode=chosen["mode"])
    return run.config.judge


def build_seed(run: RunContext) -> dict[str, Any]:
    """IFT + EFT seed data from problems with known answers (never an evaluation problem)."""
    from ..data.seed import build_seed_data

    c = run.config
    exclude = evaluation_problems(run)
    if c.task == "instruct":
        from ..data.seed_instruct import build_instruct_seed

        summary = build_instruct_seed(c.instruct_seed, c.data_dir, run.layout.seed_dir, exclude=exclude)
        ift = build_seed_data(c.seed_data, c.data_dir, run.layout.seed_dir, exclude=exclude)
        return {"judge_eft": summary, "ift": _seed_result(ift)}
    return _seed_result(build_seed_data(c.seed_data, c.data_dir, run.layout.seed_dir, exclude=exclude))


def _seed_result(summary: Any) -> dict[str, Any]:
    """The seed summary for the manifest, without the long id list (it stays in seed/summary.json)."""
    return {k: v for k, v in to_dict(summary).items() if k != "heldout_problem_ids"}


def sft_records(run: RunContext) -> list[dict[str, Any]]:
    """IFT solutions plus the task's judge EFT records, as prompt/completion rows."""
    ift = [{"prompt": r["prompt"], "completion": r["completion"]} for r in read_jsonl(run.layout.ift)]
    if run.config.task == "instruct":
        from ..data.seed_instruct import sft_records as instruct_sft_records

        return ift + instruct_sft_records(run.layout.seed_dir)
    from ..data.seed import eft_to_sft

    seed = run.config.seed_data
    return ift + eft_to_sft(read_jsonl(run.layout.eft_train), verdict_first=seed.eft_verdict_first,
                            explanation=seed.eft_explanation)


def training_command(
    launcher: str, stage: str, model: str, data: Path, out: Path, config_file: Path
) -> list[str]:
    """The subprocess that trains one stage under a multi-process launcher (``train_launcher``)."""
    return [*shlex.split(launcher), "-m", "prm_selfreward.train", stage,
            "--model", model, "--data", str(data), "--out", str(out), "--config", str(config_file)]


def train_stage(run: RunContext, stage: str, model: str, rows: list[dict[str, Any]], t: int) -> dict[str, Any]:
    """Train M(t) from ``model`` on ``rows`` (SFT records or DPO pairs) into ``iter_<t>/model``.

    A model directory already marked complete is kept (a kill after the save but before the manifest
    update). With ``train_launcher`` the stage runs as ``python -m prm_selfreward.train`` under the
    launcher (all GPUs train; generation stays in this process); otherwise in this process.
    """
    from ..train import is_trained_model, read_train_result

    out = run.layout.model(t)
    if is_trained_model(out):
        return read_train_result(out).to_dict()
    run.release()
    config = run.config.sft if stage == "sft" else run.config.dpo
    if stage == "dpo" and run.config.task == "instruct":
        config = run.config.instruct.dpo  # Yuan et al.'s DPO settings, not step-DPO's
    if run.config.train_launcher:
        import subprocess

        run.iter_dir(t)
        data, config_file = run.layout.train_data(t, stage), run.layout.train_config(t, stage)
        write_jsonl(data, rows)
        atomic_write_text(config_file, yaml.safe_dump(to_dict(config), sort_keys=False))
        cmd = training_command(run.config.train_launcher, stage, model, data, out, config_file)
        run.log(f"[dim]$ {' '.join(cmd)}[/]")
        if subprocess.run(cmd, check=False).returncode != 0:
            raise UserError(f"training stage {stage} failed under the launcher: {' '.join(cmd)}")
        return read_train_result(out).to_dict()
    if stage == "sft":
        from ..train import train_sft

        return train_sft(model, rows, out, config).to_dict()
    from ..train import train_step_dpo

    return train_step_dpo(model, rows, out, config).to_dict()


def train_m1(run: RunContext) -> dict[str, Any]:
    """M1 = SFT of M0 on the IFT + EFT seed records."""
    return train_stage(run, "sft", run.model_spec(0), sft_records(run), 1)


def evaluation_problems(run: RunContext) -> list[Problem]:
    """Every problem the run evaluates on: training data must never contain one."""
    from ..evaluate import select_problems

    c = run.config
    return [p for name in c.eval.benchmarks for p in select_problems(name, c.eval, c.data_dir)]


def sample_problems(run: RunContext, t: int) -> dict[str, Any]:
    """Training problems for iteration t: from the training pools, never an evaluation problem, never
    one used by an earlier iteration, never a held-out judge problem."""
    from ..data import training_problems

    c = run.config
    pool = training_problems(c.train_sources, c.data_dir, exclude=evaluation_problems(run))
    used: set[str] = set()
    for s in range(2, t):
        path = run.layout.problems(s)
        if path.exists():
            used |= {r["id"] for r in read_jsonl(path)}
    if run.layout.seed_summary.exists():
        summary = json.loads(run.layout.seed_summary.read_text(encoding="utf-8"))
        used |= set(summary.get("heldout_problem_ids", []))
    pool = [p for p in pool if p.id not in used]
    n = min(c.problems_for(t), len(pool))
    chosen = random.Random(c.seed * 1000 + t).sample(pool, n)
    run.iter_dir(t)
    write_jsonl(run.layout.problems(t), [p.to_dict() for p in chosen])
    return {"problems": n}


def load_problems(run: RunContext, t: int) -> list[Problem]:
    return [Problem.from_dict(r) for r in read_jsonl(run.layout.problems(t))]


def search_steps(run: RunContext, t: int) -> dict[str, Any]:
    """Step search with M(t-1) as generator and judge; results appended per chunk (resumable)."""
    from ..progress import ProgressReporter

    problems = load_problems(run, t)
    run.iter_dir(t)
    c = run.config
    judge = search_judge(run, t)
    # Which judge made the pairs, in the manifest (and so the report) whether or not judge_select chose it.
    used = {"judge_mode": judge.mode, "judge_debias": judge.debias}
    if c.cluster.data_parallel_size > 1:
        from ..parallel import EnginePool, parallel_search
        from ..search import SearchResult

        run.release()  # the engines need the GPUs this process would hold
        with EnginePool(c.model, c.cluster, run.model_spec(t - 1), c.seed) as pool:
            rows = parallel_search(pool, problems, c.search, judge, run.layout.search(t),
                                   model=model_id(run, t - 1))
        return {**search_summary([SearchResult.from_dict(r) for r in rows]), **used}
    label = f"search/M{t} with M{t - 1}, {judge.mode} judge"
    with ProgressReporter(label, len(problems), unit="problems") as bar:
        results, search = search_stage(
            run.generator(t - 1), problems, run.config.search, judge, run.layout.search(t),
            on_chunk=bar.on_search_chunk, on_round=bar.on_search_round, model=model_id(run, t - 1),
        )
    return {**search_summary(results), **used, "resumed": search.resumed}


def build_pairs(run: RunContext, t: int) -> dict[str, Any]:
    """Step-level DPO pairs from iteration t's searches."""
    from ..search import SearchResult

    results = [SearchResult.from_dict(r) for r in read_jsonl(run.layout.search(t))]
    _, stats = pairs_stage(results, run.config.search, run.layout.pairs(t))
    return {"pairs": stats.kept, **to_dict(stats)}


def audit_pairs(run: RunContext, t: int) -> dict[str, Any]:
    """The pair audit of iteration t: a sample of its step pairs, rolled out with M(t-1) (the model that
    made them) from prefix + chosen and prefix + rejected, graded against the training answers."""
    from ..audit import audit_pairs as audit

    rows = read_jsonl(run.layout.pairs(t))
    return audit(run.generator(t - 1), rows, load_problems(run, t), run.config.audit, run.layout.audit(t),
                 model=model_id(run, t - 1), progress_label=f"audit/M{t} with M{t - 1}")


def instruct_pairs(run: RunContext, t: int) -> dict[str, Any]:
    """Task instruct: self-instruct prompts, N responses, 5-point self-scores, best-vs-worst pairs."""
    from ..instruct import dpo_records, generate_prompts, run_instruct_iteration

    seeds = [p.question for p in load_problems(run, t)]
    c = run.config.instruct
    new_prompts = None
    if c.prompt_model:  # a fixed model writes the prompts (the paper's main setting), then makes way
        from ..models.config import load_generator_from_config

        run.release()
        author = load_generator_from_config(run.config.model, c.prompt_model, seed=run.config.seed)
        try:
            new_prompts = generate_prompts(author, seeds, c.n_prompts, c.self_instruct)
        finally:
            if hasattr(author, "close"):
                author.close()
    pairs, stats = run_instruct_iteration(run.generator(t - 1), seeds, c, new_prompts=new_prompts)
    if c.prompt_model:
        stats.prompt_filters["author"] = c.prompt_model
    run.iter_dir(t)
    write_jsonl(run.layout.prompts(t), [{"prompt": p} for p in stats.prompts])
    write_jsonl(run.layout.judgments(t), stats.judgments)
    write_jsonl(run.layout.pairs(t), dpo_records(pairs))
    return stats.summary()


def train_dpo(run: RunContext, t: int) -> dict[str, Any]:
    """DPO of M(t-1) on iteration t's pairs. With no pair to learn from (a model whose judgments
    never separate its candidates), M(t) is M(t-1): recorded, reported, and the loop goes on."""
    rows = read_jsonl(run.layout.pairs(t))
    if not rows:
        run.log(f"[yellow]iteration {t}: no preference pairs; M{t} is M{t - 1} (see pairs/M{t} in manifest.json)[/]")
        return {"skipped": "no preference pairs", "model": run.model_spec(t - 1)}
    return train_stage(run, "dpo", run.model_spec(t - 1), rows, t)


def write_report(run: RunContext) -> None:
    from ..report import build_report

    build_report(run.dir)
