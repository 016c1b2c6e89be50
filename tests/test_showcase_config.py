"""configs/cpu-showcase.yaml loads and meets issue 15's size floors (fixed before any result)."""

from __future__ import annotations

from pathlib import Path

from prm_selfreward.data.seed import CORRUPTIONS
from prm_selfreward.run_config import load_run_config, validate_run_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cpu-showcase.yaml"


def test_showcase_config_meets_the_floors() -> None:
    c = load_run_config(CONFIG)
    validate_run_config(c)
    assert c.task == "math" and c.model.name.startswith("embedded")
    assert c.iterations >= 1  # M0, M1, M2 at least (M3 with 2)
    # The same first >= 300 GSM8K test and >= 100 MATH-500 problems for every model.
    assert c.eval.limit["gsm8k"] >= 300 and c.eval.limit["math500"] >= 100
    assert {"gsm8k", "math500"} <= set(c.eval.benchmarks)
    # >= 300 held-out judge pairs, all of them scored, in all three modes.
    assert c.seed_data.eft_heldout_pairs >= 300
    assert c.judge_eval.limit == 0 or c.judge_eval.limit >= 300
    assert set(c.judge_eval.modes) | {c.judge.mode} == {"logprob", "generate", "likelihood"}
    # IFT from GSM8K train; EFT in the hundreds, of the real-error kinds only.
    assert "gsm8k" in c.seed_data.ift_sources and c.seed_data.ift_examples >= 100
    assert c.seed_data.eft_train_pairs >= 200 and set(c.seed_data.corruptions) == set(CORRUPTIONS)
    # Problems per DPO iteration sized for hundreds of pairs (~4 pairs per problem at width 4).
    assert all(n * 4 >= 150 for n in c.problems_per_iteration)
    assert c.audit.pairs > 0 and c.audit.rollouts >= 4


def test_showcase_config_notes_the_trimmed_vocabulary() -> None:
    assert "trim_vocab" in CONFIG.read_text()
