"""What the store says about a repository's releases: the list, one release with its findings, the live release's
DAGs and the deploy log. Reads only: no git, no validation, no publishing, so a face that only shows releases
(`dagops versions`, `dagops tests`, the REST API's lists) loads no more than the state DB. `rollback` and
`versions`, which move releases, re-export these for their callers.
"""

from __future__ import annotations

from airflow_dagops.store import reads
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import Release
from airflow_dagops.store.queries import load_repository

# Reads without the ORM (store/reads.py): the same answers for every face; `dagops versions` loads no SQLAlchemy.
list_releases = reads.list_releases
get_release = reads.get_release
deploy_log = reads.deploy_log


def live_dags(name: str) -> tuple[str, list[dict]]:
    """The namespace and the DAGs (dag_id, file) of a repository's live release, as validation found them."""
    with session_scope() as session:
        repo = load_repository(session, name)
        live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
        dags = list((live.validation_summary or {}).get("dags") or []) if live else []
        hidden = (live.hidden_files or {}) if live else {}  # left out: another repository owns the dag_id
        return repo.namespace, sorted((d for d in dags if d.get("file") not in hidden), key=lambda d: d["dag_id"])
