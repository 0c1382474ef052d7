"""Wire dagops into an Airflow installation: the `dagops` DAG bundle serving the system DAGs, the dagops-releases
bundle serving the live releases (`publish_mode = bundle`, the default), and the connection through which system
DAGs read Airflow's REST API.

`dagops init` edits airflow.cfg in place (only the one option it owns), keeping every other line and
comment; when the option comes from an environment variable it cannot edit, it says what to set.

The API connection (`[dagops] airflow_api_conn_id`) is created only where dagops can know a login without being
told one: a local Airflow with SimpleAuthManager (`make run`, `airflow standalone`), whose users are in
`[core] simple_auth_manager_users` and whose passwords Airflow keeps in a file next to airflow.cfg. dagops copies
the least privileged such user's login into a Connection (where credentials belong) and never into its own DB
or code. With any other auth manager, init says which connection to create and how.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from airflow_dagops import paths, settings
from airflow_dagops.airflow import connections
from airflow_dagops.airflow.rest_client import create_command
from airflow_dagops.errors import DagOpsError

BUNDLE_NAME = "dagops"
BUNDLE_CLASSPATH = "airflow.dag_processing.bundles.local.LocalDagBundle"
DEFAULT_BUNDLES = [{"name": "dags-folder", "classpath": BUNDLE_CLASSPATH, "kwargs": {}}]
_OPTION = "dag_bundle_config_list"
_ENV_VAR = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"

log = logging.getLogger(__name__)


def dagops_bundle() -> dict:
    return {"name": BUNDLE_NAME, "classpath": BUNDLE_CLASSPATH, "kwargs": {"path": str(paths.meta_dags_dir())}}


def with_dagops_bundle(bundles: list[dict], *, mode: str | None = None) -> list[dict]:
    """The bundle list with the dagops bundle present exactly once, pointing at the installed system DAGs, and
    with `[dagops] publish_mode = bundle` (the default) the dagops-releases bundle too (airflow_dagops/bundle/).
    Once added, the releases bundle stays when the mode goes back to symlinks: DAG runs that started on it still
    need it to run their tasks, and with an empty live set it serves nothing."""
    others = [b for b in bundles if b.get("name") not in (BUNDLE_NAME, paths.RELEASES_BUNDLE)]
    releases = [b for b in bundles if b.get("name") == paths.RELEASES_BUNDLE]
    if (mode or paths.publish_mode()) == "bundle":
        releases = [releases_bundle(releases[0] if releases else None)]
    return [*others, dagops_bundle(), *releases]


RELEASES_BUNDLE_CLASSPATH = "airflow_dagops.bundle.releases_bundle.DagopsReleasesBundle"


def releases_bundle(existing: dict | None = None) -> dict:
    """The dagops-releases bundle's entry. Its refresh is one query of the state DB, so it runs every second (a
    new release reaches the dag-processor that much sooner; Airflow checks bundles every `[dag_processor]
    bundle_refresh_check_interval`, docs/deployment.md); kwargs an operator set are kept."""
    kwargs = {"refresh_interval": 1, **((existing or {}).get("kwargs") or {})}
    return {"name": paths.RELEASES_BUNDLE, "classpath": RELEASES_BUNDLE_CLASSPATH, "kwargs": kwargs}


def airflow_cfg_path() -> Path:
    return Path(os.environ.get("AIRFLOW_CONFIG") or settings.airflow_home() / "airflow.cfg")


def current_bundles() -> list[dict]:
    from airflow.configuration import conf

    raw = conf.get("dag_processor", _OPTION, fallback="") or json.dumps(DEFAULT_BUNDLES)
    try:
        bundles = json.loads(raw)
    except ValueError as err:
        raise DagOpsError(f"[dag_processor] {_OPTION} is not valid JSON: {err}") from err
    if not isinstance(bundles, list):
        raise DagOpsError(f"[dag_processor] {_OPTION} must be a JSON list of bundles")
    return bundles


def ensure_dagops_bundle(*, mode: str | None = None) -> str:
    """Add the dagops bundle to Airflow's config (and the releases bundle for publish mode `mode`, by default the
    configured one); returns what was done, in words."""
    bundles = current_bundles()
    wanted = with_dagops_bundle(bundles, mode=mode)
    if bundles == wanted:
        return "the dagops DAG bundle is already configured"
    value = json.dumps(wanted)
    if os.environ.get(_ENV_VAR):
        raise DagOpsError(
            f"{_ENV_VAR} is set in the environment, so dagops cannot add its bundle to airflow.cfg. Set it to:\n{value}"
        )
    cfg = airflow_cfg_path()
    if not cfg.exists():
        # What every `airflow` command does first. A file holding only our option would stop Airflow from ever
        # writing its defaults, among them the JWT secret its processes share: without it each one makes up its
        # own, and the api-server refuses every task's token ("Signature verification failed").
        # (Airflow resolves its file once, at import: only when that is this one.)
        from airflow import configuration as airflow_configuration

        if Path(airflow_configuration.AIRFLOW_CONFIG) == cfg:
            airflow_configuration.write_default_airflow_configuration_if_needed()
    text = cfg.read_text() if cfg.exists() else ""
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(set_option(text, "dag_processor", _OPTION, value))
    return f"added the dagops DAG bundle to {cfg} ({_when_loaded()})"


def _when_loaded() -> str:
    """When the new bundle is seen: a dag-processor reads the bundle list only when it starts, so only a running
    one needs a restart (`make run` runs init before it starts Airflow)."""
    running = dag_processor_running()
    if running is None:
        return "restart the dag-processor, if one is running, to load it"
    return "restart the dag-processor to load it" if running else "the dag-processor loads it when it starts"


def dag_processor_running() -> bool | None:
    """Whether a dag-processor heartbeats in Airflow's metadata DB; None when that DB cannot tell."""
    try:
        from airflow.jobs.job import most_recent_job

        job = most_recent_job("DagProcessorJob")
    except Exception as err:  # no metadata DB yet (init before `airflow db migrate`), or unreachable
        log.debug("cannot tell whether a dag-processor runs: %s", type(err).__name__)
        return None
    return bool(job is not None and job.is_alive())


