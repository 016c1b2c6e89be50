"""Evaluation end to end with a scripted generator whose answers are known."""

from __future__ import annotations

import json
import math

import pytest

from prm_selfreward.evaluate import (
    EvalConfig,
    evaluate,
    evaluate_benchmark,
    majority_answer,
    wilson_interval,
)
from prm_selfreward.models import ScriptedGenerator
from prm_selfreward.records import Problem


def _problems(n: int) -> list[Problem]:
    return [Problem(id=f"toy/{i}", question=f"What is {i} + {i}?", answers=[str(2 * i)], benchmark="gsm8k")
            for i in range(n)]


def _solver(wrong_every: int = 3):
    """Right answer except for every ``wrong_every``-th problem; the question holds the operands."""

    def generate(prompt: str, n: int, params) -> list[str]:
        q = prompt.rsplit("Problem: ", 1)[1]
        i = int(q.split("What is ", 1)[1].split(" +")[0])
        answer = 2 * i + (1 if i % wrong_every == 0 else 0)
        return [f"Step 1: {i} + {i} = {answer}.\nStep 2: The answer is \\boxed{{{answer}}}.\nProblem: next"] * n

    return generate


def test_summary_counts_degenerate_completions(tmp_path):
    """Completions that repeat a step or state several answers are counted in the summary."""

    def generate(prompt: str, n: int, params) -> list[str]:
        i = int(prompt.rsplit("What is ", 1)[1].split(" +")[0])
        if i == 0:  # repeats its answer step
            text = "Step 1: The answer is \\boxed{0}.\nStep 2: The answer is \\boxed{0}."
        elif i == 1:  # two different answers
            text = "Step 1: The answer is 1.\nStep 2: The answer is \\boxed{2}."
        else:
            text = f"Step 1: {i} + {i} = {2 * i}.\nStep 2: The answer is \\boxed{{{2 * i}}}."
        return [text] * n

    summary = evaluate_benchmark(ScriptedGenerator(generate), _problems(4), EvalConfig(), tmp_path / "g.jsonl")
    assert (summary.repeated_step, summary.several_answers) == (1, 1)
    assert summary.repeated_step_share == summary.several_answers_share == 0.25
    assert summary.to_dict()["several_answers"] == 1
    # Both degenerate completions end on the gold (0 + 0 = 0, 1 + 1 = 2): graded right, and counted so.
    assert (summary.degenerate_completions, summary.degenerate_right, summary.correct) == (2, 2, 4)


