"""Judging writes as it goes and resumes (issue 24): ``prm-sr judge -o`` and the ``judge_eval/M<t>`` stages
append each judged chunk; a run killed midway and resumed gives the uninterrupted run's file, a torn last
line is kept or cut, and a changed model, judge setting or input is never mistaken for the same run."""

from __future__ import annotations

import json
import math
import re

import pytest
from typer.testing import CliRunner

from prm_selfreward.cli import app
from prm_selfreward.fingerprint import StaleOutputError
from prm_selfreward.judges.pairwise import StepJudgeConfig
from prm_selfreward.models import ScriptedGenerator
from prm_selfreward.stages import judge_eval_stage, judge_rows_to_jsonl

SHOWN = re.compile(r"\[The Start of Step ([AB])\]\n(.*?)\n\[The End of Step \1\]", re.S)


class Killed(Exception):
    """What the scripted model raises to stand for a kill in the middle of a run."""


def scripted(fail_after: int | None = None) -> ScriptedGenerator:
    """log P(A) - log P(B) = quality shown first - quality shown second; raises ``Killed`` on the
    score call after ``fail_after`` calls (each chunk of comparisons is one call)."""
    calls = {"n": 0}

    def score(prompt, continuation):
        found = dict(SHOWN.findall(prompt))
        diff = float(found["A"].split("=")[1]) - float(found["B"].split("=")[1])
        return [-math.log1p(math.exp(-diff)) if continuation == "A" else -math.log1p(math.exp(diff))]

    gen = ScriptedGenerator(score_fn=score)
    original = gen.score

    def counted(prompts, continuations):
        if fail_after is not None and calls["n"] >= fail_after:
            raise Killed
        calls["n"] += 1
        return original(prompts, continuations)

    gen.score = counted  # type: ignore[method-assign]
    return gen


def rows(n: int = 10) -> list[dict]:
    return [{"question": f"What is {i} + {i}?", "previous_steps": ["Step 1: We add."], "step_a": f"q={i % 3}",
             "step_b": f"q={(i + 1) % 3}", "verdict": int((i % 3) < ((i + 1) % 3))} for i in range(n)]


def judge_to(path, generator, data=None, config=None, **kwargs):
    return judge_rows_to_jsonl(generator, data or rows(), config or StepJudgeConfig(), path, chunk_size=3,
                               progress_label=None, model="scripted", **kwargs)


@pytest.fixture()
def uninterrupted(tmp_path):
    path = tmp_path / "whole.jsonl"
    judge_to(path, scripted())
    return path.read_text(encoding="utf-8")


def test_a_killed_run_resumes_to_the_uninterrupted_file(tmp_path, uninterrupted):
    path = tmp_path / "killed.jsonl"
    with pytest.raises(Killed):
        judge_to(path, scripted(fail_after=2))  # two chunks of three judged, then killed
    assert len(path.read_text().splitlines()) == 6
    gen = scripted()
    records, judge, resumed = judge_to(path, gen)
    assert resumed["records"] == 6 and judge.stats.comparisons == 4  # only the rest was judged
    assert path.read_text(encoding="utf-8") == uninterrupted
    assert [r["row"] for r in records] == list(range(10))
    assert all(r["fingerprint"] == records[0]["fingerprint"] for r in records)


@pytest.mark.parametrize("tear,kept,cut", [
    (lambda text: text[:-1], 1, 0),                       # a kill between the last byte and its newline
    (lambda text: text[: text.rindex("{") + 20], 0, 1),   # a kill in the middle of the last record
])
def test_a_torn_last_line_is_kept_or_cut_and_the_result_is_the_same(tmp_path, uninterrupted, tear, kept, cut):
    path = tmp_path / "torn.jsonl"
    path.write_text(tear(uninterrupted), encoding="utf-8")
    _, judge, resumed = judge_to(path, scripted())
    assert (resumed["torn_tail_kept"], resumed["torn_tail_cut"], resumed["records"]) == (kept, cut, 10 - cut)
    assert judge.stats.comparisons == cut
    assert path.read_text(encoding="utf-8") == uninterrupted


def test_a_different_chunk_size_resumes_the_same_records(tmp_path, uninterrupted):
    path = tmp_path / "j.jsonl"
    path.write_text("".join(uninterrupted.splitlines(keepends=True)[:4]), encoding="utf-8")
    judge_rows_to_jsonl(scripted(), rows(), StepJudgeConfig(), path, chunk_size=7, progress_label=None,
                        model="scripted")
    assert path.read_text(encoding="utf-8") == uninterrupted


