"""Vocabulary trimming: a copy of a model whose tokenizer and embedding/output rows keep only what a
corpus needs.

The embedded model's tied embedding/output layer has 262,144 rows (168M of its 268M parameters),
and every decoded token and every trained position pays for all of them; the text this toolkit reads
and writes uses fewer than 23k of those tokens. :func:`trim_model` writes an ordinary transformers
model directory (``AutoModelForCausalLM`` / ``AutoTokenizer`` load it; TRL and vLLM use it unchanged;
a model trained from it stays trimmed) that keeps

- every token that tokenizing the corpus produces,
- the BPE merge intermediates those tokens are built from (so the trimmed tokenizer takes the same
  merge path and reaches the same tokens),
- the byte tokens (``<0xNN>`` for byte-fallback BPE, the 256-symbol alphabet for byte-level BPE), so
  any other text still tokenizes losslessly,
- every special token (and every added token the corpus uses),
- optionally (``keep_ascii``) every plain-ASCII token and its intermediates.

Why corpus texts tokenize identically: BPE applies, at each step, the lowest-ranked merge among the
adjacent pairs. The trimmed tokenizer keeps a subset of the merges with their ranks, including every
merge on the full tokenizer's path for a corpus word, so at each step the full tokenizer's choice is
available and still the lowest: the paths coincide. :func:`trim_model` checks it anyway by reloading
the written tokenizer and comparing every corpus text (``TrimReport.not_exact``, target 0).

The merge path of a token is read off the tokenizers library itself (``models.BPE.tokenize``): in a
BPE model without the tokens of length L, a token of length L tokenizes into exactly the two parts
its last merge joins (its shorter intermediates are untouched), so one model per token length yields
every needed intermediate without re-implementing BPE.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError

TRIM_INFO = "prm-sr-trim.json"
"""Written last into a trimmed model directory: the source, the kept ids (old id of each new id), counts."""
TRIM_FORMAT_VERSION = 1
"""Bump when the keep set or the written files change, so cached trimmed models are redone."""

_BYTE_TOKEN = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")

# Package modules whose string literals (templates, instructions, few-shot examples, explanation
# phrases) are part of the default corpus: the prompts the toolkit itself writes.
_PACKAGE_TEXT_MODULES = (
    "prompts/__init__.py",
    "judges/prompts.py",
    "judges/pointwise.py",
    "data/seed.py",
    "data/seed_instruct.py",
    "instruct.py",
    "steps.py",
    "search.py",
)


@dataclass
class TrimReport:
    """What :func:`trim_model` kept and how faithfully the trimmed tokenizer reproduces the corpus."""

    source: str
    full_vocab: int
    kept: int
    corpus_texts: int
    corpus_tokens: int
    corpus_distinct: int
    intermediates: int
    """Tokens kept only because a kept token's merge path goes through them."""
    special: int
    byte_tokens: int
    keep_ascii: bool
    format_version: int = TRIM_FORMAT_VERSION
    not_exact: int = 0
    """Corpus texts whose trimmed token strings differ from the full tokenizer's (target 0)."""
    not_lossless: int = 0
    """Corpus texts that do not decode back to themselves with the trimmed tokenizer (target 0)."""
    seconds: float = 0.0
    kept_ids: list[int] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        """The report without the id list (for printing)."""
        return {k: v for k, v in asdict(self).items() if k != "kept_ids"}


# ------------------------------------------------------------------------------------------- corpus


