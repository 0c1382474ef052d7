"""Proposals: files an assistant, a generator or a script wants in a repository, delivered through Git and review.

Nothing proposed ever reaches the dags folder directly. A proposal is
1. confined: repository-relative paths only (no `..`, no absolute path, no backslash, nothing in `.git`, and
   under the repository's `subdir` when it has one), within `[dagops] proposal_max_file_size` per file and
   `proposal_max_total_size` in all;
2. put through the one gate a sync's commit goes through (releases/gate.py, purpose PROPOSAL), on a temporary tree
   made of the live release (exported from the mirror, as PR checks do) plus the proposed files: validation,
   dag_id conflicts, skip-files, dependency conflicts (computed read-only: the other repository's live release is
   not told) and what can be known of the isolated environment without building it; errors refuse it with the
   findings, and nothing is pushed. The repository's own tests are not run here (this runs inside an API request):
   the pull request the proposal opens gets the `dagops/validate` check, which runs them;
3. committed on a new branch `dagops/proposal-<id>` from the head of the tracked ref, with the configurable
   identity `[dagops] proposal_committer_name/_email`, and pushed with the repository's connection (GitHook's
   credentials, as fetches use them);
4. opened as a pull/merge request where the host is GitHub, GitLab or Gitea (the connection's `provider` extra,
   else the URL's host), through the same endpoint and token the commit statuses use (git/host_api.py).
Merging it then flows through the normal webhook -> validate -> publish path. Every outcome is recorded
(`dagops_proposal`) and emits a `proposal` event.

Nothing is ever written through a path the repository controls: both the tree that is validated and the commit
are built with git plumbing in the bare mirror and a temporary index of their own (read-tree, hash-object,
update-index, write-tree, commit-tree), never in a checked-out work tree; the validated tree is then exported like
any release (its links judged by the exporter). A proposed path any of whose folders is a symlink or a submodule
in the base commit or the live release, or that is itself a symlink, submodule or folder there, is refused before
anything is hashed or pushed.

Size: one use case, in the five numbered sections below that follow the steps above; split across modules, each
step would only be called by the next.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sqlalchemy import select

from airflow_dagops import paths, settings
from airflow_dagops.airflow.connections import get_connection
from airflow_dagops.deploy.releases import export_release
from airflow_dagops.errors import DagOpsError, InvalidInput, NotFound, ProposalRefused
from airflow_dagops.events import feed as events
from airflow_dagops.git import host_api as provider_api
from airflow_dagops.git.host_api import provider_of
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.git.remote import run_remote
from airflow_dagops.git.runner import git_env, run_git
from airflow_dagops.redaction import redact_text as redact
from airflow_dagops.releases.gate import GatePurpose, check_tree
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Proposal, Release, Repository, iso_time, utcnow
from airflow_dagops.store.queries import get_row, load_repository

log = logging.getLogger(__name__)

BRANCH_PREFIX = "dagops/proposal-"
WORK_REFS = "refs/dagops/proposals"  # the tracked ref's head, fetched here so a sync's ref is never moved
MAX_FILES = 100
MAX_PATH = 1024
MAX_TITLE = 200
MAX_DESCRIPTION = 20000
PR_TIMEOUT = (5, 30)
PR_SCOPES = "open pull requests: GitHub repo, GitLab api, Gitea write:repository"
# Hosts whose provider is known without a `provider` extra on the connection.
# NUL and the other C0/C1 control characters, DEL, Unicode line separators, and lone surrogates (no UTF-8 for git).
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


@dataclass(frozen=True)
class ProposedFile:
    path: str  # relative to the repository's root
    content: bytes


@dataclass(frozen=True)
class _Target:
    """The repository fields a proposal needs, read in one transaction (none is held across git work)."""

    name: str
    url: str
    ref: str
    conn_id: str | None
    subdir: str | None
    repository_id: int
    namespace: str
    live_commit: str | None


# -- the use case ------------------------------------------------------------------------------------------------
def propose(
    name: str, files: list[dict | ProposedFile], *, title: str, description: str | None = None, actor: str
) -> dict:
    """Validate the files against the live release, push them as a branch and open a pull request.
    Raises InvalidInput (bad paths, sizes, title) or ProposalRefused (findings) before anything is pushed."""
    title, description = _check_text(title, description)
    target = _target(name)
    proposed = confine(files, subdir=target.subdir)
    proposal_id = _start(target.name, title, description, proposed, actor)
    mirror = Mirror(path=paths.mirror_dir(target.name), url=target.url, conn_id=target.conn_id)
    work_ref, work = f"{WORK_REFS}/{proposal_id}", _work_dir(proposal_id)
    try:
        full_ref, _ = mirror.ls_remote(target.ref)
        mirror.fetch_into(full_ref, work_ref)
        base = mirror.commit_info(work_ref).sha
        trees = _check_trees(mirror, target, base, proposed)
        findings = _validate(mirror, target, base, proposed, work, trees)
        commit = _commit(mirror, base, proposed, title, description, work, trees[base])
        branch = f"{BRANCH_PREFIX}{proposal_id}"
        _push(mirror, commit, branch)
        pr_url, pr_error = _open_pull_request(target, full_ref, branch, title, description, proposal_id)
    except ProposalRefused as err:
        _finish(proposal_id, "refused", error=str(err), findings=err.details.get("findings"))
        raise type(err)(str(err), details={**err.details, "proposal_id": proposal_id}) from None
    except DagOpsError as err:
        _finish(proposal_id, "failed", error=redact(str(err)))
        raise
    except Exception as err:
        _finish(proposal_id, "failed", error=redact(f"unexpected error: {type(err).__name__}: {err}"))
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        mirror.drop_ref(work_ref)
    status = "opened" if pr_url else "pushed"
    _finish(
        proposal_id,
        status,
        base=base,
        branch=branch,
        commit=commit,
        pr_url=pr_url,
        pr_error=pr_error,
        findings=findings,
    )
    return get_proposal(proposal_id)


def _target(name: str) -> _Target:
    with session_scope() as session:
        repo = session.scalar(select(Repository).where(Repository.name == name))
        if repo is None:
            raise NotFound(f"no repository named {name!r} is registered; see `dagops repos list`")
        live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
        return _Target(
            repo.name,
            repo.url,
            repo.ref,
            repo.conn_id,
            repo.subdir,
            repo.id,
            repo.namespace,
            live.commit_sha if live else None,
        )


# -- 1. confinement and limits ------------------------------------------------------------------------------------
def confine(files: list[dict | ProposedFile], *, subdir: str | None) -> list[ProposedFile]:
    """The files with checked paths and sizes; InvalidInput names the first offending one."""
    if not files:
        raise InvalidInput("a proposal needs at least one file")
    if len(files) > MAX_FILES:
        raise InvalidInput(f"a proposal may hold at most {MAX_FILES} files, got {len(files)}")
    max_file, max_total = settings.get_int("proposal_max_file_size"), settings.get_int("proposal_max_total_size")
    checked, seen, total = [], set(), 0
    for item in files:
        proposed = _as_file(item)
        path = check_path(proposed.path, subdir=subdir)
        if path in seen:
            raise InvalidInput(f"{path!r} is proposed twice")
        if len(proposed.content) > max_file:
            raise InvalidInput(
                f"{path} is {len(proposed.content)} bytes; files of a proposal are limited to {max_file} bytes "
                "([dagops] proposal_max_file_size)"
            )
        total += len(proposed.content)
        if total > max_total:
            raise InvalidInput(
                f"the files of this proposal exceed {max_total} bytes in all ([dagops] proposal_max_total_size)"
            )
        seen.add(path)
        checked.append(ProposedFile(path, proposed.content))
    return checked


def _as_file(item: dict | ProposedFile) -> ProposedFile:
    if isinstance(item, ProposedFile):
        return item
    path, content = item.get("path"), item.get("content")
    if not isinstance(path, str) or not isinstance(content, (str, bytes)):
        raise InvalidInput("every proposed file needs a `path` and a text `content`")
    return ProposedFile(path, content.encode() if isinstance(content, str) else content)


def check_path(path: str, *, subdir: str | None) -> str:
    """A normalised repository-relative path, refused when it could leave the repository or its subdir."""
    if not path or len(path) > MAX_PATH or _UNSAFE_CHARACTERS.search(path):
        raise InvalidInput(f"invalid path {path[:80]!r}: give a relative path such as 'dags/my_dag.py'")
    if "\\" in path:
        raise InvalidInput(f"invalid path {path!r}: use '/' between folders, never a backslash")
    pure = PurePosixPath(path)
    if pure.is_absolute() or path.startswith("~"):
        raise InvalidInput(f"invalid path {path!r}: absolute paths are refused; give a path inside the repository")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidInput(f"invalid path {path!r}: '..' is refused; paths stay inside the repository")
    if not parts or any(_is_git_dir(p) for p in parts) or parts[0].startswith("-"):
        raise InvalidInput(f"invalid path {path!r}: give a file inside the repository, outside .git")
    clean = "/".join(parts)
    if subdir and not clean.startswith(subdir.rstrip("/") + "/"):
        raise InvalidInput(
            f"{clean!r} is outside the repository's subdir {subdir!r}; only files under it are published"
        )
    return clean


def _is_git_dir(part: str) -> bool:
    """`.git` as git itself would refuse it on any file system (`.GIT`, `.git.`, `.git `, NTFS's `git~1`)."""
    return part.rstrip(". ").lower() in (".git", "git~1")


def _check_text(title: str, description: str | None) -> tuple[str, str | None]:
    title = (title or "").strip()
    if not title or len(title) > MAX_TITLE or "\n" in title:
        raise InvalidInput(f"a proposal needs a one-line title of at most {MAX_TITLE} characters")
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"the description is limited to {MAX_DESCRIPTION} characters")
    return title, (description or "").strip() or None


