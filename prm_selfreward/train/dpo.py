"""Step-DPO (M(t) -> M(t+1)) with TRL's DPOTrainer, minus its three pitfalls for step pairs.

A step pair is ``(prompt = templated question + steps 1..l-1, chosen = best step l, rejected = worst)``.
TRL 1.16's ``DPOTrainer._prepare_dataset`` would (1) append EOS to every chosen/rejected text, teaching
the model to stop after any step, (2) tokenise ``prompt + completion`` jointly and cut where it diverges
from the tokenised prompt, so a prompt ending in ``"Step 2: "`` loses its tail to the completion, and
(3) drop records whose prompt fills ``max_length`` and let the collator cut long completions, silently.

:class:`StepDPOTrainer` replaces that one method: pairs are tokenised with the project's rules (prompt
and completion separately, EOS only after a step that ends the solution), records longer than ``max_length`` are
dropped *and counted*, and already tokenised datasets pass through untouched. The loss, reference model
handling, PEFT and distributed paths are TRL's.
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

from datasets import Dataset, IterableDataset
from trl import DPOConfig, DPOTrainer

from ..errors import UserError
from ..records import PreferencePair, StepPair
from .common import (
    NoTrainingData,
    TrainResult,
    encode_completion,
    encode_prompt,
    load_for_training,
    quiet_trainer,
    resume_point,
    run_trainer,
    save_trained_model,
    scratch_dir,
    summarize_log_history,
)
from .config import DPOTrainConfig

logger = logging.getLogger(__name__)

TOKENIZED_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")


@dataclass
class PreparedPairs:
    """Tokenised DPO rows (``prompt_ids``, ``chosen_ids``, ``rejected_ids``) and what was dropped."""

    rows: list[dict[str, list[int]]] = field(default_factory=list)
    total: int = 0
    dropped_too_long: int = 0
    dropped_empty: int = 0
    final_steps: int = 0
    """Pairs whose chosen completion ends the solution (trained with EOS)."""


def pair_to_dict(pair: StepPair | PreferencePair | Mapping[str, Any], index: int = 0) -> dict[str, Any]:
    """``{prompt, chosen, rejected, is_final_step, rejected_is_final_step}`` for a pair record.

    ``is_final_step`` says whether the chosen step ends the solution, ``rejected_is_final_step`` the same
    for the rejected one (a wrong premature answer ends its solution while the better step goes on); it
    defaults to ``is_final_step``. A :class:`StepPair` carries the first as a field and the second in
    ``metadata`` (as the step search writes it); a :class:`PreferencePair` holds whole responses (both
    final). A mapping must carry ``is_final_step`` explicitly: guessing would either teach intermediate
    steps to stop or final ones never to.
    """
    if isinstance(pair, StepPair):
        final = bool(pair.is_final_step)
        rejected_final = bool(pair.metadata.get("rejected_is_final_step", final))
        return {"prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected,
                "is_final_step": final, "rejected_is_final_step": rejected_final}
    if isinstance(pair, PreferencePair):
        return {"prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected,
                "is_final_step": True, "rejected_is_final_step": True}
    missing = [key for key in ("prompt", "chosen", "rejected", "is_final_step") if key not in pair]
    if missing:
        raise UserError(f"DPO pair {index}: missing field(s) {', '.join(missing)}")
    final = bool(pair["is_final_step"])
    rejected_final = pair.get("rejected_is_final_step")
    return {"prompt": pair["prompt"], "chosen": pair["chosen"], "rejected": pair["rejected"],
            "is_final_step": final, "rejected_is_final_step": final if rejected_final is None else bool(rejected_final)}


def tokenize_pair(
    tokenizer: Any, prompt: str, chosen: str, rejected: str, chosen_final: bool, rejected_final: bool
) -> dict[str, list[int]]:
    """Token ids of one pair: the prompt text as it is (already templated by the search) with its special
    tokens, each completion separately without, EOS only after a completion that ends the solution."""
    return {
        "prompt_ids": encode_prompt(tokenizer, prompt),
        "chosen_ids": encode_completion(tokenizer, chosen, add_eos=chosen_final),
        "rejected_ids": encode_completion(tokenizer, rejected, add_eos=rejected_final),
    }


def prepare_pairs(
    pairs: Iterable[StepPair | PreferencePair | Mapping[str, Any]], tokenizer: Any, max_length: int | None
) -> PreparedPairs:
    """Tokenise pairs for DPO; drop (and count) pairs whose prompt + longer completion exceeds ``max_length``
    and pairs with an empty completion (nothing to score)."""
    out = PreparedPairs()
    for i, pair in enumerate(pairs):
        out.total += 1
        record = pair_to_dict(pair, i)
        if not record["chosen"].strip() or not record["rejected"].strip():
            out.dropped_empty += 1
            continue
        row = tokenize_pair(tokenizer, record["prompt"], record["chosen"], record["rejected"],
                            record["is_final_step"], record["rejected_is_final_step"])
        length = len(row["prompt_ids"]) + max(len(row["chosen_ids"]), len(row["rejected_ids"]))
        if max_length is not None and length > max_length:
            out.dropped_too_long += 1
            continue
        out.final_steps += bool(record["is_final_step"])
        out.rows.append(row)
    return out


class StepDPOTrainer(DPOTrainer):
    """``trl.DPOTrainer`` for step pairs.

    Takes a dataset with string columns ``prompt``, ``chosen``, ``rejected``, ``is_final_step`` and optionally
    ``rejected_is_final_step`` (the columns :func:`prm_selfreward.pairs.write_pair_dataset` writes; pairs
    without ``is_final_step`` are whole responses and keep EOS, as in TRL), or a dataset already
    tokenised into ``prompt_ids``, ``chosen_ids``, ``rejected_ids`` (used as is). What was dropped is in
    ``self.prepared[dataset_name]`` (a :class:`PreparedPairs` without its rows).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.prepared: dict[str, PreparedPairs] = {}
        super().__init__(*args, **kwargs)

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):  # type: ignore[override]
        columns = dataset.column_names or []
        if all(column in columns for column in TOKENIZED_COLUMNS):
            return dataset
        if isinstance(dataset, IterableDataset):
            raise UserError("StepDPOTrainer needs a map-style dataset (it counts what it drops)")
        records = [{**example, "is_final_step": example.get("is_final_step", True)} for example in dataset]
        prepared = prepare_pairs(records, self._tokenizer, args.max_length)
        rows, prepared.rows = prepared.rows, []
        self.prepared[dataset_name] = prepared
        if prepared.dropped_too_long:
            logger.warning(
                "DPO (%s): dropped %d of %d pairs longer than max_length=%s tokens",
                dataset_name, prepared.dropped_too_long, prepared.total, args.max_length,
            )
        if prepared.dropped_empty:
            logger.warning("DPO (%s): dropped %d pairs with an empty completion", dataset_name, prepared.dropped_empty)
        if not rows:
            raise NoTrainingData(
                f"no usable DPO pairs in {dataset_name} ({prepared.total} given, {prepared.dropped_too_long} "
                f"longer than max_length={args.max_length}, {prepared.dropped_empty} empty)"
            )
        dataset = Dataset.from_list(rows)
        if args.precompute_ref_log_probs:
            dataset = self._on_disk(dataset, Path(args.output_dir) / f"{dataset_name}-pairs")
        return dataset

    @staticmethod
    def _on_disk(dataset: Dataset, path: Path) -> Dataset:
        """``dataset`` saved under ``path`` and memory-mapped back.

        TRL caches precomputed reference log-probs next to the dataset's files and every process reads the
        main process's cache file; an in-memory dataset would give each process its own random temporary
        path (and the other processes nothing to read). The main process writes first, the others load.
        """
        from accelerate import PartialState
        from datasets import load_from_disk
        from trl.trainer.utils import global_then_local_main_first

        with global_then_local_main_first():
            if PartialState().is_main_process or not (path / "dataset_info.json").is_file():
                shutil.rmtree(path, ignore_errors=True)
                dataset.save_to_disk(str(path))
        return load_from_disk(str(path))


