"""``prm-sr plan``: model shapes from config.json, memory estimates, prompt lengths, and clear failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prm_selfreward.cli import app
from prm_selfreward.config import ConfigError
from prm_selfreward.models.shapes import SHIPPED_CONFIGS, model_shape
from prm_selfreward.plan import build_plan, zero3_model_states
from prm_selfreward.run_config import CONFIG_DIR, load_run_config

QWEN_05B = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
    "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
    "max_position_embeddings": 32768, "tie_word_embeddings": True,
}
SHAPES = {"0.5b": QWEN_05B, "7b": SHIPPED_CONFIGS["Qwen/Qwen2.5-Math-7B"], "72b": SHIPPED_CONFIGS["Qwen/Qwen2.5-Math-72B"]}


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """config.json-only model directories (no weights, no tokenizer) of three sizes."""
    out = {}
    for name, data in SHAPES.items():
        d = tmp_path_factory.mktemp(f"qwen-{name}")
        (d / "config.json").write_text(json.dumps(data))
        out[name] = d
    return out


@pytest.mark.parametrize(
    "name, billions, largest_millions, context",
    [("0.5b", 0.494, 136, 32768), ("7b", 7.616, 545, 4096), ("72b", 72.706, 1246, 4096)],
)
def test_model_shape_from_a_config_json(model_dirs, name, billions, largest_millions, context):
    shape = model_shape(str(model_dirs[name]))
    assert round(shape.parameters / 1e9, 3) == billions  # Qwen2.5's published 0.49B / 7.61B / 72.7B
    assert round(shape.largest_layer_parameters / 1e6) == largest_millions  # the embedding
    assert shape.context == context and str(model_dirs[name]) in shape.source


@pytest.mark.parametrize(
    "offload_optimizer, offload_param, cpu_gib, gpu_gib",
    # DeepSpeed's documented estimate for t5-small (60.5M parameters, 16.4M largest layer, 1 GPU, zero_init)
    [(True, True, 1.52, 0.06), (True, False, 1.35, 0.17), (False, False, 0.09, 1.08)],
)
def test_zero3_model_states_match_deepspeeds_estimator(offload_optimizer, offload_param, cpu_gib, gpu_gib):
    cpu, gpu = zero3_model_states(60_506_624, 16_449_536, 1, 1, offload_optimizer, offload_param)
    assert (round(cpu / 2**30, 2), round(gpu / 2**30, 2)) == (cpu_gib, gpu_gib)


def plan_of(config: str, **overrides):
    from prm_selfreward.config import parse_overrides

    cfg = load_run_config(CONFIG_DIR / config, parse_overrides([f"{k}={v}" for k, v in overrides.items()]))
    return build_plan(cfg, base_dir=CONFIG_DIR.parent)


@pytest.mark.parametrize("config", ["qwen2.5-math-7b.yaml", "qwen2.5-math-72b.yaml"])
def test_the_paper_configs_plan_cleanly(config):
    plan = plan_of(config)
    assert plan.ok(), plan.problems
    assert "shipped table" in plan.shape.source or "hub cache" in plan.shape.source
    train = [s for s in plan.stages if s.stage.startswith("train")]
    assert train and all(s.memory_total < 80 for s in train)


def test_72b_full_fine_tuning_does_not_fit_without_offload_or_lora():
    plan = plan_of("qwen2.5-math-72b.yaml", **{"sft.lora": "false", "dpo.lora": "false"})
    assert any("GB per GPU > 80" in p for p in plan.problems)


def test_72b_full_fine_tuning_with_offload_needs_more_host_memory_than_a_node_has(tmp_path):
    accel = (CONFIG_DIR / "accelerate" / "deepspeed_zero3.yaml").read_text().replace(
        "offload_optimizer_device: none", "offload_optimizer_device: cpu")
    (tmp_path / "z3_offload.yaml").write_text(accel)
    plan = plan_of("qwen2.5-math-72b.yaml", **{
        "sft.lora": "false", "dpo.lora": "false",
        "train_launcher": f"'accelerate launch --config_file {tmp_path / 'z3_offload.yaml'} --num_processes 8'"})
    assert any("host memory" in p for p in plan.problems)
    assert not any("GB per GPU >" in p for p in plan.problems)  # the GPUs would hold it


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model.max_model_len": 512}, "judge:"),
        ({"model.max_model_len": 512}, "eval:"),
        ({"model.max_model_len": 8192}, "above the model's max_position_embeddings"),
        ({"model.tensor_parallel_size": 1, "cluster.gpu_memory_gb": 16}, "vLLM:"),
    ],
)
def test_plan_names_what_cannot_fit(overrides, message):
    plan = plan_of("qwen2.5-math-7b.yaml", **overrides)
    assert any(message in p for p in plan.problems), plan.problems


def test_plan_of_a_small_model_on_cpu(model_dirs):
    plan = plan_of("cpu-default.yaml", **{"model.name": str(model_dirs["0.5b"])})
    assert plan.ok(), plan.problems and plan.context == 32768
    assert "estimated" in plan.token_counter  # the directory has no tokenizer


def test_plan_command_fails_clearly_on_a_short_context(capsys):
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["plan", "--config", str(CONFIG_DIR / "qwen2.5-math-7b.yaml"),
                                      "--set", "model.max_model_len=512"])
    assert result.exit_code != 0
    assert "DOES NOT FIT" in result.output and "judge:" in result.output


def test_multi_gpu_config_without_a_launcher_stops_before_the_run(tmp_path):
    from prm_selfreward.loop import prepare_run_dir

    cfg = load_run_config(CONFIG_DIR / "qwen2.5-math-7b.yaml", {"train_launcher": None})
    with pytest.raises(ConfigError, match="train_launcher.*--set train_launcher='accelerate launch"):
        prepare_run_dir(tmp_path / "run", cfg, resume=False)
    assert not (tmp_path / "run").exists()
