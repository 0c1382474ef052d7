"""The webhook use case: a Git host tells us about a push or a pull request; we sync or check.

    receive -> size limit -> verify -> parse -> dedupe -> match repositories -> act

The order matters, and is the same for every provider:

1. Size first (413): nothing else reads a body larger than `MAX_BODY`.
2. The global secret (the `[dagops] webhook_secret_conn_id` connection), when there is one, is checked
   over the raw bytes before any parsing: a stranger's body is never parsed.
3. Then the body is parsed. A malformed body is a 400 only for a sender whose signature verified;
   an unauthenticated one gets the same 401 as any other unauthenticated delivery.
4. When the global secret did not verify (or there is none), the payload's repository URLs select the
   candidate repositories, and each candidate's own secret (`webhook_conn_id`) is tried. The delivery
   may act only on the repositories whose secret verified. No secret verified: 401.
5. Dedupe by delivery id, after authentication (so a stranger cannot burn ids): a replay answers
   200 "duplicate" and starts nothing. The unique constraint on (provider, delivery id) is the guard,
   so two copies racing each other still start one thing. Then dedupe by the event itself
   (`Event.identity`: repository, ref, old and new head of a push; repository, number, action and head
   of a pull request): a captured, validly signed delivery re-sent under a new delivery id is the same
   event, answered "duplicate" too. The event's key is a row of the same table, `event:<sha256>`, under
   the same unique constraint and the same redelivery window (`KEEP_DELIVERIES`).
6. Act: a push to a tracked ref asks for a sync (coalesced: at most one running and one queued sync
   per repository); a pull/merge request queues a check. Anything else is 202 "ignored".

Every failure to authenticate answers the same 401, whichever part was wrong.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError

from airflow_dagops.airflow.connections import password_of
from airflow_dagops.errors import MalformedJson, NotFound, PayloadTooLarge, Unauthenticated
from airflow_dagops.git.urls import normalize_repo_url, url_keys
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Repository, WebhookDelivery, utcnow
from airflow_dagops.sync.runs import request_sync
from airflow_dagops.webhooks import PROVIDERS
from airflow_dagops.webhooks.payloads import Event, MalformedPayload, delivery_id, parse_event, parse_json
from airflow_dagops.webhooks.setup import global_secret_conn_id
from airflow_dagops.webhooks.setup import setup as setup  # read only (webhooks/setup.py)
from airflow_dagops.webhooks.signatures import verify

log = logging.getLogger(__name__)

KEEP_DELIVERIES = timedelta(days=30)
EVENT_KEY_PREFIX = "event:"  # delivery_id of the rows that record an event's identity, not a delivery
MAX_BODY = 1024 * 1024  # push payloads with many commits reach a few hundred KiB; GitHub caps at 25 MB
UNAUTHENTICATED = "missing or invalid webhook signature"


@dataclass
class Answer:
    """What the HTTP face sends back: a status and a JSON body."""

    status: int
    body: dict


@dataclass(frozen=True)
class _Repo:
    """The fields matching needs, read once per delivery."""

    name: str
    key: str | None
    ref: str
    enabled: bool
    pinned: bool
    webhook_conn_id: str | None


@dataclass
class _Outcome:
    outcome: str  # the delivery log's word: triggered / coalesced / queued / pong / ignored
    answer: Answer
    detail: dict = field(default_factory=dict)


# -- entry point -------------------------------------------------------------------------------------------
def receive(provider: str, headers: dict[str, str], body: bytes) -> Answer:
    """Handle one delivery. `headers` may use any case. Raises Unauthenticated (401), PayloadTooLarge (413),
    MalformedJson (400), NotFound (unknown provider) or AirflowUnavailable (503, nothing recorded)."""
    if provider not in PROVIDERS:
        raise NotFound(f"unknown webhook provider {provider!r}; one of {', '.join(PROVIDERS)}")
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"webhook bodies are limited to {MAX_BODY // 1024} KiB")
    headers = {key.lower(): value for key, value in headers.items()}
    verified_globally = verify(provider, headers, body, connection_secret(global_secret_conn_id()))
    try:
        payload = parse_json(body)
    except MalformedPayload as err:
        if verified_globally:
            raise MalformedJson(str(err)) from err
        raise Unauthenticated(UNAUTHENTICATED) from err
    event = parse_event(provider, headers, payload)
    repos = _matching_repositories(event)
    if not verified_globally:
        repos = [r for r in repos if verify(provider, headers, body, connection_secret(r.webhook_conn_id))]
        if not repos:
            raise Unauthenticated(UNAUTHENTICATED)
    return _once(provider, delivery_id(provider, headers, body), event, repos)


def connection_secret(conn_id: str | None) -> str | None:
    """The password of an Airflow connection (environment variable, secrets backend or metadata DB)."""
    secret = password_of(conn_id)
    if conn_id and secret is None:
        log.debug("no webhook secret in Airflow connection %r", conn_id)
    return secret


def _matching_repositories(event: Event) -> list[_Repo]:
    """Registered repositories whose URL is one the payload names."""
    keys = url_keys(event.repo_urls)
    if not keys:
        return []
    with session_scope() as session:
        rows = session.execute(
            select(
                Repository.name,
                Repository.url,
                Repository.ref,
                Repository.enabled,
                Repository.pinned_release_id,
                Repository.webhook_conn_id,
            ).order_by(Repository.priority, Repository.name)
        ).all()
    repos = [
        _Repo(name, normalize_repo_url(url), ref, enabled, pinned is not None, conn_id)
        for name, url, ref, enabled, pinned, conn_id in rows
    ]
    return [repo for repo in repos if repo.key in keys]


# -- dedupe ------------------------------------------------------------------------------------------------
def _once(provider: str, delivery: str, event: Event, repos: list[_Repo]) -> Answer:
    """Act on a delivery, and on an event, at most once. A failure removes both records, so the provider's
    retry is handled."""
    if not _record(provider, delivery, event.name):
        log.info("webhook %s delivery %s is a replay; ignored", provider, delivery)
        return Answer(200, {"status": "duplicate", "delivery": delivery})
    event_key = event_key_of(event)
    if event_key is not None and not _record_event(provider, event_key, event.name, delivery):
        first = _first_delivery_of(provider, event_key)
        reason = f"the same {event.kind.replace('_', ' ')} was received before (delivery {first}); nothing to do again"
        _set_outcome(provider, delivery, "duplicate", {"reason": reason, "same_event_as": first})
        log.info("webhook %s delivery %s repeats the event of delivery %s; ignored", provider, delivery, first)
        return Answer(200, {"status": "duplicate", "delivery": delivery, "reason": reason})
    try:
        outcome = _act(provider, event, repos)
    except BaseException:
        with session_scope() as session:
            session.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.provider == provider,
                    WebhookDelivery.delivery_id.in_([delivery, event_key] if event_key else [delivery]),
                )
            )
        raise
    with session_scope() as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.provider == provider, WebhookDelivery.delivery_id == delivery)
            .values(outcome=outcome.outcome, detail=outcome.detail)
        )
    log.info("webhook %s %s delivery %s: %s", provider, event.name, delivery, outcome.outcome)
    return Answer(outcome.answer.status, {**outcome.answer.body, "delivery": delivery})


def _record(provider: str, delivery: str, name: str, *, outcome: str = "received", detail: dict | None = None) -> bool:
    """Insert the delivery; False when it is already there (the unique constraint decides races)."""
    _prune_old_deliveries()
    try:
        with session_scope() as session:
            session.add(
                WebhookDelivery(provider=provider, delivery_id=delivery, event=name, outcome=outcome, detail=detail)
            )
        return True
    except IntegrityError:
        return False


def event_key_of(event: Event) -> str | None:
    """The row id recording an event's identity (see `Event.identity`); None for events that start nothing."""
    identity = event.identity
    if identity is None:
        return None
    return EVENT_KEY_PREFIX + hashlib.sha256(identity.encode()).hexdigest()


