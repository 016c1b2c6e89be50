"""Model resolution: one string in configs and on the command line names a model.

A *spec* is one of

- ``embedded``: the built-in Qwen2.5-Coder-0.5B-Instruct (``embedded:<key>`` names another built-in model,
  e.g. ``embedded:gemma-3-270m``), converted once into the cache (see :mod:`.embedded`);
- a local model directory (``config.json`` + weights + tokenizer, as ``save_pretrained`` writes it);
- a Hugging Face Hub id such as ``Qwen/Qwen2.5-Math-7B`` (a real ``from_pretrained``; it needs network
  access or the model in the local Hub cache).

Anything the user can fix (a path that does not exist, a directory that is not a model, a hub id that
cannot be fetched offline) raises :class:`~prm_selfreward.errors.UserError` with one clear line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..devices import resolve_device
from ..errors import UserError
from .embedded import embedded_model_dir, is_embedded

DTYPES = ("float32", "bfloat16", "float16", "auto")

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_OFFLINE_HINT = (
    "offline, use 'embedded' (the built-in Qwen2.5-Coder-0.5B-Instruct) or a local model directory "
    "(one written by save_pretrained)"
)



def _is_hub_id(spec: str) -> bool:
    """``name`` or ``org/name`` with hub-legal characters; anything else is meant as a local path."""
    return bool(_HUB_ID.match(spec))


def _check_model_dir(path: Path, spec: str) -> Path:
    if not path.is_dir():
        raise UserError(f"model path {spec!r} is not a directory (expected a model directory or 'embedded')")
    if not (path / "config.json").is_file():
        raise UserError(
            f"{spec!r} is not a model directory: no config.json in {path} "
            "(expected a directory written by save_pretrained, a hub id or 'embedded')"
        )
    return path


def resolve_model_path(spec: str | os.PathLike[str], cache_dir: str | Path | None = None) -> Path:
    """The local directory holding model ``spec`` (converting/downloading it first if needed).

    ``embedded`` -> the converted cache directory; a local directory -> itself (checked to hold a
    ``config.json``); a hub id -> its snapshot in the Hub cache (downloaded with ``snapshot_download``).
    Raises :class:`UserError` for a missing path, a non-model directory, or a hub id that cannot be
    fetched (the message names the offline alternatives).
    """
    spec = os.fspath(spec)
    if not spec.strip():
        raise UserError("empty model name: use 'embedded', a local model directory or a hub id")
    if is_embedded(spec):
        return embedded_model_dir(cache_dir, spec=spec)
    path = Path(spec).expanduser()
    if path.exists():
        return _check_model_dir(path.resolve(), spec)
    if not _is_hub_id(spec):
        raise UserError(
            f"model directory {spec!r} does not exist (expected a model directory, a hub id or 'embedded')"
        )
    return _snapshot(spec)


_MODEL_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken", "*.py", "tokenizer*"]


def _snapshot(repo_id: str, patterns: list[str] | None = None) -> Path:
    """Download (or find in the Hub cache) the files of ``repo_id`` a causal LM needs.

    ``snapshot_download`` fails at once when the Hub is unreachable, where ``from_pretrained`` retries
    for about half a minute per file first.
    """
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(repo_id, allow_patterns=patterns or _MODEL_FILES))
        if patterns is None and not any(path.glob("*.safetensors")):  # an older checkpoint
            path = Path(snapshot_download(repo_id, allow_patterns=["*.bin"]))
        return path
    except Exception as exc:  # network, offline mode, missing or gated repo: all fixable by the user
        raise _hub_error(repo_id, exc) from exc


def _hub_error(repo_id: str, exc: BaseException) -> UserError:
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return UserError(
        f"{repo_id!r} is not a local directory and cannot be loaded from the Hugging Face Hub "
        f"({first_line}); {_OFFLINE_HINT}"
    )


def torch_dtype(dtype: str) -> Any:
    """``"float32"`` etc. -> the torch dtype (``"auto"`` passes through). Raises UserError for others."""
    import torch

    if dtype == "auto":
        return "auto"
    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return getattr(torch, dtype)


def load_model_and_tokenizer(
    spec: str | os.PathLike[str],
    dtype: str = "float32",
    device: str = "cpu",
    cache_dir: str | Path | None = None,
) -> tuple[Any, Any]:
    """(model, tokenizer) for ``spec`` (see the module docstring), model in eval mode on ``device``.

    Hub ids go straight to ``from_pretrained`` (so its cache and auth apply). The tokenizer's padding
    side is set to left, as batched generation needs. Raises :class:`UserError` as
    :func:`resolve_model_path` does.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = os.fspath(spec)
    torch_type = torch_dtype(dtype)
    is_hub = not is_embedded(spec) and not Path(spec).expanduser().exists() and _is_hub_id(spec)
    if is_hub:
        _snapshot(spec, ["config.json"])  # fail fast, with the offline alternatives, when unreachable
    source: str | Path = spec if is_hub else resolve_model_path(spec, cache_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_type)
    except OSError as exc:
        if is_hub:
            raise _hub_error(spec, exc) from exc
        raise UserError(f"cannot load the model in {source}: {str(exc).strip().splitlines()[0]}") from exc
    tokenizer.padding_side = "left"
    model.to(resolve_device(device))
    model.eval()
    return model, tokenizer
