"""Tables and plots across iterations: ``report.md`` and ``report.png`` in a run directory.

Everything is read back from the run directory (manifest, eval summaries, judge evaluations, pair
stats), so ``prm-sr report RUN_DIR`` rebuilds the report of a finished, running or killed run, and
``prm-sr report RUN_A RUN_B`` puts runs side by side (e.g. the math and instruct variants).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .degeneracy import DEGENERATE_SHARE, LOOP_MIN_CHARS, LOOP_MIN_COPIES, Degeneracy, degeneracy
from .errors import UserError
from .io import atomic_write_bytes, atomic_write_text, read_jsonl
from .judges.base import missing_verdicts
from .layout import RunLayout
from .stats import PairedComparison, paired_by_key


@dataclass
class ModelRow:
    """One model of one run: M0, M1, ...

    ``items``: per item set (a benchmark, or ``judge <mode>``) the per-item correctness, keyed by
    problem id (benchmarks) or by the judged pair's text (judge rows), for the paired comparisons."""

    run: str
    t: int
    benchmarks: dict[str, dict[str, Any]] = field(default_factory=dict)
    judge: dict[str, Any] | None = None
    judge_modes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pairs: dict[str, Any] | None = None
    search: dict[str, Any] | None = None
    judge_select: dict[str, Any] | None = None
    audit: dict[str, Any] | None = None
    train: dict[str, Any] | None = None
    """The result of the stage that trained this model (``train/M<t> (SFT)`` or ``(DPO)``)."""
    stage_times: dict[str, float] = field(default_factory=dict)
    resumed_stages: set[str] = field(default_factory=set)
    """Stages of ``stage_times`` that ran in more than one attempt (their time is the last attempt's)."""
    items: dict[str, dict[str, bool]] = field(default_factory=dict)
    degeneracy: Degeneracy | None = None
    """Over every benchmark's completions: how many repeat a step or state several final answers (from
    the eval summaries, else counted from the eval records; None when neither has them)."""
    inherited_from: str | None = None
    """The run (its folder's name) this model's evaluations were restored from unchanged (``prm-sr
    restore``: a branch reuses its parent's M0), else None: the two rows are one measurement."""

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
    changes = manifest.get("config_changes", [])
    if not isinstance(changes, list):
        return f"'config_changes' must be a list, got {type(changes).__name__}"
    for i, change in enumerate(changes):
        if not (isinstance(change, dict) and _is_number(change.get("time")) and isinstance(change.get("set"), dict)
                and isinstance(change.get("was", {}), dict)):
            return f"config_changes[{i}] must be an object with a numeric 'time' and a 'set' object, got {change!r}"
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


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file (:func:`~prm_selfreward.io.read_jsonl`: a torn or bad line is
    skipped); a missing file gives none."""
    return read_jsonl(path) if path.exists() else []


def judge_item_key(row: dict[str, Any]) -> str:
    """A held-out judge row's identity: its question, previous steps and both candidates (so two runs'
    judge evaluations match on the pairs they share, and one run's models match row by row). A row
    published without its text (:mod:`prm_selfreward.publish`) is known by its ``row`` number."""
    if "question" not in row and "step_a" not in row and "row" in row:
        return f"row:{row['row']}"
    text = json.dumps([row.get("question"), row.get("previous_steps"), row.get("step_a"), row.get("step_b")])
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def eval_items(layout: RunLayout, t: int, benchmark: str) -> dict[str, bool]:
    """Problem id -> correct, from ``iter_<t>/eval/<benchmark>.jsonl``."""
    return _items(_read_rows(layout.eval_dir(t) / f"{benchmark}.jsonl"))


def _items(rows: list[dict[str, Any]]) -> dict[str, bool]:
    return {str(r["id"]): bool(r.get("correct")) for r in rows if "id" in r}


def model_degeneracy(
    benchmarks: dict[str, dict[str, Any]], records: dict[str, list[dict[str, Any]]]
) -> Degeneracy | None:
    """One model's degeneracy over all its benchmarks: each benchmark's counts from its summary, or (a
    run from before the summaries had them) counted from its eval ``records``; None if no benchmark
    has either."""
    total: Degeneracy | None = None
    for name, summary in benchmarks.items():
        found = Degeneracy.from_summary(summary)
        if found is None or found.degenerate_right is None or found.looping is None:
            # Counted from the records: a run from before the summaries had the counts, or before they
            # had degenerate_right or the loops (the summary's own counts still win where it has them).
            rows = [r for r in records.get(name, []) if isinstance(r.get("completion"), str)]
            counted = (degeneracy([r["completion"] for r in rows], [bool(r.get("correct")) for r in rows])
                       if rows else None)
            if found is None:
                found = counted
            elif counted is not None and counted.completions == found.completions:
                found.degenerate_completions = counted.degenerate_completions
                found.degenerate_right = counted.degenerate_right
                found.looping = counted.looping
        if found is not None:
            if total is None:
                total = replace(found)
            else:
                total.add(found)
    return total


def judge_items(path: Path) -> dict[str, bool]:
    """Judged-row key -> correct (``predicted == verdict``; a failed judgment is wrong)."""
    return _judged_items(_labelled_judge_rows(path))


def _labelled_judge_rows(path: Path) -> list[dict[str, Any]]:
    """The judged rows of ``path`` that carry a gold verdict."""
    return [r for r in _read_rows(path) if r.get("verdict") in (0, 1)]


def _judged_items(labelled: list[dict[str, Any]]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for r in labelled:
        key = judge_item_key(r)
        while key in out:  # the same pair twice in one file: keep both, in order
            key += "+"
        out[key] = r.get("predicted") == r["verdict"]
    return out


def collect(run_dir: str | Path) -> list[ModelRow]:
    """One row per model found in ``run_dir`` (an unfinished stage simply leaves its cells empty).

    Raises :class:`~prm_selfreward.errors.UserError` naming every damaged file (a truncated or binary
    manifest.json or eval/summary.json, or one whose fields have the wrong types): a report built
    around a damaged file would show blank or stale results as if they were the run's.
    """
    run_dir = Path(run_dir)
    damaged: list[str] = []
    layout = RunLayout(run_dir)
    manifest = _read_manifest(layout, damaged)
    stages: dict[str, Any] = (manifest or {}).get("stages", {})
    restored = (manifest or {}).get("restored")
    restored = restored if isinstance(restored, dict) and isinstance(restored.get("from"), str) else None

    def result(name: str) -> Any:
        entry = stages.get(name, {})
        return entry.get("result") if entry.get("status") == "done" else None

    rows = []
    for t in layout.iterations():
        row = ModelRow(run=run_dir.name, t=t)
        path = layout.eval_summary(t)
        summary = _read_json(path, damaged)
        if summary is not None and (why := _summary_problem(summary)):
            damaged.append(f"{path}: {why}")
            summary = None
        if summary:
            row.benchmarks = summary.get("benchmarks", {})
        records = {b: _read_rows(layout.eval_dir(t) / f"{b}.jsonl") for b in row.benchmarks}
        for b in row.benchmarks:
            row.items[b] = _items(records[b])
        row.degeneracy = model_degeneracy(row.benchmarks, records)
        row.judge = result(f"judge_eval/M{t}")
        if isinstance(row.judge, dict):
            primary = row.judge.get("mode")
            row.judge_modes = dict(row.judge.get("modes") or ({primary: row.judge} if primary else {}))
            for mode in row.judge_modes or {None: None}:
                labelled = _labelled_judge_rows(layout.judge_eval(t, mode, primary=primary))
                if labelled:
                    row.items[f"judge {mode or primary or ''}".strip()] = _judged_items(labelled)
                    if mode in row.judge_modes and "ties" not in row.judge_modes[mode]:
                        # A summary from before ties were told from failures: both counted from the rows.
                        row.judge_modes[mode] = {**row.judge_modes[mode], **missing_verdicts(labelled)}
        row.pairs = result(f"pairs/M{t}")
        row.search = result(f"search/M{t}")
        row.judge_select = result(f"judge_select/M{t}")
        row.audit = result(f"audit/M{t}")
        for name in stages:
            if name.split(" ")[0] == f"train/M{t}" and isinstance(trained := result(name), dict):
                row.train = trained
        for name, entry in stages.items():
            if name.split("/", 1)[-1].split(" ")[0] == f"M{t}" and "wall_time_s" in entry:
                stage = name.split("/", 1)[0]
                row.stage_times[stage] = entry["wall_time_s"]
                if _is_number(entry.get("attempts")) and entry["attempts"] > 1:
                    row.resumed_stages.add(stage)
        if restored is not None:
            evaluations = [n for n in (f"eval/M{t}", f"judge_eval/M{t}") if n in stages]
            if evaluations and not set(evaluations) & set(restored.get("dropped_stages") or []):
                row.inherited_from = Path(restored["from"]).name
        if row.benchmarks or row.judge or row.pairs or row.stage_times:
            rows.append(row)
    if damaged:
        raise _damaged(damaged)
    return rows


def _read_manifest(layout: RunLayout, damaged: list[str]) -> dict[str, Any] | None:
    """The run's manifest.json, checked; None if it is missing or damaged (then named in ``damaged``)."""
    manifest = _read_json(layout.manifest, damaged)
    if manifest is not None and (why := _manifest_problem(manifest)):
        damaged.append(f"{layout.manifest}: {why}")
        return None
    return manifest


