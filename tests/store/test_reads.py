"""store/reads.py answers as the ORM does: the same RepositoryInfo, history, releases, deploy log and event feed, on
every backend (SQLite through Python's sqlite3, PostgreSQL through SQLAlchemy Core), for repositories in every state."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import JSON, Boolean, DateTime, select

from airflow_dagops.errors import InvalidInput, NotFound
from airflow_dagops.statuses import ReleaseStatus, SyncRunStatus
from airflow_dagops.store import reads
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Base, DeployEvent, Event, Finding, Release, Repository, SyncRun
from airflow_dagops.store.views import release_dict, repository_info, sync_run_dict

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
SHA_A, SHA_B, SHA_C = "a1" * 20, "a1a1a1a" + "b" * 33, "c3" * 20  # A and B share 7 digits


@pytest.fixture
def store(dagops_env, tmp_path):
    """`live`: two releases (one with findings and JSON columns set), pinned, deploy events; `refused`: a failed
    run and a 'rejected' retry of the same commit; `off`: disabled, never synced."""
    with session_scope() as session:
        live = Repository(name="live", url="https://example.com/live.git", namespace="live", priority=5)
        refused = Repository(name="refused", url="https://example.com/r.git", namespace="refused", alerts={"on": []})
        off = Repository(name="off", url="https://example.com/off.git", namespace="off", enabled=False, priority=5)
        session.add_all([live, refused, off])
        session.flush()
        first, second = (
            Release(
                repository_id=live.id,
                namespace="live",
                commit_sha=sha,
                ref="main",
                status=status,
                path=str(tmp_path / sha),
                message=f"commit {sha[:4]}\n\nbody",
                committed_at=T0,
                validation_summary={"errors": errors, "warnings": 1, "dags": [{"dag_id": "d", "file": "d.py"}]},
                hidden_files={"x.py": "owned elsewhere"} if errors else None,
                tests={"outcome": "passed", "modules": [{"module": "t.py", "junit_xml": "<x/>"}]},
            )
            for sha, status, errors in ((SHA_A, ReleaseStatus.RETIRED, 2), (SHA_B, ReleaseStatus.LIVE, 0))
        )
        session.add_all([first, second])
        session.flush()
        first.findings = [Finding(rule=f"r{i}", severity="error", file="d.py", line=i, message="m") for i in (2, 1)]
        live.live_release_id = live.pinned_release_id = second.id
        session.add_all(
            [
                SyncRun(repository_id=live.id, trigger="cli", status=SyncRunStatus.SUCCESS, commit_sha=SHA_B,
                        started_at=T0, ended_at=T0 + timedelta(seconds=3)),
                DeployEvent(repository_id=live.id, from_release_id=None, to_release_id=first.id, actor="a",
                            reason="sync", diff={"dags_added": ["d"]}, created_at=T0),
                DeployEvent(repository_id=live.id, from_release_id=first.id, to_release_id=second.id, actor="b",
                            reason="pin", created_at=T0 + timedelta(hours=1)),
                SyncRun(repository_id=refused.id, trigger="schedule", status=SyncRunStatus.FAILED, commit_sha=SHA_C,
                        error="Validation failed: 3 errors in 2 files: ...", started_at=T0),
                SyncRun(repository_id=refused.id, trigger="schedule", status=SyncRunStatus.REJECTED, commit_sha=SHA_C,
                        started_at=T0 + timedelta(minutes=1)),
            ]
        )  # fmt: skip
    return dagops_env


def test_repositories_read_as_the_orm_reads_them(store):
    with session_scope() as session:
        rows = session.scalars(select(Repository).order_by(Repository.priority, Repository.name))
        expected = [repository_info(session, repo) for repo in rows]
    assert [info.name for info in expected] == ["live", "off", "refused"]
    assert reads.list_repositories() == expected
    assert reads.get_repository("refused") == expected[2]
    assert expected[2].status_message == "Validation failed: 3 errors in 2 files"  # the failed run, not the retry


def test_history_releases_and_deploy_log_read_as_the_orm_reads_them(store):
    with session_scope() as session:
        repo = session.scalar(select(Repository).where(Repository.name == "live"))
        releases = session.scalars(select(Release).order_by(Release.id.desc())).all()
        runs = session.scalars(select(SyncRun).where(SyncRun.repository_id == repo.id)).all()
        expected_releases = [release_dict(r, repository="live", pinned_id=repo.pinned_release_id) for r in releases]
        with_findings = [release_dict(r, with_findings=True, pinned_id=repo.pinned_release_id) for r in releases]
        expected_runs = [sync_run_dict(run) for run in runs]
    history = reads.repository_history("live")
    assert history["releases"] == with_findings and history["sync_runs"] == expected_runs
    assert [f["rule"] for f in history["releases"][1]["findings"]] == ["r2", "r1"]  # in the order recorded
    assert reads.list_releases("live", limit=1, offset=1) == (expected_releases[1:], 2)
    first = reads.get_release(expected_releases[1]["id"])
    assert first == {**with_findings[1], "repository": "live"} and first["tests"]["modules"] == [{"module": "t.py"}]
    log = reads.deploy_log("live")
    assert [(e["reason"], e["from_commit"], e["to_commit"]) for e in log] == [
        ("pin", SHA_A, SHA_B),
        ("sync", None, SHA_A),
    ]
    assert log[1]["diff"] == {"dags_added": ["d"]} and log[1]["at"] == T0.isoformat()


def test_a_release_is_found_by_id_or_commit_prefix(store):
    ids = {r["commit"]: r["id"] for r in reads.list_releases("live")[0]}
    assert reads.find_release("live", ids[SHA_B]).commit_sha == SHA_B
    assert reads.find_release("live", SHA_B[:8].upper()).id == ids[SHA_B]
    with pytest.raises(InvalidInput, match="matches 2 releases"):
        reads.find_release("live", SHA_A[:7])
    with pytest.raises(InvalidInput, match="neither a release id"):
        reads.find_release("live", "main")
    for missing in ("9999", str(2**40)):
        with pytest.raises(NotFound, match="has no release"):
            reads.find_release("live", missing)
    with pytest.raises(NotFound, match="no repository named 'nope'"):
        reads.get_repository("nope")


def test_open_sync_runs_are_seen(store):
    assert not reads.has_open_sync_runs() and not reads.has_open_sync_runs("refused")
    with session_scope() as session:
        repo = session.scalar(select(Repository).where(Repository.name == "refused"))
        session.add(SyncRun(repository_id=repo.id, trigger="webhook", status=SyncRunStatus.QUEUED, airflow_run_id="r1"))
    assert reads.has_open_sync_runs() and reads.has_open_sync_runs("refused") and not reads.has_open_sync_runs("live")


# -- the event feed: the ORM query events/feed.py ran before, against reads.list_events ------------------------------
WHOLE_MINUTE = T0.replace(microsecond=0) + timedelta(minutes=1)  # a time sqlite3 would write without microseconds


def _orm_feed(*, repository=None, kinds=(), since=None, until=None, after=None) -> list[dict]:
    query = select(Event).order_by(Event.id)
    if repository:
        query = query.where(Event.repository == repository)
    if kinds:
        query = query.where(Event.kind.in_(kinds))
    if since is not None:
        query = query.where(Event.created_at >= since)
    if until is not None:
        query = query.where(Event.created_at < until)
    if after is not None:
        query = query.where(Event.id > after)
    with session_scope() as session:
        return [reads.event_dict(row) for row in session.scalars(query)]


@pytest.fixture
def feed(store):
    """Four events: JSON details full, empty and NULL, a repository-less one, and times on the filters' bounds."""
    with session_scope() as session:
        session.add_all(
            [
                Event(created_at=T0, kind="sync", repository="live", release_id=1, actor="cli", outcome="success",
                      summary="s", detail={"commit": SHA_A, "errors": [{"line": 1}, None]}),
                Event(created_at=WHOLE_MINUTE, kind="publish", repository="live", actor="a", outcome="success",
                      summary="p"),
                Event(created_at=T0 + timedelta(hours=1), kind="dag_run", repository=None, actor="dagops",
                      outcome="failed", summary="r", detail={}),
                Event(created_at=T0 + timedelta(hours=2), kind="sync", repository="refused", actor="b",
                      outcome="failed", summary="f"),
            ]
        )  # fmt: skip
    return [event["id"] for event in _orm_feed()]


