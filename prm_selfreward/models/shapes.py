"""A model's ``config.json`` without loading the model: for ``prm-sr plan`` (no GPU, possibly offline).

:func:`read_model_config` looks, in order, at a local model directory (or the embedded model), the
local Hugging Face cache, then :data:`SHIPPED_CONFIGS`: the ``config.json`` fields that fix the shape
(parameter count, context, KV-cache size) of the models the shipped configs name, so a plan for a
paper-scale config works on a machine that never downloaded the model. It says which one it used.
Parameters are counted by transformers itself (:func:`count_parameters`: the model built from the
config on the meta device, no memory allocated), not by a formula of ours.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError

SHIPPED_CONFIGS: dict[str, dict[str, Any]] = {
    # Qwen/Qwen2.5-Math-7B config.json (shape fields)
    "Qwen/Qwen2.5-Math-7B": {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584,
        "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
        "num_key_value_heads": 4, "vocab_size": 152064, "max_position_embeddings": 4096,
        "tie_word_embeddings": False, "rope_theta": 10000.0, "torch_dtype": "bfloat16",
    },
    # Qwen/Qwen2.5-Math-72B config.json (shape fields)
    "Qwen/Qwen2.5-Math-72B": {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 8192,
        "intermediate_size": 29568, "num_hidden_layers": 80, "num_attention_heads": 64,
        "num_key_value_heads": 8, "vocab_size": 152064, "max_position_embeddings": 4096,
        "tie_word_embeddings": False, "rope_theta": 10000.0, "torch_dtype": "bfloat16",
    },
}


@dataclass(frozen=True)
class ModelShape:
    """What a plan needs to know about a model, read from its config."""

    source: str
    """Where the config came from (a path, ``hub cache``, or ``shipped table``)."""
    model_type: str
    parameters: int
    largest_layer_parameters: int
    """The most parameters held directly by one module (DeepSpeed's ``largest_layer_params``: the
    embedding for these models), gathered whole on one GPU under ZeRO-3."""
    lora_parameters_per_rank: int
    """Parameters a rank-1 LoRA adapter on every linear layer but the output layer adds
    (``r * (in + out)`` per layer, summed); times ``lora_r`` for the real adapter."""
    hidden_size: int
    layers: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    context: int | None
    """``max_position_embeddings``."""
    tied_embeddings: bool


def read_model_config(spec: str) -> tuple[dict[str, Any], str]:
    """(the ``config.json`` of model ``spec``, where it was read). Raises UserError when none is found."""
    from .embedded import is_embedded

    if is_embedded(spec):
        from .loading import resolve_model_path

        path = resolve_model_path(spec) / "config.json"
        return json.loads(path.read_text(encoding="utf-8")), f"{path} (embedded model)"
    local = Path(spec).expanduser()
    if local.exists():
        path = local / "config.json"
        if not path.is_file():
            raise UserError(f"{spec!r} is not a model directory: no config.json in it")
        return json.loads(path.read_text(encoding="utf-8")), str(path)
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(spec, "config.json")
    except Exception:  # an id the hub client rejects: not cached
        cached = None
    if isinstance(cached, str):
        return json.loads(Path(cached).read_text(encoding="utf-8")), f"{cached} (hub cache)"
    if spec in SHIPPED_CONFIGS:
        return dict(SHIPPED_CONFIGS[spec]), "shipped table (prm_selfreward/models/shapes.py; not in the hub cache)"
    raise UserError(
        f"no config.json for {spec!r}: not a local directory, not in the Hugging Face cache, not in the shipped "
        f"table ({', '.join(SHIPPED_CONFIGS)}); download it (huggingface-cli download {spec} config.json) or "
        "pass a local model directory"
    )


def _text_config(data: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    fields = {k: v for k, v in data.items() if k not in ("model_type", "architectures", "transformers_version")}
    if "model_type" not in data:
        raise UserError("config.json has no model_type")
    config = AutoConfig.for_model(data["model_type"], **fields)
    return config


def count_parameters(data: dict[str, Any]) -> tuple[int, int, int]:
    """(parameters, largest layer's parameters, rank-1 LoRA parameters) of the causal LM ``data`` describes,
    counted on the model transformers builds from it on the meta device (tied weights counted once)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = _text_config(data)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    seen: dict[int, int] = {}
    for p in model.parameters():
        seen.setdefault(id(p), p.numel())
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    output = model.get_output_embeddings()
    lora = sum(
        m.in_features + m.out_features
        for m in model.modules()
        if isinstance(m, torch.nn.Linear) and m is not output
    )
    return sum(seen.values()), largest, lora


def model_shape(spec: str) -> ModelShape:
    """The :class:`ModelShape` of model ``spec`` (see :func:`read_model_config` for where it looks)."""
    data, source = read_model_config(spec)
    params, largest, lora = count_parameters(data)
    text = _text_config(data).get_text_config()
    heads = int(text.num_attention_heads)
    head_dim = int(getattr(text, "head_dim", None) or text.hidden_size // heads)
    return ModelShape(
        source=source, model_type=str(data["model_type"]), parameters=params, largest_layer_parameters=largest,
        lora_parameters_per_rank=lora, hidden_size=int(text.hidden_size), layers=int(text.num_hidden_layers),
        kv_heads=int(getattr(text, "num_key_value_heads", None) or heads), head_dim=head_dim,
        vocab_size=int(text.vocab_size), context=getattr(text, "max_position_embeddings", None),
        tied_embeddings=bool(getattr(text, "tie_word_embeddings", False)),
    )


__all__ = ["SHIPPED_CONFIGS", "ModelShape", "count_parameters", "model_shape", "read_model_config"]