def _record_event(provider: str, key: str, name: str, delivery: str) -> bool:
    """Record that this event was received; False when it was, within the redelivery window."""
    if _record(provider, key, name, outcome="event", detail={"delivery": delivery}):
        return True
    # Older than the window (pruning runs hourly): the event is new again; the update decides races.
    with session_scope() as session:
        taken = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.provider == provider,
                WebhookDelivery.delivery_id == key,
                WebhookDelivery.received_at < utcnow() - KEEP_DELIVERIES,
            )
            .values(received_at=utcnow(), detail={"delivery": delivery})
        )
    return cast(CursorResult, taken).rowcount == 1  # an UPDATE's result is a CursorResult


def _first_delivery_of(provider: str, key: str) -> str:
    with session_scope() as session:
        detail = session.scalar(
            select(WebhookDelivery.detail).where(
                WebhookDelivery.provider == provider, WebhookDelivery.delivery_id == key
            )
        )
    return (detail or {}).get("delivery", "unknown")


def _set_outcome(provider: str, delivery: str, outcome: str, detail: dict) -> None:
    with session_scope() as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.provider == provider, WebhookDelivery.delivery_id == delivery)
            .values(outcome=outcome, detail=detail)
        )


_last_prune = 0.0


def _prune_old_deliveries() -> None:
    """Forget deliveries older than KEEP_DELIVERIES (hosts redeliver within hours), at most once an hour."""
    global _last_prune
    now = time.monotonic()
    if _last_prune and now - _last_prune < 3600:
        return
    _last_prune = now
    with session_scope() as session:
        session.execute(delete(WebhookDelivery).where(WebhookDelivery.received_at < utcnow() - KEEP_DELIVERIES))