@pytest.mark.parametrize("change,message", [
    ({"model": "another"}, "model: 'scripted' in the file, 'another' now"),
    ({"config": StepJudgeConfig(debias=False)}, "debias: True in the file, False now"),
    ({"config": StepJudgeConfig(mode="likelihood")}, "mode: 'logprob' in the file, 'likelihood' now"),
    ({"data": [{**rows()[0], "step_a": "q=2"}, *rows()[1:]]}, "row 0 was made for another input item (step_a"),
    ({"data": rows(3)}, "row 3, which is not among the 3 items"),
])
def test_a_changed_setting_or_input_is_not_taken_for_the_same_run(tmp_path, uninterrupted, change, message):
    path = tmp_path / "j.jsonl"
    path.write_text(uninterrupted, encoding="utf-8")
    kwargs = {"model": change.get("model", "scripted")}
    with pytest.raises(StaleOutputError, match=re.escape(message)):
        judge_rows_to_jsonl(scripted(), change.get("data") or rows(), change.get("config") or StepJudgeConfig(),
                            path, chunk_size=3, progress_label=None, **kwargs)
    assert path.read_text(encoding="utf-8") == uninterrupted, "a refused resume must not touch the file"


def test_the_judge_eval_stage_resumes_and_says_so(tmp_path):
    whole, killed = tmp_path / "whole.jsonl", tmp_path / "killed.jsonl"
    first = judge_eval_stage(scripted(), rows(), StepJudgeConfig(), whole, model="M1", chunk_size=4,
                             show_progress=False)
    assert "resumed" not in first
    with pytest.raises(Killed):
        judge_eval_stage(scripted(fail_after=1), rows(), StepJudgeConfig(), killed, model="M1", chunk_size=4,
                         show_progress=False)
    again = judge_eval_stage(scripted(), rows(), StepJudgeConfig(), killed, model="M1", chunk_size=4,
                             show_progress=False)
    assert again.pop("resumed")["records"] == 4
    assert again == first
    assert killed.read_text() == whole.read_text()


# ------------------------------------------------------------------------------- prm-sr judge -o


@pytest.fixture
def loader(monkeypatch):
    """``prm-sr judge`` loads the scripted model; ``state["fail_after"]`` makes the next one die."""
    state = {"fail_after": None}
    monkeypatch.setattr("prm_selfreward.models.config.load_generator",
                        lambda spec, backend="hf", **kw: scripted(state["fail_after"]))
    return state


def _input(tmp_path):
    src = tmp_path / "pairs.jsonl"
    lines = [json.dumps(r) for r in rows()]
    lines.insert(4, "{broken")  # a malformed input line: input_line keys, not positions, match records
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return src


def test_the_judge_command_resumes_after_a_kill(tmp_path, loader):
    src = _input(tmp_path)
    whole, killed = tmp_path / "whole.jsonl", tmp_path / "killed.jsonl"
    args = ["judge", "-i", str(src), "--model", "fake", "--chunk-size", "3"]
    result = CliRunner().invoke(app, [*args, "-o", str(whole)])
    assert result.exit_code == 0, result.output
    loader["fail_after"] = 2
    result = CliRunner().invoke(app, [*args, "-o", str(killed)])
    assert isinstance(result.exception, Killed)
    assert "judge logprob: stopped at 6/10 comparisons" in result.stdout  # the last progress line says where
    loader["fail_after"] = None
    result = CliRunner().invoke(app, [*args, "-o", str(killed)])
    assert result.exit_code == 0, result.output
    assert "(6 found done and kept)" in result.stderr and "4 comparison(s) judged in this run" in result.stderr
    assert killed.read_text() == whole.read_text()
    assert [json.loads(line)["input_line"] for line in killed.read_text().splitlines()] == [1, 2, 3, 4, 6, 7, 8, 9,
                                                                                             10, 11]
    # Another judge setting on the same file stops with the difference; --overwrite starts over.
    result = CliRunner().invoke(app, [*args, "-o", str(killed), "--no-debias"])
    assert result.exit_code != 0 and "debias: True in the file, False now" in str(result.exception)
    result = CliRunner().invoke(app, [*args, "-o", str(killed), "--no-debias", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert json.loads(killed.read_text().splitlines()[0])["made_by"]["debias"] is False


def test_the_judge_command_refuses_its_input_as_output(tmp_path, loader):
    src = _input(tmp_path)
    result = CliRunner().invoke(app, ["judge", "-i", str(src), "-o", str(src)])
    assert result.exit_code != 0 and "--output must differ from --input" in str(result.exception)


def test_generate_mode_rows_keep_what_the_judge_wrote(tmp_path):
    """An unparsable verdict is counted (-1) and readable: the row keeps both orders' outputs."""
    said = iter(f"I cannot tell ({k})." for k in range(100))
    gen = ScriptedGenerator(generate_fn=lambda prompt, n, params: [next(said) for _ in range(n)])
    judged_rows, _, _ = judge_rows_to_jsonl(gen, rows(2), StepJudgeConfig(mode="generate"), tmp_path / "g.jsonl",
                                            progress_label=None, model="scripted")
    assert [r["predicted"] for r in judged_rows] == [-1, -1]
    assert [r["judgment"] for r in judged_rows] == ["I cannot tell (0).\n=====\nI cannot tell (2).",
                                                    "I cannot tell (1).\n=====\nI cannot tell (3)."]
    logprob_rows, _, _ = judge_to(tmp_path / "l.jsonl", scripted(), rows(2))
    assert all("judgment" not in r for r in logprob_rows)
