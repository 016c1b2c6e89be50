"""Training configs: defaults, the mapping to TRL's real config objects, distributed arguments, and the
accelerate/DeepSpeed files under configs/accelerate (parsed by accelerate itself)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from prm_selfreward.config import ConfigError, from_dict
from prm_selfreward.errors import UserError
from prm_selfreward.train.config import (
    DPOTrainConfig,
    SFTTrainConfig,
    device_kwargs,
    gradient_accumulation,
    resolve_device,
)
from prm_selfreward.train.distributed import DistributedConfig, distributed_trl_kwargs

ACCELERATE_DIR = Path(__file__).resolve().parents[1] / "configs" / "accelerate"


@pytest.mark.parametrize(
    "device,bf16,checkpointing,expected",
    [
        ("cpu", None, None, {"use_cpu": True, "bf16": False, "fp16": False, "activation_checkpointing": False}),
        ("cuda", None, None, {"use_cpu": False, "bf16": True, "fp16": False, "activation_checkpointing": True}),
        ("cuda", False, False, {"use_cpu": False, "bf16": False, "activation_checkpointing": False}),
        ("cpu", True, None, {"use_cpu": True, "bf16": True, "activation_checkpointing": False}),
    ],
)
def test_device_kwargs(device, bf16, checkpointing, expected):
    kwargs = device_kwargs(device, bf16, checkpointing)
    for key, value in expected.items():
        assert kwargs[key] == value, key


@pytest.mark.parametrize("device", ["auto", "tpu"])
def test_device_kwargs_rejects_unresolved(device):
    with pytest.raises(ConfigError):
        device_kwargs(device)


def test_resolve_device_rejects_unknown():
    with pytest.raises(ConfigError, match="device"):
        resolve_device("gpu0")


@pytest.mark.parametrize(
    "batch,per_device,processes,expected",
    [(32, 4, 1, 8), (32, 4, 2, 4), (32, 4, 8, 1), (32, 8, 8, 1), (30, 4, 1, 8), (1, 4, 1, 1), (32, 1, 1, 32)],
)
def test_gradient_accumulation(batch, per_device, processes, expected):
    assert gradient_accumulation(batch, per_device, processes) == expected


def test_paper_defaults():
    sft, dpo = SFTTrainConfig(), DPOTrainConfig()
    assert (sft.epochs, sft.learning_rate) == (3.0, 1e-6)
    assert (dpo.epochs, dpo.learning_rate, dpo.beta, dpo.batch_size, dpo.loss_type) == (1.0, 5e-7, 0.1, 32, "sigmoid")
    assert not dpo.precompute_ref_log_probs and not dpo.lora and not sft.lora


def test_sft_config_maps_to_real_trl_sftconfig(tmp_path):
    from trl import SFTConfig

    config = SFTTrainConfig(device="cpu", batch_size=32, per_device_batch_size=4, max_length=512, seed=7)
    args = SFTConfig(**config.trl_kwargs(str(tmp_path), processes=1))
    # TRL's own defaults (bf16=True, checkpointing on) must be overridden on CPU.
    assert args.use_cpu is True and args.bf16 is False and args.fp16 is False
    assert args.gradient_checkpointing is False and args.activation_checkpointing is False
    assert args.learning_rate == 1e-6 and args.num_train_epochs == 3.0
    assert args.per_device_train_batch_size == 4 and args.gradient_accumulation_steps == 8
    assert args.max_length == 512 and args.packing is False
    assert args.seed == 7 and args.report_to == [] and args.save_strategy == "no"
    assert args.device.type == "cpu"
    # save_steps: a checkpoint every N steps, only the latest kept (the resumable state of a killed run).
    saving = SFTConfig(**SFTTrainConfig(device="cpu", save_steps=5).trl_kwargs(str(tmp_path), processes=1))
    assert saving.save_strategy == "steps" and saving.save_steps == 5 and saving.save_total_limit == 1


def test_dpo_config_maps_to_real_trl_dpoconfig(tmp_path):
    from trl import DPOConfig

    config = DPOTrainConfig(device="cpu", precompute_ref_log_probs=True, loss_type="ipo", beta=0.2, max_length=300)
    args = DPOConfig(**config.trl_kwargs(str(tmp_path), processes=1))
    assert args.use_cpu is True and args.bf16 is False and args.gradient_checkpointing is False
    assert args.learning_rate == 5e-7 and args.num_train_epochs == 1.0
    assert args.beta == 0.2 and args.loss_type == ["ipo"] and args.precompute_ref_log_probs is True
    assert args.max_length == 300 and args.gradient_accumulation_steps == 8


def test_trl_defaults_differ_from_ours(tmp_path):
    """Guards the reason for device_kwargs: without it TRL would train in bf16 with checkpointing on CPU."""
    from trl import DPOConfig

    args = DPOConfig(output_dir=str(tmp_path), use_cpu=True)
    assert args.bf16 is True and args.gradient_checkpointing is True


def test_world_size_sets_accumulation(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    kwargs = DPOTrainConfig(device="cpu").trl_kwargs(str(tmp_path))
    assert kwargs["gradient_accumulation_steps"] == 2  # 32 = 4 per device x 4 processes x 2


def test_config_from_yaml_mapping_and_typos():
    data = yaml.safe_load(
        "learning_rate: 1e-6\nlora: true\nlora_r: 8\ndistributed:\n  ddp_timeout: 60\n  deepspeed: null\n"
    )
    config = from_dict(DPOTrainConfig, data)
    assert config.learning_rate == 1e-6 and config.lora and config.lora_r == 8
    assert config.distributed.ddp_timeout == 60
    with pytest.raises(ConfigError, match="distributed.ddp_timout"):
        from_dict(DPOTrainConfig, {"distributed": {"ddp_timout": 1}})
    with pytest.raises(ConfigError, match="lr"):
        from_dict(SFTTrainConfig, {"lr": 1e-6})


def test_rpo_alpha_adds_trls_sft_loss_on_the_chosen_step(tmp_path):
    from trl import DPOConfig

    plain = DPOConfig(**DPOTrainConfig(device="cpu").trl_kwargs(str(tmp_path), processes=1))
    assert plain.loss_type == ["sigmoid"] and plain.loss_weights is None
    rpo = DPOConfig(**DPOTrainConfig(device="cpu", rpo_alpha=0.5).trl_kwargs(str(tmp_path), processes=1))
    assert rpo.loss_type == ["sigmoid", "sft"] and rpo.loss_weights == [1.0, 0.5]
    with pytest.raises(ConfigError, match="rpo_alpha"):
        DPOTrainConfig(device="cpu", loss_type="sft", rpo_alpha=1.0).trl_kwargs(str(tmp_path))
    with pytest.raises(ConfigError, match="rpo_alpha"):
        from_dict(DPOTrainConfig, {"rpo_alpha": -1.0})


def test_invalid_loss_type_rejected(tmp_path):
    with pytest.raises(ConfigError, match="loss_type"):
        DPOTrainConfig(device="cpu", loss_type="sigmod").trl_kwargs(str(tmp_path))


@pytest.mark.parametrize("lora,targets,expected", [(False, None, None), (True, ["all-linear"], "all-linear"),
                                                   (True, ["q_proj", "v_proj"], {"q_proj", "v_proj"})])
def test_peft_config(lora, targets, expected):
    config = DPOTrainConfig(lora=lora, lora_r=8, lora_alpha=16, **({"lora_target_modules": targets} if targets else {}))
    peft_config = config.peft_config()
    if expected is None:
        assert peft_config is None
        return
    assert peft_config.r == 8 and peft_config.lora_alpha == 16
    assert peft_config.target_modules == expected


def test_distributed_kwargs(tmp_path):
    ds = tmp_path / "ds.json"
    ds.write_text("{}")
    kwargs = distributed_trl_kwargs(DistributedConfig(deepspeed=str(ds), ddp_find_unused_parameters=False))
    assert kwargs == {"deepspeed": str(ds), "ddp_find_unused_parameters": False, "ddp_timeout": 7200}
    assert "deepspeed" not in distributed_trl_kwargs(DistributedConfig())
    with pytest.raises(UserError, match="deepspeed config not found"):
        distributed_trl_kwargs(DistributedConfig(deepspeed=str(tmp_path / "missing.json")))


def test_distributed_kwargs_reach_trl(tmp_path):
    from trl import DPOConfig

    config = DPOTrainConfig(device="cpu", distributed=DistributedConfig(ddp_find_unused_parameters=True, ddp_timeout=99))
    args = DPOConfig(**config.trl_kwargs(str(tmp_path), processes=1))
    assert args.ddp_find_unused_parameters is True and args.ddp_timeout == 99


@pytest.mark.parametrize(
    "name,distributed_type,num_processes,deepspeed",
    [
        ("single_gpu", "NO", 1, None),
        ("multi_gpu_ddp", "MULTI_GPU", 8, None),
        ("deepspeed_zero3", "DEEPSPEED", 8, {"zero_stage": 3, "zero3_init_flag": True, "zero3_save_16bit_model": True}),
    ],
)
def test_accelerate_configs_load_in_accelerate(name, distributed_type, num_processes, deepspeed):
    from accelerate.commands.config.config_args import load_config_from_file

    path = ACCELERATE_DIR / f"{name}.yaml"
    config = load_config_from_file(str(path))  # rejects unknown keys
    assert config.distributed_type.value == distributed_type
    assert config.num_processes == num_processes
    assert str(config.mixed_precision) == "bf16" and config.use_cpu is False
    if deepspeed:
        for key, value in deepspeed.items():
            assert config.deepspeed_config[key] == value, key


def test_deepspeed_json():
    data = json.loads((ACCELERATE_DIR / "ds_zero3.json").read_text())
    assert data["zero_optimization"]["stage"] == 3
    assert data["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    # "auto" lets transformers fill these from the TrainingArguments (batch, accumulation, precision).
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size"):
        assert data[key] == "auto", key
    assert data["bf16"]["enabled"] == "auto"
