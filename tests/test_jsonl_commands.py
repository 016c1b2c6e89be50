"""``check``, ``split`` and ``judge`` on hostile input files: every bad line is reported with its line
number and skipped, the rest processed, output rows carry their input line, the summary is always
printed, and special output paths are refused before any work (issue 17, findings 1, 4, 6)."""

from __future__ import annotations

import json
import os

import pytest

from prm_selfreward.cli import main

# One good case, then one of each kind of bad line, then another good case (lines 1 .. 7).
HOSTILE = [
    b'{"gold": "3", "prediction": "\\\\boxed{3}", "id": "first"}',
    b'{"gold": "3", "prediction": "\xff"}',  # invalid UTF-8
    b'{"gold": "3", "prediction": "\\ud800"}',  # lone surrogate: used to crash the write after grading
    b'{"gold": ' + b"1" * 5000 + b', "prediction": "1"}',  # over the 4300-digit limit
    b"[" * 100_000 + b"]" * 100_000,  # 100k-deep nesting
    '{"gold": "a\u2028b", "prediction": "x"}'.encode(),  # U+2028 is fine inside JSON
    b'{"gold": "4", "prediction": "4", "id": "last"}',
]
BAD_LINES = {2: "UTF-8", 3: "surrogate", 4: "digits", 5: "nested"}


def run(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


def _hostile(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_bytes(b"\n".join(HOSTILE) + b"\n")
    return path


def test_check_grades_every_good_line_of_a_hostile_file(tmp_path, capsys):
    out = tmp_path / "graded.jsonl"
    code, stdout, err = run(["check", "-i", str(_hostile(tmp_path)), "-o", str(out), "--processes", "1"], capsys)
    assert code == 0, err
    # split("\n"), not splitlines(): a raw U+2028 inside a JSON string is not a line break.
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n") if line]
    assert [r["input_line"] for r in rows] == [1, 6, 7]
    assert [r["correct"] for r in rows] == [True, False, True]
    for number, word in BAD_LINES.items():
        assert any(f"line {number}:" in line and word in line for line in err.splitlines()), (number, err)
    assert "3 graded" in stdout and "4 malformed" in stdout


def test_check_writes_nan_gold_as_valid_json(tmp_path, capsys):
    src = tmp_path / "nan.jsonl"
    src.write_text('{"gold": NaN, "prediction": "1"}\n{"gold": Infinity, "prediction": "1"}\n')
    code, stdout, err = run(["check", "-i", str(src), "--processes", "1"], capsys)
    assert code == 0, err
    rows = [json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c}")) for line in stdout.splitlines()]
    assert [r["gold"] for r in rows] == [None, "Infinity"]


def test_check_summary_is_printed_even_when_grading_is_interrupted(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("prm_selfreward.grading.check_batch", interrupted)
    with pytest.raises((KeyboardInterrupt, SystemExit)):  # typer turns ^C into exit 130
        main(["check", "-i", str(_hostile(tmp_path)), "-o", str(tmp_path / "out.jsonl")])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "0 graded" in text and "4 malformed line(s) skipped" in text and "interrupted" in text


@pytest.mark.parametrize("kind", ["fifo", "dir", "fifo-link"])
def test_check_refuses_a_special_output_before_grading(tmp_path, capsys, monkeypatch, kind):
    graded = []
    monkeypatch.setattr("prm_selfreward.grading.check_batch", lambda *a, **k: graded.append(1) or [])
    target = tmp_path / "special"
    if kind == "dir":
        target.mkdir()
    else:
        os.mkfifo(target)
    out = target
    if kind == "fifo-link":
        out = tmp_path / "link"
        out.symlink_to(target)
    code, _, err = run(["check", "-i", str(_hostile(tmp_path)), "-o", str(out)], capsys)
    assert code == 2 and ("FIFO" in err or "directory" in err) and not graded


# --------------------------------------------------------------------------------------------- split


def _split(path, capsys, *args):
    code, out, err = run(["split", str(path), "--format", "line", *args], capsys)
    return code, [json.loads(line) for line in out.split("\n") if line.strip()], err


def test_split_a_bad_first_line_does_not_turn_jsonl_into_plain_text(tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    path.write_text('oops, not json\n{"solution": "a\\nb"}\n{"solution": "c"}\n', encoding="utf-8")
    code, rows, err = _split(path, capsys)
    assert code == 0
    assert rows == [{"steps": ["a\n", "b"], "input_line": 2}, {"steps": ["c"], "input_line": 3}]
    assert "line 1:" in err


def test_split_reads_jsonl_with_a_bom_and_keeps_u2028_lines(tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + b'{"solution": "x"}\n' + '{"solution": "p\u2028q"}\n'.encode() + b'{"solution": "\xff"}\n'
    )
    code, rows, err = _split(path, capsys)
    assert code == 0
    assert rows == [{"steps": ["x"], "input_line": 1}, {"steps": ["p\u2028q"], "input_line": 2}]
    assert "line 3:" in err and "UTF-8" in err


def test_split_plain_text_is_still_one_solution(tmp_path, capsys):
    path = tmp_path / "sol.txt"
    path.write_text("Step 1: a\nStep 2: b {not json}\n", encoding="utf-8")
    code, rows, _ = _split(path, capsys)
    assert code == 0 and rows == [{"steps": ["Step 1: a\n", "Step 2: b {not json}\n"]}]


# --------------------------------------------------------------------------------------------- judge


@pytest.fixture
def fake_loader(monkeypatch):
    from test_judge_cli import fake_generator

    calls = []

    def load(spec, backend="hf", **kwargs):
        calls.append(spec)
        return fake_generator()

    monkeypatch.setattr("prm_selfreward.models.config.load_generator", load)
    return calls


def test_judge_skips_hostile_lines_and_rows_carry_their_input_line(tmp_path, capsys, fake_loader):
    from test_judge_cli import record

    lines = [record("q=3", "q=1", label=0).encode(), *HOSTILE[1:5], record("q=1", "q=4", label=1).encode()]
    src = tmp_path / "pairs.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "judged.jsonl"
    code, _, err = run(["judge", "-i", str(src), "-o", str(out)], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["input_line"] for r in rows] == [1, 6]
    for number in BAD_LINES:
        assert f"line {number}:" in err
    assert "accuracy 100.0%" in err


def test_judge_refuses_a_fifo_output_before_loading_the_model(tmp_path, capsys, fake_loader):
    from test_judge_cli import record

    src = tmp_path / "pairs.jsonl"
    src.write_text(record("a", "b") + "\n")
    os.mkfifo(tmp_path / "pipe")
    code, _, err = run(["judge", "-i", str(src), "-o", str(tmp_path / "pipe")], capsys)
    assert code == 2 and "FIFO" in err and fake_loader == []


def test_eval_refuses_a_file_as_its_output_directory_before_loading_the_model(tmp_path, capsys, monkeypatch):
    loaded = []
    monkeypatch.setattr("prm_selfreward.models.config.load_generator", lambda *a, **k: loaded.append(a))
    (tmp_path / "file").write_text("x")
    code, _, err = run(["eval", "gsm8k", "-o", str(tmp_path / "file")], capsys)
    assert code == 2 and "is not a directory" in err and loaded == []