# -- acting on events ----------------------------------------------------------------------------------------
def _act(provider: str, event: Event, repos: list[_Repo]) -> _Outcome:
    if event.kind == "ping":
        return _Outcome("pong", Answer(200, {"status": "pong"}))
    if not repos:
        return _ignored("no registered repository has this URL")
    if event.kind == "push":
        return _on_push(provider, event, repos)
    if event.kind == "pull_request":
        return _on_pull_request(provider, event, repos)
    return _ignored(f"event {event.name!r} is not handled (push and pull/merge requests are)")


def _ignored(reason: str, **detail) -> _Outcome:
    return _Outcome("ignored", Answer(202, {"status": "ignored", "reason": reason}), {"reason": reason, **detail})


def _on_push(provider: str, event: Event, repos: list[_Repo]) -> _Outcome:
    pushed = {push.ref: push.sha for push in event.pushes if push.sha}
    if not pushed:
        return _ignored("the push deleted a ref; nothing to sync", refs=[p.ref for p in event.pushes])
    runs, skipped = [], []
    for repo in repos:
        sha = next((sha for ref, sha in pushed.items() if tracks(repo.ref, ref)), None)
        if sha is None:
            continue
        if not repo.enabled or repo.pinned:
            skipped.append({"repository": repo.name, "reason": "disabled" if not repo.enabled else "pinned"})
            continue
        run = request_sync(repo.name, actor=f"webhook:{provider}", trigger="webhook", commit=sha, coalesce=True)
        runs.append(
            {
                "repository": repo.name,
                "commit": sha,
                "sync_id": run["id"],
                "airflow_run_id": run["airflow_run_id"],
                "status": run["status"],
                "coalesced": run["coalesced"],
            }
        )
    detail = {"refs": sorted(pushed), "runs": runs, "skipped": skipped}
    if not runs:
        reason = "no enabled, unpinned repository tracks " + ", ".join(sorted(pushed))
        return _ignored(reason, **detail)
    outcome = "coalesced" if all(run["coalesced"] for run in runs) else "triggered"
    return _Outcome(outcome, Answer(202, {"status": "triggered", "runs": runs, "skipped": skipped}), detail)


def tracks(repo_ref: str, pushed_ref: str) -> bool:
    """Does a repository following `repo_ref` (a branch or tag name, or a full ref) follow `pushed_ref`?"""
    return pushed_ref in (repo_ref, f"refs/heads/{repo_ref}", f"refs/tags/{repo_ref}")


def _on_pull_request(provider: str, event: Event, repos: list[_Repo]) -> _Outcome:

    pull = event.pull_request
    if pull is None:  # parse_event gives pull_request events their pull request; this guards the others
        return _ignored("the event carries no usable pull request")
    base = {"number": pull.number, "action": pull.action, "head_sha": pull.head_sha}
    if not pull.wants_check:
        return _ignored(f"pull request action {pull.action!r} brings no new commits", **base)
    if pull.from_fork:
        # Validation imports the DAG files: a fork's code would run on an Airflow worker.
        return _ignored("pull requests from forks are not validated (their code would run on a worker)", **base)
    targets = [r for r in repos if r.enabled and tracks(r.ref, f"refs/heads/{pull.base_ref}")]
    if not targets:
        return _ignored(f"no enabled repository tracks the target branch {pull.base_ref!r}", **base)
    from airflow_dagops.checks import service as checks  # lazy: `dagops webhooks show` needs no validation

    queued = [checks.queue_check(repo.name, provider, pull, actor=f"webhook:{provider}") for repo in targets]
    detail = {**base, "checks": [check["id"] for check in queued]}
    return _Outcome("queued", Answer(202, {"status": "queued", "checks": queued}), detail)
