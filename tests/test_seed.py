"""Seed data: IFT step-format solutions and EFT step-judgment pairs, built from training pools."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest
import sympy

from prm_selfreward.config import ConfigError, from_dict
from prm_selfreward.data import load_benchmark, normalize_question
from prm_selfreward.data.seed import (
    CORRUPTIONS,
    UNIT_FACTORS,
    SeedConfig,
    build_seed_data,
    build_seed_records,
    eft_to_sft,
    evaluate_arithmetic,
    format_number,
    gsm8k_eft_candidates,
    gsm8k_reference_steps,
    load_seed_pools,
    parse_arithmetic,
    wrong_values,
)
from prm_selfreward.judges.prompts import parse_verdict
from prm_selfreward.prompts import solve_message
from prm_selfreward.records import Problem
from prm_selfreward.steps import split_steps, step_body

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?|\.\d+")
SMALL = {"ift_examples": 60, "eft_train_pairs": 40, "eft_heldout_pairs": 30}


@pytest.fixture(scope="module")
def pools(data_dir: Path) -> dict[str, list[Problem]]:
    return load_seed_pools(SeedConfig(), data_dir)


@pytest.fixture(scope="module")
def built(pools, tmp_path_factory: pytest.TempPathFactory, data_dir: Path):
    """The default-size seed data, built once through the public entry point."""
    out = tmp_path_factory.mktemp("seed")
    summary = build_seed_data(SeedConfig(), data_dir, out)
    rows = {
        name: [json.loads(x) for x in (out / f"{name}.jsonl").read_text().splitlines()]
        for name in ("ift", "eft_train", "eft_heldout")
    }
    return summary, rows, out


def _sympy_value(expr: str) -> sympy.Rational:
    """Recompute a calculation independently of the builder's evaluator."""
    return sympy.nsimplify(sympy.sympify(expr, rational=True))


def _num(text: str) -> sympy.Rational:
    return sympy.Rational(text.replace(",", ""))


# ------------------------------------------------------------------------------------------ no leakage


def test_no_evaluation_question_in_any_seed_file(built, data_dir: Path) -> None:
    _, rows, _ = built
    eval_text = {
        normalize_question(p.question)
        for name in ("gsm8k", "math500", "olympiadbench", "gaokao2023en", "aime24", "amc23")
        for p in load_benchmark(name, data_dir=data_dir)
    }
    eval_ids = {p.id for name in ("gsm8k", "math500") for p in load_benchmark(name, data_dir=data_dir)}
    for row in rows["ift"]:
        question = row["prompt"].split("Problem: ", 1)[1].rsplit("\nSolution:", 1)[0]
        assert normalize_question(question) not in eval_text
        assert row["problem_id"] not in eval_ids
    for name in ("eft_train", "eft_heldout"):
        for row in rows[name]:
            assert normalize_question(row["question"]) not in eval_text
            assert row["problem_id"].startswith("gsm8k/train/")


def test_pools_exclude_a_planted_evaluation_question(data_dir: Path, pools) -> None:
    """If an evaluation set shared a question with a training pool, the pool would lose it."""
    from prm_selfreward.data import training_problems

    victim = pools["gsm8k"][5]
    pool = training_problems(["gsm8k"], data_dir, exclude=[Problem("x", victim.question.upper(), ["1"], "x")])
    assert victim.id not in {p.id for p in pool} and len(pool) == len(pools["gsm8k"]) - 1


def test_seed_pools_exclude_the_runs_own_evaluation_problems(data_dir: Path, pools) -> None:
    """The loop passes its evaluation problems: one outside ``exclude_benchmarks`` is still kept out."""
    victim = pools["gsm8k"][3]
    config = SeedConfig(exclude_benchmarks=[], ift_sources=["gsm8k"])
    kept = load_seed_pools(config, data_dir)["gsm8k"]
    assert victim.id in {p.id for p in kept}
    run_eval = [Problem("eval/0", victim.question, ["1"], "gsm8k")]
    excluded = load_seed_pools(config, data_dir, exclude=run_eval)["gsm8k"]
    assert victim.id not in {p.id for p in excluded} and len(excluded) == len(kept) - 1


