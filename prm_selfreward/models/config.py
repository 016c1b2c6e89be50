"""``ModelConfig``: which model, on which backend, with every backend option a run config can reach.

The one owner of model settings: the run config's ``model:`` section, the ``--model``/``--backend``/
``--batch-size`` options of every command and :func:`load_generator_from_config` all use this class.
Fields a backend does not use are ignored by it (``batch_size`` by vLLM, the ``gpu_*``/``max_model_len``/
prefix-caching options by transformers), so one config serves both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import option
from ..errors import UserError
from .loading import DTYPES

if TYPE_CHECKING:
    from .base import Generator

BACKENDS = ("hf", "vllm")


@dataclass
class ModelConfig:
    name: str = option("embedded", help="Base model M0: a local directory, a hub id, or 'embedded'.")
    backend: str = option("hf", help="Generation backend: hf (transformers) or vllm.", choices=BACKENDS)
    batch_size: int = option(8, help="Sequences per forward pass (transformers backend).", minimum=1)
    dtype: str = option("float32", help="float32 on CPU; bfloat16 on GPU.", choices=DTYPES)
    device: str = option("cpu", help="cpu, cuda, or auto (cuda when a GPU is visible).")
    tensor_parallel_size: int = option(1, help="vLLM: GPUs one model is split over.", minimum=1)
    gpu_memory_utilization: float = option(
        0.9, help="vLLM: fraction of GPU memory the engine may use (weights + KV cache).",
        minimum=0.0, exclusive_minimum=True, maximum=1.0,
    )
    max_model_len: int | None = option(
        None, help="vLLM: context length (prompt + completion); none: the model's.", minimum=1
    )
    enable_prefix_caching: bool = option(True, help="vLLM: reuse the KV cache of shared prompt prefixes.")
    enforce_eager: bool = option(False, help="vLLM: skip CUDA graph capture (faster start, slower decoding).")
    trim_vocab: bool = option(
        False,
        help="Start from a vocabulary-trimmed copy of the base model (prm-sr trim-vocab; corpus: the data "
        "directory and the package's prompts), cached beside the model. Same tokens for all known text, a "
        "much smaller output layer: faster on CPU.",
    )


def load_generator(spec: str | os.PathLike[str], backend: str = "hf", **kwargs: Any) -> Generator:
    """A :class:`Generator` for model ``spec`` on ``backend`` (``"hf"``: transformers; ``"vllm"``).

    ``kwargs`` go to :class:`~.hf.HFGenerator` or :class:`~.vllm.VLLMGenerator` (both take
    ``batch_size``, ``dtype``, ``device``, ``seed``; ``tensor_parallel_size`` other than 1 is vLLM only).
    """
    if backend in ("hf", "transformers"):
        from .hf import HFGenerator

        tensor_parallel = kwargs.pop("tensor_parallel_size", 1)
        if tensor_parallel not in (None, 1):
            raise UserError(
                f"tensor_parallel_size={tensor_parallel} needs the vllm backend; the hf backend runs one device"
            )
        return HFGenerator(spec, **kwargs)
    if backend == "vllm":
        from .vllm import VLLMGenerator

        return VLLMGenerator(spec, **kwargs)
    raise UserError(f"unknown model backend {backend!r}; choose 'hf' (transformers) or 'vllm'")


def load_generator_from_config(
    config: ModelConfig, spec: str | None = None, seed: int | None = 0, engine_overrides: dict | None = None
) -> Generator:
    """The :class:`Generator` for ``spec`` (default ``config.name``) with every option of ``config``.

    The one place a config becomes a backend: the loop, every command and the benchmarks call it.
    ``engine_overrides``: further :class:`~.vllm.VLLMConfig` fields where the caller decides them (a Ray
    engine actor's executor, see :mod:`prm_selfreward.parallel`); vLLM only.
    """
    spec = spec if spec is not None else config.name
    if config.backend == "vllm":
        from .vllm import VLLMConfig

        vllm_config = VLLMConfig(
            tensor_parallel_size=config.tensor_parallel_size,
            dtype=config.dtype,
            gpu_memory_utilization=config.gpu_memory_utilization,
            max_model_len=config.max_model_len,
            enable_prefix_caching=config.enable_prefix_caching,
            seed=0 if seed is None else seed,
            enforce_eager=config.enforce_eager,
            **(engine_overrides or {}),
        )
        return load_generator(spec, backend="vllm", config=vllm_config)
    return load_generator(
        spec, backend="hf", batch_size=config.batch_size, dtype=config.dtype, device=config.device,
        seed=seed, tensor_parallel_size=config.tensor_parallel_size,
    )
