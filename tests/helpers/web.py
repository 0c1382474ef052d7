"""The web faces in process, through Flask's test client, against a real Airflow metadata DB.

One Airflow home per test session (tests/helpers/airflow.py, pinned by tests/conftest.py): migrated with the FAB auth
manager's tables, with the `dagops_sync` DAG serialized (so "Sync Now" really creates an Airflow run),
FAB roles and users, and the Flask app Airflow mounts at /pluginsv2 built by the FAB provider's own
`create_app`. Each test runs under SimpleAuthManager on each state DB backend (`dagops_env`), and under
FabAuthManager on SQLite (the two choices are independent; see `pytest_collection_modifyitems`).

Roles used in the tests, per auth manager:
    admin   Simple ADMIN  / FAB Admin               read + write + delete + connections
    editor  Simple USER   / FAB User + plugin read  read + write + delete
    reader  Simple VIEWER / FAB "DagOpsReader"      read only (FAB: only `can read on Plugins`)
    nobody  (FAB only)      FAB Viewer              no plugin access: even reads are 403
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from dataclasses import dataclass, field

import pytest

from tests.helpers.airflow import BIN, SESSION_AIRFLOW_HOME

SIMPLE = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
SIMPLE_ROLES = {"admin": "ADMIN", "editor": "USER", "reader": "VIEWER"}
FAB_USERS = {"admin": "Admin", "editor": "User", "reader": "DagOpsReader", "nobody": "Viewer"}
API = "/dagops/api/v1"


def _airflow_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(SESSION_AIRFLOW_HOME),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(SESSION_AIRFLOW_HOME / "dags"),
            "AIRFLOW__CORE__AUTH_MANAGER": FAB,  # so `db migrate` creates the FAB tables too
            "AIRFLOW__DAGOPS__DAGOPS_HOME": str(SESSION_AIRFLOW_HOME / "dagops"),
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        }
    )
    return env


def _run(*args: str) -> None:
    result = subprocess.run(args, env=_airflow_env(), capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def _prepare_metadata_db() -> None:
    (SESSION_AIRFLOW_HOME / "dags").mkdir(exist_ok=True)
    _run(str(BIN / "airflow"), "db", "migrate")
    _run(str(BIN / "dagops"), "init")  # adds the `dagops` bundle that holds dagops_sync
    _run(str(BIN / "airflow"), "dags", "reserialize", "--bundle-name", "dagops")


def _create_fab_users(app) -> None:
    security = app.appbuilder.sm
    reader = security.find_role("DagOpsReader") or security.add_role("DagOpsReader")
    plugin_read = security.create_permission("can_read", "Plugins")
    security.add_permission_to_role(reader, plugin_read)
    security.add_permission_to_role(security.find_role("User"), plugin_read)
    for username, role in FAB_USERS.items():
        if security.find_user(username=username) is None:
            security.add_user(username, username, "Tester", f"{username}@example.com", security.find_role(role), "pw")


@functools.cache
def _session_app():
    """Built once per test session, even when other test folders re-export the fixture below."""
    _prepare_metadata_db()
    # FAB only while the app is built: the setting stays out of os.environ afterwards, or every later test of this
    # worker (and each Airflow or `dagops` process it starts) would run under FAB instead of the default manager.
    saved = os.environ.get("AIRFLOW__CORE__AUTH_MANAGER")
    os.environ["AIRFLOW__CORE__AUTH_MANAGER"] = FAB
    try:
        from airflow import settings
        from airflow.api_fastapi.app import init_auth_manager

        assert str(SESSION_AIRFLOW_HOME) in settings.SQL_ALCHEMY_CONN, settings.SQL_ALCHEMY_CONN
        init_auth_manager()
        from airflow.providers.fab.www.app import create_app

        app = create_app(enable_plugins=True)
        app.config["TESTING"] = True
        with app.app_context():
            _create_fab_users(app)
    finally:
        if saved is None:
            os.environ.pop("AIRFLOW__CORE__AUTH_MANAGER", None)
        else:
            os.environ["AIRFLOW__CORE__AUTH_MANAGER"] = saved
    return app


@pytest.fixture(scope="session")
def flask_app():
    """The /pluginsv2 Flask app, exactly as the api-server builds it, with the dagops plugin loaded."""
    return _session_app()


@dataclass
class Web:
    """A Flask test client with Airflow tokens per role (see the module docstring)."""

    app: object
    auth_manager: str  # "simple" or "fab"
    client: object = None
    _tokens: dict[str, str] = field(default_factory=dict)

    def token(self, role: str) -> str:
        if role not in self._tokens:
            self._tokens[role] = _make_token(self.app, self.auth_manager, role)
        return self._tokens[role]

    def api(self, method: str, path: str, *, as_: str | None = "admin", headers: dict | None = None, **kwargs):
        """Call `/dagops/api/v1/<path>` with a Bearer token of `as_` (None: no credentials)."""
        headers = dict(headers or {})
        if as_ is not None:
            headers["Authorization"] = f"Bearer {self.token(as_)}"
        return self.client.open(f"{API}/{path.lstrip('/')}", method=method, headers=headers, **kwargs)

    def sign_in_with_cookie(self, role: str) -> str:
        """Set the `_token` cookie as the Airflow UI does at login; returns the token."""
        token = self.token(role)
        self.client.set_cookie("_token", token)
        return token

    def sign_out(self) -> None:
        self.client.delete_cookie("_token")


def _make_token(app, auth_manager: str, role: str) -> str:
    from airflow.api_fastapi.app import get_auth_manager

    manager = get_auth_manager()
    if auth_manager == "simple":
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        if role not in SIMPLE_ROLES:
            pytest.skip(f"SimpleAuthManager has no role like {role!r}")
        return manager.generate_jwt(SimpleAuthManagerUser(username=role, role=SIMPLE_ROLES[role]))
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=role)
        return manager.generate_jwt(user)


@pytest.fixture(params=["simple", "fab"])
def web(request, flask_app, dagops_env, monkeypatch) -> Web:
    """The web faces under one auth manager, with a fresh dagops installation (`dagops_env`)."""
    from airflow.api_fastapi.app import init_auth_manager

    manager = SIMPLE if request.param == "simple" else FAB
    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", manager)
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,editor:user,reader:viewer")
    init_auth_manager()
    web = Web(app=flask_app, auth_manager=request.param)
    web.client = flask_app.test_client()
    yield web
    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER", FAB)
    init_auth_manager()


def airflow_runs_of_sync_dag() -> list[dict]:
    """Runs of dagops_sync in the session's Airflow DB (run id and conf)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(DagRun.run_id, DagRun.conf).where(DagRun.dag_id == "dagops_sync")).all()
    return [{"run_id": run_id, "conf": json.loads(conf) if isinstance(conf, str) else conf} for run_id, conf in rows]


@pytest.hookimpl(trylast=True)  # after tests/helpers/airflow.py's reordering; order kept
def pytest_collection_modifyitems(config, items):
    """Auth managers and state DBs are independent: run FAB on SQLite, SimpleAuthManager on both (this
    applies to every test using the `web` fixture, in any folder)."""
    keep, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        redundant = params.get("web") == "fab" and params.get("state_db_url") == "postgres"
        (dropped if redundant else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
