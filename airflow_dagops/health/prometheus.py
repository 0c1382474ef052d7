"""The Prometheus text exposition of dagops' metrics (`GET /pluginsv2/dagops/api/v1/metrics`), for installations
without a StatsD or OpenTelemetry backend.

Computed from the state DB on every scrape, so it is right whichever process did the work (a Celery worker's
sync, the api-server's webhook) and needs no shared memory between processes. `FAMILIES` names every metric it
serves, derived from the one catalogue of dagops' metrics (airflow_dagops/metrics.py `CATALOGUE`); docs/operations.md,
the Grafana dashboard and the alert rules use only these. Counters derived from rows go down only when rows go (a
removed repository takes its series with it); values that rows cannot keep as a running total are gauges over a
window or of the newest release instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from airflow_dagops.health.state import History, Snapshot, history, snapshot
from airflow_dagops.metrics import FAMILIES

CONTENT_TYPE = CONTENT_TYPE_LATEST
SYNC_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
LATENCY_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0, 7 * 86400.0)


def render(*, now: datetime | None = None) -> bytes:
    """The exposition text of every family, read from the state DB now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StateCollector(snapshot(now=now), history(now=now)))
    return generate_latest(registry)


class _StateCollector(Collector):
    def __init__(self, state: Snapshot, past: History) -> None:
        self.state, self.past = state, past

    def collect(self) -> Iterator[Metric]:
        state, past = self.state, self.past
        runs = _counter("dagops_sync_runs")
        for (name, status, reason), count in sorted(past.sync_runs.items()):
            runs.add_metric([name, status, reason], count)
        yield runs
        yield _histogram("dagops_sync_duration_seconds", past.sync_durations, SYNC_BUCKETS)
        yield _histogram(
            "dagops_commit_to_live_seconds", {(k,): v for k, v in past.commit_to_live.items()}, LATENCY_BUCKETS
        )
        yield _gauge("dagops_validation_findings", past.findings)
        kills = _counter("dagops_sandbox_kills")
        for labels, count in sorted(past.sandbox_kills.items()):
            kills.add_metric(list(labels), count)
        yield kills
        yield _gauge("dagops_webhook_deliveries_last_hour", past.webhook_deliveries)
        yield _gauge("dagops_sync_pending", {(): state.pending_syncs})
        yield _gauge("dagops_release_live_age_seconds", {(k,): v for k, v in state.live_age.items()})
        yield _gauge("dagops_repository_health", state.health_states())
        yield _gauge("dagops_repository_consecutive_failures", state.consecutive_failures())
        yield _gauge("dagops_dag_run_success_ratio", state.success_rates())
        counts = {(*k, "success"): v.success for k, v in state.dag_runs.items()}
        counts.update({(*k, "failed"): v.failed for k, v in state.dag_runs.items()})
        yield _gauge("dagops_dag_runs", counts)


def _counter(name: str) -> CounterMetricFamily:
    family = FAMILIES[name]
    return CounterMetricFamily(name, family.help, labels=list(family.labels))


def _gauge(name: str, values: dict) -> GaugeMetricFamily:
    family = FAMILIES[name]
    gauge = GaugeMetricFamily(name, family.help, labels=list(family.labels))
    for labels, value in sorted(values.items()):
        gauge.add_metric(list(labels), float(value))
    return gauge


def _histogram(name: str, samples: dict[tuple, list[float]], bounds: tuple[float, ...]) -> HistogramMetricFamily:
    family = FAMILIES[name]
    histogram = HistogramMetricFamily(name, family.help, labels=list(family.labels))
    for labels, values in sorted(samples.items()):
        buckets = [(_le(bound), sum(1 for v in values if v <= bound)) for bound in bounds]
        buckets.append(("+Inf", len(values)))
        histogram.add_metric(list(labels), buckets, sum_value=sum(values))
    return histogram


def _le(bound: float) -> str:
    return str(int(bound)) if bound == int(bound) else str(bound)