def build_step_dpo_trainer(
    model: str | os.PathLike[str],
    pairs: Iterable[StepPair | PreferencePair | Mapping[str, Any]],
    config: DPOTrainConfig,
    scratch: str | os.PathLike[str],
    callbacks: list[Any] | None = None,
) -> tuple[Any, Any, Path]:
    """``(trainer, tokenizer, model_dir)``: a ready :class:`StepDPOTrainer` on ``pairs`` (not yet trained).

    Separate from :func:`train_step_dpo` so tests and users can inspect the tokenised dataset and batches.
    """
    # Built before the model is loaded so that DeepSpeed ZeRO-3 shards at load time.
    args = DPOConfig(**config.trl_kwargs(str(scratch)))
    lm, tokenizer, model_dir = load_for_training(model, config.freeze_embeddings and not config.lora)
    records = [pair_to_dict(pair, i) for i, pair in enumerate(pairs)]
    if not records:
        raise NoTrainingData("no DPO pairs given")
    trainer = StepDPOTrainer(
        model=lm,
        args=args,
        train_dataset=Dataset.from_list(records),
        processing_class=tokenizer,
        peft_config=config.peft_config(),
        callbacks=callbacks,
    )
    quiet_trainer(trainer, config.show_progress, "train DPO")
    return trainer, tokenizer, model_dir


