"""The arithmetic of a verdict: Fisher's exact test and Mann-Whitney U against known values (and against exact
fractions), medians, the runs a difference needs, and the verdicts built from them."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from airflow_dagops.experiments.stats import (
    VariantRuns,
    fisher_exact,
    judge,
    mann_whitney,
    median,
    runs_to_significance,
)


def _fisher_by_fractions(a: int, b: int, c: int, d: int) -> Fraction:
    """The two-sided test with exact rational arithmetic: what the floating-point version must match."""
    row, col, total = a + b, a + c, a + b + c + d

    def probability(x: int) -> Fraction:
        return Fraction(math.comb(col, x) * math.comb(total - col, row - x), math.comb(total, row))

    observed = probability(a)
    return sum(
        (probability(x) for x in range(max(0, row - (total - col)), min(row, col) + 1) if probability(x) <= observed),
        Fraction(0),
    )


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ((3, 1, 1, 3), 34 / 70),  # Fisher's tea tasting: 34 of the 70 tables are as extreme
        ((1, 9, 11, 3), 0.002759456185220),  # Wikipedia's example of the test
        ((8, 2, 1, 5), 0.034965034965035),  # scipy.stats.fisher_exact's documented example
        ((10, 0, 10, 0), 1.0),  # every run a success: no evidence
        ((0, 0, 5, 5), 1.0),  # A without runs
    ],
)
def test_fisher_exact_against_known_values(table, expected):
    assert fisher_exact(*table) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("table", [(12, 3, 5, 9), (40, 2, 33, 9), (0, 7, 4, 1), (19, 1, 19, 1)])
def test_fisher_exact_matches_exact_fractions(table):
    assert fisher_exact(*table) == pytest.approx(float(_fisher_by_fractions(*table)), rel=1e-9)


def test_fisher_exact_refuses_negative_counts():
    with pytest.raises(ValueError, match="whole numbers"):
        fisher_exact(-1, 2, 3, 4)


def test_mann_whitney_exact_for_small_samples_without_ties():
    # Every A faster than every B: U = 0, one ordering of the C(10, 5) = 252, both tails.
    assert mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / 252)
    assert mann_whitney([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]) == pytest.approx(2 / 252)
    # Interleaved: U = 6; of the 70 orderings of 4 + 4 values, 24 have U <= 6 (1, 1, 2, 3, 5, 5, 7 for U = 0..6).
    assert mann_whitney([1, 3, 5, 7], [2, 4, 6, 8]) == pytest.approx(2 * 24 / 70)


def test_mann_whitney_normal_approximation_with_ties():
    a, b = [1.0, 2.0, 2.0, 3.0, 4.0, 4.0], [3.0, 5.0, 5.0, 6.0, 7.0, 8.0]
    # By hand: A's ranks 1, 2.5, 2.5, 4.5, 6.5, 6.5 -> R = 23.5, U = 23.5 - 21 = 2.5; four pairs of ties (2, 3, 4, 5)
    # -> sum(t^3 - t) = 24; sigma^2 = 6 * 6 / 12 * (13 - 24 / (12 * 11)); with the continuity correction.
    sigma = math.sqrt(36 / 12 * (13 - 24 / 132))
    expected = math.erfc((abs(2.5 - 18) - 0.5) / sigma / math.sqrt(2))
    assert mann_whitney(a, b) == pytest.approx(expected)
    assert mann_whitney([1.0], b) is None  # fewer than two values: no test


def test_median():
    assert median([]) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


def _p_at(n: int, rate_a: float, rate_b: float) -> float:
    a, b = round(rate_a * n), round(rate_b * n)
    return fisher_exact(a, n - a, b, n - b)


def test_runs_to_significance():
    n = runs_to_significance(0.9, 0.7, 0.05)
    assert n is not None
    assert _p_at(n, 0.9, 0.7) <= 0.05 < _p_at(n - 5, 0.9, 0.7)
    assert runs_to_significance(0.5, 0.5, 0.05) is None  # no difference to find
    assert runs_to_significance(0.950, 0.949, 0.05) is None  # beyond 5000 runs per variant


def _runs(variant: str, success: int, failed: int, durations: list[float] | None = None) -> VariantRuns:
    return VariantRuns(variant, "report" if variant == "A" else "report__ab", success, failed, durations or [])


def test_b_more_reliable_with_enough_runs_wins():
    verdict = judge(_runs("A", 12, 8), _runs("B", 20, 0), min_runs=20, max_p=0.05)
    assert (verdict.winner, verdict.decided, verdict.basis) == ("B", True, "success rate")
    assert verdict.success_p == pytest.approx(fisher_exact(12, 8, 20, 0))
    assert verdict.confidence == pytest.approx(1 - verdict.success_p)
    assert verdict.summary.startswith("B better: B is more reliable (success rate: p = ")
    assert "success 60% of 20 runs (A) vs 100% of 20 (B)" in verdict.summary


def test_a_leading_without_min_runs_is_no_verdict_yet():
    verdict = judge(_runs("A", 10, 0), _runs("B", 1, 9), min_runs=20, max_p=0.05)
    assert (verdict.leader, verdict.winner, verdict.decided) == ("A", None, False)
    assert verdict.needs["A"] == 10 and verdict.needs["B"] == 10
    assert "no verdict yet" in verdict.summary and "needs 10 more runs of A and 10 of B" in verdict.summary


def test_equal_success_rates_are_decided_by_duration():
    fast, slow = [10.0 + i / 10 for i in range(12)], [20.0 + i / 10 for i in range(12)]
    verdict = judge(_runs("A", 12, 0, slow), _runs("B", 12, 0, fast), min_runs=10, max_p=0.05)
    assert (verdict.winner, verdict.basis) == ("B", "duration")
    assert "B is faster" in verdict.summary and "median 20.6 s vs 10.6 s" in verdict.summary


def test_no_difference_says_how_many_runs_it_would_take():
    verdict = judge(_runs("A", 9, 1), _runs("B", 10, 0), min_runs=5, max_p=0.05)
    assert (verdict.winner, verdict.leader) == (None, None)
    needed = verdict.needs["per_variant_for_significance"]
    assert needed is not None and needed > 10
    assert f"needs about {needed} runs per variant" in verdict.summary


def test_no_runs_yet():
    verdict = judge(_runs("A", 0, 0), _runs("B", 3, 0), min_runs=5, max_p=0.05)
    assert verdict.winner is None and verdict.success_p is None
    assert "a variant has no finished run yet" in verdict.summary
