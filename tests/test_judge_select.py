"""Choosing the search's judge mode: copy probes, the preference they measure, the selection rule."""

from __future__ import annotations

import pytest

from prm_selfreward.judges.selection import copy_preference, copy_probes, select_mode

ROWS = [
    {"question": "Tom has 3 apples and buys 4 more. How many?", "previous_steps": ["Tom starts with 3 apples."],
     "step_a": "He buys 4 more: 3 + 4 = 7.", "step_b": "He buys 4 more: 3 + 4 = 8.", "verdict": 0},
    {"question": "What is 2 + 2?", "previous_steps": [],
     "step_a": "2 + 2 = 5.", "step_b": "2 + 2 = 4.", "verdict": 1},
    {"question": "Q", "previous_steps": ["x = 1"], "step_a": "x = 1", "step_b": "x = 2", "verdict": 0},  # right step repeats
    {"question": "Q", "previous_steps": [], "step_a": "a", "step_b": "b", "verdict": -1},  # unlabelled
]


def test_copy_probes_replace_the_wrong_step_by_a_repeat_or_the_question():
    probes = copy_probes(ROWS, limit=10)
    assert [(p["kind"], p["verdict"]) for p in probes] == [("repeat", 0), ("copy", 1)]
    first, second = probes
    assert (first["step_a"], first["step_b"]) == ("He buys 4 more: 3 + 4 = 7.", "Tom starts with 3 apples.")
    assert (second["step_a"], second["step_b"]) == ("What is 2 + 2?", "2 + 2 = 4.")
    assert copy_probes(ROWS, limit=1) == probes[:1]


@pytest.mark.parametrize("predicted,expected", [
    ([0, 1], 0.0),       # the right step both times
    ([1, 0], 1.0),       # the copy both times
    ([1, -1], 1.0),      # a failure is not an answer
    ([-1, -1], None),
])
def test_copy_preference(predicted, expected):
    judged = [{**p, "predicted": v} for p, v in zip(copy_probes(ROWS, 10), predicted, strict=True)]
    found = copy_preference(judged)
    assert found["copy_preference"] == expected and found["probes"] == 2


FIGURES = {"logprob": {"accuracy": 0.62}, "likelihood": {"accuracy": 0.95}, "generate": {"accuracy": 0.40}}


def _probe(preferences: dict[str, float], calls: list[str]):
    def probe(mode):
        calls.append(mode)
        return {"copy_preference": preferences[mode], "probes": 10, "answered": 10, "by_kind": {}}
    return probe


def test_a_copy_preferring_mode_is_passed_over_without_guards():
    calls: list[str] = []
    chosen = select_mode(FIGURES, _probe({"likelihood": 0.9, "logprob": 0.2, "generate": 0.1}, calls),
                         primary="logprob", guards=False)
    assert chosen["mode"] == "logprob" and calls == ["likelihood", "logprob"]  # probing stops at the choice
    assert chosen["modes"]["likelihood"]["eligible"] is False and chosen["modes"]["likelihood"]["prefers_copies"]
    assert "copy_preference" not in chosen["modes"]["generate"]  # ranked below the choice: never probed


def test_guards_make_a_copy_preferring_mode_eligible():
    calls: list[str] = []
    chosen = select_mode(FIGURES, _probe({"likelihood": 0.9, "logprob": 0.2, "generate": 0.1}, calls),
                         primary="logprob", guards=True)
    assert chosen["mode"] == "likelihood" and calls == ["likelihood"]
    assert "guards keep those from the judge" in chosen["reason"]


def test_every_mode_prefers_copies_and_no_guard_keeps_the_least_copy_prone():
    chosen = select_mode(FIGURES, _probe({"likelihood": 0.9, "logprob": 0.7, "generate": 0.6}, []),
                         primary="logprob", guards=False)
    assert chosen["mode"] == "generate"


def test_ties_go_to_the_configured_mode_and_no_figures_keep_it():
    tied = {"likelihood": {"accuracy": 0.8}, "logprob": {"accuracy": 0.8}}
    assert select_mode(tied, _probe({"likelihood": 0.0, "logprob": 0.0}, []), primary="logprob",
                       guards=False)["mode"] == "logprob"
    assert select_mode({}, _probe({}, []), primary="likelihood", guards=True)["mode"] == "likelihood"
