"""What SFT and DPO share: tokenisation rules, model loading for training, atomic saving, results.

Tokenisation rules (the same ones :class:`~prm_selfreward.models.base.Generator` follows, so the model
is trained on exactly the token sequences it sees at inference):

- a *message* becomes a prompt through the tokenizer's chat template (user turn + generation prompt)
  when the tokenizer has one, and is used as-is otherwise (:func:`format_prompt`);
- prompt and completion are tokenised **separately** and concatenated: the prompt keeps its special
  tokens (BOS), the completion gets none. Tokenising ``prompt + completion`` jointly lets tokens merge
  across the boundary (``"Step 2: "`` + ``"x"`` can become ``... ":"," x"``), so the prompt the model
  is trained on would not be the prompt it is given at inference;
- EOS is appended only where the text really ends (whole solutions, judgments, final steps).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io import json_dumps

# The token contract lives with the backends: one definition for generation, scoring and training.
from ..models.tokens import encode_completion, encode_prompt, format_prompt  # noqa: F401

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "TRAINING_COMPLETE.json"
"""Written last into a model directory: its presence means the directory holds a whole trained model."""


class NoTrainingData(UserError):
    """No usable training records (none given, or all dropped as too long / empty)."""


@dataclass
class TrainResult:
    """What a training run produced; also stored in the model directory's completion marker."""

    out_dir: str
    kind: str
    """``"sft"`` or ``"dpo"``."""
    steps: int
    train_loss: float | None
    examples: int
    """Records trained on (after dropping)."""
    dropped_too_long: int
    dropped_empty: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    """Last logged value of each trainer metric (DPO: rewards/chosen, rewards/accuracies, rewards/margins ...),
    plus ``<name>_mean`` averaged over all logged steps for the reward metrics."""
    lora: bool = False
    wall_time_s: float = 0.0
    """Loading, data preparation and training (the save that follows is not included)."""
    base_model: str = ""
    resumed_from_step: int = 0
    """The checkpoint's optimizer step this training continued from (0: it started afresh); ``wall_time_s``
    is then the last attempt's alone."""
    learning_rate: float | None = None
    """Peak learning rate of the run (``None`` in results saved before it was recorded)."""
    beta: float | None = None
    """DPO beta (``None`` for SFT and in results saved before it was recorded)."""
    rpo_alpha: float | None = None
    """DPO: weight of the chosen step's NLL term (0: plain DPO; ``None`` for SFT and older results)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        return cls(**data)


# --------------------------------------------------------------------------- tokenisation


# --------------------------------------------------------------------------- models


def resolve_model_dir(model: str | os.PathLike[str]) -> Path:
    """The local directory of ``model``: a model directory, ``embedded`` or a hub id, resolved (and
    converted or downloaded if needed) by :func:`prm_selfreward.models.loading.resolve_model_path`."""
    from ..models.loading import resolve_model_path

    return Path(resolve_model_path(model))


def drop_quantizer(model: Any) -> bool:
    """Remove a GGUF quantizer left on a model loaded with ``gguf_file=`` (its weights are already
    dequantised); ``save_pretrained`` and TRL refuse such a model otherwise. Other quantizers (bitsandbytes
    for QLoRA) are real and left alone. Returns True when one was removed."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None:
        return False
    method = getattr(getattr(quantizer, "quantization_config", None), "quant_method", None)
    if str(getattr(method, "value", method)).lower() != "gguf":
        return False
    quantizer.remove_quantization_config(model)
    logger.info("removed the GGUF quantizer from the loaded model before training")
    return True


def load_for_training(model: str | os.PathLike[str], freeze_embeddings: bool = False) -> tuple[Any, Any, Path]:
    """Load ``(model, tokenizer, model_dir)`` for training: fp32 weights (mixed precision, if any, is the
    trainer's autocast), a pad token, GGUF quantizer removed, embeddings frozen on request."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = resolve_model_dir(model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    drop_quantizer(lm)
    if freeze_embeddings:
        freeze_embedding_layers(lm)
    return lm, tokenizer, model_dir


def freeze_embedding_layers(model: Any) -> int:
    """Freeze the input embedding and the output layer (the same tensor when tied); returns the number of
    parameters frozen."""
    frozen = 0
    seen: set[int] = set()
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        if module is None:
            continue
        for param in module.parameters():
            if id(param) in seen:
                continue
            seen.add(id(param))
            if param.requires_grad:
                param.requires_grad_(False)
                frozen += param.numel()
    return frozen


# --------------------------------------------------------------------------- saving


def is_trained_model(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` holds a finished model written by :func:`save_model_atomic`."""
    return (Path(path) / COMPLETE_MARKER).is_file()