def _damaged(damaged: list[str]) -> UserError:
    return UserError("cannot build the report, damaged file(s): " + "; ".join(damaged)
                     + " (re-run the stage that writes it, or restore it)")


@dataclass
class Difference:
    """One paired comparison of the report: ``first`` vs ``second`` on item set ``items``."""

    first: str
    second: str
    items: str
    comparison: PairedComparison


def _label(row: ModelRow, multi: bool) -> str:
    return f"{row.run} {row.name}" if multi else row.name


def paired_differences(rows: list[ModelRow]) -> list[Difference]:
    """Within each run: M(t) vs M(t-1) and M(t) vs M0 (t >= 2) on every item set both models have;
    across runs (several runs given): each later run's M(t) against the first run's M(t), on the items
    they share. Item sets with no shared item are left out, and so is a model compared with the run it
    was restored from on records that are the same (one measurement, not two: :func:`inherited_lines`)."""
    runs = list(dict.fromkeys(r.run for r in rows))
    multi = len(runs) > 1
    by_run = {run: {r.t: r for r in rows if r.run == run} for run in runs}
    plans: list[tuple[ModelRow, ModelRow]] = []
    for run in runs:
        models = by_run[run]
        for t in sorted(models):
            if t - 1 in models:
                plans.append((models[t], models[t - 1]))
            if t >= 2 and 0 in models:
                plans.append((models[t], models[0]))
    for run in runs[1:]:
        for t in sorted(set(by_run[run]) & set(by_run[runs[0]])):
            plans.append((by_run[run][t], by_run[runs[0]][t]))
    out = []
    for first, second in plans:
        for name in first.items:
            if name not in second.items:
                continue
            if name in _inherited_items(first, second):
                continue
            cmp = paired_by_key(first.items[name], second.items[name])
            if cmp.n:
                out.append(Difference(_label(first, multi), _label(second, multi), name, cmp))
    return out


