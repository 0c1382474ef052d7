"""The arithmetic of an A/B verdict, without scipy: Fisher's exact test on the success counts, the Mann-Whitney U
test on the durations of successful runs, medians, and how many runs a difference needs to become significant.

Both tests are two-sided. Fisher's p-value sums the probabilities of every table with the observed margins that is
no more likely than the observed one (as R's `fisher.test` and scipy's `fisher_exact` do). Mann-Whitney's is exact
for small samples without ties (the distribution of U counted by recurrence), and otherwise the normal
approximation with the tie and continuity corrections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

RELATIVE_TOLERANCE = 1 + 1e-7  # tables as likely as the observed one, but for floating-point noise, count too
EXACT_U_LIMIT = 30  # exact Mann-Whitney distribution up to this many runs per variant (and no ties)
MAX_RUNS_ESTIMATE = 5000  # beyond this many runs per variant, "runs needed" is reported as unknown


# -- Fisher's exact test ----------------------------------------------------------------------------------------
def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(a_success: int, a_failed: int, b_success: int, b_failed: int) -> float:
    """Two-sided p-value that A's and B's success rates are the same, from the 2x2 table of their counts."""
    counts = (a_success, a_failed, b_success, b_failed)
    if any(not isinstance(c, int) or c < 0 for c in counts):
        raise ValueError(f"counts must be whole numbers >= 0, got {counts}")
    a_runs, successes = a_success + a_failed, a_success + b_success
    total = sum(counts)
    if a_runs in (0, total) or successes in (0, total):
        return 1.0  # one variant without runs, or every run alike: no evidence either way
    failures = total - successes
    low, high = max(0, a_runs - failures), min(successes, a_runs)
    denominator = _log_comb(total, a_runs)

    def probability(x: int) -> float:
        return math.exp(_log_comb(successes, x) + _log_comb(failures, a_runs - x) - denominator)

    observed = probability(a_success)
    p = sum(q for q in (probability(x) for x in range(low, high + 1)) if q <= observed * RELATIVE_TOLERANCE)
    return min(1.0, p)


# -- Mann-Whitney U ---------------------------------------------------------------------------------------------
def mann_whitney(a: list[float], b: list[float]) -> float | None:
    """Two-sided p-value that A's and B's durations come from the same distribution; None with fewer than two
    values on a side."""
    if len(a) < 2 or len(b) < 2:
        return None
    ranks = _ranks(a + b)
    u_a = sum(ranks[: len(a)]) - len(a) * (len(a) + 1) / 2
    u = min(u_a, len(a) * len(b) - u_a)
    tied = len(set(a + b)) < len(a) + len(b)
    if not tied and max(len(a), len(b)) <= EXACT_U_LIMIT:
        counts = _u_counts(len(a), len(b))
        at_most = sum(counts[: int(u) + 1])
        return min(1.0, 2 * at_most / sum(counts))
    return _normal_p(u, a, b, ranks)


def _ranks(values: list[float]) -> list[float]:
    """Ranks from 1, ties sharing their mean rank, in the order of `values`."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _u_counts(n: int, m: int) -> list[int]:
    """How many orderings of n A-values and m B-values give U = 0, 1, ..., n*m (no ties)."""
    # table[j][u]: orderings of i A-values and j B-values with U = u, built up one A-value at a time.
    table = [[1] + [0] * (n * m) for _ in range(m + 1)]  # i = 0: only U = 0
    for _i in range(1, n + 1):
        row = [[0] * (n * m + 1) for _ in range(m + 1)]
        row[0][0] = 1
        for j in range(1, m + 1):
            for u in range(n * m + 1):
                # the largest value is a B-value (adds nothing) or an A-value (beats all j B-values)
                row[j][u] = row[j - 1][u] + (table[j][u - j] if u >= j else 0)
        table = row
    return table[m]


def _normal_p(u: float, a: list[float], b: list[float], ranks: list[float]) -> float:
    n, m = len(a), len(b)
    total = n + m
    ties: dict[float, int] = {}
    for value in a + b:
        ties[value] = ties.get(value, 0) + 1
    tie_term = sum(t**3 - t for t in ties.values()) / (total * (total - 1))
    sigma = math.sqrt(n * m / 12 * ((total + 1) - tie_term))
    if sigma == 0:
        return 1.0
    z = max(0.0, abs(u - n * m / 2) - 0.5) / sigma
    return min(1.0, math.erfc(z / math.sqrt(2)))


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# -- how many runs ----------------------------------------------------------------------------------------------
def runs_to_significance(rate_a: float, rate_b: float, max_p: float) -> int | None:
    """Runs per variant at which success rates like these would differ at `max_p`; None when they are equal or
    it would take more than MAX_RUNS_ESTIMATE."""
    if rate_a == rate_b:
        return None

    def significant(n: int) -> bool:
        a, b = round(rate_a * n), round(rate_b * n)
        return fisher_exact(a, n - a, b, n - b) <= max_p

    high = 2
    while not significant(high):
        if high >= MAX_RUNS_ESTIMATE:
            return None
        high = min(high * 2, MAX_RUNS_ESTIMATE)
    low = high // 2
    while low + 1 < high:  # significant(high), not significant(low) (rounding makes it nearly monotonic)
        middle = (low + high) // 2
        low, high = (low, middle) if significant(middle) else (middle, high)
    return high


