"""Read-only queries of the state DB without the ORM: what `dagops` reads show, at the cost of a query.

Why apart from the ORM: a CLI read is a new process, and importing SQLAlchemy alone takes about a quarter of a
second of CPU on a 2-core machine, its ORM and models.py another 0.15 s, more than everything else a read does
(BENCHMARKS.md (j), issue 19 "Fast CLI"). On SQLite, the default state DB, these reads go through Python's own
sqlite3 and load no SQLAlchemy at all; on any other database they run the same SQL through SQLAlchemy Core's
`text()` on db.py's engine (the SQL is plain, with `:name` parameters that both take).

Rows come back as `Record`s: attribute access like the ORM's objects, JSON, time and flag columns decoded as the
ORM would (SQLite keeps them as text: the column's declared type says which), so store/views.py shapes them into
the same answers. Writes and everything else keep the ORM. tests/store/test_reads.py holds both to the same
answers.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from airflow_dagops import settings
from airflow_dagops.errors import InvalidInput, NotFound
from airflow_dagops.statuses import SyncRunStatus
from airflow_dagops.store.schema import VERSION_TABLE, checked_urls, head_from_files, unavailable
from airflow_dagops.store.values import iso_time
from airflow_dagops.store.views import RepositoryInfo, release_dict, shape_repository_info, sync_run_dict

# SQLite's declared column types (what models.py's JSON, DateTime and Boolean create) and how a stored value reads.
_DECODE: dict[str, Callable[[Any], Any]] = {
    "JSON": lambda value: json.loads(value) if isinstance(value, str) else value,
    "DATETIME": lambda value: datetime.fromisoformat(value) if isinstance(value, str) else value,
    "BOOLEAN": bool,
}


class Record:
    """One row, read like an ORM object (`release.commit_sha`); `findings` and such are set by the query that
    reads them."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class Reader:
    """`SELECT * FROM <table> <where>` as Records, on one connection and one snapshot of the DB."""

    def __init__(self, execute: Callable[[str, dict], tuple[list[str], list]], *, declared_types: bool) -> None:
        self._execute = execute
        self._declared_types = declared_types  # SQLite: decode by declared type; other drivers decode themselves
        self._decoders: dict[str, dict[str, Callable[[Any], Any]]] = {}

    def rows(self, table: str, where: str = "", **params: Any) -> list[Any]:
        names, found = self._execute(f"SELECT * FROM {table} {where}", params)  # noqa: S608 (our table names)
        decoders = self._decoders_of(table)
        return [
            Record(
                {
                    name: decoders[name](value) if value is not None and name in decoders else value
                    for name, value in zip(names, row, strict=True)
                }
            )
            for row in found
        ]

    def first(self, table: str, where: str = "", **params: Any) -> Any | None:
        found = self.rows(table, f"{where} LIMIT 1", **params)
        return found[0] if found else None

    def tuples(self, sql: str, **params: Any) -> list[tuple]:
        """Rows of a query of columns that need no decoding (counts, names, ids)."""
        return [tuple(row) for row in self._execute(sql, params)[1]]

    def scalar(self, sql: str, **params: Any) -> Any:
        found = self.tuples(sql, **params)
        return found[0][0] if found else None

    def time(self, value: datetime) -> Any:
        """A time as a parameter compared with a time column: on SQLite the text SQLAlchemy stores there (UTC, no
        zone, six digits of microseconds; sqlite3 would write another form), elsewhere the time itself."""
        if not self._declared_types:
            return value
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")

    def _decoders_of(self, table: str) -> dict[str, Callable[[Any], Any]]:
        if not self._declared_types:
            return {}
        if table not in self._decoders:
            _, columns = self._execute(f"PRAGMA table_info({table})", {})
            self._decoders[table] = {column[1]: _DECODE[column[2]] for column in columns if column[2] in _DECODE}
        return self._decoders[table]


@contextmanager
def reading(url: str | None = None) -> Iterator[Reader]:
    """A Reader on the state DB, its schema migrated first if it is behind (as every face does)."""
    url = url or settings.sql_alchemy_conn()
    path = sqlite_path(url)
    if path is None:
        with _core_reader(url) as reader:
            yield reader
        return
    if url not in checked_urls and not path.exists():
        _migrate(url)
    try:
        connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    except sqlite3.Error as error:
        raise unavailable(url, str(error)) from error
    try:
        connection.execute("BEGIN")  # one snapshot for every query of this read
        _check_schema(connection, url)
        yield Reader(lambda sql, params: _sqlite_execute(connection, sql, params), declared_types=True)
    except sqlite3.OperationalError as error:  # locked past the busy timeout, unreadable, ...
        raise unavailable(url, str(error)) from error
    finally:
        connection.close()