def _inherited_items(row: ModelRow, parent: ModelRow) -> list[str]:
    """The item sets on which ``row`` is ``parent`` restored unchanged: same run and model, same records."""
    if row.inherited_from != parent.run or row.run == parent.run or row.t != parent.t:
        return []
    return [name for name, items in row.items.items() if items and parent.items.get(name) == items]


def inherited_lines(rows: list[ModelRow]) -> list[str]:
    """Which models of a multi-run report are their parent run's, restored unchanged, and on which item
    sets (left out of the paired differences with it)."""
    notes = [f"{row.run} {row.name} is {parent.run} {parent.name} ({', '.join(same)})"
             for row in rows for parent in rows if (same := _inherited_items(row, parent))]
    if not notes:
        return []
    return ["", "Restored unchanged from the parent run, so not compared with itself: " + "; ".join(notes) + "."]


def _row(cells: list[str]) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(cells) + " |"


def _head(columns: list[str]) -> list[str]:
    """A Markdown table's header line and its separator (one column each)."""
    return [_row(columns), "|" + "---|" * len(columns)]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _acc_cell(s: dict[str, Any] | None) -> str:
    if not s:
        return "-"
    return f"{_pct(s['accuracy'])} [{_pct(s['ci_low'])}, {_pct(s['ci_high'])}] (n={s['total']})"