def train_step_dpo(
    model: str | os.PathLike[str],
    pairs: Iterable[StepPair | PreferencePair | Mapping[str, Any]],
    out_dir: str | os.PathLike[str],
    config: DPOTrainConfig | None = None,
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """Step-DPO of ``model`` (a model directory or spec) on ``pairs``; the trained model is saved as a plain
    transformers model in ``out_dir`` (atomically, with a completion marker; LoRA merged).

    The reference model follows TRL: a frozen copy of the policy loaded from ``model``; none with LoRA
    (the adapter is disabled instead) or with ``precompute_ref_log_probs`` (log-probabilities computed once
    before training). With ``config.save_steps`` a killed training continues from its latest checkpoint, as
    :func:`~prm_selfreward.train.sft.train_sft` does. Raises
    :class:`~prm_selfreward.train.common.NoTrainingData` when no pair is usable.
    """
    config = config or DPOTrainConfig()
    out_dir = Path(out_dir)
    start = time.monotonic()
    scratch = scratch_dir(out_dir)
    records = [pair_to_dict(pair, i) for i, pair in enumerate(pairs)]
    if not records:
        raise NoTrainingData("no DPO pairs given")
    resume_from, resumed_from_step = resume_point("dpo", model, records, config, scratch)
    trainer, tokenizer, model_dir = build_step_dpo_trainer(model, records, config, scratch, callbacks)
    prepared = trainer.prepared["train"]
    output = run_trainer(trainer, resume_from)
    metrics = summarize_log_history(trainer.state.log_history)
    metrics["pairs_final_step"] = float(prepared.final_steps)
    result = TrainResult(
        out_dir=str(out_dir),
        kind="dpo",
        steps=trainer.state.global_step,
        train_loss=output.training_loss,
        examples=prepared.total - prepared.dropped_too_long - prepared.dropped_empty,
        dropped_too_long=prepared.dropped_too_long,
        dropped_empty=prepared.dropped_empty,
        metrics=metrics,
        lora=config.lora,
        base_model=str(model_dir),
        resumed_from_step=resumed_from_step,
        learning_rate=config.learning_rate,
        beta=config.beta,
        rpo_alpha=config.rpo_alpha,
    )
    result.wall_time_s = time.monotonic() - start
    save_trained_model(trainer, tokenizer, out_dir, result, model_dir)
    shutil.rmtree(scratch, ignore_errors=True)
    logger.info(
        "DPO: %d steps on %d pairs (%d dropped as too long), loss %.4f, reward accuracy %.2f, %.0f s -> %s",
        result.steps, result.examples, result.dropped_too_long, result.train_loss or float("nan"),
        metrics.get("rewards/accuracies_mean", float("nan")), result.wall_time_s, out_dir,
    )
    return result
