"""Training configs (SFT for M0 -> M1, step-DPO for M(t) -> M(t+1)) and their mapping to TRL's configs.

Defaults are the process-based self-rewarding paper's (Zhang et al. 2025): SFT 3 epochs at lr 1e-6,
step-DPO 1 epoch at lr 5e-7, beta 0.1, effective batch 32. ``batch_size`` is the *effective* (global)
batch: gradient accumulation is derived from it, the per-device batch and the number of processes, so
the same YAML means the same optimisation on 1 CPU or 8 GPUs.

Precision: weights are always loaded in fp32 and ``bf16`` (on GPU) is mixed precision (autocast; under
DeepSpeed, bf16 parameters with fp32 master weights in the optimizer). Pure bf16 weights would lose the
updates: at lr 5e-7 a step changes a weight by ~1e-4 of its size, below bf16's resolution (~4e-3).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from ..config import ConfigError, option
from ..devices import DEVICES, resolve_device  # noqa: F401  (re-exported)
from .distributed import DistributedConfig, distributed_trl_kwargs, world_size

logger = logging.getLogger(__name__)

def device_kwargs(device: str, bf16: bool | None = None, gradient_checkpointing: bool | None = None) -> dict[str, Any]:
    """TRL/transformers arguments for ``device`` (``"cpu"`` or ``"cuda"``).

    TRL's configs default to ``bf16=True`` and ``gradient_checkpointing=True``, both wrong on a CPU: bf16 is
    several times slower on CPUs without native bf16, and checkpointing buys memory we have with time we
    don't. On CPU: ``use_cpu=True``, fp32, no checkpointing. On GPU: bf16 mixed precision and gradient
    checkpointing. ``bf16`` / ``gradient_checkpointing`` override the per-device choice when not None.
    transformers 5 names the latter ``activation_checkpointing`` (``gradient_checkpointing`` is its
    deprecated alias and mirrors it), so that is the key set here.
    """
    if device == "cpu":
        kwargs = {"use_cpu": True, "bf16": False, "fp16": False, "activation_checkpointing": False}
        # Pinned memory only helps host-to-GPU copies.
        kwargs["dataloader_pin_memory"] = False
    elif device == "cuda":
        kwargs = {"use_cpu": False, "bf16": True, "fp16": False, "activation_checkpointing": True}
    else:
        raise ConfigError(f"device: expected cpu or cuda (resolve 'auto' first), got {device!r}")
    if bf16 is not None:
        kwargs["bf16"] = bf16
    if gradient_checkpointing is not None:
        kwargs["activation_checkpointing"] = gradient_checkpointing
    return kwargs


def gradient_accumulation(batch_size: int, per_device_batch_size: int, processes: int) -> int:
    """Accumulation steps so that ``per_device * processes * steps >= batch_size`` (rounded up)."""
    if batch_size < 1 or per_device_batch_size < 1 or processes < 1:
        raise ConfigError(
            f"batch sizes must be positive (batch_size={batch_size}, per_device_batch_size={per_device_batch_size})"
        )
    return max(1, math.ceil(batch_size / (per_device_batch_size * processes)))


@dataclass
class TrainConfigBase:
    """Options shared by SFT and DPO; see :class:`SFTTrainConfig` and :class:`DPOTrainConfig` for defaults."""

    learning_rate: float = option(1e-6, minimum=0.0, exclusive_minimum=True, help="Peak learning rate (AdamW).")
    epochs: float = option(1.0, minimum=0.0, exclusive_minimum=True, help="Passes over the training records.")
    max_steps: int = option(-1, help="Stop after this many optimizer steps (overrides epochs when > 0).")
    batch_size: int = option(
        32, minimum=1, help="Effective (global) batch: per_device_batch_size x processes x gradient accumulation."
    )
    per_device_batch_size: int = option(
        4, minimum=1, help="Examples per forward pass on each device; gradient accumulation makes up the rest."
    )
    max_length: int = option(
        1024,
        minimum=1, help="Maximum tokens of prompt + completion. Longer records are dropped before training and counted "
        "(TrainResult.dropped_too_long), never silently truncated.",
    )
    lr_scheduler_type: str = option("linear", help="transformers scheduler name (linear, cosine, constant ...).")
    warmup_ratio: float = option(0.0, minimum=0.0, maximum=1.0, help="Fraction of the steps spent warming the learning rate up from 0.")
    weight_decay: float = option(0.0, help="AdamW weight decay.")
    max_grad_norm: float = option(1.0, help="Gradient clipping norm.")
    lora: bool = option(
        False, help="Train a LoRA adapter (peft) instead of all weights; it is merged into the saved model."
    )
    lora_r: int = option(16, minimum=1, help="LoRA rank.")
    lora_alpha: int = option(32, help="LoRA scaling alpha.")
    lora_dropout: float = option(0.05, help="Dropout on the LoRA path.")
    lora_target_modules: list[str] = option(
        ["all-linear"],
        help="Modules that get adapters: ['all-linear'] (every linear layer except the output layer) or names "
        "such as q_proj, v_proj.",
    )
    freeze_embeddings: bool = option(
        False,
        help="Full fine-tuning only: keep the token embedding (and a tied output layer) fixed. For models with "
        "a large vocabulary (the embedded Gemma 3: 168M of 268M parameters) this saves most optimizer memory.",
    )
    seed: int = option(42, help="Seed for data order, dropout and adapter initialisation.")
    logging_steps: int = option(1, minimum=1, help="Log loss and metrics every this many optimizer steps.")
    save_steps: int = option(
        0,
        minimum=0,
        help="Save a resumable checkpoint (weights or LoRA adapter, optimizer, scheduler, RNG, trainer state) every "
        "this many optimizer steps; a training stage that is killed continues from the latest one (0: none).",
    )
    device: str = option("auto", help="auto (GPU when visible), cpu or cuda.")
    bf16: bool | None = option(
        None, help="bf16 mixed precision; None: on for GPU, off for CPU (slow there without native bf16)."
    )
    gradient_checkpointing: bool | None = option(None, help="Recompute activations; None: on for GPU, off for CPU.")
    show_progress: bool = option(False, help="Show transformers' tqdm progress bar while training.")
    distributed: DistributedConfig = option(
        default_factory=DistributedConfig, help="Multi-process (DDP / DeepSpeed) arguments."
    )

    def validate(self) -> None:
        if self.max_length < 2:
            raise ConfigError(f"max_length must be at least 2, got {self.max_length}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError("epochs must be positive (or set max_steps)")
        if self.lora and self.freeze_embeddings:
            logger.info("freeze_embeddings has no effect with lora (the base model is frozen anyway)")
        gradient_accumulation(self.batch_size, self.per_device_batch_size, 1)

    def trl_kwargs(self, output_dir: str, processes: int | None = None) -> dict[str, Any]:
        """Keyword arguments shared by ``trl.SFTConfig`` and ``trl.DPOConfig``.

        ``output_dir`` is the trainer's scratch directory: the checkpoints of ``save_steps`` (only the latest is
        kept), nothing else; the trained model is written by the train functions. ``processes`` defaults to
        ``WORLD_SIZE``.
        """
        self.validate()
        processes = processes or world_size()
        accumulation = gradient_accumulation(self.batch_size, self.per_device_batch_size, processes)
        effective = accumulation * self.per_device_batch_size * processes
        if effective != self.batch_size:
            logger.warning(
                "effective batch %d (per-device %d x %d processes x %d accumulation) instead of batch_size %d",
                effective, self.per_device_batch_size, processes, accumulation, self.batch_size,
            )
        kwargs: dict[str, Any] = {
            "output_dir": output_dir,
            "learning_rate": self.learning_rate,
            "num_train_epochs": self.epochs,
            "max_steps": self.max_steps,
            "per_device_train_batch_size": self.per_device_batch_size,
            "gradient_accumulation_steps": accumulation,
            "max_length": self.max_length,
            "lr_scheduler_type": self.lr_scheduler_type,
            "warmup_steps": self.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio of the steps
            "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm,
            "seed": self.seed,
            "data_seed": self.seed,
            "logging_strategy": "steps",
            "logging_steps": self.logging_steps,
            "save_strategy": "steps" if self.save_steps else "no",
            "report_to": "none",
            "disable_tqdm": not self.show_progress,
        }
        if self.save_steps:
            kwargs.update(save_steps=self.save_steps, save_total_limit=1)
        kwargs.update(device_kwargs(resolve_device(self.device), self.bf16, self.gradient_checkpointing))
        kwargs.update(distributed_trl_kwargs(self.distributed))
        return kwargs

    def peft_config(self) -> Any:
        """A ``peft.LoraConfig`` when ``lora`` is on, else None."""
        if not self.lora:
            return None
        from peft import LoraConfig

        targets: str | list[str] = self.lora_target_modules
        if targets == ["all-linear"]:
            targets = "all-linear"
        return LoraConfig(
            r=self.lora_r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=targets,
            task_type="CAUSAL_LM",
        )


LOSS_AVERAGES = ("token", "record")
"""How SFT averages its per-token loss: over the batch's tokens (TRL's) or per record, then over records."""


@dataclass
class SFTTrainConfig(TrainConfigBase):
    """Supervised fine-tuning on IFT + EFT seed data (M0 -> M1); loss on the completion only."""

    learning_rate: float = option(1e-6, minimum=0.0, exclusive_minimum=True, help="Peak learning rate (paper: 1e-6).")
    epochs: float = option(3.0, minimum=0.0, exclusive_minimum=True, help="Passes over the seed data (paper: 3).")
    loss_average: str = option(
        "token",
        choices=LOSS_AVERAGES,
        help="token: the loss is the mean over every completion token of the batch (TRL's), so a record weighs "
        "as much as it has tokens; record: each record's mean token loss, averaged over the records, so a "
        "4-token judge verdict weighs as much as a 200-token solution (docs/training.md).",
    )

    def trl_kwargs(self, output_dir: str, processes: int | None = None) -> dict[str, Any]:
        kwargs = super().trl_kwargs(output_dir, processes)
        # The dataset arrives tokenised with labels already masked (prompt = -100), so TRL's own
        # prompt/completion handling is not involved; packing would mix examples.
        kwargs["packing"] = False
        return kwargs


LOSS_TYPES = (
    "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot", "aot_unpaired",
    "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm",
)


@dataclass
class DPOTrainConfig(TrainConfigBase):
    """Step-DPO on the model's own step pairs (M(t) -> M(t+1))."""

    learning_rate: float = option(5e-7, minimum=0.0, exclusive_minimum=True, help="Peak learning rate (paper: 5e-7).")
    epochs: float = option(1.0, minimum=0.0, exclusive_minimum=True, help="Passes over the pairs (paper: 1).")
    beta: float = option(0.1, minimum=0.0, exclusive_minimum=True, help="DPO beta: strength of the pull towards the reference model (paper: 0.1).")
    loss_type: str = option("sigmoid", help="TRL DPO loss: sigmoid (standard DPO), ipo, hinge, robust ...")
    rpo_alpha: float = option(
        0.0,
        minimum=0.0,
        help="Weight of a negative log-likelihood term on the chosen completion (step) added to the DPO loss "
        "(TRL's 'sft' loss type; RPO, Pang et al. 2024, uses 1.0): keeps DPO from lowering the chosen one's "
        "likelihood along with the rejected one's, which can make a model loop. 0: plain DPO (the papers' recipe).",
    )
    precompute_ref_log_probs: bool = option(
        False,
        help="Compute the reference log-probabilities once before training instead of keeping a reference model "
        "in memory (halves memory for full fine-tuning; with LoRA the reference is the adapter-free base).",
    )

    def validate(self) -> None:
        super().validate()
        if self.loss_type not in LOSS_TYPES:
            raise ConfigError(f"loss_type: expected one of {', '.join(LOSS_TYPES)}, got {self.loss_type!r}")
        if self.rpo_alpha > 0 and self.loss_type == "sft":
            raise ConfigError("rpo_alpha adds TRL's 'sft' loss to the preference loss; loss_type 'sft' has no "
                              "preference loss to add it to (set rpo_alpha: 0, or another loss_type)")

    def trl_kwargs(self, output_dir: str, processes: int | None = None) -> dict[str, Any]:
        kwargs = super().trl_kwargs(output_dir, processes)
        kwargs.update(
            beta=self.beta,
            loss_type=[self.loss_type, "sft"] if self.rpo_alpha > 0 else [self.loss_type],
            loss_weights=[1.0, self.rpo_alpha] if self.rpo_alpha > 0 else None,
            precompute_ref_log_probs=self.precompute_ref_log_probs,
        )
        return kwargs
