"""Tables and plots across iterations: ``report.md`` and ``report.png`` in a run directory.

Everything is read back from the run directory (manifest, eval summaries, judge evaluations, pair
stats), so ``prm-sr report RUN_DIR`` rebuilds the report of a finished, running or killed run, and
``prm-sr report RUN_A RUN_B`` puts runs side by side (e.g. the math and instruct variants).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .io import atomic_write_text
from .layout import RunLayout


@dataclass
class ModelRow:
    """One model of one run: M0, M1, ..."""

    run: str
    t: int
    benchmarks: dict[str, dict[str, Any]] = field(default_factory=dict)
    judge: dict[str, Any] | None = None
    pairs: dict[str, Any] | None = None
    search: dict[str, Any] | None = None
    stage_times: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"M{self.t}"


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _read_json(path: Path, damaged: list[str]) -> Any:
    """The JSON in ``path``; None if it does not exist. A file that is not UTF-8 text or not valid
    JSON is added to ``damaged`` (with why) and read as None."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        damaged.append(f"{path}: not UTF-8 text (byte {exc.start + 1}; a binary file?)")
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        damaged.append(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}; truncated?)")
    except (RecursionError, ValueError) as exc:
        damaged.append(f"{path}: invalid JSON ({exc})")
    return None


def _manifest_problem(manifest: Any) -> str | None:
    """Why ``manifest`` is not a usable manifest.json, or None."""
    if not isinstance(manifest, dict):
        return f"expected a JSON object, got {type(manifest).__name__}"
    stages = manifest.get("stages", {})
    if not isinstance(stages, dict):
        return f"'stages' must be an object of stages, got {type(stages).__name__}"
    for name, entry in stages.items():
        if not isinstance(entry, dict):
            return f"stage {name!r} must be an object, got {type(entry).__name__}"
        if "wall_time_s" in entry and not _is_number(entry["wall_time_s"]):
            return f"stage {name!r}: 'wall_time_s' must be a number, got {entry['wall_time_s']!r}"
        if entry.get("result") is not None and not isinstance(entry["result"], (dict, list)):
            return f"stage {name!r}: 'result' must be an object, got {type(entry['result']).__name__}"
        if name.startswith("judge_eval/") and isinstance(entry.get("result"), dict):
            for key in ("accuracy", "ci_low", "ci_high", "consistency"):
                value = entry["result"].get(key)
                if value is not None and not _is_number(value):
                    return f"stage {name!r}: result {key!r} must be a number, got {value!r}"
    return None


SUMMARY_NUMBERS = ("accuracy", "ci_low", "ci_high", "total", "avg_steps", "avg_tokens")


def _summary_problem(summary: Any) -> str | None:
    """Why ``summary`` is not a usable eval/summary.json, or None."""
    if not isinstance(summary, dict):
        return f"expected a JSON object, got {type(summary).__name__}"
    benchmarks = summary.get("benchmarks", {})
    if not isinstance(benchmarks, dict):
        return f"'benchmarks' must be an object, got {type(benchmarks).__name__}"
    for name, s in benchmarks.items():
        if not isinstance(s, dict):
            return f"benchmark {name!r} must be an object, got {type(s).__name__}"
        for key in SUMMARY_NUMBERS:
            if not _is_number(s.get(key)):
                return f"benchmark {name!r}: {key!r} must be a number, got {s.get(key)!r}"
    return None