def test_heldout_problems_are_unused_for_training(built) -> None:
    summary, rows, _ = built
    heldout = {r["problem_id"] for r in rows["eft_heldout"]}
    train = {r["problem_id"] for r in rows["eft_train"]} | {r["problem_id"] for r in rows["ift"]}
    assert heldout and heldout.isdisjoint(train)
    assert sorted(heldout) == summary.heldout_problem_ids
    # IFT and EFT training use different problems too (each problem serves one purpose).
    assert {r["problem_id"] for r in rows["eft_train"]}.isdisjoint(r["problem_id"] for r in rows["ift"])


# ------------------------------------------------------------------------------------------ sizes, order


def test_sizes_from_config(built) -> None:
    summary, rows, out = built
    config = SeedConfig()
    assert len(rows["ift"]) == summary.ift == config.ift_examples
    assert Counter(r["benchmark"] for r in rows["ift"]) == {"gsm8k": 1000, "math": 1000}
    assert len(rows["eft_train"]) == 2 * config.eft_train_pairs == summary.eft_train_records
    assert len(rows["eft_heldout"]) == config.eft_heldout_pairs == 500
    assert summary.shortfall == {}
    assert json.loads((out / "summary.json").read_text())["eft_heldout"] == 500


@pytest.mark.parametrize(
    "sizes",
    [
        {"ift_examples": 7, "eft_train_pairs": 3, "eft_heldout_pairs": 5},
        {"ift_examples": 0, "eft_train_pairs": 0, "eft_heldout_pairs": 4},
    ],
)
def test_small_sizes_are_exact(pools, sizes: dict) -> None:
    data = build_seed_records(pools, SeedConfig(**sizes))
    assert len(data.ift) == sizes["ift_examples"]
    assert len(data.eft_train) == 2 * sizes["eft_train_pairs"]
    assert len(data.eft_heldout) == sizes["eft_heldout_pairs"]


def test_shortfall_reported_when_pool_runs_out(pools) -> None:
    tiny = {"gsm8k": pools["gsm8k"][:3], "math": pools["math"][:2]}
    data = build_seed_records(tiny, SeedConfig(ift_examples=10, eft_train_pairs=50, eft_heldout_pairs=1))
    assert data.summary.shortfall["eft_train_pairs"] > 0 and data.summary.shortfall["ift"] > 0


def test_both_orders_balanced(built) -> None:
    _, rows, _ = built
    train = rows["eft_train"]
    assert Counter(r["verdict"] for r in train) == {0: 1000, 1: 1000}
    # Every training pair appears in both orders, with the verdict following the correct step.
    by_pair = Counter(
        (r["problem_id"], r["step_index"], frozenset((r["step_a"], r["step_b"]))) for r in train
    )
    assert set(by_pair.values()) == {2}
    held = rows["eft_heldout"]
    assert Counter(r["verdict"] for r in held) == {0: 250, 1: 250}


def test_deterministic_given_seed(pools) -> None:
    a = build_seed_records(pools, SeedConfig(**SMALL, seed=3))
    b = build_seed_records(pools, SeedConfig(**SMALL, seed=3))
    c = build_seed_records(pools, SeedConfig(**SMALL, seed=4))
    assert (a.ift, a.eft_train, a.eft_heldout) == (b.ift, b.eft_train, b.eft_heldout)
    assert a.eft_heldout != c.eft_heldout


