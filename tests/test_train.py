"""SFT and step-DPO on the tiny in-process model: the TRL pitfalls (EOS on intermediate steps, the
prompt/completion token boundary, silently dropped long records), reference-model handling, LoRA
merging, and atomic saving with logits that survive a reload."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from prm_selfreward.errors import UserError
from prm_selfreward.records import PreferencePair, StepPair
from prm_selfreward.train.common import (
    ADAPTER_DIR,
    COMPLETE_MARKER,
    NoTrainingData,
    TrainResult,
    drop_quantizer,
    encode_completion,
    encode_prompt,
    finalize_model_dir,
    format_prompt,
    is_trained_model,
    merge_adapter,
    partial_dir,
    read_train_result,
    save_trained_model,
    summarize_log_history,
)
from prm_selfreward.train.config import DPOTrainConfig, SFTTrainConfig
from prm_selfreward.train.dpo import build_step_dpo_trainer, pair_to_dict, prepare_pairs, train_step_dpo
from prm_selfreward.train.sft import (
    RecordMeanSFTTrainer,
    build_sft_trainer,
    record_mean_loss,
    records_with_targets,
    tokenize_sft_records,
    train_sft,
)

QUESTION = "Problem: What is 2 + 3?\n"
# As the step search writes them: the prompt ends with "Step l:", the completion starts with the space
# and, for an intermediate step, ends with the newline before the next marker.
INTERMEDIATE = [
    {"prompt": QUESTION + "Step 1:", "chosen": " 2 + 3 = 5.\n", "rejected": " 2 + 3 = 6.\n", "is_final_step": False},
    {"prompt": QUESTION + "Step 1: 2 + 3 = 5.\nStep 2:", "chosen": " So 5 clips.\n",
     "rejected": " The answer is \\boxed{7}.", "is_final_step": False, "rejected_is_final_step": True},
]
FINAL = [
    {"prompt": QUESTION + "Step 1: 2 + 3 = 5.\nStep 2: ", "chosen": "The answer is \\boxed{5}.",
     "rejected": "The answer is \\boxed{6}.", "is_final_step": True},
]
PAIRS = INTERMEDIATE + FINAL


def _final(pair: dict, side: str) -> bool:
    if side == "rejected":
        return pair.get("rejected_is_final_step", pair["is_final_step"])
    return pair["is_final_step"]


SFT_RECORDS = [
    {"prompt": "Let's think step by step. What is 2 + 3?", "completion": "Step 1: 2 + 3 = 5. \\boxed{5}"},
    {"prompt": "Which step is better? [[A]] or [[B]]", "completion": "Step A is correct. [[A]]"},
]
# Big learning rates so that one or two steps visibly move a random tiny model.
FAST = {"device": "cpu", "batch_size": 2, "per_device_batch_size": 2, "max_steps": 1, "learning_rate": 1e-3}


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _logits(model, tokenizer, text: str = QUESTION + "Step 1: 2 + 3 = 5.") -> torch.Tensor:
    ids = torch.tensor([encode_prompt(tokenizer, text)])
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


def _state(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


# --------------------------------------------------------------------------- tokenisation rules


@pytest.mark.parametrize(
    "pair",
    [*PAIRS, {**INTERMEDIATE[0], "prompt": QUESTION + "Step 1: ", "chosen": "2 + 3 = 5.\n"}],
    ids=["step1", "step2", "final-after-space", "step1-after-space"],
)
def test_boundary_concatenation_decodes_to_prompt_plus_completion(tokenizer, pair):
    prepared = prepare_pairs([pair], tokenizer, max_length=None)
    row = prepared.rows[0]
    assert row["prompt_ids"] == encode_prompt(tokenizer, pair["prompt"])  # the prompt is kept whole
    for side in ("chosen", "rejected"):
        ids = row["prompt_ids"] + row[f"{side}_ids"]
        assert tokenizer.decode(ids, skip_special_tokens=True) == pair["prompt"] + pair[side]


def test_boundary_case_really_merges_when_tokenised_jointly(tokenizer):
    """The case above is a real pitfall for this tokenizer: joint tokenisation merges the prompt's trailing
    space into the completion's first token, so the trained prompt would differ from the inference one."""
    pair = FINAL[0]
    joint = tokenizer(pair["prompt"] + pair["chosen"])["input_ids"]
    prompt_ids = encode_prompt(tokenizer, pair["prompt"])
    assert joint[: len(prompt_ids)] != prompt_ids
    ours = prepare_pairs([pair], tokenizer, None).rows[0]
    assert ours["prompt_ids"] == prompt_ids


