"""Model resolution and its error messages; the embedded model's cache handling; one slow test that
loads the embedded model and generates."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from prm_selfreward.errors import UserError
from prm_selfreward.models import embedded
from prm_selfreward.models.config import load_generator
from prm_selfreward.models.loading import load_model_and_tokenizer, resolve_model_path


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    """Hub offline mode as HF_HUB_OFFLINE=1 sets it (the constant is read at import), empty caches."""
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_local_model_directory_resolves_to_itself(tiny_model_dir):
    assert resolve_model_path(str(tiny_model_dir)) == Path(tiny_model_dir).resolve()
    assert resolve_model_path(Path(tiny_model_dir)) == Path(tiny_model_dir).resolve()


@pytest.mark.parametrize(
    "spec,message",
    [
        ("./no/such/model", "does not exist"),
        ("/definitely/not/here", "does not exist"),
        ("../missing-dir", "does not exist"),
        ("", "empty model name"),
    ],
)
def test_missing_paths_are_user_errors(spec, message):
    with pytest.raises(UserError, match=message):
        resolve_model_path(spec)


def test_directory_without_config_is_not_a_model(tmp_path):
    with pytest.raises(UserError, match="no config.json"):
        resolve_model_path(str(tmp_path))
    (tmp_path / "weights.bin").write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        resolve_model_path(str(tmp_path / "weights.bin"))


@pytest.mark.parametrize("call", ["resolve", "load"])
def test_offline_hub_id_names_the_offline_alternatives(offline_hub, call):
    spec = "prm-sr-test/no-such-model"
    with pytest.raises(UserError) as info:
        if call == "resolve":
            resolve_model_path(spec)
        else:
            load_model_and_tokenizer(spec)
    message = str(info.value)
    assert spec in message and "'embedded'" in message and "local model directory" in message
    assert "\n" not in message


def test_load_model_and_tokenizer_from_local_dir(tiny_model_dir):
    import torch

    model, tokenizer = load_model_and_tokenizer(tiny_model_dir, dtype="float32")
    assert tokenizer.padding_side == "left"
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32
    with pytest.raises(UserError, match="unknown dtype"):
        load_model_and_tokenizer(tiny_model_dir, dtype="float8")


def test_load_generator_backends(tiny_model_dir):
    from prm_selfreward.models import HFGenerator, vllm_available

    gen = load_generator(str(tiny_model_dir), backend="hf", batch_size=2, seed=0, tensor_parallel_size=1)
    assert isinstance(gen, HFGenerator) and gen.batch_size == 2
    with pytest.raises(UserError, match="unknown model backend"):
        load_generator(str(tiny_model_dir), backend="onnx")
    with pytest.raises(UserError, match="tensor_parallel_size=2 needs the vllm backend"):
        load_generator(str(tiny_model_dir), backend="hf", tensor_parallel_size=2)
    if not vllm_available()[0]:
        with pytest.raises(UserError, match="needs vLLM"):
            load_generator(str(tiny_model_dir), backend="vllm")


# -- the embedded model's cache ------------------------------------------------------------------


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(embedded.CACHE_ENV, raising=False)
    default = embedded.cache_dir()
    assert "prm-selfreward" in str(default)
    monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path / "env"))
    assert embedded.cache_dir() == tmp_path / "env"
    assert embedded.cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_incomplete_conversion_is_not_taken_for_done(tmp_path):
    target = tmp_path / "models" / "qwen2.5-coder-0.5b-instruct"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")  # a killed conversion's leftovers, no marker
    assert not embedded.is_converted(tmp_path)
    (target / embedded._MARKER).write_text(json.dumps({"format_version": embedded._FORMAT_VERSION}))
    assert embedded.is_converted(tmp_path)
    assert embedded.embedded_model_dir(tmp_path) == target  # complete: no conversion
    (target / embedded._MARKER).write_text(json.dumps({"format_version": -1}))
    assert not embedded.is_converted(tmp_path)  # older format: redone


def test_failed_conversion_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken_assemble(model, path):
        Path(path).write_bytes(b"partial gguf")
        raise OSError("disk full")

    models = tmp_path / "models"
    models.mkdir()
    (models / ".tmp-qwen2.5-coder-0.5b-instruct-old").mkdir()  # from an earlier killed run
    (models / "qwen2.5-coder-0.5b-instruct").mkdir()  # incomplete target without marker
    monkeypatch.setattr(embedded, "assemble_gguf", broken_assemble)
    with pytest.raises(OSError, match="disk full"):
        embedded.embedded_model_dir(tmp_path, verbose=False)
    assert sorted(p.name for p in models.iterdir() if not p.name.endswith(".lock")) == []


def test_unwritable_cache_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(UserError, match="PRM_SR_CACHE_DIR"):
        embedded.embedded_model_dir(blocker / "cache")


@pytest.mark.slow
def test_embedded_model_loads_and_generates():
    """The real embedded model, Qwen2.5-Coder-0.5B-Instruct (converted once into the cache, ~1.5 min the
    first time): a chat model with its template, the untied output layer kept as the GGUF has it."""
    from prm_selfreward.models import GenerationParams, HFGenerator

    gen = HFGenerator("embedded", batch_size=2)
    assert embedded.is_converted()
    prompt = gen.format_prompt("What is 2 + 3?")
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    assert gen.model.config.get_text_config().vocab_size == 151936
    assert gen.model.get_output_embeddings().weight is not gen.model.get_input_embeddings().weight
    info = json.loads((embedded.embedded_model_dir() / embedded._MARKER).read_text())
    assert info["gguf_sha256"] == embedded.QWEN_CODER_05B.sha256 and info["output_layer_tied"] is False
    prompt = "Step 1: Natalia sold 48/2 = 24 clips in May.\nStep 2: Natalia sold 48 + 24 ="
    comp = gen.generate([prompt], params=GenerationParams(max_new_tokens=4))[0][0]
    assert 1 <= comp.completion_tokens <= 4 and comp.text.strip()
    (lps,) = gen.score([prompt], [" 72 clips"])
    assert lps and all(math.isfinite(x) and x <= 0 for x in lps)
    gen.close()
