"""Match a repository's registered URL with the URLs a webhook payload names.

One repository is reachable under many spellings: `https://github.com/Acme/Dags.git`,
`git@github.com:acme/dags`, `ssh://git@github.com:22/acme/dags.git/`. They all reduce to one key,
`github.com/acme/dags`: host and path, without scheme, user, port, a trailing `.git` or slash. Ports go
because one server answers HTTPS and SSH on different ports (Gitea: 3000 and 2222) under one identity.
Case goes too: GitHub, GitLab, Gitea and Bitbucket all look owner and repository names up
case-insensitively. Local paths (`file://`, `/srv/git/x`) keep their case: file systems do not fold it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

# `user@host:path`, git's scp-like SSH syntax (no scheme; the host part has no slash).
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/\s]+)@)?(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<path>[^:\s][^\s]*)$")


def normalize_repo_url(url: str | None) -> str | None:
    """The matching key of a repository URL, or None when it is not a URL of a repository."""
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "file":
            return _local_key(parts.path)
        if scheme not in ("http", "https", "ssh", "git", "git+ssh", "ssh+git"):
            return None
        host, path = (parts.hostname or "").lower(), unquote(parts.path)
    elif url.startswith("/"):
        return _local_key(url)
    else:
        match = _SCP_LIKE.match(url)
        if not match:
            return None
        host, path = match.group("host").lower(), match.group("path")
    path = _strip(path).lower()
    if not host or not path:
        return None
    return f"{host}/{path}"


def _strip(path: str) -> str:
    path = path.strip("/")
    while path.endswith(".git"):
        path = path[: -len(".git")].rstrip("/")
    return path


def _local_key(path: str) -> str | None:
    stripped = _strip(unquote(path))
    return f"file:///{stripped}" if stripped else None


def url_keys(urls: Iterable[str | None]) -> set[str]:
    """The matching keys of every URL a payload names (unparseable ones are left out)."""
    return {key for key in map(normalize_repo_url, urls) if key}


def host_of(url: str) -> str | None:
    """The host of a repository URL (lower case), or None for local paths."""
    key = normalize_repo_url(url)
    if key is None or key.startswith("file://"):
        return None
    return key.split("/", 1)[0]


def path_of(url: str) -> str | None:
    """`owner/repo` (GitLab: `group/subgroup/repo`) of a repository URL, case kept, no `.git`."""
    if "://" in url:
        parts = urlsplit(url.strip())
        path = unquote(parts.path)
    elif (match := _SCP_LIKE.match(url.strip())) and not url.startswith("/"):
        path = match.group("path")
    else:
        return None
    return _strip(path) or None


# -- which Git host -------------------------------------------------------------------------------------------------
_PUBLIC_HOSTS = {
    "github.com": "github",
    "gitlab.com": "gitlab",
    "gitea.com": "gitea",
    "codeberg.org": "gitea",
    "bitbucket.org": "bitbucket",
}
# A self-hosted server is told by a word in its name; the first word found wins.
_NAME_WORDS = (
    ("gitlab", "gitlab"),
    ("gitea", "gitea"),
    ("forgejo", "gitea"),
    ("bitbucket", "bitbucket"),
    ("github", "github"),
)


def provider_of_host(host: str | None) -> str | None:
    """github / gitlab / gitea / bitbucket from a host name; None for a local path or a name that says nothing."""
    if not host:
        return None
    if host in _PUBLIC_HOSTS:
        return _PUBLIC_HOSTS[host]
    return next((provider for word, provider in _NAME_WORDS if word in host), None)
