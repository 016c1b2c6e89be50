"""Mistakes caught before any model loads (issue: "every mistake caught before a model loads").

Each case runs the real CLI with the model loader replaced by one that fails the test if called: the
error must come first, in one line naming the setting, and leave no run behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import prm_selfreward.loop as loop
from prm_selfreward.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_model_loads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the configuration error was reported")

    monkeypatch.setattr("prm_selfreward.models.config.load_generator", refuse)


@pytest.fixture()
def captured(monkeypatch):
    """Replace the loop itself: what configuration would it have run with?"""
    seen = []

    def fake_iterate(config, run_dir, log=print):
        seen.append(config)
        (Path(run_dir) / "report.md").write_text("# Run report\n")
        return Path(run_dir)

    monkeypatch.setattr(loop, "iterate", fake_iterate)
    monkeypatch.setattr("prm_selfreward.report.build_report", lambda run_dir: Path(run_dir) / "report.md")
    monkeypatch.setattr("prm_selfreward.report.print_report", lambda console, path: None)
    return seen


def _fails(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("error:")
    return err


@pytest.mark.parametrize(
    "override,message",
    [
        ("judge.mode=logprb", "judge.mode: 'logprb' is not one of logprob, generate, likelihood"),
        ("iterations=-1", "iterations: must be at least 0"),
        ("problems_per_iteration=[8, 0]", "problems_per_iteration[1]: must be at least 1"),
        ("model.batch_size=0", "model.batch_size: must be at least 1"),
        ("sft.learning_rate=0", "sft.learning_rate: must be greater than 0"),
        ("dpo.learning_rate=-1e-6", "dpo.learning_rate: must be greater than 0"),
        ("eval.limit={gsm8k: 0}", "eval.limit.gsm8k: must be at least 1"),
        ("eval.benchmarks=[gsm9k]", "unknown benchmark(s) gsm9k"),
        ("train_sources=[math500]", "train_sources: unknown source(s) math500"),
        ("model.backend=onnx", "model.backend: 'onnx' is not one of hf, vllm"),
        ("search.width=1", "search.width: must be at least 2"),
        ("eval.few_shot=many", "few_shot must be a number of examples or 'auto'"),
    ],
)
def test_bad_settings_fail_before_any_model_loads(tmp_path, data_dir, capsys, override, message):
    run_dir = tmp_path / "run"
    err = _fails(["iterate", "--smoke", "--run-dir", str(run_dir), "--data-dir", str(data_dir), "--set", override],
                 capsys)
    assert message in err
    assert not (run_dir / "config.yaml").exists() and not (run_dir / "manifest.json").exists()


def test_empty_data_directory_fails_first(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _fails(["iterate", "--smoke", "--run-dir", str(tmp_path / "run"), "--data-dir", str(empty)], capsys)
    assert "holds none of the benchmark files" in err


def test_resume_without_a_run_is_an_error(tmp_path, data_dir, capsys):
    err = _fails(["iterate", "--smoke", "--resume", "--run-dir", str(tmp_path / "none"), "--data-dir", str(data_dir)],
                 capsys)
    assert "holds no run" in err


def test_task_in_a_config_file_is_respected(tmp_path, data_dir, captured):
    path = tmp_path / "instruct.yaml"
    data = yaml.safe_load((REPO / "configs" / "cpu-smoke.yaml").read_text())
    data["task"] = "instruct"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SystemExit) as exc:
        main(["iterate", "--config", str(path), "--data-dir", str(data_dir), "--run-dir", str(tmp_path / "r")])
    assert exc.value.code in (0, None)
    assert captured[-1].task == "instruct"
    with pytest.raises(SystemExit):
        main(["iterate", "--config", str(path), "--task", "math", "--data-dir", str(data_dir),
              "--run-dir", str(tmp_path / "r2")])
    assert captured[-1].task == "math"  # an explicit --task wins


def test_a_failed_run_resumes_with_a_corrected_setting(tmp_path, data_dir, captured, tiny_model_dir):
    run_dir = tmp_path / "run"
    args = ["iterate", "--smoke", "--run-dir", str(run_dir), "--data-dir", str(data_dir)]
    with pytest.raises(SystemExit):
        main([*args, "--model", "/no/such/model"])
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["name"] == "/no/such/model"
    with pytest.raises(SystemExit):
        main([*args, "--resume", "--set", f"model.name={tiny_model_dir}"])
    assert captured[-1].model.name == str(tiny_model_dir)
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["name"] == str(tiny_model_dir)
    changes = json.loads((run_dir / "manifest.json").read_text())["config_changes"]
    assert changes[-1]["set"] == {"model.name": str(tiny_model_dir)}
    assert changes[-1]["was"] == {"model.name": "/no/such/model"}  # the report names what a change replaced
    with pytest.raises(SystemExit):  # resuming without options changes nothing more
        main([*args, "--resume"])
    assert len(json.loads((run_dir / "manifest.json").read_text())["config_changes"]) == 1


def test_resume_cannot_change_the_task(tmp_path, data_dir, captured, capsys):
    run_dir = tmp_path / "run"
    args = ["iterate", "--smoke", "--run-dir", str(run_dir), "--data-dir", str(data_dir)]
    with pytest.raises(SystemExit):
        main(args)
    err = _fails([*args, "--resume", "--task", "instruct"], capsys)
    assert "cannot be resumed as task 'instruct'" in err


def test_an_edited_config_file_on_resume_is_named_not_silently_ignored(tmp_path, data_dir, captured, capsys):
    """--resume keeps the run's saved config: settings changed in the --config file are listed in a warning."""
    path = tmp_path / "run.yaml"
    data = yaml.safe_load((REPO / "configs" / "cpu-smoke.yaml").read_text())
    path.write_text(yaml.safe_dump(data))
    args = ["iterate", "--config", str(path), "--data-dir", str(data_dir), "--run-dir", str(tmp_path / "r")]
    with pytest.raises(SystemExit):
        main(args)
    with pytest.raises(SystemExit):
        main([*args, "--resume"])
    assert "warning" not in capsys.readouterr().out  # the same file: nothing to say
    data["sft"]["lora_r"] = 2
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SystemExit):
        main([*args, "--resume"])
    out = " ".join(capsys.readouterr().out.split())
    assert "sft.lora_r" in out and "--set KEY=VALUE" in out
    assert captured[-1].sft.lora_r == captured[0].sft.lora_r != 2  # the run's own setting, not the file's
