"""What made a record: a fingerprint of the model and the settings, so a resume never reuses records
that something else produced.

A resumable stage (evaluation, step search, judging, the pair audit) appends records and, on a
re-run, skips the items already there. Keyed by problem id alone, evaluating model B into model A's directory would generate
nothing for B while its summary named B. So every appended record carries

- ``made_by``: the model and the settings that decide its content (a small dict, readable), and
- ``fingerprint``: a short hash of ``made_by``, what resumes compare.

:func:`check_made_by` is the one check the stages call before resuming: records made by anything
else, or by a version that wrote no fingerprint, raise :class:`StaleOutputError` (a
:class:`~prm_selfreward.errors.UserError`) naming the difference.

What counts as "the settings" is deliberately only what changes a record: the batch or chunk size,
a problem limit or the benchmark list do not (records are per problem), a sampling temperature
under greedy decoding does not. The model is named by :func:`model_identity`: an existing local
path is resolved (``./m`` and ``/abs/m`` are one model); inside a run directory the loop names its
trained models ``M1``, ``M2`` ... so a moved run directory still resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import UserError


class StaleOutputError(UserError):
    """An output file holds records made by another model or other settings."""


def model_identity(spec: str | os.PathLike[str]) -> str:
    """How records name a model: an existing local path resolved to an absolute one, else the spec
    itself (a hub id, or a run-local name such as ``M2``). ``embedded`` is named by the model it stands
    for (``embedded:qwen2.5-coder-0.5b-instruct``), so records made with an earlier default are not
    taken for the current one's."""
    text = os.fspath(spec)
    if text == "embedded":
        from .models.embedded import DEFAULT_EMBEDDED

        return DEFAULT_EMBEDDED.spec
    if text and Path(text).exists():
        return str(Path(text).resolve())
    return text


def fingerprint(made_by: Mapping[str, Any]) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of ``made_by`` (sorted keys)."""
    canonical = json.dumps(made_by, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:16]


def stamp(row: dict[str, Any], made_by: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with ``made_by`` and its ``fingerprint`` set (in place; returned for chaining)."""
    row["made_by"] = dict(made_by)
    row["fingerprint"] = fingerprint(made_by)
    return row


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def describe_difference(theirs: Mapping[str, Any], ours: Mapping[str, Any], limit: int = 4) -> str:
    """``"model: 'a' in the file, 'b' now; seed: 0 in the file, 1 now"`` (at most ``limit`` keys)."""
    a, b = _flatten(theirs), _flatten(ours)
    missing = object()
    keys = sorted(k for k in set(a) | set(b) if a.get(k, missing) != b.get(k, missing))
    parts = [
        f"{k}: {a[k]!r} in the file, {b[k]!r} now" if k in a and k in b
        else f"{k}: {a[k]!r} in the file, not set now" if k in a
        else f"{k}: not in the file, {b[k]!r} now"
        for k in keys[:limit]
    ]
    if len(keys) > limit:
        parts.append(f"+{len(keys) - limit} more")
    return "; ".join(parts) or "same settings, different fingerprint (another version?)"


def check_made_by(
    path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]], made_by: Mapping[str, Any]
) -> None:
    """Raise :class:`StaleOutputError` unless every record of ``rows`` (read from ``path``) was made by
    ``made_by``; the message names the first difference found and how to get a fresh output."""
    want = fingerprint(made_by)
    for row in rows:
        got = row.get("fingerprint")
        if got == want:
            continue
        if got is None:
            raise StaleOutputError(
                f"{path} holds records without a fingerprint (written by an older version), so they "
                "cannot be matched to this model and these settings; write to a fresh output or delete "
                "the file to start over"
            )
        theirs = row.get("made_by")
        diff = describe_difference(theirs, made_by) if isinstance(theirs, Mapping) else f"fingerprint {got}"
        raise StaleOutputError(
            f"{path} holds records made by another model or other settings ({diff}); "
            "write to a fresh output or delete the file to start over"
        )


# ------------------------------------------------------------------ what each stage's records depend on


def eval_made_by(config: Any, model: str, search: Any = None, judge: Any = None) -> dict[str, Any]:
    """The evaluation settings a record of :func:`~prm_selfreward.evaluate.evaluate_benchmark`
    depends on (``config`` is an ``EvalConfig``), with the model's identity; with test-time search, the
    search's settings (``search``, a ``SearchConfig``) and the step judge's too."""
    made: dict[str, Any] = {
        "model": model,
        "few_shot": config.few_shot,
        "max_new_tokens": config.max_new_tokens,
        "samples": config.samples,
        "seed": config.seed,
        "check_timeout": config.check_timeout,
        "search_width": config.search_width,
    }
    if config.samples > 1:  # greedy decoding ignores them
        made.update(temperature=config.temperature, top_p=config.top_p)
    if config.search_width > 0:
        import dataclasses

        if search is not None:
            made["search"] = {k: v for k, v in dataclasses.asdict(search).items() if k not in _PAIR_FILTERS}
        if judge is not None:
            made["judge"] = judge_identity(judge)
    return made


# Search settings that only filter pairs after the search (they do not change a search record).
_PAIR_FILTERS = ("drop_wrong", "min_margin")


def judge_identity(judge: Any, generator: Any = None) -> dict[str, Any]:
    """A step judge's settings: its type and the attributes that change its verdicts."""
    made: dict[str, Any] = {"type": type(judge).__name__}
    for name in ("mode", "debias", "max_new_tokens", "solve_few_shot", "seed"):
        if hasattr(judge, name):
            made[name] = getattr(judge, name)
    own = getattr(judge, "generator", None)
    if own is not None and generator is not None and own is not generator:
        made["model"] = model_identity(getattr(own, "name", type(own).__name__))
    return made


def search_made_by(config: Any, judge: Any, generator: Any, model: str) -> dict[str, Any]:
    """The step-search settings a :class:`~prm_selfreward.search.SearchResult` depends on
    (``config`` is a ``SearchConfig``), the judge's, and the model's identity."""
    import dataclasses

    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in _PAIR_FILTERS}
    return {"model": model, "search": settings, "judge": judge_identity(judge, generator)}


def judge_made_by(judge: Any, model: str) -> dict[str, Any]:
    """The settings a judged comparison (``prm-sr judge``, ``judge_eval/M<t>``) depends on: the model,
    the step judge's mode and debiasing, and the budget (generate mode) or solving prompt's few-shot
    count (likelihood mode) where the mode uses them. Chunk and batch sizes do not change a verdict."""
    made: dict[str, Any] = {"model": model, "mode": judge.mode, "debias": judge.debias}
    if judge.mode == "generate":
        made["max_new_tokens"] = judge.max_new_tokens
    if judge.mode == "likelihood":
        made["solve_few_shot"] = judge.solve_few_shot
    return made


def audit_made_by(config: Any, model: str) -> dict[str, Any]:
    """The settings a pair-audit record depends on (``config`` is an ``AuditConfig``): the model and
    every rollout setting. ``chunk_size`` counts: a chunk is one seeded generate call, so it decides
    which samples each rollout gets. The number of pairs audited does not (records are per pair)."""
    import dataclasses

    return {"model": model, **{k: v for k, v in dataclasses.asdict(config).items() if k != "pairs"}}
