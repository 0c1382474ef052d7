"""Discovery through its faces: the `discovery:` block of dagops.yaml, `dagops discover`, the REST routes and the
dagops_discover system DAG, against a fake GitHub organization."""

from __future__ import annotations

import json
import sys

import pytest

from airflow_dagops import paths
from airflow_dagops.discovery import service as discovery
from airflow_dagops.errors import ConfigInvalid
from airflow_dagops.repositories import declarative
from airflow_dagops.repositories.info import list_repositories
from tests.discovery.conftest import READ, TOKEN, git_connection, source

DAGOPS_YAML = """\
repositories: []
discovery:
  - name: acme
    url: https://github.example.com/acme
    provider: github
    conn_id: org_token
    rule:
      topic: airflow-dags
      require_file: .dagops.yaml
"""


@pytest.fixture
def github(git_host, dagops_env, monkeypatch):
    fake = git_host("github")
    fake.add_repo("acme/sales-dags", topics=["airflow-dags"], files={".dagops.yaml"})
    fake.add_repo("acme/hr-dags", topics=["airflow-dags"])  # no .dagops.yaml: not a match
    fake.add_repo("acme/website")
    fake.tokens[TOKEN] = READ["github"]
    git_connection(monkeypatch, "org_token", TOKEN, api_url=fake.url)
    return fake


def test_the_discovery_block_of_dagops_yaml_is_applied(github, cli, tmp_path):
    config = tmp_path / "dagops.yaml"
    config.write_text(DAGOPS_YAML)
    applied = cli("repos", "apply", "-f", str(config))
    assert applied.exit_code == 0, applied.output
    assert "Discovery: added discovery source acme" in applied.output
    [stored] = discovery.list_sources()
    assert stored["rule"] == {"topics": ["airflow-dags"], "require_file": ".dagops.yaml"} and not stored["register"]
    again = cli("repos", "apply", "-f", str(config))
    assert "Discovery: sources unchanged." in again.output
    config.write_text("repositories: []\n")  # no block: the sources are left as they are
    assert "Discovery" not in cli("repos", "apply", "-f", str(config)).output
    config.write_text("repositories: []\ndiscovery: []\n")  # an empty block removes them
    assert "removed discovery source acme" in cli("repos", "apply", "-f", str(config)).output


def test_a_bad_discovery_block_names_the_line_and_key(dagops_env):
    text = DAGOPS_YAML.replace("    rule:\n", "    colour: red\n    rule:\n").replace(
        "      topic: airflow-dags\n", "      topik: airflow-dags\n"
    )
    with pytest.raises(ConfigInvalid) as caught:
        declarative.parse(text)
    assert caught.value.problems == [
        "dagops.yaml:7: discovery[0].colour: is not a known key (known: name, url, provider, conn_id, rule, register, "
        "namespace_prefix)",
        "dagops.yaml:9: discovery[0].rule.topik: is not a known key (known: topic, topics, name_pattern, require_file)",
    ]
    missing = DAGOPS_YAML.replace("    provider: github\n", "    provider: bitbucket\n")
    with pytest.raises(ConfigInvalid, match=r"dagops.yaml:5: discovery\[0\].provider"):
        declarative.parse(missing)


def test_dagops_discover_proposes_then_registers_with_apply(github, cli):
    assert "No discovery source is configured" in cli("discover").output
    discovery.configure([source("github", name="acme", rule={"topic": "airflow-dags", "require_file": ".dagops.yaml"})])
    scanned = cli("discover")
    assert scanned.exit_code == 0, scanned.output
    assert "acme: 3 repositories, 1 match (1 new, 0 back, 0 removed)" in scanned.output
    assert "acme/sales-dags" in scanned.output and "proposed" in scanned.output
    assert "dagops discover --apply" in scanned.output and list_repositories() == []
    applied = cli("discover", "--apply", "--no-verify")
    assert applied.exit_code == 0 and "registered sales-dags" in applied.output
    assert [r.name for r in list_repositories()] == ["sales-dags"]
    listed = cli("discover", "--list", "--json")
    data = json.loads(listed.output)
    assert data["sources"][0]["name"] == "acme" and data["repositories"][0]["status"] == "registered"
    assert TOKEN not in scanned.output + applied.output + listed.output