# -- 2. where the files go: the base commit's and the live release's trees, read with git --------------------------
_TREE, _LINK, _SUBMODULE, _EXECUTABLE = "040000", "120000", "160000", "100755"


def _check_trees(mirror: Mirror, target: _Target, base: str, files: list[ProposedFile]) -> dict[str, dict[str, str]]:
    """The entries (path -> mode) of the base commit and of the live release, once the proposed paths were checked
    against both. InvalidInput before anything is hashed, written or pushed."""
    trees = {base: _entries(mirror, base)}
    _check_paths_in_tree(files, trees[base], f"the head of {target.ref!r} ({base[:12]})")
    live = target.live_commit
    if live and live != base:
        trees[live] = _entries(mirror, live)
        _check_paths_in_tree(files, trees[live], f"the live release ({live[:12]})")
    return trees


def _entries(mirror: Mirror, sha: str) -> dict[str, str]:
    """Every entry of the commit, folders included (`-t`), as path -> git mode."""
    listing = run_git(["-C", str(mirror.path), "ls-tree", "-r", "-t", "-z", "--full-tree", "--end-of-options", sha])
    entries = {}
    for record in listing.stdout.split(b"\x00"):
        if record:
            meta, path = record.split(b"\t", 1)
            entries[path.decode("utf-8", "surrogateescape")] = meta.split()[0].decode()
    return entries


