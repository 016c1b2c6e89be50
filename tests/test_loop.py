"""The whole loop on the tiny in-process model: a short story with an interruption and a resume."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

import prm_selfreward.loop as loop
import prm_selfreward.stages.run as S
from prm_selfreward.cli import main
from prm_selfreward.config import ConfigError, merge
from prm_selfreward.errors import UserError
from prm_selfreward.io import read_jsonl

REPO = Path(__file__).resolve().parents[1]


def smoke_config(tiny_model_dir: Path, data_dir: Path, **overrides):
    # trim_vocab (on in the CPU configs) is tested in test_trim.py; here it would trim into the user cache.
    base = {"model": {"name": str(tiny_model_dir), "trim_vocab": False}, "data_dir": str(data_dir)}
    return loop.load_run_config(REPO / "configs" / "cpu-smoke.yaml", merge(base, overrides))


def _ids(path: Path, key: str = "id") -> list[str]:
    return [r[key] for r in read_jsonl(path)]


def test_iterate_smoke_interrupted_then_resumed(tmp_path, tiny_model_dir, data_dir, monkeypatch):
    run_dir = tmp_path / "run"
    # Beyond the smoke config: the pair audit and the held-out judge in all three modes.
    extra = {"audit": {"pairs": 2, "rollouts": 2, "max_new_tokens": 12},
             "judge_eval": {"modes": ["generate", "likelihood"], "generate_limit": 2}, "judge": {"max_new_tokens": 8}}
    config = loop.prepare_run_dir(run_dir, smoke_config(tiny_model_dir, data_dir, **extra), resume=False)

    calls = Counter()
    for name in ("evaluate_model", "train_m1", "search_steps"):
        original = getattr(S, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(S, name, counted)

    real_train_dpo = S.train_dpo

    def killed(run, t):
        raise KeyboardInterrupt("killed during DPO")

    monkeypatch.setattr(S, "train_dpo", killed)
    with pytest.raises(KeyboardInterrupt):
        loop.iterate(config, run_dir, log=lambda msg: None)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["train/M2 (DPO)"]["status"] == "running"
    assert manifest["stages"]["pairs/M2"]["status"] == "done"
    assert calls == {"evaluate_model": 2, "train_m1": 1, "search_steps": 1}

    # Resume: the saved config is read back, finished stages are skipped.
    monkeypatch.setattr(S, "train_dpo", real_train_dpo)
    resumed = loop.prepare_run_dir(run_dir, smoke_config(tiny_model_dir, data_dir, **extra), resume=True)
    loop.iterate(resumed, run_dir, log=lambda msg: None)
    assert calls == {"evaluate_model": 3, "train_m1": 1, "search_steps": 1}

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    assert all(stage["status"] == "done" for stage in manifest["stages"].values())
    for t in (0, 1, 2):
        for bench, n in {"gsm8k": 2, "math500": 1, "olympiadbench": 1}.items():
            ids = _ids(run_dir / f"iter_{t}" / "eval" / f"{bench}.jsonl")
            assert len(ids) == n == len(set(ids))
        assert (run_dir / f"iter_{t}" / "judge_eval.jsonl").exists()
        judged = manifest["stages"][f"judge_eval/M{t}"]["result"]
        assert judged["mode"] == "logprob" and set(judged["modes"]) == {"logprob", "generate", "likelihood"}
        assert judged["modes"]["generate"]["total"] == 2 and judged["modes"]["likelihood"]["total"] == 4
        assert len(read_jsonl(run_dir / f"iter_{t}" / "judge_eval_generate.jsonl")) == 2
    for t in (1, 2):
        assert (run_dir / f"iter_{t}" / "model" / "config.json").exists()
    problems = _ids(run_dir / "iter_2" / "problems.jsonl")
    assert sorted(_ids(run_dir / "iter_2" / "search.jsonl", "problem_id")) == sorted(problems)
    pairs = read_jsonl(run_dir / "iter_2" / "pairs.jsonl")
    assert pairs and manifest["stages"]["pairs/M2"]["result"]["pairs"] == len(pairs)
    assert manifest["stages"]["train/M2 (DPO)"]["result"]["examples"] <= len(pairs)
    audit = manifest["stages"]["audit/M2"]["result"]
    audited = read_jsonl(run_dir / "iter_2" / "audit.jsonl")
    assert audit["pairs"] == len(audited) == min(2, len(pairs))
    assert audit["above"] + audit["equal"] + audit["below"] == audit["pairs"]

    # Training problems never come from the evaluation sets or the held-out judge problems.
    eval_ids = {
        i
        for t in (0,)
        for b in ("gsm8k", "math500", "olympiadbench")
        for i in _ids(run_dir / f"iter_{t}" / "eval" / f"{b}.jsonl")
    }
    heldout = set(json.loads((run_dir / "seed" / "summary.json").read_text())["heldout_problem_ids"])
    assert not (set(problems) & (eval_ids | heldout))
    assert all(p.startswith("gsm8k/train/") for p in problems)

    report = (run_dir / "report.md").read_text()
    assert "| M2 |" in report and (run_dir / "report.png").exists()
    assert "## Pair audit" in report and "## Step judge by mode" in report and "## Paired differences" in report

    _check_published(run_dir, tmp_path / "published")


def _cli(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0, argv


def _check_published(run_dir: Path, out: Path) -> None:
    """`prm-sr publish` on the finished run: the run's layout and records, no prompt, no weights."""
    _cli(["publish", str(run_dir), "--out", str(out)])
    for name in ("report.md", "report.png", "manifest.json", "config.yaml", "seed/summary.json"):
        assert (out / name).is_file(), name
    assert not (out / "seed" / "eft_heldout.jsonl").exists()
    # The smoke config trains with LoRA: a model is published as its adapter and training result only.
    for t in (1, 2):
        kept = sorted(p.relative_to(out / f"iter_{t}" / "model").as_posix()
                      for p in (out / f"iter_{t}" / "model").rglob("*") if p.is_file())
        assert kept == ["TRAINING_COMPLETE.json", "adapter/README.md",  # peft's model card
                        "adapter/adapter_config.json", "adapter/adapter_model.safetensors"], kept
    assert not list(out.rglob("model.safetensors"))
    published = sorted(p.relative_to(out) for p in out.rglob("*.jsonl"))
    expected = sorted(p.relative_to(run_dir) for t in (0, 1, 2) for p in
                      [*(run_dir / f"iter_{t}" / "eval").glob("*.jsonl"),
                       *(run_dir / f"iter_{t}").glob("judge_eval*.jsonl")])
    expected += [Path("iter_2/search.jsonl"), Path("iter_2/pairs.jsonl"), Path("iter_2/audit.jsonl")]
    assert published == sorted(expected)
    judge_text = ("question", "previous_steps", "step_a", "step_b", "explanation", "detail")
    questions = {r["id"]: r["question"].strip() for r in read_jsonl(run_dir / "iter_2" / "problems.jsonl")}

    def templated(r: dict) -> dict:  # a search / pair / audit prompt: its question replaced by the slot
        assert r["prompt"].count(questions[r["problem_id"]]) == 1
        return {**{k: v for k, v in r.items() if k != "prompt"},
                "prompt_template": r["prompt"].replace(questions[r["problem_id"]], "<prm-sr:question>"),
                "prompt_sha256": hashlib.sha256(r["prompt"].encode()).hexdigest()}

    for rel in published:
        original, copied = read_jsonl(run_dir / rel), read_jsonl(out / rel)
        if rel.name.startswith("judge_eval"):
            expected_rows = [{"row": i, **{k: v for k, v in r.items() if k not in judge_text}}
                             for i, r in enumerate(original)]
        elif rel.name == "search.jsonl":
            expected_rows = [{**{k: v for k, v in r.items() if k != "question"},
                              "pairs": [templated(p) for p in r["pairs"]]} for r in original]
            assert any(r["pairs"] for r in expected_rows)
        elif rel.name in ("pairs.jsonl", "audit.jsonl"):
            expected_rows = [templated(r) for r in original]
        else:
            expected_rows = [{k: v for k, v in r.items() if k != "prompt"} for r in original]
        assert copied == expected_rows, rel
    texts = {r["prompt"] for r in read_jsonl(run_dir / "iter_0" / "eval" / "gsm8k.jsonl")}
    texts |= {r["question"] for r in read_jsonl(run_dir / "seed" / "eft_heldout.jsonl")}
    texts |= set(questions.values())  # the training problems' questions: only the slot stands for them
    published_text = "".join(p.read_text() for p in out.rglob("*.jsonl"))
    assert texts and not any(text in published_text for text in texts)
    # Enough is kept to rebuild the report from the published folder alone.
    before = (run_dir / "report.md").read_text()
    (out / "report.md").unlink()
    _cli(["report", str(out)])
    rebuilt = (out / "report.md").read_text()
    assert rebuilt.split("## Paired differences")[1] == before.split("## Paired differences")[1]


