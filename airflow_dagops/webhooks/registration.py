"""Create, update, remove and check dagops' webhook on the Git host, through the host's API.

    register(name)    find our hook (same payload URL) -> update it, or create it    (idempotent)
    unregister(name)  delete every hook with our payload URL                        (idempotent)
    check(name)       our hook, and the host's last deliveries with the answers dagops gave

One use case, one small adapter per host, each with the host's documented calls:

- GitHub: `GET/POST /repos/{owner}/{repo}/hooks`, `PATCH|DELETE /repos/{owner}/{repo}/hooks/{id}`,
  `GET /repos/{owner}/{repo}/hooks/{id}/deliveries`; body `{name: "web", active, events: [push, pull_request],
  config: {url, content_type: "json", secret, insecure_ssl: "0"}}`. Token scope `admin:repo_hook`.
- GitLab: `GET/POST /projects/:id/hooks`, `PUT|DELETE /projects/:id/hooks/:hook_id`,
  `GET /projects/:id/hooks/:hook_id/events` (GitLab 17.0+); body `{url, token, push_events, tag_push_events,
  merge_requests_events, enable_ssl_verification}`. Token scope `api`, Maintainer role on the project.
- Gitea / Forgejo: `GET/POST /repos/{owner}/{repo}/hooks`, `PATCH|DELETE /repos/{owner}/{repo}/hooks/{id}`; body
  `{type: "gitea", config: {url, content_type: "json", secret}, events: [push, pull_request, pull_request_sync],
  active}`. Token scope `write:repository`. Gitea's API lists no deliveries: `check` says so.

The payload URL is `[api] base_url` + `/pluginsv2/dagops/api/v1/webhooks/<provider>`, as `dagops webhooks show`
prints it. The secret is the one the receiver checks (the repository's `webhook_conn_id`, else the global
`[dagops] webhook_secret_conn_id`): it goes to the host in the request body and nowhere else; every answer says
`"secret": "set"`, never the secret. The token is the password of the repository's own connection (the one it
fetches with), sent only to the host that connection is attached for, or to the connection's `api_url` extra.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from airflow_dagops import settings
from airflow_dagops.airflow.connections import find_connection
from airflow_dagops.errors import ConnectionMissing, InvalidInput, NotFound
from airflow_dagops.git.credentials import check_credential_host
from airflow_dagops.git.host_api import PROVIDERS, HostClient, default_api, provider_of, repo_path
from airflow_dagops.git.urls import path_of
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.webhooks.service import connection_secret, global_secret_conn_id

log = logging.getLogger(__name__)

HOSTS = PROVIDERS  # the hosts whose API dagops registers webhooks through
# What the token needs, in each host's words: named by the error a 403 gives.
SCOPES = {
    "github": "admin:repo_hook (fine-grained token: Webhooks read and write), and admin rights on the repository",
    "gitlab": "api, with the Maintainer role (or higher) on the project",
    "gitea": "write:repository, and admin rights on the repository",
}
WEBHOOK_PATH = "/pluginsv2/dagops/api/v1/webhooks/"
DELIVERIES = 10  # how many of the host's last deliveries `check` shows


@dataclass(frozen=True)
class Hook:
    """A webhook as the host describes it (only what dagops compares and shows)."""

    id: int | str
    url: str
    events: list[str]
    active: bool


@dataclass(frozen=True)
class Target:
    """One repository's webhook as dagops wants it, and how to reach its host. Holds the secret and the token:
    never shown (`repr` leaves them out), never stored."""

    repository: str
    provider: str
    project: str  # owner/repo (GitLab: group/subgroup/project)
    url: str  # the payload URL
    secret_conn_id: str
    secret: str = field(repr=False)
    client: HostClient = field(repr=False)

    @property
    def scope(self) -> str:
        return SCOPES[self.provider]


# -- the use cases -------------------------------------------------------------------------------------------------
def register(name: str, *, provider: str | None = None) -> dict:
    """Create dagops' webhook on the repository's host, or update the one already there (same payload URL): its
    events, content type and secret are set again, so a rotated secret reaches the host too."""
    target = resolve(name, provider=provider)
    adapter = ADAPTERS[target.provider]
    ours = _ours(target, adapter.list_hooks(target))
    if ours:
        hook = adapter.update(target, ours[0].id)
        action = "updated"
    else:
        hook = adapter.create(target)
        action = "created"
    log.info("webhook of %s on %s %s (hook %s)", name, target.provider, action, hook.id)
    answer = _answer(target, hook, action)
    if len(ours) > 1:
        answer["duplicates"] = [each.id for each in ours[1:]]
        answer["warnings"].append(
            f"{len(ours) - 1} more hook(s) with the same payload URL exist (ids "
            f"{', '.join(str(each.id) for each in ours[1:])}): each delivery arrives twice; "
            f"`dagops webhooks unregister {name}` removes them all"
        )
    return answer


def unregister(name: str, *, provider: str | None = None) -> dict:
    """Delete every hook of the repository whose payload URL is dagops'; nothing there is not an error."""
    target = resolve(name, provider=provider, need_secret=False)
    adapter = ADAPTERS[target.provider]
    ours = _ours(target, adapter.list_hooks(target))
    for hook in ours:
        adapter.delete(target, hook.id)
    log.info("webhook of %s on %s: %d deleted", name, target.provider, len(ours))
    return {
        "repository": name,
        "provider": target.provider,
        "project": target.project,
        "url": target.url,
        "action": "deleted" if ours else "absent",
        "deleted": [hook.id for hook in ours],
    }


