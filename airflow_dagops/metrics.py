"""dagops' metrics, sent through Airflow's own `Stats`, so they reach the StatsD, DogStatsD or OpenTelemetry
backend the installation already configured in `[metrics]` (docs/operations.md lists every metric).

`CATALOGUE` is the one description of what dagops measures: for each measure, its name, type, labels and meaning
as sent through Stats and as served by the Prometheus endpoint (health/prometheus.py). `METRICS` (what `incr`,
`gauge` and `timing` accept) and `FAMILIES` (what `GET metrics` serves) are derived from it, and
tests/health/test_docs.py holds docs/operations.md's tables to it. Every Stats name starts with
`dagops.`; the backend adds Airflow's own prefix (`[metrics] statsd_prefix`, `airflow` by default). Labels are
sent as tags and carry bounded values only: registered repository names, statuses, failure reasons, severities,
providers, HTTP status codes. Never a commit sha, a release number or a run id (each would be a new series).
Plain StatsD drops tags; so, while Airflow's `[metrics] legacy_names_on` is on (its default), each point is also
sent under a name that carries its label values (`dagops.sync.duration.<repository>.<status>`), the way Airflow
sends its own legacy names.

Which `Stats`: Airflow keeps two, one per kind of process. A task (the system DAGs) has the Task SDK's, set up by
the task runner; the api-server (webhooks), scheduler and dag-processor have the core one. A process Airflow did
not set up (the `dagops` CLI) gets the core one, set up here the way the api-server does it, on the first point
and only when `[metrics]` turns a backend on. Emitting never raises and never slows a sync down noticeably: a
metrics backend that fails is logged once and ignored.

Foundation layer: imports nothing of the package but settings; Airflow only inside functions.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from airflow_dagops import settings

log = logging.getLogger(__name__)

PREFIX = "dagops."
# The window of `dagops_webhook_deliveries_last_hour` (its name says it; health/state.py counts over it).
WEBHOOK_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Series:
    """One name a backend knows a measure by: a StatsD/OpenTelemetry metric (kind counter, timer or gauge; name
    after `dagops.`) or a Prometheus family (kind counter, histogram or gauge; name without a counter's `_total`)."""

    name: str
    kind: str
    labels: tuple[str, ...]
    help: str


@dataclass(frozen=True)
class Measure:
    """One thing dagops measures, under the names it has: sent through Stats as it happens (`stats`), and served
    by `GET metrics` from the state DB (`prometheus`, health/prometheus.py). Either is None where that backend
    has no such series. The two differ where the state DB cannot rebuild an event stream: a counter of every
    finding becomes the newest release's findings, a counter of every webhook answer a count of the last hour."""

    stats: Series | None
    prometheus: Series | None


def _same(stats_name: str, prometheus_name: str, labels: tuple[str, ...], help: str) -> Measure:
    """A gauge both backends serve alike, under their own names."""
    return Measure(Series(stats_name, "gauge", labels, help), Series(prometheus_name, "gauge", labels, help))


CATALOGUE: tuple[Measure, ...] = (
    Measure(
        Series(
            "sync.runs",
            "counter",
            ("repository", "status", "reason"),
            "A finished sync run: status success/unchanged/rejected/failed; reason the failure reason "
            "(auth, unreachable, validation, tests, no_space, other) or `none`.",
        ),
        Series(
            "dagops_sync_runs",
            "counter",
            ("repository", "status", "reason"),
            "Finished sync runs by status (success, unchanged, rejected, failed) and failure reason (auth, "
            "unreachable, validation, tests, no_space, other; none when not failed).",
        ),
    ),
    Measure(
        Series("sync.duration", "timer", ("repository", "status"), "How long a finished sync run took."),
        Series("dagops_sync_duration_seconds", "histogram", ("repository", "status"), "Duration of finished syncs."),
    ),
    Measure(
        Series(
            "release.commit_to_live",
            "timer",
            ("repository",),
            "From a commit's commit time to the moment its release went live (published by a sync or promoted "
            "to prod; rollbacks and deploys of old versions are not counted).",
        ),
        Series(
            "dagops_commit_to_live_seconds",
            "histogram",
            ("repository",),
            "From commit time to going live, for releases published by a sync or promoted to prod.",
        ),
    ),
    Measure(
        Series(
            "validation.findings",
            "counter",
            ("repository", "severity"),
            "Findings of a release's validation, by severity (error, warning, info).",
        ),
        Series(
            "dagops_validation_findings",
            "gauge",
            ("repository", "severity"),
            "Findings of the newest validated release of each repository, by severity.",
        ),
    ),
    Measure(
        Series(
            "sandbox.kills",
            "counter",
            ("repository", "reason"),
            "DAG files the validation sandbox stopped while importing them: reason timeout or memory.",
        ),
        Series(
            "dagops_sandbox_kills",
            "counter",
            ("repository", "reason"),
            "DAG file imports the validation sandbox stopped (reason timeout or memory), over recorded releases.",
        ),
    ),
    Measure(
        Series(
            "webhook.deliveries",
            "counter",
            ("provider", "status"),
            "Webhook deliveries received, by provider and the HTTP status dagops answered (202 started, 200 "
            "ping or replay, 401 bad signature, ...).",
        ),
        Series(
            "dagops_webhook_deliveries_last_hour",
            "gauge",
            ("provider", "outcome"),
            f"Webhook deliveries accepted in the last {int(WEBHOOK_WINDOW.total_seconds()) // 60} minutes, by "
            "outcome (triggered, ignored, duplicate, pong, ...).",
        ),
    ),
    _same("sync.pending", "dagops_sync_pending", (), "Sync runs queued or running."),
    _same(
        "release.live_age",
        "dagops_release_live_age_seconds",
        ("repository",),
        "Seconds since the live release went live.",
    ),
    _same(
        "repository.health",
        "dagops_repository_health",
        ("repository", "state"),
        "1 for the repository's health state (ok, stale, failing, paused), 0 for the others.",
    ),
    Measure(
        Series(
            "repository.consecutive_failures",
            "gauge",
            ("repository",),
            "Syncs in a row that failed (0: the last finished sync succeeded).",
        ),
        Series("dagops_repository_consecutive_failures", "gauge", ("repository",), "Syncs in a row that failed."),
    ),
    Measure(
        Series(
            "dag_runs.success_rate",
            "gauge",
            ("repository", "release"),
            "Share of the recorded DAG runs that succeeded, of the live release (release=live) and of the one "
            "live before it (release=previous); absent until a run of that release is recorded.",
        ),
        Series(
            "dagops_dag_run_success_ratio",
            "gauge",
            ("repository", "release"),
            "Share of recorded DAG runs that succeeded, of the live release and of the one live before it "
            "(release=live|previous).",
        ),
    ),
    Measure(
        None,  # served by `GET metrics` only: Stats sends the success rate
        Series(
            "dagops_dag_runs",
            "gauge",
            ("repository", "release", "state"),
            "DAG runs recorded (success, failed) of the live release and of the one live before it.",
        ),
    ),
)
# The two views every caller uses: what `incr`/`gauge`/`timing` accept, and what `GET metrics` serves.
METRICS: dict[str, Series] = {m.stats.name: m.stats for m in CATALOGUE if m.stats is not None}
FAMILIES: dict[str, Series] = {m.prometheus.name: m.prometheus for m in CATALOGUE if m.prometheus is not None}

# Airflow's Stats modules, by the kind of process that sets them up, the Task SDK's first (module docstring). Their
# public names (airflow.sdk.observability.stats, airflow.observability.stats) re-export these modules' functions.
AIRFLOW_STATS_MODULES = (
    "airflow.sdk._shared.observability.metrics.stats",
    "airflow._shared.observability.metrics.stats",
)
_own: dict[str, Any] = {}  # the Stats this module set up itself, and whether legacy names are on
_warned: set[str] = set()


def incr(name: str, count: int = 1, *, tags: dict[str, Any] | None = None) -> None:
    _emit("incr", name, count, tags)


def gauge(name: str, value: float, *, tags: dict[str, Any] | None = None) -> None:
    _emit("gauge", name, value, tags)


def timing(name: str, duration: timedelta, *, tags: dict[str, Any] | None = None) -> None:
    _emit("timing", name, duration, tags)


def _emit(method: str, name: str, value: Any, tags: dict[str, Any] | None) -> None:
    metric = METRICS[name]  # a KeyError here is a programming error: every metric is described above
    tags = {label: str((tags or {}).get(label, "none")) for label in metric.labels}
    try:
        stats, legacy = _stats()
        if stats is None:
            return
        send = getattr(stats, method)
        send(PREFIX + name, value, tags=tags)
        if legacy and tags:
            send(".".join([PREFIX + name, *(_name_part(v) for v in tags.values())]), value)
    except Exception as err:  # metrics are an observation of the work, never a reason for it to fail
        if name not in _warned:
            _warned.add(name)
            log.warning("could not send metric %s%s: %s", PREFIX, name, err)


def _name_part(value: str) -> str:
    """A label value inside a StatsD name: dots would add levels, other characters Airflow refuses."""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in value) or "none"