def test_existing_run_needs_resume(tmp_path, tiny_model_dir, data_dir):
    config = smoke_config(tiny_model_dir, data_dir)
    loop.prepare_run_dir(tmp_path, config, resume=False)
    with pytest.raises(UserError, match="--resume"):
        loop.prepare_run_dir(tmp_path, config, resume=False)
    extended = smoke_config(tiny_model_dir, data_dir, iterations=3)
    assert loop.prepare_run_dir(tmp_path, extended, resume=True).iterations == 3


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"search": {"widht": 3}}, "search.widht"),
        ({"task": "chat"}, "task"),
        ({"eval": {"limit": {"gsm8k": "all"}}}, None),
    ],
)
def test_config_errors_name_the_key(overrides, message):
    if message is None:
        loop.load_run_config(REPO / "configs" / "cpu-smoke.yaml", overrides)  # dict values pass through
        return
    with pytest.raises(ConfigError, match=message):
        loop.load_run_config(REPO / "configs" / "cpu-smoke.yaml", overrides)


def test_cli_config_typo_is_one_clear_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["iterate", "--smoke", "--run-dir", str(tmp_path / "r"), "--set", "dpo.learning_rat=1e-6"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown config key(s) dpo.learning_rat" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "name", ["cpu-default.yaml", "cpu-smoke.yaml", "cpu-showcase.yaml", "qwen2.5-math-7b.yaml", "qwen2.5-math-72b.yaml"]
)
def test_shipped_configs_load(name):
    config = loop.load_run_config(REPO / "configs" / name)
    assert config.task == "math" and config.eval.benchmarks


