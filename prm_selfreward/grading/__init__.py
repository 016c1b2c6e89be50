"""The answer checker: extraction (:mod:`.extract`) and equivalence (:mod:`.equivalence`), kept apart.

>>> from prm_selfreward.grading import check, answers_equal, extract_answer
>>> check("so the answer is \\\\boxed{\\\\frac{1}{2}}", "0.5").correct
True
>>> answers_equal("(1, 2]", "(1, 2)")
(False, 'not_equal')

See docs/checker.md for the policy (percent, units, tolerance, several boxes) and the ladder order.
"""

from .benchmarks import BENCHMARKS, gold_from_record, rules_for
from .checker import Verdict, check, check_batch
from .equivalence import answers_equal, compare_answers
from .extract import Extraction, extract_answer, find_boxed
from .normalize import normalize_answer
from .result import REASONS, Comparison
from .timeout import shutdown_workers

__all__ = [
    "BENCHMARKS",
    "REASONS",
    "Comparison",
    "Extraction",
    "Verdict",
    "answers_equal",
    "check",
    "check_batch",
    "compare_answers",
    "extract_answer",
    "find_boxed",
    "gold_from_record",
    "normalize_answer",
    "rules_for",
    "shutdown_workers",
]