def texts_from_file(path: str | Path) -> list[str]:
    """The texts of one corpus file: every string value of every record of a ``.jsonl`` / ``.json``
    file (nested lists and objects included), else the whole file as one text."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read corpus file {path}: {exc}") from exc
    if path.suffix not in (".jsonl", ".json"):
        return [raw]
    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if value:
                out.append(value)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    lines = raw.splitlines() if path.suffix == ".jsonl" else [raw]
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            walk(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: not JSON ({exc.msg})") from exc
    return out


def package_texts() -> list[str]:
    """The package's own prompt texts: the prompt files, the string literals of the prompt, judge and
    seed modules, and fully rendered solving and judging messages (instruction + few-shot examples)."""
    import importlib.resources

    from ..judges.prompts import pairwise_step_message, pairwise_step_target
    from ..prompts import few_shot_examples, solve_message

    root = Path(__file__).resolve().parents[1]
    texts = [
        f.read_text(encoding="utf-8")
        for f in sorted(importlib.resources.files("prm_selfreward.prompts").iterdir())  # type: ignore[arg-type]
        if f.name.endswith(".txt")
    ]
    for rel in _PACKAGE_TEXT_MODULES:
        tree = ast.parse((root / rel).read_text(encoding="utf-8"))
        texts += [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value]
    examples = few_shot_examples()
    texts.append(solve_message(examples[0].question, few_shot=len(examples)))
    steps = examples[0].solution.splitlines()
    texts.append(pairwise_step_message(examples[0].question, steps[:1], steps[1], steps[-1]))
    texts += [pairwise_step_target("Step A is correct.", v) for v in (0, 1)]
    return texts


def default_corpus_files(data_dir: str | Path) -> list[Path]:
    """Every benchmark and training file (``*.jsonl``) under the data directory."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(f"data directory {data_dir} does not exist (set --data-dir or $PRM_SR_DATA_DIR)")
    files = sorted(data_dir.rglob("*.jsonl"))
    if not files:
        raise UserError(f"no *.jsonl benchmark files under {data_dir}")
    return files


def default_corpus(data_dir: str | Path) -> list[str]:
    """The default corpus: every text of the data directory's files plus :func:`package_texts`."""
    texts = [t for f in default_corpus_files(data_dir) for t in texts_from_file(f)]
    return texts + package_texts()


def is_plain_ascii(token: str) -> bool:
    """Whether a token's text (``▁`` read as a space; the byte-level alphabet as its bytes is not
    considered) is printable ASCII, space, tab or newline."""
    text = token.replace("\u2581", " ")
    return bool(text) and all(" " <= c <= "~" or c in "\t\n" for c in text)


# ----------------------------------------------------------------------------------------- keep set


def _bpe_state(tokenizer: Any) -> tuple[dict[str, Any], dict[str, int], list[tuple[str, str]]]:
    """(serialized tokenizer, BPE vocab, BPE merges) of a tokenizers ``Tokenizer`` with a BPE model."""
    data = json.loads(tokenizer.to_str())
    model = data["model"]
    if model.get("type") != "BPE":
        raise UserError(f"trim-vocab handles BPE tokenizers; this one is {model.get('type')!r}")
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in model["merges"]]
    return data, dict(model["vocab"]), merges  # type: ignore[return-value]


def _byte_tokens(data: dict[str, Any], vocab: dict[str, int]) -> set[str]:
    """The tokens every text can fall back on: ``<0xNN>`` (byte fallback) and, for a byte-level
    pre-tokenizer, the 256 symbols of its alphabet."""
    from tokenizers import pre_tokenizers

    out = {t for t in vocab if _BYTE_TOKEN.match(t)} if data["model"].get("byte_fallback") else set()
    if "ByteLevel" in json.dumps(data.get("pre_tokenizer")):
        out |= {c for c in pre_tokenizers.ByteLevel.alphabet() if c in vocab}
    return out


