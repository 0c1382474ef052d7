"""How to point a Git host's webhook at dagops (`dagops webhooks show`, `GET .../webhooks/setup`): the payload URL,
content type, events to tick and the secret's connection. It only reads (the repository, Airflow's settings, whether
the secret's connection exists): apart from service.py, which receives webhooks, so that a `dagops webhooks show`
loads neither the ORM nor the receiving machinery (issue 19, "Fast CLI").
"""

from __future__ import annotations

from airflow_dagops import settings
from airflow_dagops.airflow.connections import has_password
from airflow_dagops.errors import InvalidInput
from airflow_dagops.git.urls import host_of, provider_of_host
from airflow_dagops.store.reads import get_repository
from airflow_dagops.webhooks import PROVIDERS


def global_secret_conn_id() -> str:
    return settings.get("webhook_secret_conn_id")


# What to tick in each host's webhook form: pushes sync, pull/merge requests are checked.
EVENTS = {
    "github": ["Pushes", "Pull requests"],
    "gitlab": ["Push events", "Tag push events", "Merge request events"],
    "gitea": ["Push", "Pull Request", "Pull Request Synchronized"],
    "bitbucket": ["Repository: Push"],
}


def setup(name: str, *, provider: str | None = None) -> dict:
    """How to point a Git host's webhook at dagops for one repository. Names the secret's connection and
    whether it exists; never reads out the secret. Where the host cannot be told from the URL (a file://
    repository, a host of unknown kind) and no `provider` is given, `provider` is None, `unknown_host` says
    why, and `urls` holds the payload URL of every provider: the rest does not depend on the host."""

    info = get_repository(name)
    if provider is not None and provider not in PROVIDERS:
        raise InvalidInput(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}")
    provider = provider or provider_of_host(host_of(info.url))
    own = info.webhook_conn_id
    secret_conn_id = own or global_secret_conn_id()
    base = settings.public_base_url()
    urls = {each: f"{base or 'http://localhost:8080'}/pluginsv2/dagops/api/v1/webhooks/{each}" for each in PROVIDERS}
    return {
        "repository": name,
        "provider": provider,
        "unknown_host": None if provider else _unknown_host(info.url),
        "url": urls[provider] if provider else None,
        "urls": urls,
        "base_url_configured": bool(base),
        "content_type": "application/json",
        "events": EVENTS[provider] if provider else [],
        "secret_conn_id": secret_conn_id,
        "secret_scope": "repository" if own else "global",
        "secret_exists": has_password(secret_conn_id),
        "status_conn_id": info.conn_id if provider != "bitbucket" else None,
    }


def _unknown_host(url: str) -> str:
    """Why the Git host that will send the webhooks cannot be told from the repository's URL."""
    host = host_of(url)
    if host is None:
        return f"{url} is a local repository (file://): it names no Git host"
    return (
        f"{host} is not a host dagops knows (github.com, gitlab.com, bitbucket.org, codeberg.org, or a name "
        "with github, gitlab, gitea, forgejo or bitbucket in it)"
    )