def test_format_prompt_without_chat_template_is_identity(tokenizer):
    assert tokenizer.chat_template is None
    assert format_prompt(tokenizer, "What is 2 + 3?") == "What is 2 + 3?"


def test_chat_template_prompt_gets_exactly_one_bos(tokenizer):
    from tokenizers import processors

    tok = copy.deepcopy(tokenizer)
    bos = tok.bos_token_id
    tok._tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos)])
    tok.chat_template = (
        "{{ bos_token }}{% for m in messages %}<start>{{ m['role'] }}\n{{ m['content'] }}<end>\n{% endfor %}"
        "{% if add_generation_prompt %}<start>model\n{% endif %}"
    )
    text = format_prompt(tok, "What is 2 + 3?")
    assert text.startswith("<bos><start>user\nWhat is 2 + 3?") and text.endswith("<start>model\n")
    ids = encode_prompt(tok, text)
    assert ids.count(bos) == 1 and ids[0] == bos
    plain = encode_prompt(tok, "What is 2 + 3?")  # no template text: the tokenizer adds its BOS
    assert plain.count(bos) == 1 and plain[0] == bos


@pytest.mark.parametrize("add_eos", [True, False])
def test_encode_completion_eos(tokenizer, add_eos):
    ids = encode_completion(tokenizer, "2 + 3 = 5.", add_eos=add_eos)
    assert (ids[-1] == tokenizer.eos_token_id) is add_eos
    assert ids.count(tokenizer.eos_token_id) == int(add_eos)


# --------------------------------------------------------------------------- pitfall 1: EOS on steps


def test_intermediate_steps_have_no_eos_in_dataset_and_batch(tiny_model_dir, tmp_path, tokenizer):
    config = DPOTrainConfig(**{**FAST, "batch_size": 3, "per_device_batch_size": 3})
    trainer, tok, _, = build_step_dpo_trainer(tiny_model_dir, PAIRS, config, tmp_path / "scratch")[:3]
    eos = tok.eos_token_id
    rows = list(trainer.train_dataset)
    assert len(rows) == len(PAIRS)
    for row, pair in zip(rows, PAIRS, strict=True):
        for side in ("chosen", "rejected"):
            assert (row[f"{side}_ids"][-1] == eos) is _final(pair, side)
            assert row[f"{side}_ids"].count(eos) == int(_final(pair, side))

    # The batch the trainer feeds the model: the last completion token is EOS only for the final step.
    batch = next(iter(trainer.get_train_dataloader()))
    n = len(PAIRS)
    by_text = {}
    for i in range(2 * n):
        positions = batch["completion_mask"][i].nonzero().flatten()
        completion = batch["input_ids"][i, positions].tolist()
        by_text[tok.decode(completion, skip_special_tokens=True)] = completion[-1] == eos
    for pair in PAIRS:
        for side in ("chosen", "rejected"):
            assert by_text[pair[side]] is _final(pair, side), (pair[side], side)