def _signed(x: float) -> str:
    """Points with one decimal; a non-zero value that would print as 0.0 gets two (an interval bound
    of +0.05 that excludes zero must not read "+0.0")."""
    points = 100 * x
    return f"{points:+.2f}" if points and round(points, 1) == 0 else f"{points:+.1f}"


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def difference_lines(diffs: list[Difference]) -> list[str]:
    """The paired-differences table: a marked row (bold, *) has an interval that excludes zero."""
    lines = ["", "## Paired differences (same problems, same judge pairs)", "",
             "Accuracy of the first model minus the second's, in points, on the items both were scored on; "
             "95% interval by Newcombe's paired method (method 10 of Newcombe 1998), p by the exact McNemar "
             "test on the discordant items. Bold and marked *: the interval excludes zero.", "",
             "| first | second | on | n | first % | second % | difference [95% CI] | first only / second only | McNemar p |",
             "|---|---|---|---|---|---|---|---|---|"]
    for d in diffs:
        c = d.comparison
        cell = f"{_signed(c.diff)} [{_signed(c.ci_low)}, {_signed(c.ci_high)}]"
        if c.significant:
            cell = f"**{cell}** *"
        lines.append(f"| {d.first} | {d.second} | {d.items} | {c.n} | {_pct(c.acc1)} | {_pct(c.acc2)} | {cell} | "
                     f"{c.only_first} / {c.only_second} | {_p(c.p_value)} |")
    return lines


def judge_select_lines(rows: list[ModelRow], multi: bool) -> list[str]:
    """The search's judge: as ``judge_select/M<t>`` chose it (mode, why, and each probed mode's copy
    preference: the share of copy probes on which it picked the repeated step or the copied question),
    else the mode the search stage recorded (the run's ``judge.mode``)."""
    lines: list[str] = []
    for row in rows:
        chosen = row.judge_select
        who = f"{row.run} " if multi else ""
        if not isinstance(chosen, dict) or not chosen.get("mode"):
            search = row.search or {}
            if used := search.get("judge_mode"):
                both = "; both orders combined" if search.get("judge_debias") else ""
                lines.append(f"- {who}{row.name}'s search judged with **{used}**: the run's `judge.mode`, "
                             f"not chosen by measurement{both}.")
            continue
        probed = [f"{m} {_pct(f.get('copy_preference'))}" for m, f in (chosen.get("modes") or {}).items()
                  if isinstance(f, dict) and "copy_preference" in f]
        lines.append(f"- {who}{row.name}'s search judged with **{chosen['mode']}**: {chosen.get('reason', '')}"
                     + (f"; copy preference (chance 50): {', '.join(probed)}" if probed else "")
                     + ("; guards on" if chosen.get("guards") else "; guards off") + ".")
    return (["", "The search's judge (chosen by measurement with `judge_eval.select`):", "", *lines]) if lines else []


def judge_mode_lines(rows: list[ModelRow], multi: bool, shortcuts: dict[str, dict[str, Any]]) -> list[str]:
    """Step-judge accuracy per mode (the same held-out pairs; generate may be on a prefix of them),
    and the seed's shortcut audit: what trivial rules score on the same pairs."""
    modes = list(dict.fromkeys(m for r in rows for m in r.judge_modes))
    lines: list[str] = []
    if modes:
        lines += ["", "## Step judge by mode (held-out EFT pairs)", "",
                  "Accuracy in % [95% Wilson] (n), then the share of pairs judged the same in both orders "
                  "(position consistency; likelihood has no positions), and the pairs left without a verdict "
                  "(counted wrong): no verdict = neither order answered (unparsable); tied = the two orders "
                  "cancelled, the judge naming the same position whichever step stands there. The search uses the run's `judge.mode` (with `judge_eval.select`: the mode chosen below).", ""]
        head = (["run"] if multi else []) + ["model"] + modes
        lines += _head(head)
        for row in rows:
            if not row.judge_modes:
                continue
            cells = ([row.run] if multi else []) + [row.name]
            for m in modes:
                s = row.judge_modes.get(m)
                cons = s.get("consistency") if s else None
                cell = f"{_acc_cell(s)}; consistent {_pct(cons)}" if s and cons is not None else _acc_cell(s)
                for key, what in (("failures", "no verdict"), ("ties", "tied (same position both orders)")):
                    if s and _is_number(s.get(key)) and s[key] > 0:
                        cell += f"; {s[key]} {what}"
                cells.append(cell)
            lines.append(_row(cells))
    lines += judge_select_lines(rows, multi)
    for run, audit in shortcuts.items():
        if not audit:
            continue
        label = f" ({run})" if multi else ""
        lines += ["", f"Shortcut audit of the held-out pairs{label} (accuracy of trivial rules; a rule with no "
                  "preference on a pair scores 1/2 there): "
                  + "; ".join(f"{k.replace('_', ' ')} {_pct(v['accuracy'])}" for k, v in audit.items()
                              if isinstance(v, dict) and v.get("accuracy") is not None)
                  + ". \"Prefer the more likely step\" is the likelihood column above."]
    return lines


