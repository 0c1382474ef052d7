"""Samples of wall-clock timings and the goals they are judged against.

Everything is kept in milliseconds so that the report can put engine and baselines side by side.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Samples:
    """Timings of one subject (the engine or a baseline) over repeated runs."""

    what: str
    ms: list[float] = field(default_factory=list)
    # "baseline" rows are compared with the subject (the first row); "breakdown" rows only explain it.
    role: str = "baseline"
    # CPU time of each run, where it was taken (`cpu_ms`): on a loaded machine wall times follow it.
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    @property
    def min(self) -> float:
        return min(self.ms)

    @property
    def max(self) -> float:
        return max(self.ms)


@dataclass
class Stated:
    """A baseline that is a documented number, not a measurement (e.g. Airflow's default rescan interval)."""

    what: str
    ms: float


@dataclass
class Goal:
    """One goal of the brief, with the measured value in words and whether it was met."""

    text: str
    measured: str
    passed: bool


@dataclass
class Measurement:
    """One section of BENCHMARKS.md: what was timed, the baselines of the same run, the goals and notes."""

    key: str
    title: str
    method: str
    rows: list[Samples | Stated] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None


def timed(action: Callable[[], T]) -> tuple[float, T]:
    """Run `action` once; return (elapsed ms, its result). perf_counter: monotonic and high resolution."""
    start = time.perf_counter()
    result = action()
    return (time.perf_counter() - start) * 1000, result


def cpu_ms() -> float:
    """CPU time (user + system) of this process and of the processes it has waited for (git, cp), in ms."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime) * 1000


def cpu_note(subject: Samples, baselines: list[Samples]) -> str:
    """The CPU time each run cost, median: what decides the wall times when other work shares the CPUs."""
    parts = [f"{subject.what}: {statistics.median(subject.cpu):.1f}"]
    for baseline in baselines:
        ratio = statistics.median(subject.cpu) / statistics.median(baseline.cpu)
        parts.append(f"{baseline.what}: {statistics.median(baseline.cpu):.1f} (dagops ÷ this: {ratio:.2f}×)")
    return (
        "CPU time of each run (user + system, this process and the git and cp processes it waited for), median ms: "
        + "; ".join(parts)
        + ". On a 2-CPU machine that other work keeps busy, each process waits for its share of the CPUs, so wall "
        "times there grow with the CPU time a run needs."
    )


def ratio_goal(text: str, subject: Samples, baseline: Samples, limit: float) -> Goal:
    """Goal of the form `subject <= limit x baseline` (medians)."""
    ratio = subject.median / baseline.median
    return Goal(text, f"{ratio:.2f}×", ratio <= limit)


def speedup_goal(text: str, subject: Samples, baseline: Samples, factor: float) -> Goal:
    """Goal of the form `subject is >= factor times faster than baseline` (medians)."""
    speedup = baseline.median / subject.median
    return Goal(text, f"{speedup:.1f}× faster", speedup >= factor)


def limit_goal(text: str, subject: Samples, limit_ms: float, unit: str = "ms") -> Goal:
    """Goal of the form `median <= limit`, shown in ms or s."""
    value = subject.median if unit == "ms" else subject.median / 1000
    return Goal(text, f"{value:.1f} {unit}" if unit == "s" else f"{value:.0f} ms", subject.median <= limit_ms)