def check(name: str, *, provider: str | None = None, limit: int = DELIVERIES) -> dict:
    """Is our hook there, and what did the host's last deliveries get back (where the host's API tells)?"""
    target = resolve(name, provider=provider, need_secret=False)
    adapter = ADAPTERS[target.provider]
    ours = _ours(target, adapter.list_hooks(target))
    answer: dict = {
        "repository": name,
        "provider": target.provider,
        "project": target.project,
        "url": target.url,
        "registered": bool(ours),
        "hook": _hook_dict(ours[0]) if ours else None,
        "deliveries": [],
        "deliveries_available": False,
        "unavailable_reason": None,
    }
    if not ours:
        answer["unavailable_reason"] = f"no webhook with this payload URL; `dagops webhooks register {name}` adds it"
        return answer
    deliveries, reason = adapter.deliveries(target, ours[0].id, limit)
    answer["deliveries"] = deliveries
    answer["deliveries_available"] = reason is None
    answer["unavailable_reason"] = reason
    return answer


# -- where, as whom, with which secret ------------------------------------------------------------------------------
def resolve(name: str, *, provider: str | None = None, need_secret: bool = True) -> Target:
    """The repository's webhook target. Raises InvalidInput (no connection, no token, no base URL, a host that is
    not GitHub, GitLab or Gitea), ConnectionMissing (no secret) or CredentialHostRefused."""
    info = get_repository(name)
    if provider is not None and provider not in HOSTS:
        raise InvalidInput(f"dagops registers webhooks on {', '.join(HOSTS)}; not on {provider!r}")
    conn_id = info.conn_id
    if not conn_id:
        raise InvalidInput(
            f"repository {name!r} has no Airflow connection, so there is no token to create its webhook with; set its "
            "conn_id to a connection whose password is a token with the scope "
            f"{SCOPES.get(provider or '', ' / '.join(f'{host}: {scope}' for host, scope in SCOPES.items()))}"
        )
    connection = find_connection(conn_id)
    if connection is None:
        raise ConnectionMissing(f"Airflow connection {conn_id!r} of repository {name!r} does not exist")
    token = connection.password
    extra = connection.extra_dejson or {}
    provider = provider or provider_of(info.url, extra)
    if provider is None:
        raise InvalidInput(
            f"cannot tell which Git host serves {name!r}; set the `provider` extra of connection {conn_id!r} to one "
            f"of {', '.join(HOSTS)}. Bitbucket webhooks are added by hand (dagops webhooks show {name})"
        )
    if not token:
        raise InvalidInput(
            f"Airflow connection {conn_id!r} has no password (token); creating a webhook needs a token with the "
            f"scope {SCOPES[provider]}"
        )
    api_url = extra.get("api_url")
    if not api_url:
        # The API is the repository's own host: the token goes there only if the connection is attached to it.
        check_credential_host(conn_id, info.url)
        api_url = default_api(provider, info.url)
    project = path_of(info.url)
    if not api_url or not project:
        raise InvalidInput(f"cannot tell the {provider} API of {name!r}; set `api_url` in the extra of {conn_id!r}")
    base = settings.public_base_url()
    if not base:
        raise InvalidInput(
            "[api] base_url is not set, so there is no address the Git host could send webhooks to; set it to the "
            "URL the host reaches Airflow at (AIRFLOW__API__BASE_URL=https://airflow.example.com)"
        )
    secret_conn_id = info.webhook_conn_id or global_secret_conn_id()
    secret = connection_secret(secret_conn_id) or ""
    if need_secret and not secret:
        raise ConnectionMissing(
            f"Airflow connection {secret_conn_id!r} (the webhook secret) has no password; create it first: "
            f"airflow connections add {secret_conn_id} --conn-type generic --conn-password "
            "\"$(python -c 'import secrets; print(secrets.token_hex(32))')\""
        )
    client = HostClient(provider, str(api_url).rstrip("/"), token, conn_id=conn_id)
    return Target(name, provider, project, f"{base}{WEBHOOK_PATH}{provider}", secret_conn_id, secret, client)


