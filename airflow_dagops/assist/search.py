"""Search over the published DAGs of every namespace and the marketplace's packages, for assistants writing DAGs
that fit: "a backup to S3" finds the team's S3 DAGs and the connections they use.

The index is SQLite FTS5 (Python's sqlite3 has it): one row per DAG or package; columns for the name, tags,
documentation, task ids, operators, connections, schedule and where it lives; the porter tokenizer stems English
("backups" meets "backup"), identifiers are split into words (`S3CreateObjectOperator` -> "S3 Create Object
Operator"); ranking is FTS5's bm25 with a weight per column (a word in the dag_id or tags counts more than one in a
docstring). A plain-language query becomes an OR of its words without stop words, each quoted, so no FTS syntax of
the caller's reaches SQLite.

What is indexed comes from the live releases' files, read with `ast` (assist/extract.py: nothing is imported),
joined with the DAG list validation recorded (which knows dag_ids built at run time), and from the catalogs'
package metadata. The index file ($dagops_home/search/dags.sqlite) carries the fingerprint of the live set it was
built from (each repository's live release, each package's versions); a search whose live set differs rebuilds it
first (under a file lock, into a temporary file moved over the old one), so an answer never lags a publish and a
rebuild never runs when nothing changed. The index is a cache: deleting it only costs one rebuild.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock
from sqlalchemy import select

from airflow_dagops import settings
from airflow_dagops.assist.extract import DagFacts, dags_in_source, split_words
from airflow_dagops.errors import InvalidInput
from airflow_dagops.marketplace.listing import packages_by_name
from airflow_dagops.redaction import redact_text
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release, Repository

log = logging.getLogger(__name__)

INDEX_VERSION = 1  # part of the fingerprint: a new layout rebuilds every index
MAX_QUERY = 200
MAX_LIMIT = 50
MAX_FILE_SIZE = 512 * 1024  # bigger .py files are generated code, not DAGs to learn from
MAX_FILES = 5000  # per release
# Column, weight for bm25 (in the table's column order). The name and tags say what a DAG is; the operators and
# connections what it touches; the documentation is longest, so one of its words counts least.
COLUMNS = (
    ("name", 10.0),
    ("tags", 6.0),
    ("operators", 4.0),
    ("connections", 4.0),
    ("tasks", 3.0),
    ("doc", 2.0),
    ("schedule", 1.0),
    ("place", 1.0),
)
STOP_WORDS = frozenset(
    """a an and any are as at be by can do does dag dags for from get has have how i in into is it its me my of on
    or our some that the their them there this to us we what when where which with would you your""".split()
)


@dataclass
class Document:
    """One search result: a published DAG (kind `dag`) or a marketplace package (kind `package`)."""

    kind: str
    name: str  # the dag_id, or the package's name
    repository: str | None = None
    namespace: str | None = None
    file: str | None = None
    doc: str = ""
    tags: list[str] = field(default_factory=list)
    schedule: str | None = None
    owners: list[str] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)
    operators: list[str] = field(default_factory=list)
    connections: list[str] = field(default_factory=list)

    def columns(self) -> dict[str, str]:
        def words(items: Iterable[str]) -> str:
            return " ".join(f"{item} {split_words(item)}" for item in items)

        return {
            "name": words([self.name]),
            "tags": words(self.tags),
            "operators": words(op.lstrip("@") for op in self.operators),
            "connections": words(self.connections),
            "tasks": words(self.task_ids),
            "doc": self.doc,
            "schedule": self.schedule or "",
            "place": words(p for p in (self.repository, self.namespace, self.file) if p),
        }


def from_facts(facts: DagFacts, *, repository: str | None, namespace: str | None) -> Document:
    return Document(kind="dag", repository=repository, namespace=namespace, name=facts.dag_id, **_facts(facts))


def _facts(facts: DagFacts) -> dict:
    data = asdict(facts)
    data.pop("dag_id")
    return data


# -- the index ---------------------------------------------------------------------------------------------------
def build(path: Path, documents: Iterable[Document], fingerprint: str) -> int:
    """Write a new index at `path` (atomically: a temporary file moved over it); returns how many rows it has."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    names = ", ".join(name for name, _ in COLUMNS)
    count = 0
    with sqlite3.connect(temporary) as db:
        db.execute(
            f"CREATE VIRTUAL TABLE entry USING fts5({names}, payload UNINDEXED, "  # noqa: S608 - our own names
            "tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        rows = []
        for document in documents:
            columns = document.columns()
            rows.append([columns[name] for name, _ in COLUMNS] + [json.dumps(asdict(document))])
        placeholders = ", ".join("?" for _ in range(len(COLUMNS) + 1))
        db.executemany(f"INSERT INTO entry VALUES ({placeholders})", rows)  # noqa: S608 - placeholders only
        db.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
        count = len(rows)
    db.close()
    os.replace(temporary, path)
    return count


def fingerprint_of(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
        db.close()
    except sqlite3.Error:
        return None  # a damaged or half-written index: rebuilt
    return row[0] if row else None


def match_expression(text: str) -> str | None:
    """The FTS5 query for a plain-language one: its words, lower-case, without stop words, each quoted (so the
    caller's text is never FTS syntax), joined by OR; bm25 then ranks the rows matching more and rarer words first.
    None when no word is left."""
    words = [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP_WORDS]
    words = list(dict.fromkeys(words))
    return " OR ".join(f'"{w}"' for w in words) or None


def query(path: Path, text: str, *, limit: int = 10, kind: str | None = None) -> list[dict]:
    """The best matches of `text`, best first, each with its `score` (higher is better)."""
    expression = match_expression(text)
    if expression is None or not path.is_file():
        return []
    weights = ", ".join(str(weight) for _, weight in COLUMNS)
    sql = f"SELECT payload, bm25(entry, {weights}) AS rank FROM entry WHERE entry MATCH ? ORDER BY rank LIMIT ?"  # noqa: S608
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(sql, (expression, limit * 4 if kind else limit)).fetchall()
    db.close()
    results = []
    for payload, rank in rows:
        document = json.loads(payload)
        if kind and document["kind"] != kind:
            continue
        results.append({**document, "score": round(-rank, 3)})  # bm25: lower is better
    return results[:limit]


# -- the live set --------------------------------------------------------------------------------------------------
def index_path() -> Path:
    return settings.dagops_home() / "search" / "dags.sqlite"


def search(text: str, *, limit: int = 10, kind: str | None = None) -> list[dict]:
    """Search the published DAGs and the marketplace (kind: `dag`, `package` or None for both); the index is
    rebuilt first when what is live changed since it was built."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_QUERY:
        raise InvalidInput(f"a search query is 1 to {MAX_QUERY} characters of text")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    if kind not in (None, "dag", "package"):
        raise InvalidInput("kind is dag, package or empty (both)")
    path = index_path()
    refresh(path)
    return query(path, text, limit=limit, kind=kind)


def refresh(path: Path) -> bool:
    """Rebuild the index if the live set changed since it was built; returns whether it did."""
    current = live_fingerprint()
    if fingerprint_of(path) == current:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_suffix(".lock")), timeout=120):
        if fingerprint_of(path) == current:  # another process rebuilt it while this one waited
            return False
        count = build(path, live_documents(), current)
    log.info("search index rebuilt: %d DAGs and packages", count)
    return True


def live_fingerprint() -> str:
    with session_scope() as session:
        live = session.execute(
            select(Repository.name, Repository.namespace, Release.id, Release.commit_sha).join(
                Release, Release.id == Repository.live_release_id
            )
        ).all()
        packages = [
            (name, [(v.version, v.commit_sha) for v in package.versions])
            for name, package in sorted(packages_by_name(session).items())
        ]
    data = {"version": INDEX_VERSION, "live": sorted(tuple(row) for row in live), "packages": packages}
    return hashlib.sha256(json.dumps(data, default=str).encode()).hexdigest()


def live_documents() -> Iterator[Document]:
    with session_scope() as session:
        rows = (
            session.execute(
                select(
                    Repository.name,
                    Repository.namespace,
                    Release.path,
                    Release.validation_summary,
                    Release.hidden_files,
                )
                .join(Release, Release.id == Repository.live_release_id)
                .order_by(Repository.name)
            )
            .tuples()
            .all()
        )
        packages = [
            (name, dict(package.current.meta or {})) for name, package in sorted(packages_by_name(session).items())
        ]
    for name, namespace, path, summary, hidden in rows:
        yield from release_documents(Path(path), repository=name, namespace=namespace, summary=summary, hidden=hidden)
    for name, meta in packages:
        yield package_document(name, meta)


def release_documents(
    root: Path, *, repository: str | None, namespace: str | None, summary: dict | None = None, hidden=None
) -> list[Document]:
    """The DAGs of one release folder: read from its files, checked against the DAG list validation recorded
    (`summary["dags"]`, when the structure step ran): a dag_id only the files name is left out, one only the
    summary knows (built at run time) is added with what the summary says."""
    found: dict[str, Document] = {}
    for relative, source in _python_files(root, hidden or {}):
        for facts in dags_in_source(source, relative):
            found.setdefault(facts.dag_id, from_facts(facts, repository=repository, namespace=namespace))
    recorded = (summary or {}).get("dags")
    if recorded is None or (summary or {}).get("structure") is False:
        return [_scrubbed(d) for d in found.values()]
    documents = []
    for dag in recorded:
        if dag.get("file") in (hidden or {}):
            continue
        document = found.get(dag["dag_id"]) or Document(
            kind="dag", name=dag["dag_id"], repository=repository, namespace=namespace, file=dag.get("file")
        )
        document.tags = document.tags or list(dag.get("tags") or [])
        document.owners = document.owners or list(dag.get("owners") or [])
        document.schedule = document.schedule or dag.get("schedule")
        document.task_ids = document.task_ids or list(dag.get("task_ids") or [])
        documents.append(_scrubbed(document))
    return documents


def _python_files(root: Path, hidden: dict) -> Iterator[tuple[str, str]]:
    """(path relative to the release, text) of its Python files: links that resolve outside the release, folders
    starting with a dot, and oversized files are skipped."""
    real_root = os.path.realpath(root)
    count = 0
    for folder, dirs, files in os.walk(root):  # does not follow links to folders
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            full = os.path.join(folder, name)
            relative = os.path.relpath(full, root)
            real = os.path.realpath(full)
            if relative in hidden or os.path.commonpath([real_root, real]) != real_root:
                continue
            try:
                if os.path.getsize(real) > MAX_FILE_SIZE:
                    continue
                text = Path(real).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            count += 1
            if count > MAX_FILES:
                return
            yield relative, text


def package_document(name: str, meta: dict) -> Document:
    doc = "\n\n".join(str(meta.get(key) or "") for key in ("summary", "description")).strip()
    return _scrubbed(
        Document(
            kind="package",
            name=name,
            doc=doc,
            tags=[str(t) for t in meta.get("tags") or []],
            operators=[str(p) for p in meta.get("providers") or []],
        )
    )


def _scrubbed(document: Document) -> Document:
    """A DAG's documentation is the author's text: a secret written into it is masked before it is indexed."""
    document.doc = redact_text(document.doc)
    document.connections = [redact_text(c) for c in document.connections]
    return document