def collect(run_dir: str | Path) -> list[ModelRow]:
    """One row per model found in ``run_dir`` (an unfinished stage simply leaves its cells empty).

    Raises :class:`~prm_selfreward.errors.UserError` naming every damaged file (a truncated or binary
    manifest.json or eval/summary.json, or one whose fields have the wrong types): a report built
    around a damaged file would show blank or stale results as if they were the run's.
    """
    run_dir = Path(run_dir)
    damaged: list[str] = []
    layout = RunLayout(run_dir)
    manifest = _read_json(layout.manifest, damaged)
    if manifest is not None and (why := _manifest_problem(manifest)):
        damaged.append(f"{layout.manifest}: {why}")
        manifest = None
    stages: dict[str, Any] = (manifest or {}).get("stages", {})
    iters = layout.iterations()
    rows = []
    for t in iters:
        row = ModelRow(run=run_dir.name, t=t)
        path = layout.eval_summary(t)
        summary = _read_json(path, damaged)
        if summary is not None and (why := _summary_problem(summary)):
            damaged.append(f"{path}: {why}")
            summary = None
        if summary:
            row.benchmarks = summary.get("benchmarks", {})
        judge = stages.get(f"judge_eval/M{t}", {})
        row.judge = judge.get("result") if judge.get("status") == "done" else None
        pairs = stages.get(f"pairs/M{t}", {})
        row.pairs = pairs.get("result") if pairs.get("status") == "done" else None
        search = stages.get(f"search/M{t}", {})
        row.search = search.get("result") if search.get("status") == "done" else None
        for name, entry in stages.items():
            if name.split("/", 1)[-1].split(" ")[0] == f"M{t}" and "wall_time_s" in entry:
                row.stage_times[name.split("/", 1)[0]] = entry["wall_time_s"]
        if row.benchmarks or row.judge or row.pairs or row.stage_times:
            rows.append(row)
    if damaged:
        raise UserError(
            "cannot build the report, damaged file(s): " + "; ".join(damaged)
            + " (re-run the stage that writes it, or restore it)"
        )
    return rows


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _acc_cell(s: dict[str, Any] | None) -> str:
    if not s:
        return "-"
    return f"{_pct(s['accuracy'])} [{_pct(s['ci_low'])}, {_pct(s['ci_high'])}] (n={s['total']})"


