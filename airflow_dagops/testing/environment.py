"""The Airflow a DAG repository's tests run against: its DAG folder, Connections and Variables from a file,
and a throwaway SQLite metadata DB. Nothing here imports Airflow until a fixture asks for it."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from airflow_dagops.errors import InvalidInput

log = logging.getLogger(__name__)
_ENV_NAME = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass
class DagRunEnvironment:
    """What `--dagops-env FILE` declares, as the AIRFLOW_CONN_* / AIRFLOW_VAR_* variables Airflow reads."""

    connections: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)

    def env_vars(self) -> dict[str, str]:
        return {
            **{f"AIRFLOW_CONN_{conn_id.upper()}": value for conn_id, value in self.connections.items()},
            **{f"AIRFLOW_VAR_{key.upper()}": value for key, value in self.variables.items()},
        }


def load_environment_file(path: Path | None) -> DagRunEnvironment:
    """Read {connections: {id: uri-or-dict}, variables: {key: value}} from YAML or JSON."""
    if path is None:
        return DagRunEnvironment()
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise InvalidInput(f"cannot read the dagops env file {path}: {err.strerror or err}") from None
    data = _parse(path, text)
    if data is None:
        return DagRunEnvironment()
    if not isinstance(data, dict) or set(data) - {"connections", "variables"}:
        raise InvalidInput(f"{path}: expected a mapping with 'connections' and/or 'variables', got {_shape(data)}")
    return DagRunEnvironment(
        connections={key: _connection(path, key, value) for key, value in _section(path, data, "connections").items()},
        variables={key: _variable(value) for key, value in _section(path, data, "variables").items()},
    )


def _parse(path: Path, text: str):
    import yaml  # JSON is YAML, so one parser reads both

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise InvalidInput(f"{path}{where}: not valid YAML or JSON: {getattr(err, 'problem', err)}") from None


def _section(path: Path, data: dict, name: str) -> dict:
    section = data.get(name) or {}
    if not isinstance(section, dict):
        raise InvalidInput(f"{path}: '{name}' must be a mapping of id to value, got {_shape(section)}")
    for key in section:
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise InvalidInput(f"{path}: {name} id {key!r} must be letters, digits and underscores")
    return section


def _connection(path: Path, conn_id: str, value) -> str:
    """A URI as it is, a mapping as Airflow's JSON connection format (conn_type, host, login, extra, ...)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if not value.get("conn_type"):
            raise InvalidInput(f"{path}: connection {conn_id!r} needs a conn_type (or give it as a URI)")
        return json.dumps(value)
    raise InvalidInput(f"{path}: connection {conn_id!r} must be a URI or a mapping, got {_shape(value)}")


def _variable(value) -> str:
    """Strings as they are; anything else as JSON, so `Variable.get(key, deserialize_json=True)` reads it."""
    return value if isinstance(value, str) else json.dumps(value)


def _shape(value) -> str:
    return type(value).__name__


def default_dags_folder(rootdir: Path) -> Path:
    """A repository's `dags/` when it has one, else its root (DAG files at the top level)."""
    candidate = Path(rootdir) / "dags"
    return candidate if candidate.is_dir() else Path(rootdir)


def airflow_env_vars(home: Path, dags_folder: Path) -> dict[str, str]:
    """Settings that point Airflow at a throwaway home: its own SQLite DB, this repository's DAGs, no examples."""
    bundle = [
        {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(dags_folder)},
        }
    ]
    return {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundle),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "bundles"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
    }


def connect_metadata_db() -> None:
    """Point Airflow's ORM at the DB the environment variables now name, and create its tables.

    Airflow reads the DB URL into module globals when first imported; re-reading them here makes the
    throwaway DB win even when a conftest or a test module imported Airflow before this fixture ran.
    Creating the tables from the ORM (what `airflow db migrate` does on an empty DB) takes a few seconds,
    once per test session.
    """
    from airflow import settings
    from airflow.utils import db

    settings.configure_vars()
    settings.reconfigure_orm()
    db.initdb()


def disconnect_metadata_db() -> None:
    """Close the throwaway DB and point the ORM back at what the (restored) settings name."""
    from airflow import settings

    settings.dispose_orm()
    settings.configure_vars()
    try:
        settings.configure_orm()
    except Exception as err:  # the session is ending: a settings problem of the outer process is not ours
        log.debug("could not re-configure Airflow's ORM after the tests: %s", err)