def test_pair_dataset_from_the_builder_trains_with_the_right_eos(tiny_model_dir, tmp_path):
    """The JSON Lines that prm_selfreward.pairs writes go straight into StepDPOTrainer."""
    from datasets import load_dataset

    from prm_selfreward.pairs import write_pair_dataset

    steps = [
        StepPair(prompt=p["prompt"], chosen=p["chosen"], rejected=p["rejected"], problem_id="x", step_index=i,
                 chosen_score=4, rejected_score=1, is_final_step=p["is_final_step"],
                 metadata={"rejected_is_final_step": _final(p, "rejected")})
        for i, p in enumerate(PAIRS)
    ]
    path = tmp_path / "pairs.jsonl"
    write_pair_dataset(steps, path)
    dataset = load_dataset("json", data_files=str(path), split="train")
    config = DPOTrainConfig(**FAST)
    from trl import DPOConfig

    from prm_selfreward.train.dpo import StepDPOTrainer

    trainer = StepDPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        args=DPOConfig(**config.trl_kwargs(str(tmp_path / "s"))),
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
    )
    eos = trainer.processing_class.eos_token_id
    for row, pair in zip(trainer.train_dataset, PAIRS, strict=True):
        assert (row["chosen_ids"][-1] == eos) is _final(pair, "chosen")
        assert (row["rejected_ids"][-1] == eos) is _final(pair, "rejected")
    assert trainer.prepared["train"].total == len(PAIRS)


