"""The REST routes behind the DAG Repositories page's newer sections: a repository's proposals and its newest
events (promotion, release tests and files left out come from routes that existed before: GET .../promotion and
the release objects' `tests` and `hidden_files`)."""

# ruff: noqa: F811 - the proposal fixtures are imported from tests/proposals/conftest.py, then named by the test

from __future__ import annotations

from tests.proposals.conftest import GOOD_DAG, bare_remote, published  # noqa: F401 - fixtures


def _propose(web, title: str) -> dict:
    body = {"files": [{"path": "dags/proposed.py", "content": GOOD_DAG}], "title": title}
    answer = web.api("POST", "repositories/team/proposals", json=body, as_="editor")
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_a_repositorys_proposals_and_newest_events_newest_first(published, fake_host, web):
    first = _propose(web, "First proposal")
    second = _propose(web, "Second proposal")

    listed = web.api("GET", "repositories/team/proposals", as_="reader")
    assert listed.status_code == 200, listed.get_json()
    items = listed.get_json()["items"]
    assert [p["proposal_id"] for p in items] == [second["proposal_id"], first["proposal_id"]]
    assert items[0]["title"] == "Second proposal" and items[0]["branch"] == second["branch"]
    assert items[0]["actor"] == "editor" and items[0]["files"][0]["path"] == "dags/proposed.py"

    feed = web.api("GET", "repositories/team/events?limit=3", as_="reader").get_json()
    assert feed["total"] == 3
    ids = [event["id"] for event in feed["events"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    newest = feed["events"][0]
    assert newest["kind"] == "proposal" and "Second proposal" in newest["summary"]
    kinds = {event["kind"] for event in web.api("GET", "repositories/team/events").get_json()["events"]}
    assert {"sync", "publish", "proposal"} <= kinds, kinds


def test_unknown_repositories_and_bad_limits_are_refused(published, web):
    for path in ("repositories/nope/proposals", "repositories/nope/events"):
        answer = web.api("GET", path)
        assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found", path
    for limit in ("0", "201", "many"):
        answer = web.api("GET", f"repositories/team/events?limit={limit}")
        assert answer.status_code == 422 and answer.get_json()["error"]["code"] == "invalid_query", limit
    assert web.api("GET", "repositories/team/events", as_=None).status_code == 401
