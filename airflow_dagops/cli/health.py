"""The health part of `dagops status`: every repository's health with its reason and since when, and the exit
code monitors and Kubernetes probes read (docs/operations.md):

    0  ok        every repository ok or paused
    1  degraded  one or more stale, none failing
    2  failing   one or more failing

(A command that cannot answer at all, e.g. a state DB that is down, exits 1 or 2 with the error's own code.)
"""

from __future__ import annotations

from airflow_dagops.cli.common import say
from airflow_dagops.health import service as health_service
from airflow_dagops.statuses import HealthState, OverallHealth

EXIT_CODES = {OverallHealth.OK: 0, OverallHealth.DEGRADED: 1, OverallHealth.FAILING: 2}
STYLES = {HealthState.OK: "green", HealthState.STALE: "yellow", HealthState.FAILING: "red", HealthState.PAUSED: "cyan"}


def add_health(data: dict) -> int:
    """Put the health report into `status`'s data (key `health`); returns the exit code it calls for."""
    report = health_service.health_report()
    data["health"] = report.to_dict()
    return EXIT_CODES[report.overall]


def print_health(health: dict) -> None:
    counts = ", ".join(f"{count} {state}" for state, count in health["counts"].items() if count)
    overall = OverallHealth(health["overall"])
    say(f"health:       {overall}" + (f" ({counts})" if counts else ""), None if overall == OverallHealth.OK else "red")
    for repo in health["repositories"]:
        state = HealthState(repo["state"])
        reason = f" ({repo['reason']})" if repo["reason"] else ""
        since = f" since {repo['since']}" if repo["since"] else ""
        say(f"  {repo['repository']}: {state}{reason}{since}", STYLES[state])
        if state != HealthState.OK or repo["consecutive_failures"]:
            say(f"    {repo['message']}")