def audit_lines(rows: list[ModelRow], multi: bool) -> list[str]:
    """The pair audit: does the chosen step lead to the right answer more often than the rejected one?"""
    mine = [r for r in rows if r.audit]
    if not mine:
        return []
    lines = ["", "## Pair audit (rollouts by M(t-1) from prefix + chosen vs prefix + rejected)", "",
             "Per audited pair: the chosen step's success rate over its rollouts above, equal to or below the "
             "rejected step's; p: exact sign test of above vs below. Success: share of correct final answers "
             "over all rollouts [95% Wilson, rollouts of one pair are not independent: read it as descriptive].", "",
             *_head((["run"] if multi else []) + ["pairs of", "audited", "rollouts", "above", "equal", "below",
                                                  "sign p", "chosen success", "rejected success"])]
    for row in mine:
        a = row.audit or {}

        def success(side: str, a: dict[str, Any] = a) -> str:
            ci = a.get(f"{side}_ci") or [None, None]
            return f"{_pct(a.get(f'{side}_success'))} [{_pct(ci[0])}, {_pct(ci[1])}]"

        cells = ([row.run] if multi else []) + [row.name, str(a.get("pairs")), str(a.get("rollouts")),
                                                 str(a.get("above")), str(a.get("equal")), str(a.get("below")),
                                                 _p(a.get("sign_p", 1.0)), success("chosen"), success("rejected")]
        lines.append(_row(cells))
    return lines


def _number(x: Any, digits: int) -> str:
    return f"{x:.{digits}f}" if _is_number(x) else "-"


def training_lines(rows: list[ModelRow], multi: bool) -> list[str]:
    """How each model was trained and whether the training moved it: the final train loss and, for
    step-DPO, the reward accuracy and margin over training (a DPO loss near ln 2 with margins near 0
    means the policy hardly left its reference, so M(t) and M(t-1) can hardly differ)."""
    mine = [r for r in rows if r.train]
    if not mine:
        return []
    lines = ["", "## Training (how M(t) was made from M(t-1))", "",
             "Train loss: mean over the run's steps. DPO reward accuracy and margin: means over training of the "
             "share of pairs whose implicit reward (beta x log-ratio to the reference) ranks chosen above rejected, "
             "and of that reward's chosen-minus-rejected gap. A DPO loss near ln 2 = 0.693 with a margin near 0: "
             "the policy hardly moved from M(t-1).", "",
             *_head((["run"] if multi else []) + ["model", "kind", "peak lr", "records", "steps", "train loss",
                                                  "DPO reward accuracy", "DPO reward margin", "dropped"])]
    for row in mine:
        t = row.train or {}
        metrics = t.get("metrics") if isinstance(t.get("metrics"), dict) else {}
        dpo = t.get("kind") == "dpo"
        dropped = sum(t[k] for k in ("dropped_too_long", "dropped_empty") if _is_number(t.get(k)))
        cells = ([row.run] if multi else []) + [
            row.name, str(t.get("kind", "-")).upper() + (f" + {t['rpo_alpha']:g} x NLL" if t.get("rpo_alpha") else "")
            + (" (LoRA)" if t.get("lora") else ""),
            f"{t['learning_rate']:.0e}" if _is_number(t.get("learning_rate")) else "-",
            str(t.get("examples", "-")), str(t.get("steps", "-")), _number(t.get("train_loss"), 3),
            _pct(metrics.get("rewards/accuracies_mean")) if dpo and _is_number(metrics.get("rewards/accuracies_mean")) else "-",
            _number(metrics.get("rewards/margins_mean"), 4) if dpo else "-", str(dropped)]
        lines.append(_row(cells))
    return lines


@dataclass
class SettingChange:
    """One setting changed on a resumed run (``--set``, the manifest's ``config_changes``)."""

    run: str
    time: float
    key: str
    new: Any
    was: Any = None
    was_known: bool = False
    """False for a change recorded before the old value was kept, with no earlier change of the key."""
    next_stage: str | None = None
    """The first stage that started after the change (the first to run with the new value), if any."""