def _ours(target: Target, hooks: list[Hook]) -> list[Hook]:
    """The hooks that deliver to dagops' payload URL for this provider (a trailing slash is the same URL)."""
    want = target.url.rstrip("/")
    return [hook for hook in hooks if hook.url.rstrip("/") == want]


def _hook_dict(hook: Hook) -> dict:
    return {"id": hook.id, "url": hook.url, "events": hook.events, "active": hook.active}


def _answer(target: Target, hook: Hook, action: str) -> dict:
    warnings = []
    if target.url.startswith("http://"):
        warnings.append(
            "the payload URL is plain HTTP: deliveries (and GitLab's secret token) cross the network unencrypted; "
            "set [api] base_url to an https:// address"
        )
    return {
        "repository": target.repository,
        "provider": target.provider,
        "project": target.project,
        "action": action,
        "hook": _hook_dict(hook),
        "url": target.url,
        "content_type": "json",
        "events": ADAPTERS[target.provider].EVENTS,
        "secret": "set",
        "secret_conn_id": target.secret_conn_id,
        "warnings": warnings,
    }


# -- the hosts ------------------------------------------------------------------------------------------------------
class _Host:
    """What the three hosts share: hooks listed, created and deleted under one path. Each host says its path, its
    body, how it updates (PATCH or PUT), how it describes a hook, and what it tells of deliveries."""

    EVENTS: list[str] = []
    UPDATE = "PATCH"

    def path(self, target: Target, hook_id: int | str | None = None) -> str:
        path = f"{repo_path(target.provider, target.project)}/hooks"
        return f"{path}/{hook_id}" if hook_id is not None else path

    def body(self, target: Target, *, update: bool = False) -> dict:
        raise NotImplementedError

    def hook(self, item: dict) -> Hook:
        config = item.get("config") or {}
        url = str(config.get("url") or "")
        return Hook(item.get("id", ""), url, list(item.get("events") or []), bool(item.get("active")))

    def list_hooks(self, target: Target) -> list[Hook]:
        what = f"list the webhooks of {target.project}"
        items = target.client.pages(self.path(target), what=what, scope=target.scope, missing=_no_repo(target))
        return [self.hook(item) for item in items if isinstance(item, dict)]

    def create(self, target: Target) -> Hook:
        what = f"create the webhook of {target.project}"
        answer = target.client.call(
            "POST", self.path(target), body=self.body(target), what=what, scope=target.scope, missing=_no_repo(target)
        )
        return self.hook(answer.data)

    def update(self, target: Target, hook_id: int | str) -> Hook:
        what = f"update webhook {hook_id} of {target.project}"
        body = self.body(target, update=True)
        answer = target.client.call(self.UPDATE, self.path(target, hook_id), body=body, what=what, scope=target.scope)
        return self.hook(answer.data)

    def delete(self, target: Target, hook_id: int | str) -> None:
        what = f"delete webhook {hook_id} of {target.project}"
        target.client.call("DELETE", self.path(target, hook_id), what=what, scope=target.scope)

    def deliveries(self, target: Target, hook_id: int | str, limit: int) -> tuple[list[dict], str | None]:
        raise NotImplementedError

    def recent(self, target: Target, hook_id: int | str, tail: str, limit: int) -> list[dict]:
        """The newest `limit` records the host keeps under the hook (GitHub `deliveries`, GitLab `events`)."""
        answer = target.client.call(
            "GET",
            f"{self.path(target, hook_id)}/{tail}",
            params={"per_page": limit},
            what=f"list the {tail} of webhook {hook_id} of {target.project}",
            scope=target.scope,
        )
        items = answer.data if isinstance(answer.data, list) else []
        return [item for item in items if isinstance(item, dict)][:limit]