def sqlite_path(url: str) -> Path | None:
    """The file of a plain SQLite URL (`sqlite:///relative` or `sqlite:////absolute`, as `[dagops]
    sql_alchemy_conn` defaults to); None for anything else (another database, driver options, memory): SQLAlchemy
    reads those."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix) and len(url) > len(prefix) and "?" not in url:
            return Path(unquote(url[len(prefix) :]))
    return None


def _sqlite_execute(connection: sqlite3.Connection, sql: str, params: dict) -> tuple[list[str], list]:
    cursor = connection.execute(sql, params)
    return [column[0] for column in cursor.description or ()], cursor.fetchall()


def _check_schema(connection: sqlite3.Connection, url: str) -> None:
    """Migrate when the schema is behind (through db.py, as every face does), at most one check per process."""
    if url in checked_urls:
        return
    try:
        stored = [row[0] for row in connection.execute(f"SELECT version_num FROM {VERSION_TABLE}")]  # noqa: S608
    except sqlite3.OperationalError:  # no version table: a new or foreign file
        stored = []
    if head_from_files() is None or stored != [head_from_files()]:
        connection.execute("ROLLBACK")  # let the migration write
        _migrate(url)
        connection.execute("BEGIN")
    checked_urls.add(url)


def _migrate(url: str) -> None:
    from airflow_dagops.store import db  # lazy: migrating loads alembic and the ORM's engine; a read at head does not

    db.ensure_schema(url)
    checked_urls.add(url)


@contextmanager
def _core_reader(url: str) -> Iterator[Reader]:
    from airflow_dagops.store import db  # lazy: SQLAlchemy's engine, only for a state DB other than a SQLite file

    with db.read_connection(url) as connection:
        yield core_reader(connection)


def core_reader(connection: Any) -> Reader:
    """A Reader over a SQLAlchemy connection or ORM session, in its transaction: for a use case that holds one
    already (alerts judge health in the transaction that reads their state)."""
    from sqlalchemy import text

    def execute(sql: str, params: dict) -> tuple[list[str], list]:
        result = connection.execute(text(sql), params)
        return list(result.keys()), list(result.all()) if result.returns_rows else []

    dialect = connection.get_bind().dialect if hasattr(connection, "get_bind") else connection.dialect  # a session
    return Reader(execute, declared_types=dialect.name == "sqlite")


# -- what faces show about repositories (the same answers as repositories/info.py's) -------------------------------
def list_repositories() -> list[RepositoryInfo]:
    with reading() as reader:
        return [repository_info(reader, repo) for repo in reader.rows("dagops_repository", "ORDER BY priority, name")]


def get_repository(name: str) -> RepositoryInfo:
    with reading() as reader:
        return repository_info(reader, repository_row(reader, name))


def repository_history(name: str, *, limit: int = 10) -> dict:
    """Recent sync runs, releases (with findings) and deploy events of one repository."""
    with reading() as reader:
        repo = repository_row(reader, name)
        newest = "WHERE repository_id = :id ORDER BY id DESC LIMIT :limit"
        runs = reader.rows("dagops_sync_run", newest, id=repo.id, limit=limit)
        releases = reader.rows("dagops_release", newest, id=repo.id, limit=limit)
        _attach_findings(reader, releases)
        events = reader.rows("dagops_deploy_event", newest, id=repo.id, limit=limit)
        return {
            "sync_runs": [sync_run_dict(run) for run in runs],
            "releases": [release_dict(rel, with_findings=True, pinned_id=repo.pinned_release_id) for rel in releases],
            "deploy_events": [
                {
                    "id": e.id,
                    "from_release_id": e.from_release_id,
                    "to_release_id": e.to_release_id,
                    "actor": e.actor,
                    "reason": e.reason,
                    "created_at": iso_time(e.created_at),
                }
                for e in events
            ],
        }


def one_of(name: str, values: Iterable[str]) -> tuple[str, dict[str, str]]:
    """`IN (...)` of these values as named parameters (`:name0, :name1`) and their values, for `where` clauses."""
    params = {f"{name}{i}": str(value) for i, value in enumerate(values)}
    return f"IN ({', '.join(':' + key for key in params)})", params


def has_open_sync_runs(name: str | None = None) -> bool:
    """Is a sync run (of one repository, or any) queued or running in Airflow? Only then must its state be asked
    of Airflow before a status is shown (sync/runs.py `reconcile_sync_runs`)."""
    active, params = one_of("s", SyncRunStatus.active())
    sql = f"SELECT COUNT(*) FROM dagops_sync_run WHERE status {active} AND airflow_run_id IS NOT NULL"  # noqa: S608
    if name is not None:
        sql += " AND repository_id IN (SELECT id FROM dagops_repository WHERE name = :name)"
        params["name"] = name
    with reading() as reader:
        return bool(reader.scalar(sql, **params))


def repository_row(reader: Reader, name: str) -> Any:
    """The `dagops_repository` row of `name`, or NotFound."""
    repo = reader.first("dagops_repository", "WHERE name = :name", name=name)
    if repo is None:
        raise NotFound(f"no repository named {name!r} is registered; see `dagops repos list`")
    return repo


def repository_info(reader: Reader, repo: Any) -> RepositoryInfo:
    """views.repository_info's three look-ups: the live release, the last sync run, and for a 'rejected' one the
    failed run that refused the same commit."""
    live = reader.first("dagops_release", "WHERE id = :id", id=repo.live_release_id) if repo.live_release_id else None
    last = reader.first("dagops_sync_run", "WHERE repository_id = :id ORDER BY id DESC", id=repo.id)
    reason = last
    if last is not None and last.status == SyncRunStatus.REJECTED and last.commit_sha is not None:
        failed = reader.first(
            "dagops_sync_run",
            "WHERE repository_id = :id AND status = :failed AND commit_sha = :sha ORDER BY id DESC",
            id=repo.id,
            failed=SyncRunStatus.FAILED.value,
            sha=last.commit_sha,
        )
        reason = failed or last
    return shape_repository_info(repo, live=live, last=last, reason=reason)


def _attach_findings(reader: Reader, releases: list[Any]) -> None:
    """Each release's findings, in the order they were recorded (the ORM relationship's `order_by`)."""
    for release in releases:
        release.findings = reader.rows("dagops_finding", "WHERE release_id = :id ORDER BY id", id=release.id)


# -- releases (the same answers as releases/history.py's) --------------------------------------------------------
MAX_ID = 2**31 - 1  # ids are 32-bit integers in every supported database


def list_releases(name: str, *, limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    """One page of a repository's releases, newest first, and how many it has."""
    with reading() as reader:
        repo = repository_row(reader, name)
        total = reader.scalar("SELECT COUNT(*) FROM dagops_release WHERE repository_id = :id", id=repo.id)
        page = "WHERE repository_id = :id ORDER BY id DESC LIMIT :limit OFFSET :offset"
        releases = reader.rows("dagops_release", page, id=repo.id, limit=limit, offset=offset)
        return [release_dict(r, repository=name, pinned_id=repo.pinned_release_id) for r in releases], total or 0