# -- the connection to Airflow's REST API -----------------------------------------------------------------------
# SimpleAuthManager's roles, least privileged first: reading DAG runs needs no more than a viewer.
_ROLES = ("viewer", "user", "op", "admin")
_API_PURPOSE = "the event feed (dagops_events) and promotion checks (dagops_promote) read DAG runs through it"


def ensure_api_connection() -> str:
    """Create `[dagops] airflow_api_conn_id` for a local SimpleAuthManager when it is missing; otherwise say
    whether it exists or how to create it. Returns what was done, in words."""
    conn_id = settings.get("airflow_api_conn_id")
    origin = connections.connection_origin(conn_id)
    if origin != "missing":
        return f"connection {conn_id!r} for Airflow's REST API is set ({origin.replace('_', ' ')})"
    login = simple_auth_login()
    if login is None:
        return (
            f"note: connection {conn_id!r} does not exist; {_API_PURPOSE}, and they skip until it does. "
            f"Create it: {create_command(conn_id)}"
        )
    user, password = login
    url = api_base_url()
    try:
        connections.add_connection(
            doing=f"create connection {conn_id!r}",
            conn_id=conn_id,
            conn_type="http",
            host=url,
            login=user,
            password=password,
            description=f"dagops: Airflow's REST API, for dagops' system DAGs (created by `dagops init` for "
            f"SimpleAuthManager's user {user!r})",
        )
    except DagOpsError as err:  # no metadata DB yet: `airflow db migrate` first
        return (
            f"note: connection {conn_id!r} could not be created ({err}). Run `airflow db migrate`, then "
            f"`dagops init` again, or create it: {create_command(conn_id)}"
        )
    return f"created connection {conn_id!r}: Airflow's REST API at {url} as SimpleAuthManager's user {user!r}"


def api_base_url() -> str:
    """The api-server's URL as this machine reaches it: `[api] base_url`, else localhost and `[api] port`."""
    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "").strip()
    if base:
        return base.rstrip("/")
    host = (conf.get("api", "host", fallback="") or "").strip()
    if host in ("", "0.0.0.0", "::", "[::]"):  # noqa: S104 - it listens everywhere: this machine asks localhost
        host = "localhost"
    scheme = "https" if conf.get("api", "ssl_cert", fallback="") else "http"
    return f"{scheme}://{host}:{conf.getint('api', 'port', fallback=8080)}"


def simple_auth_login() -> tuple[str, str] | None:
    """(user, password) of SimpleAuthManager's least privileged user with a password, or None when Airflow
    uses another auth manager, lets everyone in as admin (no login to copy), or has no password file yet."""
    from airflow.configuration import conf

    if not conf.get("core", "auth_manager", fallback="").endswith(".SimpleAuthManager"):
        return None
    if conf.getboolean("core", "simple_auth_manager_all_admins", fallback=False):
        return None
    path = conf.get("core", "simple_auth_manager_passwords_file", fallback="") or str(
        settings.airflow_home() / "simple_auth_manager_passwords.json.generated"
    )
    try:
        passwords = json.loads(Path(path).read_text())
    except (OSError, ValueError):  # Airflow writes it when the api-server first starts
        return None
    users = []
    for entry in conf.get("core", "simple_auth_manager_users", fallback="").split(","):
        name, _, rest = entry.strip().partition(":")
        role = rest.partition(":")[0].strip().lower()
        if name and role in _ROLES and isinstance(passwords, dict) and passwords.get(name):
            users.append((_ROLES.index(role), name))
    if not users:
        return None
    name = min(users)[1]
    return name, str(passwords[name])


def set_option(text: str, section: str, option: str, value: str) -> str:
    """Set `option` in `[section]` of an ini text, replacing a (possibly multi-line) existing value."""
    lines = text.splitlines(keepends=True)
    header = re.compile(rf"^\[{re.escape(section)}\]\s*$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    new_line = f"{option} = {value}\n"
    if start is None:
        sep = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{sep}\n[{section}]\n{new_line}"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    key = re.compile(rf"^{re.escape(option)}\s*[=:]")
    for i in range(start + 1, end):
        if key.match(lines[i]):
            stop = i + 1
            while stop < end and lines[stop][:1] in (" ", "\t") and lines[stop].strip():
                stop += 1  # continuation lines of a multi-line value
            return "".join(lines[:i] + [new_line] + lines[stop:])
    return "".join(lines[: start + 1] + [new_line] + lines[start + 1 :])