def merge_intermediates(
    targets: Iterable[str], vocab: dict[str, int], merges: Sequence[tuple[str, str]], model_kwargs: dict[str, Any]
) -> set[str]:
    """Every token on the merge paths of ``targets`` (the targets included).

    For each token length L (longest first), a BPE model without the tokens of length L (and the
    merges making them) tokenizes each target of length L into the two parts its last merge joins;
    the parts are shorter, so they are processed at a later length. Tokens no merge makes (single
    symbols, byte tokens) have no parts.
    """
    from tokenizers import models

    made_by: dict[str, list[tuple[str, str]]] = {}
    for a, b in merges:
        made_by.setdefault(a + b, []).append((a, b))
    # Only tokens reachable by merges from the targets can be on their paths: build the per-length
    # models over that closure (tens of thousands of tokens instead of the whole vocabulary).
    closure = set(targets)
    stack = list(closure)
    while stack:
        for pair in made_by.get(stack.pop(), ()):
            for part in pair:
                if part not in closure:
                    closure.add(part)
                    stack.append(part)
    unk = model_kwargs.get("unk_token")
    if unk in vocab:
        closure.add(unk)  # BPE requires its unk token in the vocabulary
    sub_vocab = {t: i for i, t in enumerate(sorted(closure, key=vocab.__getitem__))}
    sub_merges = [(a, b) for a, b in merges if a in closure and b in closure and a + b in closure]

    needed = set(targets)
    for length in range(max((len(t) for t in needed), default=0), 1, -1):
        todo = [t for t in needed if len(t) == length and t in made_by]
        if not todo:
            continue
        bpe = models.BPE(
            vocab={t: i for t, i in sub_vocab.items() if len(t) != length},
            merges=[(a, b) for a, b in sub_merges if length not in (len(a), len(b), len(a) + len(b))],
            **model_kwargs,
        )
        for token in todo:
            parts = [p.value for p in bpe.tokenize(token)]
            if len(parts) != 2 or "".join(parts) != token:
                # Not reachable here for a consistent BPE; keep every way of making it rather than guess.
                parts = [p for pair in made_by[token] for p in pair]
            needed.update(parts)
    return needed


def _model_kwargs(model: dict[str, Any]) -> dict[str, Any]:
    """The BPE options of a serialized model that shape tokenization (vocab and merges aside)."""
    keys = ("unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", "byte_fallback", "ignore_merges")
    return {k: model[k] for k in keys if model.get(k) is not None}


def keep_set(tokenizer: Any, texts: Sequence[str], keep_ascii: bool = False) -> tuple[list[int], dict[str, int]]:
    """(sorted old ids to keep, counts) for a tokenizers ``Tokenizer`` and corpus ``texts``."""
    data, vocab, merges = _bpe_state(tokenizer)
    encodings = tokenizer.encode_batch(list(texts), add_special_tokens=False)
    id_to_token = {i: t for t, i in vocab.items()}
    added = data.get("added_tokens", [])
    corpus_ids = {i for e in encodings for i in e.ids}
    corpus = {id_to_token[i] for i in corpus_ids if i in id_to_token}
    special = {a["content"] for a in added if a.get("special")}
    targets = set(corpus)
    if keep_ascii:
        targets |= {t for t in vocab if is_plain_ascii(t)}
    on_paths = merge_intermediates(targets, vocab, merges, _model_kwargs(data["model"]))
    byte_tokens = _byte_tokens(data, vocab)
    needed = on_paths | byte_tokens | {t for t in special if t in vocab}
    unk = data["model"].get("unk_token")
    if unk in vocab:
        needed.add(unk)
    ids = sorted({vocab[t] for t in needed} | {a["id"] for a in added if a.get("special")} | (corpus_ids - set(id_to_token)))
    counts = {
        "corpus_tokens": sum(len(e.ids) for e in encodings),
        "corpus_distinct": len(corpus_ids),
        "intermediates": len(on_paths - targets),
        "special": len(special),
        "byte_tokens": len(byte_tokens),
    }
    return ids, counts


# ------------------------------------------------------------------------------------ the tokenizer