def _stats() -> tuple[Any, bool]:
    """(Airflow's Stats module this process uses, whether legacy names are on), or (None, False) when metrics
    are off in a process Airflow did not set up."""
    for module_name in AIRFLOW_STATS_MODULES:
        module = sys.modules.get(module_name)  # never imported here: a CLI must not load the Task SDK for this
        if module is not None and set_up_by_airflow(module):
            return module, _legacy_names_on()
    if "stats" not in _own:
        _own["stats"] = _set_up_core_stats()
    return _own["stats"], _legacy_names_on()


def set_up_by_airflow(module: Any) -> bool:
    """Whether Airflow set up this Stats module in this process (a task, the api-server, the scheduler).

    Airflow has no public way to ask: its `initialize(factory=...)` keeps the factory in the module's private
    `_factory`, None until then. This function is the one place dagops reads Airflow's private state, and it fails
    loudly (an error `_emit` logs, rather than a second backend set up in silence) if Airflow renames it;
    tests/health/test_airflow_stats.py fails then too."""
    if not hasattr(module, "_factory"):
        raise RuntimeError(
            f"{module.__name__} has no `_factory`: this Airflow sets up Stats in a way dagops does not know "
            "(airflow_dagops/metrics.py `set_up_by_airflow` needs updating)"
        )
    return module._factory is not None


def _set_up_core_stats() -> Any:
    """The core Stats, set up from `[metrics]` the way the api-server does it (airflow/api_fastapi/app.py)."""
    if not any(_on(key) for key in ("statsd_on", "statsd_datadog_enabled", "otel_on")):
        return None
    from airflow.observability import stats
    from airflow.observability.metrics import stats_utils

    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=_legacy_names_on())
    return stats


def _legacy_names_on() -> bool:
    if "legacy" not in _own:
        _own["legacy"] = _on("legacy_names_on", "True")
    return bool(_own["legacy"])


def _on(key: str, default: str = "False") -> bool:
    value = settings.airflow_setting("metrics", key, default) or default
    return value.strip().lower() in ("true", "1", "yes", "on")


def reset() -> None:
    """Forget the Stats this module set up (tests that change `[metrics]` in process)."""
    _own.clear()
    _warned.clear()