def _check_paths_in_tree(files: list[ProposedFile], entries: dict[str, str], where: str) -> None:
    """Refuse a path below a symlink, a submodule or a file of the tree, and a path that is a symlink, a submodule
    or a folder there. A link's target is the repository's to choose: dagops never writes through it, on the
    api-server's disk or in the commit."""
    for proposed in files:
        parts = proposed.path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            mode = entries.get(parent)
            if mode is None:
                break  # a new folder: nothing below it exists either
            if mode == _LINK:
                raise InvalidInput(
                    f"refused {proposed.path!r}: {parent!r} is a symbolic link in {where}, and dagops never writes "
                    "through a link a repository controls; propose the file under the real folder it points to"
                )
            if mode == _SUBMODULE:
                raise InvalidInput(
                    f"refused {proposed.path!r}: {parent!r} is a submodule in {where}; propose the file to the "
                    "submodule's own repository"
                )
            if mode != _TREE:
                raise InvalidInput(f"refused {proposed.path!r}: {parent!r} is a file, not a folder, in {where}")
        mode = entries.get(proposed.path)
        what = {_LINK: "a symbolic link", _SUBMODULE: "a submodule", _TREE: "a folder"}.get(mode or "")
        if what:
            raise InvalidInput(
                f"refused {proposed.path!r}: it is {what} in {where}; a proposal only adds or replaces regular files"
            )


