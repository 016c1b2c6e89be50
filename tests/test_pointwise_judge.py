"""The pointwise 5-point judge: score parsing, averaging, batching, configurable template and regex."""

from __future__ import annotations

import re

import pytest

from prm_selfreward.errors import UserError
from prm_selfreward.judges.pointwise import (
    PointwiseJudge,
    PointwiseJudgeConfig,
    ScoreResult,
    default_template,
    judge_message,
    load_template,
    parse_score,
)
from prm_selfreward.models import ScriptedGenerator


@pytest.mark.parametrize(
    "text,expected",
    [
        ("The response is fine.\nScore: 4", 4.0),
        ("Score: 4/5", 4.0),
        ("score: 3.5", 3.5),
        ("SCORE:2", 2.0),
        ("**Score:** 5", 5.0),
        ("**Score: 3**", 3.0),
        ("__Score:__ 1", 1.0),
        ("Score: 0", 0.0),
        ("Score: 4.", 4.0),
        ("Justification ... Score:   5\n", 5.0),
        # several: the last one is the conclusion
        ("It could deserve Score: 2, but on reflection ... Score: 4", 4.0),
        ("Score: 5 at first.\nScore: 1", 1.0),
        # out of range, or a number the regex must not cut short
        ("Score: 7", None),
        ("Score: 10", None),
        ("Score: 5.5", None),
        ("Score: -1", None),
        # garbage
        ("", None),
        ("I give it four points.", None),
        ("Score: <total points>", None),
        ("Score: four", None),
        ("4", None),
        ("(>_<) ####", None),
        # an invalid last match wins over an earlier valid one: the conclusion is what counts
        ("Score: 3 ... Score: 9", None),
    ],
)
def test_parse_score_forms(text: str, expected: float | None) -> None:
    assert parse_score(text) == expected


@pytest.mark.parametrize(
    "pattern,text,expected",
    [
        (r"Rating:\s*(\d+)", "Rating: 3", 3.0),
        (r"Rating:\s*(\d+)", "Score: 3", None),
        (r"\[\[(\d)\]\]", "I think [[2]] is right", 2.0),
        (r"final_score=(\d)", "final_score=4", 4.0),
    ],
)
def test_parse_score_custom_pattern(pattern: str, text: str, expected: float | None) -> None:
    assert parse_score(text, pattern) == expected


@pytest.mark.parametrize("pattern", [r"Score: \d", r"(Score): (\d)", r"Score: ([0-5"])
def test_bad_score_pattern_is_a_user_error(pattern: str) -> None:
    with pytest.raises(UserError):
        PointwiseJudge(ScriptedGenerator(lambda p, n, params: ["x"] * n), score_pattern=pattern)


def test_default_template_is_the_additive_5_point_prompt() -> None:
    template = default_template()
    assert template.startswith(
        "Review the user's question and the corresponding response using the additive 5-point"
    )
    assert template.count("\n- ") >= 7  # five criteria + two closing instructions
    assert "up to 100 words" in template
    assert '"Score: <total points>"' in template
    assert "{prompt}" in template and "{response}" in template


def test_judge_message_fills_braces_once() -> None:
    template = "Q: {prompt}\nA: {response}\n"
    message = judge_message(template, "What is {response}?", r"It is \boxed{5}.")
    assert message == "Q: What is {response}?\nA: It is \\boxed{5}.\n"


def test_template_file(tmp_path) -> None:
    good = tmp_path / "t.txt"
    good.write_text("Rate {response} for {prompt}. Rating: N", encoding="utf-8")
    assert load_template(good).startswith("Rate")
    bad = tmp_path / "bad.txt"
    bad.write_text("Rate {response}.", encoding="utf-8")
    with pytest.raises(UserError, match=r"\{prompt\}"):
        load_template(bad)
    with pytest.raises(UserError, match="not found"):
        load_template(tmp_path / "missing.txt")


def _judge_generator(outputs_by_response: dict[str, list[str]]) -> ScriptedGenerator:
    """A judge model that answers according to which response the message holds."""

    def generate(prompt: str, n: int, params) -> list[str]:
        for key, outs in outputs_by_response.items():
            if f"<response>{key}</response>" in prompt:
                assert len(outs) == n
                return outs
        raise AssertionError("unexpected judge prompt")

    return ScriptedGenerator(generate, template="<user>{message}</user>")


def test_score_averages_parsable_samples_in_one_call() -> None:
    gen = _judge_generator(
        {
            "good": ["Fine. Score: 5", "Score: 4", "Score: 4"],
            "mixed": ["Score: 2", "no idea", "**Score:** 3"],
            "garbage": ["@@@", "Score: 9", ""],
        }
    )
    judge = PointwiseJudge(gen, samples=3, temperature=0.7)
    results = judge.score(["q1", "q2", "q3"], ["good", "mixed", "garbage"])
    assert [r.mean for r in results] == [pytest.approx(13 / 3), 2.5, None]
    assert [r.samples for r in results] == [[5.0, 4.0, 4.0], [2.0, None, 3.0], [None, None, None]]
    assert [r.unparsable for r in results] == [0, 1, 3]
    assert results[1].raw == ["Score: 2", "no idea", "**Score:** 3"]
    # one batched generate call, n = samples, chat template applied to the judge message
    assert len(gen.generate_calls) == 1
    prompts, n = gen.generate_calls[0]
    assert n == 3 and len(prompts) == 3
    assert prompts[0].startswith("<user>Review the user's question") and prompts[0].endswith("</user>")
    assert "User: q2\n<response>mixed</response>" in prompts[1]


