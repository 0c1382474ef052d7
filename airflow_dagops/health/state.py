"""The numbers the metrics report, read from the state DB: so every process (a scrape of the api-server, a poll of
the dagops_sync DAG) reports the same values, whichever process did the work.

`snapshot` holds the gauges (cheap: a few queries per repository); `history` adds what the Prometheus endpoint
derives from the recorded history (sync runs, go-lives, findings, webhook deliveries).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from airflow_dagops.health.reasons import failure_reason
from airflow_dagops.health.service import HealthReport, HealthRules, health_report
from airflow_dagops.metrics import WEBHOOK_WINDOW
from airflow_dagops.statuses import HealthState, SyncRunStatus
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import (
    DeployEvent,
    Event,
    Finding,
    Release,
    Repository,
    SyncRun,
    WebhookDelivery,
    aware,
    utcnow,
)

FINISHED = (SyncRunStatus.SUCCESS, SyncRunStatus.UNCHANGED, SyncRunStatus.REJECTED, SyncRunStatus.FAILED)
# Rules of findings that mean the sandbox stopped a DAG file's import, by the reason the metrics give.
KILL_RULES = {"import-timeout": "timeout", "import-memory-limit": "memory"}
# What counts for commit-to-live latency: a sync's publish (`sync (<trigger>)`), or a promotion reaching prod. A
# rollback or a deploy of an old version measures a person's decision, not the pipeline.
LATENCY_REASONS = ("sync", "promotion")


@dataclass
class RunCounts:
    success: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.success + self.failed

    @property
    def rate(self) -> float:
        return self.success / self.total if self.total else 0.0


@dataclass
class Snapshot:
    health: HealthReport
    pending_syncs: int
    live_age: dict[str, float]  # repository -> seconds since its live release went live
    dag_runs: dict[tuple[str, str], RunCounts]  # (repository, live|previous) -> DAG run outcomes recorded

    # The gauges both backends report (Stats through health/observe.py, `GET metrics` through health/prometheus.py),
    # by their label values, so the two cannot disagree.
    def health_states(self) -> dict[tuple[str, str], int]:
        """(repository, state) -> 1 for the repository's health state, 0 for every other state."""
        return {
            (h.repository, each.value): int(h.state == each) for h in self.health.repositories for each in HealthState
        }

    def consecutive_failures(self) -> dict[tuple[str], int]:
        return {(h.repository,): h.consecutive_failures for h in self.health.repositories}

    def success_rates(self) -> dict[tuple[str, str], float]:
        """(repository, live|previous) -> share of its DAG runs that succeeded; only releases with a recorded run."""
        return {key: runs.rate for key, runs in self.dag_runs.items() if runs.total}


@dataclass
class History:
    # (repository, status, reason) -> finished sync runs
    sync_runs: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # (repository, status) -> durations in seconds
    sync_durations: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    commit_to_live: dict[str, list[float]] = field(default_factory=dict)  # repository -> seconds
    findings: dict[tuple[str, str], int] = field(default_factory=dict)  # (repository, severity), newest release
    sandbox_kills: dict[tuple[str, str], int] = field(default_factory=dict)  # (repository, timeout|memory)
    webhook_deliveries: dict[tuple[str, str], int] = field(default_factory=dict)  # (provider, outcome), last hour


def snapshot(*, now: datetime | None = None, rules: HealthRules | None = None) -> Snapshot:
    now = now or utcnow()
    report = health_report(now=now, rules=rules)
    with session_scope() as session:
        repos = session.scalars(select(Repository).order_by(Repository.priority, Repository.name)).all()
        pending = session.scalar(
            select(func.count()).select_from(SyncRun).where(SyncRun.status.in_(SyncRunStatus.active()))
        )
        live_age: dict[str, float] = {}
        dag_runs: dict[tuple[str, str], RunCounts] = {}
        for repo in repos:
            if not repo.live_release_id:
                continue
            went_live = _went_live(session, repo)
            if went_live is not None:
                live_age[repo.name] = max(0.0, (now - aware(went_live.created_at)).total_seconds())
            dag_runs[(repo.name, "live")] = _dag_runs(session, repo.live_release_id)
            previous = went_live.from_release_id if went_live is not None else None
            if previous:
                dag_runs[(repo.name, "previous")] = _dag_runs(session, previous)
        return Snapshot(report, pending or 0, live_age, dag_runs)


