"""``prm-sr judge``: records in, verdicts out in input order, malformed lines skipped, accuracy printed."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from prm_selfreward.cli import app
from prm_selfreward.models import ScriptedGenerator

SHOWN = re.compile(r"\[The Start of Step ([AB])\]\n(.*?)\n\[The End of Step \1\]", re.S)


def quality(text: str) -> float:
    m = re.search(r"q=(\d+)", text)
    return float(m.group(1)) if m else 0.0


def fake_generator() -> ScriptedGenerator:
    """log P(A) - log P(B) after '[[' = quality of the step shown first - quality of the second."""

    def score(prompt, continuation):
        found = dict(SHOWN.findall(prompt))
        diff = quality(found["A"]) - quality(found["B"])
        return [-math.log1p(math.exp(-diff)) if continuation == "A" else -math.log1p(math.exp(diff))]

    return ScriptedGenerator(score_fn=score)


@pytest.fixture
def fake_loader(monkeypatch):
    calls = []

    def load(spec, backend="hf", **kwargs):
        calls.append((spec, backend, kwargs))
        return fake_generator()

    monkeypatch.setattr("prm_selfreward.models.config.load_generator", load)
    return calls


def record(a: str, b: str, label=None, **extra):
    row = {"question": "What is 2 + 3?", "previous_steps": ["Step 1: We add."], "step_a": a, "step_b": b}
    if label is not None:
        row["label"] = label
    return json.dumps({**row, **extra})


def test_judge_writes_verdicts_in_input_order_and_reports_accuracy(tmp_path, fake_loader):
    lines = [
        record("q=3", "q=1", label=0, id="first"),
        "{broken",
        record("q=1", "q=4", label=1, id="second"),
        json.dumps({"question": "Q", "step_a": "a", "step_b": "b"}),  # no previous_steps
        json.dumps({"question": "Q", "previous_steps": "not a list", "step_a": "a", "step_b": "b"}),
        record("q=2", "q=1", label=1, id="third"),  # the judge gets this one wrong
        record("q=1", "q=2", id="unlabelled"),
        "",
    ]
    src = tmp_path / "pairs.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "judged.jsonl"
    result = CliRunner().invoke(
        app, ["judge", "--input", str(src), "--model", "fake", "--output", str(out), "--batch-size", "3"]
    )
    assert result.exit_code == 0, result.output
    assert [(spec, backend, kw["batch_size"]) for spec, backend, kw in fake_loader] == [("fake", "hf", 3)]
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["first", "second", "third", "unlabelled"]
    assert [r["verdict"] for r in rows] == [0, 1, 0, 1]
    assert rows[0]["probability"] == pytest.approx(1 / (1 + math.exp(-2)))
    assert all(r["consistent"] is True for r in rows)
    assert rows[0]["previous_steps"] == ["Step 1: We add."]  # the input fields are kept
    err = result.stderr
    assert "3 malformed line(s)" in err
    for n in (2, 4, 5):
        assert f"line {n}:" in err
    assert "accuracy 66.7% (2/3 labelled" in err


def test_judge_to_stdout_without_labels(tmp_path, fake_loader):
    src = tmp_path / "pairs.jsonl"
    src.write_text(record("q=1", "q=2") + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["judge", "-i", str(src), "--mode", "generate", "--no-debias"])
    # the scripted generator has no generate_fn: generate mode must fail loudly, not silently
    assert result.exit_code != 0
    result = CliRunner().invoke(app, ["judge", "-i", str(src)])
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["verdict"] == 1
    assert "accuracy" not in result.stderr


@pytest.mark.parametrize(
    "args,content,message",
    [
        (["--input", "/no/such.jsonl"], None, "does not exist"),
        (["--mode", "votes"], record("a", "b"), "--mode (judge.mode: 'votes' is not one of"),
        ([], "{broken\n", "no usable records"),
        (["--batch-size", "0"], record("a", "b"), "--batch-size (model.batch_size: must be at least 1"),
    ],
)
def test_judge_user_errors(tmp_path, args, content, message):
    src = tmp_path / "pairs.jsonl"
    if content is not None:
        src.write_text(content, encoding="utf-8")
    if "--input" not in args:
        args = ["--input", str(src), *args]
    proc = subprocess.run(
        [sys.executable, "-m", "prm_selfreward.cli", "judge", "--model", "/no/model", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_judge_missing_model_is_a_user_error(tmp_path):
    src = tmp_path / "pairs.jsonl"
    src.write_text(record("a", "b") + "\n", encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "prm_selfreward.cli",
            "judge",
            "--input",
            str(src),
            "--model",
            "./no/such/model",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_judge_on_the_tiny_model(tmp_path, tiny_model_dir):
    src = tmp_path / "pairs.jsonl"
    src.write_text(
        record("2 + 3 = 5.", "2 + 3 = 6.", label=0) + "\n" + record("x", "y") + "\n", encoding="utf-8"
    )
    out = tmp_path / "judged.jsonl"
    result = CliRunner().invoke(
        app, ["judge", "-i", str(src), "-m", str(tiny_model_dir), "--mode", "likelihood", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 2 and all(r["verdict"] in (0, 1) for r in rows), rows
    assert all(0.5 <= r["probability"] <= 1 for r in rows), rows
    assert "accuracy" in result.stderr, result.stderr


def test_eft_records_keep_their_gold_verdict_as_label(tmp_path, fake_loader):
    src = tmp_path / "eft_heldout.jsonl"
    src.write_text(
        record("q=1", "q=3", verdict=1) + "\n" + record("q=1", "q=3", verdict=0) + "\n", encoding="utf-8"
    )
    out = tmp_path / "judged.jsonl"
    result = CliRunner().invoke(app, ["judge", "-i", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["label"], r["verdict"]) for r in rows] == [(1, 1), (0, 1)]
    assert "accuracy 50.0% (1/2 labelled" in result.stderr
