"""The iteration: M0 -> M1 (SFT on IFT + EFT seeds) -> M2 -> M3 ... (DPO on the model's own pairs).

The schedule only, read top to bottom like DESIGN.md section 1; each stage is one call into
:mod:`prm_selfreward.stages` (what each reads and writes is tabled there and in docs/architecture.md):

    M0 = base model                                   evaluate(M0)
    seed = IFT + EFT from problems with known answers
    M1 = SFT(M0, seed)                                evaluate(M1)
    for t = 2 .. iterations + 1:
        problems = sample training problems (never evaluation problems)
        pairs    = step search with M(t-1) as generator and judge      (task "math")
                   [audit: rollouts from prefix + chosen / rejected with M(t-1), optional]
                   or self-instruct + 5-point self-scores              (task "instruct")
        M(t)     = DPO(M(t-1), pairs)                 evaluate(M(t))
        report

Every stage goes through :class:`~prm_selfreward.runs.Manifest`, so ``--resume`` skips finished stages
and restarts an interrupted one cleanly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .config import from_dict, merge, to_dict
from .errors import UserError
from .evaluate import environment_versions
from .layout import RunLayout
from .run_config import RunConfig, default_config_path, load_run_config, validate_run_config
from .stages import run as S
from .stages.context import RunContext, train_stage_name

__all__ = [
    "RunConfig", "RunContext", "default_config_path", "iterate", "load_run_config", "prepare_run_dir",
    "train_stage_name",
]


def iterate(config: RunConfig, run_dir: str | Path, log: Callable[[str], None] = print) -> Path:
    """Run (or resume) the whole loop in ``run_dir``; returns the run directory."""
    run = RunContext(Path(run_dir), config, log)
    run.manifest.data.setdefault("versions", environment_versions())
    run.manifest.data.setdefault("seed", config.seed)
    run.manifest.data.setdefault("created", time.time())
    run.manifest.save()

    run.stage("eval/M0", lambda: S.evaluate_model(run, 0))
    run.stage("seed", lambda: S.build_seed(run))
    run.stage("judge_eval/M0", lambda: S.evaluate_judge(run, 0))
    run.stage(train_stage_name(1), lambda: S.train_m1(run))
    run.stage("eval/M1", lambda: S.evaluate_model(run, 1))
    run.stage("judge_eval/M1", lambda: S.evaluate_judge(run, 1))
    S.write_report(run)

    for t in range(2, config.iterations + 2):
        run.stage(f"problems/M{t}", lambda t=t: S.sample_problems(run, t))
        if config.task == "math":
            if config.judge_eval.select:
                run.stage(f"judge_select/M{t}", lambda t=t: S.select_judge(run, t))
            run.stage(f"search/M{t}", lambda t=t: S.search_steps(run, t))
            run.stage(f"pairs/M{t}", lambda t=t: S.build_pairs(run, t))
            if config.audit.pairs:
                run.stage(f"audit/M{t}", lambda t=t: S.audit_pairs(run, t))
        else:
            run.stage(f"pairs/M{t}", lambda t=t: S.instruct_pairs(run, t))
        run.stage(train_stage_name(t), lambda t=t: S.train_dpo(run, t))
        run.stage(f"eval/M{t}", lambda t=t: S.evaluate_model(run, t))
        run.stage(f"judge_eval/M{t}", lambda t=t: S.evaluate_judge(run, t))
        S.write_report(run)

    run.release()
    run.manifest.data["status"] = "finished"
    run.manifest.save()
    return run.dir


def prepare_run_dir(
    run_dir: Path, config: RunConfig, resume: bool, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Check ``config`` and the run directory before any model loads; returns the config to run.

    New run (no ``config.yaml``): writes the resolved config. ``--resume``: reads the saved config back
    (the run's config wins over the defaults), with ``overrides`` (``--set`` and explicit options) applied
    on top and recorded in the manifest's ``config_changes``, so a run that failed on a wrong setting is
    resumed with a corrected one. Errors (UserError): a directory that already holds a run without
    ``--resume``; ``--resume`` on a directory holding no run; a multi-GPU config without a training
    launcher (:func:`~prm_selfreward.cluster.check_training_launch`).
    """
    from .cluster import check_training_launch

    layout = RunLayout(run_dir)
    validate_run_config(config)
    check_training_launch(config)
    if not layout.config.exists():
        if resume:
            raise UserError(f"--resume: {run_dir} holds no run (no config.yaml); drop --resume to start one")
        if layout.manifest.exists():
            raise UserError(f"{run_dir} holds a manifest.json but no config.yaml; choose another --run-dir")
        from .io import atomic_write_text

        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(layout.config, yaml.safe_dump(to_dict(config), sort_keys=False))
        return config
    if not resume:
        raise UserError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --run-dir")
    saved_data = yaml.safe_load(layout.config.read_text(encoding="utf-8")) or {}
    saved = from_dict(RunConfig, saved_data)
    resumed = from_dict(RunConfig, merge(saved_data, overrides or {}))
    if resumed.iterations < config.iterations:
        resumed.iterations = config.iterations  # resuming may extend a run by more iterations
    if resumed.task != saved.task:
        raise UserError(f"{run_dir} is a task {saved.task!r} run; it cannot be resumed as task {resumed.task!r}")
    validate_run_config(resumed)
    check_training_launch(resumed)
    diff = _diff(to_dict(saved), to_dict(resumed))
    if diff:
        _record_changes(layout, resumed, diff)
    return resumed


def ignored_file_settings(file_config: RunConfig, resumed: RunConfig) -> dict[str, tuple[Any, Any]]:
    """Settings where a config file given with ``--resume`` differs from the resumed run's config, as
    ``{dotted key: (run's value, file's value)}``: the run keeps its own (changing the config a run was
    started with is what ``--set`` does, recorded), so a user who edited the file must be told."""
    return _diff(to_dict(resumed), to_dict(file_config))


def _diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two config dicts, with (old, new)."""
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and set(a) == set(b):
            out.update(_diff(a, b, prefix + key + "."))
        elif a != b:
            out[prefix + key] = (a, b)
    return out


def _record_changes(layout: RunLayout, config: RunConfig, diff: dict[str, tuple[Any, Any]]) -> None:
    """Write the changed config back and log the change in the manifest: ``set`` the new values, ``was``
    the values they replaced (so the report can say what changed before which stage)."""
    from .io import atomic_write_text
    from .runs import Manifest

    manifest = Manifest.load(layout.root)
    manifest.data.setdefault("config_changes", []).append({
        "time": time.time(), "set": {k: new for k, (_, new) in diff.items()},
        "was": {k: old for k, (old, _) in diff.items()}})
    manifest.save()
    atomic_write_text(layout.config, yaml.safe_dump(to_dict(config), sort_keys=False))
