"""The points where dagops' work is measured, each called where that work is recorded (the event feed,
airflow_dagops/events/feed.py: every finished sync run, every release that goes live, every validation report),
so one call site covers every face that does the work. Metrics go through Airflow's Stats (airflow_dagops/metrics.py).

The gauges (pending syncs, age of the live release, health, DAG run success rates) describe the state DB rather
than an event: `publish_gauges` sends them, once per poll of the dagops_sync DAG; the Prometheus endpoint computes
the same values on every scrape (health/prometheus.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from airflow_dagops import metrics
from airflow_dagops.health.reasons import failure_reason
from airflow_dagops.health.state import KILL_RULES, LATENCY_REASONS, snapshot
from airflow_dagops.statuses import SyncRunStatus
from airflow_dagops.store.models import aware, utcnow

log = logging.getLogger(__name__)


def sync_run_finished(
    repository: str, status: str, code: str | None, error: str | None, started: datetime | None, ended: datetime | None
) -> None:
    reason = failure_reason(code, error).value if status == SyncRunStatus.FAILED else "none"
    metrics.incr("sync.runs", tags={"repository": repository, "status": status, "reason": reason})
    if started is not None and ended is not None:
        duration = aware(ended) - aware(started)
        metrics.timing("sync.duration", duration, tags={"repository": repository, "status": status})


def went_live(repository: str, reason: str, committed_at: datetime | None, at: datetime | None = None) -> None:
    if committed_at is None or not reason.startswith(LATENCY_REASONS):
        return
    latency = aware(at or utcnow()) - aware(committed_at)
    if latency.total_seconds() >= 0:  # a committer's clock ahead of ours says nothing about the pipeline
        metrics.timing("release.commit_to_live", latency, tags={"repository": repository})


def validated(repository: str, findings: Iterable) -> None:
    """A release's validation report: its findings by severity, and the imports the sandbox stopped."""
    by_severity: dict[str, int] = {}
    kills: dict[str, int] = {}
    for finding in findings:
        by_severity[finding.severity] = by_severity.get(finding.severity, 0) + 1
        if finding.rule in KILL_RULES:
            kills[KILL_RULES[finding.rule]] = kills.get(KILL_RULES[finding.rule], 0) + 1
    for severity, count in sorted(by_severity.items()):
        metrics.incr("validation.findings", count, tags={"repository": repository, "severity": severity})
    for reason, count in sorted(kills.items()):
        metrics.incr("sandbox.kills", count, tags={"repository": repository, "reason": reason})


def publish_gauges(*, now: datetime | None = None) -> None:
    """Send the state gauges through Stats (the dagops_sync DAG calls this after each poll). Never raises."""
    try:
        state = snapshot(now=now)
    except Exception:  # a gauge missed is better than a poll failed
        log.exception("could not read the state DB for the dagops gauges")
        return
    metrics.gauge("sync.pending", state.pending_syncs)
    for (name, health), value in state.health_states().items():
        metrics.gauge("repository.health", value, tags={"repository": name, "state": health})
    for (name,), failures in state.consecutive_failures().items():
        metrics.gauge("repository.consecutive_failures", failures, tags={"repository": name})
    for name, age in state.live_age.items():
        metrics.gauge("release.live_age", age, tags={"repository": name})
    for (name, which), rate in state.success_rates().items():
        metrics.gauge("dag_runs.success_rate", rate, tags={"repository": name, "release": which})
