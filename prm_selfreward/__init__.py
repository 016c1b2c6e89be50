"""prm-selfreward: self-rewarding language-model training for math reasoning.

The stand-alone pieces and the loop, importable from the top level (loaded on first use, so
``import prm_selfreward`` stays fast)::

    from prm_selfreward import check, split_steps, PairwiseStepJudge, StepSearch, build_step_pairs
    from prm_selfreward import load_generator, evaluate, iterate, load_run_config
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # records
    "Problem": "records", "StepPair": "records", "PreferencePair": "records",
    "EvalRecord": "records",
    # the answer checker
    "check": "grading", "check_batch": "grading", "answers_equal": "grading", "extract_answer": "grading",
    "Verdict": "grading",
    # steps
    "split_steps": "steps", "format_steps": "steps", "strip_calculator_notes": "steps",
    # data
    "load_benchmark": "data", "training_problems": "data", "BENCHMARKS": "data",
    # models
    "Generator": "models", "GenerationParams": "models", "HFGenerator": "models", "VLLMGenerator": "models",
    "ScriptedGenerator": "models", "load_generator": "models",
    "trim_model": "models.trim", "TrimReport": "models.trim", "trimmed_model_dir": "models.trim",
    # judges
    "PairwiseStepJudge": "judges", "StepComparison": "judges", "as_reward_func": "judges",
    "StepJudgeConfig": "judges.pairwise",
    "PointwiseJudge": "judges.pointwise",
    # search and pairs
    "StepSearch": "search", "SearchConfig": "search", "SearchResult": "search", "solve_with_search": "search",
    "build_step_pairs": "pairs", "write_pair_dataset": "pairs",
    # training
    "train_sft": "train", "train_step_dpo": "train", "SFTTrainConfig": "train", "DPOTrainConfig": "train",
    # evaluation, loop, report
    "evaluate": "evaluate", "EvalConfig": "evaluate",
    "iterate": "loop", "load_run_config": "run_config", "RunConfig": "run_config",
    "ModelConfig": "models.config", "RunLayout": "layout", "wilson_interval": "stats",
    "build_report": "report",
    "run_instruct_iteration": "instruct",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