def read_train_result(path: str | os.PathLike[str]) -> TrainResult:
    """The :class:`TrainResult` stored with a finished model (raises ``UserError`` if unfinished)."""
    marker = Path(path) / COMPLETE_MARKER
    if not marker.is_file():
        raise UserError(f"{path} does not hold a finished trained model (no {COMPLETE_MARKER})")
    return TrainResult.from_dict(json.loads(marker.read_text(encoding="utf-8")))


def partial_dir(out_dir: Path) -> Path:
    """Where a model is written before it is renamed into place (same parent, so the rename is atomic).
    Deterministic, so every process of a distributed run agrees on it."""
    return out_dir.parent / f".{out_dir.name}.partial"


def prepare_partial_dir(out_dir: Path) -> Path:
    tmp = partial_dir(out_dir)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def finalize_model_dir(tmp: Path, out_dir: Path, result: TrainResult) -> None:
    """Write the completion marker into ``tmp`` and rename it to ``out_dir``, replacing whatever was there.

    A reader sees either no ``out_dir``, an old one, or the finished new one; a kill in between leaves
    at worst the ``.partial`` directory (removed by the next attempt) and no ``out_dir``.
    """
    marker = tmp / COMPLETE_MARKER
    # json_dumps: a diverged run's NaN loss is written as null, never as bare (invalid) NaN.
    marker.write_text(json_dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    with open(marker, "rb") as handle:
        os.fsync(handle.fileno())
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}-{time.time_ns()}"
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- metrics


REWARD_METRICS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins")


