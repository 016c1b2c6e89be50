"""The report is rebuilt from a run directory alone; several runs go side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prm_selfreward.cli import app, main
from prm_selfreward.errors import UserError
from prm_selfreward.report import build_report, collect


def _summary(acc: float, total: int, steps: float) -> dict:
    return {"accuracy": acc, "ci_low": max(0.0, acc - 0.1), "ci_high": min(1.0, acc + 0.1), "total": total,
            "correct": round(acc * total), "avg_steps": steps, "avg_tokens": 40 * steps, "pass_at_k": None}


def make_run(root: Path, name: str, accs: list[float], judge: list[float]) -> Path:
    run = root / name
    stages = {}
    for t, (acc, jacc) in enumerate(zip(accs, judge, strict=True)):
        eval_dir = run / f"iter_{t}" / "eval"
        eval_dir.mkdir(parents=True)
        (eval_dir / "summary.json").write_text(json.dumps(
            {"model": f"M{t}", "benchmarks": {"gsm8k": _summary(acc, 20, 3 + t), "math500": _summary(acc / 2, 10, 4)}}))
        stages[f"eval/M{t}"] = {"status": "done", "wall_time_s": 100.0 + t}
        stages[f"judge_eval/M{t}"] = {"status": "done", "wall_time_s": 5.0,
                                      "result": {"accuracy": jacc, "ci_low": jacc - 0.05, "ci_high": jacc + 0.05,
                                                 "total": 50, "consistency": 0.5}}
        if t >= 2:
            stages[f"pairs/M{t}"] = {"status": "done", "wall_time_s": 1.0, "result": {"pairs": 7 * t}}
            stages[f"search/M{t}"] = {"status": "done", "wall_time_s": 60.0, "result": {"ties": t, "rollbacks": 1}}
    stages["train/M3 (DPO)"] = {"status": "running"}  # interrupted: no time, no crash
    (run / "manifest.json").write_text(json.dumps({"stages": stages}))
    return run


def test_report_table_and_plot(tmp_path):
    run = make_run(tmp_path, "math", [0.10, 0.20, 0.25, 0.30], [0.5, 0.7, 0.72, 0.75])
    rows = collect(run)
    assert [r.name for r in rows] == ["M0", "M1", "M2", "M3"]
    assert rows[2].stage_times == {"eval": 102.0, "judge_eval": 5.0, "pairs": 1.0, "search": 60.0}
    path = build_report(run)
    text = path.read_text()
    assert "| M3 | 30.0 [20.0, 40.0] (n=20) | 15.0 [5.0, 25.0] (n=10) | 75.0 [70.0, 80.0] (n=50) | 50.0 |" in text
    assert "| M2 | 14 | 2 | 1 |" in text  # pairs, ties, rollbacks
    assert "6.00 / 240" in text  # M3 gsm8k steps / tokens
    assert "| model | eval | judge_eval | pairs | search | total |" in text
    assert "| M2 | 102 | 5 | 1 | 60 | 168 |" in text  # per-model total of the stages that finished
    assert "Total, stages of the models above: 548 s = 9 min." in text
    assert "+: the stage was interrupted" not in text  # nothing was resumed
    png = run / "report.png"
    assert png.exists() and png.read_bytes()[:4] == b"\x89PNG"


def test_report_cli_side_by_side(tmp_path):
    a = make_run(tmp_path, "math", [0.1, 0.2], [0.5, 0.6])
    b = make_run(tmp_path, "instruct", [0.1, 0.15], [0.5, 0.55])
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, ["report", str(a), str(b), "--output", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "report.md").read_text()
    assert "| math | M1 |" in text and "| instruct | M1 |" in text
    assert "Total (math), stages of the models above: 211 s" in text  # each run summed on its own
    # Not a terminal: the Markdown itself is printed, every column intact (a rendered table would be squeezed).
    assert "| run | model | eval | judge_eval | total |" in result.output
    assert "| instruct | M1 | 101 | 5 | 106 |" in result.output
    assert (out / "report.png").exists()


def test_report_cli_rejects_non_run_dir(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "not a run directory" in err and "Traceback" not in err


# -------------------------------------------------------- damaged inputs (issue 17, finding 7)


@pytest.mark.parametrize(
    "damage,file,message",
    [
        (lambda run: (run / "manifest.json").write_text('{"stages": {"eval/M0": {"sta'), "manifest.json",
         "invalid JSON"),
        (lambda run: (run / "manifest.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe"), "manifest.json",
         "not UTF-8"),
        (lambda run: (run / "manifest.json").write_text('{"stages": []}'), "manifest.json", "stages"),
        (lambda run: (run / "manifest.json").write_text('{"stages": {"eval/M0": {"wall_time_s": "slow"}}}'),
         "manifest.json", "wall_time_s"),
        (lambda run: (run / "iter_1" / "eval" / "summary.json").write_text('{"model": "M1", "bench'),
         "iter_1/eval/summary.json", "invalid JSON"),
        (lambda run: (run / "iter_1" / "eval" / "summary.json").write_text(
            json.dumps({"benchmarks": {"gsm8k": {"accuracy": "high"}}})), "iter_1/eval/summary.json", "accuracy"),
    ],
)
def test_report_names_the_damaged_file(tmp_path, capsys, damage, file, message):
    run = make_run(tmp_path, "math", [0.1, 0.2], [0.5, 0.6])
    damage(run)
    with pytest.raises(SystemExit) as exc:
        main(["report", str(run)])
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert file in err.replace("\n", "") and message in err and "Traceback" not in err


def test_report_removes_a_stale_plot_when_no_rows_are_left(tmp_path):
    run = make_run(tmp_path, "math", [0.1, 0.2], [0.5, 0.6])
    build_report(run)
    assert (run / "report.png").exists()
    for t in (0, 1):
        (run / f"iter_{t}" / "eval" / "summary.json").unlink()
    (run / "manifest.json").write_text(json.dumps({"stages": {}}))
    build_report(run)
    assert not (run / "report.png").exists(), "an old plot would show results that are gone"


def write_items(run: Path, t: int, gsm8k: list[bool], judge: list[bool], mode: str = "logprob") -> None:
    """Per-problem eval records and judged held-out rows for M(t), as the stages write them."""
    eval_dir = run / f"iter_{t}" / "eval"
    eval_dir.mkdir(parents=True, exist_ok=True)
    (eval_dir / "gsm8k.jsonl").write_text("".join(
        json.dumps({"id": f"gsm8k/test/{i}", "correct": c}) + "\n" for i, c in enumerate(gsm8k)))
    rows = [{"question": f"q{i}", "previous_steps": [], "step_a": "a", "step_b": "b", "verdict": i % 2,
             "predicted": i % 2 if c else 1 - i % 2} for i, c in enumerate(judge)]
    (run / f"iter_{t}" / "judge_eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = json.loads((run / "manifest.json").read_text())
    result = manifest["stages"][f"judge_eval/M{t}"]["result"]
    manifest["stages"][f"judge_eval/M{t}"]["result"] = {**result, "mode": mode, "modes": {mode: result}}
    (run / "manifest.json").write_text(json.dumps(manifest))


def test_report_paired_differences_marked(tmp_path):
    run = make_run(tmp_path, "math", [0.1, 0.2, 0.25], [0.5, 0.7, 0.72])
    # 40 shared problems: M1 right on 12 more than M0 and wrong on none more: an interval above zero.
    write_items(run, 0, [False] * 40, [True] * 10 + [False] * 10)
    write_items(run, 1, [True] * 12 + [False] * 28, [True] * 11 + [False] * 9)
    write_items(run, 2, [True] * 11 + [False] * 28 + [True], [True] * 11 + [False] * 9)
    text = build_report(run).read_text()
    assert "## Paired differences" in text
    # M1 vs M0 on gsm8k: 12 vs 0 discordant, p = 2 / 2^12.
    assert "| M1 | M0 | gsm8k | 40 | 30.0 | 0.0 | **+30.0 [" in text and "** * | 12 / 0 | 4.9e-04 |" in text
    # M2 vs M1: 1 vs 1 discordant: difference 0, not marked.
    assert "| M2 | M1 | gsm8k | 40 | 30.0 | 30.0 | +0.0 [" in text and "| 1 / 1 | 1.000 |" in text
    assert "| M2 | M0 | gsm8k |" in text and "| M1 | M0 | judge logprob | 20 | 55.0 | 50.0 |" in text
    assert "## Step judge by mode" in text
    png = run / "report.png"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_an_interval_bound_just_off_zero_does_not_print_as_zero(tmp_path):
    """The logprob branch's M2 - M0 (41 vs 25 discordant of 300): Newcombe's lower bound is +0.05
    points, so the row is marked; printed "+0.0" it would read as an interval touching zero."""
    run = make_run(tmp_path, "math", [0.2, 0.25], [0.5, 0.5])
    m0 = [True] * 35 + [False] * 41 + [True] * 25 + [False] * 199
    m1 = [True] * 35 + [True] * 41 + [False] * 25 + [False] * 199
    write_items(run, 0, m0, [True] * 4)
    write_items(run, 1, m1, [True] * 4)
    text = build_report(run).read_text()
    assert "| M1 | M0 | gsm8k | 300 | 25.3 | 20.0 | **+5.3 [+0.05, +10.6]** * | 41 / 25 | 0.064 |" in text
    assert "| M1 | M0 | judge logprob | 4 | 100.0 | 100.0 | +0.0 [" in text  # an exact zero stays +0.0


def test_report_two_runs_compared_on_shared_problems(tmp_path):
    a = make_run(tmp_path, "a", [0.1, 0.2], [0.5, 0.6])
    b = make_run(tmp_path, "b", [0.1, 0.15], [0.5, 0.55])
    write_items(a, 1, [True] * 10 + [False] * 10, [True] * 4)
    write_items(b, 1, [False] * 30, [True] * 4)  # 30 problems, 20 of them shared with run a
    result = CliRunner().invoke(app, ["report", str(a), str(b), "--output", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "cmp" / "report.md").read_text()
    assert "| b M1 | a M1 | gsm8k | 20 | 0.0 | 50.0 | **-50.0 [" in text
    assert "| b M1 | a M1 | judge logprob | 4 | 100.0 | 100.0 | +0.0 [" in text


def test_a_branch_is_not_compared_with_the_models_it_restored_from_its_parent(tmp_path):
    """`prm-sr restore PARENT --redo train/M1` keeps the parent's M0: the same records, one measurement.
    The report says so instead of a +0.0 row; M1 (trained again) is compared; a changed M0 would be."""
    parent = make_run(tmp_path, "parent", [0.1, 0.2], [0.5, 0.6])
    branch = make_run(tmp_path, "branch", [0.1, 0.3], [0.5, 0.7])
    for run, m1 in ((parent, [True] * 5 + [False] * 15), (branch, [True] * 15 + [False] * 5)):
        write_items(run, 0, [True] * 4 + [False] * 16, [True] * 3 + [False])
        write_items(run, 1, m1, [True] * 4)
    manifest = json.loads((branch / "manifest.json").read_text())
    manifest["restored"] = {"from": "docs/results/parent", "redo": "train/M1 (SFT)",
                            "dropped_stages": ["train/M1 (SFT)", "eval/M1", "judge_eval/M1"]}
    (branch / "manifest.json").write_text(json.dumps(manifest))
    # The parent itself restored from its own published folder (same name): not its own parent.
    own = json.loads((parent / "manifest.json").read_text())
    (parent / "manifest.json").write_text(json.dumps({**own, "restored": {"from": "docs/results/parent"}}))

    text = build_report(parent, branch, out_dir=tmp_path / "cmp").read_text()
    assert "parent M0 is parent M0" not in text and "| parent M1 | parent M0 | gsm8k | 20 |" in text
    assert "| branch M0 | parent M0 |" not in text
    assert "branch M0 is parent M0 (gsm8k, judge logprob)" in text and "branch M1 is parent M1" not in text
    assert "| branch M1 | parent M1 | gsm8k | 20 | 75.0 | 25.0 | **+50.0 [" in text
    assert "| branch M1 | M0 |" not in text and "| branch M1 | branch M0 | gsm8k | 20 |" in text

    # Not restored from it (another parent), or records that differ: compared as two measurements.
    write_items(branch, 0, [True] * 5 + [False] * 15, [True] * 3 + [False])
    text = build_report(parent, branch, out_dir=tmp_path / "cmp").read_text()
    assert "| branch M0 | parent M0 | gsm8k | 20 | 25.0 | 20.0 |" in text
    assert "| branch M0 | parent M0 | judge logprob |" not in text  # its judge rows are still the parent's
    assert "branch M0 is parent M0 (judge logprob)" in text
    manifest["restored"]["from"] = "elsewhere"
    (branch / "manifest.json").write_text(json.dumps(manifest))
    text = build_report(parent, branch, out_dir=tmp_path / "cmp").read_text()
    assert "| branch M0 | parent M0 | judge logprob | 4 | 75.0 | 75.0 | +0.0 [" in text
    assert "branch M0 is parent M0" not in text


def test_report_marks_resumed_stages(tmp_path):
    run = make_run(tmp_path, "math", [0.1, 0.2], [0.5, 0.6])
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["stages"]["eval/M1"].update(attempts=3, first_started=1.0)
    (run / "manifest.json").write_text(json.dumps(manifest))
    text = build_report(run).read_text()
    assert "| M1 | 101+ | 5 | 106 |" in text and "| M0 | 100 | 5 | 105 |" in text
    assert "+: the stage was interrupted and resumed" in text


def test_judge_panel_has_one_series_per_measured_mode(tmp_path):
    from prm_selfreward.report import judge_series

    run = make_run(tmp_path, "math", [0.1, 0.2], [0.5, 0.6])
    assert {k: [(t, s["accuracy"]) for t, s in v] for k, v in judge_series(collect(run)).items()} == \
        {None: [(0, 0.5), (1, 0.6)]}  # no modes recorded: the search's judge alone
    manifest = json.loads((run / "manifest.json").read_text())
    for t, (lp, lk) in enumerate([(0.41, 0.86), (0.40, 0.89)]):
        result = manifest["stages"][f"judge_eval/M{t}"]["result"]
        result["modes"] = {"logprob": {"accuracy": lp, "ci_low": lp - 0.05, "ci_high": lp + 0.05, "total": 50},
                           "likelihood": {"accuracy": lk, "ci_low": lk - 0.05, "ci_high": lk + 0.05, "total": 50}}
    manifest["stages"]["judge_eval/M1"]["result"]["modes"]["generate"] = {"accuracy": 0.02, "ci_low": 0.0, "ci_high": 0.07,
                                                                    "total": 10}
    (run / "manifest.json").write_text(json.dumps(manifest))
    series = judge_series(collect(run))
    assert {k: [(t, s["accuracy"]) for t, s in v] for k, v in series.items()} == {
        "logprob": [(0, 0.41), (1, 0.40)], "likelihood": [(0, 0.86), (1, 0.89)], "generate": [(1, 0.02)]}
    build_report(run)
    assert (run / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_report_tells_position_bound_ties_from_unreadable_judgments(tmp_path):
    # A summary from before ties were counted apart: the report counts both from the judged rows.
    run = make_run(tmp_path, "math", [0.1, 0.2], [0.5, 0.6])
    manifest = json.loads((run / "manifest.json").read_text())
    result = manifest["stages"]["judge_eval/M1"]["result"]
    result["modes"] = {"logprob": dict(result, failures=0),
                       "generate": {"accuracy": 0.25, "ci_low": 0.05, "ci_high": 0.7, "total": 4, "failures": 3,
                                    "consistency": 0.5}}
    (run / "manifest.json").write_text(json.dumps(manifest))
    rows = [{"question": f"q{i}", "previous_steps": [], "step_a": "a", "step_b": "b", "verdict": 0,
             "predicted": p, "p_a": pa} for i, (p, pa) in enumerate([(0, 1.0), (-1, 0.5), (-1, 0.5), (-1, None)])]
    (run / "iter_1" / "judge_eval_generate.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (m0, m1) = collect(run)
    assert (m1.judge_modes["generate"]["failures"], m1.judge_modes["generate"]["ties"]) == (1, 2)
    text = build_report(run).read_text()
    assert "(n=4); consistent 50.0; 1 no verdict; 2 tied (same position both orders) |" in text


def test_report_png_written_through_a_symlink_keeps_the_link(tmp_path):
    """A symlink named report.png (e.g. into a shared figures folder) stays a link: the plot is written
    atomically into its target instead of a file replacing the link."""
    run = make_run(tmp_path, "math", [0.1, 0.2], [0.5, 0.6])
    shared = tmp_path / "figures" / "latest.png"
    shared.parent.mkdir()
    shared.write_bytes(b"old plot")
    (run / "report.png").symlink_to(shared)
    build_report(run)
    assert (run / "report.png").is_symlink(), "the link was replaced by a file"
    assert shared.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in shared.parent.iterdir()) == ["latest.png"]  # no temp file left
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".") or "tmp" in p.name) == []


# -------------------------------------------------------- degenerate models and the search guards (issue 22)

CLEAN = "Step 1: 3 + 4 = 7.\nStep 2: The answer is \\boxed{7}."
REPEATS = "Step 1: The answer is \\boxed{7}.\nStep 2: The answer is \\boxed{7}."
SCATTERED = "Step 1: The answer is \\boxed{6}.\nStep 2: The answer is \\boxed{7}."
LOOPING = "Step 1: x = " + "= 150 * 80000 / 80000 " * 4 + "\nStep 2: The answer is \\boxed{7}."  # M3's loop


def write_completions(run: Path, t: int, benchmark: str, completions: list[str], right: tuple[int, ...] = ()) -> None:
    eval_dir = run / f"iter_{t}" / "eval"
    (eval_dir / f"{benchmark}.jsonl").write_text("".join(
        json.dumps({"id": f"{benchmark}/{i}", "completion": c, "correct": i in right}) + "\n"
        for i, c in enumerate(completions)))


def test_report_marks_a_degenerate_model_from_an_old_runs_eval_records(tmp_path):
    # Summaries from before the degeneracy counts: the report counts them from the eval records.
    run = make_run(tmp_path, "math", [0.1, 0.2, 0.25], [0.5, 0.6, 0.6])
    for t, bad in [(0, []), (1, [SCATTERED, LOOPING]), (2, [REPEATS] * 5 + [SCATTERED])]:
        # M2's first repeated completion and its first clean one are graded right.
        write_completions(run, t, "gsm8k", bad + [CLEAN] * (20 - len(bad)), right=(0, len(bad)))
        write_completions(run, t, "math500", [CLEAN] * 30)  # 50 completions per model in all
    rows = collect(run)
    assert [(r.degeneracy.repeated_step, r.degeneracy.several_answers, r.degeneracy.completions)
            for r in rows] == [(0, 0, 50), (0, 1, 50), (5, 1, 50)]
    assert [r.degeneracy.looping for r in rows] == [0, 1, 0]
    assert [(r.degeneracy.degenerate_right, r.degeneracy.degenerate_completions) for r in rows] == [
        (0, 0), (1, 2), (1, 6)]
    text = build_report(run).read_text()
    assert "| M2 (degenerate) | 25.0 [" in text and "| M1 | 20.0 [" in text  # 1 in 50 is 2%: not above
    assert ("**Degenerate:** M2 (10.0% of its 50 completions repeat a step, 0.0% loop, 2.0% state several "
            "final answers; 1 of these 6 graded right)") in text
    assert "| M2 | 5.00 / 200 | 4.00 / 160 | 10.0 | 0.0 | 2.0 | 1 / 6 | **degenerate** |" in text
    assert "| M1 | 4.00 / 160 | 4.00 / 160 | 0.0 | 2.0 | 2.0 | 1 / 2 | no |" in text


def test_report_reads_degeneracy_from_the_eval_summary(tmp_path):
    run = make_run(tmp_path, "math", [0.1, 0.2], [0.5, 0.6])
    path = run / "iter_1" / "eval" / "summary.json"
    summary = json.loads(path.read_text())
    summary["benchmarks"]["gsm8k"].update(repeated_step=0, several_answers=3)  # 3 of 20
    summary["benchmarks"]["math500"].update(repeated_step=0, several_answers=0)
    path.write_text(json.dumps(summary))
    write_completions(run, 1, "gsm8k", [REPEATS] * 20)  # the summary wins over the records
    (m0, m1) = collect(run)
    assert m0.degeneracy is None  # neither counts nor completions: no verdict, not "clean"
    d = m1.degeneracy
    assert (d.completions, d.repeated_step, d.several_answers) == (30, 0, 3)
    text = build_report(run).read_text()
    assert "| M1 (degenerate) |" in text and "| M0 | 10.0 [" in text
    assert "| M0 | 3.00 / 120 | 4.00 / 160 | - | - | - | - | - |" in text
    # Counts without degenerate_right (a summary from before it) take it from the records where they
    # cover a benchmark; math500 has no records here, so the model's total stays unknown.
    assert (d.degenerate_right, d.degenerate_completions) == (None, None)
    assert "| 0.0 | - | 10.0 | - | **degenerate** |" in text  # loops: not in the summary, math500 no records


def test_report_shows_the_search_guard_counts(tmp_path):
    run = make_run(tmp_path, "math", [0.1, 0.2, 0.25], [0.5, 0.6, 0.6])
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["stages"]["search/M2"]["result"].update(repeat_candidates=9, copy_candidates=4, guard_pairs=6,
                                                     degenerate_stops=2)
    (run / "manifest.json").write_text(json.dumps(manifest))
    text = build_report(run).read_text()
    assert ("| model | pairs | ties | rollbacks | repeat_candidates | copy_candidates | guard_pairs | "
            "degenerate_stops |") in text  # a run from before the loop guard: no loop column
    assert "| M2 | 14 | 2 | 1 | 9 | 4 | 6 | 2 |" in text
    manifest["stages"]["search/M2"]["result"].update(loop_candidates=3)
    (run / "manifest.json").write_text(json.dumps(manifest))
    text = build_report(run).read_text()
    assert "| repeat_candidates | copy_candidates | loop_candidates | guard_pairs |" in text
    assert "| M2 | 14 | 2 | 1 | 9 | 4 | 3 | 6 | 2 |" in text


def test_report_names_the_searchs_judge_when_no_measurement_chose_it(tmp_path):
    run = make_run(tmp_path, "math", [0.1, 0.2, 0.25], [0.5, 0.6, 0.6])
    manifest = json.loads((run / "manifest.json").read_text())
    assert "judge_select/M2" not in manifest["stages"]
    text = build_report(run).read_text()
    assert "search judged with" not in text  # a search result from before the mode was recorded
    manifest["stages"]["search/M2"]["result"].update(judge_mode="logprob", judge_debias=True)
    (run / "manifest.json").write_text(json.dumps(manifest))
    text = build_report(run).read_text()
    assert ("- M2's search judged with **logprob**: the run's `judge.mode`, not chosen by measurement; "
            "both orders combined.") in text


def test_report_tells_whether_training_moved_the_model(tmp_path):
    run = make_run(tmp_path, "math", [0.1, 0.2, 0.2], [0.5, 0.6, 0.6])
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["stages"]["train/M1 (SFT)"] = {"status": "done", "wall_time_s": 9.0, "result": {
        "kind": "sft", "lora": True, "examples": 800, "steps": 100, "train_loss": 0.2391, "dropped_too_long": 2,
        "dropped_empty": 1, "metrics": {"loss": 0.15}}}
    manifest["stages"]["train/M2 (DPO)"] = {"status": "done", "wall_time_s": 9.0, "result": {
        "kind": "dpo", "lora": False, "examples": 153, "steps": 20, "train_loss": 0.6908, "dropped_too_long": 0,
        "learning_rate": 2e-5, "metrics": {"rewards/accuracies_mean": 0.68125, "rewards/margins_mean": 0.004637}}}
    manifest["stages"]["train/M3 (DPO)"] = {"status": "running"}  # not trained yet: no row
    manifest["stages"]["train/M4 (DPO)"] = {"status": "done", "wall_time_s": 9.0, "result": {
        "kind": "dpo", "lora": True, "examples": 150, "steps": 20, "train_loss": 1.2, "learning_rate": 2e-4,
        "rpo_alpha": 1.0, "metrics": {}}}
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "iter_4" / "eval").mkdir(parents=True)
    (run / "iter_4" / "eval" / "summary.json").write_text(json.dumps({"model": "M4", "benchmarks": {}}))
    text = build_report(run).read_text()
    assert "| M4 | DPO + 1 x NLL (LoRA) | 2e-04 | 150 | 20 | 1.200 |" in text  # RPO's NLL term named
    assert "## Training (how M(t) was made from M(t-1))" in text
    assert "| M1 | SFT (LoRA) | - | 800 | 100 | 0.239 | - | - | 3 |" in text  # lr not recorded in old results
    assert "| M2 | DPO | 2e-05 | 153 | 20 | 0.691 | 68.1 | 0.0046 | 0 |" in text
    assert "| M3 | DPO" not in text


def test_report_names_the_settings_changed_on_resume_and_the_stage_each_preceded(tmp_path):
    run = make_run(tmp_path, "math", [0.1, 0.2], [0.5, 0.6])
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["stages"]["train/M1 (SFT)"] = {"status": "done", "started": 100.0, "result": {"kind": "sft"}}
    manifest["stages"]["audit/M2"] = {"status": "done", "started": 200.0, "first_started": 150.0}
    manifest["stages"]["train/M2 (DPO)"] = {"status": "running", "started": 300.0}
    manifest["config_changes"] = [
        {"time": 50.0, "set": {"dpo.learning_rate": 2e-5}},  # an old record: no 'was', nothing before it
        {"time": 120.0, "set": {"dpo.learning_rate": 2e-4, "iterations": 3}},  # old record: 'was' from the first
        {"time": 180.0, "set": {"audit.pairs": 40}, "was": {"audit.pairs": 80}},
        {"time": 400.0, "set": {"dpo.beta": 0.2}, "was": {"dpo.beta": 0.1}},
    ]
    (run / "manifest.json").write_text(json.dumps(manifest))
    text = build_report(run).read_text()
    assert "## Settings changed during the run (`--resume --set`)" in text
    assert "| 1970-01-01 00:00 | `dpo.learning_rate` | - | 2e-05 | train/M1 (SFT) |" in text
    assert "| 1970-01-01 00:02 | `dpo.learning_rate` | 2e-05 | 0.0002 | audit/M2 |" in text
    assert "| 1970-01-01 00:02 | `iterations` | - | 3 | audit/M2 |" in text
    assert "| 1970-01-01 00:03 | `audit.pairs` | 80 | 40 | audit/M2 |" in text  # its last attempt started later
    assert "| 1970-01-01 00:06 | `dpo.beta` | 0.1 | 0.2 | none yet |" in text
    manifest["config_changes"] = {"time": 1}
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="'config_changes' must be a list"):
        build_report(run)


def test_a_model_that_loops_inside_its_steps_is_degenerate(tmp_path):
    """The degeneration step-DPO at lr 2e-4 brought (the Qwen branch's M3): one stretch written again and
    again inside a step, no step repeated, one answer. A summary without the loop count (written before
    it existed) is completed from the eval records."""
    run = make_run(tmp_path, "math", [0.2, 0.2], [0.5, 0.5])
    for t, loops in [(0, 1), (1, 3)]:
        write_completions(run, t, "gsm8k", [LOOPING] * loops + [CLEAN] * (50 - loops), right=(0,))
        path = run / f"iter_{t}" / "eval" / "summary.json"
        summary = json.loads(path.read_text())
        summary["benchmarks"] = {"gsm8k": {**summary["benchmarks"]["gsm8k"], "total": 50, "repeated_step": 0,
                                           "several_answers": 0, "degenerate_completions": 0, "degenerate_right": 0}}
        path.write_text(json.dumps(summary))
    m0, m1 = collect(run)
    assert (m0.degeneracy.looping, m1.degeneracy.looping) == (1, 3)
    assert (m1.degeneracy.degenerate_completions, m1.degeneracy.degenerate_right) == (3, 1)
    assert not m0.degeneracy.degenerate and m1.degeneracy.degenerate  # 2% is not above the line, 6% is
    text = build_report(run).read_text()
    assert "| M1 (degenerate) |" in text and "| M0 | 20.0 [" in text
    assert "M1 (0.0% of its 50 completions repeat a step, 6.0% loop, 0.0% state several final answers" in text
