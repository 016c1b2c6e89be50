"""Progress a person can watch in a log (issue 24): plain lines with done/total, rate and ETA whenever
stdout is not a terminal, at every 5% and at least every interval; the rich bar on a terminal."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

from prm_selfreward.errors import UserError
from prm_selfreward.progress import INTERVAL_ENV, ProgressReporter, format_duration, progress_interval

LINE = re.compile(r"^\d\d:\d\d:\d\d (?P<label>.+?): (?P<text>.*)$")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def texts(stream: io.StringIO) -> list[str]:
    out = []
    for line in stream.getvalue().splitlines():
        m = LINE.match(line)
        assert m, f"not a progress line: {line!r}"
        out.append(m["text"])
    return out


def reporter(total, stream, clock, **kwargs) -> ProgressReporter:
    return ProgressReporter("eval gsm8k", total, unit="problems", stream=stream, clock=clock, interval=30.0, **kwargs)


def test_lines_at_start_every_five_percent_and_at_the_end():
    out, clock = io.StringIO(), Clock()
    with reporter(40, out, clock) as bar:
        for _ in range(4):  # 5% of 40 is 2 problems: a line at 2 and 4 only
            clock.now += 30
            bar.advance(1)
    assert texts(out) == [
        "started, 40 problems",
        "2/40 problems (5%), 2.0 problems/min, elapsed 1m00s, ETA 19m00s",
        "4/40 problems (10%), 2.0 problems/min, elapsed 2m00s, ETA 18m00s",
        "done, 4/40 problems in 2m00s (2.0 problems/min)",
    ]


def test_a_silent_interval_gets_a_heartbeat_line_and_a_quick_one_does_not():
    out, clock = io.StringIO(), Clock()
    bar = reporter(10, out, clock)  # not started: no background thread racing this test's clock
    assert bar.mode == "lines"
    clock.now += 29
    assert not bar.heartbeat()
    clock.now += 2
    assert bar.heartbeat()
    assert texts(out) == ["0/10 problems (0%), no problems done yet, elapsed 31s, ETA ?, still working"]


def test_the_background_thread_writes_heartbeats():
    out = io.StringIO()
    with ProgressReporter("audit", 3, unit="pairs", stream=out, interval=0.02):
        for _ in range(500):  # liveness, not timing: wait up to 5 s for the first heartbeat
            if "still working" in out.getvalue():
                break
            time.sleep(0.01)
    assert "still working" in out.getvalue()
    assert texts(out)[-1].startswith("done, 0/3 pairs")


def test_items_found_done_count_in_the_total_not_in_the_rate():
    out, clock = io.StringIO(), Clock()
    with reporter(20, out, clock, done=10) as bar:
        clock.now += 60
        bar.advance(1)
    lines = texts(out)
    assert lines[0] == "started, 20 problems (10 done before)"
    assert lines[1] == "11/20 problems (55%), 1.0 problems/min, elapsed 1m00s, ETA 9m00s"
    out, clock = io.StringIO(), Clock()
    with reporter(20, out, clock) as bar:  # the search reports what it found done in its first callback
        bar.on_search_chunk(10, 20)
        clock.now += 6
        bar.on_search_round(1, 3)
        bar.on_search_chunk(12, 20)
    assert texts(out)[1:] == ["resuming, 10/20 problems already done",
                              "12/20 problems (60%), 20.0 problems/min, elapsed 6s, ETA 24s, round 1, 3 active",
                              "done, 12/20 problems in 6s (20.0 problems/min)"]


def test_an_exception_ends_with_where_it_stopped():
    out, clock = io.StringIO(), Clock()
    with pytest.raises(KeyboardInterrupt), reporter(8, out, clock) as bar:
        bar.advance(3)
        raise KeyboardInterrupt
    assert texts(out)[-1] == "stopped at 3/8 problems after 0s (KeyboardInterrupt)"


def test_unknown_total_has_no_percentage_or_eta():
    out, clock = io.StringIO(), Clock()
    with ProgressReporter("train", None, unit="steps", stream=out, clock=clock, interval=30.0) as bar:
        clock.now += 31
        bar.heartbeat()
    assert texts(out)[1] == "0 steps, no steps done yet, elapsed 31s, still working"


def test_a_terminal_gets_the_bar_and_no_lines():
    term = Terminal()
    with ProgressReporter("eval gsm8k", 4, unit="problems", stream=term) as bar:
        assert bar.mode == "bar"
        bar.advance(4)
    assert "eval gsm8k" in term.getvalue() and "4/4" in term.getvalue()
    assert "started," not in term.getvalue() and "problems/" not in term.getvalue()


def test_disabled_writes_nothing():
    out = io.StringIO()
    with ProgressReporter("x", 3, stream=out, enabled=False) as bar:
        bar.advance(3)
    assert out.getvalue() == ""


@pytest.mark.parametrize("seconds,text", [(0, "0s"), (59.4, "59s"), (61, "1m01s"), (3600 + 7 * 60, "1h07m")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("value,expected", [("", 30.0), ("5", 5.0), (" 0.5 ", 0.5)])
def test_interval_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv(INTERVAL_ENV, value)
    assert progress_interval() == expected


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan", "inf"])
def test_a_bad_interval_is_one_clear_error(monkeypatch, value):
    monkeypatch.setenv(INTERVAL_ENV, value)
    with pytest.raises(UserError, match=f"{INTERVAL_ENV}=.* is not a number of seconds above 0"):
        progress_interval()


# ------------------------------------------------------------- a real stage, stdout a pipe or a terminal

EVAL_SCRIPT = textwrap.dedent("""
    import sys
    from prm_selfreward.evaluate import EvalConfig
    from prm_selfreward.models import ScriptedGenerator
    from prm_selfreward.stages import eval_stage

    generator = ScriptedGenerator(generate_fn=lambda prompt, n, params: ["Step 1: \\\\boxed{3}"] * n)
    config = EvalConfig(benchmarks=["gsm8k"], limit={"gsm8k": 6}, chunk_size=2, few_shot=0)
    eval_stage(generator, config, sys.argv[1], data_dir=sys.argv[2], model_name="M1")
    print("finished")
