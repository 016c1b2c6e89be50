"""A training killed mid-way continues from its checkpoint (``save_steps``) and ends where an
uninterrupted one does; checkpoints made by another training, or cut short, are never resumed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from prm_selfreward.train.common import (
    ADAPTER_DIR,
    CHECKPOINT_MADE_BY,
    TRAINER_STATE,
    claim_scratch,
    complete_checkpoints,
    read_train_result,
    scratch_dir,
    training_made_by,
)
from prm_selfreward.train.config import DPOTrainConfig, SFTTrainConfig
from prm_selfreward.train.dpo import train_step_dpo
from prm_selfreward.train.sft import train_sft

pytestmark = pytest.mark.usefixtures("one_thread")

RECORDS = [
    {"prompt": f"What is {a} + {b}?", "completion": f"Step 1: {a} + {b} = {a + b}. \\boxed{{{a + b}}}"}
    for a, b in [(2, 3), (4, 1), (7, 5), (6, 6), (9, 2), (3, 8), (5, 5), (1, 1)]
]
PAIRS = [
    {"prompt": f"What is {a} + {b}?\nStep 1:", "chosen": f" {a} + {b} = {a + b}.", "rejected": f" {a} + {b} = {a + b + 1}.",
     "is_final_step": False}
    for a, b in [(2, 3), (4, 1), (7, 5), (6, 6), (9, 2), (3, 8)]
]
# LoRA with dropout: the resumed run must restore the RNG too, not only the weights and the optimizer.
OPTIONS = {"device": "cpu", "batch_size": 2, "per_device_batch_size": 1, "max_steps": 4, "learning_rate": 5e-3,
           "lora": True, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.1, "save_steps": 2}


class Killed(Exception):
    """Stands in for the end of a session."""


class KillAfter(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Killed(f"killed after step {state.global_step}")


def _adapter(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / ADAPTER_DIR / "adapter_model.safetensors")


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_killed_training_resumes_from_its_checkpoint_and_ends_where_an_uninterrupted_one_does(
        tiny_model_dir, tmp_path, kind):
    train, data, config = ((train_sft, RECORDS, SFTTrainConfig(**OPTIONS)) if kind == "sft"
                           else (train_step_dpo, PAIRS, DPOTrainConfig(**OPTIONS, precompute_ref_log_probs=True)))
    whole = train(tiny_model_dir, data, tmp_path / "whole", config)
    assert whole.resumed_from_step == 0 and whole.steps == 4

    out = tmp_path / "killed"
    with pytest.raises(Killed):
        train(tiny_model_dir, data, out, config, callbacks=[KillAfter(3)])
    assert not out.exists()
    scratch = scratch_dir(out)
    assert [p.name for p in complete_checkpoints(scratch)] == ["checkpoint-2"]

    resumed = train(tiny_model_dir, data, out, config)
    assert resumed.resumed_from_step == 2 and resumed.steps == 4
    assert read_train_result(out).resumed_from_step == 2
    assert not scratch.exists()  # removed once the model is saved
    a, b = _adapter(tmp_path / "whole"), _adapter(out)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6)
    # Logged history of the first attempt is kept: the loss of steps 1-2 is in the resumed run's metrics.
    assert resumed.metrics["loss"] == pytest.approx(whole.metrics["loss"], rel=1e-4)


def test_without_save_steps_nothing_is_resumed(tiny_model_dir, tmp_path):
    config = SFTTrainConfig(**{**OPTIONS, "save_steps": 0})
    out = tmp_path / "m"
    with pytest.raises(Killed):
        train_sft(tiny_model_dir, RECORDS, out, config, callbacks=[KillAfter(3)])
    assert complete_checkpoints(scratch_dir(out)) == []
    assert train_sft(tiny_model_dir, RECORDS, out, config).resumed_from_step == 0


def _fake_checkpoint(scratch: Path, step: int, complete: bool = True) -> Path:
    path = scratch / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "adapter_model.safetensors").write_bytes(b"x")
    if complete:
        (path / TRAINER_STATE).write_text(json.dumps({"global_step": step}))
    return path


def _made_by(tiny_model_dir, records=RECORDS, **options):
    return training_made_by("sft", tiny_model_dir, Path(tiny_model_dir), records, SFTTrainConfig(**{**OPTIONS, **options}))


def test_a_checkpoint_cut_short_by_a_kill_is_skipped_and_removed(tiny_model_dir, tmp_path):
    made_by = _made_by(tiny_model_dir)
    scratch = tmp_path / ".m.trainer"
    scratch.mkdir()
    (scratch / CHECKPOINT_MADE_BY).write_text(json.dumps(made_by))
    _fake_checkpoint(scratch, 2)
    _fake_checkpoint(scratch, 4, complete=False)  # killed while transformers wrote it in place
    assert claim_scratch(scratch, made_by, resume=True) == scratch / "checkpoint-2"
    assert not (scratch / "checkpoint-4").exists()


@pytest.mark.parametrize("change", ["records", "options"])
def test_a_checkpoint_of_another_training_is_discarded_with_a_warning(tiny_model_dir, tmp_path, caplog, change):
    scratch = tmp_path / ".m.trainer"
    scratch.mkdir()
    (scratch / CHECKPOINT_MADE_BY).write_text(json.dumps(_made_by(tiny_model_dir)))
    _fake_checkpoint(scratch, 2)
    ours = _made_by(tiny_model_dir, records=RECORDS[:-1]) if change == "records" else _made_by(tiny_model_dir, learning_rate=1e-4)
    with caplog.at_level(logging.WARNING):
        assert claim_scratch(scratch, ours, resume=True) is None
    assert "another training made them" in caplog.text
    assert complete_checkpoints(scratch) == []
    assert json.loads((scratch / CHECKPOINT_MADE_BY).read_text()) == json.loads(json.dumps(ours))


def test_options_that_do_not_change_a_checkpoint_keep_it(tiny_model_dir):
    assert _made_by(tiny_model_dir, save_steps=5, logging_steps=3, show_progress=True) == _made_by(tiny_model_dir)


def test_a_trained_base_model_is_named_by_its_training_result_not_its_path(tiny_model_dir, tmp_path):
    """A restored run lives in another directory: its M1 must still name the same checkpoint."""
    marker = {"out_dir": "/a/iter_1/model", "base_model": "/cache/x", "wall_time_s": 1.0, "kind": "sft", "steps": 7}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "TRAINING_COMPLETE.json").write_text(json.dumps({**marker, "out_dir": f"/{name}/model"}))
    config = SFTTrainConfig(**OPTIONS)
    ma = training_made_by("dpo", tmp_path / "a", tmp_path / "a", PAIRS, config)
    mb = training_made_by("dpo", tmp_path / "b", tmp_path / "b", PAIRS, config)
    assert ma == mb and ma["model"] == {"kind": "sft", "steps": 7}