def test_dagops_discover_ignore_and_failures(github, cli, monkeypatch):
    discovery.configure([source("github", name="acme")])
    cli("discover")
    ignored = cli("discover", "--ignore", "hr-dags")
    assert ignored.exit_code == 0 and "acme/hr-dags: ignored" in ignored.output
    assert "acme/hr-dags: proposed" in cli("discover", "--unignore", "acme/hr-dags").output
    unknown = cli("discover", "--ignore", "nope")
    assert unknown.exit_code == 1 and "no discovered repository named 'nope'" in unknown.output
    git_connection(monkeypatch, "org_token", "tok-revoked", api_url=github.url)
    failed = cli("discover")
    assert failed.exit_code == 1 and "wrong or expired" in failed.output and "tok-revoked" not in failed.output


def test_rest_lists_scans_registers_and_ignores(github, web):
    discovery.configure([source("github", name="acme")])
    empty = web.api("GET", "discovery", as_="reader")
    assert empty.status_code == 200 and empty.get_json()["repositories"] == []
    assert web.api("POST", "discovery/scan", json={}, as_="reader").status_code == 403
    scanned = web.api("POST", "discovery/scan", json={}, as_="editor")
    assert scanned.status_code == 200, scanned.get_json()
    assert sorted(r["name"] for r in scanned.get_json()["repositories"]) == ["hr-dags", "sales-dags"]
    # Registering attaches the source's connection: a DAG editor alone may not (as with naming a conn_id).
    for body in ({"apply": True}, None):
        path = "discovery/scan" if body else "discovery/repositories/sales-dags/register"
        refused = web.api("POST", path, json=body or {"verify": False}, as_="editor")
        assert refused.status_code == 403 and "connection read permission" in refused.get_json()["error"]["message"]
    assert list_repositories() == []
    registered = web.api("POST", "discovery/repositories/sales-dags/register", json={"verify": False}, as_="admin")
    assert registered.status_code == 200 and registered.get_json()["ok"], registered.get_json()
    assert [r.name for r in list_repositories()] == ["sales-dags"]
    twice = web.api("POST", "discovery/repositories/sales-dags/register", json={"verify": False}, as_="admin")
    assert twice.status_code == 409 and "registered, not proposed" in twice.get_json()["reason"]
    ignored = web.api("POST", "discovery/repositories/hr-dags/ignore", json={}, as_="editor")
    assert ignored.status_code == 200 and ignored.get_json()["status"] == "ignored"
    bad = web.api("POST", "discovery/scan", json={"apply": "yes"}, as_="editor")
    assert bad.status_code == 422
    assert web.api("POST", "discovery/scan", json={"source": "nope"}, as_="editor").status_code == 404


def test_the_system_dag_parses_with_its_schedule(dagops_env, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW__DAGOPS__DISCOVERY_SCHEDULE", "15 * * * *")
    bag = DagBag(dag_folder=str(paths.meta_dags_dir() / "dagops_discover.py"))
    assert bag.import_errors == {}
    dag = bag.dags["dagops_discover"]
    assert set(dag.task_dict) == {"discover"} and dag.catchup is False and dag.max_active_runs == 1
    assert dag.schedule.expression == "15 * * * *"


def test_the_system_dag_skips_without_a_source_and_scans_with_one(github, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import AirflowSkipException

    dag = DagBag(dag_folder=str(paths.meta_dags_dir() / "dagops_discover.py")).dags["dagops_discover"]
    callable_ = dag.task_dict["discover"].python_callable
    context = {"dag_run": type("Run", (), {"conf": {}})()}
    monkeypatch.setattr(sys.modules[callable_.__module__], "get_current_context", lambda: context)
    with pytest.raises(AirflowSkipException, match="no discovery source is configured"):
        callable_()
    discovery.configure([source("github", name="acme")])
    assert callable_() == {"sources": ["acme"]}
    assert len(discovery.list_discovered()) == 2