def test_plain_trl_would_append_eos_to_intermediate_steps(tiny_model_dir, tmp_path):
    """Why StepDPOTrainer exists: TRL 1.16's own preparation appends EOS to every completion."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    config = DPOTrainConfig(**FAST)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    data = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in INTERMEDIATE])
    trainer = DPOTrainer(model=model, args=DPOConfig(**config.trl_kwargs(str(tmp_path))), train_dataset=data,
                         processing_class=tok)
    assert all(row["chosen_ids"][-1] == tok.eos_token_id for row in trainer.train_dataset)


def test_pair_records(tokenizer):
    step = StepPair(prompt="p ", chosen="a", rejected="b", problem_id="x", step_index=1, chosen_score=3,
                    rejected_score=1, is_final_step=False)
    assert pair_to_dict(step)["is_final_step"] is False and pair_to_dict(step)["rejected_is_final_step"] is False
    step.metadata["rejected_is_final_step"] = True
    assert pair_to_dict(step)["rejected_is_final_step"] is True
    pref = PreferencePair(prompt="p ", chosen="a", rejected="b", chosen_score=5, rejected_score=1)
    assert pair_to_dict(pref)["is_final_step"] is True  # whole responses end: keep EOS
    with pytest.raises(UserError, match="is_final_step"):
        pair_to_dict({"prompt": "p", "chosen": "a", "rejected": "b"}, 3)
    prepared = prepare_pairs([step, pref], tokenizer, None)
    assert prepared.final_steps == 1 and len(prepared.rows) == 2
    eos = tokenizer.eos_token_id
    assert prepared.rows[0]["chosen_ids"][-1] != eos and prepared.rows[0]["rejected_ids"][-1] == eos


# --------------------------------------------------------------------------- pitfall 3: too long


def test_too_long_pairs_are_counted_and_dropped(tokenizer):
    base = FINAL[0]
    length = len(encode_prompt(tokenizer, base["prompt"])) + max(
        len(encode_completion(tokenizer, base[s], True)) for s in ("chosen", "rejected")
    )
    long_prompt = {**base, "prompt": base["prompt"] * 10}
    long_completion = {**INTERMEDIATE[0], "rejected": "2 + 3 = 6. " * 40}
    empty = {**INTERMEDIATE[0], "chosen": "  "}
    prepared = prepare_pairs([base, long_prompt, long_completion, empty], tokenizer, max_length=length)
    assert (prepared.total, prepared.dropped_too_long, prepared.dropped_empty, len(prepared.rows)) == (4, 2, 1, 1)
    # Exactly max_length tokens fit; one fewer does not.
    assert len(prepare_pairs([base], tokenizer, max_length=length - 1).rows) == 0


def test_sft_records_too_long_counted_and_labels_masked(tokenizer):
    examples = tokenize_sft_records(
        SFT_RECORDS + [{"prompt": "x " * 300, "completion": "y"}, {"prompt": "q", "completion": ""}],
        tokenizer, max_length=64,
    )
    assert (len(examples.rows), examples.dropped_too_long, examples.dropped_empty) == (2, 1, 1)
    for row, record in zip(examples.rows, SFT_RECORDS, strict=True):
        prompt_ids = encode_prompt(tokenizer, record["prompt"])
        n = len(prompt_ids)
        assert row["input_ids"][:n] == prompt_ids
        assert row["labels"][:n] == [-100] * n  # loss on the completion only
        assert row["labels"][n:] == row["input_ids"][n:]
        assert row["input_ids"][-1] == tokenizer.eos_token_id  # whole solutions / judgments end
        assert tokenizer.decode(row["input_ids"][n:], skip_special_tokens=True) == record["completion"]


def test_rpo_alpha_adds_the_chosen_steps_nll_to_the_dpo_loss(tiny_model_dir, tmp_path):
    """One step from the reference: plain DPO's loss is ln 2; with rpo_alpha TRL adds alpha x the chosen
    step's mean token NLL (positive), through the step-DPO trainer's own tokenised pairs."""
    plain = train_step_dpo(tiny_model_dir, PAIRS, tmp_path / "a", DPOTrainConfig(**FAST))
    rpo = train_step_dpo(tiny_model_dir, PAIRS, tmp_path / "b", DPOTrainConfig(**FAST, rpo_alpha=1.0))
    assert plain.train_loss == pytest.approx(math.log(2), abs=1e-3)
    assert rpo.train_loss > plain.train_loss + 1.0  # a tiny random model's NLL is several nats per token


def test_dpo_reports_dropped_too_long_and_refuses_all_dropped(tiny_model_dir, tmp_path):
    pairs = PAIRS + [{**FINAL[0], "prompt": FINAL[0]["prompt"] * 20}]
    result = train_step_dpo(tiny_model_dir, pairs, tmp_path / "m", DPOTrainConfig(**FAST, max_length=64))
    assert result.dropped_too_long == 1 and result.examples == len(PAIRS)
    assert read_train_result(tmp_path / "m").dropped_too_long == 1
    assert (result.learning_rate, result.beta) == (FAST["learning_rate"], DPOTrainConfig().beta)
    with pytest.raises(NoTrainingData, match="longer than max_length=8"):
        train_step_dpo(tiny_model_dir, PAIRS, tmp_path / "n", DPOTrainConfig(**FAST, max_length=8))
    assert not (tmp_path / "n").exists()


# --------------------------------------------------------------------------- training runs


def test_sft_step_trains_saves_and_reloads_identically(tiny_model_dir, tmp_path):
    config = SFTTrainConfig(**FAST)
    trainer, tok, model_dir, examples = build_sft_trainer(tiny_model_dir, SFT_RECORDS, config, tmp_path / "s")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    assert trainer.state.global_step == 1
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    expected = _logits(trainer.model, tok)
    out = tmp_path / "sft"
    result = TrainResult(out_dir=str(out), kind="sft", steps=1, train_loss=None, examples=2, dropped_too_long=0)
    save_trained_model(trainer, tok, out, result, model_dir)
    assert is_trained_model(out) and not partial_dir(out).exists()
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert torch.equal(_logits(reloaded, AutoTokenizer.from_pretrained(out)), expected)
    assert reloaded.config.use_cache is not False


def test_train_sft_end_to_end(tiny_model_dir, tmp_path):
    out = tmp_path / "m1"
    result = train_sft(tiny_model_dir, SFT_RECORDS, out, SFTTrainConfig(**FAST))
    assert result.steps == 1 and result.examples == 2 and result.train_loss > 0
    assert (result.learning_rate, result.beta) == (FAST["learning_rate"], None)  # the report's lr column
    assert read_train_result(out) == result
    assert {"model.safetensors", "config.json", "tokenizer.json", COMPLETE_MARKER} <= {p.name for p in out.iterdir()}
    assert not torch.equal(_state(out)["model.layers.0.mlp.up_proj.weight"],
                           _state(tiny_model_dir)["model.layers.0.mlp.up_proj.weight"])


# --------------------------------------------------------------------------- loss_average: record


def test_record_mean_loss_weighs_a_short_record_as_much_as_a_long_one():
    log_probs = torch.zeros(2, 201)
    mask = torch.zeros(2, 201, dtype=torch.bool)
    log_probs[0, 1:5], mask[0, 1:5] = -1.0, True  # a 4-token verdict, 1 nat per token
    log_probs[1, 1:], mask[1, 1:] = -0.1, True  # a 200-token solution, 0.1 nat per token
    # Each record's mean, averaged over the records; TRL's token mean would be (4 + 20) / 204 = 0.118.
    assert record_mean_loss(log_probs, mask, records=2).item() == pytest.approx(0.55)
    # Split over two micro-batches of one gradient-accumulation step: the parts sum to the same.
    parts = record_mean_loss(log_probs[:1], mask[:1], 2) + record_mean_loss(log_probs[1:], mask[1:], 2)
    assert parts.item() == pytest.approx(0.55)
    # A row without a trained token adds nothing and is not counted by records_with_targets.
    labels = torch.tensor([[-100, 5, 6], [7, -100, -100], [-100, -100, 3]])
    assert records_with_targets(labels) == 2


def _record_means(model, rows) -> list[float]:
    """Each row's mean next-token NLL over its trained labels, from the plain (unfused) forward."""
    means = []
    with torch.no_grad():
        for row in rows:
            logits = model(input_ids=torch.tensor([row["input_ids"]])).logits[0, :-1]
            labels = torch.tensor(row["labels"][1:])
            means.append(torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100).item())
    return means


