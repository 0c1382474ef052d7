"""Pull-request checks, end to end on loopback: a signed pull/merge request webhook queues a check and a
dagops_validate run; the check (what the task runs) fetches the head from a git server, validates it
without publishing, and reports commit statuses to a fake GitHub / GitLab API that records the calls."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select, text

from airflow_dagops.checks import service as checks
from airflow_dagops.git.mirror import TRACKED_REF
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.db import get_engine, session_scope
from airflow_dagops.store.models import Base, CheckRun
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source
from tests.helpers.servers import start_fake_api, start_git_server
from tests.webhooks import payloads
from tests.webhooks.conftest import GLOBAL_SECRET, env_connection

TOKEN = "ghp_fAkEt0kEn5ecr3tValue000111222333"
BASE_URL = "https://airflow.example.com"
REFS = {"github": "refs/pull/{n}/head", "gitlab": "refs/merge-requests/{n}/head", "gitea": "refs/pull/{n}/head"}


@pytest.fixture
def provider_api():
    fake = start_fake_api()
    yield fake
    fake.server.shutdown()


@pytest.fixture
def git_server(tmp_path):
    served = start_git_server(tmp_path / "served")
    yield served
    served.server.shutdown()


@pytest.fixture
def team(hooks, git_remote, git_server, provider_api, monkeypatch):
    """Repository `team` served over HTTP at /acme/dags.git, with a connection holding the token and the
    fake API's URL; Airflow's base URL set so check links are absolute."""
    monkeypatch.setenv("AIRFLOW__DAGOPS__ALLOWED_PROTOCOLS", "https:http:ssh:git:file")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    env_connection(monkeypatch, "team_git", conn_type="git", password=TOKEN, extra={"api_url": provider_api.url})
    remote = git_remote({"dags/a.py": dag_source("a")})
    git_server.publish(remote.path, "acme/dags.git", "main")
    url = git_server.url("acme/dags.git")
    add_repository("team", url, conn_id="team_git")
    return remote, url


def _open_pull_request(remote, git_server, provider: str, number: int, files: dict) -> str:
    """Commit `files` on a feature branch and publish it where the host keeps pull request heads."""
    remote.git("checkout", "-q", "-b", f"feature-{number}", "main")
    sha = remote.commit(f"feature {number}", files)
    remote.git("checkout", "-q", "main")
    git_server.publish(remote.path, "acme/dags.git", f"{sha}:{REFS[provider].format(n=number)}")
    return sha


def _deliver_pull_request(hooks, provider, url, number, sha, **kwargs):
    response = hooks.deliver(
        provider, payloads.pull_request(provider, url, number, sha, **kwargs), event=payloads.PULL_EVENT[provider]
    )
    return response


def _validate_runs() -> list[dict]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(select(DagRun.run_id, DagRun.conf).where(DagRun.dag_id == "dagops_validate")).all()
    return [{"run_id": r, "conf": json.loads(c) if isinstance(c, str) else c} for r, c in rows]


@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea"])
def test_a_good_pull_request_goes_pending_then_success(hooks, team, git_server, provider_api, provider):
    remote, url = team
    sha = _open_pull_request(remote, git_server, provider, 7, {"dags/b.py": dag_source("b")})
    response = _deliver_pull_request(hooks, provider, url, 7, sha)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["status"] == "queued"
    check = body["checks"][0]
    assert check["status"] == "queued" and check["head_sha"] == sha and check["reported"] is True
    assert check["ref"] == REFS[provider].format(n=7)
    run = next(r for r in _validate_runs() if r["run_id"] == check["airflow_run_id"])
    assert run["conf"] == {"check_run": check["id"]}

    result = checks.run_check(check["id"])  # what the dagops_validate task does
    assert result["status"] == "success" and result["reported"] is True, result
    assert result["summary"]["errors"] == 0 and result["description"] == "Passed"

    calls = provider_api.calls
    states = [call.body["state"] for call in calls]
    expected = {"github": ["pending", "pending", "success"], "gitea": ["pending", "pending", "success"]}
    assert states == expected.get(provider, ["pending", "running", "success"])
    path = {
        "github": f"/repos/acme/dags/statuses/{sha}",
        "gitea": f"/repos/acme/dags/statuses/{sha}",
        "gitlab": f"/projects/acme%2Fdags/statuses/{sha}",
    }[provider]
    context_key = "name" if provider == "gitlab" else "context"
    for call in calls:
        assert call.path == path
        assert call.body[context_key] == "dagops/validate"
        assert call.body["target_url"] == f"{BASE_URL}/pluginsv2/dagops/checks/{check['id']}"
        scheme = "token" if provider == "gitea" else "Bearer"
        assert call.headers["Authorization"] == f"{scheme} {TOKEN}"
    assert [c.body["description"] for c in calls] == ["Queued for validation", "Validating", "Passed"]


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_a_broken_pull_request_is_reported_as_failure_with_counts(hooks, team, git_server, provider_api, provider):
    remote, url = team
    broken = {
        "dags/b.py": "def broken(:  # an Airflow DAG\n",
        "dags/c.py": "x = (  # an Airflow DAG\n",
        "dags/d.py": "y = )  # an Airflow DAG\n",
    }
    sha = _open_pull_request(remote, git_server, provider, 3, broken)
    check = _deliver_pull_request(hooks, provider, url, 3, sha).get_json()["checks"][0]
    result = checks.run_check(check["id"])
    assert result["status"] == "failure"
    assert result["description"] == "3 errors in 3 files"
    assert {f["file"] for f in result["findings"] if f["severity"] == "error"} == {
        "dags/b.py",
        "dags/c.py",
        "dags/d.py",
    }
    last = provider_api.calls[-1]
    assert last.body["state"] == ("failed" if provider == "gitlab" else "failure")
    assert last.body["description"] == "3 errors in 3 files" and last.path.endswith(f"/statuses/{sha}")
    assert get_repository("team").live_commit is None  # a check never publishes anything


def test_a_check_leaves_the_sync_alone(hooks, team, git_server, provider_api, dagops_env):
    """The head is fetched into a ref of the check's own and exported outside the releases folder."""
    from airflow_dagops import paths
    from airflow_dagops.git.runner import run_git

    remote, url = team
    published = sync_repository("team")
    assert published.status == "published"
    mirror = paths.mirror_dir("team")
    tracked_before = run_git(["-C", str(mirror), "rev-parse", TRACKED_REF]).stdout.strip()
    releases_before = sorted(p.name for p in paths.namespace_releases_dir("team").iterdir())

    sha = _open_pull_request(remote, git_server, "github", 9, {"dags/b.py": dag_source("b")})
    check = _deliver_pull_request(hooks, "github", url, 9, sha).get_json()["checks"][0]
    assert checks.run_check(check["id"])["status"] == "success"

    assert run_git(["-C", str(mirror), "rev-parse", TRACKED_REF]).stdout.strip() == tracked_before
    refs = run_git(["-C", str(mirror), "for-each-ref", "--format=%(refname)"]).stdout.decode()
    assert checks.CHECK_REFS not in refs  # the check's ref is gone again
    assert sorted(p.name for p in paths.namespace_releases_dir("team").iterdir()) == releases_before
    assert not any((dagops_env.dagops_home / "tmp").iterdir())  # the temporary export is removed
    assert get_repository("team").live_commit == published.commit


