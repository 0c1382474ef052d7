"""What discovery asks each Git host: the repositories of an organization, and whether one holds a file.

- GitHub: `GET /orgs/{org}/repos` (each item has `topics`), `GET /repos/{owner}/{repo}/contents/{path}?ref=`.
- GitLab: `GET /groups/:id/projects?include_subgroups=true` (each item has `topics`),
  `GET /projects/:id/repository/files/:file_path?ref=`.
- Gitea / Forgejo: `GET /orgs/{org}/repos` (`topics` on newer versions; else `GET /repos/{owner}/{repo}/topics`),
  `GET /repos/{owner}/{repo}/contents/{path}?ref=`.

Each listing is paged (git/host_api.py follows `Link: rel="next"`); archived repositories are left out.
Listing needs only read access (GitHub: `repo` for private repositories, GitLab: `read_api`, Gitea:
`read:organization` and `read:repository`), which a 403 names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from airflow_dagops.errors import NotFound
from airflow_dagops.git.host_api import HostClient

READ_SCOPES = {
    "github": "repo (to see private repositories; public ones need none), or fine-grained Metadata and Contents: read",
    "gitlab": "read_api, and at least the Reporter role in the group",
    "gitea": "read:organization and read:repository",
}


@dataclass(frozen=True)
class HostRepo:
    """One repository of an organization, as discovery needs it."""

    full_name: str  # owner/repo (GitLab: group/subgroup/project)
    relative_name: str  # the path below the organization: repo (GitLab: subgroup/project)
    clone_url: str
    default_branch: str
    topics: list[str] | None = field(default=None)  # None: the listing did not say (older Gitea)


def list_repositories(client: HostClient, organization: str) -> list[HostRepo]:
    """The organization's repositories (not archived). NotFound names the organization when the host knows none."""
    missing = (
        f"{client.provider} knows no organization {organization!r}"
        f"{' (group)' if client.provider == 'gitlab' else ''}, or the token of connection {client.conn_id!r} "
        "cannot see it"
    )
    scope = READ_SCOPES[client.provider]
    what = f"list the repositories of {organization}"
    if client.provider == "gitlab":
        items = client.pages(
            f"/groups/{quote(organization, safe='')}/projects",
            params={"include_subgroups": "true", "archived": "false"},
            what=what,
            scope=scope,
            missing=missing,
        )
    else:
        items = client.pages(f"/orgs/{quote(organization, safe='')}/repos", what=what, scope=scope, missing=missing)
    found = []
    for item in items:
        if not isinstance(item, dict) or item.get("archived"):
            continue
        repo = _repo_of(client.provider, organization, item)
        if repo is not None:
            found.append(repo)
    return found


def _repo_of(provider: str, organization: str, item: dict) -> HostRepo | None:
    if provider == "gitlab":
        full_name = str(item.get("path_with_namespace") or "")
        clone_url = str(item.get("http_url_to_repo") or "")
    else:
        full_name = str(item.get("full_name") or "")
        clone_url = str(item.get("clone_url") or "")
    prefix = organization.strip("/") + "/"
    if not full_name.lower().startswith(prefix.lower()) or not clone_url:
        return None  # not in this organization after all (a host's answer is not trusted blindly)
    topics = item.get("topics")
    return HostRepo(
        full_name=full_name,
        relative_name=full_name[len(prefix) :],
        clone_url=clone_url,
        default_branch=str(item.get("default_branch") or "main"),
        topics=[str(t) for t in topics] if isinstance(topics, list) else None,
    )


def topics_of(client: HostClient, repo: HostRepo) -> list[str]:
    """The repository's topics, asked separately where the listing left them out (Gitea before 1.19)."""
    if repo.topics is not None:
        return repo.topics
    if client.provider != "gitea":
        return []
    answer = client.call(
        "GET",
        f"/repos/{repo.full_name}/topics",
        what=f"read the topics of {repo.full_name}",
        scope=READ_SCOPES["gitea"],
    )
    topics = answer.data.get("topics") if isinstance(answer.data, dict) else None
    return [str(t) for t in topics] if isinstance(topics, list) else []


def has_file(client: HostClient, repo: HostRepo, path: str) -> bool:
    """Does the repository hold `path` on its default branch (the hosts' contents APIs; 404: no)?"""
    what = f"look for {path} in {repo.full_name}"
    if client.provider == "gitlab":
        api_path = f"/projects/{quote(repo.full_name, safe='')}/repository/files/{quote(path, safe='')}"
    else:
        api_path = f"/repos/{repo.full_name}/contents/{quote(path)}"
    try:
        client.call("GET", api_path, params={"ref": repo.default_branch}, what=what, scope=READ_SCOPES[client.provider])
    except NotFound:
        return False
    return True
