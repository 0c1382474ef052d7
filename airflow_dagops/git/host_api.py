"""The Git hosts' REST APIs (GitHub, GitLab, Gitea / Forgejo): the one client of every call dagops makes to them.
Commit statuses (checks/, alerts/), pull requests (proposals/), webhooks (webhooks/registration.py) and an
organization's repositories (discovery/) all go through `HostClient`.

- Which host: `provider_of` reads the connection's `provider` extra, else the URL's host: github.com, gitlab.com,
  gitea.com, codeberg.org, bitbucket.org, or a self-hosted server whose name says it (gitlab.acme.com,
  forgejo.internal). Bitbucket is told apart (webhooks, links to commits) but its API is not called.
- Where: the connection's `api_url` extra when set (GitHub Enterprise, a self-hosted GitLab or Gitea on another host
  or port, a test server), else `default_api`, derived from the repository's host: api.github.com for github.com,
  gitlab.com/api/v4, api.bitbucket.org/2.0, and `https://<host>/api/v3|v4|v1` (Bitbucket Data Center
  `/rest/api/1.0`) for self-hosted servers. The API of the repository's own host gets the token only if the
  connection is attached to that host (git/credentials.py).
- As whom: the token is the password of the repository's Airflow connection (the one it fetches with), only ever in
  the Authorization header (`auth_headers`), never in a message (`HostClient.scrub`).
- How: JSON requests without redirects (a redirect to another host would carry the token there), listings that
  follow `Link: rel="next"` on the same host only (GitHub, GitLab and Gitea all send one), and one classification of
  a host's refusals into errors that say what to do:
  - 401: the token is wrong or expired: HostApiError naming the connection;
  - 403: the token lacks a scope or a role: HostPermissionDenied naming the scope the action needs
    (e.g. GitHub `admin:repo_hook`, GitLab `api` with the Maintainer role, Gitea `write:repository`);
  - 404: NotFound naming the thing (a repository or organization the token cannot see is 404 on GitHub too);
  - anything else, or no answer: HostApiError with the host's message, never with the token.
  Reports (a commit status, a pull request) are best effort and say why they failed as ReportError instead.

Commit statuses, the red/green mark a host shows next to a pull request's head commit:
- GitHub: `POST {api}/repos/{owner}/{repo}/statuses/{sha}`, states pending/success/failure/error.
- GitLab: `POST {api}/projects/{url-encoded group/project}/statuses/{sha}`, states pending/running/success/failed.
- Gitea / Forgejo: `POST {api}/repos/{owner}/{repo}/statuses/{sha}`, states pending/success/failure/error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from airflow_dagops.airflow.connections import get_connection
from airflow_dagops.errors import HostApiError, HostPermissionDenied, NotFound, ReportError
from airflow_dagops.git.credentials import CredentialHostRefused, check_credential_host
from airflow_dagops.git.urls import host_of, normalize_repo_url, path_of
from airflow_dagops.git.urls import provider_of_host as provider_of_host  # which host: a URL's business
from airflow_dagops.safety import redact
from airflow_dagops.statuses import CheckStatus
from airflow_dagops.store.models import Repository

log = logging.getLogger(__name__)

# -- which host -----------------------------------------------------------------------------------------------------
PROVIDERS = ("github", "gitlab", "gitea")  # the hosts whose REST APIs dagops calls


def provider_of(url: str, extra: dict | None = None, *, among: tuple[str, ...] = PROVIDERS) -> str | None:
    """The provider serving the repository or organization at `url`, one of `among`: the connection's `provider`
    extra when it names one, else what the URL's host says; None when neither tells."""
    explicit = str((extra or {}).get("provider") or "").lower()
    if explicit in among:
        return explicit
    guessed = provider_of_host(host_of(url))
    return guessed if guessed in among else None


# -- where ----------------------------------------------------------------------------------------------------------
_PUBLIC_APIS = {
    "github.com": "https://api.github.com",
    "gitlab.com": "https://gitlab.com/api/v4",
    "bitbucket.org": "https://api.bitbucket.org/2.0",
}
_SELF_HOSTED_APIS = {
    "github": "https://{host}/api/v3",
    "gitlab": "https://{host}/api/v4",
    "gitea": "https://{host}/api/v1",
    "bitbucket": "https://{host}/rest/api/1.0",
}


