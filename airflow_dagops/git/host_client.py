"""A small client of the Git hosts' REST APIs (GitHub, GitLab, Gitea) for what goes beyond a commit status: webhooks
(webhooks/registration.py) and an organization's repositories (discovery/).

Where and as whom it talks is `host_api.Endpoint`'s business (the connection's `api_url` extra, else the
repository's host; the token only ever in the Authorization header). This module adds what those callers share:
the provider's authorization header, pages that follow the `Link: rel="next"` header (GitHub, GitLab and Gitea all
send one), no redirects (a redirect to another host would carry the token there), and one classification of the
host's refusals into errors that say what to do:

- 401: the token is wrong or expired: HostApiError naming the connection;
- 403: the token lacks a scope or a role: HostPermissionDenied naming the scope the action needs
  (e.g. GitHub `admin:repo_hook`, GitLab `api` with the Maintainer role, Gitea `write:repository`);
- 404: NotFound naming the thing (a repository or organization the token cannot see is 404 on GitHub too);
- anything else, or no answer: HostApiError with the host's message, never with the token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_dagops.errors import HostApiError, HostPermissionDenied, NotFound
from airflow_dagops.safety import redact

log = logging.getLogger(__name__)

TIMEOUT = (5, 20)  # seconds to connect, to read: an organization's page of 100 repositories can take a while
PER_PAGE = 100  # the largest page each host allows
MAX_PAGES = 50  # 5000 repositories: a bound, so a host that always answers "next" cannot keep a task forever


@dataclass(frozen=True)
class HostResponse:
    status: int
    data: Any
    next_url: str | None = None


@dataclass(frozen=True)
class HostClient:
    """Requests to one host's API as one token. `conn_id` only names the connection in messages."""

    provider: str  # github / gitlab / gitea
    api_url: str
    token: str = field(repr=False)
    conn_id: str | None = None

    def headers(self) -> dict[str, str]:
        if not self.token:  # a public organization, listed without a token (rate-limited by the host)
            return {"Accept": "application/vnd.github+json"} if self.provider == "github" else {}
        if self.provider == "github":
            return {
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            }
        if self.provider == "gitlab":
            return {"Authorization": f"Bearer {self.token}"}
        return {"Authorization": f"token {self.token}"}

    def request(
        self, method: str, path: str, *, body: dict | None = None, params: dict | None = None, url: str | None = None
    ) -> HostResponse:
        """One call; the answer whatever its status (`check` turns a refusal into an error)."""
        import requests

        target = url or f"{self.api_url}{path}"
        try:
            response = requests.request(
                method,
                target,
                json=body,
                params=params,
                headers=self.headers(),
                timeout=TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as err:
            raise HostApiError(
                self.scrub(f"cannot reach the {self.provider} API: {type(err).__name__}: {err}")
            ) from None
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = response.text[:500]
        next_link = response.links.get("next", {}).get("url")
        return HostResponse(response.status_code, data, next_link if _same_origin(next_link, target) else None)

    def call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        scope: str,
        body: dict | None = None,
        params: dict | None = None,
        missing: str | None = None,
    ) -> HostResponse:
        """A call whose refusal is an error: `what` says what was being done ("create the webhook of acme/dags"),
        `scope` what the token needs for it, `missing` what a 404 means (default: `what` found nothing)."""
        return self.check(self.request(method, path, body=body, params=params), what=what, scope=scope, missing=missing)

    def pages(self, path: str, *, what: str, scope: str, params: dict | None = None, missing: str | None = None):
        """Every item of a listed collection, page after page (at most MAX_PAGES)."""
        params = {**(params or {}), "per_page": PER_PAGE}
        if self.provider == "gitea":
            params["limit"] = params.pop("per_page")
        answer = self.call("GET", path, what=what, scope=scope, params=params, missing=missing)
        for _page in range(MAX_PAGES):
            if not isinstance(answer.data, list):
                raise HostApiError(f"the {self.provider} API answered no list to {what}")
            yield from answer.data
            if not answer.next_url:
                return
            answer = self.check(self.request("GET", "", url=answer.next_url), what=what, scope=scope, missing=missing)
        log.warning("%s: stopped after %d pages", what, MAX_PAGES)

    def check(self, answer: HostResponse, *, what: str, scope: str, missing: str | None = None) -> HostResponse:
        if 200 <= answer.status < 300:
            return answer
        said = self.scrub(message_of(answer.data))
        if answer.status == 401:
            raise HostApiError(
                f"the {self.provider} API refused the token of connection {self.conn_id!r} to {what} (401: {said}); "
                "the token is wrong or expired: put a valid one in the connection's password"
            )
        if answer.status == 403:
            raise HostPermissionDenied(
                f"the {self.provider} API refused to {what} (403: {said}): the token of connection "
                f"{self.conn_id!r} lacks the scope this needs: {scope}",
                details={"provider": self.provider, "needs": scope},
            )
        if answer.status == 404:
            raise NotFound(
                missing
                or f"the {self.provider} API found nothing to {what} (404: {said}); check the name and that "
                f"the token of connection {self.conn_id!r} can see it"
            )
        raise HostApiError(f"the {self.provider} API answered {answer.status} to {what}: {said}")

    def scrub(self, text: str) -> str:
        """Host answers and library errors are shown and logged: never with the token."""
        return redact(text).replace(self.token, "***") if self.token else redact(text)


def message_of(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or data)[:300]
    return str(data)[:300]


def _same_origin(link: str | None, target: str) -> bool:
    """A `next` link is followed only on the host the first request went to: the token goes nowhere else."""
    if not link:
        return False
    a, b = urlsplit(link), urlsplit(target)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)
