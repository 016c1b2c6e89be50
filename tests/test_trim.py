"""Vocabulary trimming (``prm-sr trim-vocab``): the trimmed tokenizer reproduces the corpus tokens and
stays lossless on other text, the trimmed model's logits are the full model's on the kept ids, greedy
generation matches the full model restricted to the kept ids, training keeps the model trimmed, and
the cached copy of the loop is made once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from prm_selfreward.cli import app
from prm_selfreward.errors import UserError
from prm_selfreward.models import GenerationParams, HFGenerator
from prm_selfreward.models.trim import (
    TRIM_INFO,
    is_plain_ascii,
    read_trim_info,
    texts_from_file,
    tokenization_mismatches,
    trim_model,
    trimmed_model_dir,
    vocabulary_sha256,
)

# A small corpus: the trimmed tiny tokenizer keeps well under its 512 tokens.
CORPUS = [
    "Step 1: Natalia sold 48/2 = 24 clips in May.",
    "Problem: What is 2 + 3? Step 1: 2 + 3 = 5. The final answer is \\boxed{5}.",
    "Which step is better? [[A]] [[B]]",
]
# Not in the corpus: other words, other characters (byte-level fallback keeps these lossless).
OTHER = [
    "Natalia sold 72 clips altogether in April and May.",
    "The answer is $\\frac{1}{2}$ and \\sqrt{2} \\pi x = 5",
    "Ünïcödé, 日本語 and an emoji ☃ survive: decode gives them back.",
    "",
]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trimmed(tiny_model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trim") / "tiny-trimmed"
    trim_model(tiny_model_dir, out, CORPUS)
    return out


@pytest.mark.parametrize(
    "token,expected",
    [("▁the", True), ("Ġthe", False), ("\n\n", True), ("{}", True), ("<0xC3>", True), ("é", False),
     ("▁日本", False), ("", False), ("\x00", False), ("~", True)],
)
def test_is_plain_ascii(token, expected):
    assert is_plain_ascii(token) is expected


def test_texts_from_file_reads_every_string_of_every_record(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"q": "a", "n": 3, "s": ["b", {"c": "d"}], "e": ""}) + "\n\n" + json.dumps({"q": "e"}) + "\n")
    assert texts_from_file(path) == ["a", "b", "d", "e"]
    (tmp_path / "p.txt").write_text("whole file\n")
    assert texts_from_file(tmp_path / "p.txt") == ["whole file\n"]
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(UserError, match="bad.jsonl:1"):
        texts_from_file(tmp_path / "bad.jsonl")


def test_trimmed_tokenizer_reproduces_corpus_and_is_lossless(tiny_model_dir, trimmed):
    full, trim = AutoTokenizer.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(trimmed)
    info = read_trim_info(trimmed)
    assert info["not_exact"] == 0 and info["not_lossless"] == 0
    assert len(trim) == info["kept"] < len(full)
    assert tokenization_mismatches(full, trim, CORPUS) == (0, 0)
    for text in CORPUS:
        assert trim.tokenize(text) == full.tokenize(text)
    for text in OTHER:  # unseen text: maybe other tokens, but always the same text back
        assert trim.decode(trim(text, add_special_tokens=False)["input_ids"]) == text
    # Special tokens keep their names; the post-processor (BOS or not) behaves as before.
    for name in ("bos_token", "eos_token", "pad_token", "unk_token"):
        assert getattr(trim, name) == getattr(full, name)
    for text in CORPUS[:1]:
        assert trim.convert_ids_to_tokens(trim(text)["input_ids"]) == full.convert_ids_to_tokens(full(text)["input_ids"])


def test_unseen_tokens_are_really_dropped(tiny_model_dir, trimmed):
    full, trim = AutoTokenizer.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(trimmed)
    text = OTHER[0]
    assert trim.tokenize(text) != full.tokenize(text)  # otherwise the test corpus is too large to prove anything
    assert set(trim.get_vocab()) < set(full.get_vocab())


def test_trimmed_logits_equal_full_logits_on_kept_ids(tiny_model_dir, trimmed):
    kept = read_trim_info(trimmed)["kept_ids"]
    full_m, trim_m = AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoModelForCausalLM.from_pretrained(trimmed)
    full_t, trim_t = AutoTokenizer.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(trimmed)
    assert trim_m.config.vocab_size == len(kept) and trim_m.lm_head.weight is trim_m.model.embed_tokens.weight
    assert trim_m.config.pad_token_id == trim_t.pad_token_id and trim_m.generation_config.eos_token_id == trim_t.eos_token_id
    with torch.no_grad():
        for text in CORPUS:
            a = trim_m(**trim_t(text, return_tensors="pt")).logits
            b = full_m(**full_t(text, return_tensors="pt")).logits[..., kept]
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_greedy_generation_equals_full_model_restricted_to_kept_ids(tiny_model_dir, trimmed):
    """A random model picks dropped tokens freely, so the full model is restricted to the kept ids
    (``suppress_tokens``); then greedy decoding must pick the same tokens step for step."""
    kept = read_trim_info(trimmed)["kept_ids"]
    full = HFGenerator(str(tiny_model_dir))
    trim = HFGenerator(str(trimmed))
    dropped = sorted(set(range(full.model.config.vocab_size)) - set(kept))
    full.model.generation_config.suppress_tokens = dropped
    params = GenerationParams(max_new_tokens=12)
    prompts = ["Problem: What is 2 + 3? Step 1:", "Step 1: Natalia sold", "Which step is better?"]
    a = full.generate(prompts, params=params)
    b = trim.generate(prompts, params=params)
    assert [c[0].text for c in a] == [c[0].text for c in b]
    assert any(c[0].completion_tokens for c in b)


def test_sft_and_dpo_step_on_a_trimmed_model_stay_trimmed(trimmed, tmp_path):
    from prm_selfreward.train import train_sft, train_step_dpo
    from prm_selfreward.train.config import DPOTrainConfig, SFTTrainConfig

    fast = {"device": "cpu", "batch_size": 2, "per_device_batch_size": 2, "max_steps": 1, "learning_rate": 1e-3}
    records = [{"prompt": "Problem: What is 2 + 3?", "completion": " Step 1: 2 + 3 = 5."},
               {"prompt": "Which step is better?", "completion": " [[A]]"}]
    sft = train_sft(trimmed, records, tmp_path / "m1", SFTTrainConfig(**fast))
    assert sft.steps == 1 and sft.train_loss > 0
    pairs = [{"prompt": "Problem: What is 2 + 3? Step 1:", "chosen": " 2 + 3 = 5.", "rejected": " 2 + 3 = 6.",
              "is_final_step": False},
             {"prompt": "Step 1: Natalia sold", "chosen": " 24 clips.", "rejected": " 48 clips.", "is_final_step": True}]
    dpo = train_step_dpo(tmp_path / "m1", pairs, tmp_path / "m2", DPOTrainConfig(**fast))
    assert dpo.steps == 1
    vocab = read_trim_info(trimmed)["kept"]
    for out in (tmp_path / "m1", tmp_path / "m2"):
        model = AutoModelForCausalLM.from_pretrained(out)
        assert model.config.vocab_size == vocab == len(AutoTokenizer.from_pretrained(out))


def test_cli_trim_vocab_with_corpus_file(tiny_model_dir, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in CORPUS))
    out = tmp_path / "cli-trimmed"
    result = CliRunner().invoke(app, ["trim-vocab", str(tiny_model_dir), "--out", str(out), "--corpus", str(corpus)])
    assert result.exit_code == 0, result.output
    assert "not exact: 0" in result.output and (out / TRIM_INFO).is_file()
    again = CliRunner().invoke(app, ["trim-vocab", str(tiny_model_dir), "--out", str(out), "--corpus", str(corpus)])
    assert again.exit_code != 0 and "already exists" in str(again.exception or again.output)


def test_trimmed_model_dir_is_made_once_and_redone_when_incomplete(tiny_model_dir, tmp_path):
    data = tmp_path / "data" / "toy"
    data.mkdir(parents=True)
    (data / "test.jsonl").write_text("".join(json.dumps({"question": t}) + "\n" for t in CORPUS))
    cache = tmp_path / "cache"
    first = trimmed_model_dir(str(tiny_model_dir), data_dir=tmp_path / "data", cache=cache, verbose=False)
    assert read_trim_info(first)["not_exact"] == 0
    stamp = (first / TRIM_INFO).stat().st_mtime_ns
    assert trimmed_model_dir(str(tiny_model_dir), data_dir=tmp_path / "data", cache=cache, verbose=False) == first
    assert (first / TRIM_INFO).stat().st_mtime_ns == stamp  # cached, not redone
    (first / TRIM_INFO).unlink()  # as if killed before the marker: redone
    (first.parent / f".tmp-{first.name}-dead").mkdir()  # a killed run's leftovers: removed
    again = trimmed_model_dir(str(tiny_model_dir), data_dir=tmp_path / "data", cache=cache, verbose=False)
    assert again == first and read_trim_info(again) is not None
    assert not list(first.parent.glob(f".tmp-{first.name}-*"))
    # The same ids asked for explicitly: the corpus's copy, not a second one.
    kept = read_trim_info(first)["kept_ids"]
    assert trimmed_model_dir(str(tiny_model_dir), data_dir=tmp_path / "data", cache=cache, verbose=False,
                             kept_ids=kept) == first
    # Another corpus, another cached copy; asked for the first vocabulary, it rebuilds exactly that one.
    (data / "train.jsonl").write_text(json.dumps({"question": OTHER[0]}) + "\n")
    other = trimmed_model_dir(str(tiny_model_dir), data_dir=tmp_path / "data", cache=cache, verbose=False)
    assert other != first and read_trim_info(other)["kept_ids"] != kept
    shutil.rmtree(first)
    exact = trimmed_model_dir(str(tiny_model_dir), data_dir=tmp_path / "data", cache=cache, verbose=False,
                              kept_ids=kept)
    assert exact not in (first, other) and read_trim_info(exact)["kept_ids"] == kept
    token_of = {i: t for t, i in AutoTokenizer.from_pretrained(tiny_model_dir).get_vocab().items()}
    assert AutoTokenizer.from_pretrained(exact).get_vocab() == {token_of[old]: new for new, old in enumerate(kept)}


def test_kept_ids_must_be_sorted_distinct_ids_of_the_tokenizer(tiny_model_dir, tmp_path):
    full = len(AutoTokenizer.from_pretrained(tiny_model_dir))
    for bad in ([3, 2], [2, 2, 5], [], [0, full]):
        with pytest.raises(UserError, match="sorted distinct ids"):
            trim_model(tiny_model_dir, tmp_path / "out", CORPUS, kept_ids=bad)
        assert not (tmp_path / "out").exists()


def test_run_with_trim_vocab_starts_from_the_trimmed_copy(tiny_model_dir, tmp_path, monkeypatch):
    """M0's generator and M1's SFT start from Run.model_spec(0): the cached trimmed copy."""
    import prm_selfreward.loop as loop

    data = tmp_path / "data" / "toy"
    data.mkdir(parents=True)
    (data / "test.jsonl").write_text("".join(json.dumps({"question": t}) + "\n" for t in CORPUS))
    monkeypatch.setenv("PRM_SR_CACHE_DIR", str(tmp_path / "cache"))
    config = loop.load_run_config(None, {"model": {"name": str(tiny_model_dir), "trim_vocab": True},
                                         "data_dir": str(tmp_path / "data")})
    run = loop.RunContext(tmp_path / "run", config, log=lambda msg: None)
    spec = run.model_spec(0)
    assert Path(spec).parent.parent == tmp_path / "cache" / "models" and read_trim_info(spec)["not_exact"] == 0
    generator = run.generator(0)
    assert generator.model.config.vocab_size == read_trim_info(spec)["kept"]
    run.release()
    off = loop.load_run_config(None, {"model": {"name": str(tiny_model_dir)}})
    assert loop.RunContext(tmp_path / "run2", off, log=lambda msg: None).model_spec(0) == str(tiny_model_dir)

    # The corpus changes (a new package version, new data): a resumed run keeps its recorded M0, a new run
    # trims anew.
    with (data / "test.jsonl").open("a") as f:
        f.write(json.dumps({"question": OTHER[0]}) + "\n")  # tokens the corpus did not have
    assert loop.RunContext(tmp_path / "run", config, log=lambda msg: None).model_spec(0) == spec
    fresh = loop.RunContext(tmp_path / "run3", config, log=lambda msg: None).model_spec(0)
    assert fresh != spec and read_trim_info(fresh)["not_exact"] == 0
    kept = read_trim_info(spec)["kept_ids"]
    assert read_trim_info(fresh)["kept_ids"] != kept
    # The run wrote its vocabulary; with the recorded copy gone (an emptied cache, another machine), the
    # resumed run rebuilds exactly it, not what today's corpus keeps.
    vocab = json.loads((tmp_path / "run" / "base_vocab.json").read_text())
    assert vocab["kept_ids"] == kept and vocab["sha256"] == vocabulary_sha256(kept)
    shutil.rmtree(spec)
    resumed = loop.RunContext(tmp_path / "run", config, log=lambda msg: None)
    rebuilt = resumed.model_spec(0)
    assert rebuilt not in (spec, fresh) and read_trim_info(rebuilt)["kept_ids"] == kept
    assert resumed.manifest.data["base_model"]["path"] == rebuilt
    # A recorded copy that keeps other ids than the run's vocabulary: one clear error, not a silent other M0.
    (tmp_path / "run3" / "base_vocab.json").write_text((tmp_path / "run" / "base_vocab.json").read_text())
    with pytest.raises(UserError, match="keeps other tokens than this run's vocabulary"):
        loop.RunContext(tmp_path / "run3", config, log=lambda msg: None).model_spec(0)


def test_trim_vocab_without_data_dir_is_a_user_error(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("PRM_SR_DATA_DIR", raising=False)
    with pytest.raises(UserError, match="benchmark directory"):
        trimmed_model_dir(str(tiny_model_dir), cache=tmp_path)


# ------------------------------------------------------------------------------ the embedded model


@pytest.fixture(scope="module")
def embedded_trimmed(data_dir):
    return trimmed_model_dir("embedded", data_dir=data_dir)


@pytest.mark.slow
def test_embedded_trimmed_tokenizer_reproduces_every_corpus_text(data_dir, embedded_trimmed):
    from prm_selfreward.models.loading import resolve_model_path
    from prm_selfreward.models.trim import default_corpus

    full = AutoTokenizer.from_pretrained(resolve_model_path("embedded"))
    trim = AutoTokenizer.from_pretrained(embedded_trimmed)
    texts = default_corpus(data_dir)
    assert tokenization_mismatches(full, trim, texts) == (0, 0)
    assert len(trim) < len(full) // 5


@pytest.mark.slow
def test_embedded_trimmed_greedy_generation_identical_on_gsm8k(data_dir, embedded_trimmed):
    from prm_selfreward.data import load_benchmark
    from prm_selfreward.prompts import solve_message

    problems = load_benchmark("gsm8k", data_dir=data_dir)[:3]
    prompts = [solve_message(p.question, few_shot=1) for p in problems]
    params = GenerationParams(max_new_tokens=24)
    full = HFGenerator("embedded", batch_size=3)
    a = [c[0].text for c in full.generate(prompts, params=params)]
    full.close()
    trim = HFGenerator(str(embedded_trimmed), batch_size=3)
    b = [c[0].text for c in trim.generate(prompts, params=params)]
    assert a == b and all(a)
