"""``prm-sr check``: one pair (exit codes) and a JSON Lines batch with malformed lines."""

from __future__ import annotations

import json

import pytest

from prm_selfreward.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


@pytest.mark.parametrize(
    "argv,code,needle",
    [
        (["check", "\\frac{1}{2}", "0.5"], 0, "equal"),
        (["check", "(1,2]", "(1,2)"], 1, "not_equal"),
        (["check", "x^2+2x+1", "(x+1)^2"], 0, "equal"),
        (["check", "x^2+2x+1", "(x-1)^2"], 1, "not_equal"),
        (["check", "18", "She sells 9 eggs for $2 each.\n#### 18", "--benchmark", "gsm8k"], 0, "equal"),
        (["check", "5", "The final answer is \\boxed{"], 1, "no_answer"),
        (["check", "4.2", "4.2\\%", "--unit", "%"], 0, "equal"),
        # A bare answer is the answer, never its last number.
        (["check", "x^2+1", "x^2+1"], 0, "equal"),
        (["check", "2", "x^2+2"], 1, "not_equal"),
    ],
)
def test_single_pair(argv, code, needle, capsys):
    got, out, _ = run(argv, capsys)
    assert got == code, out
    assert out.split()[0] == needle


@pytest.mark.parametrize(
    "argv,message",
    [
        (["check", "1", "1", "--benchmark", "mmlu"], "unknown benchmark"),
        (["check", "1"], "give GOLD and PREDICTION"),
        (["check", "1", "1", "--input", "x.jsonl"], "not both"),
        (["check", "--input", "does-not-exist.jsonl"], "does not exist"),
        (["check", "1", "1", "--timeout", "0"], "--timeout"),
    ],
)
def test_user_errors_exit_2_with_one_line(argv, message, capsys):
    code, _, err = run(argv, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


CASES = [
    '{"gold": "\\\\frac{1}{2}", "prediction": "The answer is $0.5$."}',
    '{"gold": "18", "prediction": "Janet makes 18 dollars.\\n#### 18", "benchmark": "gsm8k"}',
    "this line is not JSON",
    '{"gold": ["$69$", "$84$"], "prediction": "\\\\boxed{84, 69}", "benchmark": "olympiadbench"}',
    '{"prediction": "5"}',
    '{"gold": "x^2+2x+1", "prediction": "\\\\boxed{(x+1)^2}"}',
    "",
    '{"gold": "5", "prediction": "5", "benchmark": "mmlu"}',
    "[1, 2]",
    '{"gold": "[2,3)", "prediction": "(2,3)"}',
    '{"gold": 27.0, "prediction": "\\\\boxed{27}", "benchmark": "amc23"}',
    '{"gold": "166", "prediction": "\\\\boxed{166 cm^2}", "benchmark": "olympiadbench", "unit": "$cm^2$"}',
    '{"gold": "5", "prediction": null}',
    '{"gold": true, "prediction": "1"}',
]
EXPECTED = [  # (line number, correct, reason) of the well-formed lines, in input order
    (1, True, "equal"),
    (2, True, "equal"),
    (4, True, "equal"),
    (6, True, "equal"),
    (10, False, "not_equal"),
    (11, True, "equal"),
    (12, True, "equal"),
    (13, False, "no_answer"),
]
MALFORMED = {
    3: "invalid JSON",
    5: "missing field",
    8: "unknown benchmark",
    9: "expected a JSON object",
    14: "'gold'",
}


def test_batch_file(tmp_path, capsys):
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(CASES) + "\n", encoding="utf-8")
    out_path = tmp_path / "graded.jsonl"
    code, out, err = run(["check", "--input", str(cases), "--output", str(out_path)], capsys)
    assert code == 0
    rows = [json.loads(line) for line in out_path.read_text(encoding="utf-8").splitlines()]
    inputs = [json.loads(CASES[n - 1]) for n, _, _ in EXPECTED]
    assert [
        {k: r[k] for k in inp} for r, inp in zip(rows, inputs, strict=True)
    ] == inputs  # order, fields kept
    assert [(r["correct"], r["reason"]) for r in rows] == [(c, r) for _, c, r in EXPECTED]
    for number, message in MALFORMED.items():
        assert f"line {number}:" in err and message in err
    assert len(err.strip().splitlines()) >= len(MALFORMED)
    assert "8 graded" in out and "5 malformed" in out
    assert "olympiadbench" in out and "accuracy" in out  # the summary table


def test_batch_to_stdout(tmp_path, capsys):
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        '{"gold": "3", "prediction": "\\\\boxed{3}"}\n{"gold": "3", "prediction": "4"}\n', encoding="utf-8"
    )
    code, out, err = run(["check", "--input", str(cases)], capsys)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["correct"] for r in rows] == [True, False]
    assert "2 graded" in err


def test_package_log_lines_reach_stderr_at_the_configured_level(monkeypatch, capsys):
    """Training stages report their loss through ``logging``: the CLI must show INFO lines, and honour
    ``PRM_SR_LOG_LEVEL`` (a bad value is a user error, not a traceback)."""
    import logging

    from prm_selfreward.cli import configure_logging

    logger = logging.getLogger("prm_selfreward.train.sft")
    monkeypatch.delenv("PRM_SR_LOG_LEVEL", raising=False)
    configure_logging()
    configure_logging()  # twice: still one handler, so each line appears once
    logger.info("step 3/20: loss 1.25")
    err = capsys.readouterr().err
    assert err.count("step 3/20: loss 1.25") == 1

    monkeypatch.setenv("PRM_SR_LOG_LEVEL", "warning")
    configure_logging()
    logger.info("hidden info line")
    logger.warning("shown warning line")
    err = capsys.readouterr().err
    assert "hidden info line" not in err and "shown warning line" in err

    monkeypatch.setenv("PRM_SR_LOG_LEVEL", "chatty")
    code, _, err = run(["check", "1", "1"], capsys)
    assert code == 2 and "PRM_SR_LOG_LEVEL" in err and "Traceback" not in err
    monkeypatch.delenv("PRM_SR_LOG_LEVEL")
    configure_logging()