def test_record_average_trainer_loss_over_an_accumulated_step(tiny_model_dir, tmp_path):
    """One record per micro-batch, two micro-batches per optimizer step: the losses the trainer backprops
    sum to the mean of the two records' mean token losses, not to their token-weighted mean."""
    records = [{"prompt": "Which step is better?", "completion": "[[A]]"},
               {"prompt": "What is 2 + 3?", "completion": "Step 1: 2 + 3 = 5. " * 12 + "\\boxed{5}"}]
    config = SFTTrainConfig(**{**FAST, "per_device_batch_size": 1}, loss_average="record")
    trainer, _, _, examples = build_sft_trainer(tiny_model_dir, records, config, tmp_path / "s")
    assert isinstance(trainer, RecordMeanSFTTrainer) and trainer.args.gradient_accumulation_steps == 2
    lengths = [sum(label != -100 for label in row["labels"][1:]) for row in examples.rows]
    assert lengths[1] > 10 * lengths[0]
    means = _record_means(trainer.model, examples.rows)

    trainer.model.train()
    batches, _ = trainer.get_batch_samples(iter(trainer.get_train_dataloader()), 2, trainer.args.device)
    assert trainer._records_in_step == 2
    # training_step: the loss as backpropagated (after transformers' gradient-accumulation scaling)
    losses = [trainer.training_step(trainer.model, b, None).item() for b in batches]
    assert sum(losses) == pytest.approx(sum(means) / 2, rel=1e-4)
    token_mean = sum(m * n for m, n in zip(means, lengths, strict=True)) / sum(lengths)
    assert sum(losses) != pytest.approx(token_mean, rel=1e-3)  # a random model's records differ by ~1%
    # TRL's own trainer (the default, loss_average: token) averages over the step's tokens instead.
    default, _, _, _ = build_sft_trainer(tiny_model_dir, records, SFTTrainConfig(**{**FAST, "per_device_batch_size": 1}),
                                         tmp_path / "t")
    assert not isinstance(default, RecordMeanSFTTrainer)
    default.model.train()
    batches, tokens = default.get_batch_samples(iter(default.get_train_dataloader()), 2, default.args.device)
    losses = [default.training_step(default.model, b, tokens).item() for b in batches]
    assert sum(losses) == pytest.approx(token_mean, rel=1e-4)


def test_train_sft_with_the_record_average(tiny_model_dir, tmp_path):
    out = tmp_path / "m1"
    result = train_sft(tiny_model_dir, SFT_RECORDS, out, SFTTrainConfig(**FAST, loss_average="record"))
    assert result.steps == 1 and result.train_loss > 0
    assert not torch.equal(_state(out)["model.layers.0.mlp.up_proj.weight"],
                           _state(tiny_model_dir)["model.layers.0.mlp.up_proj.weight"])


