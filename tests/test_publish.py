"""`prm-sr publish`: refusals and torn files (the finished-run case is in test_loop.py)."""

from __future__ import annotations

import json

import pytest

from prm_selfreward.errors import UserError
from prm_selfreward.io import read_jsonl
from prm_selfreward.publish import publish_run


def _run(tmp_path):
    run = tmp_path / "run"
    (run / "iter_0" / "eval").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"stages": {}}))
    rows = [{"id": "gsm8k/test/0", "prompt": "Q0", "completion": "Step 1: 4", "correct": True},
            {"id": "gsm8k/test/1", "prompt": "Q1", "completion": "Step 1: 5", "correct": False}]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (run / "iter_0" / "eval" / "gsm8k.jsonl").write_text(text + '{"id": "gsm8k/te')  # torn tail
    return run


def test_torn_tail_is_counted_and_the_rest_published(tmp_path):
    counts = publish_run(_run(tmp_path), tmp_path / "out")
    assert counts == {"files": 2, "records": 2, "malformed_lines": 1}
    assert read_jsonl(tmp_path / "out" / "iter_0" / "eval" / "gsm8k.jsonl") == [
        {"id": "gsm8k/test/0", "completion": "Step 1: 4", "correct": True},
        {"id": "gsm8k/test/1", "completion": "Step 1: 5", "correct": False}]


def test_refuses_a_folder_that_is_no_run(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        publish_run(tmp_path, tmp_path / "out")


def test_refuses_an_output_inside_the_run(tmp_path):
    run = _run(tmp_path)
    with pytest.raises(UserError, match="inside the run directory"):
        publish_run(run, run / "published")


def test_published_judge_rows_pair_by_row_number(tmp_path):
    """Without their text, published held-out rows are matched by ``row``, whatever the file order."""
    from prm_selfreward.report import judge_items
    from prm_selfreward.stats import paired_by_key

    first = [{"row": i, "verdict": i % 2, "predicted": 0} for i in range(4)]
    second = [{"row": i, "verdict": i % 2, "predicted": 0} for i in (3, 2, 1, 0)]  # right on rows 0 and 2
    for name, rows in (("a.jsonl", first), ("b.jsonl", second)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    cmp = paired_by_key(judge_items(tmp_path / "a.jsonl"), judge_items(tmp_path / "b.jsonl"))
    # Matched by file order the two would disagree on all four rows.
    assert (cmp.n, cmp.both, cmp.neither, cmp.only_first, cmp.only_second) == (4, 2, 2, 0, 0)


def test_copies_are_atomic_and_write_through_a_symlink(tmp_path, monkeypatch):
    """A publish killed mid-copy leaves the old file whole (no half PNG, no temp file); a symlink in the
    output folder is written through, not replaced."""
    import shutil

    run = _run(tmp_path)
    (run / "report.png").write_bytes(b"\x89PNG new plot")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.png").write_bytes(b"\x89PNG old plot")

    def torn(src, dst, length=0):
        dst.write(src.read(5))
        raise KeyboardInterrupt  # a kill in the middle of the copy

    monkeypatch.setattr(shutil, "copyfileobj", torn)
    with pytest.raises(KeyboardInterrupt):
        publish_run(run, out)
    assert (out / "report.png").read_bytes() == b"\x89PNG old plot"
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []
    monkeypatch.undo()

    target = tmp_path / "site" / "manifest.json"
    target.parent.mkdir()
    target.write_text("{}")
    (out / "manifest.json").symlink_to(target)
    publish_run(run, out)
    assert (out / "report.png").read_bytes() == b"\x89PNG new plot"
    assert (out / "manifest.json").is_symlink() and json.loads(target.read_text()) == {"stages": {}}


def test_a_special_source_file_is_refused_not_copied(tmp_path):
    import os

    from prm_selfreward.io import atomic_copy

    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UserError, match="is a FIFO"):
        atomic_copy(tmp_path / "pipe", tmp_path / "copy")
    assert not (tmp_path / "copy").exists()
