"""GET /events and `dagops events`: the same feed, cursor pagination, filters, JSON lines, --follow."""

from __future__ import annotations

import json

from airflow_dagops.events import feed as events


def _seed() -> list[int]:
    for index, (repository, kind) in enumerate([("a", "sync"), ("b", "publish"), ("a", "proposal"), ("a", "sync")]):
        events.record(kind, repository=repository, actor="t", outcome="success", summary=f"event {index}")
    return [e["id"] for e in events.list_events()["events"]]


def test_the_rest_feed_pages_with_the_cursor_and_filters(web):
    ids = _seed()
    first = web.api("GET", "events?limit=2")
    assert first.status_code == 200, first.get_json()
    assert [e["id"] for e in first.get_json()["events"]] == ids[:2]
    cursor = first.get_json()["next_cursor"]
    second = web.api("GET", f"events?limit=2&cursor={cursor}", as_="reader").get_json()
    assert [e["id"] for e in second["events"]] == ids[2:] and second["next_cursor"] is None

    only_a = web.api("GET", "events?repository=a&kind=sync,proposal").get_json()["events"]
    assert [e["summary"] for e in only_a] == ["event 0", "event 2", "event 3"]
    repeated = web.api("GET", "events?kind=publish&kind=proposal").get_json()["events"]
    assert [e["kind"] for e in repeated] == ["publish", "proposal"]
    assert web.api("GET", "events?since=2000-01-01T00:00:00Z&until=2001-01-01T00:00:00Z").get_json()["events"] == []


def test_the_rest_feed_refuses_bad_queries_and_strangers(web):
    for query in ("kind=nope", "cursor=-1", "cursor=x", "limit=0", "since=yesterday"):
        answer = web.api("GET", f"events?{query}")
        assert answer.status_code == 422, (query, answer.get_json())
    assert web.api("GET", "events", as_=None).status_code == 401
    assert "/events" in web.api("GET", "openapi.json").get_json()["paths"]


def test_the_cli_prints_lines_or_json_lines(cli):
    ids = _seed()
    result = cli("events", "--json", "--repository", "a")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [e["id"] for e in lines] == [ids[0], ids[2], ids[3]]
    text = cli("events", "--kind", "publish").output
    assert "publish" in text and "event 1" in text and "event 0" not in text
    assert cli("events", "--kind", "nope").exit_code == 2
    assert cli("events", "--since", "yesterday").exit_code == 2


def test_follow_polls_with_the_cursor_and_prints_each_event_once(cli):
    _seed()
    result = cli("events", "--json", "--follow", "--interval", "0.1", "--max-polls", "3", "--cursor", "1")
    assert result.exit_code == 0, result.output
    ids = [json.loads(line)["id"] for line in result.output.splitlines()]
    assert ids == sorted(set(ids)) and ids[0] == 2 and len(ids) == 3
