"""Model backends behind one :class:`Generator` interface.

Importing this package is cheap: torch, transformers and vLLM are imported when a backend is built.
"""

from .base import Completion, GenerationParams, Generator, TokenUsage, truncate_at_stop
from .budget import PromptBudget
from .config import ModelConfig, load_generator, load_generator_from_config
from .embedded import (
    EMBEDDED_MODEL_ID,
    EMBEDDED_MODELS,
    EMBEDDED_NAME,
    EmbeddedModel,
    cache_dir,
    embedded_model,
    embedded_model_dir,
    is_converted,
    is_embedded,
)
from .hf import HFGenerator
from .loading import load_model_and_tokenizer, resolve_model_path
from .scripted import ScriptedGenerator
from .vllm import VLLMConfig, VLLMGenerator, engine_kwargs, to_sampling_kwargs, vllm_available

__all__ = [
    "EMBEDDED_MODEL_ID",
    "EMBEDDED_MODELS",
    "EMBEDDED_NAME",
    "EmbeddedModel",
    "Completion",
    "GenerationParams",
    "Generator",
    "HFGenerator",
    "PromptBudget",
    "ScriptedGenerator",
    "TokenUsage",
    "VLLMConfig",
    "VLLMGenerator",
    "cache_dir",
    "embedded_model",
    "embedded_model_dir",
    "engine_kwargs",
    "is_converted",
    "is_embedded",
    "ModelConfig",
    "load_generator",
    "load_generator_from_config",
    "load_model_and_tokenizer",
    "resolve_model_path",
    "to_sampling_kwargs",
    "truncate_at_stop",
    "vllm_available",
]
