"""The run directory: resolved config, a manifest of stages, and resumable stage execution.

The directory's layout is :class:`~prm_selfreward.layout.RunLayout`'s (every path named there once).

A stage is marked ``done`` only after its outputs are written (atomically, or appended record by
record and then sealed); a stage found ``running`` on resume was interrupted and runs again, picking up
its appended records where it can (evaluation, search) or starting clean (training writes to a temp
dir and renames).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .io import atomic_write_json

T = TypeVar("T")


class Manifest:
    def __init__(self, run_dir: Path, data: dict[str, Any] | None = None):
        self.path = run_dir / "manifest.json"
        self.data: dict[str, Any] = data or {"stages": {}}

    @classmethod
    def load(cls, run_dir: Path) -> Manifest:
        import json

        path = run_dir / "manifest.json"
        if path.exists():
            return cls(run_dir, json.loads(path.read_text(encoding="utf-8")))
        return cls(run_dir)

    def save(self) -> None:
        atomic_write_json(self.path, self.data)

    @property
    def stages(self) -> dict[str, dict[str, Any]]:
        return self.data.setdefault("stages", {})

    def is_done(self, name: str) -> bool:
        return self.stages.get(name, {}).get("status") == "done"

    def result(self, name: str) -> Any:
        return self.stages.get(name, {}).get("result")

    def run(self, name: str, fn: Callable[[], T], log: Callable[[str], None] | None = None) -> T | Any:
        """Run stage ``name`` unless it is already done; record status, wall time and its result.

        A stage resumed after an interruption records ``attempts`` (2 for one resume) and
        ``first_started``; its ``wall_time_s`` is the last attempt's, since a killed attempt leaves
        no end time."""
        if self.is_done(name):
            if log:
                log(f"[dim]skip {name} (done)[/]")
            return self.result(name)
        entry = self.stages.setdefault(name, {})
        resumed = entry.get("status") == "running"
        if resumed:  # the interrupted attempt's time is unknown: count attempts, keep the first start
            entry["attempts"] = int(entry.get("attempts", 1)) + 1
            entry.setdefault("first_started", entry.get("started"))
        entry.update(status="running", started=time.time())
        self.save()
        if log:
            log(f"[bold cyan]{name}[/]" + (" (resuming an interrupted stage)" if resumed else ""))
        start = time.perf_counter()
        result = fn()
        entry.update(
            status="done",
            finished=time.time(),
            wall_time_s=round(time.perf_counter() - start, 2),
            result=result,
        )
        self.save()
        return result