@pytest.mark.parametrize(
    "correct,total,low,high",
    [(0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (5, 10, 0.2366, 0.7634), (0, 0, 0.0, 0.0)],
)
def test_wilson_interval(correct, total, low, high):
    lo, hi = wilson_interval(correct, total)
    assert lo == pytest.approx(low, abs=1e-3) and hi == pytest.approx(high, abs=1e-3)


def test_majority_answer_groups_by_equivalence():
    preds = ["1/2", "0.5", "3", None, "\\frac{1}{2}", "3"]
    idx, size = majority_answer(preds, lambda a, b: a.replace("\\frac{1}{2}", "1/2").replace("0.5", "1/2")
                                == b.replace("\\frac{1}{2}", "1/2").replace("0.5", "1/2"))
    assert (idx, size) == (0, 3)
    assert majority_answer([None, None], lambda a, b: a == b) == (None, 0)


def test_evaluate_accuracy_files_and_table(tmp_path):
    problems = _problems(9)  # i = 0, 3, 6 are answered wrong
    gen = ScriptedGenerator(_solver())
    summary = evaluate_benchmark(gen, problems, EvalConfig(chunk_size=4), tmp_path / "gsm8k.jsonl")
    assert summary.total == 9 and summary.correct == 6
    assert summary.accuracy == pytest.approx(6 / 9)
    assert summary.avg_steps == pytest.approx(2.0)
    rows = [json.loads(line) for line in (tmp_path / "gsm8k.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [p.id for p in problems]
    assert {"id", "prompt", "completion", "predicted", "gold", "correct", "reason", "tokens"} <= set(rows[0])
    assert rows[1]["predicted"] == "2" and rows[1]["correct"] is True
    assert rows[0]["correct"] is False
    # The few-shot stop string cut the invented next problem out of the completion.
    assert all("Problem:" not in r["completion"] for r in rows)
    # One batched generate call per chunk of 4.
    assert len(gen.generate_calls) == math.ceil(9 / 4)


def test_resume_skips_finished_problems(tmp_path):
    problems = _problems(6)
    out = tmp_path / "gsm8k.jsonl"
    gen = ScriptedGenerator(_solver())
    evaluate_benchmark(gen, problems[:4], EvalConfig(chunk_size=2), out)
    # Simulate a kill mid-write: a torn last line.
    with open(out, "a") as handle:
        handle.write('{"id": "toy/4", "prom')
    gen2 = ScriptedGenerator(_solver())
    summary = evaluate_benchmark(gen2, problems, EvalConfig(chunk_size=2), out)
    asked = [p for prompts, _ in gen2.generate_calls for p in prompts]
    assert len(asked) == 2  # only toy/4 and toy/5 were generated again
    assert summary.total == 6
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == sorted(p.id for p in problems) and len(ids) == 6


def test_a_resumed_evaluation_grades_reused_records_with_todays_checker(tmp_path):
    """Records reused on resume are graded again from their completions: an earlier attempt's checker
    (here: a verdict edited to wrong, as an older checker that misread the answer line would give)
    never mixes with today's in one stage."""
    problems = _problems(3)
    out = tmp_path / "gsm8k.jsonl"
    evaluate_benchmark(ScriptedGenerator(_solver()), problems[:2], EvalConfig(chunk_size=2), out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["correct"] for r in rows] == [False, True]  # toy/0 is the solver's wrong one
    rows[1].update(correct=False, predicted=None, reason="no_answer")
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    gen = ScriptedGenerator(_solver())
    summary = evaluate_benchmark(gen, problems, EvalConfig(chunk_size=2), out)
    assert summary.resumed["records"] == 2 and summary.resumed["regraded_changed"] == 1
    assert summary.correct == 2  # toy/1 counts as its completion grades today, toy/2 is new
    assert len([p for prompts, _ in gen.generate_calls for p in prompts]) == 1  # nothing regenerated
    assert json.loads(out.read_text().splitlines()[1])["correct"] is False  # the file is appended to, not rewritten


def test_majority_vote_and_pass_at_k(tmp_path):
    problems = _problems(2)
    answers = {0: ["0", "5", "5"], 1: ["2", "7", "9"]}  # problem 0: majority wrong; problem 1: majority (first) right

    def generate(prompt, n, params):
        assert params.temperature > 0 and n == 3
        i = int(prompt.rsplit("What is ", 1)[1].split(" +")[0])
        return [f"Step 1: The answer is \\boxed{{{a}}}." for a in answers[i]]

    summary = evaluate_benchmark(ScriptedGenerator(generate), problems, EvalConfig(samples=3), tmp_path / "x.jsonl")
    assert summary.correct == 1          # maj@3: problem 1 only
    assert summary.pass_at_k == 1.0      # pass@3: both have a right sample
    rows = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert rows[0]["predicted"] == "5" and len(rows[0]["samples"]) == 3


def test_evaluate_writes_summary_for_several_benchmarks(tmp_path, data_dir):
    gen = ScriptedGenerator(lambda prompt, n, params: ["Step 1: The answer is \\boxed{18}."] * n)
    config = EvalConfig(benchmarks=["gsm8k", "math500"], limit={"gsm8k": 3, "math500": 2})
    result = evaluate(gen, config, tmp_path, data_dir=data_dir, model_name="scripted", show_progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["benchmarks"]["gsm8k"]["total"] == 3 and summary["benchmarks"]["math500"]["total"] == 2
    # GSM8K test problem 0 (Janet's ducks) has gold 18; the others do not.
    assert summary["benchmarks"]["gsm8k"]["correct"] == 1
    assert result["versions"]["python"]
    assert (tmp_path / "gsm8k.jsonl").exists() and (tmp_path / "math500.jsonl").exists()


def test_eval_cli_end_to_end_and_errors(tmp_path, data_dir, monkeypatch, capsys):
    import prm_selfreward.models.config as loading
    from prm_selfreward.cli import main

    monkeypatch.setattr(loading, "load_generator", lambda spec, **kw: ScriptedGenerator(
        lambda prompt, n, params: ["Step 1: The answer is \\boxed{18}."] * n))
    out = tmp_path / "ev"
    with pytest.raises(SystemExit) as exc:
        main(["eval", "gsm8k", "--model", "scripted", "--limit", "2", "--data-dir", str(data_dir), "-o", str(out)])
    assert exc.value.code == 0
    assert json.loads((out / "summary.json").read_text())["benchmarks"]["gsm8k"]["correct"] == 1
    assert "gsm8k" in capsys.readouterr().out

    with pytest.raises(SystemExit) as exc:
        main(["eval", "gsm9k", "--data-dir", str(data_dir), "-o", str(out)])
    assert exc.value.code == 2
    assert "unknown benchmark(s) gsm9k" in capsys.readouterr().err

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["eval", "aime24", "--data-dir", str(empty), "-o", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "holds none of the benchmark files" in err and "Traceback" not in err

    only_gsm8k = tmp_path / "only-gsm8k"
    (only_gsm8k / "gsm8k").mkdir(parents=True)
    (only_gsm8k / "gsm8k" / "test.jsonl").write_text((data_dir / "gsm8k" / "test.jsonl").read_text()[:2000].rsplit("\n", 1)[0])
    with pytest.raises(SystemExit) as exc:
        main(["eval", "aime24", "--data-dir", str(only_gsm8k), "-o", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "aime24" in err and "aime24/test.jsonl" in err and "Traceback" not in err

    with pytest.raises(SystemExit) as exc:  # --limit 0 used to evaluate the whole benchmark
        main(["eval", "gsm8k", "--limit", "0", "--data-dir", str(data_dir), "-o", str(out)])
    assert exc.value.code == 2
    assert "--limit" in capsys.readouterr().err


def test_eval_with_step_search_keeps_the_self_judged_best_steps(tmp_path):
    """`--search-width`: each solution is built step by step; the judge prefers candidates that say
    'right', so the solution is the right path even though most samples are wrong."""
    from prm_selfreward.judges.base import PairVerdict

    class PreferRight:
        def compare(self, comparisons):
            return [PairVerdict(0 if "right" in c.step_a and "right" not in c.step_b else 1) for c in comparisons]

    def generate(prompt, n, params):
        i = int(prompt.split("What is ", 1)[1].split(" +")[0])
        if prompt.rstrip().endswith("Step 1:"):
            # A real model runs on into the next marker; the search stops it there.
            return [" wrong guess.\nStep 2:"] * (n - 1) + [f" right: {i} + {i} = {2 * i}.\nStep 2:"]
        return [" The answer is \\boxed{0}."] * (n - 1) + [f" right, so the answer is \\boxed{{{2 * i}}}."]

    problems = _problems(3)[1:]
    config = EvalConfig(search_width=3, chunk_size=2)
    summary = evaluate_benchmark(ScriptedGenerator(generate), problems, config, tmp_path / "s.jsonl",
                                 judge=PreferRight())
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert summary.correct == 2
    assert all("right" in r["completion"] and "wrong" not in r["completion"] for r in rows)
    assert rows[0]["completion"].startswith("Step 1:") and "Step 2:" in rows[0]["completion"]