def test_dpo_step_trains_saves_and_reloads_identically(tiny_model_dir, tmp_path):
    config = DPOTrainConfig(**FAST)
    trainer, tok, model_dir = build_step_dpo_trainer(tiny_model_dir, PAIRS, config, tmp_path / "s")
    assert trainer.ref_model is not None  # full fine-tuning: TRL keeps a frozen copy of the policy
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    output = trainer.train()
    assert trainer.state.global_step == 1 and output.training_loss == pytest.approx(0.6931, abs=1e-3)
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(before[k], v)]
    assert changed
    expected = _logits(trainer.model, tok)
    out = tmp_path / "dpo"
    result = TrainResult(out_dir=str(out), kind="dpo", steps=1, train_loss=output.training_loss, examples=3,
                         dropped_too_long=0)
    save_trained_model(trainer, tok, out, result, model_dir)
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert torch.equal(_logits(reloaded, AutoTokenizer.from_pretrained(out)), expected)


def test_train_step_dpo_metrics(tiny_model_dir, tmp_path):
    out = tmp_path / "m2"
    config = DPOTrainConfig(**{**FAST, "max_steps": 2})
    steps = [StepPair(prompt=p["prompt"], chosen=p["chosen"], rejected=p["rejected"], problem_id="x",
                      step_index=1, chosen_score=5, rejected_score=0, is_final_step=p["is_final_step"])
             for p in PAIRS]
    result = train_step_dpo(tiny_model_dir, steps, out, config)
    assert result.kind == "dpo" and result.steps == 2 and result.examples == 3
    for key in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                "rewards/accuracies_mean"):
        assert key in result.metrics, key
    assert result.metrics["pairs_final_step"] == 1.0
    # After one update on these very pairs, the chosen steps' implicit reward beats the rejected ones.
    assert result.metrics["rewards/margins"] > 0


@pytest.mark.parametrize("lora,precompute", [(True, False), (False, True), (True, True)])
def test_reference_model_handling(tiny_model_dir, tmp_path, lora, precompute):
    config = DPOTrainConfig(**FAST, lora=lora, lora_r=4, precompute_ref_log_probs=precompute)
    trainer, _, _ = build_step_dpo_trainer(tiny_model_dir, PAIRS, config, tmp_path / "s")
    # With LoRA the reference is the adapter-free base; with precomputation it is computed up front.
    assert trainer.ref_model is None
    if precompute:
        assert "ref_chosen_logps" in trainer.train_dataset.column_names
        # The cached log-probs live beside the dataset in the trainer's directory, a path every process
        # of a distributed run shares (an in-memory dataset would cache to a per-process temp dir).
        scratch = (tmp_path / "s").resolve()
        assert all(Path(f["filename"]).resolve().is_relative_to(scratch) for f in trainer.train_dataset.cache_files)
        assert len(trainer.train_dataset.cache_files) >= 2
    trainer.train()
    assert trainer.state.global_step == 1


def test_lora_merges_into_a_plain_model(tiny_model_dir, tmp_path):
    config = DPOTrainConfig(**FAST, lora=True, lora_r=4, lora_alpha=8)
    trainer, tok, model_dir = build_step_dpo_trainer(tiny_model_dir, PAIRS, config, tmp_path / "s")
    trainer.train()
    expected = _logits(trainer.model, tok)
    out = tmp_path / "lora"
    save_trained_model(trainer, tok, out,
                       TrainResult(str(out), "dpo", 1, None, 3, 0, lora=True), model_dir)
    names = {p.name for p in out.iterdir()}
    assert "adapter_config.json" not in names and "model.safetensors" in names
    state = _state(out)
    assert not any("lora" in key for key in state)
    base = _state(tiny_model_dir)
    assert set(state) == set(base)
    assert not torch.equal(state["model.layers.0.self_attn.q_proj.weight"], base["model.layers.0.self_attn.q_proj.weight"])
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    # Merging reorders the float arithmetic (W x + B A x vs (W + B A) x), so equal up to rounding.
    torch.testing.assert_close(_logits(reloaded, tok), expected, rtol=0, atol=1e-5)

    # The adapter is kept beside the merged weights (megabytes: what a published run carries), and
    # merging it into the base again rebuilds the saved model bit for bit.
    adapter = out / ADAPTER_DIR
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in adapter.iterdir()}
    assert sum(p.stat().st_size for p in adapter.iterdir()) < (out / "model.safetensors").stat().st_size / 4
    rebuilt = tmp_path / "rebuilt"
    merge_adapter(model_dir, adapter, rebuilt)
    again = _state(rebuilt)
    assert set(again) == set(state) and all(torch.equal(again[k], state[k]) for k in state)