def markdown(rows: list[ModelRow], title: str = "Run report") -> str:
    benchmarks: list[str] = []
    for row in rows:
        for name in row.benchmarks:
            if name not in benchmarks:
                benchmarks.append(name)
    multi = len({r.run for r in rows}) > 1
    lines = [f"# {title}", ""]
    lines.append("Accuracy in %, with the 95% Wilson interval and the number of problems. Judge: accuracy on")
    lines.append("the held-out EFT pairs (task math: the pairwise step judge; task instruct: the 5-point judge")
    lines.append("scoring the better response higher). Small CPU runs have wide intervals: read them, not the points.")
    lines.append("")
    head = (["run"] if multi else []) + ["model"] + benchmarks + ["judge", "judge consistency"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for row in rows:
        cells = ([row.run] if multi else []) + [row.name]
        cells += [_acc_cell(row.benchmarks.get(b)) for b in benchmarks]
        cells.append(_acc_cell(row.judge) if row.judge and "ci_low" in row.judge else
                     _pct(row.judge.get("accuracy")) if row.judge else "-")
        cells.append(_pct(row.judge.get("consistency")) if row.judge else "-")
        lines.append("| " + " | ".join(cells) + " |")

    lines += ["", "## Solutions (reward-hacking monitor: length growing without accuracy)", ""]
    head = (["run"] if multi else []) + ["model"] + [f"{b} steps / tokens" for b in benchmarks]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for row in rows:
        cells = ([row.run] if multi else []) + [row.name]
        for b in benchmarks:
            s = row.benchmarks.get(b)
            cells.append(f"{s['avg_steps']:.2f} / {s['avg_tokens']:.0f}" if s else "-")
        lines.append("| " + " | ".join(cells) + " |")

    pair_rows = [r for r in rows if r.pairs or r.search]
    if pair_rows:
        lines += ["", "## Preference pairs (made by M(t-1) to train M(t))", ""]
        keys = ["pairs", "ties", "rollbacks", "judge_failures", "judge_consistency", "generated_tokens",
                "dropped_identical", "dropped_duplicate", "prompts_kept", "unparsable_scores", "mean_score"]
        present = [k for k in keys if any(k in (r.pairs or {}) or k in (r.search or {}) for r in pair_rows)]
        head = (["run"] if multi else []) + ["model"] + present
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for row in pair_rows:
            merged = {**(row.search or {}), **(row.pairs or {})}
            cells = ([row.run] if multi else []) + [row.name] + [str(merged.get(k, "-")) for k in present]
            lines.append("| " + " | ".join(cells) + " |")

    stage_names: list[str] = []
    for row in rows:
        for name in row.stage_times:
            if name not in stage_names:
                stage_names.append(name)
    if stage_names:
        lines += ["", "## Wall time per stage (seconds)", ""]
        head = (["run"] if multi else []) + ["model"] + stage_names + ["total"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        run_totals: dict[str, float] = {}
        for row in rows:
            row_total = sum(row.stage_times.values())
            run_totals[row.run] = run_totals.get(row.run, 0.0) + row_total
            cells = ([row.run] if multi else []) + [row.name]
            cells += [f"{row.stage_times[s]:.0f}" if s in row.stage_times else "-" for s in stage_names]
            cells.append(f"{row_total:.0f}")
            lines.append("| " + " | ".join(cells) + " |")
        for run, total in run_totals.items():
            label = f" ({run})" if multi else ""
            lines += ["", f"Total{label}, stages of the models above: {total:.0f} s = {total / 60:.0f} min."]
    return "\n".join(lines) + "\n"


def plot(rows: list[ModelRow], path: str | Path) -> None:
    """Accuracy per benchmark (with 95% intervals) and step-judge accuracy across iterations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(dict.fromkeys(r.run for r in rows))
    benchmarks = list(dict.fromkeys(b for r in rows for b in r.benchmarks))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for run in runs:
        mine = [r for r in rows if r.run == run]
        for k, b in enumerate(benchmarks):
            pts = [(r.t, r.benchmarks[b]) for r in mine if b in r.benchmarks]
            if not pts:
                continue
            # A small sideways offset per series keeps overlapping intervals readable.
            offset = 0.06 * (k - (len(benchmarks) - 1) / 2) + 0.02 * runs.index(run)
            xs = [t + offset for t, _ in pts]
            ys = [100 * s["accuracy"] for _, s in pts]
            err = [[100 * (s["accuracy"] - s["ci_low"]) for _, s in pts],
                   [100 * (s["ci_high"] - s["accuracy"]) for _, s in pts]]
            label = f"{b}" if len(runs) == 1 else f"{run}: {b}"
            axes[0].errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)
        jp = [(r.t, r.judge) for r in mine if r.judge and r.judge.get("accuracy") is not None]
        if jp:
            ys = [100 * j["accuracy"] for _, j in jp]
            err = [[100 * (j["accuracy"] - j.get("ci_low", j["accuracy"])) for _, j in jp],
                   [100 * (j.get("ci_high", j["accuracy"]) - j["accuracy"]) for _, j in jp]]
            axes[1].errorbar([t for t, _ in jp], ys, yerr=err, marker="s", capsize=3, label=run)
    axes[1].axhline(50, color="grey", linestyle=":", linewidth=1, label="chance (50%)")
    axes[0].set_title("Benchmark accuracy (greedy, 95% CI)")
    axes[1].set_title("Judge accuracy (held-out EFT pairs, 95% CI)")
    for ax in axes:
        ax.set_xlabel("model M(t)")
        ax.set_ylabel("%")
        ts = sorted({r.t for r in rows})
        ax.set_xticks(ts, [f"M{t}" for t in ts])
        ax.grid(alpha=0.3)
        ax.set_ylim(-2, 102)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def build_report(*run_dirs: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write ``report.md`` and ``report.png`` (into the run directory, or ``out_dir`` for several runs)."""
    if not run_dirs:
        raise ValueError("build_report needs at least one run directory")
    rows = [row for d in run_dirs for row in collect(d)]
    target = Path(out_dir) if out_dir else Path(run_dirs[0])
    title = "Run report: " + ", ".join(Path(d).name for d in run_dirs)
    atomic_write_text(target / "report.md", markdown(rows, title))
    if rows:
        plot(rows, target / "report.png")
    else:
        # No row left: an old plot would show results the report no longer has.
        (target / "report.png").unlink(missing_ok=True)
    return target / "report.md"


def print_report(console: Any, path: str | Path) -> None:
    """Show ``report.md`` on ``console``: rendered on a terminal; as the Markdown text itself otherwise, so
    a log file keeps every column (a rendered table is squeezed to the 80 columns of a non-terminal)."""
    text = Path(path).read_text(encoding="utf-8")
    if console.is_terminal:
        from rich.markdown import Markdown

        console.print(Markdown(text))
    else:
        console.print(text, markup=False, highlight=False, soft_wrap=True, end="")
