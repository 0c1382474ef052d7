"""What a delivery says, in one shape for every provider: which event, which repository, which refs.

Each provider names the same things differently (GitHub `pull_request` / GitLab `Merge Request Hook` /
Bitbucket `repo:push` ...); `parse_event` turns a payload into an `Event` the use case can act on
without knowing the provider. Missing fields never raise: an event we cannot use is `kind="other"`.

Payload fields that matching and acting use are held to the rules of `safety` (the same as the REST API's
and the CLI's): a ref git would refuse, a URL with control characters, a pull request number that is not
a sane positive integer, is treated as absent, never passed on. Bodies are parsed by `safety.loads_json`
(UTF-8, at most 64 levels deep). `Event.identity` is what dagops would act on, for deduplication by event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TypeGuard

from airflow_dagops.errors import InvalidInput
from airflow_dagops.git.host_api import PullRequest
from airflow_dagops.safety import MAX_URL, MalformedJson, has_control_characters, loads_json, validate_ref

NULL_SHA = "0" * 40

# provider -> headers naming the event / the delivery (lower case, first present wins).
_EVENT_HEADERS = {
    "github": ("x-github-event",),
    "gitlab": ("x-gitlab-event",),
    "gitea": ("x-gitea-event", "x-forgejo-event"),
    "bitbucket": ("x-event-key",),
}
_DELIVERY_HEADERS = {
    "github": ("x-github-delivery",),
    # Idempotency-Key stays the same when GitLab retries a delivery; the event UUID is older.
    "gitlab": ("idempotency-key", "x-gitlab-event-uuid"),
    "gitea": ("x-gitea-delivery", "x-forgejo-delivery"),
    "bitbucket": ("x-request-uuid",),
}
_PINGS = {"github": {"ping"}, "bitbucket": {"diagnostics:ping"}}
_PUSHES = {
    "github": {"push"},
    "gitlab": {"Push Hook", "Tag Push Hook"},
    "gitea": {"push"},
    "bitbucket": {"repo:push"},
}
_PULL_REQUESTS = {"github": {"pull_request"}, "gitlab": {"Merge Request Hook"}, "gitea": {"pull_request"}}
MAX_DELIVERY_ID = 200  # the column's size
MAX_NUMBER = 2**31 - 1  # pull request numbers are stored in an INTEGER column
MAX_ACTION = 64


class MalformedPayload(ValueError):
    """The body is not a JSON object."""


@dataclass(frozen=True)
class Push:
    ref: str  # full ref name: refs/heads/main, refs/tags/v1.2
    sha: str | None  # the new head; None when the ref was deleted
    before: str | None = None  # the old head, when the provider says it (part of the event's identity)


@dataclass(frozen=True)
class Event:
    provider: str
    name: str  # the provider's event name, for the delivery log
    kind: str  # ping / push / pull_request / other
    repo_urls: tuple[str, ...] = ()
    pushes: tuple[Push, ...] = ()
    pull_request: PullRequest | None = None
    detail: dict = field(default_factory=dict)

    @property
    def identity(self) -> str | None:
        """Everything dagops would act on: two deliveries with the same identity are the same event (a replay
        under a new delivery id, or the same push sent by two hooks), so acting twice would change nothing.
        For a push: the repository, and each ref with its old and new head; for a pull request: the repository,
        number, action, head, target branch and fork flag. None for events that start nothing (ping, other)."""
        what: object
        if self.kind == "push":
            what = [[push.ref, push.before, push.sha] for push in self.pushes]
        elif self.kind == "pull_request" and self.pull_request is not None:
            what = asdict(self.pull_request)
        else:
            return None
        return json.dumps(
            {"provider": self.provider, "kind": self.kind, "repository": sorted(set(self.repo_urls)), "what": what},
            sort_keys=True,
        )


def parse_json(body: bytes) -> dict:
    try:
        data = loads_json(body)  # UTF-8, at most 64 levels deep: never a RecursionError
    except MalformedJson as err:
        raise MalformedPayload(str(err)) from err
    if not isinstance(data, dict):
        raise MalformedPayload("the body is JSON but not an object; is this a webhook delivery?")
    return data


def event_name(provider: str, headers: Mapping[str, str]) -> str:
    for header in _EVENT_HEADERS.get(provider, ()):
        if headers.get(header):
            return headers[header].strip()[:64]
    return "unknown"


def delivery_id(provider: str, headers: Mapping[str, str], body: bytes) -> str:
    """The provider's id of this delivery; without one, a hash of the body (an identical body is a replay)."""
    for header in _DELIVERY_HEADERS.get(provider, ()):
        value = (headers.get(header) or "").strip()
        if value:
            if len(value) > MAX_DELIVERY_ID:
                return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
            return value
    return "body-sha256:" + hashlib.sha256(body).hexdigest()


def parse_event(provider: str, headers: Mapping[str, str], payload: dict) -> Event:
    name = event_name(provider, headers)
    urls = tuple(u for u in _repo_urls(provider, payload) if _usable_url(u))
    if name in _PINGS.get(provider, ()):
        return Event(provider, name, "ping", urls)
    if name in _PUSHES.get(provider, ()):
        pushes = tuple(_pushes(provider, payload))
        return Event(provider, name, "push" if pushes else "other", urls, pushes=pushes)
    if name in _PULL_REQUESTS.get(provider, ()):
        pull = _pull_request(provider, payload)
        return Event(provider, name, "pull_request" if pull else "other", urls, pull_request=pull)
    return Event(provider, name, "other", urls)