def setting_changes(run_dir: str | Path) -> list[SettingChange]:
    """The settings changed during the run in ``run_dir``, one per key and change, oldest first."""
    layout = RunLayout(Path(run_dir))
    damaged: list[str] = []
    manifest = _read_manifest(layout, damaged)
    if damaged:
        raise _damaged(damaged)
    if manifest is None:
        return []
    starts = sorted((entry["started"], name) for name, entry in manifest.get("stages", {}).items()
                    if _is_number(entry.get("started")))
    out: list[SettingChange] = []
    latest: dict[str, Any] = {}
    for change in sorted(manifest.get("config_changes", []), key=lambda c: c["time"]):
        following = next((name for started, name in starts if started >= change["time"]), None)
        was = change.get("was", {})
        for key, new in change["set"].items():
            known = key in was or key in latest
            out.append(SettingChange(layout.root.name, change["time"], key, new,
                                     was.get(key, latest.get(key)), known, following))
            latest[key] = new
    return out


def setting_text(value: Any) -> str:
    """A setting's value as the report and ``prm-sr restore`` print it (strings bare, the rest as JSON)."""
    return value if isinstance(value, str) else json.dumps(value)


def setting_change_lines(changes: list[SettingChange], multi: bool) -> list[str]:
    """The table of settings changed on resumed runs: which models were made with which value."""
    if not changes:
        return []
    from datetime import UTC, datetime

    lines = ["", "## Settings changed during the run (`--resume --set`)", "",
             "Each change applies to the stages run after it (from the stage named, the first to start after "
             "it); the stages before ran with the old value. Was -: recorded before the old value was kept.", "",
             *_head((["run"] if multi else []) + ["when (UTC)", "setting", "was", "set to", "first stage after"])]
    for c in changes:
        when = datetime.fromtimestamp(c.time, tz=UTC).strftime("%Y-%m-%d %H:%M")
        lines.append(_row(([c.run] if multi else []) + [
            when, f"`{c.key}`", setting_text(c.was) if c.was_known else "-", setting_text(c.new), c.next_stage or "none yet"]))
    return lines


def _right_of(d: Degeneracy) -> str:
    """'right / degenerate' completions, '-' where either count is unknown."""
    if d.degenerate_right is None or d.degenerate_completions is None:
        return "-"
    return f"{d.degenerate_right} / {d.degenerate_completions}"


def _degenerate(row: ModelRow) -> bool:
    return row.degeneracy is not None and row.degeneracy.degenerate


def degenerate_lines(rows: list[ModelRow], multi: bool) -> list[str]:
    """The sentence naming the degenerate models (see :mod:`prm_selfreward.degeneracy`), if any."""
    marked = [r for r in rows if _degenerate(r)]
    if not marked:
        return []
    parts = []
    for r in marked:
        d = r.degeneracy
        assert d is not None
        parts.append(f"{_label(r, multi)} ({_pct(d.repeated_step_share)}% of its {d.completions} completions "
                     f"repeat a step, {_pct(d.looping_share)}% loop, {_pct(d.several_answers_share)}% state "
                     "several final answers"
                     + (f"; {d.degenerate_right} of these {d.degenerate_completions} graded right"
                        if d.degenerate_right is not None and d.degenerate_completions is not None else "")
                     + ")")
    return ["", "**Degenerate:** " + "; ".join(parts) + f". Above {_pct(DEGENERATE_SHARE)}% in any, a "
            "model's accuracy may come from repeated or scattered answers that happen to hit the gold, not "
            "from solving: read its accuracy and its differences with care. At most the degenerate "
            "completions graded right can have come from them (the Solutions table); a greedy loop "
            "that runs into the token budget is simply wrong."]