def test_training_command_maps_the_launcher():
    cmd = S.training_command(
        "accelerate launch --config_file 'configs/accelerate/deepspeed zero3.yaml' --num_processes 8",
        "dpo", "runs/x/iter_1/model", Path("runs/x/iter_2/dpo_data.jsonl"), Path("runs/x/iter_2/model"),
        Path("runs/x/iter_2/dpo_config.yaml"),
    )
    assert cmd == ["accelerate", "launch", "--config_file", "configs/accelerate/deepspeed zero3.yaml",
                   "--num_processes", "8", "-m", "prm_selfreward.train", "dpo", "--model", "runs/x/iter_1/model",
                   "--data", "runs/x/iter_2/dpo_data.jsonl", "--out", "runs/x/iter_2/model",
                   "--config", "runs/x/iter_2/dpo_config.yaml"]


def test_train_stage_under_a_launcher_runs_the_subprocess(tmp_path, tiny_model_dir, data_dir):
    """The launcher path for real, with the Python interpreter as the 'launcher' (accelerate cannot
    start GPU processes here): the subprocess trains, the loop reads its result back, and a finished
    model directory is not trained again."""
    import sys

    config = smoke_config(tiny_model_dir, data_dir, train_launcher=sys.executable,
                          sft={"max_steps": 1, "max_length": 256})
    run = loop.RunContext(tmp_path, config, log=lambda msg: None)
    rows = [{"prompt": "What is 1 + 1?\nSolution:\n", "completion": "Step 1: 1 + 1 = 2. \\boxed{2}"}] * 4
    out = tmp_path / "iter_1" / "model"
    result = S.train_stage(run, "sft", str(tiny_model_dir), rows, 1)
    assert result["kind"] == "sft" and result["steps"] == 1 and result["examples"] == 4
    assert (tmp_path / "iter_1" / "sft_data.jsonl").exists()
    saved = yaml.safe_load((tmp_path / "iter_1" / "sft_config.yaml").read_text())
    assert saved["max_steps"] == 1 and saved["max_length"] == 256
    mtime = (out / "model.safetensors").stat().st_mtime
    assert S.train_stage(run, "sft", str(tiny_model_dir), rows, 1) == result
    assert (out / "model.safetensors").stat().st_mtime == mtime


def test_iterate_instruct_smoke_with_resume(tmp_path, tiny_model_dir, data_dir, monkeypatch):
    """Task instruct on the tiny model: a random model's judge output is unparsable, so no pair is made;
    that is counted, M2 is M1, and the run finishes, also after an interruption."""
    run_dir = tmp_path / "instruct"
    config = loop.prepare_run_dir(run_dir, smoke_config(tiny_model_dir, data_dir, task="instruct"), resume=False)

    def killed(run, t):
        raise KeyboardInterrupt

    real = S.instruct_pairs
    monkeypatch.setattr(S, "instruct_pairs", killed)
    with pytest.raises(KeyboardInterrupt):
        loop.iterate(config, run_dir, log=lambda msg: None)
    monkeypatch.setattr(S, "instruct_pairs", real)
    loop.iterate(loop.prepare_run_dir(run_dir, config, resume=True), run_dir, log=lambda msg: None)

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    stats = manifest["stages"]["pairs/M2"]["result"]
    assert stats["prompts_requested"] == 2 and stats["pairs"] == len(read_jsonl(run_dir / "iter_2" / "pairs.jsonl"))
    assert (run_dir / "iter_2" / "prompts.jsonl").exists() and (run_dir / "iter_2" / "judgments.jsonl").exists()
    assert (run_dir / "seed" / "eft_instruct_heldout.jsonl").exists()
    judge = manifest["stages"]["judge_eval/M1"]["result"]
    assert judge["total"] == len(read_jsonl(run_dir / "seed" / "eft_instruct_heldout.jsonl"))
    train = manifest["stages"]["train/M2 (DPO)"]["result"]
    if stats["pairs"] == 0:
        assert train["skipped"] and loop.RunContext(run_dir, config, print).model_spec(2) == str(run_dir / "iter_1" / "model")
    assert "| M2 |" in (run_dir / "report.md").read_text()