def test_a_failed_report_is_recorded_never_raised_and_holds_no_token(hooks, team, git_server, provider_api):
    remote, url = team
    provider_api.status = 401
    sha = _open_pull_request(remote, git_server, "github", 4, {"dags/b.py": dag_source("b")})
    response = _deliver_pull_request(hooks, "github", url, 4, sha)
    assert response.status_code == 202  # the webhook is answered whatever the Git host says
    check = response.get_json()["checks"][0]
    assert check["reported"] is False and "401" in check["report_error"] and "repo:status" in check["report_error"]
    provider_api.server.shutdown()
    provider_api.server.server_close()  # now unreachable
    result = checks.run_check(check["id"])
    assert result["status"] == "success" and result["reported"] is False
    assert "cannot reach the github API" in result["report_error"]
    assert TOKEN not in json.dumps(result)


def test_a_pull_request_webhook_with_a_bad_signature_starts_nothing(hooks, team, git_server, provider_api):
    remote, url = team
    sha = _open_pull_request(remote, git_server, "github", 5, {"dags/b.py": dag_source("b")})
    runs_before = len(_validate_runs())
    payload = payloads.pull_request("github", url, 5, sha)
    response = hooks.deliver("github", payload, event="pull_request", secret="wrong-secret")
    assert response.status_code == 401
    with session_scope() as session:
        assert session.scalars(select(CheckRun)).all() == []
    assert provider_api.calls == [] and len(_validate_runs()) == runs_before


