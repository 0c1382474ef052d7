"""Discovery: scan Git host organizations for repositories that match a rule, propose them, register them.

    configure (dagops.yaml `discovery:`) -> scan -> record (new / back / removed) -> register (on --apply, or the
    source's `register: true`)

- A source is an organization URL (`https://github.com/acme`, `https://gitlab.example.com/data`, a Gitea org), a
  provider (guessed from the host when it can be), a connection whose password is the token, a rule
  (rules.py), and whether matches are registered or only proposed. Sources are set by dagops.yaml, written by an
  admin: applying it attaches the connection to the organization's host (`conn_origin`), and a scan sends the token
  nowhere else (the connection's `api_url` extra, set by whoever edits the connection, counts too).
- A scan lists the organization (hosts.py), keeps what matches, and records it in `dagops_discovered_repository`:
  a new match is `proposed`; one seen before is refreshed; one that matched before and does not now (deleted,
  renamed, archived, its topic taken off) is flagged `removed`, and its registration, if any, stays: nothing is
  ever deleted silently. A `removed` one that matches again is proposed again; `ignored` stays ignored.
- Registering a proposed match is `add_repository` with the derived name and namespace (rules.py), the default
  branch and the source's connection, checked with `git ls-remote` first unless `verify` is off. A match whose URL
  a registered repository already has is marked registered as that repository instead. A match that cannot be
  registered (its name taken by another repository, no valid name, a clone URL on another host than the
  organization's) stays proposed with the `reason`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, select

from airflow_dagops.airflow.connections import find_connection
from airflow_dagops.discovery import hosts
from airflow_dagops.discovery.listing import discovered_dict as _discovered_dict
from airflow_dagops.discovery.listing import list_discovered as list_discovered  # read without the ORM
from airflow_dagops.discovery.listing import list_sources as list_sources  # read without the ORM
from airflow_dagops.discovery.rules import PREFIX_PATTERN, Rule, derive_name
from airflow_dagops.errors import (
    ConfigInvalid,
    ConnectionMissing,
    DagOpsError,
    InvalidInput,
    NotFound,
)
from airflow_dagops.git.credentials import attached_origin, check_credential_host, url_origin
from airflow_dagops.git.host_api import PROVIDERS, HostClient, default_api, provider_of
from airflow_dagops.git.urls import host_of, normalize_repo_url, path_of
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.safety import display_url, validate_conn_id, validate_name
from airflow_dagops.statuses import DiscoveryStatus
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import DiscoveredRepository, DiscoverySource, Repository, utcnow

log = logging.getLogger(__name__)

SOURCE_KEYS = ("name", "url", "provider", "conn_id", "rule", "register", "namespace_prefix")


@dataclass(frozen=True)
class Source:
    name: str
    provider: str
    url: str
    conn_id: str | None
    conn_origin: str | None
    rule: Rule
    register: bool
    namespace_prefix: str | None

    @property
    def organization(self) -> str:
        return path_of(self.url) or ""


# -- sources (the `discovery:` block of dagops.yaml) ---------------------------------------------------------------
def clean_source(spec: dict) -> Source:
    """One entry of the `discovery:` block, checked; InvalidInput names what is wrong."""
    if not isinstance(spec, dict):
        raise InvalidInput("a discovery source is a mapping (name, url, provider, conn_id, rule, register)")
    unknown = sorted(set(spec) - set(SOURCE_KEYS))
    if unknown:
        raise InvalidInput(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(SOURCE_KEYS)})")
    name = validate_name(spec.get("name"), what="discovery source name")  # type: ignore[arg-type]
    url = spec.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")) or not path_of(url) or "@" in url:
        raise InvalidInput(
            f"url: {url!r} is not an organization's web address without credentials (https://github.com/acme, "
            "https://gitlab.example.com/group/subgroup, https://gitea.example.com/org)"
        )
    url = url.rstrip("/")
    provider = spec.get("provider") or provider_of(url)  # the host's name tells, as for every Git host call
    if provider not in PROVIDERS:
        raise InvalidInput(f"provider: one of {', '.join(PROVIDERS)} (cannot be told from {display_url(url)})")
    if provider != "gitlab" and "/" in (path_of(url) or ""):
        raise InvalidInput(f"url: a {provider} organization is one name (https://host/ORG), not {path_of(url)!r}")
    conn_id = validate_conn_id(spec.get("conn_id"))
    register = spec.get("register", False)
    if not isinstance(register, bool):
        raise InvalidInput("register: true (register matches) or false (only propose them)")
    prefix = spec.get("namespace_prefix") or None
    if prefix is not None and (not isinstance(prefix, str) or not PREFIX_PATTERN.match(prefix)):
        raise InvalidInput("namespace_prefix: up to 30 lower-case letters, digits, '-' or '_' (e.g. 'team-')")
    rule = Rule.from_dict(spec.get("rule"))
    return Source(name, provider, url, conn_id, attached_origin(conn_id, url), rule, register, prefix)


def configure(specs: list[dict], *, source: str = "dagops.yaml") -> list[str]:
    """Make the discovery sources match `specs` (the whole `discovery:` block): add, change, remove. Every entry is
    checked first (ConfigInvalid lists every problem); a removed source's discovered entries go with it (the
    repositories registered from them stay registered)."""
    problems: list[str] = []
    wanted: dict[str, Source] = {}
    for index, spec in enumerate(specs):
        try:
            cleaned = clean_source(spec)
        except DagOpsError as err:
            problems.append(f"{source}: discovery[{index}]: {err}")
            continue
        if cleaned.name in wanted:
            problems.append(f"{source}: discovery[{index}]: duplicate source name {cleaned.name!r}")
        wanted[cleaned.name] = cleaned
    if problems:
        raise ConfigInvalid(problems)
    done = []
    with session_scope() as session:
        rows = {row.name: row for row in session.scalars(select(DiscoverySource))}
        for name in sorted(rows.keys() - wanted.keys()):
            session.delete(rows[name])
            session.execute(delete(DiscoveredRepository).where(DiscoveredRepository.source == name))
            done.append(f"removed discovery source {name}")
        for name, wanted_source in wanted.items():
            values = {
                "provider": wanted_source.provider,
                "url": wanted_source.url,
                "conn_id": wanted_source.conn_id,
                "conn_origin": wanted_source.conn_origin,
                "rule": wanted_source.rule.to_dict(),
                "register": wanted_source.register,
                "namespace_prefix": wanted_source.namespace_prefix,
            }
            row = rows.get(name)
            if row is None:
                session.add(DiscoverySource(name=name, **values))
                done.append(
                    f"added discovery source {name} ({display_url(wanted_source.url)}: {wanted_source.rule.describe()})"
                )
            elif any(getattr(row, key) != value for key, value in values.items()):
                for key, value in values.items():
                    setattr(row, key, value)
                done.append(f"changed discovery source {name}")
    for line in done:
        log.info("%s: %s", source, line)
    return done


def configured() -> bool:
    with session_scope() as session:
        return session.scalar(select(DiscoverySource.id).limit(1)) is not None


def _load_sources(name: str | None) -> list[Source]:
    with session_scope() as session:
        query = select(DiscoverySource).order_by(DiscoverySource.name)
        if name is not None:
            query = query.where(DiscoverySource.name == name)
        rows = session.scalars(query).all()
        if name is not None and not rows:
            raise NotFound(
                f"no discovery source named {name!r}; see `dagops discover --list` (dagops.yaml `discovery:`)"
            )
        return [
            Source(
                row.name,
                row.provider,
                row.url,
                row.conn_id,
                row.conn_origin,
                Rule.from_dict(row.rule),
                row.register,
                row.namespace_prefix,
            )
            for row in rows
        ]


# -- scanning -------------------------------------------------------------------------------------------------------
def scan(source: str | None = None, *, apply: bool = False, verify: bool = True) -> dict:
    """Scan every source (or `source`), record what matches, and register: every proposed match with `apply`,
    new ones of a source with `register: true`. A source that fails is reported with its error and the others go
    on; when every scanned source failed, the first error is raised (so one source's bad input is an error)."""
    sources = _load_sources(source)
    results, failures = [], []
    for each in sources:
        try:
            results.append(_scan_one(each, apply=apply, verify=verify))
        except DagOpsError as err:
            _set_error(each.name, str(err))
            failures.append(err)
            results.append({"source": each.name, "error": str(err), "code": err.code})
    if failures and len(failures) == len(sources):
        raise failures[0]
    return {"configured": bool(sources), "sources": results, "repositories": list_discovered(source)}


def _scan_one(source: Source, *, apply: bool, verify: bool) -> dict:
    client = _client(source)
    listed = hosts.list_repositories(client, source.organization)
    matches = []
    for repo in listed:
        if not source.rule.name_matches(repo.relative_name):
            continue
        topics = hosts.topics_of(client, repo) if source.rule.topics else repo.topics
        if not source.rule.topics_match(topics):
            continue
        if source.rule.require_file and not hosts.has_file(client, repo, source.rule.require_file):
            continue
        matches.append((repo, topics))
    changes = _record(source, matches)
    registered = register(source=source.name, verify=verify, only_new=not apply) if (apply or source.register) else []
    log.info(
        "discovery %s: %d listed, %d match (%d new, %d removed), %d registered",
        source.name,
        len(listed),
        len(matches),
        len(changes["new"]),
        len(changes["removed"]),
        len([r for r in registered if r["ok"]]),
    )
    return {"source": source.name, "listed": len(listed), "matched": len(matches), **changes, "registered": registered}


def _client(source: Source) -> HostClient:
    """The source's API and token; the token goes only to the organization's host (or the connection's api_url)."""
    token, api_url = "", None
    if source.conn_id:
        connection = find_connection(source.conn_id)
        if connection is None:
            raise ConnectionMissing(
                f"Airflow connection {source.conn_id!r} of discovery source {source.name!r} does not exist"
            )
        token = connection.password or ""
        api_url = (connection.extra_dejson or {}).get("api_url")
        if not api_url and url_origin(source.url) != source.conn_origin:
            check_credential_host(source.conn_id, source.url)
    api_url = api_url or default_api(source.provider, source.url)
    if not api_url:
        raise InvalidInput(
            f"cannot tell the {source.provider} API of {display_url(source.url)}; set `api_url` on the connection"
        )
    return HostClient(source.provider, str(api_url).rstrip("/"), token, conn_id=source.conn_id)


def _record(source: Source, matches: list) -> dict:
    """Write what the scan saw; returns the names that are new, back, and removed."""
    now = utcnow()
    new, back, removed = [], [], []
    with session_scope() as session:
        rows = {
            row.full_name: row
            for row in session.scalars(select(DiscoveredRepository).where(DiscoveredRepository.source == source.name))
        }
        registered = {
            (normalize_repo_url(url) or url): name
            for name, url in session.execute(select(Repository.name, Repository.url))
        }
        seen = set()
        for repo, topics in matches:
            seen.add(repo.full_name)
            row = rows.get(repo.full_name)
            name = derive_name(repo.relative_name, source.namespace_prefix)
            if row is None:
                row = DiscoveredRepository(
                    source=source.name, full_name=repo.full_name, status=DiscoveryStatus.PROPOSED, first_seen_at=now
                )
                session.add(row)
                new.append(repo.full_name)
            elif row.status == DiscoveryStatus.REMOVED:
                row.status, row.removed_at = DiscoveryStatus.PROPOSED, None
                back.append(repo.full_name)
            row.name, row.url, row.ref, row.topics, row.last_seen_at = (
                name or "",
                repo.clone_url,
                repo.default_branch,
                topics,
                now,
            )
            owner = registered.get(normalize_repo_url(repo.clone_url) or repo.clone_url)
            if owner is not None and row.status != DiscoveryStatus.IGNORED:
                row.status, row.repository, row.reason = DiscoveryStatus.REGISTERED, owner, None
            elif row.status == DiscoveryStatus.REGISTERED:  # someone removed its repository from dagops since
                row.status = DiscoveryStatus.IGNORED  # on purpose, presumably: not proposed (or registered) again
                row.reason = (
                    f"repository {row.repository!r} was removed from dagops; "
                    "`dagops discover --unignore NAME` proposes it again"
                )
                row.repository = None
            elif row.status == DiscoveryStatus.PROPOSED:
                row.reason = _blocker(session, source, row)
        for full_name, row in rows.items():
            if full_name not in seen and row.status not in (DiscoveryStatus.REMOVED, DiscoveryStatus.IGNORED):
                row.status, row.removed_at = DiscoveryStatus.REMOVED, now
                removed.append(full_name)
        source_row = session.scalar(select(DiscoverySource).where(DiscoverySource.name == source.name))
        if source_row is not None:
            source_row.last_scanned_at, source_row.last_error = now, None
    return {"new": new, "back": back, "removed": removed}


def _blocker(session, source: Source, row: DiscoveredRepository) -> str | None:
    """Why a proposed match cannot be registered as it is, or None."""
    if not row.name:
        return f"no valid repository name can be made of {row.full_name!r}; register it by hand with a name"
    if host_of(row.url) != host_of(source.url):
        return f"its clone URL {display_url(row.url)} is not on the organization's host; not registered"
    taken = session.scalar(
        select(Repository.name).where((Repository.name == row.name) | (Repository.namespace == row.name))
    )
    if row.id is None:
        session.flush()  # a new match gets its id: it comes after every match already recorded
    twin = session.scalar(  # two matches that derive one name: the first one seen keeps it
        select(DiscoveredRepository.full_name).where(
            DiscoveredRepository.name == row.name,
            DiscoveredRepository.id < row.id,
            DiscoveredRepository.status.in_([DiscoveryStatus.PROPOSED, DiscoveryStatus.REGISTERED]),
        )
    )
    if twin is not None:
        return f"the name {row.name!r} is derived from {twin!r} too, which was found first; register it by hand"
    if taken is not None:
        return (
            f"the name {row.name!r} is used by repository {taken!r} (another URL); register it by hand, named otherwise"
        )
    return None


def _set_error(name: str, message: str) -> None:
    with session_scope() as session:
        row = session.scalar(select(DiscoverySource).where(DiscoverySource.name == name))
        if row is not None:
            row.last_scanned_at, row.last_error = utcnow(), message[:2000]


# -- registering and ignoring ----------------------------------------------------------------------------------------
def register(
    names: list[str] | None = None, *, source: str | None = None, verify: bool = True, only_new: bool = False
) -> list[dict]:
    """Register proposed matches (all, those of `source`, or those named: derived name or full name). With
    `only_new`, matches with a `reason` are left alone (what a source's `register: true` does on each scan).
    Each outcome is reported; a failure leaves the match proposed with the reason."""
    with session_scope() as session:
        query = select(DiscoveredRepository, DiscoverySource.conn_id).join(
            DiscoverySource, DiscoverySource.name == DiscoveredRepository.source
        )
        if source is not None:
            query = query.where(DiscoveredRepository.source == source)
        rows = session.execute(query.order_by(DiscoveredRepository.id)).all()
        wanted = [
            (row.id, row.name, row.url, row.ref, conn_id)
            for row, conn_id in rows
            if (names is None or row.name in names or row.full_name in names)
            and row.status == DiscoveryStatus.PROPOSED
            and not (only_new and row.reason)
        ]
        if names is not None:
            known = {row.name for row, _ in rows} | {row.full_name for row, _ in rows}
            unknown = [name for name in names if name not in known]
            if unknown:
                raise NotFound(f"no discovered repository named {', '.join(map(repr, unknown))}; see `dagops discover`")
    outcomes = []
    for row_id, name, url, ref, conn_id in wanted:
        outcomes.append(_register_one(row_id, name, url, ref, conn_id, verify=verify))
    return outcomes


def _register_one(row_id: int, name: str, url: str, ref: str, conn_id: str | None, *, verify: bool) -> dict:
    with session_scope() as session:
        row = session.get(DiscoveredRepository, row_id)
        source = _load_sources(row.source)[0] if row is not None else None
        blocker = _blocker(session, source, row) if row is not None and source is not None else "gone"
    if blocker is None:
        try:
            add_repository(name, url, ref=ref, conn_id=conn_id, verify=verify)
        except DagOpsError as err:
            blocker = f"registration failed: {err}"
    with session_scope() as session:
        row = session.get(DiscoveredRepository, row_id)
        if row is not None:
            if blocker is None:
                row.status, row.repository, row.reason = DiscoveryStatus.REGISTERED, name, None
            else:
                row.reason = blocker
    if blocker is None:
        log.info("discovery registered %s (%s)", name, display_url(url))
    return {"name": name, "url": display_url(url), "ok": blocker is None, "reason": blocker}


def ignore(name: str, *, ignored: bool = True) -> dict:
    """Stop proposing a discovered repository (or, with `ignored=False`, propose it again)."""
    with session_scope() as session:
        row = session.scalar(
            select(DiscoveredRepository).where(
                (DiscoveredRepository.name == name) | (DiscoveredRepository.full_name == name)
            )
        )
        if row is None:
            raise NotFound(f"no discovered repository named {name!r}; see `dagops discover`")
        if ignored:
            row.status = DiscoveryStatus.IGNORED
        elif row.status == DiscoveryStatus.IGNORED:
            row.status = DiscoveryStatus.REGISTERED if row.repository else DiscoveryStatus.PROPOSED
            row.reason = None
        return _discovered_dict(row)