def markdown(
    rows: list[ModelRow], title: str = "Run report", shortcuts: dict[str, dict[str, Any]] | None = None,
    changes: list[SettingChange] | None = None,
) -> str:
    """The report's Markdown: accuracies, paired differences, judge modes, pairs, audit, training, settings
    changed, stage times. ``shortcuts``: per run, the seed's shortcut audit (``seed/summary.json``);
    ``changes``: the settings changed on resumed runs (:func:`setting_changes`)."""
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
    lines += _head(head)
    for row in rows:
        cells = ([row.run] if multi else []) + [row.name + (" (degenerate)" if _degenerate(row) else "")]
        cells += [_acc_cell(row.benchmarks.get(b)) for b in benchmarks]
        cells.append(_acc_cell(row.judge) if row.judge and "ci_low" in row.judge else
                     _pct(row.judge.get("accuracy")) if row.judge else "-")
        cells.append(_pct(row.judge.get("consistency")) if row.judge else "-")
        lines.append(_row(cells))
    lines += degenerate_lines(rows, multi)

    diffs = paired_differences(rows)
    if diffs:
        lines += difference_lines(diffs)
    lines += inherited_lines(rows)
    lines += judge_mode_lines(rows, multi, shortcuts or {})

    lines += ["", "## Solutions (reward-hacking monitor: length growing without accuracy, repeated steps, loops, "
              "several answers)", ""]
    monitored = any(row.degeneracy for row in rows)
    if monitored:
        lines += [f"Repeated step: % of the model's completions (all benchmarks) with two steps of the same "
                  f"text; loop: % writing one stretch of text {LOOP_MIN_COPIES} or more times back to back "
                  f"(over {LOOP_MIN_CHARS}+ characters, e.g. inside one step); several answers: % stating more "
                  f"than one distinct final answer. Above {_pct(DEGENERATE_SHARE)}% in any: **degenerate**. "
                  f"Degenerate, graded right: of the completions that do any of these, how many the checker "
                  f"graded right (at most that many right answers can come from degeneracy).", ""]
    head = (["run"] if multi else []) + ["model"] + [f"{b} steps / tokens" for b in benchmarks]
    head += (["repeated step %", "loop %", "several answers %", "degenerate, graded right", "degenerate"]
             if monitored else [])
    lines += _head(head)
    for row in rows:
        cells = ([row.run] if multi else []) + [row.name]
        for b in benchmarks:
            s = row.benchmarks.get(b)
            cells.append(f"{s['avg_steps']:.2f} / {s['avg_tokens']:.0f}" if s else "-")
        if monitored:
            d = row.degeneracy
            cells += [_pct(d.repeated_step_share), _pct(d.looping_share), _pct(d.several_answers_share),
                      _right_of(d), "**degenerate**" if d.degenerate else "no"] if d else ["-"] * 5
        lines.append(_row(cells))

    pair_rows = [r for r in rows if r.pairs or r.search]
    if pair_rows:
        lines += ["", "## Preference pairs (made by M(t-1) to train M(t))", ""]
        keys = ["pairs", "ties", "rollbacks", "repeat_candidates", "copy_candidates", "loop_candidates",
                "guard_pairs", "degenerate_stops", "judge_failures", "judge_consistency", "generated_tokens",
                "dropped_identical", "dropped_duplicate", "prompts_kept", "unparsable_scores", "mean_score"]
        present = [k for k in keys if any(k in (r.pairs or {}) or k in (r.search or {}) for r in pair_rows)]
        head = (["run"] if multi else []) + ["model"] + present
        lines += _head(head)
        for row in pair_rows:
            merged = {**(row.search or {}), **(row.pairs or {})}
            cells = ([row.run] if multi else []) + [row.name] + [str(merged.get(k, "-")) for k in present]
            lines.append(_row(cells))

    lines += audit_lines(rows, multi)
    lines += training_lines(rows, multi)
    lines += setting_change_lines(changes or [], multi)

    stage_names: list[str] = []
    for row in rows:
        for name in row.stage_times:
            if name not in stage_names:
                stage_names.append(name)
    if stage_names:
        lines += ["", "## Wall time per stage (seconds)", ""]
        head = (["run"] if multi else []) + ["model"] + stage_names + ["total"]
        lines += _head(head)
        run_totals: dict[str, float] = {}
        for row in rows:
            row_total = sum(row.stage_times.values())
            run_totals[row.run] = run_totals.get(row.run, 0.0) + row_total
            cells = ([row.run] if multi else []) + [row.name]
            cells += [f"{row.stage_times[s]:.0f}" + ("+" if s in row.resumed_stages else "") if s in row.stage_times
                      else "-" for s in stage_names]
            cells.append(f"{row_total:.0f}")
            lines.append(_row(cells))
        for run, total in run_totals.items():
            label = f" ({run})" if multi else ""
            lines += ["", f"Total{label}, stages of the models above: {total:.0f} s = {total / 60:.0f} min."]
        if any(row.resumed_stages for row in rows):
            lines += ["", "+: the stage was interrupted and resumed; the time is its last attempt's only "
                          "(a killed attempt leaves no end time), so the totals are lower bounds."]
    return "\n".join(lines) + "\n"


