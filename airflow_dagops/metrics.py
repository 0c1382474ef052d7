"""dagops' metrics, sent through Airflow's own `Stats`, so they reach the StatsD, DogStatsD or OpenTelemetry
backend the installation already configured in `[metrics]` (docs/operations.md lists every metric).

`METRICS` is the one description of what dagops emits: name, type, labels, meaning. Every name starts with
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


@dataclass(frozen=True)
class Metric:
    name: str  # after `dagops.`
    kind: str  # counter / timer / gauge
    labels: tuple[str, ...]
    description: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "sync.runs",
            "counter",
            ("repository", "status", "reason"),
            "A finished sync run: status success/unchanged/rejected/failed; reason the failure reason "
            "(auth, unreachable, validation, tests, no_space, other) or `none`.",
        ),
        Metric("sync.duration", "timer", ("repository", "status"), "How long a finished sync run took."),
        Metric(
            "release.commit_to_live",
            "timer",
            ("repository",),
            "From a commit's commit time to the moment its release went live (published by a sync or promoted "
            "to prod; rollbacks and deploys of old versions are not counted).",
        ),
        Metric(
            "validation.findings",
            "counter",
            ("repository", "severity"),
            "Findings of a release's validation, by severity (error, warning, info).",
        ),
        Metric(
            "sandbox.kills",
            "counter",
            ("repository", "reason"),
            "DAG files the validation sandbox stopped while importing them: reason timeout or memory.",
        ),
        Metric(
            "webhook.deliveries",
            "counter",
            ("provider", "status"),
            "Webhook deliveries received, by provider and the HTTP status dagops answered (202 started, 200 "
            "ping or replay, 401 bad signature, ...).",
        ),
        Metric("sync.pending", "gauge", (), "Sync runs queued or running."),
        Metric("release.live_age", "gauge", ("repository",), "Seconds since the live release went live."),
        Metric(
            "repository.health",
            "gauge",
            ("repository", "state"),
            "1 for the repository's health state (ok, stale, failing, paused), 0 for the others.",
        ),
        Metric(
            "repository.consecutive_failures",
            "gauge",
            ("repository",),
            "Syncs in a row that failed (0: the last finished sync succeeded).",
        ),
        Metric(
            "dag_runs.success_rate",
            "gauge",
            ("repository", "release"),
            "Share of the recorded DAG runs that succeeded, of the live release (release=live) and of the one "
            "live before it (release=previous); absent until a run of that release is recorded.",
        ),
    )
}

# Stats modules by the process kind that sets them up, the Task SDK's first (see the module docstring).
_STATS_MODULES = ("airflow.sdk._shared.observability.metrics.stats", "airflow._shared.observability.metrics.stats")
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
    for module_name in _STATS_MODULES:
        module = sys.modules.get(module_name)
        # `_factory` is set by `initialize`: Airflow set this one up (a task, the api-server, the scheduler).
        if module is not None and getattr(module, "_factory", None) is not None:
            return module, _legacy_names_on()
    if "stats" not in _own:
        _own["stats"] = _set_up_core_stats()
    return _own["stats"], _legacy_names_on()


def _set_up_core_stats() -> Any:
    if not any(_on(key) for key in ("statsd_on", "statsd_datadog_enabled", "otel_on")):
        return None
    from airflow._shared.observability.metrics import stats
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