def test_score_passes_sampling_params() -> None:
    seen = []

    def generate(prompt, n, params):
        seen.append(params)
        return ["Score: 1"] * n

    judge = PointwiseJudge.from_config(
        ScriptedGenerator(generate), PointwiseJudgeConfig(samples=2, temperature=0.3, top_p=0.8, seed=7)
    )
    results = judge.score(["q"], ["r"])
    assert results[0].samples == [1.0, 1.0]
    assert seen[0].temperature == 0.3 and seen[0].top_p == 0.8 and seen[0].seed == 7
    assert "\nUser:" in seen[0].stop


def test_from_config_reads_template_file_and_pattern(tmp_path) -> None:
    path = tmp_path / "judge.txt"
    path.write_text("Question: {prompt}\nAnswer: {response}\nGive 'Rating: N'.", encoding="utf-8")
    config = PointwiseJudgeConfig(samples=1, template_file=str(path), score_pattern=r"Rating:\s*(\d)")

    def generate(prompt, n, params):
        assert prompt.startswith("Question: q\nAnswer: r")
        return ["Rating: 2 (Score: 5)"]

    judge = PointwiseJudge.from_config(ScriptedGenerator(generate), config)
    assert judge.score(["q"], ["r"])[0].mean == 2.0


def test_score_empty_and_mismatched() -> None:
    judge = PointwiseJudge(ScriptedGenerator(lambda p, n, params: ["Score: 1"] * n))
    assert judge.score([], []) == []
    with pytest.raises(ValueError):
        judge.score(["a"], [])


@pytest.mark.parametrize(
    "samples,mean",
    [([4.0, None, 2.0], 3.0), ([None, None], None), ([1.5], 1.5), ([0.0, 0.0, 0.0], 0.0)],
)
def test_score_result_mean(samples, mean) -> None:
    assert ScoreResult.from_samples(samples, [""] * len(samples)).mean == mean


# ---------------------------------------------------------------------------------------------------
# prm-sr score


def _run_score(monkeypatch, tmp_path, lines: list[str], *args: str):
    import json

    from typer.testing import CliRunner

    from prm_selfreward.cli import app
    from prm_selfreward.models import config as loading

    def generate(prompt, n, params):
        response = prompt.split("<response>", 1)[1].split("</response>", 1)[0]
        return {"great": ["Score: 5", "Score: 4", "Score: 5"], "poor": ["Score: 1", "??", "Score: 2"]}.get(
            response, ["nothing"] * n
        )[:n]

    loaded = []

    def fake_load(spec, backend="hf", **kwargs):
        loaded.append((spec, backend, kwargs))
        return ScriptedGenerator(generate)

    monkeypatch.setattr(loading, "load_generator", fake_load)
    path = tmp_path / "responses.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["score", "--input", str(path), "--model", "fake", *args])
    out = tmp_path / "responses.scored.jsonl"
    rows = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else None
    return result, rows, loaded


def test_score_cli_writes_scores_and_skips_malformed(monkeypatch, tmp_path) -> None:
    lines = [
        '{"id": 1, "prompt": "q1", "response": "great"}',
        "not json",
        '{"id": 2, "question": "q2", "response": "poor"}',
        '{"id": 3, "prompt": "q3"}',
        '{"id": 4, "prompt": "q4", "response": "garbage"}',
        "[1, 2]",
    ]
    result, rows, loaded = _run_score(monkeypatch, tmp_path, lines)
    assert result.exit_code == 0, result.output
    assert loaded[0][0] == "fake"
    assert [r["id"] for r in rows] == [1, 2, 4]
    assert rows[0]["score"] == pytest.approx(14 / 3) and rows[0]["samples"] == [5.0, 4.0, 5.0]
    assert rows[1]["score"] == 1.5 and rows[1]["samples"] == [1.0, None, 2.0]
    assert rows[2]["score"] is None and rows[2]["samples"] == [None, None, None]
    assert "judge_raw" not in rows[0]
    assert "3 malformed line(s)" in result.output and "line 2" in result.output and "line 4" in result.output
    assert "unparsable samples" in result.output and re.search(r"unparsable samples\s*│\s*4", result.output)


def test_score_cli_samples_and_raw(monkeypatch, tmp_path) -> None:
    result, rows, _ = _run_score(
        monkeypatch, tmp_path, ['{"prompt": "q", "response": "great"}'], "--samples", "2", "--keep-raw"
    )
    assert result.exit_code == 0, result.output
    assert rows[0]["samples"] == [5.0, 4.0] and rows[0]["judge_raw"] == ["Score: 5", "Score: 4"]


def test_score_cli_bad_pattern_fails_before_loading(monkeypatch, tmp_path) -> None:
    result, rows, loaded = _run_score(
        monkeypatch, tmp_path, ['{"prompt": "q", "response": "great"}'], "--score-pattern", "Score: \\d"
    )
    assert isinstance(result.exception, UserError) and loaded == [] and rows is None


def test_score_cli_missing_input(tmp_path) -> None:
    from typer.testing import CliRunner

    from prm_selfreward.cli import app

    result = CliRunner().invoke(app, ["score", "--input", str(tmp_path / "nope.jsonl")])
    assert isinstance(result.exception, UserError)
