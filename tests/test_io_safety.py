"""io.py at the edges: writes that never replace what a path is, torn tails that never lose a complete
record, readers that survive any one line, and JSON that stays JSON (issue 17, findings 1, 3, 4, 6)."""

from __future__ import annotations

import json
import math
import os
import stat

import pytest

from prm_selfreward.errors import UserError
from prm_selfreward.io import (
    JsonlAppender,
    JsonlErrors,
    atomic_write_json,
    atomic_write_text,
    check_output_path,
    json_dumps,
    read_jsonl,
    repair_torn_tail,
    write_jsonl,
)

# ------------------------------------------------------------------ finding 1: special files and links


def test_atomic_write_through_a_symlink_keeps_the_link_and_writes_its_target(tmp_path):
    target = tmp_path / "real" / "out.jsonl"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    write_jsonl(link, [{"a": 1}])
    assert link.is_symlink(), "the link was replaced by a regular file"
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.jsonl"]  # no temp left beside it


def test_atomic_write_through_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "new.json")
    atomic_write_json(link, {"x": 1})
    assert link.is_symlink() and json.loads((tmp_path / "new.json").read_text()) == {"x": 1}


def test_atomic_write_keeps_the_targets_permissions(tmp_path):
    path = tmp_path / "shared.txt"
    path.write_text("old")
    path.chmod(0o644)
    atomic_write_text(path, "new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_new_file_gets_the_umask_permissions_not_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "fresh.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "fresh.txt").stat().st_mode) == 0o644


def _fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    "make,kind,message",
    [
        (lambda tmp: _fifo(tmp), "file", "is a FIFO"),
        (lambda tmp: tmp, "file", "is a directory"),
        (lambda tmp: (tmp / "f").write_text("x") and tmp / "f", "dir", "is not a directory"),
        (lambda tmp: _link(tmp, _fifo(tmp)), "file", "is a FIFO"),
    ],
)
def test_special_outputs_are_refused_up_front(tmp_path, make, kind, message):
    path = make(tmp_path)
    with pytest.raises(UserError, match=message):
        check_output_path(path, kind=kind)


def _link(tmp, target):
    link = tmp / "to-target"
    link.symlink_to(target)
    return link


@pytest.mark.parametrize("write", [
    lambda p: atomic_write_text(p, "x"),
    lambda p: write_jsonl(p, [{"a": 1}]),
    lambda p: JsonlAppender(p).close(),
])
def test_writers_refuse_a_fifo_instead_of_replacing_or_blocking_on_it(tmp_path, write):
    path = _fifo(tmp_path)
    with pytest.raises(UserError, match="is a FIFO"):
        write(path)
    assert stat.S_ISFIFO(path.lstat().st_mode), "the FIFO was replaced"


def test_ordinary_outputs_pass(tmp_path):
    assert check_output_path(tmp_path / "new.jsonl") == tmp_path / "new.jsonl"
    assert check_output_path(tmp_path, kind="dir") == tmp_path
    assert check_output_path(tmp_path / "new-dir", kind="dir") == tmp_path / "new-dir"


# ---------------------------------------------------------- finding 3: torn tails at the byte boundary


@pytest.mark.parametrize(
    "tail,kept,cut,rows",
    [
        ('{"i": 1}', 1, 0, [{"i": 0}, {"i": 1}, {"i": 2}]),  # every byte but the newline: a record
        ('{"i": 1', 0, 1, [{"i": 0}, {"i": 2}]),  # one byte short: torn
        ('{"i": 1, "tor', 0, 1, [{"i": 0}, {"i": 2}]),
        ("", 0, 0, [{"i": 0}, {"i": 2}]),
    ],
)
def test_torn_tail_keeps_a_complete_record_and_cuts_only_a_partial_one(tmp_path, tail, kept, cut, rows):
    path = tmp_path / "x.jsonl"
    write_jsonl(path, [{"i": 0}])
    with open(path, "a") as handle:
        handle.write(tail)
    with JsonlAppender(path) as out:
        assert (out.repair.kept, out.repair.cut) == (kept, cut)
        out.append({"i": 2})
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows


def test_repair_is_idempotent_and_reads_agree_with_it(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"i": 0}\n{"i": 1}')
    first = repair_torn_tail(path)
    assert (first.kept, first.cut) == (1, 0) and path.read_text().endswith("}\n")
    again = repair_torn_tail(path)
    assert (again.kept, again.cut) == (0, 0)
    assert read_jsonl(path) == [{"i": 0}, {"i": 1}]


# ------------------------------------------------------------ finding 4: one bad line costs one line


def test_reader_survives_every_kind_of_bad_line(tmp_path):
    path = tmp_path / "x.jsonl"
    lines = [
        b'{"ok": 1}',
        b'{"bad": "\xff\xfe"}',  # invalid UTF-8
        b'{"lone": "\\ud800"}',  # a lone surrogate escape: parses, but is not text
        b'{"big": ' + b"9" * 5000 + b"}",  # over Python's 4300-digit int limit
        b"[" * 100_000 + b"]" * 100_000,  # 100k-deep nesting
        b'{"pair": "\\ud83d\\ude00"}',  # a surrogate pair is a real character (an emoji)
        '{"sep": "a\u2028b"}'.encode(),  # U+2028 inside a string is valid JSON
        b'{"ok": 2}',
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    errors = JsonlErrors()
    rows = read_jsonl(path, errors)
    assert rows == [{"ok": 1}, {"pair": "\U0001f600"}, {"sep": "a\u2028b"}, {"ok": 2}]
    assert [n for n, _ in errors.errors] == [2, 3, 4, 5]
    messages = dict(errors.errors)
    assert "UTF-8" in messages[2]
    assert "surrogate" in messages[3]
    assert "digits" in messages[4]
    assert "nest" in messages[5]


def test_reader_accepts_a_utf8_bom_on_the_first_line(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n')
    errors = JsonlErrors()
    assert read_jsonl(path, errors) == [{"a": 1}, {"a": 2}] and not errors


# ------------------------------------------------------------------ finding 6: NaN stays valid JSON


@pytest.mark.parametrize(
    "value,expected",
    [
        (math.nan, None),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        ({"gold": [1.5, math.nan], "s": "NaN in a string"}, {"gold": [1.5, None], "s": "NaN in a string"}),
        ({"text": "lone \ud800"}, {"text": "lone \ud800"}),  # escaped, so the line still encodes
    ],
)
def test_json_dumps_writes_only_standard_json(value, expected):
    text = json_dumps(value)
    text.encode("utf-8")  # never a lone surrogate in what we write
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} written")) == expected


def test_every_writer_goes_through_the_safe_encoder(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"x": math.nan}])
    atomic_write_json(tmp_path / "b.json", {"x": math.inf})
    with JsonlAppender(tmp_path / "c.jsonl") as out:
        out.append({"x": -math.inf, "t": "\udcff"})
    for name in ("a.jsonl", "b.json", "c.jsonl"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert "NaN" not in text and "Infinity" not in text.replace('"Infinity"', "").replace('"-Infinity"', "")


def test_atomic_write_removes_temps_left_by_a_killed_writer_only(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "summary.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left_by_dead = tmp_path / f".summary.json.{int(dead.stdout)}.abcd.tmp"  # a SIGKILL mid-write leaves this
    left_by_dead.write_text("half")
    live = tmp_path / f".summary.json.{os.getppid()}.efgh.tmp"  # a live writer's temp: not ours to remove
    live.write_text("busy")
    atomic_write_json(path, {"x": 1})
    assert not left_by_dead.exists() and live.exists()
    assert json.loads(path.read_text()) == {"x": 1}