""")


def _run_eval(tmp_path, data_dir, stdout):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(p) for p in sys.path if p])}
    return subprocess.run([sys.executable, "-c", EVAL_SCRIPT, str(tmp_path / "eval"), str(data_dir)],
                          stdout=stdout, stderr=subprocess.PIPE, env=env, timeout=300)


def test_the_eval_stage_writes_progress_lines_into_a_pipe(tmp_path, data_dir):
    proc = _run_eval(tmp_path, data_dir, subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert lines[-1] == "finished"
    progress = [LINE.match(line) for line in lines[:-1]]
    assert all(progress) and {m["label"] for m in progress} == {"eval M1 gsm8k"}, lines
    body = [m["text"] for m in progress]
    assert body[0] == "started, 6 problems" and body[-1].startswith("done, 6/6 problems in ")
    for n, pct in ((2, 33), (4, 67), (6, 100)):
        assert any(re.fullmatch(rf"{n}/6 problems \({pct}%\), [\d.]+ problems/(s|min), elapsed \d+s, ETA \d+s", t)
                   for t in body), body
    # A resumed run says what it found done.
    proc = _run_eval(tmp_path, data_dir, subprocess.PIPE)
    assert "started, 6 problems (6 done before)" in proc.stdout.decode()


def test_the_eval_stage_shows_the_bar_on_a_terminal(tmp_path, data_dir):
    import pty

    leader, follower = pty.openpty()
    try:
        proc = _run_eval(tmp_path, data_dir, follower)
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert proc.returncode == 0, proc.stderr.decode()
    shown = b"".join(chunks).decode(errors="replace")
    assert "eval M1 gsm8k" in shown and "6/6" in shown
    assert "started," not in shown and "problems/" not in shown
