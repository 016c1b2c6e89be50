"""Resumes that never reuse another model's records and never drop a complete one (issue 17,
findings 2 and 3): evaluation and step search, with scripted models."""

from __future__ import annotations

import json

import pytest

from prm_selfreward.errors import UserError
from prm_selfreward.evaluate import EvalConfig, evaluate, evaluate_benchmark
from prm_selfreward.fingerprint import check_made_by, describe_difference, fingerprint, model_identity, stamp
from prm_selfreward.models import ScriptedGenerator
from prm_selfreward.records import Problem


def _problems(n: int) -> list[Problem]:
    return [Problem(id=f"toy/{i}", question=f"What is {i} + {i}?", answers=[str(2 * i)], benchmark="gsm8k")
            for i in range(n)]


def _answering(answer: str):
    return ScriptedGenerator(lambda prompt, n, params: [f"Step 1: The answer is \\boxed{{{answer}}}."] * n)


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ----------------------------------------------------------------------------------- the check itself


def test_check_made_by_names_the_difference(tmp_path):
    ours = {"model": "B", "seed": 0, "search": {"width": 6}}
    theirs = {"model": "A", "seed": 0, "search": {"width": 4}}
    rows = [stamp({"id": 1}, theirs)]
    with pytest.raises(UserError, match=r"model: 'A' in the file, 'B' now; search.width: 4 in the file, 6 now"):
        check_made_by(tmp_path / "x.jsonl", rows, ours)
    check_made_by(tmp_path / "x.jsonl", [stamp({"id": 1}, ours)], ours)  # same maker: fine
    with pytest.raises(UserError, match="without a fingerprint"):
        check_made_by(tmp_path / "x.jsonl", [{"id": 1}], ours)


def test_fingerprint_is_order_independent_and_model_paths_resolve(tmp_path, monkeypatch):
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1}) != fingerprint({"a": 1, "b": 3})
    (tmp_path / "m").mkdir()
    monkeypatch.chdir(tmp_path)
    assert model_identity("m") == model_identity(str(tmp_path / "m")) == str(tmp_path / "m")
    assert model_identity("embedded") == "embedded:qwen2.5-coder-0.5b-instruct"
    assert "more" in describe_difference({f"k{i}": 0 for i in range(9)}, {})


# ------------------------------------------------------------------------------------- evaluation


@pytest.mark.parametrize(
    "second,message",
    [
        ({"model_name": "model-B"}, "model: 'model-A' in the file, 'model-B' now"),
        ({"config": EvalConfig(benchmarks=["gsm8k"], few_shot=2)}, "few_shot: 3 in the file, 2 now"),
        ({"config": EvalConfig(benchmarks=["gsm8k"], samples=3)}, "samples: 1 in the file, 3 now"),
    ],
)
def test_eval_into_another_models_directory_is_an_error_naming_the_difference(
    tmp_path, data_dir, second, message
):
    first = {"model_name": "model-A", "config": EvalConfig(benchmarks=["gsm8k"], limit={"gsm8k": 2})}
    evaluate(_answering("18"), first["config"], tmp_path, data_dir=data_dir, model_name="model-A",
             show_progress=False)
    kwargs = {**first, **second}
    kwargs["config"].limit = {"gsm8k": 2}
    with pytest.raises(UserError, match=message):
        evaluate(_answering("5"), kwargs["config"], tmp_path, data_dir=data_dir,
                 model_name=kwargs["model_name"], show_progress=False)
    assert json.loads((tmp_path / "summary.json").read_text())["model"] == "model-A"  # untouched


def test_greedy_eval_resumes_whatever_the_unused_sampling_settings(tmp_path):
    out = tmp_path / "gsm8k.jsonl"
    problems = _problems(3)
    evaluate_benchmark(_answering("0"), problems[:2], EvalConfig(), out)
    gen = _answering("0")
    summary = evaluate_benchmark(gen, problems, EvalConfig(temperature=0.1, chunk_size=1), out)
    assert len(gen.generate_calls) == 1 and summary.total == 3
    assert summary.resumed["records"] == 2
    assert all(r["fingerprint"] == _rows(out)[0]["fingerprint"] for r in _rows(out))


@pytest.mark.parametrize("cut_bytes,kept,cut,regenerated", [(1, 1, 0, 0), (2, 0, 1, 1)])
def test_eval_torn_tail_at_the_exact_byte_boundary(tmp_path, cut_bytes, kept, cut, regenerated):
    """A kill between a record's last byte and its newline must not lose the record (the old tail
    repair cut it after the resume had counted it: total 2 with 1 record on disk)."""
    out = tmp_path / "gsm8k.jsonl"
    problems = _problems(2)
    evaluate_benchmark(_answering("0"), problems, EvalConfig(), out)
    data = out.read_bytes()
    out.write_bytes(data[:-cut_bytes])  # 1: just the newline gone; 2: the closing brace too
    gen = _answering("0")
    summary = evaluate_benchmark(gen, problems, EvalConfig(), out)
    assert len(gen.generate_calls) == regenerated
    assert summary.total == 2 and len(_rows(out)) == 2
    assert [r["id"] for r in _rows(out)] == ["toy/0", "toy/1"]
    assert (summary.resumed["torn_tail_kept"], summary.resumed["torn_tail_cut"]) == (kept, cut)
    assert out.read_bytes().endswith(b"\n")


# ------------------------------------------------------------------------------------------ search


def _search(width: int = 3, **judge_kwargs):
    from test_search import ScriptedJudge, policy, script_for_lockstep

    from prm_selfreward.search import SearchConfig, StepSearch

    return StepSearch(policy(script_for_lockstep), ScriptedJudge(**judge_kwargs), SearchConfig(width=width))


def test_search_resume_refuses_another_models_results(tmp_path):
    from test_search import make_problem

    path = tmp_path / "search.jsonl"
    problems = [make_problem(i) for i in range(2)]
    _search().run_to_jsonl(problems, path, model="model-A")
    with pytest.raises(UserError, match="model: 'model-A' in the file, 'model-B' now"):
        _search().run_to_jsonl(problems, path, model="model-B")
    with pytest.raises(UserError, match="search.width: 3 in the file, 4 now"):
        _search(width=4).run_to_jsonl(problems, path, model="model-A")
    again = _search()
    again.run_to_jsonl(problems, path, model="model-A")  # same maker: resumes, nothing to do
    assert again.generator.generate_calls == [] and again.resumed["records"] == 2


def test_search_torn_tail_at_the_byte_boundary_keeps_the_result(tmp_path):
    from test_search import make_problem

    path = tmp_path / "search.jsonl"
    problems = [make_problem(i) for i in range(2)]
    expected = _search().run_to_jsonl(problems, path, model="m")
    path.write_bytes(path.read_bytes()[:-1])
    again = _search()
    got = again.run_to_jsonl(problems, path, model="m")
    assert again.generator.generate_calls == [] and again.resumed["torn_tail_kept"] == 1
    assert [r.to_dict() for r in got] == [r.to_dict() for r in expected]
    assert len(_rows(path)) == 2