def default_api(provider: str, url: str) -> str | None:
    """The API root of `url`'s host for `provider` (a repository's or an organization's URL); None for a local path."""
    host = host_of(url)
    if host is None:
        return None
    return _PUBLIC_APIS.get(host) or _SELF_HOSTED_APIS[provider].format(host=host)


def repo_path(provider: str, project: str) -> str:
    """A repository's path in its host's API: GitLab's URL-encoded project path, `/repos/owner/repo` elsewhere."""
    return f"/projects/{quote(project, safe='')}" if provider == "gitlab" else f"/repos/{project}"


# -- as whom, and how -----------------------------------------------------------------------------------------------
CALL_TIMEOUT = (5, 20)  # seconds to connect, to read: an organization's page of 100 repositories can take a while
PER_PAGE = 100  # the largest page each host allows
MAX_PAGES = 50  # 5000 repositories: a bound, so a host that always answers "next" cannot keep a task forever


def auth_headers(provider: str, token: str) -> dict[str, str]:
    """The provider's headers for a call as `token` (none: a public listing, rate-limited by the host)."""
    headers = {"Accept": "application/vnd.github+json"} if provider == "github" else {}
    if token and provider == "github":
        headers["X-GitHub-Api-Version"] = "2022-11-28"
    if token:
        headers["Authorization"] = f"token {token}" if provider == "gitea" else f"Bearer {token}"
    return headers


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
        return auth_headers(self.provider, self.token)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: dict | None = None,
        params: dict | None = None,
        url: str | None = None,
        timeout: tuple[float, float] = CALL_TIMEOUT,
    ) -> HostResponse:
        """One call; the answer whatever its status (`check` turns a refusal into an error). Raises HostApiError
        when the host does not answer."""
        import requests  # lazy: requests is imported only by the processes that call a host

        target = url or f"{self.api_url}{path}"
        try:
            response = requests.request(
                method,
                target,
                json=body,
                params=params,
                headers=self.headers(),
                timeout=timeout,
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

    def pages(
        self, path: str, *, what: str, scope: str, params: dict | None = None, missing: str | None = None
    ) -> Iterator[Any]:
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
        """Host answers and library errors are shown, stored and logged: never with the token."""
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


# -- reports: commit statuses and pull requests ---------------------------------------------------------------------
@dataclass(frozen=True)
class PullRequest:
    number: int
    action: str  # as the provider says it: opened, synchronize(d), reopened, open, update, ...
    head_sha: str
    base_ref: str  # the target branch, without refs/heads/
    fetch_ref: str  # where the base repository keeps the head: refs/pull/N/head, refs/merge-requests/N/head
    from_fork: bool
    wants_check: bool  # opened, reopened or new commits; not a title edit, a close or a merge


CONTEXT = "dagops/validate"
REPORT_TIMEOUT = (5, 10)  # seconds to connect, to read: a slow Git host must not hold a task for long
# From inside a webhook request: GitHub gives up on a delivery after 10 s, GitLab disables hooks that keep
# timing out. The "pending" status is best effort there (the task reports again when it starts).
QUICK_TIMEOUT = (2, 3)
MAX_DESCRIPTION = 140  # GitHub refuses longer descriptions
STATUS_SCOPES = "GitHub repo:status, GitLab api, Gitea write:repository"

# Our check states (CheckRun.status, plus "queued") in each provider's words.
_GITHUB_STATES: dict[str, str] = {
    CheckStatus.QUEUED: "pending",
    CheckStatus.RUNNING: "pending",
    CheckStatus.SUCCESS: "success",
    CheckStatus.FAILURE: "failure",
    CheckStatus.ERROR: "error",
}
_STATES: dict[str, dict[str, str]] = {
    "github": _GITHUB_STATES,
    "gitea": _GITHUB_STATES,
    "gitlab": {
        CheckStatus.QUEUED: "pending",
        CheckStatus.RUNNING: "running",
        CheckStatus.SUCCESS: "success",
        CheckStatus.FAILURE: "failed",
        CheckStatus.ERROR: "failed",
    },
}


@dataclass(frozen=True)
class CommitStatus:
    sha: str
    state: str  # queued / running / success / failure / error
    description: str
    target_url: str
    context: str = CONTEXT


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to report for one repository: its project on its host's API, as its connection's token."""

    provider: str
    api_url: str
    project: str  # owner/repo (GitLab: group/subgroup/project)
    token: str = field(repr=False)
    conn_id: str | None = None

    @property
    def client(self) -> HostClient:
        return HostClient(self.provider, self.api_url, self.token, conn_id=self.conn_id)

    def report(self, tail: str, body: dict, *, what: str, needs: str, timeout: tuple[float, float]) -> Any:
        """POST `body` under the repository's API path (`statuses/<sha>`, `pulls`, `merge_requests`); the host's
        answer. Raises ReportError with the host's message (and, on 401/403, what the token `needs`), never with
        the token."""
        client = self.client
        try:
            answer = client.request(
                "POST", f"{repo_path(self.provider, self.project)}/{tail}", body=body, timeout=timeout
            )
        except HostApiError as err:
            raise ReportError(str(err)) from None
        if not 200 <= answer.status < 300:
            message = message_of(answer.data)[:200]
            raise ReportError(
                client.scrub(f"the {self.provider} API answered {answer.status} to {what}: {message}")
                + _hint(answer.status, needs)
            )
        return answer.data


def status_context(session: Session, repository_id: int, name: str, url: str) -> str:
    """The context of a repository's commit statuses: `dagops/validate`, or `dagops/validate (name)` when several
    registered repositories share its URL (e.g. two subfolders), so their statuses do not overwrite each other."""
    key = normalize_repo_url(url)
    others = session.scalars(select(Repository.url).where(Repository.id != repository_id)).all()
    shared = any(normalize_repo_url(other) == key for other in others)
    return f"{CONTEXT} ({name})" if shared else CONTEXT


def endpoint_for(provider: str, repo_url: str, conn_id: str | None) -> Endpoint:
    """The report endpoint of a repository, from its URL and its Airflow connection. Raises ReportError."""
    if provider not in _STATES:
        raise ReportError(f"dagops cannot report commit statuses to {provider}")
    if not conn_id:
        raise ReportError(
            "the repository has no Airflow connection, so there is no token to report the check with; "
            "set its conn_id to a connection whose password is a token allowed to set commit statuses"
        )
    try:
        connection = get_connection(conn_id)
    except Exception as err:
        raise ReportError(f"cannot read Airflow connection {conn_id!r}: {type(err).__name__}") from err
    token = connection.password
    if not token:
        raise ReportError(
            f"Airflow connection {conn_id!r} has no password (token); commit statuses need a token ({STATUS_SCOPES})"
        )
    api_url = (connection.extra_dejson or {}).get("api_url")
    if not api_url:
        # The API is then the repository's own host: the token goes there only if the connection is attached to it.
        try:
            check_credential_host(conn_id, repo_url)
        except CredentialHostRefused as err:
            raise ReportError(str(err)) from None
        api_url = default_api(provider, repo_url)
    project = path_of(repo_url)
    if not api_url or not project:
        raise ReportError(
            f"cannot tell the {provider} API of {redact(repo_url)}; "
            f"set `api_url` in the extra of connection {conn_id!r}"
        )
    return Endpoint(provider, str(api_url).rstrip("/"), project, token, conn_id)


def post(endpoint: Endpoint, status: CommitStatus, *, timeout: tuple[float, float] = REPORT_TIMEOUT) -> None:
    """Send one commit status. Raises ReportError with the provider's answer, without the token."""
    name = "name" if endpoint.provider == "gitlab" else "context"  # GitLab calls the context the status' name
    body = {
        "state": _STATES[endpoint.provider][status.state],
        name: status.context,
        "description": status.description[:MAX_DESCRIPTION],
        "target_url": status.target_url,
    }
    what = f"the commit status of {status.sha[:12]}"
    needs = f"set commit statuses: {STATUS_SCOPES}"
    endpoint.report(f"statuses/{status.sha}", body, what=what, timeout=timeout, needs=needs)


def _hint(status: int, needs: str) -> str:
    if status in (401, 403):
        return f" (check that the token may {needs})"
    if status == 404:
        return " (check the repository path and the connection's api_url; a token without access also gets 404)"
    return ""
