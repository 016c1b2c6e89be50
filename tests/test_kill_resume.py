"""Robustness: SIGKILL `prm-sr iterate --smoke` at random points (one in the first 30% of a run, where
evaluation of M0 and the seed data are being written), resume each time, and get the same artifacts
as an uninterrupted run with the same seed: same records, pairs, counts, eval and seed summaries and
config.yaml, no lost or duplicated records, and no temp file left behind. Runs the real CLI in
subprocesses on the tiny in-process model."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _cmd(run_dir: Path, model: Path, data_dir: Path, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "prm_selfreward.cli", "iterate", "--smoke", "--model", str(model),
           "--run-dir", str(run_dir), "--data-dir", str(data_dir),
           "--set", "model.trim_vocab=false"]  # trimming is tested in test_trim.py; here it would shift the kills
    return cmd + (["--resume"] if resume else [])


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


TIMING = ("wall_time_s", "seconds", "train_runtime", "train_samples_per_second", "train_steps_per_second")
# What only an interrupted run has: how many records a resume reused, torn tails it kept or cut.
RESUME_ONLY = ("resumed",)


def _without_timing(value: object) -> object:
    """Stage results minus wall-clock measurements, resume counts and paths that name the run directory."""
    if isinstance(value, dict):
        drop = TIMING + RESUME_ONLY + ("out_dir", "files", "base_model")
        return {k: _without_timing(v) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


# Names our writers give temp files: atomic writes (.NAME.XXXX.tmp, the plot included; older versions: report.tmp.png), a
# model being trained (.model.partial).
TEMP = re.compile(r"(^\..*\.tmp$)|(\.tmp\.png$)|(\.partial$)")


def _artifacts(run_dir: Path) -> dict[str, object]:
    """Everything a run produced that must not depend on interruptions (times and paths removed)."""
    out: dict[str, object] = {}
    for path in sorted(run_dir.rglob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        # Files appended record by record (resumable stages) must hold each problem exactly once;
        # their order may differ after a resume. Everything else is written whole and compared as is.
        key = {"search.jsonl": "problem_id", "problems.jsonl": "id"}.get(path.name)
        if path.parent.name == "eval":
            key = "id"
        if key:
            ids = [r[key] for r in rows]
            assert len(ids) == len(set(ids)), f"duplicated records in {path}"
            rows = sorted(rows, key=lambda r: str(r[key]))
        out[str(path.relative_to(run_dir))] = rows
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for name, stage in manifest["stages"].items():
        out[f"stage:{name}"] = (stage["status"], _without_timing(stage.get("result")))
    # Eval summaries (iter_<t>/eval/summary.json) and the seed summary, minus times and resume counts.
    for path in sorted(run_dir.rglob("summary.json")):
        out[str(path.relative_to(run_dir))] = _without_timing(json.loads(path.read_text()))
    out["config.yaml"] = (run_dir / "config.yaml").read_text()
    return out


def _temp_files(run_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if TEMP.search(p.name))


def test_sigkill_at_random_points_then_resume_matches_uninterrupted(tmp_path, tiny_model_dir, data_dir):
    clean = tmp_path / "clean"
    start = time.perf_counter()
    subprocess.run(_cmd(clean, tiny_model_dir, data_dir, False), check=True, env=_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
    # Kill times are fractions of the uninterrupted run's duration, so they fall inside the run on a
    # fast quiet machine and on a slow loaded one alike.
    duration = time.perf_counter() - start
    expected = _artifacts(clean)
    assert any(k.endswith("eval/summary.json") for k in expected) and "seed/summary.json" in expected

    killed = tmp_path / "killed"
    rng = random.Random(1234)
    kills = 0
    resume = False
    for _attempt in range(12):
        proc = subprocess.Popen(_cmd(killed, tiny_model_dir, data_dir, resume), env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        resume = True
        if kills < 3:
            # The first kill lands in the first 30% of a run (M0's evaluation, the seed data), the
            # others later (training, search, pairs).
            low, high = (0.05, 0.3) if kills == 0 else (0.3, 0.7)
            time.sleep(rng.uniform(low, high) * duration)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                continue
        assert proc.wait(timeout=900) == 0
        break
    else:
        pytest.fail("the killed run never finished")
    assert kills >= 1, "no kill landed: the run finished before the first kill"
    assert json.loads((killed / "manifest.json").read_text())["status"] == "finished"
    got = _artifacts(killed)
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == expected[key], f"{key} differs after kill/resume"
    assert _temp_files(killed) == [], "temp files left behind after kill/resume"
    assert _temp_files(clean) == []