def judge_series(rows: list[ModelRow]) -> dict[str | None, list[tuple[int, dict[str, Any]]]]:
    """The judge panel's series for one run's rows: one per mode the run measured (``judge_eval.modes``,
    keyed by mode), else the search's judge alone (key None); each a list of (t, accuracy summary)."""
    modes = list(dict.fromkeys(m for r in rows if r.judge for m in (r.judge.get("modes") or {})))

    def scored(s: Any) -> bool:
        return isinstance(s, dict) and _is_number(s.get("accuracy"))

    if not modes:
        pts = [(r.t, r.judge) for r in rows if scored(r.judge)]
        return {None: pts} if pts else {}
    out = {m: [(r.t, r.judge["modes"][m]) for r in rows if r.judge and scored((r.judge.get("modes") or {}).get(m))]
           for m in modes}
    return {m: pts for m, pts in out.items() if pts}


def plot(rows: list[ModelRow], path: str | Path) -> None:
    """Accuracy per benchmark (with 95% intervals), step-judge accuracy across iterations, and the
    paired differences with their intervals (a third panel, when there are any)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(dict.fromkeys(r.run for r in rows))
    benchmarks = list(dict.fromkeys(b for r in rows for b in r.benchmarks))
    diffs = paired_differences(rows)
    fig, all_axes = plt.subplots(1, 3 if diffs else 2, figsize=(17 if diffs else 11, 4.2 + 0.12 * max(0, len(diffs) - 12)),
                                 gridspec_kw={"width_ratios": [1, 1, 1.2] if diffs else [1, 1]})
    axes = all_axes[:2]
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
        series = judge_series(mine)
        for k, (mode, jp) in enumerate(series.items()):
            offset = 0.06 * (k - (len(series) - 1) / 2) + 0.02 * runs.index(run)
            ys = [100 * j["accuracy"] for _, j in jp]
            err = [[100 * (j["accuracy"] - (j.get("ci_low") if _is_number(j.get("ci_low")) else j["accuracy"]))
                    for _, j in jp],
                   [100 * ((j.get("ci_high") if _is_number(j.get("ci_high")) else j["accuracy"]) - j["accuracy"])
                    for _, j in jp]]
            label = " ".join(x for x in (run if len(runs) > 1 else None, mode) if x) or run
            axes[1].errorbar([t + offset for t, _ in jp], ys, yerr=err, marker="s", capsize=3, label=label)
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
    if diffs:
        ax = all_axes[2]
        ys = list(range(len(diffs)))[::-1]
        for y, d in zip(ys, diffs, strict=True):
            c = d.comparison
            ax.errorbar([100 * c.diff], [y], xerr=[[100 * (c.diff - c.ci_low)], [100 * (c.ci_high - c.diff)]],
                        fmt="o", capsize=3, color="tab:red" if c.significant else "tab:blue")
        ax.axvline(0, color="grey", linestyle=":", linewidth=1)
        ax.set_yticks(ys, [f"{d.first} - {d.second}: {d.items}" for d in diffs], fontsize=7)
        ax.set_xlabel("difference in points (red: 95% interval excludes 0)")
        ax.set_title("Paired differences (Newcombe 95% CI)")
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, png.getvalue())  # a symlink named report.png is written through, not replaced


def build_report(*run_dirs: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write ``report.md`` and ``report.png`` (into the run directory, or ``out_dir`` for several runs)."""
    if not run_dirs:
        raise ValueError("build_report needs at least one run directory")
    rows = [row for d in run_dirs for row in collect(d)]
    target = Path(out_dir) if out_dir else Path(run_dirs[0])
    title = "Run report: " + ", ".join(Path(d).name for d in run_dirs)
    shortcuts = {}
    for d in run_dirs:
        layout = RunLayout(Path(d))
        seed = _read_json(layout.seed_summary, []) or {}
        shortcuts[layout.root.name] = seed.get("shortcut_audit") or {}
    changes = [c for d in run_dirs for c in setting_changes(d)]
    atomic_write_text(target / "report.md", markdown(rows, title, shortcuts, changes))
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
