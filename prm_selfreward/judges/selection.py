"""Choosing the search's judge mode by measurement (the ``judge_select/M<t>`` stage).

Before M(t)'s step search, M(t-1)'s held-out judge accuracy in every mode of ``judge_eval.modes`` is
known (``judge_eval/M<t-1>``). A mode is not chosen on accuracy alone: on the first embedded model the
likelihood judge, the most accurate on held-out pairs, preferred steps that repeat an earlier step or
copy the question, and step-DPO on its choices taught the model to repeat itself. So every candidate is
also judged on **copy probes**: held-out rows whose wrong step is replaced by a repeat of the last
previous step (or, at step 1, by the question), the right step kept. A mode *prefers copies* when it
picks the copy on more than half of the probes it answers.

The rule (:func:`select_mode`): modes in order of held-out accuracy (ties: the configured
``judge.mode`` first); the first that does not prefer copies is chosen, probing stops there. A mode
that prefers copies is still eligible when the search's guards are on (``search.guard_repeats``): a
candidate step that repeats an earlier step or copies the question never reaches the judge
(:mod:`prm_selfreward.search`), so the preference cannot act. Every probed mode's figures and the
reason for the choice are returned for the manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

PREFERS_COPIES = 0.5
"""A mode prefers copies when it picks the copy on more than this share of the probes it answers."""


def copy_probes(rows: Sequence[Mapping[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` copy probes from held-out judge rows (``question``, ``previous_steps``, ``step_a``,
    ``step_b``, ``verdict`` 0/1 = the right step's position). The wrong step becomes a repeat of the last
    previous step (``kind: repeat``) or, with no previous step, the question (``kind: copy``); the right
    step stays where it was, so positions stay as balanced as the held-out rows. ``verdict`` still names
    the right step."""
    probes: list[dict[str, Any]] = []
    for row in rows:
        if len(probes) >= limit:
            break
        verdict = row.get("verdict")
        if verdict not in (0, 1):
            continue
        previous = list(row.get("previous_steps") or [])
        right = row["step_a"] if verdict == 0 else row["step_b"]
        copy, kind = (previous[-1], "repeat") if previous else (str(row["question"]), "copy")
        if " ".join(copy.split()) == " ".join(right.split()):
            continue  # the right step is itself a repeat: no probe
        a, b = (right, copy) if verdict == 0 else (copy, right)
        probes.append({"question": row["question"], "previous_steps": previous, "step_a": a, "step_b": b,
                       "verdict": verdict, "kind": kind})
    return probes


def copy_preference(judged: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Share of answered probes (``predicted`` 0/1) on which the judge picked the copy, per kind too."""
    answered = [r for r in judged if r.get("predicted") in (0, 1)]
    picked = [r for r in answered if r["predicted"] != r["verdict"]]
    by_kind = {}
    for kind in sorted({r.get("kind", "") for r in answered}):
        mine = [r for r in answered if r.get("kind", "") == kind]
        by_kind[kind] = sum(r["predicted"] != r["verdict"] for r in mine) / len(mine)
    return {"copy_preference": len(picked) / len(answered) if answered else None, "probes": len(judged),
            "answered": len(answered), "by_kind": by_kind}


def select_mode(
    figures: Mapping[str, Mapping[str, Any]],
    probe: Callable[[str], Mapping[str, Any]],
    *,
    primary: str,
    guards: bool,
) -> dict[str, Any]:
    """The search's judge mode among ``figures`` (mode -> held-out summary with ``accuracy``).

    ``probe(mode)`` judges the copy probes in that mode and returns :func:`copy_preference`. Returns
    ``{"mode", "reason", "guards", "modes": {mode: figures + copy preference + eligible}}``; modes never
    probed (ranked below the chosen one) carry their accuracy only. With no figures, ``primary``."""
    if not figures:
        return {"mode": primary, "reason": "no held-out judge figures: the configured judge.mode", "guards": guards,
                "modes": {}}
    ranked = sorted(figures, key=lambda m: (-float(figures[m].get("accuracy") or 0.0), m != primary))
    table: dict[str, dict[str, Any]] = {
        m: {k: figures[m].get(k) for k in ("accuracy", "ci_low", "ci_high", "total", "consistency")} for m in ranked}
    chosen, reason = None, ""
    for mode in ranked:
        found = dict(probe(mode))
        pref = found.get("copy_preference")
        prefers = pref is not None and pref > PREFERS_COPIES
        eligible = not prefers or guards
        table[mode].update(found, prefers_copies=prefers, eligible=eligible)
        if eligible:
            chosen = mode
            reason = "the most accurate eligible mode on the held-out pairs"
            if prefers:
                reason += " (it prefers copied or repeated steps; the search's guards keep those from the judge)"
            break
    if chosen is None:  # every mode prefers copies and no guard: keep the least copy-prone
        chosen = min(ranked, key=lambda m: table[m]["copy_preference"])
        reason = "every mode prefers copies and the guards are off: the least copy-prone mode"
    return {"mode": chosen, "reason": reason, "guards": guards, "modes": table}


__all__ = ["PREFERS_COPIES", "copy_preference", "copy_probes", "select_mode"]