def _tree_with(mirror: Mirror, sha: str, files: list[ProposedFile], entries: dict[str, str], index: Path) -> str:
    """The tree of `sha` with the files added or replaced, made in the mirror's object store with an index of its
    own: git plumbing only, no work tree, so nothing the repository holds (a link, a submodule) is followed."""
    env = git_env({"GIT_INDEX_FILE": str(index)})
    git = ["-C", str(mirror.path)]
    run_git([*git, "read-tree", sha], env=env)
    for proposed in files:
        blob = run_git([*git, "hash-object", "-w", "--stdin"], env=env, input=proposed.content).stdout.decode().strip()
        mode = _EXECUTABLE if entries.get(proposed.path) == _EXECUTABLE else "100644"  # keep an executable bit
        run_git([*git, "update-index", "--add", "--cacheinfo", f"{mode},{blob},{proposed.path}"], env=env)
    return run_git([*git, "write-tree"], env=env).stdout.decode().strip()


# -- 3. validation -------------------------------------------------------------------------------------------------
def _validate(
    mirror: Mirror,
    target: _Target,
    base: str,
    files: list[ProposedFile],
    work: Path,
    trees: dict[str, dict[str, str]],
) -> list[dict]:
    """The live release (or, with nothing live, the branch head) plus the files, through the gate (PROPOSAL).
    The files join the tree in git (plumbing), and the exporter writes that tree as it writes any release.
    Returns the findings (warnings and infos); raises ProposalRefused on errors."""
    source = target.live_commit or base
    tree = work / "tree"
    export = export_release(
        mirror=mirror,
        sha=_tree_with(mirror, source, files, trees[source], work / "validation.index"),
        subdir=target.subdir,
        dest=tree,
        base=None,  # no hard links: nothing of this scratch tree shares an inode with a live release
        max_size=settings.get_int("max_repo_size"),
        metadata={"repository": target.name, "proposal": True, "live_commit": source},
    )
    report = check_tree(
        tree,
        repository_id=target.repository_id,
        namespace=target.namespace,
        purpose=GatePurpose.PROPOSAL,
        extra_findings=export.findings,
    )
    findings = [f.to_dict() for f in report.findings]
    if not report.passed:
        raise ProposalRefused(
            f"{target.name}: the proposal was refused, nothing was pushed. {report.describe_errors()}",
            details={"findings": findings, "summary": report.summary()},
        )
    return findings


# -- 4. commit and push ---------------------------------------------------------------------------------------------
def _identity() -> dict[str, str]:
    name, email = settings.get("proposal_committer_name"), settings.get("proposal_committer_email")
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


def _commit(
    mirror: Mirror,
    base: str,
    files: list[ProposedFile],
    title: str,
    description: str | None,
    work: Path,
    entries: dict[str, str],
) -> str:
    """A commit on top of `base` with the files: its tree made by `_tree_with`, then `git commit-tree`."""
    tree = _tree_with(mirror, base, files, entries, work / "commit.index")
    git, env = ["-C", str(mirror.path)], git_env(_identity())
    if tree == run_git([*git, "rev-parse", f"{base}^{{tree}}"], env=env).stdout.decode().strip():
        raise InvalidInput("the proposed files are identical to the tracked ref's; there is nothing to propose")
    message = f"{title}\n\n{description}\n" if description else f"{title}\n"
    return run_git([*git, "commit-tree", tree, "-p", base], env=env, input=message.encode()).stdout.decode().strip()


def _push(mirror: Mirror, commit: str, branch: str) -> None:
    """Push the commit as a new branch (never forced: an existing branch of that name is not overwritten)."""
    args = ["-C", str(mirror.path), "push", "--quiet", "--", mirror.url, f"{commit}:refs/heads/{branch}"]
    run_remote(args, url=mirror.url, conn_id=mirror.conn_id, timeout=mirror.timeout, doing=f"pushing {branch}")


# -- 5. pull / merge request -----------------------------------------------------------------------------------------
def _open_pull_request(target, full_ref, branch, title, description, proposal_id) -> tuple[str | None, str | None]:
    """(pr_url, None) when the host opened one, (None, why not) otherwise: the branch is pushed either way."""
    if not full_ref.startswith("refs/heads/"):
        return None, f"the tracked ref {target.ref!r} is not a branch, so no pull request was opened"
    if not target.conn_id:
        return None, "the repository has no connection (no token), so no pull request was opened"
    try:
        extra = get_connection(target.conn_id).extra_dejson or {}
    except Exception as err:
        return None, f"cannot read Airflow connection {target.conn_id!r}: {type(err).__name__}"
    provider = provider_of(target.url, extra)
    if provider is None:
        return None, "the Git host is not GitHub, GitLab or Gitea (set a `provider` extra on the connection)"
    body = f"{description or ''}\n\nProposed through airflow-dagops (proposal {proposal_id}).".strip()
    try:
        endpoint = provider_api.endpoint_for(provider, target.url, target.conn_id)
        return _post_pull_request(endpoint, full_ref.removeprefix("refs/heads/"), branch, title, body), None
    except provider_api.ReportError as err:
        return None, str(err)


