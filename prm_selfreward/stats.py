"""Statistics for accuracies: an interval for one proportion, and paired comparisons of two.

Kept apart from evaluation so every module that reports an accuracy (evaluation, the judges, the
report) takes its statistics from one place without importing the evaluation stage.

Every model of a run is scored on the same problems and the same held-out judge pairs, so two models
are compared *paired*: per item, both right (``a``), only the first right (``b``), only the second
right (``c``), both wrong (``d``). The difference of their accuracies is ``(b - c) / n``; its interval
is Newcombe's (1998) method 10 (Wilson score limits of the two marginal proportions combined with the
phi correlation of the 2x2 table), and the exact McNemar test is the two-sided binomial test of ``b``
among the ``b + c`` discordant items with p = 1/2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (well-behaved at 0/n and n/n, unlike the normal one)."""
    if total == 0:
        return (0.0, 0.0)
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided sign test: P(a split at least as uneven as ``wins`` : ``losses``) under
    Binomial(wins + losses, 1/2), doubling the smaller tail (capped at 1). Ties are left out by the
    caller. 1.0 when there is nothing to test.

    This is scipy.stats.binomtest(wins, n, 0.5).pvalue for p = 1/2 (the distribution is symmetric, so
    doubling the smaller tail equals summing every outcome no more likely than the observed one); it is
    computed exactly with integer binomial coefficients, so scipy is not a dependency."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2**n)


def mcnemar_exact_p(b: int, c: int) -> float:
    """Exact McNemar p-value: the sign test of the ``b`` items only the first model got right against
    the ``c`` only the second got right (the concordant items carry no information on the difference)."""
    return sign_test_p(b, c)


def newcombe_paired_interval(a: int, b: int, c: int, d: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval for ``p1 - p2`` from a paired 2x2 table, Newcombe (1998) method 10.

    ``a``: both right, ``b``: first only, ``c``: second only, ``d``: both wrong; ``p1 = (a + b) / n``,
    ``p2 = (a + c) / n``. With ``(l1, u1)``, ``(l2, u2)`` the Wilson limits of p1 and p2 and ``phi`` the
    table's correlation (0 when a margin is empty)::

        lower = (p1 - p2) - sqrt((p1 - l1)^2 - 2 phi (p1 - l1)(u2 - p2) + (u2 - p2)^2)
        upper = (p1 - p2) + sqrt((u1 - p1)^2 - 2 phi (u1 - p1)(p2 - l2) + (p2 - l2)^2)

    Raises ValueError for a negative count; (0, 0) for an empty table."""
    if min(a, b, c, d) < 0:
        raise ValueError(f"paired counts must be >= 0, got a={a} b={b} c={c} d={d}")
    n = a + b + c + d
    if n == 0:
        return (0.0, 0.0)
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, z)
    l2, u2 = wilson_interval(a + c, n, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(margins) if margins else 0.0
    diff = p1 - p2
    lower = diff - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    upper = diff + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return (max(-1.0, lower), min(1.0, upper))


@dataclass
class PairedComparison:
    """Model 1 vs model 2 on the same ``n`` items: accuracies, their difference ``acc1 - acc2`` with
    Newcombe's paired 95% interval, the discordant counts and the exact McNemar p-value."""

    n: int
    both: int
    only_first: int
    only_second: int
    neither: int
    acc1: float
    acc2: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.n > 0 and (self.ci_low > 0 or self.ci_high < 0)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant}


def paired_comparison(first: Sequence[bool], second: Sequence[bool]) -> PairedComparison:
    """Compare two models' per-item correctness (same items, same order). Raises ValueError when the
    lengths differ."""
    if len(first) != len(second):
        raise ValueError(f"paired comparison needs the same items: {len(first)} vs {len(second)}")
    a = sum(1 for x, y in zip(first, second, strict=True) if x and y)
    b = sum(1 for x, y in zip(first, second, strict=True) if x and not y)
    c = sum(1 for x, y in zip(first, second, strict=True) if y and not x)
    n = len(first)
    d = n - a - b - c
    low, high = newcombe_paired_interval(a, b, c, d)
    return PairedComparison(
        n=n, both=a, only_first=b, only_second=c, neither=d,
        acc1=(a + b) / n if n else 0.0, acc2=(a + c) / n if n else 0.0, diff=(b - c) / n if n else 0.0,
        ci_low=low, ci_high=high, p_value=mcnemar_exact_p(b, c),
    )


def paired_by_key(first: Mapping[str, bool], second: Mapping[str, bool]) -> PairedComparison:
    """:func:`paired_comparison` on the keys (problem ids, row numbers) both mappings hold, in sorted
    order; items only one model was scored on are left out."""
    shared = sorted(set(first) & set(second))
    return paired_comparison([first[k] for k in shared], [second[k] for k in shared])