# -- repository URLs -----------------------------------------------------------------------------------
def _repo_urls(provider: str, payload: dict) -> list:
    if provider == "gitlab":
        project, repository = _dict(payload.get("project")), _dict(payload.get("repository"))
        keys = ("git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url", "url", "homepage")
        return [project.get(k) for k in keys] + [repository.get(k) for k in keys]
    repository = _dict(payload.get("repository"))
    if provider == "bitbucket":
        full_name = repository.get("full_name")
        html = _dict(_dict(repository.get("links")).get("html")).get("href")
        return [html] + ([f"https://bitbucket.org/{full_name}"] if isinstance(full_name, str) else [])
    # GitHub and Gitea: the push payload's `url` is the web URL; for other events it is the API URL,
    # which no registered repository has, so listing it is harmless.
    return [repository.get(k) for k in ("clone_url", "ssh_url", "git_url", "html_url", "svn_url", "url")]


# -- pushes ---------------------------------------------------------------------------------------------------
def _pushes(provider: str, payload: dict):
    if provider == "bitbucket":
        for change in _list(_dict(payload.get("push")).get("changes")):
            change = _dict(change)
            new = _dict(change.get("new"))
            kind, name = new.get("type"), new.get("name")
            old_name = _dict(change.get("old")).get("name")
            old = _dict(change.get("old"))
            before = _sha(_dict(old.get("target")).get("hash"))
            if not new and isinstance(old_name, str) and _usable_ref(_full_ref(old.get("type"), old_name)):
                yield Push(_full_ref(old.get("type"), old_name), None, before)  # deleted
            elif isinstance(name, str) and kind in ("branch", "tag") and _usable_ref(_full_ref(kind, name)):
                yield Push(_full_ref(kind, name), _sha(_dict(new.get("target")).get("hash")), before)
        return
    ref = payload.get("ref")
    if not isinstance(ref, str) or not ref.startswith("refs/") or not _usable_ref(ref):
        return
    # GitLab names the commit of a pushed annotated tag `checkout_sha` (`after` is the tag object).
    sha = _sha(payload.get("checkout_sha")) if provider == "gitlab" else None
    sha = sha or _sha(payload.get("after"))
    if payload.get("deleted") is True or sha in (None, NULL_SHA):
        sha = None
    yield Push(ref, sha, _sha(payload.get("before")))


def _full_ref(kind: str | None, name: str) -> str:
    return f"refs/tags/{name}" if kind == "tag" else f"refs/heads/{name}"


# -- pull / merge requests -----------------------------------------------------------------------------------
def _pull_request(provider: str, payload: dict) -> PullRequest | None:
    if provider == "gitlab":
        return _merge_request(payload)
    pull = _dict(payload.get("pull_request"))
    number = _number(payload.get("number", pull.get("number")))
    head, base = _dict(pull.get("head")), _dict(pull.get("base"))
    head_sha, base_ref = _sha(head.get("sha")), base.get("ref")
    if number is None or head_sha is None or not _usable_ref(base_ref):
        return None
    action = _action(payload.get("action"))
    head_repo, base_repo = _dict(head.get("repo")), _dict(base.get("repo"))
    # A deleted fork has no head repository; treat it as a fork.
    from_fork = not head_repo or head_repo.get("id") != base_repo.get("id")
    wanted = {"github": ("opened", "synchronize", "reopened"), "gitea": ("opened", "synchronized", "reopened")}
    return PullRequest(
        number=number,
        action=action,
        head_sha=head_sha,
        base_ref=_branch(base_ref),
        fetch_ref=f"refs/pull/{number}/head",
        from_fork=from_fork,
        wants_check=action in wanted.get(provider, ()),
    )


def _merge_request(payload: dict) -> PullRequest | None:
    attributes = _dict(payload.get("object_attributes"))
    number = _number(attributes.get("iid"))
    head_sha = _sha(_dict(attributes.get("last_commit")).get("id"))
    base_ref = attributes.get("target_branch")
    if number is None or head_sha is None or not _usable_ref(base_ref):
        return None
    action = _action(attributes.get("action"))
    # `update` is sent for any change (title, labels ...); only one with `oldrev` brought new commits.
    new_commits = action == "update" and bool(attributes.get("oldrev"))
    source, target = attributes.get("source_project_id"), attributes.get("target_project_id")
    return PullRequest(
        number=number,
        action=action,
        head_sha=head_sha,
        base_ref=_branch(base_ref),
        fetch_ref=f"refs/merge-requests/{number}/head",
        from_fork=source is not None and source != target,
        wants_check=action in ("open", "reopen") or new_commits,
    )


# -- small helpers ----------------------------------------------------------------------------------------------
def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _sha(value) -> str | None:
    if isinstance(value, str) and len(value) in (40, 64) and all(c in "0123456789abcdef" for c in value.lower()):
        return value.lower()
    return None


def _number(value) -> int | None:
    """A pull / merge request number: a positive integer that fits the column (not a bool, not 10**30)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_NUMBER:
        return value
    return None


def _action(value) -> str:
    """The provider's action word, or "" when it is not a short, printable word (it is stored and logged)."""
    if isinstance(value, str) and len(value) <= MAX_ACTION and not has_control_characters(value):
        return value
    return ""


def _usable_ref(ref: object) -> TypeGuard[str]:
    """A ref (full or a branch name) the REST API and the CLI would accept too; anything else matches nothing."""
    if not isinstance(ref, str):
        return False
    try:
        validate_ref(ref)
    except InvalidInput:
        return False
    return True


def _usable_url(url) -> bool:
    return isinstance(url, str) and 0 < len(url) <= MAX_URL and not has_control_characters(url)


def _branch(ref: str) -> str:
    return ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else ref
