"""docs/operations.md, the Grafana dashboard and the Prometheus alert rules stay true to what dagops serves: both
files parse, and every metric they query is one `GET metrics` serves (FAMILIES); the page's two metric tables list
exactly the catalogue's metrics (airflow_dagops/metrics.py CATALOGUE), with its types and labels, and the page has a
runbook entry for every failure reason."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from airflow_dagops.metrics import FAMILIES, METRICS, Series
from airflow_dagops.statuses import FailureReason, HealthState

DOCS = Path(__file__).resolve().parents[2] / "docs"
METRIC_NAME = re.compile(r"\bdagops_[a-z_]+")
# A row of a metric table: | `name` | type (and a note) | labels | what |
TABLE_ROW = re.compile(r"^\| `(dagops[._][a-z_.]+)` \| (\w+)[^|]*\|([^|]*)\|", flags=re.MULTILINE)
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def served_names() -> set[str]:
    return {family.name + suffix for family in FAMILIES.values() for suffix in SUFFIXES[family.kind]}


def _expressions_of_dashboard(dashboard: dict) -> list[str]:
    found = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    found += [v["query"]["query"] for v in dashboard["templating"]["list"] if isinstance(v.get("query"), dict)]
    return found


def test_the_grafana_dashboard_parses_and_queries_only_served_metrics():
    dashboard = json.loads((DOCS / "grafana" / "dagops.json").read_text())
    expressions = _expressions_of_dashboard(dashboard)
    assert len(expressions) >= 15
    used = {name for expr in expressions for name in METRIC_NAME.findall(expr)}
    assert used and used <= served_names(), sorted(used - served_names())
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_the_alert_rules_parse_and_query_only_served_metrics():
    rules = yaml.safe_load((DOCS / "prometheus" / "dagops-rules.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {"DagOpsRepositoryFailing", "DagOpsRepositoryStale"} <= {a["alert"] for a in alerts}
    used = {name for alert in alerts for name in METRIC_NAME.findall(alert["expr"])}
    assert used and used <= served_names(), sorted(used - served_names())
    for alert in alerts:
        assert alert["annotations"]["runbook_url"].startswith("docs/operations.md#")


def _documented(series: dict[str, Series], prefix: str = "") -> dict[str, tuple[str, str]]:
    return {prefix + s.name: (s.kind, ", ".join(s.labels)) for s in series.values()}


def test_operations_tables_list_the_catalogue_with_its_types_and_labels():
    page = (DOCS / "operations.md").read_text()
    rows = {name: (kind, labels.strip()) for name, kind, labels in TABLE_ROW.findall(page)}
    assert rows == {**_documented(METRICS, "dagops."), **_documented(FAMILIES)}


def test_operations_documents_every_state_and_reason():
    page = (DOCS / "operations.md").read_text()
    assert [state for state in HealthState if f"`{state}`" not in page] == []
    headings = set(re.findall(r"^### (\S+)$", page, flags=re.MULTILINE))
    assert {reason.value for reason in FailureReason} <= headings