def test_freeze_embeddings_keeps_embedding_fixed(tiny_model_dir, tmp_path):
    out = tmp_path / "frozen"
    train_step_dpo(tiny_model_dir, PAIRS, out, DPOTrainConfig(**FAST, freeze_embeddings=True))
    new, old = _state(out), _state(tiny_model_dir)
    assert torch.equal(new["model.embed_tokens.weight"], old["model.embed_tokens.weight"])
    assert not torch.equal(new["model.layers.1.mlp.down_proj.weight"], old["model.layers.1.mlp.down_proj.weight"])


# --------------------------------------------------------------------------- saving and guards


def test_finalize_is_atomic_and_replaces(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("old")  # an unfinished earlier attempt
    assert not is_trained_model(out)
    tmp = partial_dir(out)
    tmp.mkdir()
    (tmp / "config.json").write_text("{}")
    result = TrainResult(str(out), "dpo", 1, 0.5, 3, 1)
    finalize_model_dir(tmp, out, result)
    assert is_trained_model(out) and not tmp.exists()
    assert not (out / "stale.txt").exists() and (out / "config.json").exists()
    assert read_train_result(out) == result
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no leftovers
    with pytest.raises(UserError, match="not hold a finished"):
        read_train_result(tmp_path)


def test_failed_save_leaves_no_finished_model(tiny_model_dir, tmp_path, monkeypatch):
    trainer, tok, model_dir = build_step_dpo_trainer(tiny_model_dir, PAIRS, DPOTrainConfig(**FAST), tmp_path / "s")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tok, "save_pretrained", boom)
    out = tmp_path / "m"
    with pytest.raises(OSError):
        save_trained_model(trainer, tok, out, TrainResult(str(out), "dpo", 0, None, 3, 0), model_dir)
    assert not out.exists() and not is_trained_model(out)


def test_gguf_quantizer_is_removed_other_quantizers_kept(tiny_model_dir, tmp_path):
    from types import SimpleNamespace

    from transformers import GgufConfig
    from transformers.quantizers.quantizer_gguf import GgufHfQuantizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert drop_quantizer(model) is False
    config = GgufConfig(gguf_file="model.gguf")
    model.hf_quantizer = GgufHfQuantizer(config)
    model.config.quantization_config = config
    model.is_quantized = True
    assert drop_quantizer(model) is True
    assert getattr(model, "hf_quantizer", None) is None and not model.is_quantized
    assert not hasattr(model.config, "quantization_config")
    model.save_pretrained(tmp_path / "plain")
    saved = json.loads((tmp_path / "plain" / "config.json").read_text())
    assert "quantization_config" not in saved

    other = SimpleNamespace(quantization_config=SimpleNamespace(quant_method="bitsandbytes"))
    model.hf_quantizer = other
    assert drop_quantizer(model) is False and model.hf_quantizer is other


def test_summarize_log_history():
    history = [
        {"loss": 0.69, "rewards/accuracies": 0.0, "rewards/margins": 0.0, "step": 1},
        {"loss": 0.60, "rewards/accuracies": 1.0, "rewards/margins": 0.2, "step": 2},
        {"train_loss": 0.645, "train_runtime": 3.0, "flag": True, "note": "x"},
    ]
    summary = summarize_log_history(history)
    assert summary["loss"] == 0.60 and summary["rewards/accuracies"] == 1.0 and summary["train_loss"] == 0.645
    assert summary["rewards/accuracies_mean"] == 0.5 and summary["rewards/margins_mean"] == pytest.approx(0.1)
    assert "flag" not in summary and "note" not in summary


