"""The webhook receiver, provider by provider: the signature matrix, dedupe, matching and what it starts."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from sqlalchemy import func, select

from airflow_dagops.repositories.registry import add_repository, update_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import SyncRun, WebhookDelivery
from airflow_dagops.sync.runs import get_sync_run
from airflow_dagops.webhooks.service import EVENT_KEY_PREFIX, MAX_BODY
from airflow_dagops.webhooks.signatures import sign
from tests.helpers.web import airflow_runs_of_sync_dag
from tests.webhooks import payloads
from tests.webhooks.conftest import GLOBAL_SECRET, REPO_SECRET, env_connection

PROVIDERS = ["github", "gitlab", "gitea", "bitbucket"]
# The registered URL, and another spelling of it as the provider's payload names it.
URLS = {
    "github": ("https://github.com/acme/dags.git", "git@github.com:Acme/dags.git"),
    "gitlab": ("git@gitlab.com:acme/dags.git", "https://gitlab.com/acme/dags.git"),
    "gitea": ("https://git.example.com/acme/dags", "ssh://git@git.example.com:2222/acme/dags.git"),
    "bitbucket": ("https://bitbucket.org/acme/dags.git", "https://bitbucket.org/acme/dags"),
}
SHA = "1" * 40
_NOT_AN_EVENT_ROW = ~WebhookDelivery.delivery_id.startswith(EVENT_KEY_PREFIX)
UNAUTHENTICATED = {
    "error": {"code": "unauthenticated", "message": "missing or invalid webhook signature", "details": {}}
}


def _register(provider: str, name: str = "team", *, ref: str = "main", **extra) -> str:
    add_repository(name, URLS[provider][0], ref=ref, verify=False, **extra)
    return URLS[provider][1]


def _counts() -> tuple[int, int]:
    """Sync runs and recorded deliveries (not the rows recording events, which dedupe by event)."""
    with session_scope() as session:
        runs = session.scalar(select(func.count()).select_from(SyncRun))
        deliveries = session.scalar(select(func.count()).select_from(WebhookDelivery).where(_NOT_AN_EVENT_ROW))
    return runs, deliveries


def _assert_nothing_started(before_airflow_runs: int) -> None:
    assert _counts() == (0, 0)
    assert len(airflow_runs_of_sync_dag()) == before_airflow_runs


# -- accepted -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_signed_push_to_the_tracked_branch_triggers_a_sync_with_the_sha(hooks, provider):
    url = _register(provider)
    response = hooks.deliver(provider, payloads.push(provider, url, SHA))
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["status"] == "triggered" and len(body["runs"]) == 1
    run = body["runs"][0]
    assert run["repository"] == "team" and run["commit"] == SHA and run["coalesced"] is False
    airflow_run = next(r for r in airflow_runs_of_sync_dag() if r["run_id"] == run["airflow_run_id"])
    assert airflow_run["conf"] == {
        "repository": "team",
        "force": False,
        "trigger": "webhook",
        "requested_by": f"webhook:{provider}",
        "commit": SHA,
    }
    assert get_sync_run(run["sync_id"])["trigger"] == "webhook"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_push_of_a_tracked_tag_triggers_a_sync(hooks, provider):
    url = _register(provider, ref="v1.0")
    response = hooks.deliver(provider, payloads.push(provider, url, SHA, ref="refs/tags/v1.0"))
    assert response.status_code == 202 and response.get_json()["status"] == "triggered"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_replayed_delivery_is_a_duplicate_and_starts_nothing(hooks, provider):
    url = _register(provider)
    payload = payloads.push(provider, url, SHA)
    first = hooks.deliver(provider, payload, delivery="delivery-1")
    assert first.status_code == 202
    airflow_runs = len(airflow_runs_of_sync_dag())
    replay = hooks.deliver(provider, payload, delivery="delivery-1")
    assert replay.status_code == 200
    assert replay.get_json() == {"status": "duplicate", "delivery": "delivery-1"}
    assert _counts() == (1, 1) and len(airflow_runs_of_sync_dag()) == airflow_runs


def test_without_a_delivery_id_an_identical_body_is_the_replay(hooks):
    url = _register("github")
    body = payloads.encode(payloads.push("github", url, SHA))
    headers = {"X-GitHub-Event": "push", **payloads.headers("github", "push", body, secret=GLOBAL_SECRET)}
    del headers["X-GitHub-Delivery"]
    assert hooks.post("github", body, headers).status_code == 202
    replay = hooks.post("github", body, headers)
    assert replay.status_code == 200 and replay.get_json()["status"] == "duplicate"
    assert replay.get_json()["delivery"].startswith("body-sha256:")


@pytest.mark.parametrize("provider", ["github", "bitbucket"])
def test_ping_is_answered(hooks, provider):
    url = _register(provider)
    event = {"github": "ping", "bitbucket": "diagnostics:ping"}[provider]
    response = hooks.deliver(
        provider, {"zen": "Keep it logically awesome.", "repository": {"clone_url": url}}, event=event
    )
    assert response.status_code == 200 and response.get_json()["status"] == "pong"
    assert _counts() == (0, 1)


# -- refused ------------------------------------------------------------------------------------------------------
def _wrong_algorithm(provider: str, body: bytes) -> dict:
    """A signature made the way another provider or an older API does, with the right secret."""
    sha1 = hmac.new(GLOBAL_SECRET.encode(), body, hashlib.sha1).hexdigest()
    sha256 = hmac.new(GLOBAL_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "github": {"X-Hub-Signature": f"sha1={sha1}"},  # GitHub's legacy header: only -256 is accepted
        "gitlab": {"X-Gitlab-Token": sha256},  # GitLab sends the token itself, not an HMAC
        "gitea": {"X-Gitea-Signature": sha1},
        "bitbucket": {"X-Hub-Signature": f"sha1={sha1}"},
    }[provider]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", ["invalid", "missing", "wrong_algorithm", "other_secret", "tampered_body"])
def test_a_bad_signature_is_the_same_401_and_starts_nothing(hooks, provider, case):
    if provider == "gitlab" and case == "tampered_body":
        pytest.skip("GitLab sends a shared token, not a signature of the body: its integrity rests on TLS")
    url = _register(provider)
    airflow_runs = len(airflow_runs_of_sync_dag())
    body = payloads.encode(payloads.push(provider, url, SHA))
    headers = payloads.headers(provider, payloads.PUSH_EVENT[provider], body, secret=None)
    if case == "invalid":
        name, value = next(iter(sign(provider, body, GLOBAL_SECRET).items()))
        headers[name] = value[:-1] + ("0" if value[-1] != "0" else "1")  # one character off
    elif case == "wrong_algorithm":
        headers.update(_wrong_algorithm(provider, body))
    elif case == "other_secret":
        headers.update(sign(provider, body, "not-the-secret"))
    elif case == "tampered_body":
        headers.update(sign(provider, body, GLOBAL_SECRET))
        body = body.replace(SHA.encode(), b"2" * 40)
    response = hooks.post(provider, body, headers)
    assert response.status_code == 401
    assert response.get_json() == UNAUTHENTICATED  # one answer, whatever was wrong
    _assert_nothing_started(airflow_runs)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_oversized_body_is_413_before_anything_else(hooks, provider):
    url = _register(provider)
    payload = {**payloads.push(provider, url, SHA), "padding": "x" * MAX_BODY}
    response = hooks.deliver(provider, payload)
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "body_too_large"
    assert _counts() == (0, 0)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_json_is_400_when_signed_and_401_when_not(hooks, provider):
    _register(provider)
    for body in (b'{"ref": "refs/heads/main", ', b"[1, 2, 3]", b"\xff\xfe"):
        signed = payloads.headers(provider, payloads.PUSH_EVENT[provider], body, secret=GLOBAL_SECRET)
        response = hooks.post(provider, body, signed)
        assert response.status_code == 400, body
        assert response.get_json()["error"]["code"] == "malformed_json"
        unsigned = payloads.headers(provider, payloads.PUSH_EVENT[provider], body, secret=None)
        assert hooks.post(provider, body, unsigned).get_json() == UNAUTHENTICATED
    assert _counts() == (0, 0)


# -- ignored ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_unknown_repository_is_ignored(hooks, provider):
    _register(provider)
    response = hooks.deliver(provider, payloads.push(provider, "https://example.org/someone/else.git", SHA))
    assert response.status_code == 202
    assert response.get_json()["status"] == "ignored"
    assert "no registered repository" in response.get_json()["reason"]
    assert _counts() == (0, 1)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_push_to_an_untracked_branch_is_ignored(hooks, provider):
    url = _register(provider)
    response = hooks.deliver(provider, payloads.push(provider, url, SHA, ref="refs/heads/feature"))
    assert response.status_code == 202
    assert response.get_json()["status"] == "ignored" and "refs/heads/feature" in response.get_json()["reason"]
    assert _counts() == (0, 1)


def test_unrelated_events_branch_deletions_and_disabled_repositories_are_ignored(hooks):
    url = _register("github")
    issue = hooks.deliver("github", {"action": "opened", "repository": {"clone_url": url}}, event="issues")
    assert issue.status_code == 202 and "not handled" in issue.get_json()["reason"]
    deleted = {**payloads.push("github", url, "0" * 40), "deleted": True}
    assert hooks.deliver("github", deleted).get_json()["status"] == "ignored"
    update_repository("team", enabled=False, verify=False)
    disabled = hooks.deliver("github", payloads.push("github", url, SHA)).get_json()
    assert disabled["status"] == "ignored" and disabled.get("reason", "").startswith("no enabled")
    assert _counts() == (0, 3)


def test_unknown_provider_is_404_in_the_envelope(hooks):
    response = hooks.client.post("/dagops/api/v1/webhooks/svn", data=b"{}")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


# -- per-repository secrets ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_repository_secret_verifies_without_a_global_one(hooks, provider, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_DAGOPS_WEBHOOK")
    env_connection(monkeypatch, "team_hook", password=REPO_SECRET)
    url = _register(provider, webhook_conn_id="team_hook")
    ok = hooks.deliver(provider, payloads.push(provider, url, SHA), secret=REPO_SECRET)
    assert ok.status_code == 202 and ok.get_json()["status"] == "triggered"
    # With no global secret, nothing can vouch for a repository nobody registered: 401, not "ignored".
    unknown = hooks.deliver(provider, payloads.push(provider, "https://example.org/x/y.git", SHA), secret=REPO_SECRET)
    assert unknown.get_json() == UNAUTHENTICATED
    wrong = hooks.deliver(provider, payloads.push(provider, url, "3" * 40), secret=GLOBAL_SECRET)
    assert wrong.get_json() == UNAUTHENTICATED


def test_a_repository_secret_only_opens_its_own_repository(hooks, monkeypatch):
    env_connection(monkeypatch, "team_hook", password=REPO_SECRET)
    add_repository("team", "https://github.com/acme/dags.git", verify=False, webhook_conn_id="team_hook")
    add_repository("other", "https://github.com/acme/other.git", verify=False)
    own = hooks.deliver("github", payloads.push("github", "https://github.com/acme/dags", SHA), secret=REPO_SECRET)
    assert own.status_code == 202 and own.get_json()["runs"][0]["repository"] == "team"
    other_url = "https://github.com/acme/other"
    refused = hooks.deliver("github", payloads.push("github", other_url, SHA), secret=REPO_SECRET)
    assert refused.get_json() == UNAUTHENTICATED
    # The global secret still opens every repository, including one with its own secret.
    both = hooks.deliver("github", payloads.push("github", other_url, SHA), secret=GLOBAL_SECRET)
    assert both.status_code == 202 and both.get_json()["runs"][0]["repository"] == "other"


def test_no_secret_anywhere_refuses_everything(hooks, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_DAGOPS_WEBHOOK")
    env_connection(monkeypatch, "empty_hook")  # a connection without a password is no secret
    url = _register("github", webhook_conn_id="empty_hook")
    for secret in (None, "", GLOBAL_SECRET):
        response = hooks.deliver("github", payloads.push("github", url, SHA), secret=secret)
        assert response.get_json() == UNAUTHENTICATED, secret
    assert _counts() == (0, 0)


def test_the_delivery_log_names_what_happened_and_holds_no_secret(hooks):
    url = _register("github")
    hooks.deliver("github", payloads.push("github", url, SHA), delivery="d-1")
    hooks.deliver("github", payloads.push("github", url, SHA, ref="refs/heads/feature"), delivery="d-2")
    with session_scope() as session:
        rows = {r.delivery_id: r for r in session.scalars(select(WebhookDelivery).where(_NOT_AN_EVENT_ROW)).all()}
    assert rows["d-1"].outcome == "triggered" and rows["d-1"].detail["refs"] == ["refs/heads/main"]
    assert rows["d-2"].outcome == "ignored"
    stored = json.dumps([[r.event, r.outcome, r.detail] for r in rows.values()])
    assert GLOBAL_SECRET not in stored


def test_deliveries_older_than_the_redelivery_window_are_forgotten(hooks, monkeypatch):
    from datetime import timedelta

    from airflow_dagops.store.models import utcnow
    from airflow_dagops.webhooks import service as webhook_service

    url = _register("github")
    with session_scope() as session:
        old = utcnow() - webhook_service.KEEP_DELIVERIES - timedelta(days=1)
        session.add(WebhookDelivery(provider="github", delivery_id="old", event="push", outcome="x", received_at=old))
    monkeypatch.setattr(webhook_service, "_last_prune", 0.0)
    hooks.deliver("github", payloads.push("github", url, SHA), delivery="new")
    with session_scope() as session:
        assert session.scalars(select(WebhookDelivery.delivery_id).where(_NOT_AN_EVENT_ROW)).all() == ["new"]
