"""An experiment's runs per variant: the assignments the gates recorded (`dagops_experiment_run`), joined with the
outcomes of both variants' DAG runs that the event feed recorded (`dag_run` events, events/dag_runs.py; the check
collects them from Airflow's REST API first), then judged (stats.py).

The feed is the one record of how runs went: release health (alerts/release_health.py) reads the same events, and
the collector records the copy of a date that the gate skipped as `skipped`, so neither counts a date twice.

A variant is credited with the scheduled runs it owned, found by its own run id: the other variant's run of the same
logical date skipped every task, and Airflow calls that run a success too, so it never counts. Runs of other types
(manual, backfill) ran outside the split and are only counted. An owned run whose DAG run never asked (the owning
variant's DAG queued, paused or failing to import) is `not_started`: nobody has run that logical date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from airflow_dagops.airflow.experiment_gate import SPLIT
from airflow_dagops.airflow.rest_client import RunOutcome
from airflow_dagops.events.feed import parse_time
from airflow_dagops.experiments.stats import VariantRuns, Verdict, judge
from airflow_dagops.experiments.variants import dag_ids
from airflow_dagops.store.models import Event, Experiment, ExperimentRun, aware


@dataclass(frozen=True)
class Owned:
    """One run the split gave a variant: its run id in that variant's DAG (None until its gate asked)."""

    owner: str
    kind: str
    run_id: str | None
    other_run_id: str | None


@dataclass
class Comparison:
    a: VariantRuns
    b: VariantRuns
    verdict: Verdict
    pending: dict = field(default_factory=lambda: {"A": 0, "B": 0})  # owned, not finished yet
    not_started: dict = field(default_factory=lambda: {"A": 0, "B": 0})  # owned; the owner has not started it
    unsplit: dict = field(default_factory=lambda: {"A": 0, "B": 0})  # manual and other runs, outside the split

    def to_dict(self) -> dict:
        return {
            "variants": {"A": self.a.to_dict(), "B": self.b.to_dict()},
            "pending": self.pending,
            "not_started": self.not_started,
            "unsplit": self.unsplit,
            "verdict": self.verdict.to_dict(),
        }


def owned_runs(session: Session, experiment_id: int) -> list[Owned]:
    rows = session.execute(
        select(ExperimentRun.owner, ExperimentRun.kind, ExperimentRun.a_run_id, ExperimentRun.b_run_id)
        .where(ExperimentRun.experiment_id == experiment_id)
        .order_by(ExperimentRun.id)
    ).all()
    return [
        Owned(owner, kind, a_run if owner == "A" else b_run, b_run if owner == "A" else a_run)
        for owner, kind, a_run, b_run in rows
    ]


def compare(session: Session, experiment: Experiment) -> Comparison:
    """Judge the runs each variant owned, as the event feed recorded them."""
    return tally(experiment, owned_runs(session, experiment.id), recorded_outcomes(session, experiment))


def recorded_outcomes(session: Session, experiment: Experiment) -> list[RunOutcome]:
    """Both variants' finished runs in the feed, the newest record of each run (a run cleared and run again is
    recorded again)."""
    releases = [release for release in (experiment.release_a_id, experiment.release_b_id) if release is not None]
    events = session.scalars(
        select(Event)
        .where(
            Event.kind == "dag_run",
            Event.release_id.in_(releases),
            Event.detail["experiment_id"].as_integer() == experiment.id,
        )
        .order_by(Event.id)
    )
    newest: dict[tuple[str, str], RunOutcome] = {}
    for event in events:
        detail = event.detail or {}
        run = RunOutcome(
            dag_id=detail["dag_id"],
            run_id=detail["run_id"],
            state=event.outcome,
            ended_at=parse_time(detail.get("end_date")),
            started_at=parse_time(detail.get("start_date")),
        )
        newest[(run.dag_id, run.run_id)] = run
    return list(newest.values())


def tally(experiment: Experiment, owned: list[Owned], outcomes: list[RunOutcome]) -> Comparison:
    names = dag_ids(experiment.dag_id)
    by_run = {(outcome.dag_id, outcome.run_id): outcome for outcome in outcomes}
    runs = {variant: VariantRuns(variant, dag_id) for variant, dag_id in names.items()}
    pending, not_started, unsplit = {"A": 0, "B": 0}, {"A": 0, "B": 0}, {"A": 0, "B": 0}
    for run in owned:
        if run.kind != SPLIT:
            unsplit[run.owner] += 1
            continue
        if run.run_id is None:
            # The other variant asked and skipped; the owner has not (yet): still queued, or paused for good.
            not_started[run.owner] += 1
            continue
        outcome = by_run.get((names[run.owner], run.run_id))
        if outcome is None or outcome.state not in ("success", "failed"):
            pending[run.owner] += 1
            continue
        _count(runs[run.owner], outcome)
    rule = experiment.rule
    verdict = judge(runs["A"], runs["B"], min_runs=rule["min_runs"], max_p=rule["max_p"])
    return Comparison(runs["A"], runs["B"], verdict, pending, not_started, unsplit)


def _count(runs: VariantRuns, outcome: RunOutcome) -> None:
    if outcome.state == "failed":
        runs.failed += 1
        return
    runs.success += 1
    duration = _seconds(outcome.started_at, outcome.ended_at)
    if duration is not None:
        runs.durations.append(duration)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    seconds = (aware(end) - aware(start)).total_seconds()
    return seconds if seconds >= 0 else None
