"""The stages of both methods, called by the loop (:mod:`prm_selfreward.loop`) and by the commands.

Each stage core is a function of (a model, its config, records) that writes its records to the paths
it is given; the run-level stages in :mod:`.run` wrap them as functions of (run context, t) for the
loop. A command parses its options into the same configs and calls the same core, so ``prm-sr eval``,
``prm-sr pairs`` and ``prm-sr judge`` give the records the loop's stages give for the same model,
problems and settings (tested in ``tests/test_stages.py``).

=====================  ==========================================  =====================================
stage (manifest name)  reads                                       writes
=====================  ==========================================  =====================================
``eval/M<t>``          benchmarks (data dir), M(t)                  ``iter_<t>/eval/<bench>.jsonl``, summary
``seed``               training splits (data dir)                   ``seed/ift.jsonl``, ``eft_*.jsonl``
``judge_eval/M<t>``    ``seed/eft_heldout.jsonl``, M(t)            ``iter_<t>/judge_eval[_<mode>].jsonl``
``train/M1 (SFT)``     ``seed/ift.jsonl`` + ``eft_train.jsonl``     ``iter_1/model/``
``problems/M<t>``      training pools minus eval and used problems  ``iter_<t>/problems.jsonl``
``search/M<t>``        ``problems.jsonl``, M(t-1)                   ``iter_<t>/search.jsonl``
``pairs/M<t>``         ``search.jsonl`` (task instruct: M(t-1))     ``iter_<t>/pairs.jsonl``
``audit/M<t>``         ``pairs.jsonl``, ``problems.jsonl``, M(t-1)  ``iter_<t>/audit.jsonl`` (optional)
``train/M<t> (DPO)``   ``pairs.jsonl``, M(t-1)                      ``iter_<t>/model/``
=====================  ==========================================  =====================================
"""

from .context import RunContext, train_stage_name
from .evaluation import (
    eval_stage,
    judge_accuracy,
    judge_eval_modes_stage,
    judge_eval_stage,
    judge_rows,
    judge_rows_to_jsonl,
    judged,
)
from .search import pairs_stage, search_stage, search_summary

__all__ = [
    "RunContext",
    "eval_stage",
    "judge_accuracy",
    "judge_eval_modes_stage",
    "judge_eval_stage",
    "judge_rows",
    "judge_rows_to_jsonl",
    "judged",
    "pairs_stage",
    "search_stage",
    "search_summary",
    "train_stage_name",
]
