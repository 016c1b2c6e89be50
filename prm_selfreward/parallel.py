"""Data-parallel generation on Ray: search and eval over ``cluster.data_parallel_size`` engines.

Each engine is one Ray actor (:class:`EngineWorker`) holding one generator (a vLLM engine on
``model.tensor_parallel_size`` GPUs, or the transformers backend), built by the same
:func:`~prm_selfreward.models.config.load_generator_from_config` as everywhere else and running the
same stage code (:func:`~prm_selfreward.stages.search.search_stage`,
:func:`~prm_selfreward.evaluate.evaluate_benchmark`). Problems are sharded into contiguous slices,
one per engine; every shard writes its own resumable file (``<out>.shard-<k>-of-<n>.jsonl``, or
``eval/shard-<k>-of-<n>/``) and the driver merges them in input order once all are complete. A
resumed stage starts no actor for a shard that is already complete.

Placement: an actor asks Ray for ``tensor_parallel_size`` GPUs (none for a CPU model), so Ray puts
each engine's GPUs on one node and the engines over the cluster's nodes; inside an actor with more
than one GPU vLLM runs its tensor-parallel workers as processes (``distributed_executor_backend="mp"``),
since a Ray executor inside a Ray actor does not find its placement group (vLLM issue 30016).
``cluster.ray_address`` names an existing cluster (``auto``, ``ray://host:10001``); none starts a
local one for the run.

Sampling seeds: the step search seeds each lockstep round by the ids of the problems in it, so a
problem's samples can depend on which problems share its shard and chunk (as with any chunking, see
``search.py``); greedy evaluation does not depend on the sharding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .config import from_dict, to_dict
from .errors import UserError
from .io import JsonlErrors, atomic_write_json, read_jsonl, write_jsonl
from .records import EvalRecord, Problem


def shards(n: int, k: int) -> list[range]:
    """``k`` contiguous, balanced index ranges covering ``range(n)`` (the first ``n % k`` one longer);
    empty ranges are dropped."""
    if k < 1:
        raise ValueError(f"shards: k must be at least 1, got {k}")
    size, extra = divmod(n, k)
    out, start = [], 0
    for i in range(k):
        end = start + size + (i < extra)
        if end > start:
            out.append(range(start, end))
        start = end
    return out


def shard_path(out_path: Path, k: int, n: int) -> Path:
    """Where shard ``k`` of ``n`` of ``out_path`` (``search.jsonl``) is written."""
    return out_path.with_name(f"{out_path.stem}.shard-{k}-of-{n}{out_path.suffix}")


def _done_ids(path: Path, key: str) -> set[str]:
    if not path.exists():
        return set()
    return {str(row.get(key)) for row in read_jsonl(path, JsonlErrors()) if isinstance(row, dict)}


def engine_overrides(model: Any) -> dict[str, Any]:
    """vLLM engine arguments an actor adds: the process executor for tensor parallelism inside a Ray
    actor (module docstring)."""
    if model.backend == "vllm" and model.tensor_parallel_size > 1:
        return {"distributed_executor_backend": "mp"}
    return {}


def actor_resources(model: Any) -> dict[str, float]:
    """Ray resources of one engine actor: its tensor-parallel GPUs (none on CPU) and one CPU."""
    on_gpu = model.backend == "vllm" or model.device in ("cuda", "auto")
    return {"num_cpus": 1, "num_gpus": model.tensor_parallel_size if on_gpu else 0}


class EngineWorker:
    """One generation engine: the body of a Ray actor (plain class, so it is tested without Ray too)."""

    def __init__(self, model: dict[str, Any], spec: str, seed: int | None, overrides: dict[str, Any]):
        from .models.config import ModelConfig, load_generator_from_config

        self.generator = load_generator_from_config(from_dict(ModelConfig, model), spec, seed=seed,
                                                    engine_overrides=overrides)

    def search(
        self, problems: list[dict[str, Any]], search: dict[str, Any], judge: dict[str, Any], out: str,
        model: str | None = None,
    ) -> int:
        """Search ``problems`` into ``out`` (resumable); returns how many results ``out`` holds. ``model``
        names the generator in the records' fingerprint."""
        from .judges.pairwise import StepJudgeConfig
        from .search import SearchConfig
        from .stages.search import search_stage

        results, _ = search_stage(
            self.generator, [Problem.from_dict(p) for p in problems], from_dict(SearchConfig, search),
            from_dict(StepJudgeConfig, judge), out, model=model,
        )
        return len(results)

    def evaluate(
        self, problems: list[dict[str, Any]], config: dict[str, Any], search: dict[str, Any] | None,
        judge: dict[str, Any] | None, out: str, model_id: str = "",
    ) -> float:
        """Evaluate one benchmark's ``problems`` into ``out`` (resumable; records fingerprinted with
        ``model_id``); returns the wall time."""
        from .evaluate import EvalConfig, evaluate_benchmark
        from .fingerprint import eval_made_by, model_identity
        from .judges.pairwise import PairwiseStepJudge, StepJudgeConfig
        from .search import SearchConfig

        cfg = from_dict(EvalConfig, config)
        step_judge = search_cfg = None
        if cfg.search_width > 0:
            search_cfg = from_dict(SearchConfig, search or {})
            step_judge = PairwiseStepJudge.from_config(
                self.generator, from_dict(StepJudgeConfig, judge or {}), solve_few_shot=int(cfg.few_shot)
            )
        made_by = eval_made_by(cfg, model_identity(model_id), search_cfg, step_judge)
        summary = evaluate_benchmark(self.generator, [Problem.from_dict(p) for p in problems], cfg, out,
                                     step_judge, search=search_cfg, made_by=made_by)
        return summary.wall_time_s

    def close(self) -> None:
        close = getattr(self.generator, "close", None)
        if callable(close):
            close()


