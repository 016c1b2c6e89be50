"""Data-parallel search and eval on Ray: the same stage code per shard, merged in input order, resumable.

Runs a real local Ray cluster (2 CPUs) with the tiny model in each engine actor; the reference is the
same stage code in this process, shard by shard.
"""

from __future__ import annotations

import json

import pytest

from prm_selfreward.cluster import ClusterConfig
from prm_selfreward.evaluate import EvalConfig
from prm_selfreward.judges.pairwise import StepJudgeConfig
from prm_selfreward.models.config import ModelConfig, load_generator_from_config
from prm_selfreward.parallel import actor_resources, engine_overrides, shard_path, shards
from prm_selfreward.records import Problem
from prm_selfreward.search import SearchConfig


@pytest.mark.parametrize(
    "n, k, expected",
    [(5, 2, [(0, 3), (3, 5)]), (4, 4, [(0, 1), (1, 2), (2, 3), (3, 4)]), (2, 3, [(0, 1), (1, 2)]), (0, 2, [])],
)
def test_shards_are_contiguous_and_balanced(n, k, expected):
    assert [(r.start, r.stop) for r in shards(n, k)] == expected


@pytest.mark.parametrize(
    "model, resources, overrides",
    [
        (ModelConfig(backend="vllm", tensor_parallel_size=4), {"num_cpus": 1, "num_gpus": 4},
         {"distributed_executor_backend": "mp"}),
        (ModelConfig(backend="vllm", tensor_parallel_size=1), {"num_cpus": 1, "num_gpus": 1}, {}),
        (ModelConfig(backend="hf", device="cpu"), {"num_cpus": 1, "num_gpus": 0}, {}),
        (ModelConfig(backend="hf", device="cuda"), {"num_cpus": 1, "num_gpus": 1}, {}),
    ],
)
def test_actor_placement(model, resources, overrides):
    assert actor_resources(model) == resources and engine_overrides(model) == overrides


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def tiny_model(tiny_model_dir) -> ModelConfig:
    return ModelConfig(name=str(tiny_model_dir), backend="hf", device="cpu", batch_size=4)


PROBLEMS = [Problem(f"toy/{i}", f"What is {i} + {i}?", [str(2 * i)], "gsm8k") for i in range(5)]
SEARCH = SearchConfig(width=2, max_step_tokens=6, max_rounds=2, lockstep=2, seed=3)
JUDGE = StepJudgeConfig(mode="logprob", debias=False)


def test_parallel_search_equals_the_in_process_stage_shard_by_shard(ray_cluster, tiny_model_dir, tmp_path):
    from prm_selfreward.parallel import EnginePool, parallel_search
    from prm_selfreward.stages.search import search_stage

    model, cluster = tiny_model(tiny_model_dir), ClusterConfig(data_parallel_size=2)
    out = tmp_path / "search.jsonl"
    with EnginePool(model, cluster, model.name, 0) as pool:
        rows = parallel_search(pool, PROBLEMS, SEARCH, JUDGE, out)
        assert len(pool.actors) == 2
    assert [r["problem_id"] for r in rows] == [p.id for p in PROBLEMS]  # input order
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows

    generator = load_generator_from_config(model, seed=0)
    expected = []
    for k, part in enumerate(shards(len(PROBLEMS), 2)):
        results, _ = search_stage(generator, [PROBLEMS[i] for i in part], SEARCH, JUDGE, tmp_path / f"ref{k}.jsonl")
        expected += [r.to_dict() for r in results]
    assert rows == expected

    # Resume: shard 1 lost its last result; only that shard is searched again, by one engine.
    second = shard_path(out, 1, 2)
    second.write_text("".join(second.read_text().splitlines(keepends=True)[:-1]))
    out.unlink()
    with EnginePool(model, cluster, model.name, 0) as pool:
        again = parallel_search(pool, PROBLEMS, SEARCH, JUDGE, out)
        assert len(pool.actors) == 1
    assert again == rows


def test_parallel_eval_merges_shards_into_the_single_engine_records(ray_cluster, tiny_model_dir, tmp_path, data_dir):
    from prm_selfreward.parallel import EnginePool, parallel_eval
    from prm_selfreward.stages import eval_stage

    model, cluster = tiny_model(tiny_model_dir), ClusterConfig(data_parallel_size=2)
    config = EvalConfig(benchmarks=["gsm8k", "math500"], limit={"gsm8k": 3, "math500": 2}, few_shot=0,
                        max_new_tokens=6, chunk_size=2)
    with EnginePool(model, cluster, model.name, 0) as pool:
        result = parallel_eval(pool, config, tmp_path / "dp", data_dir=data_dir, model_name="M0")
    single = eval_stage(load_generator_from_config(model, seed=0), config, tmp_path / "one", data_dir=data_dir,
                        model_name="M0", show_progress=False)
    for bench in ("gsm8k", "math500"):
        dp_rows = (tmp_path / "dp" / f"{bench}.jsonl").read_text().splitlines()
        one_rows = (tmp_path / "one" / f"{bench}.jsonl").read_text().splitlines()
        assert dp_rows == one_rows
        for key in ("total", "correct", "accuracy", "no_answer", "avg_tokens"):
            assert result["benchmarks"][bench][key] == single["benchmarks"][bench][key]
    assert json.loads((tmp_path / "dp" / "summary.json").read_text())["data_parallel_size"] == 2