def _post_pull_request(endpoint: provider_api.Endpoint, base_branch: str, branch: str, title: str, body: str) -> str:
    if endpoint.provider == "gitlab":
        tail = "merge_requests"
        payload = {"source_branch": branch, "target_branch": base_branch, "title": title, "description": body}
    else:
        tail, payload = "pulls", {"title": title, "head": branch, "base": base_branch, "body": body}
    data = endpoint.report(tail, payload, what="the pull request", needs=PR_SCOPES, timeout=PR_TIMEOUT)
    link = data.get("web_url") or data.get("html_url") if isinstance(data, dict) else None
    if not link:
        raise provider_api.ReportError(f"the {endpoint.provider} API opened a pull request but answered no URL")
    return str(link)


# -- bookkeeping ----------------------------------------------------------------------------------------------------
def _work_dir(proposal_id: int) -> Path:
    root = settings.dagops_home() / "proposals"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"proposal-{proposal_id}-", dir=root))


def _start(name: str, title: str, description: str | None, files: list[ProposedFile], actor: str) -> int:
    listed = [{"path": f.path, "size": len(f.content), "sha256": hashlib.sha256(f.content).hexdigest()} for f in files]
    with session_scope() as session:
        proposal = Proposal(
            repository=name, title=title, description=description, files=listed, status="validating", actor=actor
        )
        session.add(proposal)
        session.flush()
        return proposal.id


def _finish(
    proposal_id: int,
    status: str,
    *,
    base=None,
    branch=None,
    commit=None,
    pr_url=None,
    pr_error=None,
    findings=None,
    error=None,
) -> None:  # noqa: E501
    with session_scope() as session:
        proposal = get_row(session, Proposal, proposal_id)
        proposal.status, proposal.base_commit, proposal.branch, proposal.commit_sha = status, base, branch, commit
        proposal.pr_url, proposal.pr_error, proposal.findings = pr_url, pr_error, findings
        proposal.error, proposal.updated_at = error, utcnow()
        name, title, actor = proposal.repository, proposal.title, proposal.actor
    what = {
        "opened": f"opened {pr_url}",
        "pushed": f"pushed {branch}" + (f" (no pull request: {pr_error})" if pr_error else ""),
        "refused": "refused by validation; nothing was pushed",
        "failed": f"failed: {(error or '').splitlines()[0] if error else ''}",
    }[status]
    events.record(
        "proposal",
        repository=name,
        actor=actor,
        outcome=status,
        summary=f"{name}: proposal {proposal_id} {title!r} {what}",
        detail={"proposal_id": proposal_id, "branch": branch, "commit": commit, "pr_url": pr_url, "error": error},
    )


def get_proposal(proposal_id: int) -> dict:
    with session_scope() as session:
        proposal = session.get(Proposal, proposal_id) if 0 < proposal_id < 2**31 else None
        if proposal is None:
            raise NotFound(f"no proposal with id {proposal_id}")
        return _proposal_dict(proposal)


def list_proposals(repository: str, *, limit: int = 20) -> list[dict]:
    """A registered repository's proposals, newest first (the page's "Proposals" section)."""
    with session_scope() as session:
        load_repository(session, repository)
        rows = session.scalars(
            select(Proposal).where(Proposal.repository == repository).order_by(Proposal.id.desc()).limit(limit)
        ).all()
        return [_proposal_dict(row) for row in rows]


def _proposal_dict(proposal: Proposal) -> dict:
    return {
        "proposal_id": proposal.id,
        "repository": proposal.repository,
        "title": proposal.title,
        "status": proposal.status,
        "branch": proposal.branch,
        "commit": proposal.commit_sha,
        "base_commit": proposal.base_commit,
        "pr_url": proposal.pr_url,
        "pr_error": proposal.pr_error,
        "files": proposal.files,
        "findings": proposal.findings or [],
        "error": proposal.error,
        "actor": proposal.actor,
        "created_at": iso_time(proposal.created_at),
    }