class _GitHub(_Host):
    EVENTS = ["push", "pull_request"]

    def body(self, target: Target, *, update: bool = False) -> dict:
        config = {"url": target.url, "content_type": "json", "secret": target.secret, "insecure_ssl": "0"}
        body = {"active": True, "events": self.EVENTS, "config": config}
        return body if update else {"name": "web", **body}  # PATCH takes no name

    def deliveries(self, target: Target, hook_id: int | str, limit: int) -> tuple[list[dict], str | None]:
        return [
            _delivery(
                item.get("guid") or item.get("id"),
                f"{item['event']}.{item['action']}" if item.get("event") and item.get("action") else item.get("event"),
                item.get("delivered_at"),
                item.get("status_code"),
                item.get("duration"),
                redelivery=bool(item.get("redelivery")),
            )
            for item in self.recent(target, hook_id, "deliveries", limit)
        ], None


class _GitLab(_Host):
    EVENTS = ["push_events", "tag_push_events", "merge_requests_events"]
    UPDATE = "PUT"

    def body(self, target: Target, *, update: bool = False) -> dict:
        return {
            "url": target.url,
            "token": target.secret,
            **{event: True for event in self.EVENTS},
            "enable_ssl_verification": True,
        }

    def hook(self, item: dict) -> Hook:
        events = [name for name in self.EVENTS if item.get(name)]
        return Hook(item.get("id", ""), str(item.get("url") or ""), events, True)

    def deliveries(self, target: Target, hook_id: int | str, limit: int) -> tuple[list[dict], str | None]:
        try:
            items = self.recent(target, hook_id, "events", limit)
        except NotFound:
            return [], "this GitLab offers no webhook events API (GitLab 17.0 and later do): see the hook's page"
        return [
            _delivery(
                item.get("id"),
                item.get("trigger"),
                item.get("created_at"),
                item.get("response_status"),
                item.get("execution_duration"),
            )
            for item in items
        ], None


class _Gitea(_Host):
    EVENTS = ["push", "pull_request", "pull_request_sync"]

    def body(self, target: Target, *, update: bool = False) -> dict:
        config = {"url": target.url, "content_type": "json", "secret": target.secret}
        body = {"config": config, "events": self.EVENTS, "active": True}
        return body if update else {"type": "gitea", **body}  # EditHookOption has no type

    def deliveries(self, target: Target, hook_id: int | str, limit: int) -> tuple[list[dict], str | None]:
        return [], (
            "Gitea's API does not list a webhook's deliveries; see Settings → Webhooks → the hook → Recent Deliveries, "
            "or dagops' own delivery log (dagops_webhook_delivery)"
        )


ADAPTERS: dict[str, _Host] = {"github": _GitHub(), "gitlab": _GitLab(), "gitea": _Gitea()}


def _no_repo(target: Target) -> str:
    return (
        f"the {target.provider} API knows no repository {target.project!r}, or the token of connection "
        f"{target.client.conn_id!r} cannot see it"
    )


def _delivery(
    delivery_id, event, at, status_code, duration, *, redelivery: bool = False
) -> dict:  # one row of `check`, whatever the host calls the fields
    code = status_code if isinstance(status_code, int) else None
    return {
        "id": delivery_id,
        "event": event,
        "delivered_at": at,
        "status_code": code,
        "ok": code is not None and 200 <= code < 300,
        "duration": duration,
        "redelivery": redelivery,
    }