# -- the verdict ------------------------------------------------------------------------------------------------
@dataclass
class VariantRuns:
    """The finished scheduled runs one variant owned."""

    variant: str
    dag_id: str
    success: int = 0
    failed: int = 0
    durations: list[float] = field(default_factory=list)  # seconds, of the successful runs

    @property
    def runs(self) -> int:
        return self.success + self.failed

    @property
    def success_rate(self) -> float | None:
        return self.success / self.runs if self.runs else None

    def to_dict(self) -> dict:
        middle = median(self.durations)
        return {
            "variant": self.variant,
            "dag_id": self.dag_id,
            "runs": self.runs,
            "success": self.success,
            "failed": self.failed,
            "success_rate": round(self.success_rate, 4) if self.success_rate is not None else None,
            "median_duration_seconds": round(middle, 3) if middle is not None else None,
        }


@dataclass(frozen=True)
class Verdict:
    winner: str | None  # "A" / "B" when decided
    leader: str | None  # who is ahead, significantly, whether or not min_runs is reached
    decided: bool  # min_runs reached by both and a difference at max_p
    basis: str | None  # "success rate" / "duration"
    success_p: float | None
    duration_p: float | None
    confidence: float | None  # 1 - p of the basis (of the success rates when there is none)
    needs: dict  # {"A": more runs to min_runs, "B": ..., "per_variant_for_significance": n or None}
    summary: str

    def to_dict(self) -> dict:
        return {
            "winner": self.winner,
            "leader": self.leader,
            "decided": self.decided,
            "basis": self.basis,
            "success_p": _rounded(self.success_p),
            "duration_p": _rounded(self.duration_p),
            "confidence": _rounded(self.confidence),
            "needs": self.needs,
            "summary": self.summary,
        }


def _rounded(value: float | None) -> float | None:
    return round(value, 6) if value is not None else None


def judge(a: VariantRuns, b: VariantRuns, *, min_runs: int, max_p: float) -> Verdict:
    """ "B better", "A better" or "no difference yet": success rates first (Fisher); when they do not differ, the
    durations of successful runs (Mann-Whitney: the faster wins)."""
    success_p = fisher_exact(a.success, a.failed, b.success, b.failed) if a.runs and b.runs else None
    duration_p = mann_whitney(a.durations, b.durations)
    leader, basis = None, None
    if success_p is not None and success_p <= max_p:
        leader, basis = ("A" if (a.success_rate or 0) > (b.success_rate or 0) else "B"), "success rate"
    elif duration_p is not None and duration_p <= max_p:
        leader, basis = ("A" if (median(a.durations) or 0) < (median(b.durations) or 0) else "B"), "duration"
    p = duration_p if basis == "duration" else success_p
    needs: dict[str, int | None] = {"A": max(0, min_runs - a.runs), "B": max(0, min_runs - b.runs)}
    if a.runs and b.runs and not leader:
        needs["per_variant_for_significance"] = runs_to_significance(a.success_rate or 0, b.success_rate or 0, max_p)
    decided = leader is not None and not needs["A"] and not needs["B"]
    return Verdict(
        winner=leader if decided else None,
        leader=leader,
        decided=decided,
        basis=basis,
        success_p=success_p,
        duration_p=duration_p,
        confidence=1 - p if p is not None else None,
        needs=needs,
        summary=_summary(a, b, leader, basis, p, needs, decided, max_p),
    )


def _summary(a, b, leader, basis, p, needs, decided, max_p) -> str:
    rates = f"success {_percent(a.success_rate)} of {a.runs} runs (A) vs {_percent(b.success_rate)} of {b.runs} (B)"
    medians = f"median {_seconds(median(a.durations))} vs {_seconds(median(b.durations))}"
    if leader is not None:
        better = "faster" if basis == "duration" else "more reliable"
        found = f"{leader} is {better} ({basis}: p = {p:.3g}, confidence {1 - p:.1%}); {rates}, {medians}"
        if decided:
            return f"{leader} better: {found}"
        return f"no verdict yet: {found}; min_runs needs {needs['A']} more runs of A and {needs['B']} of B"
    more = needs.get("per_variant_for_significance")
    if not a.runs or not b.runs:
        why = "a variant has no finished run yet"
    elif more:
        why = f"a difference this size needs about {more} runs per variant to show at p <= {max_p}"
    else:
        why = "no difference in success rate or duration seen"
    return f"no difference yet: {rates}, {medians}; {why}"


def _percent(rate: float | None) -> str:
    return f"{rate:.0%}" if rate is not None else "-"


def _seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "-"
