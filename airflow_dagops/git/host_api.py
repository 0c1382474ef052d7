"""The Git hosts' REST APIs (GitHub, GitLab, Gitea): pull requests, and commit statuses, the red/green mark a
host shows next to a pull request's head commit.

- GitHub: `POST {api}/repos/{owner}/{repo}/statuses/{sha}`, states pending/success/failure/error,
  `Authorization: Bearer <token>`.
- GitLab: `POST {api}/projects/{url-encoded group/project}/statuses/{sha}`, states
  pending/running/success/failed, `Authorization: Bearer <token>`.
- Gitea / Forgejo: `POST {api}/repos/{owner}/{repo}/statuses/{sha}`, states pending/success/failure/error,
  `Authorization: token <token>`.

`{api}` is the connection's `api_url` extra when set (GitHub Enterprise, a self-hosted GitLab or Gitea
on another host or port, a test server), else derived from the repository's host: api.github.com for
github.com, `https://<host>/api/v3|v4|v1` otherwise. The token is the password of the repository's
Airflow connection (the one it fetches with); it is only ever put in the Authorization header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from airflow_dagops.airflow.connections import get_connection
from airflow_dagops.errors import ReportError
from airflow_dagops.git.credentials import CredentialHostRefused, check_credential_host
from airflow_dagops.git.urls import host_of, path_of
from airflow_dagops.safety import redact
from airflow_dagops.statuses import CheckStatus


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
TIMEOUT = (5, 10)  # seconds to connect, to read: a slow Git host must not hold a task for long
# From inside a webhook request: GitHub gives up on a delivery after 10 s, GitLab disables hooks that keep
# timing out. The "pending" status is best effort there (the task reports again when it starts).
QUICK_TIMEOUT = (2, 3)
MAX_DESCRIPTION = 140  # GitHub refuses longer descriptions

# Our check states (CheckRun.status, plus "queued") in each provider's words.
_STATES: dict[str, dict[str, str]] = {
    "github": {
        CheckStatus.QUEUED: "pending",
        CheckStatus.RUNNING: "pending",
        CheckStatus.SUCCESS: "success",
        CheckStatus.FAILURE: "failure",
        CheckStatus.ERROR: "error",
    },
    "gitea": {
        CheckStatus.QUEUED: "pending",
        CheckStatus.RUNNING: "pending",
        CheckStatus.SUCCESS: "success",
        CheckStatus.FAILURE: "failure",
        CheckStatus.ERROR: "error",
    },
    "gitlab": {
        CheckStatus.QUEUED: "pending",
        CheckStatus.RUNNING: "running",
        CheckStatus.SUCCESS: "success",
        CheckStatus.FAILURE: "failed",
        CheckStatus.ERROR: "failed",
    },
}
_KNOWN_APIS = {"github.com": "https://api.github.com", "gitlab.com": "https://gitlab.com/api/v4"}
_SELF_HOSTED_APIS = {
    "github": "https://{host}/api/v3",
    "gitlab": "https://{host}/api/v4",
    "gitea": "https://{host}/api/v1",
}
PROVIDERS = tuple(_STATES)


@dataclass(frozen=True)
class CommitStatus:
    sha: str
    state: str  # queued / running / success / failure / error
    description: str
    target_url: str
    context: str = CONTEXT


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to report for one repository."""

    provider: str
    api_url: str
    project: str  # owner/repo (GitLab: group/subgroup/project)
    token: str = field(repr=False)

    def request(self, status: CommitStatus) -> tuple[str, dict, dict]:
        """(URL, JSON body, headers) of the provider's "create a commit status" call."""
        state = _STATES[self.provider][status.state]
        description = status.description[:MAX_DESCRIPTION]
        if self.provider == "gitlab":
            url = f"{self.api_url}/projects/{quote(self.project, safe='')}/statuses/{status.sha}"
            body = {"state": state, "name": status.context, "description": description, "target_url": status.target_url}
            return url, body, {"Authorization": f"Bearer {self.token}"}
        body = {"state": state, "context": status.context, "description": description, "target_url": status.target_url}
        if self.provider == "github":
            headers = {
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            }
            return f"{self.api_url}/repos/{self.project}/statuses/{status.sha}", body, headers
        return (
            f"{self.api_url}/repos/{self.project}/statuses/{status.sha}",
            body,
            {"Authorization": f"token {self.token}"},
        )


def endpoint_for(provider: str, repo_url: str, conn_id: str | None) -> Endpoint:
    """The status endpoint of a repository, from its URL and its Airflow connection. Raises ReportError."""
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
            f"Airflow connection {conn_id!r} has no password (token); commit statuses need a token "
            "(GitHub: repo:status, GitLab: api, Gitea: write:repository)"
        )
    api_url = (connection.extra_dejson or {}).get("api_url")
    if not api_url:
        # The API is then the repository's own host: the token goes there only if the connection is attached to it.
        try:
            check_credential_host(conn_id, repo_url)
        except CredentialHostRefused as err:
            raise ReportError(str(err)) from None
        api_url = _default_api(provider, repo_url)
    project = path_of(repo_url)
    if not api_url or not project:
        raise ReportError(
            f"cannot tell the {provider} API of {redact(repo_url)}; "
            f"set `api_url` in the extra of connection {conn_id!r}"
        )
    return Endpoint(provider, str(api_url).rstrip("/"), project, token)


def default_api(provider: str, url: str) -> str | None:
    """The API root of `url`'s host for `provider` (a repository's or an organization's URL); None for a local path."""
    return _default_api(provider, url)


def _default_api(provider: str, repo_url: str) -> str | None:
    host = host_of(repo_url)
    if host is None:
        return None
    return _KNOWN_APIS.get(host) or _SELF_HOSTED_APIS[provider].format(host=host)


def post(endpoint: Endpoint, status: CommitStatus, *, timeout: tuple[float, float] = TIMEOUT) -> None:
    """Send one commit status. Raises ReportError with the provider's answer, without the token."""
    import requests

    url, body, headers = endpoint.request(status)
    try:
        response = requests.post(url, json=body, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.RequestException as err:
        message = f"cannot reach the {endpoint.provider} API: {type(err).__name__}: {err}"
        raise ReportError(_scrub(message, endpoint)) from None
    if not 200 <= response.status_code < 300:
        raise ReportError(
            _scrub(
                f"the {endpoint.provider} API answered {response.status_code} to the commit status of "
                f"{status.sha[:12]}: {_message(response)}{_hint(response.status_code)}",
                endpoint,
            )
        )


def _message(response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or data)[:200]
    return str(data)[:200]


def _hint(status: int) -> str:
    if status in (401, 403):
        return " (check that the token may set commit statuses: GitHub repo:status, GitLab api, Gitea write:repository)"
    if status == 404:
        return " (check the repository path and the connection's api_url; a token without access also gets 404)"
    return ""


def _scrub(text: str, endpoint: Endpoint) -> str:
    """Errors are stored and logged: make sure the token is in none of them, whatever the library said."""
    return redact(text).replace(endpoint.token, "***")