def get_release(release_id: int) -> dict:
    with reading() as reader:
        found = reader.first("dagops_release", "WHERE id = :id", id=release_id) if 0 < release_id <= MAX_ID else None
        if found is None:
            raise NotFound(f"no release with id {release_id}")
        repo = reader.first("dagops_repository", "WHERE id = :id", id=found.repository_id)
        if repo is None:  # deleted meanwhile, with its repository
            raise NotFound(f"Repository {found.repository_id} not found")
        _attach_findings(reader, [found])
        return release_dict(found, with_findings=True, repository=repo.name, pinned_id=repo.pinned_release_id)


def deploy_log(name: str, limit: int = 20) -> list[dict]:
    """The deploy events of a repository, newest first: when, from which commit to which, who, and why."""
    with reading() as reader:
        repo = repository_row(reader, name)
        events = reader.rows(
            "dagops_deploy_event",
            "WHERE repository_id = :id ORDER BY id DESC LIMIT :limit",
            id=repo.id,
            limit=max(1, limit),
        )
        deployed = "SELECT {} FROM dagops_deploy_event WHERE repository_id = :id"
        commits = {
            release.id: release.commit_sha
            for release in reader.rows(
                "dagops_release",
                f"WHERE id IN ({deployed.format('from_release_id')}) OR id IN ({deployed.format('to_release_id')})",
                id=repo.id,
            )
        }
        return [
            {
                "id": e.id,
                "at": iso_time(e.created_at),
                "from_release_id": e.from_release_id,
                "to_release_id": e.to_release_id,
                "from_commit": commits.get(e.from_release_id),
                "to_commit": commits.get(e.to_release_id),
                "actor": e.actor,
                "reason": e.reason,
                "diff": e.diff,
            }
            for e in events
        ]


def release_ref(ref: int | str) -> tuple[str, int | str]:
    """A release named by its id (`("id", 12)`) or by a commit sha of 7 or more hex digits (`("sha", "ab12cd3")`)."""
    text_ref = str(ref).strip().lower()
    if isinstance(ref, int) or (text_ref.isdigit() and len(text_ref) < 7):
        return "id", int(text_ref)
    if len(text_ref) >= 7 and all(c in "0123456789abcdef" for c in text_ref):
        return "sha", text_ref
    raise InvalidInput(f"{ref!r} is neither a release id nor a commit sha (7+ hex digits)")


