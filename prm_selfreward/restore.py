"""Rebuild a resumable run directory from its published folder (``prm-sr restore``).

A run longer than the machine it runs on lives (a CPU session that ends, a preempted GPU node) keeps
going from what :mod:`prm_selfreward.publish` committed: the records without benchmark text and, for
models trained with LoRA, the adapters (megabytes, not the model's gigabytes). :func:`restore_run` lays
out a run directory that ``prm-sr iterate --resume`` continues:

=================================  ====================================================================
``config.yaml``, ``manifest.json``  copied; stages the folder cannot rebuild are dropped (below)
``base_vocab.json``                 copied: M0 is trimmed to exactly the run's vocabulary (a folder
                                    published without it: trimmed again from this machine's corpus,
                                    which may keep other tokens; said in the log and the manifest)
``seed/``                           built again from the data directory with the run's seed config, and
                                    the result must equal the published one (else: an error, nothing
                                    written)
``iter_<t>/eval/``                  copied (the completions, verdicts and summaries: the report's input),
                                    each record's dropped ``prompt`` back as an empty string
``iter_<t>/judge_eval*.jsonl``      copied, each row's text taken back from ``seed/eft_heldout.jsonl``
``iter_<t>/model``                  M(t-1) with the published adapter merged in (the trained weights up
                                    to float rounding of the merge: bit for bit the model the run saved)
``iter_<t>/.model.trainer/``       an unfinished M(t)'s published training checkpoint: the training
                                    continues from its step (same records, base model and options)
``iter_<t>/problems.jsonl``         drawn again (the draw is seeded) and checked against the published ids
``iter_<t>/search.jsonl``,         copied, each prompt rebuilt from its published template and the
``pairs.jsonl``, ``audit.jsonl``    problem's question, and checked against its sha256 (a folder
                                    published before templates were: its search runs again unless M(t)
                                    is trained, when pairs and audit are copied for the report)
=================================  ====================================================================

The manifest's stages run in order, and a stage that cannot be rebuilt (not finished when published, a
model trained without LoRA, a search whose training is pending) is dropped with every stage after it:
``iterate --resume`` runs them again. An evaluation or judge evaluation interrupted when published is
restored as interrupted, with its records: the resumed stage does only the problems (rows) it lacks;
its restored eval records have an empty ``prompt``. So are an interrupted search (per chunk of
problems) and pair audit (per chunk of pairs). So is a LoRA training published with a checkpoint
(``save_steps``): it continues from the checkpoint's step. The manifest's ``restored`` entry records the source folder and
the dropped stages, and the settings the published run changed after the first of them started (a
stage done again runs with the config's values now, so a change made for a later stage applies to it:
logged, with the value the stage ran with).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from .config import from_dict, merge
from .errors import UserError
from .io import atomic_copy, atomic_write_json, read_jsonl, write_jsonl
from .layout import RunLayout
from .publish import JUDGE_TEXT_FIELDS, PROBLEM_IDS, QUESTION_SLOT, prompt_sha256
from .train.common import TRAINER_STATE

RESUMABLE = ("eval", "judge_eval", "search", "audit")
"""Stages whose published records an interrupted attempt resumes from (per problem, per held-out row,
per chunk of searched problems or audited pairs)."""


def _family(stage: str) -> tuple[str, int | None]:
    """``"judge_eval/M2"`` -> ``("judge_eval", 2)``; ``"train/M1 (SFT)"`` -> ``("train", 1)``."""
    head, _, rest = stage.partition("/")
    if not rest:
        return head, None
    return head, int(rest.split()[0].lstrip("M"))


def restore_run(published: str | Path, run_dir: str | Path, data_dir: str | None = None,
                log: Any = print, redo: str | None = None) -> dict[str, Any]:
    """Lay out ``run_dir`` from the published folder ``published`` so ``iterate --resume`` continues it.

    ``data_dir`` overrides the run config's data directory (the benchmark data on this machine). ``redo``
    names a stage (``"train/M1"`` or its full name ``"train/M1 (SFT)"``) to drop with every stage after
    it although they could be rebuilt: the resumed run does them again, with whatever ``--resume --set``
    changes (an ablation that reuses the stages before it, e.g. M0's evaluation, for another SFT recipe).
    Returns ``{"restored": [stage, ...], "dropped": [stage, ...]}``. Raises :class:`UserError` when
    ``run_dir`` already holds a run, ``published`` holds no published run, ``redo`` names none of its
    stages (before anything is written), or a rebuilt artifact differs from the published one (seed data,
    training problems): then the data or the code changed since the run."""
    from .run_config import RunConfig
    from .stages.context import RunContext

    src, dst = RunLayout(Path(published)), RunLayout(Path(run_dir))
    if not (src.manifest.is_file() and src.config.is_file()):
        raise UserError(f"{published} holds no published run (expected manifest.json and config.yaml)")
    if dst.manifest.exists() or dst.config.exists():
        raise UserError(f"{run_dir} already holds a run; restore into a new directory")
    saved = yaml.safe_load(src.config.read_text(encoding="utf-8")) or {}
    if data_dir is not None:
        saved = merge(saved, {"data_dir": str(data_dir)})
    config = from_dict(RunConfig, saved)
    manifest = json.loads(src.manifest.read_text(encoding="utf-8"))
    stages: dict[str, Any] = manifest.get("stages", {})
    names = list(stages)
    first_redone = _stage_named(redo, names) if redo is not None else None

    dst.root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(dst.manifest, {**manifest, "stages": {}})
    dst.config.write_text(yaml.safe_dump(saved, sort_keys=False), encoding="utf-8")
    vocabulary = None
    if src.base_vocab.is_file():
        atomic_copy(src.base_vocab, dst.base_vocab)
        vocabulary = "published"
    elif config.model.trim_vocab:
        vocabulary = "trimmed again from this machine's corpus (not published)"
        log(f"restore: {published} does not hold M0's trimmed vocabulary ({src.base_vocab.name}, published since "
            "2026-12-07): M0 is trimmed again from this machine's corpus, which may keep other tokens than the run's")
    run = RunContext(dst.root, config, log)
    run.manifest.data.pop("base_model", None)  # another machine's cache path: resolved again here

    restored: list[str] = []
    dropped: list[str] = []
    for i, name in enumerate(names):
        if name == first_redone:
            dropped = names[i:]
            log(f"restore: {name}: to be done again (--redo); dropped with the {len(dropped) - 1} stage(s) after it")
            break
        entry = stages[name]
        finished = entry.get("status") == "done"
        # An evaluation killed mid-way resumes per item, so its records are worth keeping.
        family, t = _family(name)
        partial = not finished and (family in RESUMABLE or (
            family == "train" and t is not None and (src.train_checkpoint(t) / TRAINER_STATE).is_file()))
        why = None if finished or partial else f"not finished when published ({entry.get('status')})"
        if why is None:
            why = _restore_stage(run, src, name, names, stages)
        if why is not None:
            dropped = names[i:]
            log(f"restore: {name}: {why}; dropped with the {len(dropped) - 1} stage(s) after it")
            break
        run.manifest.stages[name] = stages[name]
        run.manifest.save()
        restored.append(name)
        log(f"restore: {name}" + (" (interrupted: resumes where it stopped)" if partial else ""))
        if partial:
            dropped = names[i + 1:]
            break
    changed = _settings_changed_since(Path(published), stages[dropped[0]]) if dropped else {}
    if changed:
        log(f"restore: {dropped[0]} ran in the published run before these settings changed; it runs again with "
            "the newer values unless `iterate --resume --set KEY=VALUE` sets them back: " + _changed_text(changed))
    if dropped:
        run.manifest.data.pop("status", None)  # no longer finished
    run.manifest.data["restored"] = {"from": str(Path(published)), "dropped_stages": dropped,
                                     **({"redo": first_redone} if first_redone else {}),
                                     **({"settings_changed_since": changed} if changed else {}),
                                     **({"base_vocabulary": vocabulary} if vocabulary else {})}
    run.manifest.save()
    for src_file in (src.report_md, src.report_png):
        if src_file.is_file():
            atomic_copy(src_file, dst.root / src_file.name)
    run.release()
    return {"restored": restored, "dropped": dropped, "settings_changed_since": changed}


def _settings_changed_since(published: Path, entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The settings the published run changed (``--resume --set``) after the stage ``entry`` started:
    ``{key: {"now": value, "ran_with": value}}`` for each whose value now differs from the one the stage
    ran with (``ran_with`` absent when the change was recorded before old values were kept). A stage
    done again (``--redo``, or dropped) runs with the values now in the config, which a later stage's
    change may have moved: the record run's M3 learning rate would otherwise retrain a branch's M2."""
    from .report import setting_changes

    started = entry.get("started")
    if not isinstance(started, (int, float)):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for change in setting_changes(published):
        if change.time <= started:
            continue
        if change.key not in out:
            out[change.key] = {"ran_with": change.was} if change.was_known else {}
        out[change.key]["now"] = change.new
    return {key: c for key, c in out.items() if "ran_with" not in c or c["ran_with"] != c["now"]}


def _changed_text(changed: dict[str, dict[str, Any]]) -> str:
    """``"dpo.learning_rate = 0.0002 (ran with 2e-05)"``, one per setting, joined by "; "."""
    from .report import setting_text

    return "; ".join(f"{key} = {setting_text(c['now'])} (ran with "
                     f"{setting_text(c['ran_with']) if 'ran_with' in c else 'a value not recorded'})"
                     for key, c in changed.items())


def _stage_named(redo: str, names: list[str]) -> str:
    """The published stage ``redo`` names: its full name or its name without the parenthesis
    (``"train/M1"`` for ``"train/M1 (SFT)"``)."""
    for name in names:
        if redo.strip() in (name, name.split(" (")[0]):
            return name
    raise UserError(f"--redo {redo!r}: the published run has no such stage; its stages: {', '.join(names)}")


def _restore_stage(run: Any, src: RunLayout, name: str, names: list[str], stages: dict[str, Any]) -> str | None:
    """Rebuild one finished stage's files in ``run``; returns why it cannot be, or None when rebuilt."""
    import prm_selfreward.stages.run as S

    dst: RunLayout = run.layout
    family, t = _family(name)
    if family == "eval" and t is not None:
        if not src.eval_dir(t).is_dir():
            return "its records are not in the published folder"
        shutil.copytree(src.eval_dir(t), dst.eval_dir(t), dirs_exist_ok=True)
        for path in sorted(dst.eval_dir(t).glob("*.jsonl")):  # records: their ``prompt`` back, empty
            write_jsonl(path, [_with_empty_prompt(row) for row in read_jsonl(path)])
        return None
    if family == "seed":
        # ``files`` names the run directory's own paths; every other entry is a count or a figure.
        result = {k: v for k, v in S.build_seed(run).items() if k != "files"}
        published = {k: v for k, v in (stages[name].get("result") or {}).items() if k != "files"}
        if _plain(result) != _plain(published):
            raise UserError(
                f"restore: the seed data built here differs from the published run's ({_first_difference(result, published)}): "
                "another data directory or another version of the seed code; the run cannot be continued faithfully")
        return None
    if family == "judge_eval" and t is not None:
        heldout = read_jsonl(dst.eft_heldout) if dst.eft_heldout.exists() else []
        files = sorted(src.iter_dir(t).glob("judge_eval*.jsonl"))
        if not files:
            return "its records are not in the published folder"
        run.iter_dir(t)
        for path in files:
            rows = []
            for row in read_jsonl(path):
                k = row.get("row")
                if not isinstance(k, int) or not 0 <= k < len(heldout):
                    raise UserError(f"restore: {path} names held-out row {k!r}, not among the {len(heldout)} built here")
                rows.append({**{f: heldout[k][f] for f in JUDGE_TEXT_FIELDS if f in heldout[k]}, **row})
            write_jsonl(dst.iter_dir(t) / path.name, rows)
        return None
    if family == "train" and t is not None and stages[name].get("status") != "done":
        return _restore_checkpoint(run, src, t)
    if family == "train" and t is not None:
        result = stages[name].get("result") or {}
        if result.get("skipped"):  # M(t) is M(t-1): point at this directory's copy
            stages[name] = {**stages[name], "result": {**result, "model": run.model_spec(t - 1)}}
            return None
        return _restore_model(run, src, t)
    if family == "problems" and t is not None:
        ids_file = src.iter_dir(t) / PROBLEM_IDS
        if not ids_file.is_file():
            return f"its problem ids ({PROBLEM_IDS}) are not in the published folder"
        S.sample_problems(run, t)
        drawn = [r["id"] for r in read_jsonl(dst.problems(t))]
        if drawn != json.loads(ids_file.read_text(encoding="utf-8")):
            raise UserError(f"restore: the training problems drawn here for M{t} differ from the published run's "
                            "(another data directory or version of the sampling code)")
        return None
    if family == "judge_select":
        return None  # its result (the chosen mode and its figures) is the manifest entry itself
    if family in ("search", "pairs", "audit") and t is not None:
        files = {"search": (src.search(t), dst.search(t)), "pairs": (src.pairs(t), dst.pairs(t)),
                 "audit": (src.audit(t), dst.audit(t))}[family]
        rows = read_jsonl(files[0]) if files[0].is_file() else None
        if rows is not None and _has_templates(rows) and dst.problems(t).is_file():
            questions = {r["id"]: r["question"] for r in read_jsonl(dst.problems(t))}
            run.iter_dir(t)
            write_jsonl(files[1], [_with_prompts(r, questions, files[0]) for r in rows])
            return None
        train = next((n for n in names if _family(n) == ("train", t)), None)
        if train is None or stages[train].get("status") != "done":
            return (f"M{t} is not trained yet and its search's prompts were not published (a folder published "
                    "before prompt templates were): the search runs again")
        if family != "search" and rows is not None:  # the report reads them
            run.iter_dir(t)
            atomic_copy(*files)
        return None
    return f"restore does not know stage {name!r}"


def _with_empty_prompt(row: dict[str, Any]) -> dict[str, Any]:
    """A published eval record with the ``prompt`` publish dropped back, empty, in its place after ``id``
    (an :class:`~prm_selfreward.records.EvalRecord` requires it; the benchmark text is not published)."""
    if "prompt" in row:
        return row
    out: dict[str, Any] = {}
    for k, v in row.items():
        out[k] = v
        if k == "id":
            out["prompt"] = ""
    return out


def _has_templates(rows: list[dict[str, Any]]) -> bool:
    """Whether published search / pair / audit records carry their prompts as templates (every pair's)."""
    records = [p for r in rows for p in r.get("pairs", [])] if rows and "pairs" in rows[0] else rows
    return bool(records) and all("prompt_template" in r for r in records)


def _with_prompts(row: dict[str, Any], questions: dict[str, str], path: Path) -> dict[str, Any]:
    """A published search result, pair or audit record with its question and prompts back (the keys in
    their original order); a rebuilt prompt must have the published sha256."""
    pid = row.get("problem_id")
    if pid not in questions:
        raise UserError(f"restore: {path} names problem {pid!r}, not among the training problems drawn here")
    question = questions[pid]

    def prompt_of(record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in record.items():
            if k == "prompt_template":
                prompt = v.replace(QUESTION_SLOT, question.strip())
                if prompt_sha256(prompt) != record.get("prompt_sha256"):
                    raise UserError(f"restore: a prompt of problem {pid} in {path} rebuilt here differs from the "
                                    "published run's (another data directory or version of the prompt code)")
                out["prompt"] = prompt
            elif k != "prompt_sha256":
                out[k] = v
        return out

    if "pairs" not in row:
        return prompt_of(row)
    out: dict[str, Any] = {}
    for k, v in row.items():
        out[k] = [prompt_of(p) for p in v] if k == "pairs" else v
        if k == "problem_id":
            out["question"] = question
    return out


def _restore_checkpoint(run: Any, src: RunLayout, t: int) -> str | None:
    """The published checkpoint of M(t)'s unfinished training into the trainer's scratch directory, where
    the resumed training finds it (:func:`~prm_selfreward.train.common.claim_scratch` checks it was made
    by the same training before continuing from it)."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    from .train.common import CHECKPOINT_MADE_BY, checkpoint_step, scratch_dir

    checkpoint = src.train_checkpoint(t)
    step = checkpoint_step(checkpoint)
    scratch = scratch_dir(run.layout.model(t))
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(checkpoint, scratch / f"{PREFIX_CHECKPOINT_DIR}-{step}",
                    ignore=lambda _d, names: [n for n in names if n == CHECKPOINT_MADE_BY])
    shutil.copy2(checkpoint / CHECKPOINT_MADE_BY, scratch / CHECKPOINT_MADE_BY)
    run.log(f"restore: M{t}'s training checkpoint at step {step}")
    return None


def _restore_model(run: Any, src: RunLayout, t: int) -> str | None:
    from .train.common import (
        ADAPTER_DIR,
        COMPLETE_MARKER,
        TrainResult,
        finalize_model_dir,
        merge_adapter,
        partial_dir,
    )

    adapter = src.model(t) / ADAPTER_DIR
    marker = src.model(t) / COMPLETE_MARKER
    if not (adapter / "adapter_config.json").is_file() or not marker.is_file():
        return ("its weights are not in the published folder (trained without LoRA, or published before "
                "adapters were); it trains again")
    out = run.layout.model(t)
    tmp = partial_dir(out)
    if tmp.exists():
        shutil.rmtree(tmp)
    base = run.model_spec(t - 1)
    run.log(f"restore: M{t} = {base} + the published LoRA adapter")
    merge_adapter(base, adapter, tmp)
    shutil.copytree(adapter, tmp / ADAPTER_DIR)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(base).save_pretrained(tmp)
    result = TrainResult.from_dict({**json.loads(marker.read_text(encoding="utf-8")), "out_dir": str(out)})
    finalize_model_dir(tmp, out, result)
    return None


def _plain(value: Any) -> Any:
    """JSON round trip: tuples and lists, int and float keys compare as the manifest stores them."""
    return json.loads(json.dumps(value, default=str))


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    a, b = _plain(a), _plain(b)
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
    return f"{path or 'value'}: {str(a)[:80]} here, {str(b)[:80]} published"


__all__ = ["restore_run"]