# --------------------------------------------------------------------------- stand-alone entry point


def test_module_entry_point_trains_one_stage(tiny_model_dir, tmp_path, capsys):
    from prm_selfreward.io import write_jsonl
    from prm_selfreward.train.__main__ import main, stage_config

    run_config = tmp_path / "run.yaml"
    run_config.write_text("dpo:\n  learning_rate: 1.0e-3\n  device: cpu\n  batch_size: 2\n  per_device_batch_size: 2\n")
    config = stage_config("dpo", str(run_config), ["max_steps=1", "lora=true"])
    assert (config.learning_rate, config.max_steps, config.lora, config.batch_size) == (1e-3, 1, True, 2)

    data = tmp_path / "pairs.jsonl"
    write_jsonl(data, PAIRS)
    out = tmp_path / "m"
    code = main(["dpo", "--model", str(tiny_model_dir), "--data", str(data), "--out", str(out),
                 "--config", str(run_config), "--set", "max_steps=1"])
    assert code == 0 and is_trained_model(out)
    shown = capsys.readouterr()
    assert json.loads(shown.out)["steps"] == 1  # stdout is the result alone
    assert "train DPO: done, 1/1 steps" in shown.err  # the progress went to stderr
    assert main(["sft", "--model", str(tiny_model_dir), "--data", str(tmp_path / "none.jsonl"),
                 "--out", str(tmp_path / "x")]) == 2
    assert main(["dpo", "--model", str(tiny_model_dir), "--data", str(data), "--out", str(tmp_path / "y"),
                 "--set", "lerning_rate=1"]) == 2


# ------------------------------------------------------------------- progress in a log (issue 24)


def _progress_lines(text: str, label: str) -> list[str]:
    import re

    return [m[1] for m in re.finditer(rf"^\d\d:\d\d:\d\d {re.escape(label)}: (.*)$", text, re.M)]


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_training_reports_its_steps_when_stdout_is_not_a_terminal(tiny_model_dir, tmp_path, capsys, kind):
    """pytest's captured stdout is no terminal, as a `nohup ... > log` file is not: plain lines with the
    optimizer steps done/total, rate, ETA and the last loss, from a TrainerCallback."""
    if kind == "sft":
        train_sft(tiny_model_dir, SFT_RECORDS, tmp_path / "m", SFTTrainConfig(**{**FAST, "max_steps": 3}))
    else:
        train_step_dpo(tiny_model_dir, PAIRS, tmp_path / "m", DPOTrainConfig(**{**FAST, "max_steps": 3}))
    lines = _progress_lines(capsys.readouterr().out, f"train {kind.upper()}")
    assert lines[0] == "started, 3 steps", lines
    assert lines[-1].startswith("done, 3/3 steps in "), lines
    steps = [line for line in lines if re.match(r"\d/3 steps \(\d+%\), [\d.]+ steps/(s|min), elapsed \d+s, ETA ", line)]
    assert [s.split("/")[0] for s in steps] == ["1", "2", "3"], lines
    assert "loss " in steps[-1] or "loss " in steps[-2], lines  # logging_steps decides which step has a loss


def test_a_failed_training_ends_its_progress_report(tiny_model_dir, tmp_path, capsys, monkeypatch):
    from transformers import Trainer

    def broken(self, *args, **kwargs):  # fails after the callbacks heard the training begin
        self.state.max_steps = 1
        self.callback_handler.on_train_begin(self.args, self.state, self.control)
        raise RuntimeError("out of memory")

    monkeypatch.setattr(Trainer, "train", broken)
    with pytest.raises(RuntimeError):
        train_sft(tiny_model_dir, SFT_RECORDS, tmp_path / "m", SFTTrainConfig(**FAST))
    lines = _progress_lines(capsys.readouterr().out, "train SFT")
    assert lines[-1] == "stopped at 0/1 steps after 0s (RuntimeError)", lines