class EnginePool:
    """``data_parallel_size`` engine actors for one model, started lazily and shut down on close."""

    def __init__(self, model: Any, cluster: Any, spec: str, seed: int | None):
        try:
            import ray
        except ImportError as exc:
            raise UserError(
                "cluster.data_parallel_size > 1 needs Ray: pip install 'prm-selfreward[gpu]' (or ray)"
            ) from exc
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=cluster.ray_address, include_dashboard=False, log_to_driver=False)
        self.model, self.cluster, self.spec, self.seed = model, cluster, spec, seed
        self._remote = ray.remote(**actor_resources(model))(EngineWorker)
        self.actors: list[Any] = []

    def start(self, count: int) -> list[Any]:
        overrides = engine_overrides(self.model)
        while len(self.actors) < count:
            self.actors.append(self._remote.remote(to_dict(self.model), self.spec, self.seed, overrides))
        return self.actors[:count]

    def close(self) -> None:
        if self.actors:
            self.ray.get([a.close.remote() for a in self.actors])
            for a in self.actors:
                self.ray.kill(a)
        self.actors = []

    def __enter__(self) -> EnginePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parallel_search(
    pool: EnginePool, problems: Sequence[Problem], search: Any, judge: Any, out_path: str | Path,
    model: str | None = None,
) -> list[dict[str, Any]]:
    """The step search of ``problems`` over the pool's engines; writes ``out_path`` (merged, input
    order) and returns its rows. Shards already complete are not searched again."""
    out_path = Path(out_path)
    n = pool.cluster.data_parallel_size
    parts = shards(len(problems), n)
    todo = []
    for k, part in enumerate(parts):
        path = shard_path(out_path, k, n)
        if not {problems[i].id for i in part} <= _done_ids(path, "problem_id"):
            todo.append((k, part, path))
    actors = pool.start(len(todo))
    pool.ray.get([
        actor.search.remote([problems[i].to_dict() for i in part], to_dict(search), to_dict(judge), str(path), model)
        for actor, (_, part, path) in zip(actors, todo, strict=False)
    ])
    by_id: dict[str, dict[str, Any]] = {}
    for k in range(len(parts)):
        for row in read_jsonl(shard_path(out_path, k, n), JsonlErrors()):
            by_id.setdefault(row["problem_id"], row)
    rows = [by_id[p.id] for p in problems]
    write_jsonl(out_path, rows)
    return rows


