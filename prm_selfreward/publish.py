"""Publish a run's small artifacts: what every model produced, without benchmark text or weights.

A run directory holds the benchmark questions (in every eval record's and pair's ``prompt``), the seed
solutions and the model weights. None of that belongs in a results folder committed beside the code:
the questions keep their own licenses and are read again from the data directory, the weights are
gigabytes. :func:`publish_run` copies the rest, laid out as in the run directory
(:class:`~prm_selfreward.layout.RunLayout`), so anyone can re-grade every completion
(``prm-sr check``), recompute every paired figure (:mod:`prm_selfreward.stats`) and rebuild the report
(``prm-sr report``):

========================================  =====================================================
``report.md``, ``report.png``             as written by the run
``manifest.json``, ``config.yaml``        every stage's status, wall time and result; the config
``base_vocab.json``                       with ``model.trim_vocab``: M0's kept token ids, from which
                                          ``prm-sr restore`` rebuilds exactly the run's vocabulary
``seed/summary.json``                     seed sizes, corruption kinds, the shortcut audit
``iter_<t>/eval/summary.json``            accuracy per benchmark
``iter_<t>/eval/<benchmark>.jsonl``       per problem: id, completion, extracted answer, gold,
                                          verdict, tokens (``prompt`` dropped)
``iter_<t>/judge_eval*.jsonl``            per held-out pair and mode: its ``row`` in
                                          ``seed/eft_heldout.jsonl``, problem id, corruption kind,
                                          gold verdict, prediction, probability, consistency
``iter_<t>/search.jsonl``                 per searched problem: its solution, pairs, counters and
                                          trace (``question`` dropped; each pair's prompt as below)
``iter_<t>/pairs.jsonl``                  the step pairs' chosen and rejected steps, scores; the
                                          ``prompt`` as ``prompt_template`` (its question replaced by
                                          :data:`QUESTION_SLOT`) and ``prompt_sha256``, from which
                                          ``prm-sr restore`` rebuilds it exactly
``iter_<t>/audit.jsonl``                  the pair audit's rollouts and outcomes (prompt as in pairs)
``iter_<t>/problems.ids.json``            the ids of iteration t's training problems (their text is
                                          the dataset's)
``iter_<t>/model/adapter/``,              a LoRA-trained M(t): its adapter (megabytes) and training
``iter_<t>/model/TRAINING_COMPLETE.json``  result; with M(t-1) they rebuild M(t) (``prm-sr restore``)
``iter_<t>/train_checkpoint/``            while M(t)'s LoRA training runs (``save_steps``): its latest
                                          checkpoint (adapter, optimizer, scheduler, RNG, trainer
                                          state, ``made_by.json``), which ``prm-sr restore`` puts back
                                          for the training to continue; removed once M(t) is trained
========================================  =====================================================
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import UserError
from .io import JsonlErrors, atomic_copy, atomic_write_json, read_jsonl, write_jsonl
from .layout import RunLayout

DROPPED_FIELDS: frozenset[str] = frozenset({"prompt"})
"""Fields of eval, pair and audit records that carry benchmark text (question, few-shot examples);
every other field is model output or a figure."""

PROBLEM_IDS = "problems.ids.json"
"""The published stand-in for ``iter_<t>/problems.jsonl``: the problems' ids, in order."""

JUDGE_TEXT_FIELDS: frozenset[str] = frozenset(
    {"question", "previous_steps", "step_a", "step_b", "explanation", "detail"})
"""Fields of a judged held-out row that come from the seed's reference solutions; the published row
gets ``row``, its line in ``seed/eft_heldout.jsonl`` (0-based), instead."""


QUESTION_SLOT = "<prm-sr:question>"
"""Stands for the problem's question in a published ``prompt_template``. The rest of a search, pair or
audit prompt is the solving instruction, the hand-written few-shot examples, the model's chat template
and the model's own earlier steps: none of it benchmark text."""

SEARCHED = ("search.jsonl", "pairs.jsonl", "audit.jsonl")
"""Records of iteration t's search whose prompts are published as templates (:func:`prompt_template`)."""