def _went_live(session: Session, repo: Repository) -> DeployEvent | None:
    """The record of the live release going live (the newest one, if it went live more than once)."""
    return session.scalar(
        select(DeployEvent)
        .where(DeployEvent.repository_id == repo.id, DeployEvent.to_release_id == repo.live_release_id)
        .order_by(DeployEvent.id.desc())
        .limit(1)
    )


def _dag_runs(session: Session, release_id: int) -> RunCounts:
    rows = session.execute(
        select(Event.outcome, func.count())
        .where(Event.kind == "dag_run", Event.release_id == release_id, Event.outcome.in_(("success", "failed")))
        .group_by(Event.outcome)
    ).all()
    counts = dict(rows)
    return RunCounts(success=counts.get("success", 0), failed=counts.get("failed", 0))


def history(*, now: datetime | None = None) -> History:
    now = now or utcnow()
    found = History()
    with session_scope() as session:
        names = dict(session.execute(select(Repository.id, Repository.name)).tuples().all())
        _read_sync_runs(session, names, found)
        _read_commit_to_live(session, names, found)
        _read_findings(session, names, found)
        rows = session.execute(
            select(WebhookDelivery.provider, WebhookDelivery.outcome, func.count())
            .where(WebhookDelivery.received_at >= now - WEBHOOK_WINDOW)
            .group_by(WebhookDelivery.provider, WebhookDelivery.outcome)
        ).all()
        found.webhook_deliveries = {(provider, outcome): count for provider, outcome, count in rows}
    return found


def _read_sync_runs(session: Session, names: dict[int, str], found: History) -> None:
    # The error text only where the code alone does not say the reason (as failure_reason reads it).
    vague = and_(
        SyncRun.status == SyncRunStatus.FAILED,
        or_(SyncRun.error_code.is_(None), SyncRun.error_code.in_(("error", "git_error"))),
    )
    rows = session.execute(
        select(
            SyncRun.repository_id,
            SyncRun.status,
            SyncRun.error_code,
            case((vague, func.substr(SyncRun.error, 1, 300)), else_=None),
            SyncRun.started_at,
            SyncRun.ended_at,
        ).where(SyncRun.status.in_(FINISHED))
    ).tuples()
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    for repo_id, status, code, error, started, ended in rows:
        name = names.get(repo_id)
        if name is None:
            continue
        reason = failure_reason(code, error).value if status == SyncRunStatus.FAILED else "none"
        counts[(name, status, reason)] += 1
        if started is not None and ended is not None:
            durations[(name, status)].append(max(0.0, (aware(ended) - aware(started)).total_seconds()))
    found.sync_runs, found.sync_durations = dict(counts), dict(durations)


def _read_commit_to_live(session: Session, names: dict[int, str], found: History) -> None:
    counted = or_(*(DeployEvent.reason.startswith(reason) for reason in LATENCY_REASONS))
    rows = session.execute(
        select(DeployEvent.repository_id, DeployEvent.created_at, Release.committed_at)
        .join(Release, Release.id == DeployEvent.to_release_id)
        .where(counted, Release.committed_at.is_not(None))
    ).tuples()
    latencies: dict[str, list[float]] = defaultdict(list)
    for repo_id, at, committed in rows:
        if committed is None:  # the query keeps only releases with a commit time
            continue
        seconds = (aware(at) - aware(committed)).total_seconds()
        if repo_id in names and seconds >= 0:
            latencies[names[repo_id]].append(seconds)
    found.commit_to_live = dict(latencies)


def _read_findings(session: Session, names: dict[int, str], found: History) -> None:
    newest = (
        select(Release.repository_id, func.max(Release.id).label("release_id"))
        .where(Release.validation_summary.is_not(None))
        .group_by(Release.repository_id)
        .subquery()
    )
    rows = session.execute(
        select(newest.c.repository_id, Finding.severity, func.count())
        .join(Finding, Finding.release_id == newest.c.release_id)
        .group_by(newest.c.repository_id, Finding.severity)
    ).tuples()
    found.findings = {(names[r], severity): n for r, severity, n in rows if r in names}
    kills = session.execute(
        select(Release.repository_id, Finding.rule, func.count())
        .join(Finding, Finding.release_id == Release.id)
        .where(Finding.rule.in_(tuple(KILL_RULES)))
        .group_by(Release.repository_id, Finding.rule)
    ).tuples()
    found.sandbox_kills = {(names[r], KILL_RULES[rule]): n for r, rule, n in kills if r in names}