def trimmed_tokenizer(tokenizer: Any, kept_ids: Sequence[int]) -> Any:
    """A tokenizers ``Tokenizer`` with only ``kept_ids`` (new id = position in ``kept_ids``): a BPE model
    over the kept tokens and the merges among them, the same normalizer, pre-tokenizer and decoder, the
    kept added tokens with their flags, and the post-processor's special-token ids remapped."""
    from tokenizers import AddedToken, Tokenizer, models

    data, vocab, merges = _bpe_state(tokenizer)
    id_to_token = {i: t for t, i in vocab.items()}
    added = {a["id"]: a for a in data.get("added_tokens", [])}
    new_vocab: dict[str, int] = {}
    for new, old in enumerate(kept_ids):
        token = id_to_token.get(old, added.get(old, {}).get("content"))
        if token is None:
            raise ValueError(f"kept id {old} is not in the tokenizer")
        new_vocab[token] = new
    new_merges = [(a, b) for a, b in merges if a in new_vocab and b in new_vocab and a + b in new_vocab]
    out = Tokenizer(models.BPE(vocab=new_vocab, merges=new_merges, dropout=None, **_model_kwargs(data["model"])))
    for attr in ("normalizer", "pre_tokenizer", "decoder"):
        if getattr(tokenizer, attr) is not None:
            setattr(out, attr, getattr(tokenizer, attr))
    for old in sorted(added):  # added tokens in their old order keep their relative ids
        a = added[old]
        if a["content"] not in new_vocab:
            continue
        token = AddedToken(
            a["content"], single_word=a["single_word"], lstrip=a["lstrip"], rstrip=a["rstrip"],
            normalized=a["normalized"], special=a["special"],
        )
        (out.add_special_tokens if a["special"] else out.add_tokens)([token])
    if data.get("post_processor") is not None:
        serialized = json.loads(out.to_str())
        serialized["post_processor"] = _remap_ids(data["post_processor"], new_vocab)
        out = Tokenizer.from_str(json.dumps(serialized))
    return out


def _remap_ids(node: Any, new_vocab: dict[str, int]) -> Any:
    """A serialized post-processor with every special token's id replaced by its new id
    (``{"tokens": [...], "ids": [...]}`` entries and ``[token, id]`` pairs)."""
    if isinstance(node, dict):
        node = {k: _remap_ids(v, new_vocab) for k, v in node.items()}
        if isinstance(node.get("tokens"), list) and isinstance(node.get("ids"), list):
            node["ids"] = [new_vocab[t] for t in node["tokens"]]
        return node
    if isinstance(node, list):
        if len(node) == 2 and isinstance(node[0], str) and isinstance(node[1], int) and node[0] in new_vocab:
            return [node[0], new_vocab[node[0]]]
        return [_remap_ids(v, new_vocab) for v in node]
    return node


def tokenization_mismatches(full: Any, trimmed: Any, texts: Sequence[str]) -> tuple[int, int]:
    """(texts whose token strings differ, texts that do not decode back to themselves) with ``trimmed``.

    Both are tokenizers ``Tokenizer`` objects or transformers fast tokenizers; lossless means decoding
    the trimmed ids (special tokens kept) gives the text back.
    """
    full_tok = getattr(full, "backend_tokenizer", full)
    trim_tok = getattr(trimmed, "backend_tokenizer", trimmed)
    texts = list(texts)
    a = full_tok.encode_batch(texts, add_special_tokens=False)
    b = trim_tok.encode_batch(texts, add_special_tokens=False)
    not_exact = sum(x.tokens != y.tokens for x, y in zip(a, b, strict=True))
    decoded = trim_tok.decode_batch([e.ids for e in b], skip_special_tokens=False)
    not_lossless = sum(d != t for d, t in zip(decoded, texts, strict=True))
    return not_exact, not_lossless


# ----------------------------------------------------------------------------------------- the model