def prompt_sha256(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def prompt_template(record: dict[str, Any], question: str | None) -> dict[str, Any]:
    """``record`` with its ``prompt`` published: as ``prompt_template`` (the question replaced by
    :data:`QUESTION_SLOT`, in the prompt's place among the keys) and ``prompt_sha256``, so a restore
    rebuilds the prompt exactly from the dataset's question; dropped when the question is unknown or
    does not appear in the prompt exactly once."""
    prompt, q = record.get("prompt"), (question or "").strip()
    if not isinstance(prompt, str) or not q or prompt.count(q) != 1 or QUESTION_SLOT in prompt:
        return {k: v for k, v in record.items() if k not in DROPPED_FIELDS}
    out: dict[str, Any] = {}
    for k, v in record.items():
        out["prompt_template" if k == "prompt" else k] = prompt.replace(q, QUESTION_SLOT) if k == "prompt" else v
    out["prompt_sha256"] = prompt_sha256(prompt)
    return out


def _strip_searched(row: dict[str, Any], questions: dict[str, str]) -> dict[str, Any]:
    """A search result (its ``question`` dropped, each pair's prompt a template) or a pair / audit record."""
    question = questions.get(row.get("problem_id", ""))
    if "pairs" in row and "question" in row:
        pairs = [prompt_template(p, question) for p in row.get("pairs") or []]
        return {k: pairs if k == "pairs" else v for k, v in row.items() if k != "question"}
    return prompt_template(row, question)


def _strip(rows: Iterable[dict[str, Any]], judged: bool, questions: dict[str, str] | None = None,
           ) -> list[dict[str, Any]]:
    if judged:
        return [{"row": i, **{k: v for k, v in r.items() if k not in JUDGE_TEXT_FIELDS}} for i, r in enumerate(rows)]
    if questions is not None:
        return [_strip_searched(r, questions) for r in rows]
    return [{k: v for k, v in r.items() if k not in DROPPED_FIELDS} for r in rows]


def _copy_jsonl(src: Path, dst: Path, questions: dict[str, str] | None = None) -> tuple[int, int]:
    """(records written, malformed lines skipped: a torn tail of a stage still running, say).
    ``questions`` (problem id -> question) for a search, pair or audit file."""
    errors = JsonlErrors()
    rows = _strip(read_jsonl(src, errors), judged=src.name.startswith("judge_eval"), questions=questions)
    dst.parent.mkdir(parents=True, exist_ok=True)
    return write_jsonl(dst, rows), len(errors.errors)


def _copy_file(src: Path, dst: Path) -> None:
    # Atomic: a re-publish killed mid-copy leaves the old file or the new one, never half a PNG.
    atomic_copy(src, dst)


def _copy_adapter(model: Path, dst: Path) -> int:
    """A finished LoRA-trained model's adapter and training result (files copied; 0 for any other)."""
    from .train.common import ADAPTER_DIR, COMPLETE_MARKER

    adapter, marker = model / ADAPTER_DIR, model / COMPLETE_MARKER
    if not (marker.is_file() and (adapter / "adapter_config.json").is_file()):
        return 0
    files = [p for p in sorted(adapter.iterdir()) if p.is_file()]
    for p in files:
        _copy_file(p, dst / ADAPTER_DIR / p.name)
    _copy_file(marker, dst / COMPLETE_MARKER)
    return len(files) + 1


CHECKPOINT_SKIPPED = frozenset({"training_args.bin", "README.md", "tokenizer.json", "tokenizer_config.json",
                                "chat_template.jinja", "special_tokens_map.json", "vocab.json", "merges.txt"})
"""Checkpoint files resuming does not read: the pickled ``TrainingArguments`` (a published folder holds
no pickles), peft's model card and the base model's tokenizer (the run has it)."""


def _copy_checkpoint(run: RunLayout, out: RunLayout, t: int) -> int:
    """M(t)'s latest LoRA training checkpoint into ``out`` while M(t) is not trained (files copied);
    once it is, a copy published earlier is removed. A full-weights checkpoint (gigabytes) is not copied."""
    from .train.common import CHECKPOINT_MADE_BY, complete_checkpoints, is_trained_model, scratch_dir

    dst = out.train_checkpoint(t)
    if is_trained_model(run.model(t)):
        shutil.rmtree(dst, ignore_errors=True)
        return 0
    scratch = scratch_dir(run.model(t))
    # The trainer saves the next checkpoint and deletes this one while we copy: try the newest again.
    for _ in range(3):
        found = complete_checkpoints(scratch) if scratch.is_dir() else []
        if not found or not (found[-1] / "adapter_config.json").is_file():
            return 0
        tmp = dst.parent / f".{dst.name}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            shutil.copytree(found[-1], tmp, ignore=lambda _d, names: [n for n in names if n in CHECKPOINT_SKIPPED])
            shutil.copy2(scratch / CHECKPOINT_MADE_BY, tmp / CHECKPOINT_MADE_BY)
        except (FileNotFoundError, shutil.Error):
            continue
        shutil.rmtree(dst, ignore_errors=True)
        os.replace(tmp, dst)
        return sum(1 for p in dst.iterdir() if p.is_file())
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def publish_run(run_dir: str | Path, out_dir: str | Path) -> dict[str, int]:
    """Copy ``run_dir``'s small artifacts into ``out_dir`` (created; files in it are overwritten).

    Returns how many files and JSON Lines records were written, and how many malformed lines were
    skipped (nonzero only for a file torn by a kill or still being written). Raises :class:`UserError` when
    ``run_dir`` is not a run directory or ``out_dir`` lies inside it."""
    run, out = RunLayout(Path(run_dir)), RunLayout(Path(out_dir))
    if not run.manifest.exists():
        raise UserError(f"{run_dir} is not a run directory (no manifest.json)")
    if out.root.resolve().is_relative_to(run.root.resolve()):
        raise UserError(f"--out {out_dir} lies inside the run directory {run_dir}; choose a folder outside it")
    files = records = malformed = 0
    for src, dst in [(run.report_md, out.report_md), (run.report_png, out.report_png),
                     (run.manifest, out.manifest), (run.config, out.config),
                     (run.base_vocab, out.base_vocab), (run.seed_summary, out.seed_summary)]:
        if src.exists():
            _copy_file(src, dst)
            files += 1
    for t in run.iterations():
        if run.eval_summary(t).exists():
            _copy_file(run.eval_summary(t), out.eval_summary(t))
            files += 1
        problems = read_jsonl(run.problems(t), JsonlErrors()) if run.problems(t).exists() else []
        questions = {r["id"]: r.get("question", "") for r in problems}
        jsonl = sorted(run.eval_dir(t).glob("*.jsonl")) + sorted(run.iter_dir(t).glob("judge_eval*.jsonl"))
        jsonl += [p for p in (run.search(t), run.pairs(t), run.audit(t)) if p.exists()]
        for src in jsonl:
            written, bad = _copy_jsonl(src, out.root / src.relative_to(run.root),
                                       questions if src.parent == run.iter_dir(t) and src.name in SEARCHED else None)
            records, malformed, files = records + written, malformed + bad, files + 1
        if problems:
            atomic_write_json(out.iter_dir(t) / PROBLEM_IDS, [r["id"] for r in problems])
            files += 1
        files += _copy_adapter(run.model(t), out.model(t))
        files += _copy_checkpoint(run, out, t)
    return {"files": files, "records": records, "malformed_lines": malformed}
