"""Links from a bundle version to the commits it holds, on their Git hosts.

Airflow formats one `view_url_template` per bundle with `{version}` only, and one dagops-releases version holds a
commit of every live repository, so no Git host URL fits it. The bundle's template leads to the dagops API
(`GET /pluginsv2/dagops/api/v1/bundle/versions/{version}`, api/bundle.py): when the version changed one
namespace (a publish, rollback or promotion of one repository: the usual case) it redirects to that commit on its
Git host; otherwise it lists each namespace's commit with its link.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from airflow_dagops.git.host_api import provider_of_host
from airflow_dagops.git.urls import host_of, path_of

# `{base}`: https://<host>/<owner>/<repository>; `{commit}`: the full sha.
COMMIT_TEMPLATES = {
    "github": "{base}/commit/{commit}",
    "gitlab": "{base}/-/commit/{commit}",
    "gitea": "{base}/commit/{commit}",
    "bitbucket": "{base}/commits/{commit}",
}


def host_kind(url: str) -> str | None:
    """github / gitlab / gitea / bitbucket for a repository URL, from its host name; None when it cannot tell
    (a local path, or a self-hosted server whose name says nothing)."""
    return provider_of_host(host_of(url))


def web_base(url: str) -> str | None:
    """`https://host/owner/repository` of a repository URL in any spelling (HTTPS, SSH, scp-like), credentials,
    port of an SSH URL and `.git` removed; None for a local path."""
    host, path = host_of(url), path_of(url)
    if not host or not path:
        return None
    parts = urlsplit(url) if "://" in url else None
    port = parts.port if parts is not None and parts.scheme in ("http", "https") else None
    scheme = parts.scheme if parts is not None and parts.scheme in ("http", "https") else "https"
    return f"{scheme}://{host}{f':{port}' if port else ''}/{path}"


def commit_url(url: str | None, commit: str, *, kind: str | None = None) -> str | None:
    """The page of `commit` on the repository's Git host, or None when the host is not known."""
    if not url:
        return None
    kind = kind or host_kind(url)
    base = web_base(url)
    if kind not in COMMIT_TEMPLATES or base is None:
        return None
    return COMMIT_TEMPLATES[kind].format(base=base, commit=commit)


def version_page_template(base_url: str) -> str | None:
    """The bundle's `view_url_template`: the dagops API's page of a version under Airflow's `[api] base_url`
    (None without one: Airflow accepts only absolute http(s) URLs)."""
    if not base_url.startswith(("http://", "https://")):
        return None
    return f"{base_url.rstrip('/')}/pluginsv2/dagops/api/v1/bundle/versions/{{version}}"


def links(manifest: dict) -> list[dict]:
    """Each namespace of a version with its commit and the commit's link; changed ones first."""
    changed = set(manifest.get("changed") or [])
    rows = [
        {
            "namespace": namespace,
            "repository": entry.get("repository"),
            "commit": entry.get("commit"),
            "changed": namespace in changed,
            "url": commit_url(entry.get("url"), entry.get("commit") or ""),
        }
        for namespace, entry in sorted((manifest.get("namespaces") or {}).items())
    ]
    return sorted(rows, key=lambda row: not row["changed"])
