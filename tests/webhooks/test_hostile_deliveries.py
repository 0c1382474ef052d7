"""Hostile deliveries: a signed event replayed under a new delivery id, JSON nested 100,000 deep, payload fields
with NULs and control characters, wrong types. Each is refused or ignored with a 4xx or a 2xx; none is a 500,
none starts anything twice, none stores what it should not."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import CheckRun, SyncRun, WebhookDelivery, utcnow
from airflow_dagops.sync.runs import request_sync
from airflow_dagops.webhooks import service as webhook_service
from tests.helpers.repos import dag_source
from tests.helpers.web import airflow_runs_of_sync_dag
from tests.webhooks import payloads
from tests.webhooks.conftest import GLOBAL_SECRET
from tests.webhooks.test_checks import (  # noqa: F401 - fixtures, used by name
    _open_pull_request,
    _validate_runs,
    git_server,
    provider_api,
    team,
)
from tests.webhooks.test_receive import PROVIDERS, URLS

SHA, OTHER_SHA = "1" * 40, "2" * 40
UNAUTHENTICATED = {
    "error": {"code": "unauthenticated", "message": "missing or invalid webhook signature", "details": {}}
}


def _register(provider: str, name: str = "team", **extra) -> str:
    add_repository(name, URLS[provider][0], verify=False, **extra)
    return URLS[provider][1]


def _sync_runs() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(SyncRun))


def _post_signed(hooks, provider: str, body: bytes, *, delivery: str | None = None, secret=GLOBAL_SECRET):
    headers = payloads.headers(provider, payloads.PUSH_EVENT[provider], body, secret=secret, delivery=delivery)
    return hooks.post(provider, body, headers)


# -- replays under a new delivery id ----------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_signed_push_resent_with_a_new_delivery_id_is_a_duplicate_and_starts_nothing(hooks, provider):
    url = _register(provider)
    body = payloads.encode(payloads.push(provider, url, SHA))
    first = _post_signed(hooks, provider, body, delivery="captured-1")
    assert first.status_code == 202 and first.get_json()["status"] == "triggered", first.get_json()
    airflow_runs = len(airflow_runs_of_sync_dag())

    replay = _post_signed(hooks, provider, body, delivery="forged-new-id-2")
    assert replay.status_code == 200, replay.get_json()
    answer = replay.get_json()
    assert answer["status"] == "duplicate" and answer["delivery"] == "forged-new-id-2"
    assert "captured-1" in answer["reason"]
    assert _sync_runs() == 1 and len(airflow_runs_of_sync_dag()) == airflow_runs
    with session_scope() as session:
        logged = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "forged-new-id-2"))
        assert logged.outcome == "duplicate" and logged.detail["same_event_as"] == "captured-1"


def test_the_same_commit_pushed_again_from_another_head_is_a_new_event(hooks):
    """A force-push back to an earlier commit names the same new head, but not the same old head: acted on."""
    url = _register("github")
    assert hooks.deliver("github", payloads.push("github", url, SHA)).status_code == 202
    moved_away = {**payloads.push("github", url, OTHER_SHA), "before": SHA}
    assert hooks.deliver("github", moved_away).get_json()["status"] == "triggered"
    back = {**payloads.push("github", url, SHA), "before": OTHER_SHA}
    answer = hooks.deliver("github", back).get_json()
    assert answer["status"] == "triggered", answer


def test_an_event_is_new_again_after_the_redelivery_window(hooks, monkeypatch):
    monkeypatch.setattr(webhook_service, "_last_prune", time.monotonic())  # no pruning: the lookup must tell
    url = _register("github")
    body = payloads.encode(payloads.push("github", url, SHA))
    assert _post_signed(hooks, "github", body, delivery="long-ago").status_code == 202
    with session_scope() as session:  # as if received before the window (pruning runs at most hourly)
        session.execute(
            update(WebhookDelivery).values(received_at=utcnow() - webhook_service.KEEP_DELIVERIES - timedelta(hours=1))
        )
    answer = _post_signed(hooks, "github", body, delivery="today").get_json()
    assert answer["status"] == "triggered", answer


def test_a_delivery_that_failed_can_be_retried_under_a_new_id(hooks, monkeypatch):
    """Airflow refusing the run is a 503 that records nothing: neither the delivery nor the event."""
    from airflow_dagops.errors import AirflowUnavailable as AirflowDown
    from airflow_dagops.webhooks import service as webhook_service

    url = _register("github")
    body = payloads.encode(payloads.push("github", url, SHA))
    real = request_sync

    def refuse(*args, **kwargs):
        raise AirflowDown("Airflow is restarting")

    monkeypatch.setattr(webhook_service, "request_sync", refuse)
    assert _post_signed(hooks, "github", body, delivery="try-1").status_code == 503
    monkeypatch.setattr(webhook_service, "request_sync", real)
    answer = _post_signed(hooks, "github", body, delivery="try-2").get_json()
    assert answer["status"] == "triggered", answer


def test_a_pull_request_resent_with_a_new_delivery_id_queues_no_second_check(hooks, team, git_server, provider_api):  # noqa: F811
    remote, url = team
    sha = _open_pull_request(remote, git_server, "github", 9, {"dags/b.py": dag_source("b")})
    body = payloads.encode(payloads.pull_request("github", url, 9, sha))

    def send(delivery: str):
        headers = payloads.headers("github", "pull_request", body, secret=GLOBAL_SECRET, delivery=delivery)
        return hooks.post("github", body, headers)

    first = send("pr-1")
    assert first.status_code == 202 and first.get_json()["status"] == "queued"
    validate_runs, reports = len(_validate_runs()), len(provider_api.calls)
    replay = send("pr-2")
    assert replay.status_code == 200 and replay.get_json()["status"] == "duplicate"
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(CheckRun)) == 1
    assert len(_validate_runs()) == validate_runs and len(provider_api.calls) == reports


# -- malformed bodies ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_json_nested_100000_deep_is_400_when_signed_and_401_when_not_never_500(hooks, provider):
    _register(provider)
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000, b"[" * 100_000):
        signed = _post_signed(hooks, provider, body)
        assert signed.status_code == 400, signed.get_data()[:200]
        error = signed.get_json()["error"]
        assert error["code"] == "malformed_json" and "64 levels" in error["message"]
        unsigned = _post_signed(hooks, provider, body, secret=None)
        assert unsigned.status_code == 401 and unsigned.get_json() == UNAUTHENTICATED
    nested_64 = b'{"a":' * 63 + b"[1]" + b"}" * 63  # as deep as allowed: parsed, and ignored as a push
    assert _post_signed(hooks, provider, nested_64).status_code == 202
    assert _sync_runs() == 0


@pytest.mark.parametrize(
    "ref",
    [
        "refs/heads/main\x00",
        "refs/heads/ma\x00in",
        "refs/heads/main\n",
        "refs/heads/\x1b[31mmain",
        "refs/heads/" + "m" * 300,
    ],
)
def test_a_push_whose_ref_holds_control_characters_or_is_overlong_syncs_nothing(hooks, ref):
    url = _register("github")
    response = hooks.deliver("github", payloads.push("github", url, SHA, ref=ref))
    assert response.status_code == 202 and response.get_json()["status"] == "ignored", response.get_json()
    assert _sync_runs() == 0
    with session_scope() as session:
        stored = [r.detail for r in session.scalars(select(WebhookDelivery)).all()]
    assert "\x00" not in repr(stored)


@pytest.mark.parametrize(
    "change",
    [
        {"number": True},
        {"number": 10**30},
        {"number": -4},
        {"number": "7"},
        {"action": ["opened"]},
        {"base": "ma\x00in"},
        {"base": 5},
        {"head_sha": "z" * 40},
    ],
)
def test_pull_request_fields_of_the_wrong_type_or_holding_nul_queue_nothing(hooks, change):
    url = _register("github")
    payload = payloads.pull_request("github", url, 5, SHA)
    if "number" in change:
        payload["number"] = payload["pull_request"]["number"] = change["number"]
    if "action" in change:
        payload["action"] = change["action"]
    if "base" in change:
        payload["pull_request"]["base"]["ref"] = change["base"]
    if "head_sha" in change:
        payload["pull_request"]["head"]["sha"] = change["head_sha"]
    response = hooks.deliver("github", payload, event="pull_request")
    assert response.status_code in (202, 200), response.get_data()[:300]
    assert response.get_json()["status"] == "ignored", response.get_json()
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(CheckRun)) == 0


def test_repository_urls_with_control_characters_match_nothing(hooks):
    _register("github")
    bad_urls = ("https://github.com/acme/dags.git\x00", "https://github.com/acme/dags\n.git", 42, None, ["x"])
    for index, url in enumerate(bad_urls):
        payload = {**payloads.push("github", "x", f"{index}" * 40), "repository": {"clone_url": url}}
        response = hooks.deliver("github", payload)
        assert response.status_code == 202 and response.get_json()["status"] == "ignored", (url, response.get_json())
    assert _sync_runs() == 0


def test_payloads_of_the_wrong_shape_are_ignored_never_500(hooks):
    url = _register("github")
    weird = [  # each a different event (else the second of two alike would be a duplicate)
        {"ref": 5, "after": "a" * 40, "repository": {"clone_url": url}},
        {"ref": "refs/heads/main", "after": ["x"], "repository": {"clone_url": url}},
        {"ref": "refs/heads/main", "after": "b" * 40, "repository": "not an object"},
        {"ref": "refs/heads/main", "after": "c" * 40, "repository": {"clone_url": {"nested": url}}},
        {"ref": None, "after": None, "before": {"x": 1}, "repository": {"clone_url": url}},
    ]
    for payload in weird:
        response = hooks.deliver("github", payload)
        assert response.status_code == 202 and response.get_json()["status"] == "ignored", (
            payload,
            response.get_json(),
        )
    assert _sync_runs() == 0