def test_pull_requests_that_need_no_check_are_ignored(hooks, team, git_server, provider_api):
    remote, url = team
    sha = _open_pull_request(remote, git_server, "gitlab", 6, {"dags/b.py": dag_source("b")})
    cases = [
        ("github", {"action": "closed"}, "brings no new commits"),
        ("github", {"fork": True}, "forks"),
        ("github", {"base": "develop"}, "target branch 'develop'"),
        ("gitlab", {"action": "update"}, "brings no new commits"),  # a title edit: no `oldrev`
    ]
    for provider, options, reason in cases:
        response = _deliver_pull_request(hooks, provider, url, 6, sha, **options)
        assert response.status_code == 202 and response.get_json()["status"] == "ignored", options
        assert reason in response.get_json()["reason"], (options, response.get_json())
    assert provider_api.calls == []
    first = _deliver_pull_request(hooks, "gitlab", url, 6, sha).get_json()["checks"][0]
    again = _deliver_pull_request(hooks, "gitlab", url, 6, sha, action="reopen").get_json()["checks"][0]
    assert again["id"] == first["id"] and again["duplicate"] is True  # a head is checked once


def test_the_check_report_needs_an_airflow_login_and_holds_no_token(
    api, hooks, team, git_server, provider_api, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    remote, url = team
    sha = _open_pull_request(remote, git_server, "github", 8, {"dags/b.py": "def broken(:  # an Airflow DAG\n"})
    check = _deliver_pull_request(hooks, "github", url, 8, sha).get_json()["checks"][0]
    checks.run_check(check["id"], progress=print)  # as the task does: its output is the task log

    assert api.api("GET", f"checks/{check['id']}", as_=None).status_code == 401
    response = api.api("GET", f"checks/{check['id']}", as_="reader")
    assert response.status_code == 200
    report = response.get_json()
    assert report["status"] == "failure" and report["findings"][0]["file"] == "dags/b.py"
    assert report["links"]["airflow_run"].endswith(f"/dags/dagops_validate/runs/{check['airflow_run_id']}")
    assert api.api("GET", "checks/999999").status_code == 404

    seen = [
        response.get_data(as_text=True),
        api.api("GET", "openapi.json").get_data(as_text=True),
        caplog.text,
        capsys.readouterr().out,
        json.dumps(_validate_runs()),
        _dump_state_db(),
    ]
    assert all(TOKEN not in text_ for text_ in seen)


def _dump_state_db() -> str:
    """Every row of every dagops table, as text."""
    rows = []
    with get_engine().connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows += [repr(tuple(row)) for row in connection.execute(text(f"SELECT * FROM {table.name}"))]
    return "\n".join(rows)


def test_the_webhook_secret_is_in_no_answer_log_or_row(hooks, team, git_server, caplog):
    caplog.set_level(logging.DEBUG)
    remote, url = team
    sha = _open_pull_request(remote, git_server, "github", 2, {"dags/b.py": dag_source("b")})
    answers = [
        _deliver_pull_request(hooks, "github", url, 2, sha).get_data(as_text=True),
        hooks.deliver("github", payloads.push("github", url, sha)).get_data(as_text=True),
        hooks.deliver("github", payloads.push("github", url, sha), secret="bad").get_data(as_text=True),
    ]
    assert all(GLOBAL_SECRET not in text_ for text_ in [*answers, caplog.text, _dump_state_db()])


def test_the_dagops_validate_system_dag(dagops_env):
    from airflow.dag_processing.dagbag import DagBag

    from airflow_dagops import paths

    bag = DagBag(dag_folder=str(paths.meta_dags_dir() / "dagops_validate.py"))
    assert bag.import_errors == {}
    dag = bag.dags["dagops_validate"]
    assert type(dag.timetable).__name__ == "NullTimetable"  # schedule=None: only webhooks trigger it
    assert dag.catchup is False and dag.is_paused_upon_creation is False and set(dag.task_dict) == {"check"}
    assert "system" in dag.tags


def test_a_check_whose_airflow_run_died_is_closed_as_error(api, hooks, team, git_server, provider_api):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    remote, url = team
    sha = _open_pull_request(remote, git_server, "github", 9, {"dags/b.py": dag_source("b")})
    check = _deliver_pull_request(hooks, "github", url, 9, sha).get_json()["checks"][0]
    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id="dagops_validate", run_id=check["airflow_run_id"]).one()
        run.state = DagRunState.FAILED  # e.g. the worker died before the validate task started
    report = api.api("GET", f"checks/{check['id']}").get_json()
    assert report["status"] == "error" and "see its task log" in report["error"]