def only_match(found: list[Any], repository: str, ref: int | str) -> Any:
    """The one release `ref` names among those found, or why there is none."""
    if not found:
        raise NotFound(f"repository {repository!r} has no release {ref!r}; see its releases list")
    if len(found) > 1:
        raise InvalidInput(f"{ref!r} matches {len(found)} releases; give more digits of the commit sha")
    return found[0]


def find_release(name: str, ref: int | str) -> Any:
    """A repository's release named by id or commit sha (store/queries.py `find_release`, without the ORM)."""
    kind, value = release_ref(ref)
    with reading() as reader:
        repo = repository_row(reader, name)
        param: int | str
        if kind == "sha":  # a prefix: LIKE's wildcards cannot occur in hex digits
            where, param = "commit_sha LIKE :ref", f"{value}%"
        else:
            where, param = "id = :ref", int(value) if 0 < int(value) <= MAX_ID else 0  # no row has id 0
        found = reader.rows("dagops_release", f"WHERE repository_id = :id AND {where}", id=repo.id, ref=param)
        return only_match(found, name, ref)


# -- the event feed (events/feed.py records it; every face lists it through these) ----------------------------------
EVENT_KINDS = ("sync", "validation", "publish", "rollback", "deploy", "promotion", "proposal", "dag_run", "experiment")
MAX_EVENTS = 1000  # the largest page


def list_events(
    *,
    repository: str | None = None,
    kinds: Iterable[str] | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> dict:
    """Events oldest first, after the cursor `after`; `next_cursor` is set when more events follow."""
    wanted = _event_kinds(kinds)
    since, until = parse_time(since, "since"), parse_time(until, "until")
    limit = _page_size(limit)
    if after is not None and not 0 <= int(after) <= MAX_ID:
        raise InvalidInput("cursor must be a non-negative event id")
    with reading() as reader:
        where, params = _event_filters(reader, repository, wanted, since, until, after)
        rows = reader.rows("dagops_event", f"{where} ORDER BY id LIMIT :limit", limit=limit + 1, **params)
    page = [event_dict(row) for row in rows[:limit]]
    return {"events": page, "next_cursor": page[-1]["id"] if len(rows) > limit else None}


def recent_events(repository: str, *, limit: int = 30) -> list[dict]:
    """A registered repository's newest events, newest first (the page's feed; readers that poll page with
    `list_events`)."""
    limit = _page_size(limit)
    with reading() as reader:
        repository_row(reader, repository)  # NotFound for a name nobody registered
        newest = "WHERE repository = :name ORDER BY id DESC LIMIT :limit"
        return [event_dict(row) for row in reader.rows("dagops_event", newest, name=repository, limit=limit)]


def event_dict(row: Any) -> dict:
    """An event as every face shows it (a `dagops_event` row, ORM or plain)."""
    return {
        "id": row.id,
        "created_at": iso_time(row.created_at),
        "kind": row.kind,
        "repository": row.repository,
        "release_id": row.release_id,
        "actor": row.actor,
        "outcome": row.outcome,
        "summary": row.summary,
        "detail": row.detail or {},
    }


def parse_time(value: datetime | str | None, what: str = "time") -> datetime | None:
    """An ISO 8601 time (a naive one is UTC); None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as err:
            raise InvalidInput(f"{what} must be an ISO 8601 time such as 2026-11-28T10:00:00Z, got {value!r}") from err
    # Stored times are UTC (SQLite keeps no zone): compare in UTC.
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _event_filters(
    reader: Reader,
    repository: str | None,
    kinds: list[str],
    since: datetime | None,
    until: datetime | None,
    after: int | None,
) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of a feed query, and its parameters."""
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if repository:
        conditions.append("repository = :repository")
        params["repository"] = repository
    if kinds:
        among, kind_params = one_of("kind", kinds)
        conditions.append(f"kind {among}")
        params.update(kind_params)
    if since is not None:
        conditions.append("created_at >= :since")
        params["since"] = reader.time(since)
    if until is not None:
        conditions.append("created_at < :until")
        params["until"] = reader.time(until)
    if after is not None:
        conditions.append("id > :after")
        params["after"] = int(after)
    return (f"WHERE {' AND '.join(conditions)}" if conditions else ""), params


def _event_kinds(kinds: Iterable[str] | None) -> list[str]:
    wanted = [k.strip() for k in (kinds or []) if k and k.strip()]
    unknown = sorted(set(wanted) - set(EVENT_KINDS))
    if unknown:
        raise InvalidInput(f"unknown event kind {', '.join(unknown)}; one of {', '.join(EVENT_KINDS)}")
    return wanted


def _page_size(limit: int) -> int:
    if not 1 <= int(limit) <= MAX_EVENTS:
        raise InvalidInput(f"limit must be from 1 to {MAX_EVENTS}")
    return int(limit)
