"""Statistics for accuracies: intervals for one proportion (and, as the report grows, paired ones).

Kept apart from evaluation so every module that reports an accuracy (evaluation, the judges, the
report) takes its interval from one place without importing the evaluation stage.
"""

from __future__ import annotations

import math


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (well-behaved at 0/n and n/n, unlike the normal one)."""
    if total == 0:
        return (0.0, 0.0)
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