@pytest.mark.parametrize(
    "filters,count",
    [
        ({}, 4),
        ({"repository": "live"}, 2),
        ({"kinds": ["sync", "dag_run"]}, 3),
        ({"since": T0}, 4),  # the bound itself is in, to the microsecond
        ({"since": T0 + timedelta(microseconds=1)}, 3),
        ({"since": WHOLE_MINUTE}, 3),
        ({"until": WHOLE_MINUTE}, 1),  # the bound itself is out
        ({"until": T0 + timedelta(hours=1), "repository": "live", "kinds": ["publish"]}, 1),
    ],
    ids=repr,
)
def test_the_event_feed_reads_as_the_orm_reads_it(feed, filters, count):
    expected = _orm_feed(**filters)
    assert len(expected) == count
    assert reads.list_events(**filters) == {"events": expected, "next_cursor": None}


def test_the_event_feed_pages_and_a_repository_reads_its_newest_first(feed):
    first, second = reads.list_events(limit=2), reads.list_events(after=feed[1], limit=2)
    assert first == {"events": _orm_feed()[:2], "next_cursor": feed[1]}
    assert second == {"events": _orm_feed(after=feed[1]), "next_cursor": None}
    assert first["events"][0]["detail"]["errors"] == [{"line": 1}, None] and first["events"][1]["detail"] == {}
    assert first["events"][0]["created_at"] == T0.isoformat()
    assert reads.recent_events("live", limit=1) == _orm_feed(repository="live")[::-1][:1]
    with pytest.raises(NotFound, match="no repository named 'nope'"):
        reads.recent_events("nope")


def test_every_decoded_column_is_declared_as_sqlite_reads_it(dagops_env):
    """SQLite keeps JSON, times and flags as text and numbers; reads.py decodes them by the declared column type,
    so every such column of models.py must be declared with one of those types."""
    declared = {JSON: "JSON", DateTime: "DATETIME", Boolean: "BOOLEAN"}
    if reads.sqlite_path(dagops_env.db_url) is None:
        pytest.skip("the declared types are SQLite's")
    with reads.reading() as reader:
        for table in Base.metadata.sorted_tables:
            types = {row[1]: row[2] for row in reader.tuples(f"PRAGMA table_info({table.name})")}
            for column in table.columns:
                kind = next((name for cls, name in declared.items() if isinstance(column.type, cls)), None)
                if kind is not None:
                    assert types[column.name] == kind, f"{table.name}.{column.name}"