def summarize_log_history(log_history: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Last logged value of every numeric metric in a trainer's ``state.log_history`` and, for the DPO reward
    metrics, the mean over all logged steps (``rewards/accuracies_mean`` ...)."""
    last: dict[str, float] = {}
    series: dict[str, list[float]] = {}
    for entry in log_history:
        for key, value in entry.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            last[key] = float(value)
            if key in REWARD_METRICS:
                series.setdefault(key, []).append(float(value))
    for key, values in series.items():
        last[f"{key}_mean"] = sum(values) / len(values)
    return last


def restore_inference_config(model: Any) -> None:
    """Undo training-time config changes that would slow the saved model down at inference."""
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "use_cache", True) is False:
        config.use_cache = True


ADAPTER_DIR = "adapter"
"""Where a LoRA-trained model directory keeps its adapter (``adapter_config.json`` +
``adapter_model.safetensors``) beside the merged weights: megabytes instead of the model's gigabytes, so a
run's trained models can be published and rebuilt elsewhere (:mod:`prm_selfreward.restore`)."""


def save_trained_model(trainer: Any, tokenizer: Any, out_dir: Path, result: TrainResult, base_dir: Path) -> None:
    """Save the trainer's model as a plain transformers model (safetensors + tokenizer) into ``out_dir``,
    atomically, with the completion marker. A LoRA adapter is merged into its base first and also kept,
    unmerged, in ``out_dir/adapter`` (:data:`ADAPTER_DIR`).

    Every process of a distributed run must call this (ZeRO-3 gathers the weights collectively); only the
    main process writes. Single-process runs save the in-memory model directly. The sharded branch
    (DeepSpeed / FSDP) follows transformers' ``Trainer.save_model`` and has not been run on this CPU-only
    machine.
    """
    from accelerate.utils import is_peft_model

    out_dir = Path(out_dir)
    accelerator = trainer.accelerator
    main = accelerator.is_main_process
    if main:
        prepare_partial_dir(out_dir)
    accelerator.wait_for_everyone()
    tmp = partial_dir(out_dir)
    model = trainer.model
    lora = is_peft_model(model)
    if trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled:
        target = tmp / ADAPTER_DIR if lora else tmp
        trainer.save_model(str(target))  # collective: gathers sharded weights, writes on the main process
        if main:
            (target / "training_args.bin").unlink(missing_ok=True)
            if lora:
                merge_adapter(base_dir, target, tmp)
    elif main:
        if lora:
            model.save_pretrained(tmp / ADAPTER_DIR)  # before merging: merge_and_unload folds it in place
        plain = model.merge_and_unload() if lora else model
        restore_inference_config(plain)
        plain.save_pretrained(tmp)
    if main:
        tokenizer.save_pretrained(tmp)
        finalize_model_dir(tmp, out_dir, result)
    accelerator.wait_for_everyone()


def merge_adapter(base_dir: str | os.PathLike[str], adapter_dir: Path, tmp: Path) -> None:
    """Load the model in ``base_dir``, merge the LoRA adapter in ``adapter_dir`` into it and save the plain
    model into ``tmp`` (the tokenizer and completion marker are the caller's)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    drop_quantizer(base)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    restore_inference_config(merged)
    merged.save_pretrained(tmp)


def scratch_dir(out_dir: Path) -> Path:
    """The trainer's own ``output_dir`` (nothing is saved there with ``save_strategy="no"``)."""
    return out_dir.parent / f".{out_dir.name}.trainer"


# --------------------------------------------------------------------------- checkpoints

CHECKPOINT_MADE_BY = "made_by.json"
"""In the trainer's scratch directory: what the checkpoints beside it were trained from (base model,
records, options). A checkpoint is resumed only by the training that made it."""

TRAINER_STATE = "trainer_state.json"
"""Written last into a transformers checkpoint: a checkpoint directory without it was cut short."""

UNRESUMED_OPTIONS = frozenset({"show_progress", "logging_steps", "save_steps"})
"""Options that do not change what a checkpoint holds, so changing them does not discard it."""


def _model_made_by(model: str | os.PathLike[str], model_dir: Path) -> Any:
    """A trained model directory is named by its training result (paths removed: a restored run lives in
    another directory), any other model by its spec (``embedded``, a hub id, a resolved local path)."""
    from ..fingerprint import model_identity

    marker = model_dir / COMPLETE_MARKER
    if marker.is_file():
        result = json.loads(marker.read_text(encoding="utf-8"))
        return {k: v for k, v in result.items() if k not in ("out_dir", "base_model", "wall_time_s")}
    return model_identity(model)


def training_made_by(kind: str, model: str | os.PathLike[str], model_dir: Path, records: Sequence[Any],
                     config: Any) -> dict[str, Any]:
    """What decides a checkpoint's content: the kind, the base model, the records (hashed) and the options."""
    import hashlib

    options = {k: v for k, v in asdict(config).items() if k not in UNRESUMED_OPTIONS}
    digest = hashlib.sha256(json_dumps(list(records)).encode("utf-8")).hexdigest()
    return {"kind": kind, "model": _model_made_by(model, model_dir), "records": len(records),
            "records_sha256": digest, "options": json.loads(json_dumps(options))}


def complete_checkpoints(scratch: Path) -> list[Path]:
    """The finished checkpoints in ``scratch``, oldest first. transformers writes a checkpoint in place
    (weights, optimizer, RNG, then the trainer state): a directory a kill cut short has no
    :data:`TRAINER_STATE` and is not one."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    found = []
    for path in scratch.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        step = path.name.rpartition("-")[2]
        if path.is_dir() and step.isdigit() and (path / TRAINER_STATE).is_file():
            found.append((int(step), path))
    return [path for _, path in sorted(found)]


def claim_scratch(scratch: Path, made_by: dict[str, Any], resume: bool) -> Path | None:
    """Prepare the trainer's scratch directory for a training described by ``made_by``; returns the
    checkpoint to resume from (with ``resume``), else None.

    Checkpoints made by another training (other records, base model or options) or cut short by a kill are
    removed, with a warning; so is everything when ``resume`` is off. Under a multi-process launcher the
    main process decides first and the others follow what it left.
    """
    from accelerate import PartialState

    from ..fingerprint import describe_difference
    from ..io import atomic_write_json

    marker = scratch / CHECKPOINT_MADE_BY
    state = PartialState()
    with state.main_process_first():
        if state.is_main_process and scratch.exists():
            theirs = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else None
            if theirs != made_by and complete_checkpoints(scratch):
                why = describe_difference(theirs, made_by) if isinstance(theirs, dict) else f"no {CHECKPOINT_MADE_BY}"
                logger.warning("discarding the checkpoints in %s: another training made them (%s)", scratch, why)
            if theirs != made_by or not resume:
                shutil.rmtree(scratch)
        if state.is_main_process:
            scratch.mkdir(parents=True, exist_ok=True)
            atomic_write_json(marker, made_by)
        checkpoints = complete_checkpoints(scratch) if resume else []
    if not checkpoints:
        return None
    latest = checkpoints[-1]
    if state.is_main_process:
        for path in scratch.glob("checkpoint-*"):
            if path.is_dir() and path != latest:
                shutil.rmtree(path, ignore_errors=True)  # torn by a kill, or superseded
    logger.info("resuming training from %s", latest)
    return latest


def checkpoint_step(checkpoint: Path | None) -> int:
    """The optimizer step a checkpoint was saved at (0 for None)."""
    if checkpoint is None:
        return 0
    return int(json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8")).get("global_step", 0))


def resume_point(kind: str, model: str | os.PathLike[str], records: Sequence[Any], config: Any,
                 scratch: Path) -> tuple[Path | None, int]:
    """``(checkpoint, its step)`` for a training of ``kind`` (sft or dpo) about to start: the latest
    checkpoint this very training left in ``scratch`` when ``config.save_steps`` is on (else ``(None, 0)``;
    see :func:`claim_scratch`). The step is read now: the trainer rotates the checkpoint away later."""
    made_by = training_made_by(kind, model, resolve_model_dir(model), records, config)
    checkpoint = claim_scratch(scratch, made_by, resume=config.save_steps > 0)
    return checkpoint, checkpoint_step(checkpoint)


LOGGED_METRICS = ("loss", "grad_norm", "learning_rate", *REWARD_METRICS)


def quiet_trainer(trainer: Any, show_progress: bool, label: str = "train") -> None:
    """Route the trainer's per-step logs through :mod:`logging` (INFO) instead of stdout, and report its
    optimizer steps through :class:`~prm_selfreward.progress.ProgressReporter` under ``label``: a bar on
    a terminal, plain lines (done/total steps, rate, ETA, last loss) in a log. With ``show_progress``
    transformers' own tqdm bar shows on a terminal instead of ours.

    With its progress bar off, transformers prints every log dict to stdout (``PrinterCallback``), which
    would interleave with the CLI's own tables and progress bars. :func:`run_trainer` closes the report
    when training fails.
    """
    import sys

    from transformers.trainer_callback import PrinterCallback, TrainerCallback

    from ..progress import ProgressReporter, is_terminal

    class _LogMetrics(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any):
            if not state.is_world_process_zero or not logs:
                return
            shown = ", ".join(f"{k}={logs[k]:.4g}" for k in LOGGED_METRICS if isinstance(logs.get(k), int | float))
            if shown:
                logger.info("step %d/%d: %s", state.global_step, state.max_steps, shown)

    class _Progress(TrainerCallback):
        """Optimizer steps of the main process (the others of a multi-process run report nothing)."""

        reporter: ProgressReporter | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero and not (show_progress and is_terminal(sys.stdout)):
                self.reporter = ProgressReporter(label, state.max_steps or None, unit="steps", done=state.global_step)
                self.reporter.start()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.reporter is not None:
                self.reporter.update(state.global_step)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any):
            loss = (logs or {}).get("loss")
            if self.reporter is not None and isinstance(loss, int | float):
                self.reporter.update(status=f"loss {loss:.4g}")

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.close()

        def close(self, error: str | None = None) -> None:
            if self.reporter is not None:
                self.reporter.close(error)
                self.reporter = None

    if not show_progress:
        trainer.remove_callback(PrinterCallback)
    trainer.add_callback(_LogMetrics())
    trainer._prm_sr_progress = _Progress()
    trainer.add_callback(trainer._prm_sr_progress)


def run_trainer(trainer: Any, resume_from: Path | None = None) -> Any:
    """``trainer.train()`` (from the checkpoint ``resume_from``, if given); the progress report of
    :func:`quiet_trainer` is closed however it ends (an exception skips ``on_train_end``, which would leave
    its heartbeat writing)."""
    try:
        return trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except BaseException as exc:
        progress = getattr(trainer, "_prm_sr_progress", None)
        if progress is not None:
            progress.close(type(exc).__name__)
        raise
