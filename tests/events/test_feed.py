"""The event feed: what syncs, validations, publishes and rollbacks record; order, cursor, filters; no secret."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from airflow_dagops.errors import InvalidInput
from airflow_dagops.events import feed as events
from airflow_dagops.releases import rollback as rollbacks
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Event, Repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source

TOKEN = "ghp_" + "S3cretT0ken" * 3  # noqa: S105 - a fake token searched for in every stored text


def _all() -> list[dict]:
    return events.list_events(limit=1000)["events"]


def _kinds(rows: list[dict]) -> list[tuple[str, str]]:
    return [(e["kind"], e["outcome"]) for e in rows]


def test_a_sync_records_validation_publish_and_sync_in_that_order(dagops_env, git_remote):
    remote = git_remote()
    add_repository("team", remote.url)
    outcome = sync_repository("team")
    assert outcome.status == "published", outcome.message

    rows = _all()
    assert _kinds(rows) == [("validation", "passed"), ("publish", "success"), ("sync", "success")]
    assert all(e["repository"] == "team" and e["release_id"] == outcome.release_id for e in rows)
    assert rows[1]["detail"]["commit"] == remote.head()
    assert rows[2]["actor"] == "cli"
    assert [e["id"] for e in rows] == sorted(e["id"] for e in rows)


def test_a_broken_commit_records_failed_validation_and_sync_and_no_publish(dagops_env, git_remote):
    remote = git_remote()
    add_repository("team", remote.url)
    sync_repository("team")
    first = _all()[-1]["id"]
    remote.commit("broken", {"dags/broken.py": "def broken(:  # an Airflow DAG\n"})
    assert sync_repository("team").status == "failed"

    rows = events.list_events(after=first)["events"]
    assert _kinds(rows) == [("validation", "failed"), ("sync", "failed")]
    assert "broken.py" in str(rows[0]["detail"]["errors"])
    assert rows[1]["detail"]["error_code"] == "validation_failed"


def test_rollback_and_an_unchanged_manual_sync_are_recorded(dagops_env, git_remote):
    remote = git_remote()
    add_repository("team", remote.url)
    sync_repository("team")
    remote.commit("second", {"dags/other.py": dag_source("other")})
    sync_repository("team")
    rollbacks.rollback("team", actor="alice")
    sync_repository("team", trigger="manual")

    rollback = events.list_events(kinds=["rollback"])["events"]
    assert len(rollback) == 1 and rollback[0]["actor"] == "alice"
    assert rollback[0]["summary"].startswith("team: rolled back to")
    syncs = events.list_events(kinds=["sync"])["events"]
    outcomes = [(e["outcome"], e["actor"]) for e in syncs]
    # The manual sync after the rollback finds the head validated (not rejected) and says so: "unchanged".
    assert outcomes == [("success", "cli"), ("success", "cli"), ("unchanged", "manual")]


def test_a_rolled_back_transaction_leaves_no_event(dagops_env):
    with pytest.raises(RuntimeError):
        with session_scope() as session:
            events.record("publish", repository="x", actor="t", outcome="success", summary="never", session=session)
            raise RuntimeError("the work failed")
    with session_scope() as session:
        events.record("publish", repository="x", actor="t", outcome="success", summary="kept", session=session)
        assert session.scalars(select(Event)).all() == []  # not before the commit
    assert [e["summary"] for e in _all()] == ["kept"]


def test_the_events_of_one_transaction_are_written_together_once_it_commits(dagops_env):
    from sqlalchemy import event as sa_event
    from sqlalchemy.engine import Engine

    commits: list[object] = []

    def count(connection) -> None:
        commits.append(connection)

    sa_event.listen(Engine, "commit", count)
    try:
        with session_scope() as session:
            session.add(Repository(name="x", url="file:///x", ref="main", namespace="x"))
            events.record("publish", repository="x", actor="t", outcome="success", summary="first", session=session)
            events.record("sync", repository="x", actor="t", outcome="success", summary="second", session=session)
    finally:
        sa_event.remove(Engine, "commit", count)
    assert len(commits) == 2  # the work's own transaction, then one for both of its events
    assert [e["summary"] for e in _all()] == ["first", "second"]  # in the order they were recorded


def test_recording_never_raises_into_the_caller(dagops_env, monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN", "sqlite:////proc/no-such-dir/state.db")
    events.record("sync", repository="x", actor="t", outcome="failed", summary="lost")  # no exception
    events.record("no-such-kind", repository="x", actor="t", outcome="?", summary="refused")
    assert "could not record a sync event" in caplog.text
    assert "unknown kind" in caplog.text


def _seed(count: int, **fields) -> list[int]:
    for index in range(count):
        values = {"repository": "a", "actor": "t", "outcome": "success", "summary": f"event {index}", **fields}
        events.record(values.pop("kind", "sync"), **values)
    return [e["id"] for e in _all()]


def test_the_cursor_pages_through_every_event_once_in_order(dagops_env):
    ids = _seed(7)
    seen, cursor, pages = [], None, 0
    while True:
        page = events.list_events(after=cursor, limit=3)
        seen += [e["id"] for e in page["events"]]
        pages += 1
        if page["next_cursor"] is None:
            break
        assert page["next_cursor"] == page["events"][-1]["id"]
        cursor = page["next_cursor"]
    assert seen == ids and pages == 3
    assert events.list_events(after=ids[-1]) == {"events": [], "next_cursor": None}
    # exactly a full last page: no empty page after it
    assert events.list_events(after=ids[0], limit=6)["next_cursor"] is None


def test_filters_by_repository_kind_and_time(dagops_env):
    _seed(2, repository="a", kind="sync")
    _seed(1, repository="b", kind="publish")
    _seed(1, repository="a", kind="proposal")
    assert {e["repository"] for e in events.list_events(repository="b")["events"]} == {"b"}
    assert [e["kind"] for e in events.list_events(repository="a", kinds=["sync", "proposal"])["events"]] == [
        "sync",
        "sync",
        "proposal",
    ]
    with session_scope() as session:  # one event from yesterday
        old = session.scalars(select(Event).order_by(Event.id)).first()
        old.created_at = datetime.now(timezone.utc) - timedelta(days=1)
    hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    assert len(events.list_events(since=hour_ago)["events"]) == 3
    assert [e["id"] for e in events.list_events(until=hour_ago.isoformat())["events"]] == [old.id]
    # a time with another offset means the same instant
    assert len(events.list_events(since=hour_ago.astimezone(timezone(timedelta(hours=5))))["events"]) == 3


@pytest.mark.parametrize(
    "bad",
    [{"kinds": ["nope"]}, {"since": "yesterday"}, {"limit": 0}, {"limit": 5000}, {"after": -1}],
)
def test_bad_queries_are_refused(dagops_env, bad):
    with pytest.raises(InvalidInput):
        events.list_events(**bad)


def test_no_secret_is_stored(dagops_env):
    events.record(
        "sync",
        repository="a",
        actor="t",
        outcome="failed",
        summary=f"fetch of https://bot:{TOKEN}@git.example.com/team.git failed",
        detail={
            "error": f"HTTP 401 with Authorization: Bearer {TOKEN}; token {TOKEN}",
            "nested": [{"url": "https://oauth2:glpat-abcdefghijklmnopqrstu@gitlab.example.com/x.git"}],
            "config": "password=hunter2secret api_key: 12345abcdef",
        },
    )
    stored = str(_all())
    for secret in (TOKEN, "glpat-abcdefghijklmnopqrstu", "hunter2secret", "12345abcdef", "bot:"):
        assert secret not in stored
    assert "git.example.com/team.git" in stored  # the useful part stays


def test_a_failed_fetch_with_a_credentialed_remote_records_no_secret(dagops_env, git_remote):
    remote = git_remote()
    add_repository("team", remote.url)
    with session_scope() as session:  # as if the URL had been stored with a password (it never is)
        session.scalar(select(Repository)).url = f"https://user:{TOKEN}@127.0.0.1:1/team.git"
    sync_repository("team", trigger="manual")
    rows = _all()
    assert rows and rows[-1]["kind"] == "sync" and rows[-1]["outcome"] == "failed"
    assert TOKEN not in str(rows)
