"""Paired statistics, as tables of hand-computed cases."""

from __future__ import annotations

import math

import pytest

from prm_selfreward.stats import (
    mcnemar_exact_p,
    newcombe_paired_interval,
    paired_by_key,
    paired_comparison,
    sign_test_p,
    wilson_interval,
)

Z2 = 1.96**2


@pytest.mark.parametrize(
    "b,c,expected",
    [
        (0, 0, 1.0),                      # nothing discordant: nothing to test
        (3, 3, 1.0),                      # an even split
        (5, 0, 2 / 2**5),                 # 0.0625: five of five one way
        (0, 5, 2 / 2**5),                 # symmetric in the two models
        (6, 0, 2 / 2**6),                 # 0.03125
        (10, 2, 2 * (1 + 12 + 66) / 2**12),  # 0.0386: P(X <= 2), X ~ Bin(12, 1/2), doubled
        (4, 3, 1.0),                      # 2 * P(X <= 3 | n=7) = 2 * 64/128 = 1, capped
        (9, 1, 2 * (1 + 10) / 2**10),     # 0.0215
    ],
)
def test_mcnemar_exact_p(b: int, c: int, expected: float) -> None:
    assert mcnemar_exact_p(b, c) == pytest.approx(expected, abs=1e-12)
    assert sign_test_p(b, c) == mcnemar_exact_p(b, c)


@pytest.mark.parametrize(
    "table,expected",
    [
        # Newcombe (1998), Table II, example (a): 36 / 12 / 2 / 0 -> +0.0569 to +0.3404.
        ((36, 12, 2, 0), (0.0569, 0.3404)),
        # All wrong: p1 = p2 = 0, phi = 0 (an empty margin), limits +-z^2 / (n + z^2).
        ((0, 0, 0, 10), (-Z2 / (10 + Z2), Z2 / (10 + Z2))),
        # All correct: the same by symmetry.
        ((10, 0, 0, 0), (-Z2 / (10 + Z2), Z2 / (10 + Z2))),
        # Only the first right on 3 items: p1 = 1 (l1 = 3 / (3 + z^2)), p2 = 0 (u2 = z^2 / (3 + z^2)), phi = 0:
        # lower = 1 - sqrt((1 - l1)^2 + u2^2) = 1 - sqrt(2) z^2 / (3 + z^2); upper = 1.
        ((0, 3, 0, 0), (1 - math.sqrt(2) * Z2 / (3 + Z2), 1.0)),
        ((0, 0, 3, 0), (-1.0, -(1 - math.sqrt(2) * Z2 / (3 + Z2)))),
    ],
)
def test_newcombe_paired_interval(table: tuple[int, int, int, int], expected: tuple[float, float]) -> None:
    low, high = newcombe_paired_interval(*table)
    assert low == pytest.approx(expected[0], abs=1e-4)
    assert high == pytest.approx(expected[1], abs=1e-4)


def test_newcombe_uses_the_correlation() -> None:
    # Same margins (p1 = 0.6, p2 = 0.4, n = 20) but positively correlated items: a narrower interval
    # than with independent-looking (phi = 0) counts.
    correlated = newcombe_paired_interval(8, 4, 0, 8)
    uncorrelated = newcombe_paired_interval(4.8, 7.2, 3.2, 4.8)  # type: ignore[arg-type]
    assert correlated[1] - correlated[0] < uncorrelated[1] - uncorrelated[0]
    # phi = 0 reduces to Newcombe's independent-samples square-and-add of the two Wilson intervals.
    l1, u1 = wilson_interval(12, 20)
    l2, u2 = wilson_interval(8, 20)
    assert uncorrelated[0] == pytest.approx(0.2 - math.hypot(0.6 - l1, u2 - 0.4), abs=1e-12)
    assert uncorrelated[1] == pytest.approx(0.2 + math.hypot(u1 - 0.6, 0.4 - l2), abs=1e-12)


def test_newcombe_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        newcombe_paired_interval(1, -1, 0, 0)
    assert newcombe_paired_interval(0, 0, 0, 0) == (0.0, 0.0)


def test_paired_comparison_counts_and_flags() -> None:
    first = [True] * 36 + [True] * 12 + [False] * 2
    second = [True] * 36 + [False] * 12 + [True] * 2
    cmp = paired_comparison(first, second)
    assert (cmp.both, cmp.only_first, cmp.only_second, cmp.neither, cmp.n) == (36, 12, 2, 0, 50)
    assert cmp.diff == pytest.approx(0.2)
    assert (cmp.acc1, cmp.acc2) == (pytest.approx(0.96), pytest.approx(0.76))
    assert cmp.p_value == pytest.approx(2 * (1 + 14 + 91) / 2**14)
    assert cmp.significant and cmp.to_dict()["significant"] is True
    flat = paired_comparison([True, False], [False, True])
    assert flat.diff == 0 and not flat.significant
    with pytest.raises(ValueError):
        paired_comparison([True], [True, False])


def test_paired_by_key_uses_shared_items_only() -> None:
    cmp = paired_by_key({"p1": True, "p2": False, "p3": True}, {"p2": True, "p3": True, "p9": False})
    assert cmp.n == 2 and cmp.only_second == 1 and cmp.both == 1
