"""Performance regressions: a release's measured parse and task run times against the live release's.

The repository's tests measure them with the pytest plugin's budget fixtures (airflow_dagops/testing/perf.py:
`dag_parse_time`, `task_run_time`, ...); each test module's measurements come back with its results
(releases/tests_runner.py) and are stored with the release (`Release.tests["perf"]`). When a release's tests are
judged (releases/gate.py `judge_tests`), every measurement the live release also has is compared with it:

    regression  =  candidate > live * threshold   and   candidate - live > floor

`threshold` (a ratio, `[dagops] perf_regression_threshold`, 1.5) says how much slower counts; `floor` (seconds,
`[dagops] perf_regression_floor`, 0.2) keeps noise on fast things (0.05 s -> 0.1 s is 2x, and nothing) from counting.
A repository may set its own in `.dagops.yaml`: `perf: {threshold: 2.0, floor: 0.5}`. A regression is a
`perf-regression` finding: an error that blocks the release with `tests: required`, a warning with `optional`.
Only what both releases measured is compared: a new measurement has nothing to regress against.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import select

from airflow_dagops import settings
from airflow_dagops.errors import InvalidInput
from airflow_dagops.statuses import ReleaseStatus
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release
from airflow_dagops.validate.config import ConfigError, load_config
from airflow_dagops.validate.report import Finding

RULE = "perf-regression"
HINT = (
    "Find what got slower (a top-level import, work at parse time, a slower call in the task); if it is expected, "
    "raise `perf: {threshold: ..., floor: ...}` in .dagops.yaml, or set `tests: optional` to only warn."
)
_KINDS = {"parse": "parses in", "tasks": "runs in"}


@dataclass(frozen=True)
class PerfLimits:
    threshold: float  # how many times slower counts
    floor: float  # seconds of difference below which it is noise

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Baseline:
    release_id: int
    perf: dict  # {"parse": {file: s}, "tasks": {"dag.task": s}}


@dataclass(frozen=True)
class Regression:
    kind: str  # parse / tasks
    name: str  # a file, or dag_id.task_id
    seconds: float
    baseline: float
    baseline_release: int

    @property
    def message(self) -> str:
        what = self.name if self.kind == "parse" else f"task {self.name}"
        ratio = f"{self.seconds / self.baseline:.1f}x" if self.baseline > 0 else "up"
        return (
            f"{what} {_KINDS[self.kind]} {self.seconds:.2f} s, {ratio} the {self.baseline:.2f} s of live release "
            f"{self.baseline_release} (+{self.seconds - self.baseline:.2f} s)"
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "message": self.message}


def limits(overrides: dict | None = None) -> PerfLimits:
    """The operator's `[dagops]` limits, with a repository's `perf:` overrides on top."""
    values = {
        "threshold": _number(settings.get("perf_regression_threshold"), "[dagops] perf_regression_threshold", 1.0),
        "floor": _number(settings.get("perf_regression_floor"), "[dagops] perf_regression_floor", 0.0),
    }
    for key, value in (overrides or {}).items():
        values[key] = _number(value, f".dagops.yaml perf.{key}", 1.0 if key == "threshold" else 0.0)
    return PerfLimits(**values)


def limits_of_release(folder: Path) -> PerfLimits:
    """The limits a release asks for in its own .dagops.yaml (a broken file was reported by validation: defaults)."""
    try:
        config, _findings = load_config(folder, operator_file=settings.get("validation_rules_file") or None)
    except ConfigError:
        return limits()
    return limits(getattr(config, "perf", None))


def _number(value, what: str, lowest: float) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < lowest:
        raise InvalidInput(f"{what} must be a number >= {lowest:g}, got {value!r}")
    return number


def live_baseline(repository_id: int | None, *, exclude: int | None = None) -> Baseline | None:
    """The live release's measurements, when it has any (and is not the release being judged)."""
    if repository_id is None:
        return None
    with session_scope() as session:
        live = session.scalar(
            select(Release).where(Release.repository_id == repository_id, Release.status == ReleaseStatus.LIVE)
        )
        if live is None or live.id == exclude:
            return None
        measured = (live.tests or {}).get("perf") or {}
        if not (measured.get("parse") or measured.get("tasks")):
            return None
        return Baseline(
            live.id, {"parse": dict(measured.get("parse") or {}), "tasks": dict(measured.get("tasks") or {})}
        )


def compare(candidate: dict, baseline: Baseline, perf_limits: PerfLimits) -> list[Regression]:
    """Every measurement both releases have that got slower beyond the threshold and the floor."""
    found = []
    for kind in ("parse", "tasks"):
        before = baseline.perf.get(kind) or {}
        for name, seconds in sorted((candidate.get(kind) or {}).items()):
            old = before.get(name)
            if old is None or seconds is None:
                continue
            if seconds > old * perf_limits.threshold and seconds - old > perf_limits.floor:
                found.append(Regression(kind, name, float(seconds), float(old), baseline.release_id))
    return found


def judge(summary: dict, mode: str, baseline: Baseline | None, perf_limits: PerfLimits | None) -> list[Finding]:
    """Compare the measurements in a tests summary with the baseline; record the comparison in the summary
    (`summary["perf"]`, and each regression among `summary["failures"]`) and return a `perf-regression` finding
    per regression."""
    measured = summary.get("perf") or {}
    if baseline is None or not (measured.get("parse") or measured.get("tasks")):
        return []
    perf_limits = perf_limits or limits()
    regressions = compare(measured, baseline, perf_limits)
    measured.update(
        baseline_release=baseline.release_id,
        limits=perf_limits.to_dict(),
        regressions=[r.to_dict() for r in regressions],
    )
    # Listed with the failing tests (what `dagops tests` and the page show); with `tests: required` they fail them.
    summary["failures"] = [
        *summary.get("failures", []),
        *({"module": "perf", "test": r.name, "kind": RULE, "message": r.message} for r in regressions),
    ]
    if regressions and mode == "required":
        summary["outcome"] = "failed"
    severity = "error" if mode == "required" else "warning"
    return [Finding(RULE, severity, r.message, r.name if r.kind == "parse" else None, hint=HINT) for r in regressions]


def merge(measurements: list[dict]) -> dict:
    """Several test modules' measurements as one: the fastest of each (noise only ever adds time)."""
    merged: dict[str, dict[str, float]] = {"parse": {}, "tasks": {}}
    for one in measurements:
        for kind in merged:
            for name, seconds in (one.get(kind) or {}).items():
                if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and math.isfinite(seconds):
                    merged[kind][name] = min(float(seconds), merged[kind].get(name, math.inf))
    return {kind: dict(sorted(values.items())) for kind, values in merged.items()}