def parallel_eval(
    pool: EnginePool, config: Any, out_dir: str | Path, *, search: Any = None, judge: Any = None,
    data_dir: Any = None, model_name: str = "", model_id: str | None = None,
) -> dict[str, Any]:
    """:func:`~prm_selfreward.stages.eval_stage` over the pool's engines: every benchmark's problems
    sharded, each shard evaluated by the same ``evaluate_benchmark`` into ``eval/shard-<k>-of-<n>/``,
    then merged in input order into ``<bench>.jsonl`` and ``summary.json`` as a single engine writes
    them. Returns the summary."""
    from .evaluate import (
        environment_versions,
        resolve_few_shot,
        resolve_open_step,
        select_problems,
        summarise,
    )
    from .models.loading import resolve_model_path
    from .models.tokens import has_chat_template

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = pool.cluster.data_parallel_size
    chat = has_chat_template(resolve_model_path(pool.spec))
    few_shot = resolve_few_shot(config.few_shot, pool.spec, chat)
    config = replace(config, few_shot=few_shot, open_step=resolve_open_step(config.open_step, chat))
    search_dict = judge_dict = None
    if config.search_width > 0 and search is not None:
        search_dict = to_dict(replace(search, width=config.search_width, few_shot=few_shot, seed=config.seed))
    if judge is not None:
        judge_dict = to_dict(judge)
    start = time.perf_counter()
    problem_sets = {name: select_problems(name, config, data_dir) for name in config.benchmarks}
    jobs = []
    for name, problems in problem_sets.items():
        for k, part in enumerate(shards(len(problems), n)):
            path = out_dir / f"shard-{k}-of-{n}" / f"{name}.jsonl"
            if not {problems[i].id for i in part} <= _done_ids(path, "id"):
                jobs.append((k, [problems[i].to_dict() for i in part], path))
    actors = pool.start(min(n, len({k for k, _, _ in jobs}))) if jobs else []
    # Shard k of every benchmark goes to engine k % engines: one engine keeps its model for them all.
    refs = [
        actors[k % len(actors)].evaluate.remote(part, to_dict(config), search_dict, judge_dict, str(path),
                                                model_id if model_id is not None else model_name)
        for k, part, path in jobs
    ]
    pool.ray.get(refs)
    summaries: dict[str, Any] = {}
    for name, problems in problem_sets.items():
        done: dict[str, EvalRecord] = {}
        for k in range(n):
            path = out_dir / f"shard-{k}-of-{n}" / f"{name}.jsonl"
            if path.exists():
                for row in read_jsonl(path, JsonlErrors()):
                    done.setdefault(row["id"], EvalRecord.from_dict(row))
        records = [done[p.id] for p in problems]
        write_jsonl(out_dir / f"{name}.jsonl", [r.to_dict() for r in records])
        benchmark = problems[0].benchmark if problems else name
        summaries[name] = summarise(benchmark, records, config.samples, time.perf_counter() - start).to_dict()
    result = {
        "model": model_name, "benchmarks": summaries, "config": dict(config.__dict__), "few_shot": few_shot,
        "versions": environment_versions(), "wall_time_s": time.perf_counter() - start,
        "data_parallel_size": n,
    }
    atomic_write_json(out_dir / "summary.json", result)
    return result


__all__ = [
    "EnginePool", "EngineWorker", "actor_resources", "engine_overrides", "parallel_eval", "parallel_search",
    "shard_path", "shards",
]
