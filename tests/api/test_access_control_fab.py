"""A repository's `access_control` becomes FAB permissions on its DAGs, through Airflow's own parsing path.

What the dag-processor does for each file, done here in process against the session's Airflow DB (with the
FAB tables, tests/helpers/web.py): a DagBag loads the file (Airflow runs the cluster policies, ours from the
`airflow.policy` entry point, which sets DAG.access_control from the namespace), then `sync_bag_to_db`
serializes the DAGs and, because the auth manager is FabAuthManager, calls
`dag_processing.collection._sync_dag_perms` -> `ApplessAirflowSecurityManager.sync_perm_for_dag`, which grants
(and revokes) the per-DAG permissions. Then FabAuthManager answers `is_authorized_dag` for users of each role.
"""

from __future__ import annotations

import pytest

from airflow_dagops.repositories.registry import add_repository, update_repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source
from tests.helpers.web import FAB

DAG_ID = "dagops_acl_probe"
ROLES = {"acl_x": "DagOpsTeamX", "acl_y": "DagOpsTeamY"}  # username -> role (no DAG rights of their own)


@pytest.fixture
def fab(flask_app, monkeypatch):
    """The FAB auth manager, with two users whose roles have no permission on any DAG to start with."""
    from airflow.api_fastapi.app import init_auth_manager

    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", FAB)  # the dag-processor syncs FAB perms only then
    manager = init_auth_manager()
    security = flask_app.appbuilder.sm
    with flask_app.app_context():
        for username, role_name in ROLES.items():
            role = security.find_role(role_name) or security.add_role(role_name)
            if security.find_user(username=username) is None:
                security.add_user(username, username, "Tester", f"{username}@example.com", role, "pw")
    return manager


def _parse_like_the_dag_processor(dags_folder, namespace: str) -> dict[str, str]:
    """Load the namespace's files and write the results as the dag-processor does; returns import errors."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.errors import ParseImportError
    from airflow.utils.session import create_session

    bag = DagBag(dag_folder=dags_folder / namespace, bundle_path=dags_folder, bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    with create_session() as session:
        sync_bag_to_db(bag, "dags-folder", None, session=session)
    with create_session() as session:
        rows = session.query(ParseImportError).filter(ParseImportError.filename.like(f"{namespace}/%")).all()
        return {row.filename: row.stacktrace for row in rows}


def _rights(flask_app, manager, username: str) -> set[str]:
    """Which of read/edit the user has on the probe DAG, per FabAuthManager."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    with flask_app.app_context():
        user = flask_app.appbuilder.sm.find_user(username=username)
        details = DagDetails(id=DAG_ID)
        return {
            right
            for right, method in (("read", "GET"), ("edit", "PUT"))
            if manager.is_authorized_dag(method=method, user=user, details=details)
        }


def test_the_namespace_roles_get_per_dag_permissions_and_lose_them_on_change(flask_app, fab, dagops_env, git_remote):
    remote = git_remote({f"dags/{DAG_ID}.py": dag_source(DAG_ID)})
    add_repository("acl", remote.url, access_control={"DagOpsTeamX": ["can_read"]})
    sync_repository("acl")

    assert _parse_like_the_dag_processor(dagops_env.dags_folder, "acl") == {}
    assert _rights(flask_app, fab, "acl_x") == {"read"}
    assert _rights(flask_app, fab, "acl_y") == set()

    # The repository's setting changes; the next parse (no restart) moves the rights: X's are revoked.
    update_repository("acl", access_control={"DagOpsTeamY": ["can_read", "can_edit"]})
    assert _parse_like_the_dag_processor(dagops_env.dags_folder, "acl") == {}
    assert _rights(flask_app, fab, "acl_x") == set()
    assert _rights(flask_app, fab, "acl_y") == {"read", "edit"}


def test_a_role_fab_does_not_know_becomes_an_import_error_naming_it(flask_app, fab, dagops_env, git_remote):
    remote = git_remote({f"dags/{DAG_ID}.py": dag_source(DAG_ID)})
    add_repository("acl", remote.url, access_control={"NoSuchRole": ["can_read"]})
    sync_repository("acl")
    errors = _parse_like_the_dag_processor(dagops_env.dags_folder, "acl")
    assert list(errors) == [f"acl/dags/{DAG_ID}.py"]
    assert "NoSuchRole" in errors[f"acl/dags/{DAG_ID}.py"] and "does not exist" in errors[f"acl/dags/{DAG_ID}.py"]