def trim_embeddings(model: Any, kept_ids: Sequence[int]) -> None:
    """Keep only the ``kept_ids`` rows of ``model``'s input embedding and output layer, in place, and
    update the config's vocabulary size and special-token ids (tied weights stay tied)."""
    import torch

    index = torch.tensor(list(kept_ids), dtype=torch.long)
    new_id = {old: new for new, old in enumerate(kept_ids)}
    embed = model.get_input_embeddings()
    output = model.get_output_embeddings()
    tied = output is not None and output.weight is embed.weight
    embed.weight = torch.nn.Parameter(embed.weight.data[index].clone())
    embed.num_embeddings = len(index)
    if getattr(embed, "padding_idx", None) is not None:
        embed.padding_idx = new_id.get(embed.padding_idx)
    if output is not None:
        if tied:
            output.weight = embed.weight
        else:
            output.weight = torch.nn.Parameter(output.weight.data[index].clone())
        if getattr(output, "bias", None) is not None:
            output.bias = torch.nn.Parameter(output.bias.data[index].clone())
        output.out_features = len(index)
    for config in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
        config.vocab_size = len(index)
        _remap_config_ids(config, new_id)
    _remap_config_ids(model.generation_config, new_id)


def _remap_config_ids(config: Any, new_id: dict[int, int]) -> None:
    for key in ("pad_token_id", "eos_token_id", "bos_token_id", "unk_token_id"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            setattr(config, key, new_id.get(value))
        elif isinstance(value, list):
            setattr(config, key, [new_id[v] for v in value if v in new_id])


def trim_model(
    source: str | Path,
    out: str | Path,
    texts: Sequence[str],
    keep_ascii: bool = False,
    verbose: bool = False,
    kept_ids: Sequence[int] | None = None,
) -> TrimReport:
    """Write the vocabulary-trimmed copy of model directory ``source`` to ``out`` (atomically: built in a
    temporary sibling, ``TRIM_INFO`` written last, then renamed) and return the report.

    ``texts``: the corpus. The written tokenizer is reloaded with ``AutoTokenizer`` and every corpus text
    compared with the full tokenizer (``not_exact``, ``not_lossless``). ``kept_ids``: keep exactly these
    ids of the full tokenizer instead of the corpus's keep set (a run's recorded vocabulary rebuilt on
    another machine or from another corpus; ``texts`` then only measure it). Raises :class:`UserError` for
    a non-BPE tokenizer, an empty corpus, an existing ``out`` or ``kept_ids`` that are not sorted distinct
    ids of the full tokenizer.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.monotonic()
    source, out = Path(source), Path(out)
    if not texts:
        raise UserError("trim-vocab: the corpus is empty")
    if out.exists():
        raise UserError(f"{out} already exists; choose another --out or remove it")
    full = AutoTokenizer.from_pretrained(source)
    if not getattr(full, "is_fast", False):
        raise UserError(f"trim-vocab needs a fast (tokenizers) tokenizer; {source} has {type(full).__name__}")
    wanted = None if kept_ids is None else list(kept_ids)
    if wanted is not None:  # checked before the corpus is tokenized
        if wanted != sorted(set(wanted)) or not wanted or wanted[0] < 0 or wanted[-1] >= len(full):
            raise UserError(f"trim-vocab: the kept ids must be sorted distinct ids below {len(full)} "
                            f"(the tokenizer of {source}); {len(wanted)} given")
    kept, counts = keep_set(full.backend_tokenizer, texts, keep_ascii=keep_ascii)
    if wanted is not None:
        kept = wanted
    if verbose:
        print(f"keeping {len(kept)} of {len(full)} tokens")
    new_tok = trimmed_tokenizer(full.backend_tokenizer, kept)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        full.save_pretrained(tmp)  # tokenizer_config, chat template, special-token names: unchanged
        new_tok.save(str(tmp / "tokenizer.json"))
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
        trim_embeddings(model, kept)
        model.save_pretrained(tmp)
        del model
        reloaded = AutoTokenizer.from_pretrained(tmp)
        not_exact, not_lossless = tokenization_mismatches(full, reloaded, texts)
        report = TrimReport(
            source=str(source), full_vocab=len(full), kept=len(kept), corpus_texts=len(texts),
            keep_ascii=keep_ascii, not_exact=not_exact, not_lossless=not_lossless,
            seconds=round(time.monotonic() - start, 1), kept_ids=list(kept), **counts,
        )
        (tmp / TRIM_INFO).write_text(json.dumps(asdict(report)) + "\n", encoding="utf-8")
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def read_trim_info(model_dir: str | Path) -> dict[str, Any] | None:
    """The ``TRIM_INFO`` of a trimmed model directory (None for an untrimmed or incomplete one)."""
    try:
        return json.loads((Path(model_dir) / TRIM_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------- trimmed vocabulary


def vocabulary_sha256(kept_ids: Sequence[int]) -> str:
    """The identity of a trimmed vocabulary: the sha256 of its kept ids (old id of each new id)."""
    import hashlib

    return hashlib.sha256(json.dumps([int(i) for i in kept_ids]).encode()).hexdigest()


def corpus_fingerprint(texts: list[str]) -> str:
    """A short hash of a corpus: trimmed models built from different corpora are cached apart."""
    import hashlib

    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def trimmed_model_dir(
    spec: str, data_dir: str | Path | None = None, cache: str | Path | None = None, verbose: bool = True,
    kept_ids: Sequence[int] | None = None,
) -> Path:
    """The vocabulary-trimmed copy of model ``spec`` for the default corpus, trimming it first if needed.

    An embedded model is trimmed beside its converted directory (``models/trimmed-<key>-<corpus hash>``;
    the name must not match the conversion's ``.tmp-<key>-*`` clean-up),
    any other model under ``models/trimmed/``. Like the conversion: file-locked, built in a temporary
    directory, its info file written last, renamed into place; an incomplete or outdated directory is
    redone. ``kept_ids``: exactly this vocabulary (a run's recorded one, see
    :meth:`~prm_selfreward.stages.context.RunContext.base_model_spec`), whatever the corpus keeps today: the
    corpus's copy when it keeps the same ids, else its own directory (``...-ids-<vocabulary hash>``). Raises
    :class:`UserError` when the benchmark directory for the corpus is unavailable.
    """
    import hashlib

    from ..data.benchmarks import resolve_data_dir
    from .embedded import cache_dir, embedded_model, is_embedded
    from .loading import resolve_model_path

    root = resolve_data_dir(data_dir)
    if root is None:
        raise UserError(
            "trim_vocab needs the benchmark directory for its corpus: set data_dir or $PRM_SR_DATA_DIR, "
            "or turn model.trim_vocab off"
        )
    texts = default_corpus(root)
    source = resolve_model_path(spec, cache)
    if is_embedded(spec):
        stem = source.parent / f"trimmed-{embedded_model(spec).key}-"
    else:
        name = hashlib.sha256(str(source).encode()).hexdigest()[:8]
        stem = cache_dir(cache) / "models" / "trimmed" / f"{source.name}-{name}-"
    wanted = None if kept_ids is None else [int(i) for i in kept_ids]

    def complete(path: Path) -> bool:
        info = read_trim_info(path)
        return (info is not None and info.get("format_version") == TRIM_FORMAT_VERSION
                and (wanted is None or info.get("kept_ids") == wanted))

    target = Path(f"{stem}{corpus_fingerprint(texts)}")
    if complete(target):
        return target
    if wanted is not None:
        target = Path(f"{stem}ids-{vocabulary_sha256(wanted)[:12]}")
        if complete(target):
            return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{target.name}.lock")):
        if complete(target):  # another process finished it while we waited
            return target
        for stale in target.parent.glob(f".tmp-{target.name}-*"):  # leftovers of killed runs; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        if target.exists():
            shutil.rmtree(target)
        if verbose:
            what = "the recorded vocabulary" if wanted is not None else "the vocabulary"
            print(f"Trimming {spec} to {what} into {target} (once, ~1 min)")
        report = trim_model(source, target, texts, kept_ids=wanted)
        if verbose:
            print(f"kept {report.kept:,} of {report.full_vocab:,} tokens; corpus texts not exact: {report.not_exact}")
    return target
