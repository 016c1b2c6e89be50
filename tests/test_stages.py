"""Each stage command gives the records the loop's stage gives, for the same model, problems and config:
the two share one stage core (prm_selfreward.stages), and these stories check that they stay one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import prm_selfreward.stages.run as S
from prm_selfreward.cli import app
from prm_selfreward.config import merge, to_dict
from prm_selfreward.data import load_benchmark
from prm_selfreward.io import read_jsonl, write_jsonl
from prm_selfreward.run_config import load_run_config
from prm_selfreward.stages import RunContext

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def run(tmp_path, tiny_model_dir, data_dir) -> RunContext:
    overrides = {
        "model": {"name": str(tiny_model_dir), "batch_size": 4, "trim_vocab": False}, "data_dir": str(data_dir),
        "eval": {"benchmarks": ["gsm8k"], "limit": {"gsm8k": 3}, "max_new_tokens": 12, "few_shot": 1},
        "search": {"width": 3, "max_step_tokens": 6, "max_rounds": 2, "lockstep": 2, "few_shot": 1},
        "judge": {"mode": "likelihood"},
    }
    config = load_run_config(REPO / "configs" / "cpu-smoke.yaml", overrides)
    ctx = RunContext(tmp_path / "run", config, log=lambda msg: None)
    ctx.layout.root.mkdir(parents=True)
    ctx.layout.config.write_text(yaml.safe_dump(to_dict(config)))
    return ctx


def _invoke(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)


def test_eval_command_matches_the_loops_eval_stage(run, tmp_path):
    from prm_selfreward.degeneracy import degeneracy

    result = S.evaluate_model(run, 0)
    # The manifest's eval result carries the degeneracy counts and shares, as counted from the records.
    records = read_jsonl(run.layout.eval_dir(0) / "gsm8k.jsonl")
    counted = degeneracy([r["completion"] for r in records], [r["correct"] for r in records]).to_dict()
    assert {k: result["gsm8k"][k] for k in counted if k != "completions"} == \
        {k: v for k, v in counted.items() if k != "completions"}
    out = tmp_path / "eval"
    _invoke(["eval", "--config", str(run.layout.config), "-o", str(out)])
    loop_rows = read_jsonl(run.layout.eval_dir(0) / "gsm8k.jsonl")
    cmd_rows = read_jsonl(out / "gsm8k.jsonl")
    assert len(loop_rows) == 3
    keys = ("id", "prompt", "completion", "predicted", "correct", "tokens")
    assert [{k: r[k] for k in keys} for r in cmd_rows] == [{k: r[k] for k in keys} for r in loop_rows]
    assert json.loads((out / "summary.json").read_text())["few_shot"] == 1


def test_eval_with_search_uses_the_runs_search_and_judge(run, tmp_path):
    """Test-time search takes the whole SearchConfig and StepJudgeConfig: a max_rounds of 1 from the run's
    search section gives one-step solutions."""
    cfg = merge(to_dict(run.config), {"eval": {"search_width": 2}, "search": {"max_rounds": 1}})
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "eval-search"
    _invoke(["eval", "--config", str(path), "-o", str(out)])
    rows = read_jsonl(out / "gsm8k.jsonl")
    assert len(rows) == 3 and all(r["completion"].count("Step ") <= 1 for r in rows)


def test_pairs_command_matches_the_loops_search_and_pairs_stages(run, tmp_path, data_dir):
    problems = load_benchmark("gsm8k", split="train", data_dir=data_dir, limit=2)
    run.iter_dir(2)
    write_jsonl(run.layout.problems(2), [p.to_dict() for p in problems])
    run.manifest.stages["train/M1 (SFT)"] = {"status": "done", "result": {"skipped": "test", "model": run.config.model.name}}
    summary = S.search_steps(run, 2)
    assert (summary["judge_mode"], summary["judge_debias"]) == (run.config.judge.mode, run.config.judge.debias)
    S.build_pairs(run, 2)
    out = tmp_path / "pairs"
    _invoke(["pairs", "--config", str(run.layout.config), "--problems", "gsm8k", "--limit", "2", "--out", str(out)])
    loop_search = read_jsonl(run.layout.search(2))
    cmd_search = read_jsonl(out / "search.jsonl")
    assert [r["solution"] for r in cmd_search] == [r["solution"] for r in loop_search]
    assert read_jsonl(out / "pairs.jsonl") == read_jsonl(run.layout.pairs(2))


def test_judge_command_matches_the_loops_judge_eval_stage(run, tmp_path):
    S.build_seed(run)
    result = S.evaluate_judge(run, 0)
    out = tmp_path / "judged.jsonl"
    _invoke(["judge", "--config", str(run.layout.config), "--input", str(run.layout.eft_heldout), "-o", str(out)])
    loop_rows = read_jsonl(run.layout.judge_eval(0))
    cmd_rows = read_jsonl(out)
    assert len(cmd_rows) == len(loop_rows) == result["total"] > 0
    assert [r["verdict"] for r in cmd_rows] == [r["predicted"] for r in loop_rows]
    assert [r["probability"] for r in cmd_rows] == pytest.approx([r["probability"] for r in loop_rows])


def test_every_long_stage_reports_progress_in_a_log(run, data_dir, capsys):
    """Run as `nohup prm-sr iterate ... > log` runs them (stdout no terminal): each long stage writes plain
    progress lines under its name, from its start to its end."""
    import re

    from prm_selfreward.audit import AuditConfig

    problems = load_benchmark("gsm8k", split="train", data_dir=data_dir, limit=2)
    run.iter_dir(2)
    write_jsonl(run.layout.problems(2), [p.to_dict() for p in problems])
    run.manifest.stages["train/M1 (SFT)"] = {"status": "done", "result": {"skipped": "test", "model": run.config.model.name}}
    run.config.audit = AuditConfig(pairs=2, rollouts=1, max_new_tokens=8)
    S.build_seed(run)
    S.evaluate_model(run, 0)
    S.evaluate_judge(run, 0)
    S.search_steps(run, 2)
    S.build_pairs(run, 2)
    assert read_jsonl(run.layout.pairs(2)), "the audit needs pairs to audit"
    S.audit_pairs(run, 2)
    shown = capsys.readouterr().out
    lines = re.findall(r"^\d\d:\d\d:\d\d (.+?): (.*)$", shown, re.M)
    labels = {label for label, _ in lines}
    mode = run.config.judge.mode  # the search's label names its judge
    expected = {"eval M0 gsm8k", "judge_eval likelihood", f"search/M2 with M1, {mode} judge", "audit/M2 with M1"}
    assert expected <= labels, shown
    for label in expected:
        mine = [text for name, text in lines if name == label]
        assert mine[0].startswith("started, ") and mine[-1].startswith("done, "), mine
        assert any(re.search(r"\d+/\d+ \w+ \(\d+%\), .*elapsed \d+s, ETA ", text) for text in mine), mine


def test_m1s_sft_records_follow_the_seed_datas_eft_target(run):
    """seed_data.eft_explanation: false gives M1's SFT the judgments' verdicts alone; the IFT records and
    the judge prompts are the same as with the explanations."""
    S.build_seed(run)
    with_explanations = S.sft_records(run)
    run.config.seed_data.eft_explanation = False
    bare = S.sft_records(run)
    eft = len(read_jsonl(run.layout.eft_train))
    assert eft and len(bare) == len(with_explanations)
    assert [r["prompt"] for r in bare] == [r["prompt"] for r in with_explanations]
    assert bare[:-eft] == with_explanations[:-eft]  # the IFT solutions
    assert {r["completion"] for r in bare[-eft:]} <= {"[[A]]", "[[B]]"}
    assert all(len(r["completion"]) > 5 for r in with_explanations[-eft:])
