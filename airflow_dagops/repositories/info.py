"""What faces show about repositories: the read model (RepositoryInfo, sync run and release dicts), history, status,
health.
"""

from __future__ import annotations

import logging

from airflow_dagops import __version__, settings
from airflow_dagops.safety import redact
from airflow_dagops.store import reads
from airflow_dagops.validate import sandbox_host

log = logging.getLogger(__name__)


# The read model without the ORM (store/reads.py): the same answers for every face, and a CLI read loads no SQLAlchemy.
list_repositories = reads.list_repositories
get_repository = reads.get_repository
repository_history = reads.repository_history


def health() -> dict:
    """Can dagops work? The state DB answers and the dags folder is there. Says nothing secret."""

    checks = {}
    try:
        with reads.reading() as reader:
            reader.scalar("SELECT COUNT(*) FROM dagops_repository")
        checks["state_db"] = "ok"
    except Exception as err:  # health must answer, whatever the failure
        log.warning("health: the state DB does not answer: %s", redact(str(err)))
        checks["state_db"] = "unavailable"
    checks["dags_folder"] = "ok" if settings.dags_folder().is_dir() else "missing"
    ok = all(value == "ok" for value in checks.values())
    return {"status": "ok" if ok else "unavailable", "version": __version__, **checks}


def status() -> dict:
    """A whole-installation summary for `dagops status`."""

    repos = list_repositories()
    support = sandbox_host.sandbox_support()
    return {
        "dagops_home": str(settings.dagops_home()),
        "state_db": redact(settings.sql_alchemy_conn()),
        "dags_folder": str(settings.dags_folder()),
        "sandbox": {
            "available": support.available,
            "setting": settings.get("sandbox"),
            "detail": sandbox_host.describe_support(),
        },
        "repositories": [r.to_dict() for r in repos],
    }
