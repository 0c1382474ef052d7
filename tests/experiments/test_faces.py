"""The faces of experiments: `dagops ab start|status|promote|stop`, the REST routes (auth, bad bodies, one-click
promotion) and the dagops_promote system DAG that checks them on schedule."""

from __future__ import annotations

import json

from airflow_dagops.experiments import service
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Experiment


def _count() -> int:
    with session_scope() as session:
        return session.query(Experiment).count()


def test_cli_start_status_promote_stop(dagops_env, candidate, cli):
    _remote, prod_id, candidate_id = candidate
    refused = cli("ab", "start", "team", "report", "--split", "70/40")
    assert refused.exit_code == 2 and "a 70 + b 40 adds up to 110, not 100" in refused.stderr
    assert cli("ab", "start", "team", "report", "--split", "70/30", "--percent", "30").exit_code == 2
    assert cli("ab", "start", "team", "report", "--split", "most").exit_code == 2
    assert _count() == 0

    started = cli("ab", "start", "team", "report", "--split", "70/30", "--min-runs", "4")
    assert started.exit_code == 0, started.output
    assert "Experiment 1 on report started: 70% A / 30% B of scheduled runs." in started.stdout
    assert "report__ab" in started.stdout and "namespace team--ab" in started.stdout

    shown = cli("ab", "status", "team")
    assert shown.exit_code == 0 and "#1 team report: running" in shown.stdout
    assert "no run of either variant has finished yet" in shown.stdout
    (row,) = json.loads(cli("ab", "status", "--json").stdout)
    assert (row["id"], row["variants"]["B"]["release_id"], row["rule"]["min_runs"]) == (1, candidate_id, 4)

    waiting = cli("ab", "promote", "team")
    assert waiting.exit_code == 1 and "has no winner yet" in waiting.stderr
    promoted = cli("ab", "promote", "team", "report", "--winner", "b", "--json")
    assert promoted.exit_code == 0, promoted.output
    assert json.loads(promoted.stdout)["status"] == "promoted"
    assert get_repository("team").live_release_id == candidate_id
    stopped = cli("ab", "stop", "team")
    assert stopped.exit_code == 1 and "runs no experiment" in stopped.stderr


def test_rest_routes(web, candidate):
    _remote, prod_id, candidate_id = candidate
    bad = web.api("POST", "repositories/team/experiments", json={"dag_id": "report", "split": {"a": 70, "b": 40}})
    assert bad.status_code == 422 and "adds up to 110, not 100" in bad.get_json()["error"]["message"]
    assert web.api("POST", "repositories/team/experiments", json={"split": "alternate"}).status_code == 422
    assert web.api("POST", "repositories/team/experiments", json={"dag_id": "report"}, as_="reader").status_code == 403
    assert web.api("POST", "repositories/team/experiments", json={"dag_id": "report"}, as_=None).status_code == 401
    assert _count() == 0

    created = web.api(
        "POST", "repositories/team/experiments", json={"dag_id": "report", "rule": {"min_runs": 3, "max_p": 0.1}}
    )
    assert created.status_code == 201, created.get_json()
    experiment = created.get_json()
    assert experiment["variants"]["B"]["dag_id"] == "report__ab" and experiment["rule"]["max_p"] == 0.1
    again = web.api("POST", "repositories/team/experiments", json={"dag_id": "report"})
    assert again.status_code == 409 and "already runs experiment" in again.get_json()["error"]["message"]

    listed = web.api("GET", "experiments", as_="reader")
    assert listed.status_code == 200 and [e["id"] for e in listed.get_json()["items"]] == [experiment["id"]]
    assert web.api("GET", "repositories/team/experiments", as_="reader").get_json()["items"][0]["status"] == "running"
    assert web.api("GET", f"experiments/{experiment['id']}", as_="reader").get_json()["dag_id"] == "report"
    assert web.api("GET", "experiments/999", as_="reader").status_code == 404

    assert web.api("POST", "repositories/team/experiments/promote", json={}).status_code == 409  # no verdict yet
    assert web.api("POST", "repositories/team/experiments/promote", json={"winner": "C"}).status_code == 422
    promote = "repositories/team/experiments/promote"
    assert web.api("POST", promote, json={"winner": "A"}, as_="reader").status_code == 403
    kept = web.api("POST", "repositories/team/experiments/promote", json={"winner": "A", "dag_id": "report"})
    assert kept.status_code == 200 and kept.get_json()["status"] == "kept"
    assert get_repository("team").live_release_id == prod_id
    assert web.api("POST", "repositories/team/experiments/stop", json={}).status_code == 409

    document = web.api("GET", "openapi.json").get_json()
    assert "/repositories/{name}/experiments/promote" in document["paths"]
    assert set(document["components"]["schemas"]["Experiment"]["properties"]["status"]["enum"]) == {
        "running",
        "promoted",
        "kept",
        "stopped",
        "aborted",
    }


def test_the_dagops_promote_system_dag_checks_experiments_too(dagops_env, candidate, monkeypatch):
    """The DAG's check calls both checks with one source factory; with an experiment running, its check asks the
    source (here: the Airflow API connection is missing, so the task would skip, naming it)."""
    from airflow.dag_processing.dagbag import DagBag

    from airflow_dagops import paths
    from airflow_dagops.errors import ConnectionMissing

    bag = DagBag(dag_folder=str(paths.meta_dags_dir() / "dagops_promote.py"))
    assert bag.import_errors == {}
    source = (paths.meta_dags_dir() / "dagops_promote.py").read_text()
    assert "experiments.check(source, names, actor=actor)" in source

    service.start("team", "report", actor="test")

    def no_connection():
        raise ConnectionMissing("Airflow connection 'dagops_airflow_api' does not exist")

    try:
        service.check(no_connection)
    except ConnectionMissing as missing:
        assert "dagops_airflow_api" in str(missing)
    else:
        raise AssertionError("a running experiment must ask the source")
