"""Supervised fine-tuning (M0 -> M1) on IFT + EFT seed data with TRL's SFTTrainer.

Records are ``{"prompt": message, "completion": text}``. The message becomes the model's prompt by the
same rule the generators use (:func:`~prm_selfreward.train.common.format_prompt`); prompt and completion
are tokenised separately (clean boundary) and the completion ends in EOS, because IFT completions are
whole solutions and EFT completions whole judgments. The loss is on the completion tokens only (the
prompt's labels are -100). We hand SFTTrainer the tokenised ``input_ids`` / ``labels``, so TRL's own
tokenisation (which joins prompt and completion) is skipped.

``loss_average: record`` (:class:`RecordMeanSFTTrainer`) weighs every record the same: TRL averages the
loss over the batch's completion tokens, so in IFT + EFT data a judgment's 4-token verdict is a sliver
of what the solutions' hundreds of tokens contribute (1.5% of the showcase's SFT tokens).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from .common import (
    NoTrainingData,
    TrainResult,
    encode_completion,
    encode_prompt,
    format_prompt,
    load_for_training,
    quiet_trainer,
    resume_point,
    run_trainer,
    save_trained_model,
    scratch_dir,
    summarize_log_history,
)
from .config import SFTTrainConfig

logger = logging.getLogger(__name__)


@dataclass
class SFTExamples:
    """Tokenised SFT rows (``input_ids``, ``labels``) and what was dropped on the way."""

    rows: list[dict[str, list[int]]] = field(default_factory=list)
    dropped_too_long: int = 0
    dropped_empty: int = 0


def tokenize_sft_records(records: Iterable[Mapping[str, Any]], tokenizer: Any, max_length: int) -> SFTExamples:
    """Tokenise ``{"prompt", "completion"}`` records for completion-only SFT.

    Records longer than ``max_length`` tokens (prompt + completion + EOS) are dropped and counted, as are
    records with an empty completion. Other keys in a record are ignored.
    """
    out = SFTExamples()
    for i, record in enumerate(records):
        try:
            message, completion = record["prompt"], record["completion"]
        except KeyError as exc:
            raise NoTrainingData(f"SFT record {i} has no {exc.args[0]!r} field") from exc
        if not completion.strip():
            out.dropped_empty += 1
            continue
        prompt_ids = encode_prompt(tokenizer, format_prompt(tokenizer, message))
        completion_ids = encode_completion(tokenizer, completion, add_eos=True)
        if len(prompt_ids) + len(completion_ids) > max_length:
            out.dropped_too_long += 1
            continue
        out.rows.append(
            {"input_ids": prompt_ids + completion_ids, "labels": [-100] * len(prompt_ids) + completion_ids}
        )
    return out


def record_mean_loss(token_log_probs: Any, label_mask: Any, records: int) -> Any:
    """The negative log-likelihood averaged per record, then summed over the rows and divided by
    ``records``, the records of the whole optimizer step (every micro-batch of its gradient accumulation).

    ``token_log_probs`` and ``label_mask`` are ``(rows, positions)``: each trained token's log-probability
    (zero elsewhere) and whether the position is trained. A row with no trained token adds nothing. The
    micro-batches' losses sum to the mean over the step's records of each record's mean token loss.
    """
    mask = label_mask.to(token_log_probs.dtype)
    tokens = mask.sum(dim=1)
    per_record = -(token_log_probs * mask).sum(dim=1) / tokens.clamp(min=1)
    return per_record.sum() / max(int(records), 1)


def records_with_targets(labels: Any) -> int:
    """Rows of a ``labels`` batch with at least one trained token (a label other than -100 after the
    first position, which no causal LM predicts)."""
    return int((labels[..., 1:] != -100).any(dim=-1).sum())


class RecordMeanSFTTrainer(SFTTrainer):
    """``trl.SFTTrainer`` whose training loss weighs each record equally (:func:`record_mean_loss`).

    The records of an optimizer step are counted where transformers gathers its micro-batches
    (``get_batch_samples``); the loss comes from TRL's fused LM head (per-token log-probabilities without
    the full logits, as TRL's own loss) and is already scaled for gradient accumulation
    (``loss_is_scaled_for_ga``). Under DDP each process averages over its own records and the gradients
    are averaged across processes: the same as one process when processes hold equal counts of records
    (all but the last step of an epoch). Evaluation keeps TRL's token average.
    """

    loss_is_scaled_for_ga = True
    _records_in_step = 0

    def get_batch_samples(self, epoch_iterator: Any, num_batches: int, device: Any) -> tuple[list, Any]:
        batch_samples, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        self._records_in_step = sum(records_with_targets(b["labels"]) for b in batch_samples)
        return batch_samples, num_items

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        if not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        outputs = model(**{**inputs, "use_cache": False}, fused_lm_head=True)
        loss = record_mean_loss(outputs.log_probs, outputs.label_mask, self._records_in_step)
        return (loss, outputs) if return_outputs else loss


def build_sft_trainer(
    model: str | os.PathLike[str],
    records: Iterable[Mapping[str, Any]],
    config: SFTTrainConfig,
    scratch: str | os.PathLike[str],
    callbacks: list[Any] | None = None,
) -> tuple[Any, Any, Path, SFTExamples]:
    """``(trainer, tokenizer, model_dir, examples)``: a ready ``trl.SFTTrainer`` on ``records`` (not yet
    trained). Separate from :func:`train_sft` so tests and users can inspect the dataset and batches."""
    # The TRL config is built before the model is loaded: under DeepSpeed ZeRO-3 this makes from_pretrained
    # shard the weights at load time.
    args = SFTConfig(**config.trl_kwargs(str(scratch)))
    lm, tokenizer, model_dir = load_for_training(model, config.freeze_embeddings and not config.lora)
    records = list(records)
    examples = tokenize_sft_records(records, tokenizer, config.max_length)
    if examples.dropped_too_long:
        logger.warning(
            "SFT: dropped %d of %d records longer than max_length=%d tokens",
            examples.dropped_too_long, len(records), config.max_length,
        )
    if examples.dropped_empty:
        logger.warning("SFT: dropped %d records with an empty completion", examples.dropped_empty)
    if not examples.rows:
        raise NoTrainingData(
            f"no usable SFT records ({len(records)} given, {examples.dropped_too_long} longer than "
            f"max_length={config.max_length}, {examples.dropped_empty} empty)"
        )
    trainer_class = RecordMeanSFTTrainer if config.loss_average == "record" else SFTTrainer
    trainer = trainer_class(
        model=lm,
        args=args,
        train_dataset=Dataset.from_list(examples.rows),
        processing_class=tokenizer,
        peft_config=config.peft_config(),
        callbacks=callbacks,
    )
    quiet_trainer(trainer, config.show_progress, "train SFT")
    return trainer, tokenizer, model_dir, examples


def train_sft(
    model: str | os.PathLike[str],
    records: Iterable[Mapping[str, Any]],
    out_dir: str | os.PathLike[str],
    config: SFTTrainConfig | None = None,
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """Fine-tune ``model`` (a model directory or spec such as ``embedded``) on ``records`` and save the
    result as a plain transformers model in ``out_dir`` (atomically, with a completion marker; see
    :func:`~prm_selfreward.train.common.is_trained_model`).

    ``callbacks`` are ``transformers.TrainerCallback`` objects (e.g. a progress display). With
    ``config.save_steps`` a checkpoint is kept beside ``out_dir`` and a training killed mid-way continues
    from it when called again with the same model, records and options
    (:func:`~prm_selfreward.train.common.claim_scratch`). Raises
    :class:`~prm_selfreward.train.common.NoTrainingData` when no record is usable.
    """
    config = config or SFTTrainConfig()
    out_dir = Path(out_dir)
    start = time.monotonic()
    scratch = scratch_dir(out_dir)
    records = list(records)
    resume_from, resumed_from_step = resume_point("sft", model, records, config, scratch)
    trainer, tokenizer, model_dir, examples = build_sft_trainer(model, records, config, scratch, callbacks)
    output = run_trainer(trainer, resume_from)
    result = TrainResult(
        out_dir=str(out_dir),
        kind="sft",
        steps=trainer.state.global_step,
        train_loss=output.training_loss,
        examples=len(examples.rows),
        dropped_too_long=examples.dropped_too_long,
        dropped_empty=examples.dropped_empty,
        metrics=summarize_log_history(trainer.state.log_history),
        lora=config.lora,
        base_model=str(model_dir),
        resumed_from_step=resumed_from_step,
        learning_rate=config.learning_rate,
    )
    result.wall_time_s = time.monotonic() - start
    save_trained_model(trainer, tokenizer, out_dir, result, model_dir)
    shutil.rmtree(scratch, ignore_errors=True)
    logger.info(
        "SFT: %d steps on %d records, loss %.4f, %.0f s -> %s",
        result.steps, result.examples, result.train_loss or float("nan"), result.wall_time_s, out_dir,
    )
    return result