def test_written_files_are_deterministic(tmp_path: Path, data_dir: Path) -> None:
    config = SeedConfig(**SMALL)
    build_seed_data(config, data_dir, tmp_path / "a")
    build_seed_data(config, data_dir, tmp_path / "b")
    for name in ("ift.jsonl", "eft_train.jsonl", "eft_heldout.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_config_from_yaml_dict_and_validation() -> None:
    config = from_dict(SeedConfig, {"ift_examples": 10, "corruptions": ["wrong_result"], "seed": 2})
    assert config.ift_examples == 10 and config.corruptions == ["wrong_result"]
    with pytest.raises(ConfigError, match="seed_data.corruptions"):
        SeedConfig(corruptions=["typo"]).validate()
    with pytest.raises(ConfigError, match="eft_sources"):
        SeedConfig(eft_sources=["olympiadbench"]).validate()
    with pytest.raises(ConfigError):
        from_dict(SeedConfig, {"ift_exmaples": 3})


# ------------------------------------------------------------------------------------------ IFT


def test_ift_records_are_step_format_with_final_box(built) -> None:
    _, rows, _ = built
    for row in rows["ift"]:
        lines = row["completion"].split("\n")
        numbers = [int(m.group(1)) for line in lines if (m := re.match(r"Step (\d+): ", line))]
        assert numbers == list(range(1, len(numbers) + 1)) and numbers
        assert row["completion"].startswith("Step 1: ")
        assert "\\boxed{" in row["completion"]
        assert "<<" not in row["completion"] and "####" not in row["completion"]
        assert row["prompt"].startswith(solve_message("Q").split("Problem:")[0])  # a message, no template
        assert row["prompt"].endswith("Solution:\n")
        # The search's step splitter reads the completion back as the same steps.
        steps = [step_body(s) for s in split_steps(row["completion"], format="step")]
        assert len(steps) == len(numbers)


def test_ift_gsm8k_conversion(data_dir: Path, pools) -> None:
    problem = next(p for p in pools["gsm8k"] if p.id == "gsm8k/train/0")
    data = build_seed_records(
        {"gsm8k": [problem]},
        SeedConfig(ift_examples=1, ift_sources=["gsm8k"], eft_train_pairs=0, eft_heldout_pairs=0),
    )
    lines = problem.solution.strip().splitlines()
    completion = data.ift[0]["completion"]
    expected_steps = [re.sub(r"<<[^>]*>>", "", line) for line in lines[:-1]]
    assert completion.split("\n")[:-1] == [f"Step {i}: {s}" for i, s in enumerate(expected_steps, 1)]
    assert completion.split("\n")[-1] == f"Step {len(lines)}: The answer is \\boxed{{{problem.answers[0]}}}."


def test_ift_math_keeps_box_and_skips_drawings(pools) -> None:
    config = SeedConfig(ift_examples=40, ift_sources=["math"], eft_train_pairs=0, eft_heldout_pairs=0)
    data = build_seed_records({"math": pools["math"]}, config)
    ids = {r["problem_id"] for r in data.ift}
    by_id = {p.id: p for p in pools["math"]}
    for row in data.ift:
        problem = by_id[row["problem_id"]]
        assert "[asy]" not in problem.solution
        assert f"\\boxed{{{problem.answers[0]}}}" in row["completion"]
    assert len(ids) == 40


# ------------------------------------------------------------------------------------------ corruptions


def test_every_corruption_really_changes_the_value(built) -> None:
    _, rows, _ = built
    seen = Counter()
    for row in rows["eft_train"] + rows["eft_heldout"]:
        good, bad = (row["step_a"], row["step_b"]) if row["verdict"] == 0 else (row["step_b"], row["step_a"])
        kind, d = row["corruption"], row["detail"]
        seen[kind] += 1
        assert good != bad
        if kind in ("wrong_result", "wrong_operand", "dropped_quantity", "wrong_operation", "wrong_unit_rate"):
            correct = _sympy_value(d["expression"])
            assert correct == _num(d["correct"])
            assert _num(d["shown"]) != correct, row
            assert d["shown"] in bad
        if kind in ("wrong_operand", "dropped_quantity", "wrong_operation", "wrong_unit_rate"):
            # The corrupted step's own arithmetic is consistent: its new expression gives what it shows.
            assert _sympy_value(d["new_expression"]) == _num(d["shown"])
            assert _sympy_value(d["new_expression"]) != correct
        if kind in ("wrong_operand", "wrong_unit_rate"):
            assert d["to"] in bad and _num(d["to"]) != _num(d["changed_operand"])
        if kind == "wrong_unit_rate":
            assert int(_num(d["changed_operand"])) in UNIT_FACTORS and d["unit"] in (row["question"] + good).lower()
        if kind == "wrong_operation":
            assert d["operation"] in ("add", "subtract", "multiply", "divide") and d["new_operation"]
        if kind == "wrong_final_answer":
            assert good == f"The answer is \\boxed{{{d['correct']}}}." and bad == f"The answer is \\boxed{{{d['shown']}}}."
            assert _num(d["shown"]) != _num(d["correct"])
        # The explanation names the error: the wrong value the corrupted step shows.
        assert d.get("shown", d.get("claimed", "")) in row["explanation"]
        if kind == "premature_answer":
            assert _num(d["claimed"]) != _num(d["gold"])
            assert bad.startswith(good) and f"\\boxed{{{d['claimed']}}}" in bad
        if kind == "copied_previous":
            assert bad == row["previous_steps"][-1]
    assert set(seen) == set(CORRUPTIONS)


def test_corruption_kinds_roughly_balanced(built) -> None:
    summary, _, _ = built
    counts = summary.corruptions_train
    # dropped_quantity needs a 3+ term chain, which is rarer; the others are kept within a few of each other.
    # dropped_quantity and wrong_unit_rate need rarer calculations (a unit factor, a 3+ term chain).
    common = [counts[k] for k in CORRUPTIONS if k not in ("dropped_quantity", "wrong_unit_rate")]
    assert max(common) - min(common) <= 5
    assert counts["dropped_quantity"] >= 50 and counts["wrong_unit_rate"] >= 50


def test_no_surface_rule_decides_the_verdict(built) -> None:
    summary, rows, _ = built
    audit = summary.shortcut_audit
    for rule in ("prefer_a", "prefer_shorter", "prefer_boxed"):
        assert abs(audit[rule]["accuracy"] - 0.5) <= 0.03, (rule, audit[rule])
    assert audit["ends_solution"]["correct"] == audit["ends_solution"]["corrupted"] > 0
    assert audit["prefer_more_likely"]["accuracy"] is None  # measured per model by the judge evaluation
    for split in ("eft_heldout", "eft_train"):
        for kind in CORRUPTIONS:
            verdicts = Counter(r["verdict"] for r in rows[split] if r["corruption"] == kind)
            assert abs(verdicts[0] - verdicts[1]) <= 1, (split, kind, verdicts)


def test_surface_corruptions_are_opt_in_and_show_in_the_audit(pools) -> None:
    config = SeedConfig(ift_examples=0, eft_train_pairs=0, eft_heldout_pairs=200, corruptions=["premature_answer"])
    audit = build_seed_records(pools, config).summary.shortcut_audit
    assert audit["prefer_boxed"]["accuracy"] == 0.0  # the corrupted step is the only one with a box
    assert "premature_answer" not in CORRUPTIONS


def test_previous_steps_are_the_reference_prefix(built, pools) -> None:
    _, rows, _ = built
    by_id = {p.id: p for p in pools["gsm8k"]}
    for row in rows["eft_heldout"][:100]:
        steps, _ = gsm8k_reference_steps(by_id[row["problem_id"]].solution)
        assert row["previous_steps"] == [s.text for s in steps[: row["step_index"]]]


@pytest.mark.parametrize(
    "solution,kind",
    [
        (
            "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18.\n#### 18",
            "dropped_quantity",
        ),
        (
            "It takes 2/2=<<2/2=1>>1 bolt of white fiber\nSo the total is 2+1=<<2+1=3>>3 bolts\n#### 3",
            "wrong_operand",
        ),
        ("He earns 1,200+300=$<<1200+300=1500>>1,500 in total\n#### 1500", "wrong_result"),
        ("He earns 1,200+300=$<<1200+300=1500>>1,500 in total\n#### 1500", "wrong_operation"),
        ("She works 5*60=<<5*60=300>>300 minutes a day\n#### 300", "wrong_unit_rate"),
        ("She works 5*60=<<5*60=300>>300 minutes a day\n#### 300", "wrong_final_answer"),
        (
            "A costs 0.5*3=<<0.5*3=1.5>>1.5 dollars.\nB costs 1.5*2=<<1.5*2=3>>3 dollars.\n#### 3",
            "wrong_operand",
        ),
    ],
)
def test_corruptions_on_hand_written_solutions(solution: str, kind: str) -> None:
    problem = Problem("t/0", "A question?", [solution.rsplit("#### ", 1)[1]], "gsm8k", solution)
    for seed in range(5):
        options = gsm8k_eft_candidates(problem, CORRUPTIONS, random.Random(seed))
        assert kind in options
        for cand in options[kind]:
            assert "<<" not in cand.good and "<<" not in cand.bad
            d = cand.detail
            if kind == "wrong_final_answer":
                assert _num(d["shown"]) != _num(d["correct"]) and cand.step_index == len(cand.previous_steps)
                continue
            assert _num(d["shown"]) != _sympy_value(d["expression"])
            # Only numbers change (and, for a dropped quantity, one operator with its number): the
            # wording, spacing and `$` signs stay the reference's, so they are no cue for the judge.
            good_shape, bad_shape = (_NUMBER.sub("#", cand.good), _NUMBER.sub("#", cand.bad))
            if kind == "dropped_quantity":
                assert len(_NUMBER.findall(cand.bad)) == len(_NUMBER.findall(cand.good)) - 1
                assert re.sub(r"\s*[-+*/]\s*#", "", bad_shape, count=1) != bad_shape
            elif kind == "wrong_operation":
                # One operator differs, nothing else.
                assert len(bad_shape) == len(good_shape)
                assert sum(x != y for x, y in zip(bad_shape, good_shape, strict=True)) == 1
            else:
                assert bad_shape == good_shape


def test_wrong_note_upstream_is_not_used() -> None:
    # The calculator note says 3*3=10: not a reliable reference, so no arithmetic corruption is made.
    problem = Problem("t/1", "Q?", ["10"], "gsm8k", "He runs 3*3=<<3*3=10>>10 times\n#### 10")
    options = gsm8k_eft_candidates(problem, CORRUPTIONS, random.Random(0))
    assert not {"wrong_result", "wrong_operand", "dropped_quantity"} & set(options)


@pytest.mark.parametrize("value", ["0", "1", "7", "24", "1000", "0.2", "2.5", "-3"])
def test_wrong_values_differ(value: str) -> None:
    v = Fraction(value)
    wrong = wrong_values(v, random.Random(0))
    assert wrong and v not in wrong
    assert all(w >= 0 for w in wrong) or v < 0
    assert all(Fraction(format_number(w)) == w for w in wrong)


@pytest.mark.parametrize(
    "expr,value",
    [("48/2", 24), ("16-3-4", 9), ("80000*1.5", 120000), ("(3+4)*2", 14), ("12/60", Fraction(1, 5))],
)
def test_evaluate_arithmetic(expr: str, value) -> None:
    assert evaluate_arithmetic(expr) == value == _sympy_value(expr)


@pytest.mark.parametrize("expr", ["__import__('os')", "2**3", "x+1", "3 if 1 else 2", "2^3"])
def test_parse_arithmetic_rejects_non_arithmetic(expr: str) -> None:
    from prm_selfreward.data.seed import NotArithmetic

    with pytest.raises(NotArithmetic):
        parse_arithmetic(expr)


# ------------------------------------------------------------------------------------------ EFT -> SFT


def test_eft_to_sft_targets_parse_back_to_the_verdict(built) -> None:
    _, rows, _ = built
    sft = eft_to_sft(rows["eft_train"][:200])
    for row, rec in zip(rows["eft_train"][:200], sft, strict=True):
        assert parse_verdict(rec["completion"]) == row["verdict"]
        assert rec["completion"].startswith(row["explanation"])
        assert row["step_a"] in rec["prompt"] and row["step_b"] in rec["prompt"]
        assert row["question"] in rec["prompt"]
        # The explanation names the corrupted candidate by its label.
        bad = "B" if row["verdict"] == 0 else "A"
        assert f"Step {bad} " in row["explanation"]


def test_eft_to_sft_verdict_first_puts_the_tag_where_the_logprob_judge_reads(built) -> None:
    _, rows, _ = built
    records = rows["eft_train"][:50]
    for row, rec in zip(records, eft_to_sft(records, verdict_first=True), strict=True):
        tag = "[[A]]" if row["verdict"] == 0 else "[[B]]"
        assert rec["completion"] == f"{tag} {row['explanation'].strip()}"
        assert parse_verdict(rec["completion"]) == row["verdict"]
    assert [r["prompt"] for r in eft_to_sft(records, verdict_first=True)] == [r["prompt"] for r in eft_to_sft(records)]


def test_eft_to_sft_without_explanation_trains_the_verdict_alone(built) -> None:
    _, rows, _ = built
    records = rows["eft_train"][:50]
    bare = eft_to_sft(records, explanation=False)
    assert [r["completion"] for r in bare] == ["[[A]]" if r["verdict"] == 0 else "[[B]]" for r in records]
    assert {r["completion"] for r in bare} == {"[[A]]", "[[B]]"}  # balanced labels stay balanced
    assert [r["prompt"] for r in bare] == [r["prompt"] for r in eft_to_sft(records)]
