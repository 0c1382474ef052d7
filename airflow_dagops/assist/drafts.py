"""DAG code given as text, validated before anyone proposes it: the findings (rule, line, message, hint) an
assistant fixes its draft by.

The files are confined exactly as a proposal's are (proposals.service.confine: repository-relative paths, no
`..`, under the repository's subdir, the proposal size limits), written into a scratch folder and put through the
gate a proposal goes through (releases/gate.py, purpose PROPOSAL: read-only, no environment built, no tests run).
With a repository, its live release's `.dagops.yaml` joins them, so its policy (owners, tags, retries, naming) is
judged, and its dag_id clashes with other repositories; without one, the files are judged alone. A proposal then
validates the same files again with the whole live release around them: passing here is necessary, not
sufficient.
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

from airflow_dagops.proposals.service import ProposedFile, confine
from airflow_dagops.releases.gate import GatePurpose, check_tree
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release
from airflow_dagops.store.queries import load_repository
from airflow_dagops.tempdirs import make_temp_dir
from airflow_dagops.validate.config import REPO_CONFIG_NAME


def validate_draft(files: list[dict | ProposedFile], *, repository: str | None = None) -> dict:
    """{passed, summary, findings, dags} for the files; raises InvalidInput for paths or sizes a proposal would
    refuse, NotFound for an unknown repository."""
    repository_id, namespace, subdir, policy = _target(repository)
    proposed = confine(files, subdir=subdir)
    tree = make_temp_dir("draft-")
    try:
        if policy is not None:
            shutil.copyfile(policy, tree / REPO_CONFIG_NAME)
        for item in proposed:
            target = tree / _inside_release(item.path, subdir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(item.content)
        report = check_tree(tree, repository_id=repository_id, namespace=namespace, purpose=GatePurpose.PROPOSAL)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    findings = [{**f.to_dict(), "file": _in_repository(f.file, subdir) if f.file else None} for f in report.findings]
    dags = [
        {"dag_id": d.dag_id, "file": _in_repository(d.file, subdir), "task_ids": list(getattr(d, "task_ids", []) or [])}
        for d in report.dags
    ]
    return {"passed": report.passed, "summary": report.summary(), "findings": findings, "dags": dags}


def _target(name: str | None) -> tuple[int | None, str | None, str | None, Path | None]:
    """The repository's id, namespace, subdir and its live `.dagops.yaml` (when it has one)."""
    if name is None:
        return None, None, None, None
    with session_scope() as session:
        repo = load_repository(session, name)
        live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
        policy = Path(live.path) / REPO_CONFIG_NAME if live else None
        # Judged where it really is: a `.dagops.yaml` that is a link the repository controls is not followed.
        if policy is not None and (policy.is_symlink() or not policy.is_file()):
            policy = None
        return repo.id, repo.namespace, repo.subdir, policy


def _inside_release(path: str, subdir: str | None) -> str:
    """A repository-relative path (checked by `confine` to be under the subdir) as a path in the release."""
    if not subdir:
        return path
    return str(PurePosixPath(path).relative_to(subdir.strip("/")))


def _in_repository(path: str, subdir: str | None) -> str:
    return f"{subdir.strip('/')}/{path}" if subdir and path != REPO_CONFIG_NAME else path
