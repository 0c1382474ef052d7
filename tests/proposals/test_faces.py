"""POST /repositories/{name}/proposals and `dagops propose`: 201 with the branch and PR; 422 / exit 2 when refused."""

from __future__ import annotations

from airflow_dagops.events import feed as events
from tests.proposals.conftest import BROKEN_DAG, GOOD_DAG


def _body(path="dags/proposed.py", content=GOOD_DAG):
    return {"files": [{"path": path, "content": content}], "title": "Add a DAG", "description": "From a chat."}


def test_rest_proposal_is_created(published, fake_host, web):
    answer = web.api("POST", "repositories/team/proposals", json=_body(), as_="editor")
    assert answer.status_code == 201, answer.get_json()
    data = answer.get_json()
    assert data["branch"] == f"dagops/proposal-{data['proposal_id']}" and data["pr_url"].startswith("https://")
    assert data["actor"] == "editor"
    assert f"refs/heads/{data['branch']}" in published.branches()
    assert fake_host.calls[0]["body"]["head"] == data["branch"]
    assert web.api("GET", f"proposals/{data['proposal_id']}").get_json()["commit"] == data["commit"]


def test_rest_refusals_are_422_and_push_nothing(published, fake_host, web):
    before = published.branches()
    for path in ("../evil.py", "/abs.py", "dags\\x.py"):
        answer = web.api("POST", "repositories/team/proposals", json=_body(path))
        assert answer.status_code == 422 and answer.get_json()["error"]["code"] == "invalid_input", path
    broken = web.api("POST", "repositories/team/proposals", json=_body(content=BROKEN_DAG))
    assert broken.status_code == 422
    error = broken.get_json()["error"]
    assert error["code"] == "proposal_refused"
    assert any(f["file"] == "dags/proposed.py" for f in error["details"]["findings"])
    assert error["details"]["proposal_id"] >= 1
    assert web.api("POST", "repositories/team/proposals", json={"title": "x"}).status_code == 422
    assert web.api("POST", "repositories/nope/proposals", json=_body()).status_code == 404
    assert web.api("POST", "repositories/team/proposals", json=_body(), as_="reader").status_code == 403
    assert published.branches() == before and fake_host.calls == []


def test_cli_propose(published, fake_host, cli, tmp_path):
    dag = tmp_path / "proposed.py"
    dag.write_text(GOOD_DAG)
    result = cli("propose", "team", str(dag), "--title", "Add a DAG", "--path-prefix", "dags/")
    assert result.exit_code == 0, result.output
    assert "dagops/proposal-1" in result.output and "https://git.example.com/pull/1" in result.output
    assert published.git("show", "dagops/proposal-1:dags/proposed.py")


def test_cli_refusals_exit_2_and_push_nothing(published, fake_host, cli, tmp_path, monkeypatch):
    before = published.branches()
    broken = tmp_path / "broken.py"
    broken.write_text(BROKEN_DAG)
    refused = cli("propose", "team", str(broken), "--title", "Broken", "--path-prefix", "dags")
    assert refused.exit_code == 2 and "dags/broken.py" in refused.output
    good = tmp_path / "good.py"
    good.write_text(GOOD_DAG)
    assert cli("propose", "team", str(good), "--title", "Escape", "--path-prefix", "../").exit_code == 2
    assert cli("propose", "team", str(good), "--title", "Abs", "--path-prefix", "/etc").exit_code == 2
    monkeypatch.setenv("AIRFLOW__DAGOPS__PROPOSAL_MAX_FILE_SIZE", "10")
    assert cli("propose", "team", str(good), "--title", "Big", "--path-prefix", "dags").exit_code == 2
    assert published.branches() == before and fake_host.calls == []
    assert [e["outcome"] for e in events.list_events(kinds=["proposal"])["events"]] == ["refused"]
